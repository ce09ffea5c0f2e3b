"""Test data helpers shared by the end-to-end tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"
MANIFEST = json.loads((DATA / "manifest.json").read_text())["models"]


def load_npz(name: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    data = np.load(DATA / f"{name}.npz")

    def numbered(prefix: str) -> list[np.ndarray]:
        keys = [k for k in data.files if k.startswith(prefix)]
        return [data[k] for k in sorted(keys, key=lambda k: int(k[len(prefix) :]))]

    inputs, outputs = numbered("arg"), numbered("out")
    return inputs, outputs


def tolerance(name: str) -> dict[str, float]:
    return MANIFEST[name]["tolerance"]
