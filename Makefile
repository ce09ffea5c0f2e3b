# mipsc: one entry point for setting up, building the kernel plugin, testing and the demo.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CC ?= cc

PLUGIN := src/mipsc/_lib/libmips_kernels.so
KERNEL_SRCS := $(wildcard kernels/*.c)
KERNEL_HDRS := $(wildcard kernels/*.h) $(wildcard kernels/*.inc)
KERNEL_CFLAGS ?= -O3 -std=c11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden
# -ldl -lpthread: openblas.c dlopens OpenBLAS once (pthread_once); both live in libc since
# glibc 2.34, where these flags change nothing, and are needed before it.
KERNEL_LDFLAGS ?= -shared -lm -ldl -lpthread

# The same sources as one freestanding relocatable object, linked by iree-compile into each
# module compiled with --kernel-link=embedded (kernels/README.md, "The embedded object").
# No libc: the plugin-only files (the IREE plugin, OpenBLAS, AMX) are left out, and the rule
# fails when the object needs any symbol from outside (IREE links it -nostdlib --no-undefined).
# EMBEDDED_DEFS adds -D flags (tests build objects with -DMIPS_FORCE_CONFIG=...).
EMBEDDED := src/mipsc/_lib/mips_kernels_embedded.o
EMBEDDED_SRCS := $(filter-out kernels/plugin.c kernels/openblas.c kernels/matmul_bf16_amx.c,$(KERNEL_SRCS))
EMBEDDED_CFLAGS ?= -O3 -std=c11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden -ffreestanding \
	-fno-stack-protector -fno-tree-loop-distribute-patterns -DMIPS_FREESTANDING
EMBEDDED_DEFS ?=
EMBEDDED_BUILD ?= build/embedded

.PHONY: install kernels kernels-asan kernels-profile test test-asan lint demo bench clean

# A venv with mipsc (editable), the test tools and the front doors' extras (torch and
# iree-turbine, onnx: their tests skip without them), plus the kernel plugin.
# EXTRAS=test installs without the front doors' packages.
EXTRAS ?= test,torch,onnx
# Then the bytecode of mipsc's sources, as pip writes it when it installs a wheel: an editable
# install leaves it to the first run, which writes none when PYTHONDONTWRITEBYTECODE is set,
# and every `mipsc` command then compiles its sources again (~0.1 s of CPU each; stale files
# are ignored by Python, which checks each against its source).
install: $(BIN)/mipsc kernels
	$(BIN)/python -m compileall -q src/mipsc

$(BIN)/mipsc: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	@touch $@

kernels: $(PLUGIN) $(EMBEDDED)

$(PLUGIN): $(KERNEL_SRCS) $(KERNEL_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(KERNEL_CFLAGS) -o $@ $(KERNEL_SRCS) $(KERNEL_LDFLAGS)

$(EMBEDDED): $(KERNEL_SRCS) $(KERNEL_HDRS)
	@mkdir -p $(dir $@) $(EMBEDDED_BUILD)
	for src in $(EMBEDDED_SRCS); do \
	  $(CC) $(EMBEDDED_CFLAGS) $(EMBEDDED_DEFS) -c $$src -o $(EMBEDDED_BUILD)/$$(basename $$src .c).o || exit 1; \
	done
	$(CC) -r -nostdlib -o $@ $(patsubst kernels/%.c,$(EMBEDDED_BUILD)/%.o,$(EMBEDDED_SRCS))
	@undefined="$$(nm -u $@)"; if [ -n "$$undefined" ]; then \
	  echo "$@ needs symbols a freestanding object cannot have:"; echo "$$undefined"; rm -f $@; exit 1; fi

# The same sources with AddressSanitizer + UndefinedBehaviorSanitizer, for the kernel tests
# (test-asan). Not a plugin to ship: it needs libasan loaded first in the process.
ASAN_PLUGIN := build/asan/libmips_kernels.so
ASAN_CFLAGS ?= -O1 -g -std=c11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden \
	-fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
ASAN_LDFLAGS ?= -shared -lm -ldl -lpthread -fsanitize=address,undefined

kernels-asan: $(ASAN_PLUGIN)

$(ASAN_PLUGIN): $(KERNEL_SRCS) $(KERNEL_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -o $@ $(KERNEL_SRCS) $(ASAN_LDFLAGS)

# The same sources with -DMIPS_PROFILE: cycle counters per part of the GEMM, read by
# tools/profile_kernel.py (single-threaded use only; not a plugin to ship).
PROFILE_PLUGIN := build/profile/libmips_kernels.so

kernels-profile: $(PROFILE_PLUGIN)

$(PROFILE_PLUGIN): $(KERNEL_SRCS) $(KERNEL_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(KERNEL_CFLAGS) -DMIPS_PROFILE -o $@ $(KERNEL_SRCS) $(KERNEL_LDFLAGS)

# The kernel tests (builtin and OpenBLAS backends) against the sanitized plugin. Python is not
# built with ASan, so the runtime is preloaded; Python's own leaks are not ours (detect_leaks=0);
# any report aborts. libstdc++ is preloaded too: IREE's runtime reports a failed call as a C++
# exception, which ASan's __cxa_throw interceptor can only pass on if libstdc++ was there first.
ASAN_ENV = LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libstdc++.so)" \
	ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	MIPSC_PLUGIN=$(abspath $(ASAN_PLUGIN))

# The kernel tests call the kernels through ctypes; the end-to-end ones (the committed exports,
# the matmul family, the layout property test) through real IREE dispatches, where a buffer
# smaller than a kernel call describes is an error too.
# Two processes: tests/e2e/conftest.py drops LD_PRELOAD from the environment (for iree-compile),
# and the kernel tests' own subprocesses need it.
TEST_ASAN = $(ASAN_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_kernels.py \
	tests/unit/test_kernels_openblas.py tests/unit/test_kernels_epilogue.py \
	tests/unit/test_kernels_packed.py tests/unit/test_kernels_thin.py \
	tests/unit/test_kernels_attention.py tests/unit/test_kernels_fused_epilogue.py && \
	$(ASAN_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_kernels_embedded.py \
	-k blocks_fit_the_workspace && \
	$(ASAN_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/test_exports.py \
	tests/e2e/test_matmul_family.py tests/e2e/test_property_layouts.py

test-asan: $(BIN)/mipsc kernels-asan
	$(TEST_ASAN)

# Every test: lint, unit, filecheck (lit) and end-to-end, then the kernel tests sanitized.
test: install kernels-asan
	$(BIN)/ruff check src tests tools
	$(BIN)/lit -v tests/filecheck
	$(BIN)/pytest -q
	$(TEST_ASAN)

lint: install
	$(BIN)/ruff check src tests tools

demo: install
	$(BIN)/python tools/demo.py

# mipsc vs IREE's best codegen vs numpy on this machine (see BENCHMARKS.md).
bench: install
	$(BIN)/mipsc bench

clean:
	rm -rf build src/mipsc/_lib
