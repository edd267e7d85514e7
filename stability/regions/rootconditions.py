"""Root-location conditions with sympy's contract, and the limits of the exact path.

``schur_conditions(p)`` and ``hurwitz_conditions(p)`` return expressions ``[e1, ..., ek]`` such that
all roots of ``p`` lie inside the unit circle (in the open left half-plane) iff every
``ei > 0``; ``[-1]`` when certainly not; a malformed input raises (docs §3.1). Schur
stability goes through the bilinear map ``xi = (1 + s)/(1 - s)`` and the Lienard-Chipart form
of the Routh-Hurwitz test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy as sp
from sympy.polys.matrices import DomainMatrix

from .. import symbols as S
from .._values import to_exact, to_sympy
from ..algorithms import MemoryAlgorithm
from ..errors import ConfigError, StabilityError, describe

__all__ = ["MAX_EXACT_MEMORY", "hurwitz_conditions", "schur_conditions"]


_UNSTABLE = [sp.Integer(-1)]


MAX_EXACT_MEMORY = 12
"""Largest memory size of the exact (symbolic) conditions and verdicts.

The conditions are computed in a polynomial ring (characteristic polynomial by sympy's
``DomainMatrix``, bilinear map as an integer matrix, Hurwitz minors by fraction-free
elimination): a dense numeric algorithm takes about 1 s at ``M = 10`` and 0.5 s at ``M = 12``;
an exact verdict on an interval (Sturm sequences of polynomials of degree up to ~2M in
``lambda``) about 4 s at ``M = 10`` and 13 s at ``M = 12`` (with gmpy2, the ``[fast]`` extra).
Beyond, eigenvalue lists get a certified per-eigenvalue test and intervals are refused."""


def _check_memory(alg: MemoryAlgorithm) -> None:
    if not isinstance(alg, MemoryAlgorithm):
        raise ConfigError(
            f"alg must be a MemoryAlgorithm (e.g. stability.gd(0.1)), got {describe(alg)}"
        )
    if alg.M > MAX_EXACT_MEMORY:
        raise StabilityError(
            f"exact stability conditions are limited to memory M <= {MAX_EXACT_MEMORY} (their "
            f"cost grows steeply with M), got M = {alg.M}; is_strictly_stable(alg, eigenvalues) "
            "with a list of eigenvalues gives a certified answer at any M (a Schur-Cohn test "
            "at each eigenvalue), and stability.geometry.spectral_radius(alg, eigenvalues) a "
            "float one"
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


def _finish_conditions(conditions: list[sp.Expr]) -> list[sp.Expr]:
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
    return _finish_conditions([_tidy(e) for _, e in _hurwitz_named(a)])


def _bilinear(a: list[sp.Expr]) -> list[sp.Expr]:
    """Descending coefficients of ``(1 - s)^n p((1 + s)/(1 - s))`` for ``p`` descending ``a``."""
    n = len(a) - 1
    s = sp.Dummy("s")
    g = sp.expand(sum(a[n - k] * (1 + s) ** k * (1 - s) ** (n - k) for k in range(n + 1)))
    return [sp.expand(g.coeff(s, n - i)) for i in range(n + 1)]


def _schur_names(n: int, named: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    names = {
        "a_0": f"(-1)^{n} chi(-1) > 0 (no root at xi = -1)",
        f"a_{n}": "chi(1) > 0 (no root at xi = 1)",
    }
    return [(names.get(k, f"{k} > 0 (bilinear Routh-Hurwitz)"), e) for k, e in named]


def _schur_named(a: list[sp.Expr]) -> list[tuple[str, sp.Expr]]:
    """Named Schur conditions of the polynomial with descending coefficients ``a``."""
    ring_form = _schur_polys(a)
    if ring_form is not None:
        return [(name, p.as_expr()) for name, p in ring_form[1]]
    n = len(a) - 1
    return _schur_names(n, _hurwitz_named(_bilinear(a), normalise=False))


def _binomial_rows(n: int) -> list[list[int]]:
    """``T[i][k]``: the coefficient of ``s^(n-i)`` in ``(1 + s)^k (1 - s)^(n-k)``."""

    def mul(p: list[int], q: list[int]) -> list[int]:  # ascending integer coefficients
        out = [0] * (len(p) + len(q) - 1)
        for i, x in enumerate(p):
            for j, y in enumerate(q):
                out[i + j] += x * y
        return out

    rows = [[0] * (n + 1) for _ in range(n + 1)]
    for k in range(n + 1):
        g = [1]
        for _ in range(k):
            g = mul(g, [1, 1])
        for _ in range(n - k):
            g = mul(g, [1, -1])
        for i in range(n + 1):
            rows[i][k] = g[n - i]
    return rows


def _schur_polys(a: list[sp.Expr]) -> tuple[Any, list[tuple[str, Any]]] | None:
    """:func:`_schur_named` in a sparse polynomial ring over QQ: ``(ring, [(name, p)])``, or
    ``None`` when a coefficient is not a polynomial with rational coefficients.

    The bilinear map is an integer matrix applied to the coefficients, and the Hurwitz minors
    are fraction-free (Bareiss) determinants of ``DomainMatrix`` objects over the ring: no
    expression is expanded on the way, which keeps memory sizes up to ``M = 10`` at seconds.
    """
    R = _ring_of(a)
    if R is None:
        return None
    try:
        pa = [R(x) for x in a]
    except (sp.CoercionFailed, TypeError, ValueError):
        return None
    n = len(a) - 1
    T = _binomial_rows(n)
    g = [sum((pa[n - k] * T[i][k] for k in range(n + 1) if T[i][k]), R(0)) for i in range(n + 1)]
    named: list[tuple[str, Any]] = [(f"a_{k}", g[k]) for k in range(n + 1)]
    K = R.to_domain()

    def coeff(k: int) -> Any:
        return g[k] if 0 <= k <= n else R(0)

    for k in range(n - 1, 1, -2):  # Delta_{n-1}, Delta_{n-3}, ... (Delta_1 = a_1 is listed)
        H = DomainMatrix([[coeff(2 * j - i + 1) for j in range(k)] for i in range(k)], (k, k), K)
        named.append((f"Delta_{k}", H.det()))
    return R, _schur_names(n, named)


def _tidy_poly(p: Any) -> sp.Expr:
    """:func:`_tidy` for an element of a polynomial ring over QQ (no expression expansion)."""
    R = p.ring
    if p.is_ground:
        return R.domain.to_sympy(p.LC if p else R.domain.zero)
    if len(p.terms()) > 400:  # full factorisation would dominate: content only
        const, prim = p.primitive()
        return sp.sign(R.domain.to_sympy(const)) * prim.as_expr()
    const, factors = p.factor_list()
    kept = []
    for f, k in factors:
        b = f.as_expr()
        if not _surely_positive(f, b, k):
            kept.append(b**k)
    c = R.domain.to_sympy(const)
    sign = sp.sign(c)
    return sp.Mul(sign, *kept) if kept else sp.Integer(sign)


def _surely_positive(f: Any, b: sp.Expr, k: int) -> bool:
    """Whether the factor ``b^k`` (``b`` the ring element ``f``) is positive for every
    admissible parameter value: by structure (positive coefficients of positive symbols), or by
    sympy's assumptions when the factor is small (on large factors those can take minutes)."""
    gens_positive = all(g.is_positive for g in f.ring.symbols)
    if gens_positive and all(c > 0 for c in f.coeffs()):
        return True
    if len(f.terms()) > 12 or f.degree() > 4:
        return False
    try:
        return bool(b.is_positive or (k % 2 == 0 and b.is_nonzero))
    except (OverflowError, RecursionError):  # pragma: no cover - sympy's limits
        return False


