"""Every sympy Symbol of the package, defined once with its assumptions, and how the package
prints them in LaTeX (:class:`StabilityLatexPrinter`, :func:`latex`).

Names follow docs/mathematics.md: ``lam`` is a Hessian eigenvalue (curvature), ``xi`` the
variable of characteristic polynomials, ``alpha``/``beta`` learning rate and momentum,
``q0``/``q1`` the memory-1 triplet coefficients, ``eta``/``eta_kick`` the momentum+kick step sizes.
"""

from __future__ import annotations

from typing import Any, ClassVar

import sympy as sp
from sympy.printing.latex import LatexPrinter

from .errors import show

__all__ = [
    "StabilityLatexPrinter",
    "latex",
    "alpha",
    "beta",
    "dampening",
    "delta",
    "eta",
    "eta_kick",
    "gamma",
    "h",
    "lam",
    "lam_hi",
    "lam_lo",
    "lam_max",
    "lr",
    "momentum",
    "q0",
    "q1",
    "sigma2",
    "t",
    "weight_decay",
    "xi",
    "z",
]

lam = sp.Symbol("lambda", positive=True)
lam_max = sp.Symbol("lambda_max", positive=True)
xi = sp.Symbol("xi")
alpha = sp.Symbol("alpha", positive=True)
beta = sp.Symbol("beta", real=True)
delta = sp.Symbol("delta", real=True)
q0 = sp.Symbol("q0", real=True)
q1 = sp.Symbol("q1", real=True)
eta = sp.Symbol("eta", positive=True)
eta_kick = sp.Symbol("eta'", nonnegative=True)
h = sp.Symbol("h", positive=True)
gamma = sp.Symbol("gamma", real=True)  # zero of the AutoSGM lowpass filter
z = sp.Symbol("z")  # z-transform variable
t = sp.Symbol("t")  # time step
lam_lo = sp.Symbol("lambda_lo", nonnegative=True)  # ends of a curvature interval
lam_hi = sp.Symbol("lambda_hi", nonnegative=True)
lr = sp.Symbol("lr", positive=True)  # framework hyperparameters (torch names)
momentum = sp.Symbol("momentum", nonnegative=True)
dampening = sp.Symbol("dampening", nonnegative=True)
weight_decay = sp.Symbol("weight_decay", nonnegative=True)
sigma2 = sp.Symbol("sigma^2", positive=True)  # variance of additive gradient noise


class StabilityLatexPrinter(LatexPrinter):
    """sympy's printer with the package's symbol names (lambda_max, eta', q_0 ...)."""

    _names: ClassVar[dict[str, str]] = {
        "lambda_max": r"\lambda_{\max}",
        "eta'": r"\eta'",
        "q0": "q_{0}",
        "q1": "q_{1}",
        "xi": r"\xi",
        "lambda": r"\lambda",
    }

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        return self._names.get(expr.name, super()._print_Symbol(expr))

    def _print_Float(self, expr: sp.Float) -> str:
        """Six significant digits, the package's one rule for floats (``errors.show``)."""
        mantissa, _, exponent = show(expr).partition("e")
        return rf"{mantissa} \cdot 10^{{{int(exponent)}}}" if exponent else mantissa


def latex(expr: Any) -> str:
    """LaTeX of a sympy object with the package's printer."""
    return StabilityLatexPrinter({"mat_delim": "("}).doprint(expr)
