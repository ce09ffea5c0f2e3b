"""Real-size PyTorch models through mipsc, IREE's own codegen at its best, and torch eager.

The question a user asks: "is my model faster through mipsc?". For each model this tool

1. builds the torch module (seeded) and exports it with iree-turbine, weights externalized to
   an .irpa parameter file (scope ``model``), into a temporary directory;
2. compiles it twice with the project venv's tools: ``mipsc compile --report`` (the matmuls
   call the kernel plugin) and iree-compile with IREE's best flags (``mipsc.bench``'s
   ``IREE_BEST_FLAGS`` plus ``--iree-llvmcpu-target-cpu=host``, as ``mipsc bench`` does);
3. per thread count, in a process of its own: checks both modules against torch's eager output
   (a benchmark of a wrong answer is worthless) and times mipsc, iree-best and torch eager
   interleaved in bursts (``mipsc.bench.time_interleaved``), medians. Both modules run through
   ``mipsc.runtime`` on the process's one device (``mipsc.runtime.set_threads``: IREE's
   local-sync on 1 thread, local-task's workers on more), so IREE's codegen gets the same
   runtime setting as mipsc's.

For the decode steps (models that stream their weights, M = 1) it also measures this
machine's streaming-read memory bandwidth per thread count (``mipsc.peak.measure_bandwidth``,
before and after the timing process, the larger kept) and reports the weight bytes per second
each backend reached (weights / median time) as a share of it, with the same read on 4 KiB
pages beside it (where the weights of all three lie: huge pages are only for buffers that ask
for them, and a read of 4 KiB pages is slower). Where IREE's best flags fail to
compile a model, iree-best is IREE's default flags, and the output says so.

Run it with the project venv (``make install`` puts torch and iree-turbine there), or with any
venv that has torch, iree-turbine and (for the timing processes) mipsc installed editable on
the same iree-base-runtime 3.13 as the project venv::

    .venv/bin/python tools/bench_models.py                  # all models, 1 and 2 threads
    .venv/bin/python tools/bench_models.py mlp mlp_bf16 --threads 1 --seconds 1
    .venv/bin/python tools/bench_models.py llama_decode --threads 1 2

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
    inputs: Callable[[], tuple[torch.Tensor, ...]]
    """The example inputs in f32 (cast to `dtype`), made after seeding: called in every
    process, so they are the same everywhere."""
    dtype: torch.dtype = torch.float32
    tolerance: dict[str, float] = field(default_factory=lambda: {"atol": 1e-3, "rtol": 1e-3})
    compile_flags: list[str] = field(default_factory=list)
    """Extra iree-compile flags, given to both compiles."""
    streams_weights: bool = False
    """A decode step (M = 1): its time is bound by reading the weights, so the report gives
    the weight bytes per second it reached, as a share of the measured memory bandwidth."""
    experiment: bool = False
    """A variant for an experiment (not one of issue 16's models): run only when named."""


def randn(*shape: int) -> Callable[[], tuple[torch.Tensor, ...]]:
    return lambda: (torch.randn(*shape),)


def encoder_layer() -> nn.Module:
    return nn.TransformerEncoderLayer(
        d_model=768, nhead=12, dim_feedforward=3072, batch_first=True
    ).eval()


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(1024, 4096), nn.GELU(), nn.Linear(4096, 1024)).eval()


# ---------------------------------------------------------------------------------------
# A Llama-style decoder layer, for a prompt (prefill) and for one new token (decode)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LlamaConfig:
    """TinyLlama-1.1B's layer (hidden 2048, 32 query heads of 64 on 4 key/value heads,
    SiLU-gated MLP of 5632, RMSNorm eps 1e-5, rotary base 10000): 44 M weights, 176 MB in f32,
    more than any L3 cache, so a decode step streams them from memory."""

    hidden: int = 2048
    heads: int = 32
    kv_heads: int = 4
    intermediate: int = 5632
    eps: float = 1e-5
    rope_base: float = 10000.0
    prompt: int = 128
    """Tokens of the prefill."""
    cached: int = 256
    """Positions in the KV cache of the decode step (the new token is the next one)."""

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


