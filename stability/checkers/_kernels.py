"""Compiling condition sets into vectorised kernels (private to the checkers).

A condition set ``[(name, c_i)]`` with ``c_i > 0`` for stability is reduced (conditions the
parameter ranges imply are proved once with sympy and dropped), normalised by a scale that
bounds every condition's terms (so float margins can be certified), and emitted as in-place
numpy code through :mod:`stability._codegen`; an exact twin evaluates the same conditions in
``Fraction`` arithmetic for points near a boundary. Written by hand because no library
compiles sympy conditions into certified, buffer-reusing numpy kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ._codegen import inplace_numpy

__all__ = []


class _FractionPrinter(PythonCodePrinter):
    """Python code that stays exact on :class:`~fractions.Fraction` inputs."""

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"Fraction({expr.p}, {expr.q})"

    _print_Half = _print_Rational


@dataclass(frozen=True)
class Kernel:
    names: tuple[str, ...]  # the conditions evaluated, in order
    implied: tuple[tuple[str, str], ...]  # (condition, reason) not evaluated
    params: tuple[str, ...]  # argument order
    outputs: tuple[sp.Expr, ...]  # c_1, ..., c_k, s
    numeric: Callable[..., list[Any]]  # arrays -> [c_1, ..., c_k, s]
    exact: Callable[..., list[Any]]  # Fractions -> [c_1, ..., c_k, s]
    in_scale: frozenset[str]  # parameters that occur in s


def _provably(expr: sp.Expr, domain: dict[sp.Symbol, sp.Expr], strict: bool) -> bool:
    """``expr > 0`` (``>= 0`` if not ``strict``) for every parameter in the domain, proved by
    sympy's assumptions after substituting the domain's parametrisation."""
    e = sp.factor(sp.together(sp.expand(expr).subs(domain)))
    return bool(e.is_positive if strict else e.is_nonnegative)


def _reduce(
    conds: Sequence[tuple[str, sp.Expr]], domain: dict[sp.Symbol, sp.Expr]
) -> tuple[list[tuple[str, sp.Expr]], list[tuple[str, str]]]:
    """Drop duplicate conditions, conditions positive on the whole domain, and conditions
    ``c_j`` with ``c_j >= c_i`` on the domain for a kept ``c_i`` (``c_i > 0`` implies them)."""
    kept: list[tuple[str, sp.Expr]] = []
    implied: list[tuple[str, str]] = []
    for name, e in conds:
        e = sp.expand(e)
        same = next((n for n, k in kept if k == e), None)
        if same is not None:
            implied.append((name, f"the same as {same!r}"))
        elif _provably(e, domain, strict=True):
            implied.append((name, "holds for every valid parameter value"))
        else:
            kept.append((name, e))
    j = 0
    while j < len(kept):
        name, e = kept[j]
        by = next(
            (
                n
                for i, (n, k) in enumerate(kept)
                if i != j and _provably(e - k, domain, strict=False)
            ),
            None,
        )
        if by is not None:
            implied.append((name, f"implied by {by!r}"))
            del kept[j]
        else:
            j += 1
    return kept, implied


def term_sum(expr: sp.Expr) -> sp.Expr:
    """The sum of the absolute values of the terms of ``expr`` (expanded)."""
    return sp.Add(
        *(
            abs(c) * sp.Abs(m)
            for c, m in (t.as_coeff_Mul() for t in sp.Add.make_args(sp.expand(expr)))
        )
    )


def _dominates(scale: sp.Expr, bound: sp.Expr, factor: int) -> bool:
    """``factor * scale - bound`` has only nonnegative coefficients as a polynomial in the
    absolute values (``scale`` and ``bound`` are sums of nonnegative products)."""
    absolute = {
        a: sp.Symbol(f"abs_{i}", nonnegative=True)
        for i, a in enumerate(sorted((factor * scale - bound).atoms(sp.Abs), key=str))
    }
    diff = sp.expand((factor * scale - bound).xreplace(absolute))
    return (
        all(c >= 0 for c in sp.Poly(diff, *diff.free_symbols).coeffs())
        if diff.free_symbols
        else diff >= 0
    )


def compile_kernel(
    conds: Sequence[tuple[str, sp.Expr]],
    params: Sequence[sp.Symbol],
    domain: dict[sp.Symbol, sp.Expr] | None = None,
    scale: sp.Expr | None = None,
) -> Kernel:
    """Lambdify conditions (``> 0``) once: float kernel with the common scale, exact twin.

    ``scale`` defaults to the sum of the absolute values of all terms of all conditions; a
    cheaper one may be given if it is proved (here) to be at least half of every condition's
    own term sum, which keeps the float error of each condition below ``1e-12 * scale``.
    """
    if domain is None:
        kept, implied = [(n, sp.expand(e)) for n, e in conds], []
    else:
        kept, implied = _reduce(conds, domain)
    exprs = [e for _, e in kept]
    if scale is None:
        scale = sp.Add(*(term_sum(e) for e in exprs))
    elif not all(_dominates(scale, term_sum(e), 2) for e in exprs):
        raise AssertionError(f"scale {scale} does not bound the conditions' term sums")
    out = [*exprs, scale]
    try:
        numeric: Callable[..., list[Any]] = inplace_numpy(params, out)
    except NotImplementedError:
        numeric = sp.lambdify(params, out, modules="numpy", cse=True)
    exact = sp.lambdify(params, out, modules=[{"Fraction": Fraction}], printer=_FractionPrinter)
    return Kernel(
        tuple(n for n, _ in kept),
        tuple(implied),
        tuple(p.name for p in params),
        tuple(out),
        numeric,
        exact,
        frozenset(p.name for p in params if p in scale.free_symbols),
    )
