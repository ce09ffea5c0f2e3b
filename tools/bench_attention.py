"""Attention alone through mipsc (fused and decomposed), IREE's own attention, and torch eager.

`scaled_dot_product_attention` in the forms real models use — plain, causal, a float mask,
grouped-query heads (32 query heads on 4 key/value heads) — at head dim 64 and sequence
lengths 128 (an encoder, a prefill) to 1024, in f32 and bf16. Per case it exports the module
with iree-turbine and compiles it three times: `mipsc compile` (the fused `mips.attention`
kernel where the form allows), `mipsc compile --decompose-attention` (the two products in the
kernel, torch's softmax between as IREE dispatches: the path before the fused kernel), and
iree-compile alone (IREE's own `iree_linalg_ext.attention`, with IREE's best flags, or its
default ones where those fail). Then, per thread count in a process of its own, it checks
each against torch eager and times all four interleaved (tools/bench_models.py's worker:
`mipsc.bench.time_interleaved`, medians).

    .venv/bin/python tools/bench_attention.py                       # every case, 1 and 2 threads
    .venv/bin/python tools/bench_attention.py causal_1024 --threads 1 --seconds 1
    .venv/bin/python tools/bench_attention.py encoder llama    # bench_models' models with attention

Nothing is written to the repository; ``--keep DIR`` keeps the exports and .vmfb files.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_models
from bench_models import Model, compile_iree, export, fmt, run

BF16_TOLERANCE = {"atol": 2e-2, "rtol": 2e-2}
"""bf16 outputs (|o| < ~1): torch rounds P to bf16 before its second product, mipsc keeps it
in f32, so they differ by a few bf16 ulps."""


class Attention(nn.Module):
    """`F.scaled_dot_product_attention(q, k, v[, mask])` with fixed flags."""

    def __init__(self, causal: bool = False, gqa: bool = False) -> None:
        super().__init__()
        self.causal, self.gqa = causal, gqa

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=self.causal, enable_gqa=self.gqa
        )


def qkv(
    heads: int, kv_heads: int, length: int, masked: bool = False, depth: int = 64
) -> Callable[[], tuple[torch.Tensor, ...]]:
    """q [1, heads, L, 64], k and v [1, kv_heads, L, 64], and an additive float mask [1, 1, L,
    L] (-inf on a random tenth of the keys, no row fully hidden)."""

    def make() -> tuple[torch.Tensor, ...]:
        q = torch.randn(1, heads, length, depth)
        k, v = (torch.randn(1, kv_heads, length, depth) for _ in range(2))
        if not masked:
            return q, k, v
        hidden = torch.rand(1, 1, length, length) < 0.1
        hidden[..., 0] = False
        return q, k, v, torch.zeros(1, 1, length, length).masked_fill(hidden, float("-inf"))

    return make


def cases() -> list[Model]:
    found = []
    for length in (128, 512, 1024):
        for dtype, suffix in ((torch.float32, ""), (torch.bfloat16, "_bf16")):
            tol = BF16_TOLERANCE if dtype == torch.bfloat16 else {"atol": 1e-4, "rtol": 1e-4}
            specs = [
                ("plain", "8 heads", Attention, qkv(8, 8, length)),
                ("causal", "8 heads, causal", lambda: Attention(causal=True), qkv(8, 8, length)),
                ("masked", "8 heads, float mask", Attention, qkv(8, 8, length, masked=True)),
                ("gqa", "32 heads on 4 key/value heads, causal",
                 lambda: Attention(causal=True, gqa=True), qkv(32, 4, length)),
            ]  # fmt: skip
            for form, doc, build, inputs in specs:
                name, about = f"{form}_{length}{suffix}", f"{doc}, L = S = {length}, head dim 64"
                found.append(Model(name, about, build, inputs, dtype=dtype, tolerance=tol))
    return found


MODELS = {m.name: m for m in cases()}
bench_models.MODELS.update(MODELS)  # the worker looks models up there
REAL_MODELS = ("encoder", "encoder_b8", "llama", "llama_bf16")
"""tools/bench_models.py's models with attention, timed the same way (fused against decomposed)."""
MODELS.update({name: bench_models.MODELS[name] for name in REAL_MODELS})

BACKENDS = ("mipsc", "mipsc-decomposed", "iree", "torch")


def compile_mipsc(model: Model, mlir: Path, work: Path, flags: list[str], tag: str) -> Path:
    vmfb = work / f"{model.name}.{tag}.vmfb"
    mipsc = str(bench_models.PROJECT_VENV / "bin" / "mipsc")
    report = run([mipsc, "compile", str(mlir), "-o", str(vmfb), "--report", *flags],
                 f"mipsc compile {model.name} {tag}")  # fmt: skip
    print(report.strip(), file=sys.stderr)
    return vmfb


def table(rows: list[dict]) -> str:
    lines = [
        "| case | dtype | threads | mipsc ms | decomposed ms | iree ms | torch ms "
        "| mipsc / decomposed | mipsc / iree | mipsc / torch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ms = r["ms"]
        m = ms.get("mipsc")

        def ratio(other: str, m: float | None = m, ms: dict = ms) -> str:
            o = ms.get(other)
            return f"{m / o:.2f}" if m and o else "-"

        lines.append(
            f"| {r['model']} | {r['dtype']} | {r['threads']} | {fmt(m)} "
            f"| {fmt(ms.get('mipsc-decomposed'))} | {fmt(ms.get('iree'))} "
            f"| {fmt(ms.get('torch'))} | {ratio('mipsc-decomposed')} | {ratio('iree')} "
            f"| {ratio('torch')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help=f"default: the attention cases; any of {list(MODELS)}")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=1.0, help="per backend and case")
    parser.add_argument("--max-samples", type=int, default=300)
    parser.add_argument("--keep", type=Path, help="keep exports and .vmfb files in this folder")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        json.dump(bench_models.worker(json.loads(sys.stdin.read())), sys.stdout)
        return
    names = opts.cases or [name for name in MODELS if name not in REAL_MODELS]
    if unknown := set(names) - set(MODELS):
        parser.error(f"unknown cases {sorted(unknown)}; known: {list(MODELS)}")
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="mipsc-attention-") as tmp:
        work = opts.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        items = []
        for name in names:
            model = MODELS[name]
            mlir, irpa = export(model, work)
            vmfb = {
                "mipsc": str(compile_mipsc(model, mlir, work, [], "mipsc")),
                "mipsc-decomposed": str(
                    compile_mipsc(model, mlir, work, ["--decompose-attention"], "decomposed")
                ),
                "iree": str(compile_iree(model, mlir, work)[0]),
            }
            items.append({"name": name, "irpa": str(irpa), "vmfb": vmfb})
        rows: list[dict] = []
        for count in opts.threads:
            spec = {"threads": count, "models": items, "min_seconds": opts.seconds,
                    "max_samples": opts.max_samples}  # fmt: skip
            proc = subprocess.run(
                [sys.executable, __file__, "--worker"], input=json.dumps(spec),
                capture_output=True, text=True, check=False,
                env=dict(os.environ, OMP_NUM_THREADS=str(count)),
            )  # fmt: skip
            if proc.stderr.strip():
                print(proc.stderr.strip()[-4000:], file=sys.stderr)
            if proc.returncode != 0:
                raise SystemExit(f"worker for {count} thread(s) failed (exit {proc.returncode})")
            rows += json.loads(proc.stdout)
    rows.sort(key=lambda r: (names.index(r["model"]), r["threads"]))
    print(table(rows))


if __name__ == "__main__":
    main()
