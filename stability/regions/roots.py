"""Exact real roots of the stability conditions (docs §3): isolation, signs and order of the
positive roots, and the critical curvature (informational, from 40-digit roots)."""

from __future__ import annotations

import math

import mpmath
import sympy as sp

from .. import symbols as S
from .rootconditions import _lambda_free

__all__ = []


def _positive_roots(p: sp.Poly) -> list[sp.Expr]:
    if p.is_zero or p.degree() <= 0:
        return []
    # root by root of each irreducible factor: sympy's real_roots of the whole polynomial
    # refines the roots of different factors until their intervals are disjoint, which can
    # take minutes at large memory sizes; no radicals (square roots of huge integers)
    out = []
    for f, _ in sp.Poly(p, S.lam).factor_list()[1]:
        if f.degree() >= 1:
            out += [r for r in f.real_roots(radicals=False) if _is_positive_root(r)]
    return out


def _is_positive_root(r: sp.Expr) -> bool:
    """Sign of a real root, from its isolating interval and a Sturm count (``r.is_positive``
    would evaluate the root numerically, which dominates at large memory sizes)."""
    if r.is_Rational:
        return bool(r > 0)
    c, rest = r.as_coeff_Mul()
    if c != 1 and isinstance(rest, sp.CRootOf):  # a rational multiple of a root
        return (c > 0) == _is_positive_root(rest)
    if not isinstance(r, sp.CRootOf):  # a radical: sympy decides its sign cheaply
        return bool(r.is_positive)
    iv = r._get_interval()  # exactly one root of r.poly in [a, b]
    a, b = iv.a, iv.b
    if a >= 0:
        return True  # a CRootOf of an irreducible factor is never 0
    if b <= 0:
        return False
    return sp.Poly(r.poly, r.poly.gens[0]).count_roots(0, b) == 1


def _sort_key(r: sp.Expr) -> sp.Rational:
    """An exact key ordering distinct real roots: refine the isolating interval to 1e-30
    (cheap for isolated roots) and take its left end."""
    if r.is_Rational:
        return r
    c, rest = r.as_coeff_Mul()
    if c != 1 and isinstance(rest, sp.CRootOf):
        return c * _sort_key(rest)
    if not isinstance(r, sp.CRootOf):
        return sp.Rational(str(r.evalf(40)))
    return sp.Rational(r.eval_rational(n=30))


def _rational_between(lo: sp.Expr, hi: sp.Expr) -> sp.Rational:
    if hi == sp.oo:
        return sp.Rational(lo.evalf(30)) + 1 if lo != 0 else sp.Integer(1)
    a, b = sp.Rational(str(lo.evalf(40))), sp.Rational(str(hi.evalf(40)))
    return (a + b) / 2


def _first_unstable(polys, lo, hi) -> float:
    """A curvature in ``[lo, hi]`` where some condition is not positive (for the message)."""
    found = [x for _, p in polys for x in [_first_nonpositive(p, lo, hi)] if x is not None]
    return min(found) if found else float(hi)


def _critical_curvature(polys) -> float:
    """``sup L`` with every condition positive on ``(0, L)``: the smallest positive root of the
    λ-power-free conditions (0 if one is not positive just above 0), to 1e-13 relative."""
    best = math.inf
    for _, p in polys:
        q = _lambda_free(p)
        if q.is_zero or q.eval(0) <= 0:
            return 0.0
        root = _smallest_root(q, sp.Integer(0), None)
        if root is not None:
            best = min(best, root)
    return best


def _first_nonpositive(p: sp.Poly, lo: sp.Expr, hi: sp.Expr) -> float | None:
    q = _lambda_free(p) if lo == 0 else p
    if q.is_zero or q.eval(lo) <= 0:
        return float(lo)
    return _smallest_root(q, lo, hi)


def _smallest_root(p: sp.Poly, lo: sp.Expr, hi: sp.Expr | None) -> float | None:
    """The smallest real root of ``p`` in ``(lo, hi]`` (``hi = None``: unbounded), as a float
    (informational: the verdicts themselves are Sturm counts). mpmath's polynomial roots in
    40-digit arithmetic; exact root objects (``CRootOf``) can take minutes to refine at
    large memory sizes."""
    if p.degree() <= 0:
        return None
    with mpmath.workdps(40):
        coeffs = [mpmath.mpf(int(c.p)) / int(c.q) for c in map(sp.Rational, p.all_coeffs())]
        top = max(abs(c) for c in coeffs)
        coeffs = [c / top for c in coeffs]
        try:
            roots = mpmath.polyroots(coeffs, maxsteps=400, extraprec=200)
        except mpmath.libmp.NoConvergence:
            roots = mpmath.polyroots(coeffs, maxsteps=2000, extraprec=800)
        lo_f = float(lo)
        hi_f = math.inf if hi is None else float(hi)
        real = [
            float(mpmath.re(r))
            for r in roots
            if abs(mpmath.im(r)) <= mpmath.mpf(10) ** -20 * max(1, abs(r))
        ]
    inside = [x for x in real if lo_f < x <= hi_f]
    return min(inside) if inside else None
