"""Strict (noiseless) stability: Schur/Jury conditions for any memory, Theorem 6 for memory 1.

docs §3. ``S_lambda`` is *strictly stable* when its spectral radius is < 1; an algorithm is
strictly stable on a spectrum when ``S_lambda`` is for every curvature in it. For the spectrum
``(0, lambda_max]`` we follow Theorem 6.1 and also require the memory matrix ``D`` to be strictly
stable (|beta| < 1 for memory 1): otherwise the spectral radius tends to 1 as ``lambda -> 0`` and
no rate holds uniformly (Theorem 4's premise).

Verdicts on numeric algorithms are **exact**: entries are converted to rationals (a float is
its exact binary value), conditions become polynomials in ``lambda`` with rational
coefficients, and positivity on an interval is decided by Sturm root counting.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from . import symbols as S
from ._values import check_range, describe, real_array, to_exact, to_sympy
from .algorithms import MemoryAlgorithm
from .errors import ConfigError, StabilityError

__all__ = [
    "Condition",
    "StabilityResult",
    "StrictStabilityConditions",
    "hurwitz_conditions",
    "is_strictly_stable",
    "schur_conditions",
    "stable_curvature_intervals",
    "strict_stability_conditions",
]

_UNSTABLE = [sp.Integer(-1)]

MAX_EXACT_MEMORY = 6
"""Largest memory size of the exact (symbolic) conditions and verdicts.

