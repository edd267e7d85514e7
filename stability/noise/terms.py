"""The per-eigenvalue terms of the stability sum (docs §4): symbolic, in floats with a
certified error bound, and exact.

For a curvature ``lambda`` of the data and a curvature shift ``omega`` (coupled weight decay,
or AdamW's decoupled decay in the frozen model), the dynamics run at ``mu = lambda + omega``
while the gradient noise keeps the data curvature ``lambda``. The term is

    U_lambda = (tau1/B) Ubar' / (1 + (tau2/B) Ubar'),    Ubar' = lambda^2 r^T X(mu) r,

with ``X(mu) = S_mu X S_mu^T + v v^T`` (docs §4, eq. 25 for memory <= 1). Floats lie near a
boundary: where a Jury margin of ``S_mu`` is tiny, ``Ubar`` is huge and its float value can
be wrong in the third digit. :func:`float_terms` therefore returns, with every term, a bound
on its error: for memory <= 1 the closed form is a product of affine factors in ``mu``, and
each factor ``a mu + b`` is evaluated with an error of a few ulps of ``|a| mu + |b|``, so
its relative error is known from its own size; for larger memories the bound comes from the
condition number of the Lyapunov system. :func:`exact_term` evaluates a term in rational
arithmetic (the float inputs read as their exact binary values), for the terms whose error
could decide a verdict.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp
from sympy.polys.matrices import DomainMatrix

from .. import symbols as S
from .._values import real_array, to_sympy
from ..algorithms import MemoryAlgorithm
from ..errors import ConfigError, describe
from ..fluctuations import unit_noise_covariance
from .models import NoiseModel

__all__ = ["exact_term", "exact_triplet", "float_terms", "noise_term", "ubar"]

_EPS = float(np.finfo(float).eps)
_SLACK = 64  # ulps per unit of condition: several times the operation count of a term


def noise_term(alg: MemoryAlgorithm, lam: Any = S.lam, shift: Any = 0) -> sp.Expr:
    """``Ubar_lambda = lambda^2 r^T X r`` with ``X = S X S^T + v v^T`` (exact, symbolic).

    Memory 0 and 1 use the closed form (docs §4; Yarotsky & Velikanov eq. 25, written with
    the triplet); larger memories solve the Lyapunov system symbolically (small M only).
    With a curvature ``shift`` (weight decay ``omega``) the dynamics run at
    ``mu = lambda + omega`` while the gradient noise keeps the data curvature ``lambda``:
    the term is ``lambda^2 r^T X(mu) r = (lambda / mu)^2 Ubar_mu``.

    >>> from stability import gd, heavy_ball
    >>> noise_term(gd(S.alpha))
    -alpha*lambda/(alpha*lambda - 2)
    >>> noise_term(heavy_ball(sp.Rational(1, 2), sp.Rational(1, 2)), 1)
    3/5
    >>> noise_term(gd(1), 1, shift=sp.Rational(1, 2))    # (1/1.5)^2 * 1.5/(2 - 1.5)
    4/3
    """
    lam_e = to_sympy(lam, "lam")
    omega = to_sympy(shift, "shift")
    if not omega.is_zero:
        mu = lam_e + omega
        return sp.factor(sp.cancel(lam_e**2 / mu**2 * noise_term(alg, mu)))
    if alg.M == 0:
        return sp.factor(alg.alpha * lam_e / (2 - alg.alpha * lam_e))
    if alg.M == 1:
        beta, q0, q1 = alg.triplet()
        num = lam_e * (-(1 + beta) * (q0 + q1) + lam_e * q0 * (q0 - q1))
        den = (1 - beta + lam_e * q0) * (2 * (1 + beta) - lam_e * (q0 - q1))
        return sp.factor(sp.cancel(num / den))
    X = unit_noise_covariance(alg, lam_e)
    return sp.factor(sp.cancel(lam_e**2 * (alg.r.T * X * alg.r)[0, 0]))


def _triplet(alg: MemoryAlgorithm, exact: bool = False) -> tuple[Any, Any, Any]:
    """``(beta, q0, q1)`` of a memory-0/1 algorithm (GD as ``(0, 0, -alpha)``), as floats or
    as the exact rationals of the algorithm's binary values."""
    a = alg.to_exact() if exact else alg
    conv = (lambda x: Fraction(int(sp.Rational(x).p), int(sp.Rational(x).q))) if exact else float
    if a.M == 0:
        return conv(0), conv(0), -conv(a.alpha)
    t = a.triplet()
    return conv(t.beta), conv(t.q0), conv(t.q1)


