"""Regenerate tests/data: small real PyTorch models exported to torch-dialect MLIR.

Why this exists: mipsc's tests must parse exactly the IR that iree-turbine emits (its op
spellings, `dense_resource` weight blobs, `util.global` parameters, dynamic dims) without
the test suite ever importing torch. This script is the only place torch is used; it writes
for every model

* ``<name>.mlir``  -- ``iree.turbine.aot.export(...)`` printed as text, unlowered;
* ``<name>.npz``   -- inputs ``arg0, arg1, ...`` and torch's eager outputs ``out0, ...``;
* ``<name>.irpa``  -- only for models whose weights are externalized parameters;
* ``manifest.json`` -- one entry per model (signature, dtypes, how weights appear).

Run it with the export venv (torch==2.13.0 + iree-turbine), not the project venv::

    .venv-export/bin/python tools/export_models.py            # all models
    .venv-export/bin/python tools/export_models.py mlp attention

Then check the files against the project's IREE with ``tools/check_exports.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from iree.turbine import aot
from torch import nn
from torch.export import Dim

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "data"
SEED = 0
# Scope name turbine gives externalized parameters; iree-run-module needs
# `--parameters=<scope>=<file>.irpa` to bind them.
PARAM_SCOPE = "model"
BF16_NOTE = (
    "bfloat16 tensors are stored as their uint16 bit patterns (numpy has no bfloat16): "
    "arr.astype(np.uint32) << 16 viewed as float32 gives the values"
)

BF16_INLINE_ISSUE = (
    "IREE 3.13 llvm-cpu: a bf16 dense_resource constant inlined into a dispatch makes "
    "iree-convert-bf16-arith-to-f32 fail ('arith.constant' op failed to verify that all of "
    "{value, result} have same type); --iree-flow-inline-constants-max-byte-length=0 avoids it"
)

# torch.export's pytree code emits this FutureWarning on every export; it is noise here.
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")


@dataclass
class Case:
    """One model to export: the module, how to trace it and which inputs to record."""

    name: str
    doc: str
    module: nn.Module
    export_args: tuple[torch.Tensor, ...]
    # Inputs recorded in the .npz. For dynamic models these deliberately differ in shape
    # from the traced example so the test data exercises the dynamic dims.
    run_args: tuple[torch.Tensor, ...] | None = None
    dynamic_shapes: Any = None
    externalize_params: bool = False
    symbolic_shapes: bool = False
    tolerance: dict[str, float] = field(default_factory=lambda: {"atol": 1e-4, "rtol": 1e-4})
    # Extra iree-compile flags the file needs with IREE 3.13, and why (recorded in the manifest).
    compile_flags: list[str] = field(default_factory=list)
    known_issue: str = ""


# ---------------------------------------------------------------------------------------
# Modules. Plain functions are wrapped so torch.export sees an nn.Module.
# ---------------------------------------------------------------------------------------


class Fn(nn.Module):
    """Wraps a free function of tensors as a module (no parameters)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: torch.Tensor) -> Any:
        return self.fn(*args)


class Mm(nn.Module):
    """torch.mm with named arguments, so dynamic_shapes can refer to them by name."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.mm(a, b)


class MmChain(nn.Module):
    """mm -> add -> relu -> mm; the one-element `shift` shows an inline dense<> literal."""

    def __init__(self) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.tensor([0.25]))

    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = torch.relu(torch.mm(a, b) + self.shift)
        return torch.mm(h, c)


class Attention(nn.Module):
    """Single-head self-attention written out by hand (no fused SDPA)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        scores = (q @ k.transpose(-2, -1)) * self.scale
        return self.out(torch.softmax(scores, dim=-1) @ v)