Their cost grows steeply with ``M`` (the Schur-Cohn conditions of a degree ``M + 1``
polynomial in ``xi`` with polynomial coefficients in ``lambda``): about 1 s at ``M = 4``,
10 s at ``M = 6``, 25 s at ``M = 7`` and minutes beyond on two cores. Larger algorithms are
refused with the numeric alternative instead of running for minutes."""


def _check_memory(alg: MemoryAlgorithm) -> None:
    if not isinstance(alg, MemoryAlgorithm):
        raise ConfigError(
            f"alg must be a MemoryAlgorithm (e.g. stability.gd(0.1)), got {describe(alg)}"
        )
    if alg.M > MAX_EXACT_MEMORY:
        raise StabilityError(
            f"exact stability conditions are limited to memory M <= {MAX_EXACT_MEMORY} (their "
            f"cost grows steeply with M), got M = {alg.M}; for a float answer use "
            "stability.geometry.spectral_radius(alg, eigenvalues) < 1 (numpy eigenvalues, "
            "not certified)"
        )


# ---------------------------------------------------------------------------------------
# Root-location conditions (sympy's contract: stable iff every e_i > 0; [-1] if certainly not)
# ---------------------------------------------------------------------------------------
def _coefficients(poly: Any, gen: sp.Symbol | None) -> list[sp.Expr]:
    """Descending coefficients (exact) of a univariate polynomial given as Poly or Expr."""
    if isinstance(poly, sp.Poly):
        if len(poly.gens) != 1:
            raise ConfigError(f"poly must be univariate, got generators {poly.gens}")
        coeffs = poly.all_coeffs()
    elif isinstance(poly, sp.Expr):
        if gen is None:
            gen = S.xi if poly.has(S.xi) else None
        if gen is None:
            raise ConfigError("gen is required: the variable of the polynomial")
        try:
            coeffs = sp.Poly(poly, gen).all_coeffs()
        except sp.PolynomialError as exc:
            raise ConfigError(f"poly must be a polynomial in {gen}, got {poly}") from exc
    elif isinstance(poly, Sequence) and not isinstance(poly, str):
        coeffs = [to_sympy(c, f"coefficient[{i}]") for i, c in enumerate(poly)]
    else:
        raise ConfigError(
            f"poly must be a sympy Poly, expression or coefficient list, got {describe(poly)}"
        )
    coeffs = [
        sp.expand(to_exact(c if isinstance(c, sp.Basic) else to_sympy(c, "coefficient")))
        for c in coeffs
    ]
    while coeffs and coeffs[0].is_zero:
        coeffs = coeffs[1:]
    if not coeffs:
        raise ConfigError("poly must not be the zero polynomial")
    return coeffs


def _tidy(e: sp.Expr) -> sp.Expr:
    """Factor ``e`` and drop factors that are known positive (the sign is what matters)."""
    e = sp.expand(e)
    if e.is_number:
        return e
    if len(sp.Add.make_args(e)) > 400:  # full factorisation would dominate: content only
        R = _ring_of([e])
        try:
            const, prim = R(e).primitive()
        except (sp.CoercionFailed, TypeError, ValueError):
            return e
        return sp.sign(R.domain.to_sympy(const)) * prim.as_expr()
    const, factors = sp.factor_list(e)
    kept = [b**k for b, k in factors if not (b.is_positive or (k % 2 == 0 and b.is_nonzero))]
    sign = sp.sign(const) if const.is_number else const
    return sp.Mul(sign, *kept) if kept else sp.Integer(sign)


def _finish(conditions: list[sp.Expr]) -> list[sp.Expr]:
    """``[-1]`` if a condition is a non-positive number; symbolic lists lose vacuous constants
    and duplicates (numeric lists keep every value: they are the margins)."""
    if any(e.is_number and not e.is_positive for e in conditions):
        return list(_UNSTABLE)
    if all(e.is_number for e in conditions):
        return list(conditions)
    out: list[sp.Expr] = []
    for e in conditions:
        if not e.is_number and e not in out:
            out.append(e)
    return out


def _hurwitz_named(a: list[sp.Expr], normalise: bool = True) -> list[tuple[str, sp.Expr]]:
    """Liénard–Chipart conditions for ``a[0] s^n + ... + a[n]`` (descending, exact).

    With ``normalise`` a negative (or symbolic) leading coefficient is allowed: the polynomial
    is multiplied by ``-1`` (or by its leading coefficient). Without it, ``a[0] > 0`` is one of
    the conditions (the Schur route, where ``a[0] = (-1)^n p(-1) > 0`` is necessary).
    """
    n = len(a) - 1
    lead = a[0]
    if normalise and lead.is_number and lead.is_negative:
        a = [-x for x in a]
    elif normalise and not lead.is_number:  # unknown sign: multiply by it (lead^2 > 0)
        a = [sp.expand(lead * x) for x in a]
    named = [(f"a_{k}", a[k]) for k in range(n + 1)]

    def coeff(k: int) -> sp.Expr:
        return a[k] if 0 <= k <= n else sp.Integer(0)

    H = sp.Matrix(n, n, lambda i, j: coeff(2 * j - i + 1))
    for k in range(n - 1, 1, -2):  # Delta_{n-1}, Delta_{n-3}, ... (Delta_1 = a_1 is listed)
        named.append((f"Delta_{k}", _det_poly(H[:k, :k])))
    return named


def _ring_of(exprs: list[sp.Expr]):
    from sympy.polys.domains import QQ
    from sympy.polys.rings import ring

    gens = sorted(set().union(*(e.free_symbols for e in exprs)), key=str)
    return ring(gens, QQ)[0] if gens else None


def _det_poly(matrix: sp.Matrix) -> sp.Expr:
    """Exact determinant by Laplace expansion in a sparse polynomial ring over QQ.

    Expr-level elimination on fully symbolic Hurwitz matrices is ~50x slower (M = 3: 44 s
    against 0.8 s); entries with non-polynomial parts fall back to Berkowitz.
    """
    entries = list(matrix)
    R = _ring_of(entries)
    if R is None or matrix.rows > 6:
        return matrix.det(method="berkowitz")
    try:
        rows = [[R(matrix[i, j]) for j in range(matrix.cols)] for i in range(matrix.rows)]
    except (sp.CoercionFailed, TypeError, ValueError):
        return matrix.det(method="berkowitz")

    def laplace(m: list) -> Any:
        if len(m) == 1:
            return m[0][0]
        total = R(0)
        for j, pivot in enumerate(m[0]):
            if pivot:
                minor = laplace([row[:j] + row[j + 1 :] for row in m[1:]])
                total = total + pivot * minor if j % 2 == 0 else total - pivot * minor
        return total

    return laplace(rows).as_expr()


def hurwitz_conditions(poly: Any, gen: sp.Symbol | None = None) -> list[sp.Expr]:
    """Conditions for all roots to have negative real part (Liénard–Chipart).

    Returns ``[e_1, ..., e_k]`` with: every root in the open left half-plane iff all
    ``e_i > 0``; ``[-1]`` when certainly not. A symbolic leading coefficient is assumed
    non-zero. Known-positive factors are removed from each condition.

    >>> s, a, b = sp.symbols("s a b", real=True)
    >>> hurwitz_conditions(s**2 + a*s + b, s)
    [a, b]
    >>> hurwitz_conditions(-s - 2, s)
    [1, 2]
    >>> hurwitz_conditions(s**2 - s + 1, s)
    [-1]
    """
    a = _coefficients(poly, gen)
    if len(a) == 1:
        return []
    return _finish([_tidy(e) for _, e in _hurwitz_named(a)])


def _bilinear(a: list[sp.Expr]) -> list[sp.Expr]:
    """Descending coefficients of ``(1 - s)^n p((1 + s)/(1 - s))`` for ``p`` descending ``a``."""
    n = len(a) - 1
    s = sp.Dummy("s")
    g = sp.expand(sum(a[n - k] * (1 + s) ** k * (1 - s) ** (n - k) for k in range(n + 1)))
    return [sp.expand(g.coeff(s, n - i)) for i in range(n + 1)]


def _schur_named(a: list[sp.Expr]) -> list[tuple[str, sp.Expr]]:
    n = len(a) - 1
    named = _hurwitz_named(_bilinear(a), normalise=False)
    names = {
        "a_0": f"(-1)^{n} chi(-1) > 0 (no root at xi = -1)",
        f"a_{n}": "chi(1) > 0 (no root at xi = 1)",
    }
    return [(names.get(k, f"{k} > 0 (bilinear Routh-Hurwitz)"), e) for k, e in named]


def schur_conditions(poly: Any, gen: sp.Symbol | None = None) -> list[sp.Expr]:
    """Conditions for all roots to lie strictly inside the unit circle (Schur stability).

    The bilinear map ``xi = (1 + s)/(1 - s)`` turns Schur stability of a degree-n polynomial
    into Hurwitz stability of ``(1 - s)^n p((1 + s)/(1 - s))``, whose Liénard–Chipart
    conditions are returned (sympy's contract: stable iff every ``e_i > 0``; ``[-1]`` when
    certainly unstable; a zero polynomial raises). Exact: floats are read as their rational
    binary values. A degree-0 polynomial has no roots and gives ``[]``.

    >>> x, a0, a1 = sp.symbols("x a0 a1", real=True)
    >>> schur_conditions(x**2 + a1*x + a0, x)   # Jury: p(-1) > 0, 1 - a0 > 0, p(1) > 0
    [a0 - a1 + 1, 1 - a0, a0 + a1 + 1]
    >>> schur_conditions(x**2 - sp.Rational(1, 4), x)   # numeric: the margins themselves
    [3/4, 5/2, 3/4]
    >>> schur_conditions(x - 2, x)
    [-1]
    """
    a = _coefficients(poly, gen)
    if len(a) == 1:
        return []
    return _finish([_tidy(e) for _, e in _schur_named(a)])


# ---------------------------------------------------------------------------------------
# Conditions on an algorithm over (0, lambda_max]
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    """One strict inequality ``expr > 0`` with a readable name."""

    name: str
    expr: sp.Expr

    def _repr_latex_(self) -> str:
        return f"${sp.latex(self.expr)} > 0$"


@dataclass(frozen=True)
class StrictStabilityConditions:
    """Conditions for strict stability of ``S_lambda`` for all ``lambda`` in ``(0, lambda_max]``.

    ``conditions`` must all be positive. ``interval_conditions`` (general memory only) are
    polynomials in ``lambda`` that must be positive for every ``lambda`` in the interval; for
    memory 0 and 1 they are resolved in closed form and the list is empty.
    """

    algorithm: MemoryAlgorithm
    lambda_max: sp.Expr
    conditions: tuple[Condition, ...]
    interval_conditions: tuple[Condition, ...] = ()
    source: str = ""

    def as_list(self) -> list[sp.Expr]:
        """sympy's contract: ``[e_i]`` with stability iff all ``e_i > 0`` (closed forms only)."""
        if self.interval_conditions:
            raise StabilityError(
                "memory >= 2: some conditions must hold for every lambda in the interval; "
                "use interval_conditions (or is_strictly_stable for numbers)"
            )
        return _finish([c.expr for c in self.conditions])

    def _repr_latex_(self) -> str:
        rows = [rf"{sp.latex(c.expr)} > 0" for c in self.conditions]
        rows += [
            rf"{sp.latex(c.expr)} > 0 \ \forall \lambda \in (0, {sp.latex(self.lambda_max)}]"
            for c in self.interval_conditions
        ]
        return r"$\begin{cases}" + r" \\ ".join(rows) + r"\end{cases}$"


