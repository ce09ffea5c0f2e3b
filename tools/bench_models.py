"""Real-size PyTorch models through mipsc, IREE's own codegen at its best, and torch eager.

The question a user asks: "is my model faster through mipsc?". For each model this tool

1. builds the torch module (seeded) and exports it with iree-turbine, weights externalized to
   an .irpa parameter file (scope ``model``), into a temporary directory;
2. compiles it twice with the project venv's tools: ``mipsc compile --report`` (the matmuls
   call the kernel plugin) and iree-compile with IREE's best flags (``mipsc.bench``'s
   ``IREE_BEST_FLAGS`` plus ``--iree-llvmcpu-target-cpu=host``, as ``mipsc bench`` does);
3. per thread count, in a process of its own: checks both modules against torch's eager output
   (a benchmark of a wrong answer is worthless) and times mipsc, iree-best and torch eager
   interleaved in bursts (``mipsc.bench.time_interleaved``), medians.

Run it with the export venv, which has torch, iree-turbine and (for the timing processes)
mipsc installed editable on the same iree-base-runtime 3.13 as the project venv::

    python3 -m venv .venv-export
    .venv-export/bin/pip install torch==2.13.0 iree-turbine
    .venv-export/bin/pip install -e .
    .venv-export/bin/python tools/bench_models.py                  # all models, 1 and 2 threads
    .venv-export/bin/python tools/bench_models.py mlp mlp_bf16 --threads 1 --seconds 1

Nothing is written to the repository; ``--keep DIR`` keeps the exports and .vmfb files.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
PROJECT_VENV = REPO / ".venv"
SEED = 0
PARAM_SCOPE = "model"

warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")


@dataclass
class Model:
    name: str
    doc: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    tolerance: dict[str, float] = field(default_factory=lambda: {"atol": 1e-3, "rtol": 1e-3})
    compile_flags: list[str] = field(default_factory=list)
    """Extra iree-compile flags, given to both compiles."""


def encoder_layer() -> nn.Module:
    return nn.TransformerEncoderLayer(
        d_model=768, nhead=12, dim_feedforward=3072, batch_first=True
    ).eval()


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(1024, 4096), nn.GELU(), nn.Linear(4096, 1024)).eval()


MODELS: dict[str, Model] = {
    m.name: m
    for m in [
        Model(
            "encoder",
            "nn.TransformerEncoderLayer(768, 12 heads, ff 3072, batch_first), eval, x [1,128,768]",
            encoder_layer,
            (1, 128, 768),
        ),
        Model(
            "mlp",
            "Linear(1024->4096) -> GELU -> Linear(4096->1024), x [64,1024]",
            mlp,
            (64, 1024),
        ),
        Model(
            "mlp_bf16",
            "the mlp in bfloat16 (reference: torch CPU in bf16)",
            mlp,
            (64, 1024),
            dtype=torch.bfloat16,
            # as tests/data/manifest.json's mlp_bf16
            tolerance={"atol": 2e-2, "rtol": 2e-2},
        ),
        Model(
            "encoder_b8",
            "the encoder layer on x [8,128,768]",
            encoder_layer,
            (8, 128, 768),
        ),
    ]
}

DTYPE_NAMES = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16"}


def build(model: Model) -> tuple[nn.Module, torch.Tensor]:
    """The module and its input, the same in every process (seeded)."""
    torch.manual_seed(SEED)
    module = model.build().to(model.dtype)
    x = torch.randn(*model.input_shape).to(model.dtype)
    return module, x


def to_numpy(t: torch.Tensor) -> np.ndarray:
    import ml_dtypes

    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16).copy()
    return t.numpy().copy()


# ---------------------------------------------------------------------------------------
# Export and compile (driver process)
# ---------------------------------------------------------------------------------------


def export(model: Model, work: Path) -> tuple[Path, Path]:
    from iree.turbine import aot

    module, x = build(model)
    aot.externalize_module_parameters(module)
    exported = aot.export(module, args=(x,))
    mlir = work / f"{model.name}.mlir"
    irpa = work / f"{model.name}.irpa"
    exported.save_mlir(mlir)
    aot.save_module_parameters(irpa, module)
    return mlir, irpa


def run(command: list[str], what: str) -> str:
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(
            f"{what} failed (exit {proc.returncode}):\n$ {' '.join(command)}\n"
            f"{proc.stderr.strip()[-4000:]}"
        )
    return proc.stdout + proc.stderr


IREE_BEST_COMPILE = """
import sys
from pathlib import Path
from mipsc.backend.iree_compile import compile_mlir
from mipsc.bench import IREE_BEST_FLAGS
compile_mlir(Path(sys.argv[1]).read_text(), Path(sys.argv[2]),
             extra_flags=(*IREE_BEST_FLAGS, *sys.argv[3:]))