def ubar(alg: MemoryAlgorithm, lam: Any, method: str = "auto", *, shift: float = 0.0) -> np.ndarray:
    """Numeric ``Ubar_lambda`` for an array of curvatures (float64, any memory).

    ``method="lyapunov"`` solves the Lyapunov equation as a batched linear system
    ``(I - S (x) S) vec X = vec vv^T``; ``"closed"`` (memory <= 1, the default there via
    ``"auto"``) evaluates eq. 25 through the triplet. Meaningful only where ``S_lambda`` is
    strictly stable. ``shift`` as in :func:`noise_term`.
    """
    if method not in ("auto", "closed", "lyapunov"):
        raise ConfigError(f"method must be 'auto', 'closed' or 'lyapunov', got {describe(method)}")
    lam_a = real_array(lam, "lam", empty=True)
    if alg.M <= 1 and method in ("auto", "closed"):
        return _closed(_triplet(alg), lam_a, shift)[0]
    if method == "closed":
        raise ConfigError("the closed form is for memory <= 1; use method='lyapunov'")
    return _lyapunov(alg, lam_a.reshape(-1), shift)[0].reshape(lam_a.shape)


def _closed(
    trip: tuple[float, float, float], lam: np.ndarray, shift: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(Ubar', relative error bound)`` of memory <= 1 from the factored closed form
    ``lambda^2 n1(mu) / (mu d1(mu) d2(mu))`` (``Ubar_mu = mu n1 / (d1 d2)``)."""
    b, x0, x1 = trip
    mu = lam + shift
    n1 = -(1 + b) * (x0 + x1) + mu * (x0 * (x0 - x1))
    d1 = (1 - b) + mu * x0
    d2 = 2 * (1 + b) - mu * (x0 - x1)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (lam / mu) * lam * n1 / (d1 * d2)
        s01, ab = abs(x0) + abs(x1), 1 + abs(b)
        cond = (
            (ab * s01 + mu * abs(x0) * s01) / abs(n1)
            + (ab + mu * abs(x0)) / abs(d1)
            + (2 * ab + mu * s01) / abs(d2)
            + 8
        )
    return value, _SLACK * _EPS * cond


def _lyapunov(alg: MemoryAlgorithm, lam: np.ndarray, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """``(Ubar', relative error bound)`` for any memory by the batched Lyapunov solve; the
    bound is the condition number of ``I - S (x) S`` times the size ratio of the contraction
    ``lambda^2 r^T X r``."""
    n = alg.M + 1
    _, v, r = alg.numeric_system()
    mats = alg.update_matrices(lam + shift)
    kron = np.einsum("kij,kab->kiajb", mats, mats).reshape(-1, n * n, n * n)
    A = np.eye(n * n) - kron
    rhs = np.broadcast_to(np.outer(v, v).reshape(n * n), (lam.size, n * n))
    X = np.linalg.solve(A, rhs[..., None])[..., 0].reshape(-1, n, n)
    value = lam**2 * np.einsum("i,kij,j->k", r, X, r)
    size = lam**2 * np.einsum("i,kij,j->k", np.abs(r), np.abs(X), np.abs(r))
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.linalg.cond(A) * (size / np.abs(value) + 1) if lam.size else np.empty(0)
    return value, _SLACK * _EPS * n * n * cond


def float_terms(
    alg: MemoryAlgorithm, lam: np.ndarray, B: float, model: NoiseModel, shift: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(U_lambda, error bound, A-margin)`` for each curvature, where ``S_mu`` is known to be
    strictly stable. ``|U_lambda - exact| <= error``; the A-margin ``1 + (tau2/B) Ubar'`` must
    be positive for the second-moment map to be stable (``tau2 <= 0``), and ``error`` is
    ``inf`` where its sign is not certain."""
    if alg.M <= 1:
        ub, rel = _closed(_triplet(alg), lam, shift)
    else:
        ub, rel = _lyapunov(alg, lam, shift)
    k1, k2 = model.tau1 / B, model.tau2 / B
    den = 1 + k2 * ub
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        den_err = abs(k2) * abs(ub) * (rel + 2 * _EPS) + 2 * _EPS
        u = k1 * ub / den
        err = np.abs(u) * (rel + den_err / np.abs(den) + 4 * _EPS)
    err = np.where(np.isfinite(err) & (np.abs(den) > den_err), err, np.inf)
    return u, err, den


try:  # C rationals (the [fast] extra): about 10x Python's Fraction for these terms
    from gmpy2 import mpq as _Q
except ImportError:  # pragma: no cover - exercised without the extra
    _Q = Fraction


def exact_term(
    alg: MemoryAlgorithm,
    lam: float,
    B: float,
    model: NoiseModel,
    shift: Any = 0,
    *,
    triplet: tuple[Fraction, Fraction, Fraction] | None = None,
) -> Fraction | None:
    """``U_lambda`` in exact rational arithmetic at the binary values of ``lam``, ``B``, the
    noise model and the algorithm's parameters (``shift`` exact); ``None`` when the
    second-moment map is not strictly stable there (``1 + (tau2/B) Ubar' <= 0``)."""
    x = _Q(lam)
    om = shift if isinstance(shift, Fraction) else Fraction(str(sp.Rational(shift)))
    mu = x + _Q(om.numerator, om.denominator)
    if alg.M <= 1:
        b, x0, x1 = (_Q(v.numerator, v.denominator) for v in triplet or exact_triplet(alg))
        n1 = -(1 + b) * (x0 + x1) + mu * x0 * (x0 - x1)
        ub = x * x * n1 / (mu * ((1 - b) + mu * x0) * (2 * (1 + b) - mu * (x0 - x1)))
    else:
        m = Fraction(int(mu.numerator), int(mu.denominator))
        r = _exact_rxr(alg, m)
        ub = x * x * _Q(r.numerator, r.denominator)
    k1 = _Q(model.tau1) / _Q(B)
    k2 = _Q(model.tau2) / _Q(B)
    den = 1 + k2 * ub
    if den <= 0:
        return None
    return k1 * ub / den


def exact_triplet(alg: MemoryAlgorithm) -> tuple[Fraction, Fraction, Fraction]:
    """The memory-1 triplet ``(beta, q0, q1)`` as fractions (compute once per sum: it is a
    sympy computation)."""
    b, q0, q1 = _triplet(alg, exact=True)
    return b, q0, q1


def _exact_rxr(alg: MemoryAlgorithm, mu: Fraction) -> Fraction:
    """``r^T X r`` of the Lyapunov solution at the rational curvature ``mu`` (exact)."""
    S_mu = alg.to_exact().update_matrix(sp.Rational(mu.numerator, mu.denominator))
    n = S_mu.rows
    kron = DomainMatrix.from_Matrix(sp.Matrix(sp.kronecker_product(S_mu, S_mu))).convert_to(sp.QQ)
    A = DomainMatrix.eye(n * n, sp.QQ) - kron
    v = alg.to_exact().v
    rhs = DomainMatrix.from_Matrix(sp.Matrix(v * v.T).reshape(n * n, 1)).convert_to(sp.QQ)
    X = A.lu_solve(rhs).to_Matrix().reshape(n, n)
    r = alg.to_exact().r
    value = sp.Rational((r.T * X * r)[0, 0])
    return Fraction(int(value.p), int(value.q))
