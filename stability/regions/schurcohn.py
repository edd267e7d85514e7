"""The large-memory test (docs §3.1): beyond the exact symbolic path, every distinct
eigenvalue's characteristic polynomial is formed exactly and tested by the Schur-Cohn
reduction in interval arithmetic."""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import sympy as sp

from .. import progress
from .._values import to_exact
from ..algorithms import MemoryAlgorithm
from ..errors import StabilityError

__all__ = ["MAX_POINT_EIGENVALUES", "float_radii", "schur_cohn_at", "schur_cohn_failing"]

_POINT_PRECISIONS = (40, 120, 400)  # decimal digits of the interval arithmetic, in turn


def schur_cohn_at(coeffs: list[sp.Rational]) -> bool | None:
    """Whether every root of ``sum_i c_i xi^i`` (ascending, exact rationals, ``c_n != 0``)
    lies strictly inside the unit circle, by the Schur-Cohn reduction
    ``p -> (c_n p - c_0 p*) / xi`` (``p*`` the reversed polynomial; stable iff
    ``|c_0| < |c_n|`` at every step) in mpmath interval arithmetic. ``None`` if the intervals
    cannot decide at the highest precision (a root within about ``10^-400`` of the circle).
    """
    for dps in _POINT_PRECISIONS:
        verdict = _schur_cohn_iv(coeffs, dps)
        if verdict is not None:
            return verdict
    return None


def _schur_cohn_iv(coeffs: list[sp.Rational], dps: int) -> bool | None:
    iv = mpmath.iv
    old = iv.dps
    iv.dps = dps
    try:
        c = [iv.mpf(int(x.p)) / iv.mpf(int(x.q)) for x in coeffs]
        while len(c) > 1:
            a0, an = abs(c[0]), abs(c[-1])
            if a0.b < an.a:  # certainly |c_0| < |c_n|
                n = len(c) - 1
                c = [c[-1] * c[i] - c[0] * c[n - i] for i in range(1, n + 1)]
                scale = abs(c[-1]).b
                c = [x / scale for x in c]
            elif a0.a >= an.b:  # certainly |c_0| >= |c_n|: a root on or outside the circle
                return False
            else:
                return None
        return True
    finally:
        iv.dps = old


def schur_cohn_failing(
    alg: MemoryAlgorithm, distinct: np.ndarray, shift: Any = 0
) -> tuple[list[float], int]:
    """The eigenvalues among ``distinct`` (exact binary values plus the exact ``shift``) whose
    ``chi_lambda = P - lambda Q``, formed exactly, fails the Schur-Cohn reduction in interval
    arithmetic (:func:`schur_cohn_at`), and how many of them the intervals could not decide
    (those count as failing: never "stable" without a proof)."""
    if distinct.size > MAX_POINT_EIGENVALUES:
        raise StabilityError(
            f"the per-eigenvalue test at memory M = {alg.M} takes at most "
            f"{MAX_POINT_EIGENVALUES:,} distinct eigenvalues, got {distinct.size:,}"
        )
    P, Q, _ = alg.to_exact().charpoly()
    p = [sp.Rational(c) for c in reversed(P.all_coeffs())]
    q = [sp.Rational(c) for c in reversed(Q.all_coeffs())] + [sp.Integer(0)] * len(P.all_coeffs())
    shift_x = to_exact(shift)
    bad, undecided = [], 0
    for done, x in enumerate(distinct.tolist()):
        progress.update("Schur-Cohn test per eigenvalue", done, distinct.size)
        lam = sp.Rational(x) + shift_x
        chi = [pi - lam * qi for pi, qi in zip(p, q, strict=False)]
        verdict = schur_cohn_at(chi)
        if verdict is None:
            undecided += 1
        if not verdict:
            bad.append(x)
    return bad, undecided


MAX_POINT_EIGENVALUES = 100_000
"""Most distinct eigenvalues of the per-eigenvalue test (about a millisecond each at M = 30)."""


def float_radii(alg: MemoryAlgorithm, lam: np.ndarray) -> np.ndarray:
    """Spectral radius of ``S_lambda`` (numpy, informational) in chunks."""
    out = np.empty(lam.size)
    for s in range(0, lam.size, 4096):
        mats = alg.update_matrices(lam[s : s + 4096])
        out[s : s + 4096] = np.abs(np.linalg.eigvals(mats)).max(axis=-1)
    return out
