"""Exact verdicts on lists of eigenvalues (docs §3): each eigenvalue located against the
exact stable set, or, at large memory sizes, each condition evaluated at it; floats for the
bulk, exact rational arithmetic within a rounding allowance of a boundary, in chunks."""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from .. import progress

__all__ = ["POINTWISE_MEMORY"]

_CHUNK = 1 << 20  # eigenvalues per chunk of the array passes


def _eigenvalues_outside(values: np.ndarray, intervals, polys, shift: Any = 0) -> np.ndarray:
    """Eigenvalues ``x`` (seen as ``x + shift``) outside the exact stable set.

    The bulk is located in floats; any ``x + shift`` within 1e-9 (relative) of an interval end
    is decided exactly on the rational ``x + shift`` (the binary value of ``x`` plus the exact
    shift). Runs in chunks, so memory stays bounded for long spectra.
    """
    edges = []
    bounds = []
    for a, b in intervals:
        fa = float(a)
        fb = math.inf if b == sp.oo else float(b)
        bounds.append((fa, fb))
        edges.extend([fa, fb])
    edges_arr = np.array([e for e in edges if math.isfinite(e) and e > 0])
    shift_f = float(shift)
    outside = []
    for s in range(0, values.size, _CHUNK):
        progress.update("exact verdict on the eigenvalues", s, values.size)
        chunk = values[s : s + _CHUNK]
        seen = chunk + shift_f
        inside = np.zeros(chunk.shape, dtype=bool)
        for fa, fb in bounds:
            inside |= (seen > fa) & (seen < fb)
        for e in edges_arr:
            for i in np.flatnonzero(np.abs(seen - e) < 1e-9 * e):
                x = sp.Rational(float(chunk[i])) + shift  # exact binary value + exact shift
                inside[i] = all(p.eval(x) > 0 for _, p in polys)
        outside.append(chunk[~inside])
    progress.update("exact verdict on the eigenvalues", values.size, values.size)
    return np.concatenate(outside)


POINTWISE_MEMORY = 7
"""From this memory size on, eigenvalue lists are decided by evaluating the conditions at each
eigenvalue (below it, by locating them in the exact stable set, whose end points are exact
roots: cheap for short conditions, slow to refine for the long ones of large M)."""


_POINT_RTOL = 1e-12  # float evaluation error allowance, relative to the sum of term sizes


def _eigenvalues_failing(values: np.ndarray, polys, shift: Any = 0) -> np.ndarray:
    """Eigenvalues ``x`` (seen as ``x + shift``) at which some condition is not positive.

    Each condition is evaluated in floats (coefficients scaled to at most 1) together with
    the sum of the sizes of its terms; a value within ``1e-12`` of that sum (far above the
    float error of Horner's rule and of rounding ``x + shift``) is decided exactly on the
    rational ``x + shift``. Runs in chunks."""
    scaled = []
    with mpmath.workdps(30):
        for _, p in polys:
            cs = [mpmath.mpf(int(c.p)) / int(c.q) for c in map(sp.Rational, p.all_coeffs())]
            top = max(abs(c) for c in cs) or mpmath.mpf(1)
            c = np.array([float(x / top) for x in cs])
            scaled.append((p, c, np.abs(c)))
    shift_f = float(shift)
    failing = []
    for s in range(0, values.size, _CHUNK):
        progress.update("exact verdict on the eigenvalues", s, values.size)
        chunk = values[s : s + _CHUNK]
        y = chunk + shift_f
        ok = np.ones(chunk.shape, dtype=bool)
        for p, c, a in scaled:
            v = np.polyval(c, y)
            tol = _POINT_RTOL * np.polyval(a, y) + 1e-300
            ok &= ~(v < -tol)  # certainly not positive: fails
            unsure = np.flatnonzero(ok & ~(v > tol))
            for i in unsure:
                x = sp.Rational(float(chunk[i])) + shift  # exact binary value + exact shift
                ok[i] = bool(p.eval(x) > 0)
        failing.append(chunk[~ok])
    progress.update("exact verdict on the eigenvalues", values.size, values.size)
    return np.concatenate(failing)
