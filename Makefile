# mipsc: one entry point for setting up, building the kernel plugin, testing and the demo.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CC ?= cc

PLUGIN := src/mipsc/_lib/libmips_kernels.so
KERNEL_SRCS := $(wildcard kernels/*.c)
KERNEL_HDRS := $(wildcard kernels/*.h) $(wildcard kernels/*.inc)
KERNEL_CFLAGS ?= -O3 -std=c11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden
KERNEL_LDFLAGS ?= -shared -lm

.PHONY: install kernels test lint demo bench clean

# A venv with mipsc (editable) and the test tools, plus the kernel plugin.
install: $(BIN)/mipsc kernels

$(BIN)/mipsc: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

kernels: $(PLUGIN)

$(PLUGIN): $(KERNEL_SRCS) $(KERNEL_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(KERNEL_CFLAGS) -o $@ $(KERNEL_SRCS) $(KERNEL_LDFLAGS)

# Every test: lint, unit, filecheck (lit) and end-to-end.
test: install
	$(BIN)/ruff check src tests tools
	$(BIN)/lit -v tests/filecheck
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check src tests tools

demo: install
	$(BIN)/python tools/demo.py

# mipsc vs IREE's best codegen vs numpy on this machine (see BENCHMARKS.md).
bench: install
	$(BIN)/mipsc bench

clean:
	rm -rf build src/mipsc/_lib