class LlamaLayer(nn.Module):
    """A Llama-style decoder layer: RMSNorm, rotary embeddings, causal grouped-query attention
    (scaled_dot_product_attention with is_causal and enable_gqa), a SiLU-gated MLP, no biases."""

    def __init__(self, dim: int = 32, heads: int = 4, kv_heads: int = 2, seq: int = 16) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.v = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)
        self.gate = nn.Linear(dim, 2 * dim, bias=False)
        self.up = nn.Linear(dim, 2 * dim, bias=False)
        self.down = nn.Linear(2 * dim, dim, bias=False)
        self.norm1 = nn.Parameter(1.0 + 0.1 * torch.randn(dim))
        self.norm2 = nn.Parameter(1.0 + 0.1 * torch.randn(dim))
        inv_freq = 1.0 / (10000 ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))
        angles = torch.outer(torch.arange(seq).float(), inv_freq)
        self.register_buffer("cos", torch.cat([angles.cos()] * 2, -1))
        self.register_buffer("sin", torch.cat([angles.sin()] * 2, -1))

    @staticmethod
    def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight

    def rotary(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * self.cos + rotated * self.sin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        h = self.rms_norm(x, self.norm1)
        q = self.q(h).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(h).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(h).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = self.rotary(q), self.rotary(k)
        att = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.o(att.transpose(1, 2).reshape(b, s, d))
        h = self.rms_norm(x, self.norm2)
        return x + self.down(nn.functional.silu(self.gate(h)) * self.up(h))


class BertLayer(nn.Module):
    """A BERT-style encoder layer with a padding mask, as Hugging Face writes it: the int mask
    becomes an additive float mask (0, or the most negative float) for the attention."""

    def __init__(self, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff1, self.ff2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        bias = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        att = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = self.ln1(x + self.out(att.transpose(1, 2).reshape(b, s, d)))
        return self.ln2(x + self.ff2(nn.functional.gelu(self.ff1(x))))


class Gpt2Block(nn.Module):
    """A GPT-2 block: pre-LayerNorm, causal attention (is_causal), tanh-GELU MLP."""

    def __init__(self, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.c_attn, self.c_proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.c_fc, self.mlp_proj = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.c_attn(self.ln1(x)).split(d, dim=2)
        q, k, v = (t.view(b, s, self.heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        att = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(att.transpose(1, 2).reshape(b, s, d))
        mlp_out = self.mlp_proj(nn.functional.gelu(self.c_fc(self.ln2(x)), approximate="tanh"))
        return x + mlp_out


def mlp(d_in: int = 32, d_hidden: int = 64, d_out: int = 16) -> nn.Sequential:
    """Linear -> ReLU -> Linear; weights are module parameters, i.e. export constants."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


def randn(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Seeded normal inputs (the caller resets the seed per case)."""
    return torch.randn(*shape).to(dtype)


# ---------------------------------------------------------------------------------------
# Cases. Each builder runs right after torch.manual_seed(SEED), so its weights and inputs
# do not depend on which other cases were built.
# ---------------------------------------------------------------------------------------


def case_mm_static() -> Case:
    args = (randn(37, 19), randn(19, 23))
    return Case("mm_static", "torch.mm 37x19 @ 19x23 f32", Mm(), args)


def case_mm_dynamic(symbolic: bool = False) -> Case:
    m, k, n = Dim("M", min=2, max=4096), Dim("K", min=2, max=4096), Dim("N", min=2, max=4096)
    name = "mm_dynamic_symbolic" if symbolic else "mm_dynamic"
    doc = "torch.mm with M, K, N dynamic"
    if symbolic:
        doc += "; exported with import_symbolic_shape_expressions=True"
    return Case(
        name,
        doc,
        Mm(),
        export_args=(randn(8, 16), randn(16, 12)),
        run_args=(randn(13, 29), randn(29, 11)),
        dynamic_shapes={"a": {0: m, 1: k}, "b": {0: k, 1: n}},
        symbolic_shapes=symbolic,
    )


def case_mm_chain() -> Case:
    args = (randn(12, 20), randn(20, 24), randn(24, 10))
    return Case(
        "mm_chain", "relu(mm(a, b) + shift) @ c, shift a 1-element parameter", MmChain(), args
    )


def case_mlp() -> Case:
    return Case(
        "mlp",
        "Sequential(Linear 32->64, ReLU, Linear 64->16), batch 8",
        mlp().eval(),
        (randn(8, 32),),
    )


def case_mlp_external() -> Case:
    return Case(
        "mlp_external",
        "the mlp with weights externalized to mlp_external.irpa (scope 'model')",
        mlp().eval(),
        (randn(8, 32),),
        externalize_params=True,
    )


def case_mlp_dynamic_batch() -> Case:
    batch = Dim("batch", min=2, max=4096)
    return Case(
        "mlp_dynamic_batch",
        "the mlp with a dynamic batch dim",
        mlp().eval(),
        export_args=(randn(4, 32),),
        run_args=(randn(7, 32),),
        dynamic_shapes=({0: batch},),
    )


def case_attention() -> Case:
    return Case(
        "attention",
        "single-head self-attention, batch 2, seq 8, dim 16",
        Attention(16).eval(),
        (randn(2, 8, 16),),
    )


def case_encoder_layer() -> Case:
    layer = nn.TransformerEncoderLayer(
        d_model=32, nhead=4, dim_feedforward=64, batch_first=True, dropout=0.0
    ).eval()
    return Case(
        "encoder_layer",
        "nn.TransformerEncoderLayer(32, 4, 64, batch_first), eval",
        layer,
        (randn(2, 8, 32),),
    )


def case_bmm() -> Case:
    return Case("bmm", "torch.bmm 3x5x7 @ 3x7x4", Fn(torch.bmm), (randn(3, 5, 7), randn(3, 7, 4)))


def case_addmm() -> Case:
    def addmm(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.addmm(bias, a, b, beta=0.5, alpha=2.0)

    return Case(
        "addmm",
        "torch.addmm(bias[N], a, b, beta=0.5, alpha=2.0), 9x6 @ 6x11",
        Fn(addmm),
        (randn(11), randn(9, 6), randn(6, 11)),
    )


def case_matmul_broadcast() -> Case:
    def two_matmuls(
        a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.matmul(a, b), torch.matmul(c, d)

    args = (randn(2, 5, 6), randn(6, 4), randn(2, 1, 5, 6), randn(1, 3, 6, 4))
    return Case(
        "matmul_broadcast",
        "matmul 3-D @ 2-D and 4-D @ 4-D with broadcast batch dims",
        Fn(two_matmuls),
        args,
    )


def case_mv() -> Case:
    return Case("mv", "torch.mv 9x13 @ 13", Fn(torch.mv), (randn(9, 13), randn(13)))


def case_mlp_f16() -> Case:
    return Case(
        "mlp_f16",
        "the mlp in float16 (reference computed by torch on CPU in f16)",
        mlp().eval().to(torch.float16),
        (randn(8, 32, dtype=torch.float16),),
        tolerance={"atol": 5e-3, "rtol": 5e-3},
    )


def case_mlp_bf16() -> Case:
    # Hidden 32, not 64: turbine lifts constants of more than 1024 elements to util.global
    # via np.array(tensor), which fails for bfloat16; at <= 1024 they stay vtensor.literal.
    return Case(
        "mlp_bf16",
        "mlp 32->32->16 in bfloat16 (reference computed by torch on CPU in bf16)",
        mlp(d_hidden=32).eval().to(torch.bfloat16),
        (randn(8, 32, dtype=torch.bfloat16),),
        tolerance={"atol": 2e-2, "rtol": 2e-2},
        compile_flags=["--iree-flow-inline-constants-max-byte-length=0"],
        known_issue=BF16_INLINE_ISSUE,
    )


def case_llama_layer() -> Case:
    return Case(
        "llama_layer",
        "Llama-style decoder layer: hidden 32, 4 query heads on 2 key/value heads (causal GQA "
        "attention), RMSNorm, rotary, SiLU-gated MLP; batch 2, 16 tokens",
        LlamaLayer().eval(),
        (randn(2, 16, 32),),
    )


def case_bert_layer_masked() -> Case:
    mask = torch.ones(2, 16, dtype=torch.int64)
    mask[0, 11:] = 0  # the first sequence is padded after 11 tokens
    return Case(
        "bert_layer_masked",
        "BERT-style encoder layer, hidden 32, 4 heads, with a padding mask (HF's additive "
        "float mask); batch 2, 16 tokens, the first padded after 11",
        BertLayer().eval(),
        (randn(2, 16, 32), mask),
    )


def case_gpt2_block() -> Case:
    return Case(
        "gpt2_block",
        "GPT-2 block: hidden 32, 4 heads, causal attention, tanh-GELU MLP; batch 2, 16 tokens",
        Gpt2Block().eval(),
        (randn(2, 16, 32),),
    )


BUILDERS: dict[str, Callable[[], Case]] = {
    "mm_static": case_mm_static,
    "mm_dynamic": case_mm_dynamic,
    "mm_dynamic_symbolic": lambda: case_mm_dynamic(symbolic=True),
    "mm_chain": case_mm_chain,
    "mlp": case_mlp,
    "mlp_external": case_mlp_external,
    "mlp_dynamic_batch": case_mlp_dynamic_batch,
    "attention": case_attention,
    "encoder_layer": case_encoder_layer,
    "bmm": case_bmm,
    "addmm": case_addmm,
    "matmul_broadcast": case_matmul_broadcast,
    "mv": case_mv,
    "mlp_f16": case_mlp_f16,
    "mlp_bf16": case_mlp_bf16,
    "llama_layer": case_llama_layer,
    "bert_layer_masked": case_bert_layer_masked,
    "gpt2_block": case_gpt2_block,
}


# ---------------------------------------------------------------------------------------
# Export and recording.
# ---------------------------------------------------------------------------------------


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """Tensor -> numpy; bfloat16 becomes its uint16 bit pattern since numpy lacks bf16."""
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16).copy()
    return t.numpy().copy()


def dtype_name(t: torch.Tensor) -> str:
    """The MLIR element type name, which is also what the check tool passes to IREE."""
    names = {
        torch.float32: "f32",
        torch.float16: "f16",
        torch.bfloat16: "bf16",
        torch.int64: "i64",
        torch.int32: "i32",
    }
    return names[t.dtype]


def weights_form(text: str) -> str:
    """Summarises how constants appear in the printed module, for the manifest."""
    forms = []
    if "#flow.parameter.named" in text or "#stream.parameter.named" in text:
        forms.append("util.global = #flow.parameter.named (external .irpa)")
    # turbine lifts constants of more than 1024 elements to globals, keeps smaller inline.
    if re.search(r"^\s*util\.global .*= dense_resource<", text, re.MULTILINE):
        forms.append("util.global = dense_resource (> 1024 elements)")
    if "torch.vtensor.literal(dense_resource<" in text:
        forms.append("torch.vtensor.literal(dense_resource)")
    if "torch.vtensor.literal(dense<" in text:
        forms.append("torch.vtensor.literal(dense) for 1-element constants")
    return ", ".join(forms) or "none"


def export_case(case: Case, out_dir: Path) -> dict[str, Any]:
    """Exports one case, writes its files and returns its manifest entry."""
    module = case.module
    if case.externalize_params:
        aot.externalize_module_parameters(module)
    exported = aot.export(
        module,
        args=case.export_args,
        dynamic_shapes=case.dynamic_shapes,
        import_symbolic_shape_expressions=case.symbolic_shapes,
    )
    mlir_path = out_dir / f"{case.name}.mlir"
    # save_mlir prints the whole module as text, resource blobs included (no elision).
    exported.save_mlir(mlir_path)
    text = mlir_path.read_text()

    files = [mlir_path.name, f"{case.name}.npz"]
    if case.externalize_params:
        aot.save_module_parameters(out_dir / f"{case.name}.irpa", module)
        files.append(f"{case.name}.irpa")

    run_args = case.run_args if case.run_args is not None else case.export_args
    with torch.no_grad():
        result = module(*run_args)
    outputs = result if isinstance(result, tuple) else (result,)

    _save_arrays(out_dir / f"{case.name}.npz", run_args, outputs)
    return _manifest_entry(case, files, run_args, outputs, weights_form(text))


def _save_arrays(path: Path, run_args: tuple, outputs: tuple) -> None:
    """The inputs (arg0, ...) and torch's outputs (out0, ...) as an .npz; bf16 as bits."""
    arrays: dict[str, np.ndarray] = {}
    for i, t in enumerate(run_args):
        arrays[f"arg{i}"] = to_numpy(t)
    for i, t in enumerate(outputs):
        arrays[f"out{i}"] = to_numpy(t)
    if any(t.dtype == torch.bfloat16 for t in (*run_args, *outputs)):
        arrays["note"] = np.array(BF16_NOTE)
    np.savez(path, **arrays)


def _manifest_entry(
    case: Case, files: list[str], run_args: tuple, outputs: tuple, weights: str
) -> dict[str, Any]:
    """The case's entry in manifest.json."""

    def describe(ts: tuple[torch.Tensor, ...], prefix: str) -> list[dict[str, Any]]:
        return [
            {"key": f"{prefix}{i}", "shape": list(t.shape), "dtype": dtype_name(t)}
            for i, t in enumerate(ts)
        ]

    entry: dict[str, Any] = {
        "name": case.name,
        "description": case.doc,
        "function": "main",
        "files": files,
        "inputs": describe(run_args, "arg"),
        "outputs": describe(outputs, "out"),
        "dynamic": case.dynamic_shapes is not None,
        "weights": weights,
        "tolerance": case.tolerance,
    }
    if case.compile_flags:
        entry["compile_flags"] = case.compile_flags
        entry["known_issue"] = case.known_issue
    if case.externalize_params:
        entry["parameters"] = {"scope": PARAM_SCOPE, "file": f"{case.name}.irpa"}
    return entry


def main() -> None:
    """Exports the selected (default: all) cases and rewrites the manifest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"cases to export (default all): {list(BUILDERS)}")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    opts = parser.parse_args()
    unknown = set(opts.names) - set(BUILDERS)
    if unknown:
        parser.error(f"unknown cases: {sorted(unknown)}")
    out_dir: Path = opts.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    manifest_path = out_dir / "manifest.json"
    manifest: dict[str, Any] = {"models": {}}
    if manifest_path.exists() and opts.names:
        manifest = json.loads(manifest_path.read_text())
    manifest["generated_by"] = {
        "script": "tools/export_models.py",
        "seed": SEED,
        **{
            pkg: metadata.version(pkg)
            for pkg in ("torch", "iree-turbine", "iree-base-compiler", "numpy")
        },
    }
    manifest["bf16_note"] = BF16_NOTE
    for name in opts.names or list(BUILDERS):
        torch.manual_seed(SEED)
        entry = export_case(BUILDERS[name](), out_dir)
        manifest["models"][name] = entry
        print(f"{name}: {', '.join(entry['files'])} ({entry['weights']})")
    manifest["models"] = dict(sorted(manifest["models"].items()))
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
