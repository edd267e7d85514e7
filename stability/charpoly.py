"""Characteristic polynomial, multistep form and effective learning rate (docs §2).

Convention (the paper authors' own):
``chi_lambda(xi) = det(xi I - S_lambda) = P(xi) - lambda Q(xi)`` with

* ``P(xi) = (xi - 1) det(xi I - D)`` -- monic, degree ``M + 1``, ``P(1) = 0``;
* ``Q(xi) = r^T adj(xi I - S_0) v`` -- degree at most ``M``.

Every function here is exact: it returns sympy objects and never rounds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import sympy as sp
from sympy.polys.matrices import DomainMatrix

from . import symbols as S
from ._values import to_sympy
from .errors import ConfigError, StabilityError, describe

if TYPE_CHECKING:  # annotations only: algorithms imports this module's functions
    from .algorithms import MemoryAlgorithm

__all__ = [
    "CharPoly",
    "Multistep",
    "Triplet",
    "char_det",
    "charpoly",
    "effective_lr",
    "leading_eigenvalue_series",
    "to_multistep",
    "triplet",
    "update_matrix",
]


class CharPoly(NamedTuple):
    """``chi = P - lambda Q`` as sympy ``Poly`` objects in ``xi``."""

    P: sp.Poly
    Q: sp.Poly
    chi: sp.Poly

    def at(self, lam: Any) -> sp.Poly:
        """``chi_lambda`` at a given curvature (number or expression)."""
        return sp.Poly(self.chi.as_expr().subs(S.lam, lam), S.xi)


class Multistep(NamedTuple):
    r"""Theorem 1 coefficients: ``w_{t+1} = sum_j p_j w_{t-M+j} + q_j grad L(w_{t-M+j})``.

    ``p[j]`` and ``q[j]`` (``j = 0..M``) belong to the iterate ``M - j`` steps older than
    ``w_t``; ``sum(p) == 1``.
    """

    p: tuple[sp.Expr, ...]
    q: tuple[sp.Expr, ...]

    @property
    def M(self) -> int:
        return len(self.p) - 1

    def as_equation(self) -> sp.Eq:
        """The recurrence as a sympy equation in ``w_t`` and ``g_t = grad L(w_t)``."""
        t = sp.Symbol("t", integer=True)
        w, g = sp.IndexedBase("w"), sp.IndexedBase("g")
        M = self.M
        rhs = sp.Add(*(self.p[j] * w[t - M + j] + self.q[j] * g[t - M + j] for j in range(M + 1)))
        return sp.Eq(w[t + 1], rhs, evaluate=False)


class Triplet(NamedTuple):
    """Memory-1 invariants: ``chi = xi^2 - (1 + beta + lambda q1) xi + (beta - lambda q0)``."""

    beta: sp.Expr
    q0: sp.Expr
    q1: sp.Expr


def update_matrix(alg: MemoryAlgorithm, lam: Any = S.lam) -> sp.ImmutableMatrix:
    """``S_lambda = S_0 + lambda v r^T`` for one eigen-direction of curvature ``lam``.

    >>> from stability import heavy_ball
    >>> update_matrix(heavy_ball(S.alpha, S.beta))
    Matrix([
    [-alpha*lambda + 1, beta],
    [    -alpha*lambda, beta]])
    """
    lam = to_sympy(lam, "lam")
    return sp.ImmutableMatrix(alg.S0 + lam * alg.v * alg.r.T)


def _det(matrix: sp.Matrix) -> sp.Expr:
    return sp.Integer(1) if matrix.rows == 0 else matrix.det(method="berkowitz")


def charpoly(alg: MemoryAlgorithm) -> CharPoly:
    """``P``, ``Q`` and ``chi = P - lambda Q`` (docs §2).

    ``P`` comes from ``D`` alone and ``Q`` from the adjugate of ``xi I - S_0``; neither is read
    off ``det(xi I - S_lambda)``, so the identity ``det(xi I - S_lambda) = P - lambda Q`` is a
    real check (see the tests).

    >>> from stability import nesterov
    >>> cp = charpoly(nesterov(S.alpha, S.beta))
    >>> cp.Q.as_expr()
    alpha*beta + xi*(-alpha*beta - alpha)
    """
    xi = S.xi
    P = sp.Poly(sp.expand((xi - 1) * char_det(alg.D)), xi)
    Q = sp.Poly(sp.expand(_adjugate_form(alg)), xi)
    chi = sp.Poly(P.as_expr() - S.lam * Q.as_expr(), xi)
    return CharPoly(P, Q, chi)


def char_det(D: sp.Matrix) -> sp.Expr:
    """``det(xi I - D)`` from the characteristic polynomial of ``D`` computed in its own
    polynomial domain (sympy's ``DomainMatrix``: fraction-free, no expression swell)."""
    M = D.rows
    if M == 0:
        return sp.Integer(1)
    dm = DomainMatrix.from_Matrix(D)
    return sp.Add(*(dm.domain.to_sympy(c) * S.xi ** (M - k) for k, c in enumerate(dm.charpoly())))


def _adjugate_form(alg: MemoryAlgorithm) -> sp.Expr:
    """``r^T adj(xi I - S_0) v`` by the Faddeev-LeVerrier expansion of the adjugate,
    ``adj(xi I - S_0) = sum_k xi^(n-1-k) B_k`` with ``B_0 = I``, ``B_k = S_0 B_(k-1) + c_k I``
    (``c_k`` the coefficients of ``det(xi I - S_0)``), applied to ``v``: ``n`` matrix-vector
    products in the entries' polynomial domain instead of a symbolic adjugate."""
    n = alg.M + 1
    big = sp.Matrix.vstack(
        sp.Matrix.hstack(alg.S0, alg.v), sp.Matrix.hstack(alg.r.T, sp.zeros(1, 1))
    )
    dm = DomainMatrix.from_Matrix(big)
    S0, v, r = dm[:n, :n], dm[:n, n:], dm[n:, :n]
    c = S0.charpoly()
    u = v
    q = [(r * u)[0, 0].element]
    for k in range(1, n):
        u = S0 * u + v * c[k]
        q.append((r * u)[0, 0].element)
    return sp.Add(*(dm.domain.to_sympy(qk) * S.xi ** (n - 1 - k) for k, qk in enumerate(q)))


def to_multistep(alg: MemoryAlgorithm) -> Multistep:
    """Coefficients ``(p_j, q_j)`` of the equivalent (M+1)-step recurrence (Theorem 1).

    >>> from stability import heavy_ball
    >>> to_multistep(heavy_ball(S.alpha, S.beta))
    Multistep(p=(-beta, beta + 1), q=(0, -alpha))
    """
    P, Q, _ = alg.charpoly()
    M = alg.M
    p = tuple(sp.expand(-P.coeff_monomial(S.xi**j)) for j in range(M + 1))
    q = tuple(sp.expand(Q.coeff_monomial(S.xi**j)) for j in range(M + 1))
    return Multistep(p, q)


def effective_lr(alg: MemoryAlgorithm, method: str = "charpoly") -> sp.Expr:
    """Effective learning rate ``alpha_eff`` (paper eq. 22); independent of ``a``.

    ``method="charpoly"`` uses ``-Q(1) / P'(1)``; ``method="direct"`` uses
    ``alpha - b^T (I - D)^{-1} c``. Both are exact and must agree; an algorithm whose ``D`` has
    the eigenvalue 1 has no effective learning rate (``StabilityError``).

    >>> from stability import heavy_ball, momentum_kick
    >>> effective_lr(heavy_ball(S.alpha, S.beta))
    -alpha/(beta - 1)
    >>> effective_lr(momentum_kick(S.eta, S.eta_kick, S.beta), method="direct")
    (beta*eta' - eta - eta')/(beta - 1)
    >>> effective_lr(heavy_ball(0.1, 0.9))  # floats: exact binary values, rounded once
    1.00000000000000
    """
    has_float = any(x.has(sp.Float) for x in (alg.alpha, alg.a, alg.b, alg.c, alg.D))
    if has_float:  # evaluate on the exact binary values, round once at the end
        return sp.N(effective_lr(alg.to_exact(), method))
    M = alg.M
    det_I_minus_D = sp.factor(_det(sp.eye(M) - alg.D))
    if det_I_minus_D.is_zero:
        raise StabilityError(
            "effective learning rate undefined: D has the eigenvalue 1 (P'(1) = 0)"
        )
    if method == "charpoly":
        P, Q, _ = alg.charpoly()
        value = -Q.eval(1) / P.diff(S.xi).eval(1)
    elif method == "direct":
        if M == 0:
            value = alg.alpha
        else:
            value = alg.alpha - (alg.b.T * (sp.eye(M) - alg.D).LUsolve(alg.c))[0, 0]
    else:
        raise ConfigError(f"method must be 'charpoly' or 'direct', got {describe(method)}")
    return sp.factor(sp.cancel(value))


def triplet(alg: MemoryAlgorithm) -> Triplet:
    """The memory-1 invariants ``(beta, q0, q1)`` with ``Q = q0 + q1 xi`` (any ``a``).

    >>> from stability import MemoryAlgorithm
    >>> triplet(MemoryAlgorithm(S.alpha, [S.beta], [-S.alpha], [[S.beta]], a=[S.beta]))
    Triplet(beta=beta, q0=alpha*beta, q1=-alpha*beta - alpha)
    """
    if alg.M != 1:
        raise ConfigError(f"triplet() needs a memory-1 algorithm, got memory M = {alg.M}")
    Q = alg.charpoly().Q
    return Triplet(alg.D[0, 0], sp.expand(Q.coeff_monomial(1)), sp.expand(Q.coeff_monomial(S.xi)))


def leading_eigenvalue_series(alg: MemoryAlgorithm, order: int = 1) -> sp.Expr:
    """Series in ``lambda`` of the eigenvalue of ``S_lambda`` that equals 1 at ``lambda = 0``.

    Theorem 4: ``1 - alpha_eff lambda + O(lambda^2)``. Coefficients come from solving
    ``chi(xi(lambda), lambda) = 0`` order by order (implicit function theorem; needs
    ``P'(1) != 0``, i.e. 1 is not an eigenvalue of ``D``).

    >>> from stability import heavy_ball
    >>> leading_eigenvalue_series(heavy_ball(S.alpha, S.beta), 1)
    1 + alpha*lambda/(beta - 1) + O(lambda**2)
    """
    if not isinstance(order, int) or isinstance(order, bool) or order < 1:
        raise ConfigError(f"order must be an integer >= 1, got {describe(order)}")
    P, _, chi = alg.charpoly()
    dP1 = sp.factor(P.diff(S.xi).eval(1))
    if dP1.is_zero:
        raise StabilityError("no analytic leading eigenvalue: D has the eigenvalue 1 (P'(1) = 0)")
    lam, xi = S.lam, S.xi
    coeffs: list[sp.Expr] = []
    e = sp.symbols(f"e1:{order + 1}")
    expansion = 1 + sum(e[k] * lam ** (k + 1) for k in range(order))
    poly = sp.Poly(sp.expand(chi.as_expr().subs(xi, expansion)), lam)
    for k in range(1, order + 1):
        ck = poly.coeff_monomial(lam**k).subs(dict(zip(e, coeffs, strict=False)))
        # ck is linear in e_k with slope P'(1)
        sol = sp.solve(ck, e[k - 1])
        if len(sol) != 1:
            raise StabilityError(f"could not solve order {k} of the eigenvalue expansion")
        coeffs.append(sp.factor(sp.cancel(sol[0])))
    return 1 + sum(c * lam ** (k + 1) for k, c in enumerate(coeffs)) + sp.O(lam ** (order + 1))