LLAMA = LlamaConfig()


def rotary_tables(cfg: LlamaConfig, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [len(positions), head_dim] of the rotary embedding, as HF's
    LlamaRotaryEmbedding makes them (each frequency twice: halves, not interleaved pairs)."""
    inv_freq = 1.0 / cfg.rope_base ** (torch.arange(0, cfg.head_dim, 2).float() / cfg.head_dim)
    angles = torch.outer(positions.float(), inv_freq)
    angles = torch.cat([angles, angles], -1)
    return angles.cos(), angles.sin()


class LlamaDecoderLayer(nn.Module):
    """One Llama decoder layer as HF's LlamaDecoderLayer computes it: x + attention(RMSNorm(x)),
    then + MLP(RMSNorm(.)); causal grouped-query attention through scaled_dot_product_attention
    with enable_gqa (no repeated key/value heads), rotary embeddings from the (cos, sin) the
    model computes once for all its layers (inputs here, as in HF), no biases. The prefill:
    x [B, S, hidden] -> [B, S, hidden]."""

    def __init__(self, cfg: LlamaConfig = LLAMA) -> None:
        super().__init__()
        self.cfg = cfg
        kv = cfg.kv_heads * cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden, cfg.hidden, bias=False)
        self.k_proj = nn.Linear(cfg.hidden, kv, bias=False)
        self.v_proj = nn.Linear(cfg.hidden, kv, bias=False)
        self.o_proj = nn.Linear(cfg.hidden, cfg.hidden, bias=False)
        self.gate_proj = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.up_proj = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate, cfg.hidden, bias=False)
        self.input_norm = nn.Parameter(1.0 + 0.1 * torch.randn(cfg.hidden))
        self.post_attention_norm = nn.Parameter(1.0 + 0.1 * torch.randn(cfg.hidden))

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """HF's LlamaRMSNorm: computed in f32, the result cast back before the weight."""
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.cfg.eps)
        return weight * x32.to(x.dtype)

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rotated * sin

    def heads(
        self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """q [B, H, S, D] and k, v [B, Hkv, S, D] of the normed input h, q and k rotated."""
        b, s, _ = h.shape
        d = self.cfg.head_dim
        q = self.q_proj(h).view(b, s, self.cfg.heads, d).transpose(1, 2)
        k = self.k_proj(h).view(b, s, self.cfg.kv_heads, d).transpose(1, 2)
        v = self.v_proj(h).view(b, s, self.cfg.kv_heads, d).transpose(1, 2)
        return self.rotate(q, cos, sin), self.rotate(k, cos, sin), v

    def finish(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """The residual adds, the output projection and the gated MLP after attention."""
        b, s, _ = x.shape
        x = x + self.o_proj(attended.transpose(1, 2).reshape(b, s, self.cfg.hidden))
        h = self.rms_norm(x, self.post_attention_norm)
        return x + self.down_proj(nn.functional.silu(self.gate_proj(h)) * self.up_proj(h))

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        q, k, v = self.heads(self.rms_norm(x, self.input_norm), cos, sin)
        attended = nn.functional.scaled_dot_product_attention(
            q, k, v, is_causal=True, enable_gqa=True
        )
        return self.finish(x, attended)


class LlamaDecodeStep(LlamaDecoderLayer):
    """The same layer on one new token, as a serving loop calls it: x [B, 1, hidden], its
    (cos, sin) [1, D], and the cache of the earlier positions' keys and values [B, Hkv, P, D]
    -> (the layer's output [B, 1, hidden], the new token's key and value [B, Hkv, 1, D] for
    the loop to append). The token attends to every cached position and itself: no mask."""

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = self.heads(self.rms_norm(x, self.input_norm), cos, sin)
        keys, values = torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2)
        attended = nn.functional.scaled_dot_product_attention(q, keys, values, enable_gqa=True)
        return self.finish(x, attended), k, v


class SiblingsFused:
    """A mixin of the llama layers that computes the products reading one activation as ONE
    product on the concatenated weights, then slices the result (the same math, up to the sum
    order of the kernels): q/k/v as `qkv_proj` [hidden + 2 kv, hidden] split in three, gate/up
    as `gate_up_proj` [2 intermediate, hidden] chunked in two. The separate projections stay
    as (unused) parameters, so that the parameter file serves both this variant and the plain
    layer (one .irpa for an A/B of the two .vmfb files), and the seeded inputs are the same."""

    fuse_gate_up: bool = True
    """False: only q/k/v are one product (gate/up stay two, the gate's SwiGLU fused on it)."""

    def fuse_siblings(self) -> None:
        layer: LlamaDecoderLayer = self  # type: ignore[assignment]
        with torch.no_grad():
            self.qkv_proj = nn.Parameter(  # type: ignore[attr-defined]
                torch.cat([layer.q_proj.weight, layer.k_proj.weight, layer.v_proj.weight])
            )
            self.gate_up_proj = nn.Parameter(  # type: ignore[attr-defined]
                torch.cat([layer.gate_proj.weight, layer.up_proj.weight])
            )
        unused = ("q_proj", "k_proj", "v_proj")
        unused += ("gate_proj", "up_proj") if self.fuse_gate_up else ("gate_up_proj",)
        self.streamed_bytes = sum(  # type: ignore[attr-defined]
            p.numel() * p.element_size()
            for name, p in layer.named_parameters()
            if name.split(".")[0] not in unused
        )

    def heads(
        self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        layer: LlamaDecoderLayer = self  # type: ignore[assignment]
        cfg, (b, s, _) = layer.cfg, h.shape
        kv = cfg.kv_heads * cfg.head_dim
        qkv = nn.functional.linear(h, self.qkv_proj)  # type: ignore[attr-defined]
        q, k, v = qkv.split([cfg.hidden, kv, kv], -1)
        q = q.reshape(b, s, cfg.heads, cfg.head_dim).transpose(1, 2)
        k = k.reshape(b, s, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        v = v.reshape(b, s, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        return layer.rotate(q, cos, sin), layer.rotate(k, cos, sin), v

    def finish(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        if not self.fuse_gate_up:
            return super().finish(x, attended)  # type: ignore[misc]
        layer: LlamaDecoderLayer = self  # type: ignore[assignment]
        b, s, _ = x.shape
        x = x + layer.o_proj(attended.transpose(1, 2).reshape(b, s, layer.cfg.hidden))
        h = layer.rms_norm(x, layer.post_attention_norm)
        gate, up = nn.functional.linear(h, self.gate_up_proj).chunk(2, -1)  # type: ignore[attr-defined]
        return x + layer.down_proj(nn.functional.silu(gate) * up)


class LlamaFusedLayer(SiblingsFused, LlamaDecoderLayer):
    """The prefill layer with q/k/v and gate/up each one product (SiblingsFused)."""

    def __init__(self, cfg: LlamaConfig = LLAMA) -> None:
        LlamaDecoderLayer.__init__(self, cfg)
        self.fuse_siblings()


class LlamaFusedDecodeStep(SiblingsFused, LlamaDecodeStep):
    """The decode step with q/k/v and gate/up each one product (SiblingsFused)."""

    def __init__(self, cfg: LlamaConfig = LLAMA) -> None:
        LlamaDecodeStep.__init__(self, cfg)
        self.fuse_siblings()


class LlamaQkvFusedDecodeStep(LlamaFusedDecodeStep):
    """The decode step with q/k/v one product, gate/up two (the gate's SwiGLU fused on it)."""

    fuse_gate_up = False


def llama_prefill_inputs(cfg: LlamaConfig = LLAMA) -> tuple[torch.Tensor, ...]:
    cos, sin = rotary_tables(cfg, torch.arange(cfg.prompt))
    return torch.randn(1, cfg.prompt, cfg.hidden), cos, sin


def llama_decode_inputs(cfg: LlamaConfig = LLAMA) -> tuple[torch.Tensor, ...]:
    """The token after `cfg.cached` positions; the cache holds keys as a layer makes them
    (rotated, of unit-size entries)."""
    cos, sin = rotary_tables(cfg, torch.tensor([cfg.cached]))
    cache = (1, cfg.kv_heads, cfg.cached, cfg.head_dim)
    return torch.randn(1, 1, cfg.hidden), cos, sin, torch.randn(*cache), torch.randn(*cache)


LLAMA_BF16_TOLERANCE = {"atol": 6e-2, "rtol": 2e-2}
"""bf16 layers: torch rounds to bf16 after every op, mipsc and IREE where their fusions end,
so outputs of size ~4 (the residual stream) differ by a few bf16 ulps (2^-6 each)."""

MODELS: dict[str, Model] = {
    m.name: m
    for m in [
        Model(
            "encoder",
            "nn.TransformerEncoderLayer(768, 12 heads, ff 3072, batch_first), eval, x [1,128,768]",
            encoder_layer,
            randn(1, 128, 768),
        ),
        Model(
            "mlp",
            "Linear(1024->4096) -> GELU -> Linear(4096->1024), x [64,1024]",
            mlp,
            randn(64, 1024),
        ),
        Model(
            "mlp_bf16",
            "the mlp in bfloat16 (reference: torch CPU in bf16)",
            mlp,
            randn(64, 1024),
            dtype=torch.bfloat16,
            # as tests/data/manifest.json's mlp_bf16
            tolerance={"atol": 2e-2, "rtol": 2e-2},
        ),
        Model(
            "encoder_b8",
            "the encoder layer on x [8,128,768]",
            encoder_layer,
            randn(8, 128, 768),
        ),
        Model(
            "llama",
            f"Llama decoder layer (hidden {LLAMA.hidden}, {LLAMA.heads} heads on "
            f"{LLAMA.kv_heads} key/value heads, MLP {LLAMA.intermediate}), prefill of a "
            f"{LLAMA.prompt}-token prompt",
            LlamaDecoderLayer,
            llama_prefill_inputs,
        ),
        Model(
            "llama_bf16",
            "the llama prefill in bfloat16 (reference: torch CPU in bf16)",
            LlamaDecoderLayer,
            llama_prefill_inputs,
            dtype=torch.bfloat16,
            tolerance=LLAMA_BF16_TOLERANCE,
        ),
        Model(
            "llama_decode",
            f"the llama layer's decode step: 1 token against a KV cache of {LLAMA.cached} "
            "positions (inputs), returning its output and the token's key and value",
            LlamaDecodeStep,
            llama_decode_inputs,
            streams_weights=True,
        ),
        Model(
            "llama_fused",
            "the llama prefill with q/k/v and gate/up each one product on concatenated "
            "weights, then sliced (same math; its .irpa also holds the plain layer's weights)",
            LlamaFusedLayer,
            llama_prefill_inputs,
            experiment=True,
        ),
        Model(
            "llama_decode_fused",
            "the decode step with q/k/v and gate/up each one product, as llama_fused",
            LlamaFusedDecodeStep,
            llama_decode_inputs,
            streams_weights=True,
            experiment=True,
        ),
        Model(
            "llama_decode_fused_qkv",
            "the decode step with q/k/v one product, gate and up two, as llama_decode",
            LlamaQkvFusedDecodeStep,
            llama_decode_inputs,
            streams_weights=True,
            experiment=True,
        ),
        Model(
            "llama_decode_bf16",
            "the decode step in bfloat16",
            LlamaDecodeStep,
            llama_decode_inputs,
            dtype=torch.bfloat16,
            tolerance=LLAMA_BF16_TOLERANCE,
            streams_weights=True,
        ),
    ]
}

DEFAULT_MODELS = [name for name, model in MODELS.items() if not model.experiment]
"""The models run when none is named: issue 16's table."""

DTYPE_NAMES = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16"}


def build(model: Model) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module and its inputs, the same in every process (seeded)."""
    torch.manual_seed(SEED)
    module = model.build().eval().to(model.dtype)
    inputs = tuple(x.to(model.dtype) for x in model.inputs())
    return module, inputs


def weight_bytes(module: nn.Module) -> int:
    """The bytes of the module's parameters that a call reads: what it streams at least once
    (a module's `streamed_bytes` where it holds parameters it does not use)."""
    if (streamed := getattr(module, "streamed_bytes", None)) is not None:
        return int(streamed)
    return sum(p.numel() * p.element_size() for p in module.parameters())


def outputs_of(result: object) -> list[torch.Tensor]:
    return list(result) if isinstance(result, (tuple, list)) else [result]  # type: ignore[list-item]


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

    module, inputs = build(model)
    aot.externalize_module_parameters(module)
    exported = aot.export(module, args=inputs)
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


IREE_COMPILE = """
import sys
from pathlib import Path
from mipsc.backend.iree_compile import compile_mlir
from mipsc.bench import IREE_BEST_FLAGS
best = sys.argv[3] == "best"
compile_mlir(Path(sys.argv[1]).read_text(), Path(sys.argv[2]),
             extra_flags=(*(IREE_BEST_FLAGS if best else ()), *sys.argv[4:]))
"""


def compile_mipsc(model: Model, mlir: Path, work: Path) -> tuple[Path, str]:
    """mipsc's .vmfb, compiled by the project venv, and its --report."""
    vmfb = work / f"{model.name}.mipsc.vmfb"
    command = [str(PROJECT_VENV / "bin" / "mipsc"), "compile", str(mlir), "-o", str(vmfb)]
    report = run([*command, "--report", *model.compile_flags], f"mipsc compile {model.name}")
    return vmfb, report.strip()


def compile_iree(model: Model, mlir: Path, work: Path) -> tuple[Path, str | None]:
    """IREE's own codegen with its best flags; where those fail to compile the model (an IREE
    bug: 3.13's data tiling cannot compile a causal grouped-query attention), with its default
    flags instead, and why. The project venv's iree-compile, as mipsc's."""
    from mipsc.bench import IREE_BEST_FLAGS

    vmfb = work / f"{model.name}.iree-best.vmfb"
    command = [str(PROJECT_VENV / "bin" / "python"), "-c", IREE_COMPILE, str(mlir), str(vmfb)]
    try:
        run([*command, "best", *model.compile_flags], f"iree-compile (best flags) {model.name}")
        return vmfb, None
    except SystemExit as failed:
        found = re.search(r"(?:MipscError|error): (.*)", str(failed))
        reason = found[1].strip() if found else str(failed).splitlines()[0]
    run([*command, "default", *model.compile_flags], f"iree-compile (default flags) {model.name}")
    return vmfb, f"with {' '.join(IREE_BEST_FLAGS)} iree-compile failed ({reason})"


def kernel_summary(report: str) -> str:
    """'5/5' from mipsc's '@main: 5 of 5 matmul-family ops run in the kernel'."""
    found = re.search(r"(\d+) of (\d+) matmul-family ops", report)
    return f"{found[1]}/{found[2]}" if found else "?"


# ---------------------------------------------------------------------------------------
# Check and time (one worker process per thread count)
# ---------------------------------------------------------------------------------------


def references(
    model: Model, module: nn.Module, inputs: tuple[torch.Tensor, ...]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """torch eager's outputs in the model's dtype, and in f32 (the same module and inputs cast
    up), as f32 arrays."""
    with torch.inference_mode():
        ref = outputs_of(module(*inputs))
        if model.dtype == torch.float32:
            ref_f32 = ref
        else:
            ref_f32 = outputs_of(module.float()(*(x.float() for x in inputs)))
            module.to(model.dtype)
    as_f32 = [to_numpy(t).astype(np.float32) for t in ref]
    return as_f32, [to_numpy(t).astype(np.float32) for t in ref_f32]


def check(
    outs: list[np.ndarray], ref: list[np.ndarray], ref_f32: list[np.ndarray], tol: dict
) -> dict:
    """Whether every output is within `tol` of torch's, and the largest errors."""
    ok, err, err_f32 = len(outs) == len(ref), 0.0, 0.0
    for out, want, want_f32 in zip(outs, ref, ref_f32, strict=False):
        diff = np.abs(out - want)
        ok = ok and out.shape == want.shape
        ok = ok and bool(np.all(diff <= tol["atol"] + tol["rtol"] * np.abs(want)))
        err = max(err, float(diff.max()))
        err_f32 = max(err_f32, float(np.abs(out - want_f32).max()))
    return {"ok": ok, "max_abs_err": err, "max_abs_err_vs_f32": err_f32}


def worker(spec: dict) -> list[dict]:
    import iree.runtime as rt

    from mipsc import runtime
    from mipsc.bench import settle_after, time_interleaved

    threads = spec["threads"]
    torch.set_num_threads(threads)
    # mipsc's and IREE's modules both run through mipsc.runtime in this process: one device,
    # one setting (local-sync on 1 thread, local-task's workers on more, the caller waiting
    # as mipsc.runtime.waiting says).
    runtime.set_threads(threads)
    rows = []
    for item in spec["models"]:
        model = MODELS[item["name"]]
        module, inputs = build(model)
        ref, ref_f32 = references(model, module, inputs)
        device = None
        calls: dict[str, Callable[[], object]] = {}
        errors: dict[str, dict] = {}
        for backend, vmfb in item["vmfb"].items():
            loaded = runtime.load(vmfb, parameters={PARAM_SCOPE: item["irpa"]})
            device = device or runtime.device()
            args = [rt.asdevicearray(device, to_numpy(x)) for x in inputs]
            function = loaded.function("main")
            result = function(*args)
            outs = [np.asarray(o).astype(np.float32) for o in outputs_of(result)]
            errors[backend] = check(outs, ref, ref_f32, model.tolerance)
            if not errors[backend]["ok"]:
                print(
                    f"{model.name}: {backend} does not match torch eager (max abs err "
                    f"{errors[backend]['max_abs_err']:.3g}, tolerance {model.tolerance}); "
                    "not timed",
                    file=sys.stderr,
                )
                continue
            calls[backend] = lambda f=function, args=args: f(*args)

        def eager(module: nn.Module = module, inputs: tuple = inputs) -> object:
            with torch.inference_mode():
                return module(*inputs)

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
                "torch_ref_vs_f32": max(
                    float(np.abs(a - b).max()) for a, b in zip(ref, ref_f32, strict=True)
                ),
                "weight_bytes": weight_bytes(module),
                "device": runtime.device_name(),
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
    devices = sorted({(r["threads"], r.get("device", "")) for r in rows})
    lines.append(
        "mipsc and iree-best run in one process per thread count through mipsc.runtime, on the "
        f"same IREE device ({', '.join(f'{t} thread(s): {d}' for t, d in devices)}), the "
        "caller of a local-task call of 1 ms or more waiting as SCHED_BATCH "
        "(mipsc.runtime.waiting)."
    )
    return "\n".join(lines)


def streaming_table(
    rows: list[dict],
    bandwidth: dict[int, tuple[float, float, float] | None],
    bandwidth_4k: dict[int, tuple[float, float, float] | None],
) -> str:
    """For the models that stream their weights (decode steps): the weight bytes each backend
    read per second (weights / median time) and its share of the measured bandwidth (huge
    pages; the fastest pass, and the median pass, which compares with a median time), beside
    the bandwidth of the same read on anonymous 4 KiB pages, where IREE's packed copies lie
    without huge pages (mipsc.peak.measure_bandwidth), and the CPUs the read's threads got."""
    lines = [
        "| model | threads | weights MB | read bandwidth GB/s, fastest / median pass "
        "(4 KiB pages) | CPUs given | mipsc GB/s (share) | iree-best GB/s (share) "
        "| torch GB/s (share) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not MODELS[r["model"]].streams_weights:
            continue
        peak = bandwidth.get(r["threads"])
        cells = []
        for backend in ("mipsc", "iree-best", "torch"):
            ms = r["ms"].get(backend)
            if ms is None:
                cells.append("-")
                continue
            rate = r["weight_bytes"] / (ms * 1e-3) / 1e9
            share = f" ({rate / peak[0]:.0%} / {rate / peak[1]:.0%})" if peak else ""
            cells.append(f"{rate:.1f}{share}")
        small = bandwidth_4k.get(r["threads"])
        lines.append(
            f"| {r['model']} | {r['threads']} | {r['weight_bytes'] / 1e6:.0f} "
            f"| {f'{peak[0]:.1f} / {peak[1]:.1f}' if peak else '-'} "
            f"({f'{small[0]:.1f} / {small[1]:.1f}' if small else '-'}) "
            f"| {f'{peak[2]:.2f}' if peak else '-'} | {' | '.join(cells)} |"
        )
    lines.append("")
    lines.append(
        "read bandwidth: mipsc.peak.measure_bandwidth with that many threads, the larger of two "
        "measurements (before and after the timing process), its fastest and its median pass; "
        "in brackets the same on anonymous 4 KiB pages. Shares are of the huge-page figures, "
        "fastest / median pass (the median compares with the models' median times). CPUs "
        "given: the CPUs that huge-page read's threads got (its CPU time over its wall time; "
        "fewer than the threads where other sessions share the cores: Linux's autogroup "
        "scheduling gives each busy session an equal share, so on 2 cores with two other busy "
        "sessions a second thread adds no CPU, and 2-thread times say little)."
    )
    return "\n".join(lines)


def measured_bandwidth(threads: int, huge_pages: bool = True) -> tuple[float, float, float] | None:
    """GB/s of a streaming read with `threads` threads (mipsc.peak): its fastest and its median
    pass, and the CPUs its threads got (fewer than `threads` on a shared machine); None where
    unmeasurable."""
    from mipsc.peak import measure_bandwidth

    found = measure_bandwidth(threads, huge_pages=huge_pages)
    return (found.gbytes_per_s, found.median_gbytes_per_s, found.cpus) if found else None


def larger(*found: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
    """The measurement of the two with the faster best pass (None when neither was made)."""
    return max(filter(None, found), default=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "models",
        nargs="*",
        help=f"default: {DEFAULT_MODELS}; also known: "
        f"{[n for n in MODELS if n not in DEFAULT_MODELS]}",
    )
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
    names = opts.models or DEFAULT_MODELS
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
        items, kernels, notes = [], {}, {}
        for name in names:
            model = MODELS[name]
            log(f"{name}: export")
            mlir, irpa = export(model, work)
            log(f"{name}: compile (mipsc, iree-best)")
            mipsc_vmfb, report = compile_mipsc(model, mlir, work)
            log(report)
            kernels[name] = kernel_summary(report)
            iree_vmfb, iree_note = compile_iree(model, mlir, work)
            if iree_note:
                notes[name] = f"iree-best of {name} is IREE's default flags: {iree_note}"
                log(notes[name])
            vmfb = {"mipsc": str(mipsc_vmfb), "iree-best": str(iree_vmfb)}
            items.append({"name": name, "irpa": str(irpa), "vmfb": vmfb})
        rows: list[dict] = []
        streaming = any(MODELS[n].streams_weights for n in names)
        bandwidth: dict[int, tuple[float, float, float] | None] = {}
        bandwidth_4k: dict[int, tuple[float, float, float] | None] = {}
        for count in opts.threads:
            if streaming:
                bandwidth[count] = measured_bandwidth(count)
                bandwidth_4k[count] = measured_bandwidth(count, huge_pages=False)
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
            if streaming:
                bandwidth[count] = larger(bandwidth[count], measured_bandwidth(count))
                bandwidth_4k[count] = larger(
                    bandwidth_4k[count], measured_bandwidth(count, huge_pages=False)
                )
                log(
                    f"{count} thread(s): streaming-read bandwidth {bandwidth[count]} GB/s "
                    f"({bandwidth_4k[count]} on 4 KiB pages; fastest and median pass, CPUs given)"
                )
    rows.sort(key=lambda r: (names.index(r["model"]), r["threads"]))
    if opts.json:
        opts.json.write_text(
            json.dumps(
                {
                    "kernels": kernels,
                    "rows": rows,
                    "bandwidth": bandwidth,
                    "bandwidth_4k": bandwidth_4k,
                    "notes": notes,
                },
                indent=1,
            )
        )
    print(table(rows, kernels))
    for note in notes.values():
        print(f"- {note}")
    if streaming:
        print()
        print(streaming_table(rows, bandwidth, bandwidth_4k))


if __name__ == "__main__":
    main()
