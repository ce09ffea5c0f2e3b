"""Test data helpers shared by the end-to-end tests."""

from __future__ import annotations

import json
from pathlib import Path

import ml_dtypes
import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"
MANIFEST = json.loads((DATA / "manifest.json").read_text())["models"]


def load_npz(name: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Inputs and torch's outputs; bf16 ones (stored as uint16 bits) as ml_dtypes.bfloat16."""
    data = np.load(DATA / f"{name}.npz")
    entry = MANIFEST[name]
    bf16 = {t["key"] for t in entry["inputs"] + entry["outputs"] if t["dtype"] == "bf16"}

    def array(key: str) -> np.ndarray:
        return data[key].view(ml_dtypes.bfloat16) if key in bf16 else data[key]

    def numbered(prefix: str) -> list[np.ndarray]:
        keys = [k for k in data.files if k.startswith(prefix)]
        return [array(k) for k in sorted(keys, key=lambda k: int(k[len(prefix) :]))]

    inputs, outputs = numbered("arg"), numbered("out")
    return inputs, outputs


def tolerance(name: str) -> dict[str, float]:
    return MANIFEST[name]["tolerance"]


def parameters(name: str) -> dict[str, Path]:
    """The model's external parameter files by scope, for `mipsc.load(..., parameters=...)`."""
    spec = MANIFEST[name].get("parameters")
    return {spec["scope"]: DATA / spec["file"]} if spec else {}


MATMUL_FAMILY = ("aten.mm ", "aten.bmm ", "aten.matmul ", "aten.mv ", "aten.linear ",
                 "aten.addmm ", "aten.baddbmm ", "aten.addbmm ",
                 "aten.scaled_dot_product_attention ")  # fmt: skip
"""The torch ops (as printed, with their trailing space) that must not reach IREE's codegen."""
