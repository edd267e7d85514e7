"""Conditions for strict (noiseless) stability of an algorithm on ``(0, lambda_max]``:
Theorem 6.1 in closed form for memory 1, Schur-Cohn conditions in ``lambda`` for any memory.

The namespace also re-exports the root conditions (:mod:`stability.rootconditions`) and the
exact verdicts (:mod:`stability.verdicts`); docs §3. ``S_lambda`` is *strictly stable* when its
spectral radius is < 1; an algorithm is strictly stable on a spectrum when ``S_lambda`` is for
every curvature in it. For the spectrum ``(0, lambda_max]`` we follow Theorem 6.1 and also
require the memory matrix ``D`` to be strictly stable (``|beta| < 1`` for memory 1): otherwise the
spectral radius tends to 1 as ``lambda -> 0`` and no rate holds uniformly (Theorem 4's
premise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

from .. import symbols as S
from .._values import to_sympy
from ..algorithms import MemoryAlgorithm
from ..charpoly import char_det
from ..errors import ConfigError, StabilityError, describe
from .rootconditions import (
    _check_memory,
    _coefficients,
    _finish_conditions,
    _lambda_degree,
    _schur_named,
    _schur_polys,
    _strip_lambda,
    _strip_lambda_poly,
    _tidy,
    _tidy_poly,
)

__all__ = [
    "Condition",
    "StrictStabilityConditions",
    "strict_stability_conditions",
    "theorem61_conditions",
]


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
        return _finish_conditions([c.expr for c in self.conditions])

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
    detD = char_det(alg.D)
    fixed = [Condition(f"D stable: {n}", e) for n, e in _tidy_named(_coefficients(detD, S.xi))]
    over = []
    chi = alg.charpoly().chi
    for name, e in _tidy_named(_coefficients(chi, S.xi), strip=True):
        if e.is_number:
            fixed.append(Condition(name, e))
        elif _lambda_degree(e) == 1:
            fixed.append(Condition(f"{name} at lambda -> 0", _tidy(e.subs(S.lam, 0))))
            fixed.append(Condition(f"{name} at lambda_max", _tidy(e.subs(S.lam, lam_max))))
        else:
            over.append(Condition(name, e))
    return StrictStabilityConditions(alg, lam_max, tuple(fixed), tuple(over), "Schur-Cohn")


def _tidy_named(a: list[sp.Expr], strip: bool = False) -> list[tuple[str, sp.Expr]]:
    """Named Schur conditions, tidied (positive factors dropped; with ``strip`` also the
    power of lambda), in the polynomial ring when the coefficients allow it."""
    ring_form = _schur_polys(a)
    if ring_form is None:
        out = [(n, _tidy(e)) for n, e in _schur_named(a)]
        return [(n, _strip_lambda(e)) for n, e in out] if strip else out
    return [(n, _tidy_poly(_strip_lambda_poly(p) if strip else p)) for n, p in ring_form[1]]


def _tidied(conds: list[Condition]) -> tuple[Condition, ...]:
    return tuple(Condition(c.name, _tidy(c.expr)) for c in conds)