"""


def compile_both(model: Model, mlir: Path, work: Path) -> tuple[dict[str, Path], str]:
    """The .vmfb of mipsc and of iree-best, compiled by the project venv; and mipsc's report."""
    mipsc_vmfb = work / f"{model.name}.mipsc.vmfb"
    iree_vmfb = work / f"{model.name}.iree-best.vmfb"
    report = run(
        [
            str(PROJECT_VENV / "bin" / "mipsc"),
            "compile",
            str(mlir),
            "-o",
            str(mipsc_vmfb),
            "--report",
            *model.compile_flags,
        ],
        f"mipsc compile {model.name}",
    )
    run(
        [
            str(PROJECT_VENV / "bin" / "python"),
            "-c",
            IREE_BEST_COMPILE,
            str(mlir),
            str(iree_vmfb),
            *model.compile_flags,
        ],
        f"iree-compile (best flags) {model.name}",
    )
    return {"mipsc": mipsc_vmfb, "iree-best": iree_vmfb}, report.strip()


def kernel_summary(report: str) -> str:
    """'5/5' from mipsc's '@main: 5 of 5 matmul-family ops run in the kernel'."""
    found = re.search(r"(\d+) of (\d+) matmul-family ops", report)
    return f"{found[1]}/{found[2]}" if found else "?"


# ---------------------------------------------------------------------------------------
# Check and time (one worker process per thread count)
# ---------------------------------------------------------------------------------------


