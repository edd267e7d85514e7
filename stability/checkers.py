"""Vectorised numeric checkers: the only module that lambdifies.

Each checker is built once (cached) by lambdifying a symbolic result of the core with
``cse=True`` and evaluates whole arrays of configurations. Inputs are keyword-only and
broadcast; outputs carry margins, not just booleans. Points whose float margin is within a
relative ``1e-12`` of zero are re-decided in exact rational arithmetic (certified verdicts).
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache
from typing import Any

import numpy as np
import sympy as sp

from . import symbols as S
from .errors import ConfigError

__all__ = ["Memory1Margins", "family_triplet", "lr_momentum_grid", "memory1_margins"]

_CERTIFY_RTOL = 1e-12


@cache
def _theorem61():
    from .regions import theorem61_conditions

    conds = theorem61_conditions(S.beta, S.q0, S.q1, S.lam_max)
    exprs = [c.expr for c in conds]
    # scale of each condition's terms, for the relative certification test
    scales = [sp.Add(*(sp.Abs(t) for t in sp.Add.make_args(sp.expand(e)))) for e in exprs]
    params = (S.beta, S.q0, S.q1, S.lam_max)
    f = sp.lambdify(params, exprs, modules="numpy", cse=True)
    g = sp.lambdify(params, scales, modules="numpy", cse=True)
    h = sp.lambdify(params, exprs, modules=[{"Abs": abs}, "math"])  # exact on Fractions
    return tuple(c.name for c in conds), f, g, h


class Memory1Margins:
    """Theorem 6.1 margins of memory-1 triplets over ``(0, lambda_max]``.

    ``margins[i]`` is condition ``i`` (stable iff all ``> 0``); ``stable`` is certified.
    """

    def __init__(self, names: tuple[str, ...], margins: np.ndarray, stable: np.ndarray,
                 certified: int) -> None:
        self.names = names
        self.margins = margins
        self.stable = stable
        self.n_certified = certified

    @property
    def min_margin(self) -> np.ndarray:
        return self.margins.min(axis=0)


def _arrays(**kw: Any) -> list[np.ndarray]:
    out = []
    for name, value in kw.items():
        if isinstance(value, str | bytes):
            raise ConfigError(f"{name} must be numeric, got a string {value!r}")
        arr = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(arr)):
            raise ConfigError(f"{name} must be finite, got NaN or inf")
        out.append(arr)
    return list(np.broadcast_arrays(*out))


def memory1_margins(*, beta: Any, q0: Any, q1: Any, lambda_max: Any) -> Memory1Margins:
    """Vectorised, certified Theorem 6.1 verdicts for memory-1 triplets.

    >>> m = memory1_margins(beta=[0.9, 0.9], q0=0.0, q1=[-0.1, -0.4], lambda_max=10.0)
    >>> m.stable.tolist()
    [True, False]
    """
    b, a0, a1, lm = _arrays(beta=beta, q0=q0, q1=q1, lambda_max=lambda_max)
    if np.any(lm <= 0):
        raise ConfigError("lambda_max must be in (0, inf)")
    names, f, g, h = _theorem61()
    margins = np.array([np.broadcast_to(x, b.shape) for x in f(b, a0, a1, lm)], dtype=float)
    scales = np.array([np.broadcast_to(x, b.shape) for x in g(b, a0, a1, lm)], dtype=float)
    stable = np.all(margins > 0, axis=0)
    close = np.any(np.abs(margins) <= _CERTIFY_RTOL * np.maximum(scales, 1e-300), axis=0)
    idx = np.flatnonzero(close.ravel())
    flat = stable.reshape(-1)
    for i in idx:  # exact rational re-decision of near-boundary points
        args = [Fraction(float(x.reshape(-1)[i])) for x in (b, a0, a1, lm)]
        flat[i] = all(v > 0 for v in h(*args))
    return Memory1Margins(names, margins, stable, int(idx.size))


@cache
def family_triplet(name: str):
    """``(params, f)`` where ``f(*params) -> (beta, q0, q1)`` for a registered family.

    Families: the registry's memory-1 methods plus ``torch_sgd`` (lr, momentum, dampening)
    and ``torch_nesterov`` (lr, momentum).
    """
    from .algorithms import get_method
    from .charpoly import triplet

    mu, tau = sp.symbols("momentum dampening", real=True)
    lr = sp.Symbol("lr", positive=True)
    if name == "torch_sgd":
        from .algorithms import MemoryAlgorithm

        alg = MemoryAlgorithm(lr * (1 - tau), [-lr * mu], [1 - tau], [[mu]])
        params = (lr, mu, tau)
    elif name == "torch_nesterov":
        from .algorithms import MemoryAlgorithm

        alg = MemoryAlgorithm(lr * (1 + mu), [-lr * mu**2], [1], [[mu]])
        params = (lr, mu)
    else:
        method = get_method(name)
        alg = method.symbolic()
        if alg.M != 1:
            raise ConfigError(f"family must be memory-1, got {name!r} with M = {alg.M}")
        params = method.symbols
    t = triplet(alg)
    return params, sp.lambdify(params, list(t), modules="numpy", cse=True)


def lr_momentum_grid(family: str, *, lambda_max: float, lr: Any, momentum: Any,
                     **fixed: float) -> tuple[np.ndarray, np.ndarray, Memory1Margins]:
    """Certified stability of a memory-1 family on an ``lr x momentum`` grid.

    Returns ``(LR, MOM, margins)`` with ``LR``/``MOM`` from :func:`numpy.meshgrid`. Extra
    family parameters (e.g. ``dampening`` for ``torch_sgd``) are passed by name.

    >>> LR, MOM, m = lr_momentum_grid("heavy_ball", lambda_max=1.0, lr=[1.0, 3.0], momentum=[0.5])
    >>> m.stable.tolist()
    [[True, False]]
    """
    params, f = family_triplet(family)
    LR, MOM = np.meshgrid(np.asarray(lr, dtype=float), np.asarray(momentum, dtype=float))
    values = {"alpha": LR, "lr": LR, "eta": LR, "beta": MOM, "momentum": MOM}
    args = []
    for p in params:
        name = p.name
        if name in fixed:
            args.append(np.broadcast_to(np.asarray(fixed.pop(name), dtype=float), LR.shape))
        elif name in values:
            args.append(values[name])
        else:
            raise ConfigError(f"family {family!r} needs parameter {name!r}")
    if fixed:
        raise ConfigError(f"unknown parameter(s) {sorted(fixed)} for family {family!r}")
    beta, q0, q1 = (np.broadcast_to(np.asarray(x, dtype=float), LR.shape) for x in f(*args))
    return LR, MOM, memory1_margins(beta=beta, q0=q0, q1=q1, lambda_max=lambda_max)
