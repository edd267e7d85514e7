"""Exact verdicts: is a numeric algorithm strictly stable on a spectrum? (docs §3).

Parameters are read as exact rationals (a float is its exact binary value); the conditions
become polynomials in ``lambda`` with rational coefficients; positivity on an interval is
decided by Sturm root counting, and eigenvalue arrays are located against the exact stable set
(near-boundary ones evaluated exactly). Results carry their margins.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from .. import symbols as S
from .._values import check_range, real_array, to_exact, to_sympy
from ..algorithms import MemoryAlgorithm
from ..charpoly import char_det
from ..errors import ConfigError, describe
from .eigenvalues import _CHUNK, POINTWISE_MEMORY, _eigenvalues_failing, _eigenvalues_outside
from .rootconditions import (
    MAX_EXACT_MEMORY,
    _check_memory,
    _coefficients,
    _lambda_free,
    _schur_named,
    _schur_polys,
)
from .roots import (
    _critical_curvature,
    _first_unstable,
    _positive_roots,
    _rational_between,
    _sort_key,
)
from .schurcohn import float_radii, schur_cohn_failing

__all__ = ["ConditionMargin", "StabilityResult", "is_strictly_stable", "stable_curvature_intervals"]


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
            if math.isnan(x):
                return "nan"
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
        lines = [f"{verdict} on {self.spectrum}: {self.reason}"]
        if not math.isnan(self.lambda_crit):
            lines.append(
                f"  critical curvature lambda_crit = {self.lambda_crit:.6g} "
                f"(headroom {self.headroom:.4g}x lambda_max = {self.lambda_max:.6g})"
            )
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
    return _coefficients(alg.to_exact().charpoly().chi, S.xi)


def _condition_polys(alg: MemoryAlgorithm) -> list[tuple[str, sp.Poly]]:
    """Named Schur conditions of ``chi_lambda`` as rational polynomials in lambda (remembered
    by the algorithm, which is immutable: searches ask for them many times)."""
    if "condition_polys" not in alg._cache:
        alg._cache["condition_polys"] = tuple(_compute_condition_polys(alg))
    return list(alg._cache["condition_polys"])


def _compute_condition_polys(alg: MemoryAlgorithm) -> list[tuple[str, sp.Poly]]:
    a = _exact_chi(alg)
    ring_form = _schur_polys(a)
    if ring_form is None or ring_form[0].symbols != (S.lam,):
        return [(name, sp.Poly(sp.expand(e), S.lam, domain="QQ")) for name, e in _schur_named(a)]
    return [
        (name, sp.Poly.from_dict(dict(p.items()), S.lam, domain="QQ")) for name, p in ring_form[1]
    ]


def _positive_on(p: sp.Poly, lo: sp.Rational, hi: sp.Rational, open_lo: bool) -> bool:
    """Exact: ``p > 0`` on ``(lo, hi]`` (``open_lo``) or ``[lo, hi]``."""
    if p.is_zero:
        return False
    if open_lo and lo == 0:
        p = _lambda_free(p)  # lambda^k is positive on (0, hi]; then need p(0) > 0
        if p.eval(0) <= 0:
            return False
        return p.count_roots(0, hi) == 0
    if p.eval(lo) <= 0:
        return False
    return p.count_roots(lo, hi) == 0


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
    if "intervals" not in alg._cache:
        polys = _condition_polys(alg)
        roots = sorted({r for _, p in polys for r in _positive_roots(p)}, key=_sort_key)
        points = [sp.Integer(0), *roots, sp.oo]
        intervals = []
        for lo, hi in itertools.pairwise(points):
            mid = _rational_between(lo, hi)
            if all(p.eval(mid) > 0 for _, p in polys):
                intervals.append((lo, hi))  # at a root some condition is 0: never merge
        alg._cache["intervals"] = tuple(intervals)
    return list(alg._cache["intervals"])


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
        q = _lambda_free(p)
        expr = q.as_expr()
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
    kind, spec = _parse_spectrum(spectrum)
    shift_x = to_exact(check_range(shift, "shift", 0))
    if kind == "eigenvalues" and isinstance(alg, MemoryAlgorithm) and alg.M > MAX_EXACT_MEMORY:
        if not alg.is_numeric:
            _check_memory(alg)
        return _point_verdict(alg, spec, shift_x)
    _check_memory(alg)
    polys = _condition_polys(alg)
    d_ok, d_names = _memory_stable(alg)
    lam_crit = _critical_curvature(polys) if d_ok else 0.0
    if kind == "interval":
        if shift_x != 0:  # closed: a flat direction is seen at the shift
            spec = (spec[0] + shift_x, spec[1] + shift_x)
        return _interval_verdict(polys, spec, d_ok, d_names, lam_crit)
    return _eigenvalue_verdict(alg, polys, spec, shift_x, lam_crit)


def _interval_verdict(
    polys: list[tuple[str, sp.Poly]],
    interval: tuple[sp.Expr, sp.Expr],
    d_ok: bool,
    d_names: tuple[str, ...],
    lam_crit: float,
) -> StabilityResult:
    """Sturm counts on ``(0, hi]`` (with ``D`` strictly stable) or ``[lo, hi]``."""
    lo, hi = interval
    open_lo = lo == 0
    holds = [_positive_on(p, lo, hi, open_lo) for _, p in polys]
    holds_d = d_ok or not open_lo
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
        reason = f"S_lambda is not strictly stable at lambda ~ {_first_unstable(polys, lo, hi):.6g}"
    return StabilityResult(stable, label, float(hi), lam_crit, margins, failing, reason)


def _eigenvalue_verdict(
    alg: MemoryAlgorithm,
    polys: list[tuple[str, sp.Poly]],
    arr: np.ndarray,
    shift_x: sp.Expr,
    lam_crit: float,
) -> StabilityResult:
    """Each eigenvalue (plus the exact shift) located against the exact stable set."""
    notes: list[str] = []
    shift_f = float(shift_x)
    positive = arr if shift_x != 0 or arr.min(initial=1.0) > 0 else arr[arr > 0]  # no copy
    if positive.size < arr.size:
        notes.append(f"{arr.size - positive.size} zero eigenvalue(s) skipped (flat directions)")
    if positive.size == 0:
        raise ConfigError("spectrum has no positive eigenvalue")
    if shift_x != 0:
        notes.append(f"every eigenvalue shifted by {describe(shift_x)} (added exactly)")
    if alg.M >= POINTWISE_MEMORY:  # root objects of long conditions are slow to refine
        bad = _eigenvalues_failing(positive, polys, shift_x)
    else:
        bad = _eigenvalues_outside(positive, stable_curvature_intervals(alg), polys, shift_x)
    stable = bad.size == 0
    exact_bad = [sp.Rational(float(x)) + shift_x for x in bad[:100]]
    failing = tuple(n for n, p in polys if any(not p.eval(x) > 0 for x in exact_bad))
    lo_f, hi_f = float(positive.min()) + shift_f, float(positive.max()) + shift_f
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
        _array_margins(polys, positive, failing, shift_f),
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
        q = _lambda_free(p)
        expr = q.as_expr()
        coeffs = [float(c) for c in q.all_coeffs()]
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


def _memory_stable(alg: MemoryAlgorithm) -> tuple[bool, tuple[str, ...]]:
    if alg.M == 0:
        return True, ()
    named = _schur_named(_coefficients(char_det(alg.to_exact().D), S.xi))
    bad = tuple(f"D stable: {n}" for n, e in named if not e > 0)
    return not bad, bad


# ---------------------------------------------------------------------------------------
# Large memory sizes: a certified test at each eigenvalue (no symbolic conditions)
# ---------------------------------------------------------------------------------------


def _point_verdict(alg: MemoryAlgorithm, values: np.ndarray, shift: Any = 0) -> StabilityResult:
    """Certified verdict on a list of eigenvalues for memory sizes beyond the exact symbolic
    path (:mod:`stability.regions.schurcohn`), with the float spectral radius as the margin."""
    shift_x = to_exact(shift)
    positive = values if shift_x != 0 or values.min(initial=1.0) > 0 else values[values > 0]
    if positive.size == 0:
        raise ConfigError("spectrum has no positive eigenvalue")
    distinct = np.unique(positive)
    bad, undecided = schur_cohn_failing(alg, distinct, shift_x)
    margin = 1 - float_radii(alg, distinct + float(shift_x))
    i = int(np.argmin(margin))
    stable = not bad
    notes = [
        f"memory M = {alg.M} > {MAX_EXACT_MEMORY}: no symbolic conditions; every distinct "
        "eigenvalue tested by the Schur-Cohn reduction of chi_lambda in interval arithmetic "
        "(certified); lambda_crit not computed"
    ]
    if undecided:
        notes.append(f"{undecided} eigenvalue(s) within rounding of the boundary: counted unstable")
    cond = ConditionMargin(
        "1 - rho(S_lambda) > 0 (Schur-Cohn at each eigenvalue; values from numpy eigvals)",
        sp.Integer(1) - sp.Symbol("rho"),
        stable,
        float(margin[i]),
        float(distinct[i] + float(shift_x)),
        float(margin[-1]),
    )
    lo_f, hi_f = float(distinct[0]) + float(shift_x), float(distinct[-1]) + float(shift_x)
    reason = (
        "every eigenvalue passes the Schur-Cohn test"
        if stable
        else f"{len(bad)} eigenvalue(s) fail the Schur-Cohn test, "
        f"e.g. {bad[0] + float(shift_x):.6g}"
    )
    return StabilityResult(
        stable,
        f"{positive.size} eigenvalues in [{lo_f:.6g}, {hi_f:.6g}]",
        hi_f,
        math.nan,
        (cond,),
        () if stable else (cond.name,),
        reason,
        tuple(b + float(shift_x) for b in bad[:10]),
        method="certified: exact chi_lambda, Schur-Cohn reduction in interval arithmetic",
        notes=tuple(notes),
    )
