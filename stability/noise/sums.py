"""The stability sum U of mini-batch SGD with memory (docs §4, Theorem 3).

Per eigenvalue, the Lyapunov term ``Ubar_lambda`` (closed form for memory <= 1, a batched
Lyapunov solve otherwise); the sum over a finite spectrum in chunks, and over long or infinite
power laws as a head plus a zeta-function tail with a stated error. Every second-moment map is
checked before its term is used: an unstable one gives ``U = inf`` with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from .. import progress
from .. import symbols as S
from .._values import describe, real_array, to_float, to_sympy
from ..algorithms import MemoryAlgorithm
from ..errors import ConfigError
from ..fluctuations import unit_noise_covariance
from ..regions.verdicts import is_strictly_stable
from .models import SE_NOTE, NoiseModel, get_noise_model
from .spectra import PowerLawSpectrum, as_spectrum

__all__ = ["NoiseResult", "noise_term", "stability_sum", "strict_on", "ubar"]


def noise_term(alg: MemoryAlgorithm, lam: Any = S.lam) -> sp.Expr:
    """``Ubar_lambda = lambda^2 r^T X r`` with ``X = S X S^T + v v^T`` (exact, symbolic).

    Memory 0 and 1 use the closed form (docs §4; Yarotsky & Velikanov eq. 25, written with
    the triplet); larger memories solve the Lyapunov system symbolically (small M only).

    >>> from stability import gd, heavy_ball
    >>> noise_term(gd(S.alpha))
    -alpha*lambda/(alpha*lambda - 2)
    >>> noise_term(heavy_ball(sp.Rational(1, 2), sp.Rational(1, 2)), 1)
    3/5
    """
    lam_e = to_sympy(lam, "lam")
    if alg.M == 0:
        return sp.factor(alg.alpha * lam_e / (2 - alg.alpha * lam_e))
    if alg.M == 1:
        beta, q0, q1 = alg.triplet()
        num = lam_e * (-(1 + beta) * (q0 + q1) + lam_e * q0 * (q0 - q1))
        den = (1 - beta + lam_e * q0) * (2 * (1 + beta) - lam_e * (q0 - q1))
        return sp.factor(sp.cancel(num / den))
    X = unit_noise_covariance(alg, lam_e)
    return sp.factor(sp.cancel(lam_e**2 * (alg.r.T * X * alg.r)[0, 0]))


def ubar(alg: MemoryAlgorithm, lam: Any, method: str = "auto") -> np.ndarray:
    """Numeric ``Ubar_lambda`` for an array of curvatures (float64, any memory).

    ``method="lyapunov"`` solves the Lyapunov equation as a batched linear system
    ``(I - S (x) S) vec X = vec vv^T``; ``"closed"`` (memory <= 1, the default there via
    ``"auto"``) evaluates eq. 25 through the triplet. Meaningful only where ``S_lambda`` is
    strictly stable.
    """
    if method not in ("auto", "closed", "lyapunov"):
        raise ConfigError(f"method must be 'auto', 'closed' or 'lyapunov', got {describe(method)}")
    p = alg.numeric_arrays()
    lam_a = real_array(lam, "lam", empty=True)
    if alg.M == 1 and method in ("auto", "closed"):
        t = alg.triplet()
        beta, q0, q1 = float(t.beta), float(t.q0), float(t.q1)
        num = lam_a * (-(1 + beta) * (q0 + q1) + lam_a * q0 * (q0 - q1))
        den = (1 - beta + lam_a * q0) * (2 * (1 + beta) - lam_a * (q0 - q1))
        return num / den
    if method == "closed" and alg.M > 1:
        raise ConfigError("the closed form is for memory <= 1; use method='lyapunov'")
    n = alg.M + 1
    _, v, r = alg.numeric_system()
    flat = lam_a.reshape(-1)
    if n == 1:
        s = 1 - p["alpha"] * flat
        out = flat**2 * p["alpha"] ** 2 / (1 - s**2)
        return out.reshape(lam_a.shape)
    mats = alg.update_matrices(flat)
    kron = np.einsum("kij,kab->kiajb", mats, mats).reshape(-1, n * n, n * n)
    rhs = np.broadcast_to(np.outer(v, v).reshape(n * n), (flat.size, n * n))
    X = np.linalg.solve(np.eye(n * n) - kron, rhs[..., None])[..., 0].reshape(-1, n, n)
    out = flat**2 * np.einsum("i,kij,j->k", r, X, r)
    return out.reshape(lam_a.shape)


def _second_moment_radius(alg: MemoryAlgorithm, lam: np.ndarray, kappa: float) -> np.ndarray:
    """Spectral radius of ``A_lambda(X) = S X S^T - kappa lambda^2 (r^T X r) v v^T``."""
    n = alg.M + 1
    _, v, r = alg.numeric_system()
    mats = alg.update_matrices(lam)
    kron = np.einsum("kij,kab->kiajb", mats, mats).reshape(-1, n * n, n * n)
    rank1 = np.outer(np.outer(v, v).ravel(), np.outer(r, r).ravel())
    ops = kron - kappa * lam[:, None, None] ** 2 * rank1
    return np.abs(np.linalg.eigvals(ops)).max(axis=-1)


# ---------------------------------------------------------------------------------------
# Stability sum
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoiseResult:
    """The stability sum ``U`` (``inf`` when a second-moment map is not strictly stable).

    ``bounded`` is ``U < 1`` with every ``A_lambda`` strictly stable (Theorem 3); ``margin`` is
    ``1 - U``. ``tail`` and ``tolerance`` describe infinite sums.
    """

    U: float
    bounded: bool
    reason: str
    batch_size: float
    noise: NoiseModel
    tolerance: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def margin(self) -> float:
        return 1.0 - self.U

    def __bool__(self) -> bool:
        return self.bounded

    def to_dict(self) -> dict[str, Any]:
        return {
            "U": self.U if math.isfinite(self.U) else "inf",
            "bounded": self.bounded,
            "margin": self.margin if math.isfinite(self.U) else "-inf",
            "reason": self.reason,
            "batch_size": self.batch_size,
            "noise": {"name": self.noise.name, "tau1": self.noise.tau1, "tau2": self.noise.tau2},
            "tolerance": self.tolerance,
            "notes": list(self.notes),
        }


def check_batch(batch_size: Any) -> float:
    b = to_float(batch_size, "batch_size")
    if b < 1:
        raise ConfigError(f"batch_size must be in [1, inf), got {describe(batch_size)}")
    return b


def _terms(
    alg: MemoryAlgorithm, lam: np.ndarray, B: float, model: NoiseModel
) -> tuple[np.ndarray | None, str]:
    """Per-eigenvalue ``U_lambda`` or ``None`` with the reason of instability."""

    res = strict_on(alg, lam)
    if not res.stable:
        return None, f"noiseless S_lambda is not strictly stable ({res.reason})"
    return _noise_terms(alg, lam, B, model)


def _noise_terms(
    alg: MemoryAlgorithm, lam: np.ndarray, B: float, model: NoiseModel
) -> tuple[np.ndarray | None, str]:
    """``U_lambda`` where ``S_lambda`` is known to be strictly stable (``None`` and the reason
    when ``A_lambda`` is not)."""
    u = ubar(alg, lam)
    kappa = model.tau2 / B
    if kappa < 0:
        # A_lambda is a positive map: rho(A) < 1  iff  1 + kappa Ubar > 0 (rho(S) < 1 given)
        bad = 1 + kappa * u <= 0
        if np.any(bad):
            return None, (
                f"second-moment map A_lambda is not strictly stable at lambda = "
                f"{lam[bad].max():.6g} (1 + (tau2/B) Ubar <= 0)"
            )
    elif kappa > 0:
        rho = _second_moment_radius(alg, np.unique(lam), kappa)
        if np.any(rho >= 1):
            return None, "second-moment map A_lambda is not strictly stable"
    return model.tau1 / B * u / (1 + kappa * u), ""


def stability_sum(
    alg: MemoryAlgorithm,
    spectrum: Any,
    batch_size: Any,
    noise: Any = "gaussian",
    *,
    tol: float = 1e-10,
) -> NoiseResult:
    """``U = sum_k w_k U_{lambda_k}``, ``U_lambda = (tau1/B) Ubar/(1 + (tau2/B) Ubar)``.

    Every ``A_lambda`` is checked first (noiseless ``S_lambda`` exactly, then the noise
    correction); otherwise ``U = inf`` with the reason (never a negative or meaningless sum).
    Infinite power laws are summed as an explicit head plus an mpmath Euler–Maclaurin tail
    whose error estimate is reported as ``tolerance``.

    >>> from stability import gd
    >>> r = stability_sum(gd(1), [1, 0.5, 0.25, 0.125], batch_size=10, noise="se0")
    >>> round(r.U, 14)
    0.15428571428571
    >>> stability_sum(gd(1.5), [0.8], batch_size=1).reason[:36]
    'second-moment map A_lambda is not st'
    """
    model = get_noise_model(noise)
    B = check_batch(batch_size)
    spec = as_spectrum(spectrum)
    notes = (
        [SE_NOTE]
        if not model.exact_for_gaussian
        else ["exact for Gaussian features (SE with tau1 = 1, tau2 = -1); quadratic loss"]
    )
    if isinstance(spec, PowerLawSpectrum) and (spec.N is None or spec.N > HEAD_TERMS):
        return _power_law_sum(alg, spec, B, model, tol, notes)
    if isinstance(spec, PowerLawSpectrum):
        spec = spec.truncated(spec.N)
    U, reason = _finite_sum(alg, spec.lam, spec.weights, B, model)
    if U is None:
        return NoiseResult(math.inf, False, reason, B, model, notes=tuple(notes))
    return NoiseResult(U, U < 1, _reason(U), B, model, notes=tuple(notes))


CHUNK = 1 << 20
"""Eigenvalues per chunk of a long spectrum (memory stays bounded)."""


def strict_on(alg: MemoryAlgorithm, lam: np.ndarray) -> Any:
    """The exact verdict on the eigenvalues ``lam`` (deduplicated while that is cheap)."""
    return is_strictly_stable(alg, np.unique(lam) if lam.size <= CHUNK else lam)


def _finite_sum(
    alg: MemoryAlgorithm, lam: np.ndarray, w: np.ndarray, B: float, model: NoiseModel
) -> tuple[float | None, str]:
    """``sum_k w_k U_{lambda_k}`` in chunks, or ``None`` and the reason of instability."""

    res = strict_on(alg, lam)
    if not res.stable:
        return None, f"noiseless S_lambda is not strictly stable ({res.reason})"
    parts = []
    for start in range(0, lam.size, CHUNK):
        terms, reason = _noise_terms(alg, lam[start : start + CHUNK], B, model)
        if terms is None:
            return None, reason
        parts.append(float(np.sum(w[start : start + CHUNK] * terms)))
        progress.update("noise sum U", min(start + CHUNK, lam.size), lam.size)
    return math.fsum(parts), ""


def _reason(U: float) -> str:
    return (
        "U < 1: mean loss stays bounded (Theorem 3)"
        if U < 1
        else "U >= 1: mean loss diverges under mini-batch noise (Theorem 3)"
    )


HEAD_TERMS = 1_000_000
"""Power laws longer than this are summed as an explicit head plus a zeta-function tail."""


def _power_law_sum(
    alg: MemoryAlgorithm,
    spec: PowerLawSpectrum,
    B: float,
    model: NoiseModel,
    tol: float,
    notes: list[str],
) -> NoiseResult:
    if spec.nu <= 1 and spec.N is None:
        return NoiseResult(
            math.inf,
            False,
            "sum of lambda_k diverges for nu <= 1 (U = inf)",
            B,
            model,
            notes=tuple(notes),
        )
    head_n = 100_000
    lam_head = spec.eigenvalues(head_n)
    terms, reason = _terms(alg, lam_head, B, model)
    if terms is None:
        return NoiseResult(math.inf, False, reason, B, model, notes=tuple(notes))
    head = math.fsum(terms)
    tail, tolerance, order = _power_law_tail(alg, spec, B, model, head_n, tol)
    U = head + tail
    tolerance += 1e-15 * abs(U)
    kind = "infinite power law" if spec.N is None else f"power law with N = {spec.N:,}"
    notes = [
        *notes,
        f"{kind}: {head_n} terms summed directly; tail {tail:.6e} "
        f"from the Taylor series of U_lambda at 0 (order {order}) with Hurwitz zeta "
        f"sums; truncation error estimate {tolerance:.1e}",
    ]
    bounded = U + tolerance < 1
    return NoiseResult(U, bounded, _reason(U), B, model, tolerance, tuple(notes))


def _power_law_tail(
    alg: MemoryAlgorithm,
    spec: PowerLawSpectrum,
    B: float,
    model: NoiseModel,
    head_n: int,
    tol: float,
) -> tuple[float, float, int]:
    """``sum_{head_n < k <= N} U(Lambda k^-nu)`` as
    ``sum_j c_j Lambda^j (zeta(j nu, head_n + 1) - zeta(j nu, N + 1))`` (``N = inf``: no
    second zeta).

    ``U_lambda`` is a rational function of ``lambda`` (exact coefficients from the binary values
    of the parameters), so its Taylor coefficients at 0 are exact; terms decrease like
    ``(lambda_head / radius)^j`` and the first omitted term estimates the truncation error.
    """
    lam = S.lam
    ub = noise_term(alg.to_exact(), lam)
    k1 = sp.Rational(model.tau1) / sp.Rational(B)
    k2 = sp.Rational(model.tau2) / sp.Rational(B)
    u_expr = sp.cancel(k1 * ub / (1 + k2 * ub))
    max_order = 12
    series = sp.series(u_expr, lam, 0, max_order + 2).removeO()
    coeffs = [series.coeff(lam, j) for j in range(max_order + 2)]
    with mpmath.workdps(30):
        total = mpmath.mpf(0)
        last = mpmath.inf
        order = 0
        for j in range(1, max_order + 2):
            c = mpmath.mpf(sp.Rational(coeffs[j]).p) / sp.Rational(coeffs[j]).q
            if spec.N is None:
                zs = mpmath.zeta(j * spec.nu, head_n + 1)
            elif j * spec.nu == 1:  # harmonic sum: digamma difference
                zs = mpmath.digamma(spec.N + 1) - mpmath.digamma(head_n + 1)
            else:
                zs = mpmath.zeta(j * spec.nu, head_n + 1) - mpmath.zeta(j * spec.nu, spec.N + 1)
            term = c * mpmath.mpf(spec.Lambda) ** j * zs
            if j == max_order + 1 or (abs(term) < tol * 1e-3 * max(abs(total), 1e-300) and j > 2):
                last = abs(term)
                break
            total += term
            order = j
        return float(total), float(last) * 2, order