def worker(spec: dict) -> list[dict]:
    import iree.runtime as rt

    from mipsc import runtime
    from mipsc.bench import settle_after, time_interleaved

    threads = spec["threads"]
    torch.set_num_threads(threads)
    rt.flags.parse_flags(f"--task_topology_group_count={threads}")
    rows = []
    for item in spec["models"]:
        model = MODELS[item["name"]]
        module, x = build(model)
        with torch.inference_mode():
            ref = module(x)
            ref_f32 = module.float()(x.float()) if model.dtype != torch.float32 else ref
            module.to(model.dtype)
        ref_np = to_numpy(ref).astype(np.float32)
        ref_f32_np = ref_f32.numpy().astype(np.float32)
        x_np = to_numpy(x)
        device = None
        calls: dict[str, Callable[[], object]] = {}
        errors: dict[str, dict] = {}
        for backend, vmfb in item["vmfb"].items():
            loaded = runtime.load(vmfb, parameters={PARAM_SCOPE: item["irpa"]})
            device = device or rt.get_device(runtime.DEVICE)
            dx = rt.asdevicearray(device, x_np)
            function = loaded.function("main")
            out = np.asarray(function(dx)).astype(np.float32)
            err = np.abs(out - ref_np)
            tol = model.tolerance
            ok = bool(np.all(err <= tol["atol"] + tol["rtol"] * np.abs(ref_np)))
            errors[backend] = {
                "ok": ok,
                "max_abs_err": float(err.max()),
                "max_abs_err_vs_f32": float(np.abs(out - ref_f32_np).max()),
            }
            if not ok:
                print(
                    f"{model.name}: {backend} does not match torch eager "
                    f"(max abs err {err.max():.3g}, tolerance {tol}); not timed",
                    file=sys.stderr,
                )
                continue
            calls[backend] = lambda f=function, dx=dx: f(dx)

        def eager(module: nn.Module = module, x: torch.Tensor = x) -> object:
            with torch.inference_mode():
                return module(x)

        calls["torch"] = eager
        samples = time_interleaved(
            calls, spec["min_seconds"], spec["max_samples"], settle=settle_after("torch", threads)
        )
        rows.append(
            {
                "model": model.name,
                "dtype": DTYPE_NAMES[model.dtype],
                "threads": threads,
                "ms": {b: 1e3 * statistics.median(t) for b, t in samples.items()},
                "samples": {b: len(t) for b, t in samples.items()},
                "check": errors,
                "torch_ref_vs_f32": float(np.abs(ref_np - ref_f32_np).max()),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------


def check_runtime_versions() -> None:
    """The timing processes run this venv's IREE runtime on .vmfb files and a plugin made for
    the project venv's: they must be the same release."""
    here = metadata.version("iree-base-runtime")
    there = run(
        [
            str(PROJECT_VENV / "bin" / "python"),
            "-c",
            "from importlib import metadata; print(metadata.version('iree-base-runtime'))",
        ],
        "reading the project venv's iree-base-runtime version",
    ).strip()
    if here != there:
        raise SystemExit(
            f"iree-base-runtime here is {here}, the project venv's is {there}: install "
            f"iree-base-runtime=={there} into {sys.prefix}"
        )


def fmt(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def table(rows: list[dict], kernels: dict[str, str]) -> str:
    lines = [
        "| model | dtype | threads | mipsc ms | iree-best ms | torch ms | mipsc / iree-best "
        "| mipsc / torch | matmuls in kernel | max err mipsc / iree-best |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ms = r["ms"]
        m, i, t = ms.get("mipsc"), ms.get("iree-best"), ms.get("torch")
        ratio_i = f"{m / i:.2f}" if m and i else "-"
        ratio_t = f"{m / t:.2f}" if m and t else "-"
        errs = " / ".join(
            f"{r['check'][b]['max_abs_err']:.1e}" + ("" if r["check"][b]["ok"] else " FAIL")
            for b in ("mipsc", "iree-best")
        )
        lines.append(
            f"| {r['model']} | {r['dtype']} | {r['threads']} | {fmt(m)} | {fmt(i)} | {fmt(t)} "
            f"| {ratio_i} | {ratio_t} | {kernels[r['model']]} | {errs} |"
        )
    lines.append("")
    lines.append("ratios are times: below 1 means mipsc is faster. Medians of interleaved bursts.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help=f"default: all of {list(MODELS)}")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=2.0, help="per backend and case")
    parser.add_argument("--max-samples", type=int, default=500)
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--keep", type=Path, help="keep exports and .vmfb files in this folder")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        json.dump(worker(json.loads(sys.stdin.read())), sys.stdout)
        return
    names = opts.models or list(MODELS)
    unknown = set(names) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; known: {list(MODELS)}")
    check_runtime_versions()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    log(
        f"torch {torch.__version__}: BLAS {blas[1] if blas else '?'}, oneDNN "
        f"{torch.backends.mkldnn.is_available()}, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}; "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}"
    )
    with tempfile.TemporaryDirectory(prefix="mipsc-models-") as tmp:
        work = opts.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        items, kernels = [], {}
        for name in names:
            model = MODELS[name]
            log(f"{name}: export")
            mlir, irpa = export(model, work)
            log(f"{name}: compile (mipsc, iree-best)")
            vmfb, report = compile_both(model, mlir, work)
            log(report)
            kernels[name] = kernel_summary(report)
            items.append(
                {
                    "name": name,
                    "irpa": str(irpa),
                    "vmfb": {k: str(v) for k, v in vmfb.items()},
                }
            )
        rows: list[dict] = []
        for count in opts.threads:
            log(f"{count} thread(s): checking and timing {', '.join(names)}")
            spec = {
                "threads": count,
                "models": items,
                "min_seconds": opts.seconds,
                "max_samples": opts.max_samples,
            }
            env = dict(os.environ, OMP_NUM_THREADS=str(count))
            proc = subprocess.run(
                [sys.executable, __file__, "--worker"],
                input=json.dumps(spec),
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if proc.stderr.strip():
                log(proc.stderr.strip()[-4000:])
            if proc.returncode != 0:
                raise SystemExit(f"worker for {count} thread(s) failed (exit {proc.returncode})")
            rows += json.loads(proc.stdout)
    rows.sort(key=lambda r: (names.index(r["model"]), r["threads"]))
    if opts.json:
        opts.json.write_text(json.dumps({"kernels": kernels, "rows": rows}, indent=1))
    print(table(rows, kernels))


if __name__ == "__main__":
    main()