def theorem61_conditions(beta: Any, q0: Any, q1: Any, lambda_max: Any) -> list[Condition]:
    """Theorem 6.1 (paper eq. 227) for the memory-1 triplet, as named conditions ``> 0``."""
    return [
        Condition("beta < 1", 1 - beta),
        Condition("beta > -1", 1 + beta),
        Condition("q0 + q1 < 0  (alpha_eff > 0)", -(q0 + q1)),
        Condition("-q0 < (1 - beta)/lambda_max", 1 - beta + lambda_max * q0),
        Condition("lambda_max (q0 - q1) < 2 (1 + beta)", 2 * (1 + beta) - lambda_max * (q0 - q1)),
    ]


def strict_stability_conditions(
    alg: MemoryAlgorithm, lambda_max: Any = S.lam_max
) -> StrictStabilityConditions:
    """Conditions on the algorithm's parameters for strict stability on ``(0, lambda_max]``.

    Memory 0 (GD): ``alpha > 0`` and ``2 - alpha lambda_max > 0``. Memory 1: Theorem 6.1 in
    closed form in terms of the triplet ``(beta, q0, q1)``. Memory >= 2: Schur conditions on
    ``D`` plus the Schur conditions of ``chi_lambda`` as polynomials in ``lambda`` (each must
    be positive on the whole interval; conditions linear in ``lambda`` are reduced to their
    end points).

    >>> from stability import heavy_ball
    >>> c = strict_stability_conditions(heavy_ball(S.alpha, S.beta))
    >>> c.as_list()     # alpha > 0 is implied by the symbol's assumptions
    [1 - beta, beta + 1, -alpha*lambda_max + 2*beta + 2]
    """
    _check_memory(alg)
    lam_max = to_sympy(lambda_max, "lambda_max")
    if lam_max.is_number and not lam_max.is_positive:
        raise ConfigError(f"lambda_max must be in (0, inf), got {describe(lambda_max)}")
    M = alg.M
    if M == 0:
        conds = [
            Condition("alpha > 0", alg.alpha),
            Condition("alpha lambda_max < 2", 2 - alg.alpha * lam_max),
        ]
        return StrictStabilityConditions(alg, lam_max, _tidied(conds), (), "|1 - alpha lam| < 1")
    if M == 1:
        t = alg.triplet()
        conds = theorem61_conditions(t.beta, t.q0, t.q1, lam_max)
        return StrictStabilityConditions(alg, lam_max, _tidied(conds), (), "Theorem 6.1")
    detD = (S.xi * sp.eye(M) - alg.D).det(method="berkowitz")
    fixed = [Condition(f"D stable: {n}", e) for n, e in _schur_named(_coefficients(detD, S.xi))]
    over = []
    for name, e in _schur_named(_coefficients(alg.charpoly().chi.as_expr(), S.xi)):
        e = _strip_lambda(_tidy(e))
        if e.is_number:
            fixed.append(Condition(name, e))
        elif _lambda_degree(e) == 1:
            fixed.append(Condition(f"{name} at lambda -> 0", e.subs(S.lam, 0)))
            fixed.append(Condition(f"{name} at lambda_max", e.subs(S.lam, lam_max)))
        else:
            over.append(Condition(name, e))
    return StrictStabilityConditions(alg, lam_max, _tidied(fixed), _tidied(over), "Schur-Cohn")