def _strip_lambda_poly(p: Any) -> Any:
    """Divide a ring element by the largest power of lambda dividing it."""
    R = p.ring
    if S.lam not in R.symbols or not p:
        return p
    i = R.symbols.index(S.lam)
    k = min(m[i] for m in p.monoms())
    if not k:
        return p
    mono = tuple(k if j == i else 0 for j in range(R.ngens))
    return p.exquo(R({mono: R.domain.one}))


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
    return _finish_conditions([_tidy(e) for _, e in _schur_named(a)])


def _strip_lambda(e: sp.Expr) -> sp.Expr:
    """Remove the power of lambda dividing ``e`` (lambda > 0 does not change the sign)."""
    if e.is_number or not e.has(S.lam):
        return e
    k = min(t.as_powers_dict().get(S.lam, 0) for t in sp.Add.make_args(sp.expand(e)))
    return sp.expand(e / S.lam**k) if k else e


def _lambda_degree(e: sp.Expr) -> int:
    return max(t.as_powers_dict().get(S.lam, 0) for t in sp.Add.make_args(sp.expand(e)))


def _lambda_free(p: sp.Poly) -> sp.Poly:
    if p.is_zero:
        return p
    k = min(m[0] for m in p.monoms())
    if not k:
        return p
    return sp.Poly.from_dict({(m[0] - k,): c for m, c in p.terms()}, S.lam, domain="QQ")
