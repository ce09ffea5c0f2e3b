"""Fits the rational erfc of kernels/epilogue_math.inc's epi_erf on [1, 4] and prints its C.

erfc(x) ≈ N(u) / D(u), u = x - 1, D(0) = 1, for the ABSOLUTE error (erf = 1 - erfc there, so
what matters is erfc's error next to 1). Expanding at 1, where erfc is largest (0.157), keeps
the f32 Horner sums from cancelling there; further out erfc is small and so is its error.

Method: linearized least squares (N - f·D ≈ f - f, weighted by 1/D of the previous pass:
Sanathanan and Koerner), Lawson's reweighting toward the minimax error, on Chebyshev nodes of
[1, 4] against mpmath's erfc; then each coefficient from the highest degree down is rounded
to f32 and the rest refitted, so that the printed constants are the fitted ones.

Run: .venv/bin/python tools/fit_erfc.py [NUM_DEGREE DEN_DEGREE] (default 6 6).
Prints the maximum absolute error in double (before and after rounding) and the C lines.
"""

from __future__ import annotations

import sys

import mpmath
import numpy as np

LO, HI, NODES = 1.0, 4.0, 3000


def nodes() -> tuple[np.ndarray, np.ndarray]:
    """(u scaled to [0, 1], erfc at the nodes) on Chebyshev nodes of [LO, HI]."""
    mpmath.mp.dps = 40
    c = np.cos(np.pi * (np.arange(NODES) + 0.5) / NODES)[::-1]
    x = (c + 1) * (HI - LO) / 2 + LO
    return (x - LO) / (HI - LO), np.array([float(mpmath.erfc(v)) for v in x])


def solve(a: np.ndarray, f: np.ndarray, w: np.ndarray, fixed: dict[int, float]) -> np.ndarray:
    """The weighted least-squares coefficients, those in `fixed` held at their values."""
    free = [i for i in range(a.shape[1]) if i not in fixed]
    rhs = f - sum((a[:, i] * v for i, v in fixed.items()), np.zeros_like(f))
    sol, *_ = np.linalg.lstsq(a[:, free] * w[:, None], rhs * w, rcond=None)
    coef = np.zeros(a.shape[1])
    coef[list(fixed)] = list(fixed.values())
    coef[free] = sol
    return coef


def fit(nd: int, dd: int, fixed: dict[int, float], passes: int) -> tuple[np.ndarray, float]:
    """Coefficients [n_0..n_nd, d_1..d_dd] of the scaled variable, and the max abs error."""
    s, f = nodes()
    powers = np.stack([s**j for j in range(max(nd, dd) + 1)], 1)
    a = np.hstack([powers[:, : nd + 1], -f[:, None] * powers[:, 1 : dd + 1]])
    w, den = np.ones_like(f), np.ones_like(f)
    for step in range(passes):
        coef = solve(a, f, w / den, fixed)
        den = 1 + powers[:, 1 : dd + 1] @ coef[nd + 1 :]
        err = powers[:, : nd + 1] @ coef[: nd + 1] / den - f
        if step > 10:  # Lawson: weight where the error is largest
            w = w * np.sqrt(np.abs(err))
            w /= w.max()
    return coef, float(np.abs(err).max())


def main() -> None:
    nd, dd = (int(v) for v in sys.argv[1:3]) if len(sys.argv) > 2 else (6, 6)
    scale = np.array([(HI - LO) ** j for j in [*range(nd + 1), *range(1, dd + 1)]])
    coef, err = fit(nd, dd, {}, 80)
    print(f"max |error| in double: {err:.3g}")
    fixed: dict[int, float] = {}
    for i in reversed(range(len(coef))):
        fixed[i] = float(np.float32(coef[i] / scale[i])) * scale[i]
        coef, err = fit(nd, dd, fixed, 30)
    print(f"max |error| with f32 coefficients: {err:.3g}")
    c = [float(np.float32(v)) for v in coef / scale]
    num, den = c[: nd + 1], [1.0, *c[nd + 1 :]]
    for name, poly in (("n", num), ("d", den)):
        print(f"  float {name} = {poly[-1]!r}f;")
        for v in reversed(poly[:-1]):
            print(f"  {name} = {name} * u + {v!r}f;")


if __name__ == "__main__":
    main()