def _strip_lambda(e: sp.Expr) -> sp.Expr:
    """Remove the power of lambda dividing ``e`` (lambda > 0 does not change the sign)."""
    if e.is_number or not e.has(S.lam):
        return e
    k = min(t.as_powers_dict().get(S.lam, 0) for t in sp.Add.make_args(sp.expand(e)))
    return sp.expand(e / S.lam**k) if k else e


def _lambda_degree(e: sp.Expr) -> int:
    return max(t.as_powers_dict().get(S.lam, 0) for t in sp.Add.make_args(sp.expand(e)))


def _tidied(conds: list[Condition]) -> tuple[Condition, ...]:
    return tuple(Condition(c.name, _tidy(c.expr)) for c in conds)


# ---------------------------------------------------------------------------------------
# Exact numeric verdicts
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConditionMargin:
    """How one condition fares on the spectrum (values are of the λ-power-free polynomial)."""

    name: str
    polynomial: sp.Expr
    holds: bool
    min_value: float
    argmin: float
    at_lambda_max: float


@dataclass(frozen=True)
class StabilityResult:
    """Verdict of :func:`is_strictly_stable` with margins and reasons.

    ``lambda_crit`` is the supremum of ``L`` such that ``S_lambda`` is strictly stable for every
    ``lambda`` in ``(0, L)`` (``inf`` if never lost, 0 if lost immediately); ``headroom`` is
    ``lambda_crit / lambda_max``. The verdict is exact (rational arithmetic, Sturm sequences).
    """

    stable: bool
    spectrum: str
    lambda_max: float
    lambda_crit: float
    conditions: tuple[ConditionMargin, ...]
    failing: tuple[str, ...]
    reason: str
    unstable_eigenvalues: tuple[float, ...] = ()
    method: str = "exact: rational arithmetic, Sturm root counting"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return self.stable

    @property
    def headroom(self) -> float:
        return self.lambda_crit / self.lambda_max if self.lambda_max > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | str:
            return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")

        return {
            "stable": self.stable,
            "spectrum": self.spectrum,
            "lambda_max": num(self.lambda_max),
            "lambda_crit": num(self.lambda_crit),
            "headroom": num(self.headroom),
            "failing": list(self.failing),
            "reason": self.reason,
            "method": self.method,
            "unstable_eigenvalues": list(self.unstable_eigenvalues),
            "conditions": [
                {
                    "name": c.name,
                    "holds": c.holds,
                    "min_value": num(c.min_value),
                    "argmin": num(c.argmin),
                    "at_lambda_max": num(c.at_lambda_max),
                }
                for c in self.conditions
            ],
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        verdict = "STABLE" if self.stable else "UNSTABLE"
        lines = [
            f"{verdict} on {self.spectrum}: {self.reason}",
            f"  critical curvature lambda_crit = {self.lambda_crit:.6g} "
            f"(headroom {self.headroom:.4g}x lambda_max = {self.lambda_max:.6g})",
        ]
        for c in self.conditions:
            mark = "ok " if c.holds else "FAIL"
            lines.append(f"  [{mark}] {c.name}: min {c.min_value:.4g} at lambda={c.argmin:.4g}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _exact_chi(alg: MemoryAlgorithm) -> list[sp.Expr]:
    _check_memory(alg)
    if not alg.is_numeric:
        names = ", ".join(sorted(str(s) for s in alg.free_symbols))
        raise ConfigError(f"algorithm must be numeric (free symbols: {names})")
    chi = alg.to_exact().charpoly().chi.as_expr()
    return _coefficients(chi, S.xi)


def _condition_polys(alg: MemoryAlgorithm) -> list[tuple[str, sp.Poly]]:
    """Named Schur conditions of ``chi_lambda`` as rational polynomials in lambda."""
    out = []
    for name, e in _schur_named(_exact_chi(alg)):
        out.append((name, sp.Poly(sp.expand(e), S.lam, domain="QQ")))
    return out


def _positive_on(p: sp.Poly, lo: sp.Rational, hi: sp.Rational, open_lo: bool) -> bool:
    """Exact: ``p > 0`` on ``(lo, hi]`` (``open_lo``) or ``[lo, hi]``."""
    if p.is_zero:
        return False
    if open_lo and lo == 0:
        # strip the power of lambda (positive on (0, hi]); then need p(0) > 0
        k = min(m[0] for m in p.monoms())
        p = sp.Poly(sp.expand(p.as_expr() / S.lam**k), S.lam, domain="QQ") if k else p
        if p.eval(0) <= 0:
            return False
        return p.count_roots(0, hi) == 0
    if p.eval(lo) <= 0:
        return False
    return p.count_roots(lo, hi) == 0


def _positive_roots(p: sp.Poly) -> list[sp.Expr]:
    if p.is_zero or p.degree() <= 0:
        return []
    return [r for r in sp.Poly(p, S.lam).real_roots() if r.is_positive]


def stable_curvature_intervals(alg: MemoryAlgorithm) -> list[tuple[sp.Expr, sp.Expr]]:
    """The exact set of ``lambda > 0`` where ``S_lambda`` is strictly stable, as open intervals.

    End points are exact algebraic numbers (sympy ``CRootOf`` or rationals); ``oo`` for an
    unbounded interval.

    >>> from stability import gd, heavy_ball
    >>> stable_curvature_intervals(gd(sp.Rational(1, 2)))
    [(0, 4)]
    >>> stable_curvature_intervals(heavy_ball(1, sp.Rational(1, 2)))
    [(0, 3)]
    """
    polys = _condition_polys(alg)
    roots = sorted({r for _, p in polys for r in _positive_roots(p)}, key=lambda r: float(r))
    points = [sp.Integer(0), *roots, sp.oo]
    intervals = []
    for lo, hi in itertools.pairwise(points):
        mid = _rational_between(lo, hi)
        if all(p.eval(mid) > 0 for _, p in polys):
            intervals.append((lo, hi))  # at a root some condition is 0: never merge
    return intervals


def _rational_between(lo: sp.Expr, hi: sp.Expr) -> sp.Rational:
    if hi == sp.oo:
        return sp.Rational(lo.evalf(30)) + 1 if lo != 0 else sp.Integer(1)
    a, b = sp.Rational(str(lo.evalf(40))), sp.Rational(str(hi.evalf(40)))
    return (a + b) / 2


def _parse_spectrum(spectrum: Any) -> tuple[str, Any]:
    if isinstance(spectrum, tuple):
        if len(spectrum) != 2:
            raise ConfigError(
                f"an interval spectrum must be (lambda_min, lambda_max), got {describe(spectrum)}"
            )
        lo = to_sympy(spectrum[0], "lambda_min")
        hi = to_sympy(spectrum[1], "lambda_max")
        if lo.free_symbols or hi.free_symbols:
            raise ConfigError("spectrum bounds must be numbers")
        lo, hi = to_exact(lo), to_exact(hi)
        if lo < 0 or hi <= 0 or lo > hi:
            raise ConfigError(
                f"spectrum interval must satisfy 0 <= lambda_min <= lambda_max, lambda_max > 0, "
                f"got ({spectrum[0]!r}, {spectrum[1]!r})"
            )
        return "interval", (lo, hi)
    if isinstance(spectrum, list | np.ndarray):
        return "eigenvalues", real_array(spectrum, "spectrum eigenvalues", low=0).ravel()
    if isinstance(spectrum, Mapping | set | frozenset):
        raise ConfigError(
            "spectrum must be lambda_max (a number), (lambda_min, lambda_max) or "
            f"a list of eigenvalues, got {describe(spectrum)}"
        )
    lam = to_sympy(spectrum, "lambda_max")
    if lam.free_symbols:
        raise ConfigError("lambda_max must be a number")
    lam = to_exact(lam)
    if not lam > 0:
        raise ConfigError(f"lambda_max must be in (0, inf), got {describe(spectrum)}")
    return "interval", (sp.Integer(0), lam)


def _margins(
    polys: list[tuple[str, sp.Poly]], lo: float, hi: float, holds: list[bool]
) -> tuple[ConditionMargin, ...]:
    out = []
    for (name, p), ok in zip(polys, holds, strict=True):
        expr = _strip_lambda(p.as_expr())
        q = sp.Poly(expr, S.lam)
        coeffs = [float(c) for c in q.all_coeffs()]
        cand = [lo, hi]
        if q.degree() >= 2:
            for r in np.roots(np.polyder(coeffs)):
                if abs(r.imag) < 1e-12 and lo < r.real < hi:
                    cand.append(float(r.real))
        vals = [float(q.eval(sp.Rational(x))) for x in cand]
        i = int(np.argmin(vals))
        out.append(ConditionMargin(name, expr, ok, vals[i], cand[i], vals[1]))
    return tuple(out)


def is_strictly_stable(alg: MemoryAlgorithm, spectrum: Any, *, shift: Any = 0) -> StabilityResult:
    """Exact verdict: is ``S_lambda`` strictly stable for every curvature of ``spectrum``?

    ``spectrum`` is a number ``lambda_max`` (the whole interval ``(0, lambda_max]``), a tuple
    ``(lambda_min, lambda_max)`` (the closed interval; ``lambda_min = 0`` means
    ``(0, lambda_max]``), or a list/array of eigenvalues (zeros are skipped: flat directions do
    not move). Intervals reaching 0 also require ``D`` strictly stable (Theorem 6.1).

    The verdict never rests on a float comparison: parameters are read as exact rationals and
    interval positivity is decided by Sturm root counting; eigenvalues are located against the
    exact stable set, and any eigenvalue within 1e-9 (relative) of a boundary point is decided
    by exact evaluation.

    ``shift`` is added to every curvature exactly (coupled weight decay: the optimizer sees
    ``lambda + weight_decay``); for eigenvalue arrays the near-boundary decisions use the exact
    sum of each eigenvalue's binary value and ``shift``.

    >>> from stability import heavy_ball
    >>> bool(is_strictly_stable(heavy_ball(0.1, 0.9), 37.9))   # 2(1+beta)/alpha = 38
    True
    >>> r = is_strictly_stable(heavy_ball(0.1, 0.9), 38.1)
    >>> r.stable, r.failing
    (False, ('(-1)^2 chi(-1) > 0 (no root at xi = -1)',))
    """
    _check_memory(alg)
    kind, spec = _parse_spectrum(spectrum)
    shift_x = to_exact(check_range(shift, "shift", 0))
    if kind == "interval" and shift_x != 0:  # closed: a flat direction is seen at the shift
        spec = (spec[0] + shift_x, spec[1] + shift_x)
    polys = _condition_polys(alg)
    notes: list[str] = []
    intervals = stable_curvature_intervals(alg)
    d_ok, d_names = _memory_stable(alg)
    lam_crit = float(intervals[0][1]) if d_ok and intervals and intervals[0][0] == 0 else 0.0

    if kind == "interval":
        lo, hi = spec
        open_lo = lo == 0
        holds = [_positive_on(p, lo, hi, open_lo) for _, p in polys]
        if open_lo and not d_ok:
            holds_d = False
        else:
            holds_d = True
        stable = all(holds) and holds_d
        failing = tuple(n for (n, _), ok in zip(polys, holds, strict=True) if not ok)
        if not holds_d:
            failing = (*failing, *d_names)
        label = f"(0, {float(hi):.6g}]" if open_lo else f"[{float(lo):.6g}, {float(hi):.6g}]"
        margins = _margins(polys, float(lo), float(hi), holds)
        if stable:
            reason = "every condition is positive on the whole interval"
        elif not holds_d:
            reason = "the memory matrix D is not strictly stable (rate degenerates as lambda -> 0)"
        else:
            bad = _first_unstable(intervals, lo, hi)
            reason = f"S_lambda is not strictly stable at lambda ~ {bad:.6g}"
        return StabilityResult(
            stable, label, float(hi), lam_crit, margins, failing, reason, notes=tuple(notes)
        )

    arr = spec
    shift_f = float(shift_x)
    positive = arr[arr > 0] if shift_x == 0 else arr
    if positive.size < arr.size:
        notes.append(f"{arr.size - positive.size} zero eigenvalue(s) skipped (flat directions)")
    if positive.size == 0:
        raise ConfigError("spectrum has no positive eigenvalue")
    if shift_x != 0:
        notes.append(f"every eigenvalue shifted by {describe(shift)} (added exactly)")
    bad = _eigenvalues_outside(positive, intervals, polys, shift_x)
    stable = bad.size == 0
    exact_bad = [sp.Rational(float(x)) + shift_x for x in bad[:100]]
    failing = tuple(n for n, p in polys if any(not p.eval(x) > 0 for x in exact_bad))
    lo_f, hi_f = float(positive.min()) + shift_f, float(positive.max()) + shift_f
    margins = _array_margins(polys, positive, failing, shift_f)
    reason = (
        "every eigenvalue lies in the stable set"
        if stable
        else f"{bad.size} eigenvalue(s) outside the stable set, e.g. {float(bad[0]) + shift_f:.6g}"
    )
    return StabilityResult(
        stable,
        f"{positive.size} eigenvalues in [{lo_f:.6g}, {hi_f:.6g}]",
        hi_f,
        lam_crit,
        margins,
        failing,
        reason,
        tuple(float(x) + shift_f for x in bad[:10]),
        notes=tuple(notes),
    )


def _array_margins(
    polys, values: np.ndarray, failing: tuple[str, ...], shift: float = 0.0
) -> tuple[ConditionMargin, ...]:
    """Float margins (informational) of each λ-power-free condition over the eigenvalues
    (shifted by ``shift``), computed in chunks so that memory stays bounded."""
    out = []
    top = int(np.argmax(values))
    for name, p in polys:
        expr = _strip_lambda(p.as_expr())
        coeffs = [float(c) for c in sp.Poly(expr, S.lam).all_coeffs()]
        best, arg = math.inf, 0
        for s in range(0, values.size, _CHUNK):
            vals = np.polyval(coeffs, values[s : s + _CHUNK] + shift)
            i = int(np.argmin(vals))
            if vals[i] < best or s == 0:
                best, arg = float(vals[i]), s + i
        at_top = float(np.polyval(coeffs, values[top] + shift))
        out.append(
            ConditionMargin(
                name, expr, name not in failing, best, float(values[arg]) + shift, at_top
            )
        )
    return tuple(out)


_CHUNK = 1 << 20  # eigenvalues per chunk of the array passes


def _memory_stable(alg: MemoryAlgorithm) -> tuple[bool, tuple[str, ...]]:
    if alg.M == 0:
        return True, ()
    D = alg.to_exact().D
    named = _schur_named(_coefficients((S.xi * sp.eye(alg.M) - D).det(method="berkowitz"), S.xi))
    bad = tuple(f"D stable: {n}" for n, e in named if not e > 0)
    return not bad, bad


def _first_unstable(intervals, lo, hi) -> float:
    """A curvature in [lo, hi] outside the stable set (for the message)."""
    x = float(lo)
    for a, b in intervals:
        if float(a) <= x < float(b) or (x == 0 and a == 0):
            x = float(b)
    return min(x, float(hi))


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
    return np.concatenate(outside)
