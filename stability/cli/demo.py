"""``make demo``: the built-in example, a torch-style SGD config (lr=0.1, momentum=0.9).

Run as ``python -m stability.cli.demo``. Prints the memory-1 update matrix, the characteristic
polynomial ``chi = P - lambda Q``, the multistep form and the effective learning rate.
"""

from __future__ import annotations

import sys
from fractions import Fraction

import sympy as sp

from ..optimizers import from_torch_sgd

__all__ = ["EXAMPLE", "main", "render"]

#: The built-in example config (decimal strings read exactly with Fraction, never evaluated).
EXAMPLE = {"lr": Fraction("0.1"), "momentum": Fraction("0.9")}


def _section(title: str, body: str) -> str:
    return f"{title}\n{'-' * len(title)}\n{body}\n"


def render(config: dict | None = None) -> str:
    """The demo text for a torch SGD config (defaults to :data:`EXAMPLE`)."""
    opt = from_torch_sgd(**(config or EXAMPLE))
    alg = opt.algorithm
    cp = alg.charpoly()
    ms = alg.to_multistep()
    cfg = ", ".join(f"{k}={v}" for k, v in opt.config.items())
    parts = [
        f"stability demo: {opt.source}({cfg})\n",
        _section("Memory-1 realisation (u = momentum buffer)", sp.pretty(alg)),
        _section("Update matrix S_lambda", sp.pretty(alg.update_matrix())),
        _section(
            "Characteristic polynomial chi = P - lambda*Q",
            f"P(xi) = {cp.P.as_expr()}   (= (xi - 1) det(xi I - D))\nQ(xi) = {cp.Q.as_expr()}\n"
            f"chi   = {cp.chi.as_expr()}",
        ),
        _section("Multistep form (Theorem 1), g[t] = grad L(w[t])", sp.pretty(ms.as_equation())),
        _section(
            "Effective learning rate alpha_eff = -Q(1)/P'(1)",
            f"{alg.effective_lr()}  (= lr*(1 - dampening)/(1 - momentum))",
        ),
        _section("Leading eigenvalue (Theorem 4)", str(alg.leading_eigenvalue_series(1))),
    ]
    return "\n".join(parts)


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
