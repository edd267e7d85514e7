"""Memory-1 geometry (docs §3.2, §6): the stability triangle, the eigenvalue circle
(Theorem 6.2), real/complex boundaries, spectral radius and the classical optima.

Functions accept a memory-1 :class:`MemoryAlgorithm` or a triplet ``(beta, q0, q1)``; symbolic
inputs give exact sympy results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from .. import symbols as S
from .._values import check_range, real_array, to_sympy
from ..algorithms import MemoryAlgorithm
from ..charpoly import Triplet
from ..errors import ConfigError, describe
from .conditions import theorem61_conditions

__all__ = [
    "Locus",
    "Triangle",
    "convergence_rate",
    "eigenvalue_locus",
    "eigenvalues_over",
    "gd_optimal",
    "heavy_ball_optimal",
    "real_complex_boundaries",
    "spectral_radius",
    "stability_triangle",
    "sup_effective_lr",
]


def _triplet(obj: Any) -> Triplet:
    if isinstance(obj, MemoryAlgorithm):
        return obj.triplet()
    if isinstance(obj, tuple) and len(obj) == 3:
        return Triplet(*(to_sympy(x, n) for x, n in zip(obj, ("beta", "q0", "q1"), strict=True)))
    raise ConfigError(
        f"expected a memory-1 algorithm or a triplet (beta, q0, q1), got {describe(obj)}"
    )


@dataclass(frozen=True)
class Triangle:
    """The open triangle of stable ``(q0, q1)`` at fixed ``beta`` (Theorem 6.1)."""

    beta: sp.Expr
    lambda_max: sp.Expr
    right_angle: tuple[sp.Expr, sp.Expr]
    vertices: tuple[tuple[sp.Expr, sp.Expr], ...]

    def contains(self, q0: Any, q1: Any) -> bool:
        """Exact membership of a numeric point (open triangle)."""

        conds = theorem61_conditions(
            self.beta, to_sympy(q0, "q0"), to_sympy(q1, "q1"), self.lambda_max
        )
        return all(bool(c.expr > 0) for c in conds)


def stability_triangle(beta: Any, lambda_max: Any = 1) -> Triangle:
    """Vertices of the stable ``(q0, q1)`` triangle at fixed ``beta`` (docs §3.2).

    In units of ``1/lambda_max``: ``(1+beta, -(1+beta))`` (the right angle),
    ``(beta-1, 1-beta)``, ``(beta-1, -(3+beta))``.

    >>> stability_triangle(sp.Rational(1, 2)).vertices
    ((3/2, -3/2), (-1/2, 1/2), (-1/2, -7/2))
    """
    b = check_range(beta, "beta", -1, 1, low_open=True, high_open=True)
    lm = check_range(lambda_max, "lambda_max", 0, None, low_open=True)
    right = ((1 + b) / lm, -(1 + b) / lm)
    verts = (right, ((b - 1) / lm, (1 - b) / lm), ((b - 1) / lm, -(3 + b) / lm))
    return Triangle(b, lm, right, verts)


def sup_effective_lr(beta: Any, lambda_max: Any = S.lam_max, q0: Any = None) -> sp.Expr:
    """Supremum of ``alpha_eff`` over strictly stable memory-1 algorithms at fixed ``beta``.

    Free ``q0``: ``4/((1-beta) lambda_max)``. At fixed ``q0`` (e.g. 0 for heavy ball):
    ``(2(1+beta)/lambda_max - 2 q0)/(1-beta)`` (the ``q0`` must itself be admissible).

    >>> sup_effective_lr(S.beta, S.lam_max, q0=0)
    -2*(beta + 1)/(lambda_max*(beta - 1))
    """
    b, lm = to_sympy(beta, "beta"), to_sympy(lambda_max, "lambda_max")
    if q0 is None:
        return 4 / ((1 - b) * lm)
    q = to_sympy(q0, "q0")
    if (q * lm).is_number and b.is_number and not (b - 1 < q * lm < 1 + b):
        raise ConfigError(
            f"q0 must be in ((beta-1)/lambda_max, (1+beta)/lambda_max), got {describe(q0)}"
        )
    return sp.factor((2 * (1 + b) / lm - 2 * q) / (1 - b))


@dataclass(frozen=True)
class Locus:
    """Where the eigenvalues of ``S_lambda`` live as ``lambda`` varies (Theorem 6.2).

    ``kind`` is ``"real"`` (always real), ``"circle"`` (real or on ``|xi - center| = radius``) or
    ``"line"`` (real or on ``Re xi = line_re``).
    """

    kind: str
    center: sp.Expr | None = None
    radius: sp.Expr | None = None
    line_re: sp.Expr | None = None


def eigenvalue_locus(alg: Any) -> Locus:
    """Theorem 6.2 for a memory-1 algorithm with ``|beta| < 1``, ``q0 + q1 < 0``.

    >>> from stability import heavy_ball, nesterov
    >>> eigenvalue_locus(heavy_ball(1, sp.Rational(1, 4)))
    Locus(kind='circle', center=0, radius=1/2, line_re=None)
    >>> eigenvalue_locus(nesterov(1, sp.Rational(1, 3))).radius
    1/4
    """
    beta, q0, q1 = _triplet(alg)
    if any(x.free_symbols for x in (beta, q0, q1)):
        raise ConfigError("eigenvalue_locus needs a numeric triplet")
    if not (abs(beta) < 1 and q0 + q1 < 0):
        raise ConfigError(
            f"Theorem 6.2 needs |beta| < 1 and q0 + q1 < 0, got beta={beta}, q0 + q1={q0 + q1}"
        )
    if q0 + beta * q1 >= 0:
        return Locus("real")
    if q1.is_zero:
        return Locus("line", line_re=(1 + beta) / 2)
    x0 = -q0 / q1
    return Locus("circle", center=x0, radius=sp.sqrt((1 - x0) * (beta - x0)))


def real_complex_boundaries(alg: Any) -> tuple[sp.Expr, ...]:
    """Curvatures where the eigenvalues of ``S_lambda`` switch between real and complex.

    Positive roots of the discriminant ``(1 + beta + lambda q1)^2 - 4(beta - lambda q0)`` of
    ``chi_lambda``; between consecutive roots the eigenvalues are complex. Exact.

    >>> from stability import heavy_ball
    >>> real_complex_boundaries(heavy_ball(1, sp.Rational(1, 4)))
    (1/4, 9/4)
    """
    beta, q0, q1 = _triplet(alg)
    disc = sp.expand((1 + beta + S.lam * q1) ** 2 - 4 * (beta - S.lam * q0))
    if disc.free_symbols - {S.lam}:
        raise ConfigError("real_complex_boundaries needs a numeric triplet")
    roots = sp.Poly(disc, S.lam).real_roots() if sp.degree(disc, S.lam) > 0 else []
    return tuple(sorted({r for r in roots if r > 0}, key=float))


def eigenvalues_over(alg: MemoryAlgorithm, lam: Any) -> np.ndarray:
    """Eigenvalues of ``S_lambda`` (complex, shape ``lam.shape + (M+1,)``), any memory.

    >>> from stability import gd
    >>> eigenvalues_over(gd(0.5), [1.0, 3.0])[:, 0].real
    array([ 0.5, -0.5])
    """
    lam_arr = real_array(lam, "lam", empty=True)
    if not np.all(np.isfinite(lam_arr)):
        raise ConfigError("lam must be finite")
    mats = alg.update_matrices(lam_arr.reshape(-1))
    return np.linalg.eigvals(mats).reshape(*lam_arr.shape, alg.M + 1)


def spectral_radius(alg: MemoryAlgorithm, lam: Any) -> np.ndarray:
    """``max |eig(S_lambda)|`` for each curvature in ``lam`` (float64, any memory).

    >>> from stability import gd
    >>> float(spectral_radius(gd(0.5), 3.0))
    0.5
    """
    return np.abs(eigenvalues_over(alg, lam)).max(axis=-1)


def convergence_rate(alg: MemoryAlgorithm, eigenvalues: Any) -> float:
    """Worst per-step contraction ``max_k rho(S_{lambda_k})`` over a list of eigenvalues.

    Numeric (float64 eigenvalues); below 1 means linear convergence at that rate.
    """
    ev = real_array(eigenvalues, "eigenvalues").ravel()
    return float(spectral_radius(alg, ev).max())


def gd_optimal(lambda_min: Any, lambda_max: Any) -> tuple[sp.Expr, sp.Expr]:
    """Optimal GD step ``2/(lambda_min + lambda_max)`` and its rate ``(kappa-1)/(kappa+1)``.

    >>> gd_optimal(1, 9)
    (1/5, 4/5)
    """
    lo, hi = _bounds(lambda_min, lambda_max)
    return sp.Integer(2) / (lo + hi), (hi - lo) / (hi + lo)


def heavy_ball_optimal(lambda_min: Any, lambda_max: Any) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """Polyak's optimal heavy ball ``(alpha, beta, rate)`` on ``[lambda_min, lambda_max]``.

    ``alpha = (2/(sqrt(L) + sqrt(mu)))^2``, ``beta = ((sqrt(k)-1)/(sqrt(k)+1))^2``,
    rate ``(sqrt(k)-1)/(sqrt(k)+1)``.

    >>> heavy_ball_optimal(1, 9)
    (1/4, 1/4, 1/2)
    """
    lo, hi = _bounds(lambda_min, lambda_max)
    rk = sp.sqrt(hi / lo)
    rate = sp.simplify((rk - 1) / (rk + 1))
    return sp.simplify((2 / (sp.sqrt(hi) + sp.sqrt(lo))) ** 2), sp.simplify(rate**2), rate


def _bounds(lambda_min: Any, lambda_max: Any) -> tuple[sp.Expr, sp.Expr]:
    lo = check_range(lambda_min, "lambda_min", 0, None, low_open=True)
    hi = check_range(lambda_max, "lambda_max", 0, None, low_open=True)
    if lo.is_number and hi.is_number and not lo <= hi:
        raise ConfigError(
            f"lambda_min must be <= lambda_max, got {describe(lambda_min)} > {describe(lambda_max)}"
        )
    return lo, hi
