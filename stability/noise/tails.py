"""The tail of a long or infinite power law in the stability sum (docs §4.2).

``sum_{k > K} U(Lambda k^-nu)``: ``U_lambda`` is a rational function ``P/Q`` of ``lambda``
with exact coefficients, so its Taylor coefficients ``c_j`` at 0 are exact, and the tail is
``sum_{j <= J} c_j Lambda^j zeta(j nu, K + 1)`` (minus the same at ``N + 1`` for a finite law)
plus a remainder. The remainder function ``(P/Q - T_J)(lambda) / lambda^(J+1)`` is again a
rational function; interval arithmetic (mpmath) encloses it over ``[0, lambda_(K+1)]``, which
bounds the remainder by that enclosure times ``Lambda^(J+1) zeta((J+1) nu, K + 1)``. The order
``J`` grows until the bound is below the accuracy asked for.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import mpmath
import sympy as sp

from .. import symbols as S
from ..algorithms import MemoryAlgorithm
from ..errors import ConfigError
from .models import NoiseModel
from .spectra import PowerLawSpectrum
from .terms import _EPS, noise_term

__all__ = ["power_law_tail"]


def _series(P: list[Fraction], Q: list[Fraction], order: int) -> list[Fraction]:
    """Taylor coefficients ``c_0..c_order`` of ``P/Q`` (ascending coefficient lists)."""
    c: list[Fraction] = []
    for j in range(order + 1):
        s = P[j] if j < len(P) else Fraction(0)
        s -= sum((Q[i] * c[j - i] for i in range(1, min(j, len(Q) - 1) + 1)), Fraction(0))
        c.append(s / Q[0])
    return c


def _iv_poly(coeffs: list[Fraction], x: Any) -> Any:
    """Interval Horner of ascending rational ``coeffs`` at the interval ``x``."""
    iv = mpmath.iv
    acc = iv.mpf(0)
    for c in reversed(coeffs):
        acc = acc * x + iv.mpf(c.numerator) / c.denominator
    return acc


def power_law_tail(
    alg: MemoryAlgorithm,
    spec: PowerLawSpectrum,
    B: float,
    model: NoiseModel,
    shift: Fraction,
    head_n: int,
    tol: float,
) -> tuple[float, float, int]:
    """``(tail, error bound, order)`` of ``sum_{head_n < k <= N} U(Lambda k^-nu)``."""
    lam = S.lam
    ub = noise_term(alg.to_exact(), lam, sp.Rational(shift.numerator, shift.denominator))
    k1 = sp.Rational(model.tau1) / sp.Rational(B)
    k2 = sp.Rational(model.tau2) / sp.Rational(B)
    num, den = sp.fraction(sp.cancel(k1 * ub / (1 + k2 * ub)))

    def ascending(e: sp.Expr) -> list[Fraction]:
        poly = sp.Poly(e, lam)
        return [
            Fraction(int(sp.Rational(c).p), int(sp.Rational(c).q))
            for c in reversed(poly.all_coeffs())
        ]

    P, Q = ascending(num), ascending(den)
    if Q[0] == 0:
        raise ConfigError("U_lambda has a pole at lambda = 0: no power-law tail")
    x_top = spec.Lambda * float(head_n + 1) ** (-spec.nu) * (1 + 8 * _EPS)
    with mpmath.workdps(40):

        def zeta_sum(s: float) -> Any:
            if spec.N is None:
                return mpmath.zeta(s, head_n + 1)
            if s == 1:
                return mpmath.digamma(spec.N + 1) - mpmath.digamma(head_n + 1)
            return mpmath.zeta(s, head_n + 1) - mpmath.zeta(s, spec.N + 1)

        Lam = mpmath.mpf(Fraction(spec.Lambda).numerator) / Fraction(spec.Lambda).denominator
        best = (math.inf, math.inf, 0)
        for order in (4, 8, 12, 20, 30):
            c = _series(P, Q, order)
            if spec.N is None and any(c[j] != 0 and j * spec.nu <= 1 for j in range(1, order + 1)):
                return math.inf, 0.0, 0
            total = mpmath.mpf(0)
            for j in range(1, order + 1):
                if c[j]:
                    total += (
                        mpmath.mpf(c[j].numerator)
                        / c[j].denominator
                        * Lam**j
                        * zeta_sum(j * spec.nu)
                    )
            remainder = _remainder_bound(P, Q, c, order, x_top)
            s = (order + 1) * spec.nu
            if not math.isfinite(remainder) or (spec.N is None and s <= 1):
                continue
            err = remainder * float(Lam ** (order + 1) * zeta_sum(s))
            err += 1e-30 * abs(float(total))  # the zeta values' own accuracy
            if err < best[1]:
                best = (float(total), err, order)
            if err <= tol * 1e-3 * max(abs(float(total)), 1e-300):
                break
    return best


def _remainder_bound(
    P: list[Fraction], Q: list[Fraction], c: list[Fraction], order: int, x_top: float
) -> float:
    """``sup |(P/Q - T)(x) / x^(order+1)|`` over ``[0, x_top]`` by interval arithmetic
    (``T`` the Taylor polynomial of degree ``order``); ``inf`` if ``Q`` may vanish there."""
    # P - T Q is divisible by x^(order+1): its lower coefficients cancel exactly
    TQ = [Fraction(0)] * (len(Q) + order)
    for i, ci in enumerate(c[: order + 1]):
        for j, qj in enumerate(Q):
            TQ[i + j] += ci * qj
    diff = [(P[k] if k < len(P) else Fraction(0)) - TQ[k] for k in range(max(len(P), len(TQ)))]
    if any(diff[k] for k in range(order + 1)):
        raise AssertionError("the Taylor polynomial does not match P/Q")  # pragma: no cover
    R = diff[order + 1 :] or [Fraction(0)]
    iv = mpmath.iv
    old = iv.dps
    iv.dps = 40
    try:
        x = iv.mpf([0, x_top])
        q = _iv_poly(Q, x)
        if q.a <= 0 <= q.b:
            return math.inf
        r = _iv_poly(R, x) / q
        return float(max(abs(r.a), abs(r.b)))
    finally:
        iv.dps = old
