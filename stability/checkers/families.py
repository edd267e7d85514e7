"""Vectorised numeric checkers: the optimizer families (torch SGD, the registry's memory-0/1
methods) and one namespace over the triplet checkers (:mod:`stability.triplet_checkers`).

The checkers are the only code that lambdifies; their kernels are compiled by
:mod:`stability._kernels` and run by :mod:`stability._engine`.

Each checker is compiled once (cached) from a symbolic result of the core, through sympy's
``cse`` into numpy code that reuses its buffers (:mod:`stability._codegen`; ``lambdify`` with
``cse=True`` is the fallback and the reference it is tested against): the strict-stability
conditions (Theorem 6.1 or the Jury conditions on a curvature
interval) composed with an optimizer's triplet, and the noise term of eq. 25. Inputs are
keyword-only and broadcast against each other; nothing is materialised at the broadcast shape
except the outputs, and the work runs in cache-sized blocks on a few threads.

**Certified verdicts.** Every condition ``c_i > 0`` is a polynomial in the inputs. In floating
point it is accurate to a few ulps of a scale ``s``: the sum of the absolute values of the terms
of all conditions, or a cheaper expression proved at compile time to be at least half of each
condition's own term sum (Theorem 6.1 uses ``1 + |beta| + (1 + lambda_max)(|q0| + |q1|)``).
The *relative margin* ``min_i c_i / s`` (dimensionless, at most 2 in absolute value) is positive
exactly when the configuration is strictly stable; where its float value is within ``1e-12`` of
zero, the point is re-decided in exact rational arithmetic on the exact binary values of the
inputs (``Verdicts.n_certified`` counts them; each costs about 30 microseconds, so only a grid
laid exactly on a boundary makes this path noticeable).

**Implied conditions.** Conditions that the validated parameter ranges imply (for torch SGD,
``1 - momentum > 0``, or the lower end of the curvature interval once the upper end holds) are
proved so once, symbolically, and then not evaluated; ``Verdicts.implied`` lists them with the
reason. ``full=True`` evaluates every condition and returns each one's value.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
import sympy as sp

from .. import symbols as S
from .._values import float_array
from ..charpoly import triplet
from ..errors import ConfigError, describe, listing
from ..methods import get_method
from ..optimizers import from_torch_sgd
from ..regions.conditions import strict_stability_conditions
from ._engine import (
    NONNEGATIVE,
    POSITIVE,
    REAL,
    UNIT,
    Range,
    Verdicts,
    checked_arrays,
    require,
    run_kernel,
)
from ._kernels import Kernel, compile_kernel
from .triplets import (
    interval_conditions,
)

__all__ = ["family_triplet", "lr_momentum_grid", "method_margins", "torch_sgd_margins"]


# ---------------------------------------------------------------------------------------
# Memory-1 triplets: Theorem 6.1 on (0, lambda_max] and Jury conditions on an interval
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# Optimizer families: torch SGD and the registry's memory-0/1 methods
# ---------------------------------------------------------------------------------------
_TORCH_PARAMS = ("lr", "momentum", "dampening", "weight_decay", "lambda_max")


@cache
def _torch_symbols() -> dict[str, sp.Symbol]:
    return {
        "lr": S.lr,
        "momentum": S.momentum,
        "dampening": S.dampening,
        "weight_decay": S.weight_decay,
        "lambda_max": S.lam_max,
    }


@cache
def _torch_kernel(nesterov: bool, zero: frozenset[str], reduce: bool) -> Kernel:
    """Jury conditions of torch SGD on ``[wd, lambda_max + wd]`` (the curvatures shifted by
    weight decay), with the parameters in ``zero`` set to 0. ``reduce`` drops the conditions
    implied by ``lr > 0``, ``0 <= momentum, dampening < 1``, ``weight_decay >= 0``."""

    sym = _torch_symbols()
    val = {n: (sp.S.Zero if n in zero else s) for n, s in sym.items()}
    damp = 0 if nesterov else val["dampening"]
    t = triplet(from_torch_sgd(val["lr"], val["momentum"], damp, nesterov=nesterov).algorithm)
    wd = val["weight_decay"]
    conds = interval_conditions(t.beta, t.q0, t.q1, wd, val["lambda_max"] + wd)
    params = tuple(
        sym[n] for n in _TORCH_PARAMS if n not in zero and not (nesterov and n == "dampening")
    )
    s, u = sp.symbols("s u", real=True)  # momentum = s^2/(1+s^2), dampening = u^2/(1+u^2)
    domain = {sym["momentum"]: s**2 / (1 + s**2), sym["dampening"]: u**2 / (1 + u**2)}
    return compile_kernel(conds, params, domain if reduce else None)


def torch_sgd_margins(
    *,
    lr: Any,
    momentum: Any = 0.0,
    dampening: Any = 0.0,
    weight_decay: Any = 0.0,
    nesterov: Any = False,
    lambda_max: Any,
    full: bool = False,
    threads: int | None = None,
) -> Verdicts:
    """Certified strict stability of ``torch.optim.SGD`` configs on curvatures
    ``(0, lambda_max]`` (shifted by weight decay), vectorised over any broadcast shape.

    Parameters broadcast together (scalars, grids such as ``lr[:, None]`` with
    ``momentum[None, :]``, or flat arrays); only the outputs are allocated at the broadcast
    shape. ``full=True`` evaluates and returns all seven Jury conditions; the default evaluates
    only those the parameter ranges do not imply (for plain SGD: one).

    >>> m = torch_sgd_margins(lr=[0.1, 0.1], momentum=0.9, lambda_max=[37.9, 38.1])
    >>> m.stable.tolist()
    [True, False]
    >>> m.names
    ('chi(-1) > 0 at lambda_hi',)
    """
    a, nest, shape = _torch_inputs(lr, momentum, dampening, weight_decay, nesterov, lambda_max)
    zero = frozenset(
        n for n in ("dampening", "weight_decay") if a[n].size and a[n].min() == 0 == a[n].max()
    )

    def run(flag: bool) -> Verdicts:
        return run_kernel(
            _torch_kernel(flag, zero, not full), a, _TORCH_RANGES, full=full, threads=threads,
            shape=shape,
        )  # fmt: skip

    if not np.any(nest) or np.all(nest):
        return run(bool(np.any(nest)))
    plain, nes = run(False), run(True)  # mixed: both families, then select
    pick = np.broadcast_to(nest, shape)
    margins = None if not full else np.where(pick, nes.margins, plain.margins)
    names = plain.names if full else tuple(dict.fromkeys(plain.names + nes.names))
    return Verdicts(
        np.where(pick, nes.stable, plain.stable),
        np.where(pick, nes.margin, plain.margin),
        names,
        tuple(dict.fromkeys(plain.implied + nes.implied)),
        margins,
        plain.n_certified + nes.n_certified,
    )


_TORCH_RANGES = {
    "lr": POSITIVE,
    "momentum": UNIT,
    "dampening": UNIT,
    "weight_decay": NONNEGATIVE,
    "lambda_max": POSITIVE,
}


def _torch_inputs(
    lr: Any, momentum: Any, dampening: Any, weight_decay: Any, nesterov: Any, lambda_max: Any
) -> tuple[dict[str, np.ndarray], np.ndarray, tuple[int, ...]]:
    """The checked arrays (dampening zeroed where torch keeps no buffer), the Nesterov flags
    and the broadcast shape; the ranges of the large arrays are checked in the blocked pass."""
    a = checked_arrays(
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
        lambda_max=lambda_max,
    )
    nest = np.asarray(nesterov) if not isinstance(nesterov, str) else np.asarray(None)
    if nest.dtype.kind not in "bi" or not np.all((nest == 0) | (nest == 1)):
        raise ConfigError(
            f"nesterov must be a boolean (or array of booleans), got {describe(nesterov)}"
        )
    nest = nest.astype(bool)
    try:
        shape = np.broadcast_shapes(nest.shape, *(x.shape for x in a.values()))
    except ValueError:
        raise ConfigError(
            f"nesterov must broadcast with the other inputs, got shape {nest.shape}"
        ) from None
    mu, tau = a["momentum"], a["dampening"]
    UNIT.check("dampening", tau)
    if np.any(nest) or tau.max(initial=0.0) > 0:
        UNIT.check("momentum", mu)
    if np.any(nest):
        require(
            nest & ((mu == 0) | (tau != 0)), "nesterov requires momentum > 0 and dampening = 0", mu
        )
    if tau.max(initial=0.0) > 0 and mu.min(initial=1.0) == 0:
        a["dampening"] = np.where(mu == 0, 0.0, tau)  # torch keeps no buffer without momentum
    return a, nest, shape


def _symbol_range(symbol: sp.Symbol) -> Range:
    if symbol.is_positive:
        return POSITIVE
    return NONNEGATIVE if symbol.is_nonnegative else REAL


@cache
def _method_kernel(name: str, reduce: bool) -> tuple[Kernel, tuple[str, ...]]:

    method = get_method(name)
    alg = method.symbolic()
    if alg.M > 1:
        raise ConfigError(
            f"vectorised checks cover memory 0 and 1, got "
            f"{describe(method.name)} with "
            f"M = {alg.M}; use stability.is_strictly_stable"
        )
    conds = strict_stability_conditions(alg, S.lam_max).conditions
    renamed = {
        s: sp.Symbol(p, **s.assumptions0)
        for s, p in zip(method.symbols, method.parameters, strict=True)
    }
    pairs = [(c.name, c.expr.subs(renamed)) for c in conds]
    params = (*renamed.values(), S.lam_max)
    return compile_kernel(pairs, params, {} if reduce else None), method.parameters


def method_margins(
    name: str, *, lambda_max: Any, full: bool = False, threads: int | None = None, **params: Any
) -> Verdicts:
    """Certified strict stability on ``(0, lambda_max]`` for a registered memory-0/1 method
    (``gd``, ``heavy_ball``, ``nesterov``, ``memory1``, ``momentum_kick``), vectorised over its
    parameters (given by name, broadcasting).

    >>> method_margins("heavy_ball", lr=[1.0, 3.0], momentum=0.5, lambda_max=1.0).stable.tolist()
    [True, False]
    >>> method_margins("gd", lr=[1.9, 2.0], lambda_max=1.0).stable.tolist()
    [True, False]
    """

    method = get_method(name)
    kernel, names = _method_kernel(method.name, not full)
    missing = [p for p in names if p not in params]
    unknown = sorted(set(params) - set(names), key=str)
    if missing or unknown:
        raise ConfigError(
            f"method {method.name!r} takes parameters {list(names)} and "
            f"lambda_max; missing {missing}, unknown parameter(s) "
            f"{listing(unknown)}"
        )
    a = checked_arrays(**{p: params[p] for p in names}, lambda_max=lambda_max)
    ranges = {p: _symbol_range(sym) for sym, p in zip(method.symbols, names, strict=True)}
    for p, (low, high, low_open, high_open) in method.ranges.items():
        ranges[p] = Range(
            -math.inf if low is None else float(low),
            math.inf if high is None else float(high),
            low_open,
            high_open,
        )
    return run_kernel(kernel, a, {**ranges, "lambda_max": POSITIVE}, full=full, threads=threads)


@cache
def family_triplet(name: str):
    """``(params, f)`` where ``f(*params) -> (beta, q0, q1)`` for a registered family.

    Families: the registry's memory-1 methods plus ``torch_sgd`` (lr, momentum, dampening)
    and ``torch_nesterov`` (lr, momentum).
    """

    mu, tau, lr = S.momentum, S.dampening, S.lr
    if name == "torch_sgd":
        alg = from_torch_sgd(lr, mu, tau).algorithm
        params = (lr, mu, tau)
    elif name == "torch_nesterov":
        alg = from_torch_sgd(lr, mu, 0, nesterov=True).algorithm
        params = (lr, mu)
    else:
        method = get_method(name)
        alg = method.symbolic()
        if alg.M != 1:
            raise ConfigError(f"family must be memory-1, got {describe(name)} with M = {alg.M}")
        params = method.symbols
    t = triplet(alg)
    return params, sp.lambdify(params, list(t), modules="numpy", cse=True)


def lr_momentum_grid(
    family: str, *, lambda_max: float, lr: Any, momentum: Any, full: bool = False, **fixed: Any
) -> tuple[np.ndarray, np.ndarray, Verdicts]:
    """Certified stability of an optimizer family on an ``lr x momentum`` grid.

    ``family`` is ``torch_sgd``, ``torch_nesterov`` or a registered memory-0/1 method whose
    parameters include ``lr`` and ``momentum`` (or ``beta``); other parameters (e.g.
    ``dampening``) are passed by name. Returns ``(LR, MOM, verdicts)`` with ``LR``/``MOM``
    from :func:`numpy.meshgrid` (shape ``(len(momentum), len(lr))``).

    >>> LR, MOM, m = lr_momentum_grid("heavy_ball", lambda_max=1.0, lr=[1.0, 3.0], momentum=[0.5])
    >>> m.stable.tolist()
    [[True, False]]
    """
    lr_ = float_array(lr, "lr").ravel()[None, :]
    mom = float_array(momentum, "momentum").ravel()[:, None]
    if family in ("torch_sgd", "torch_nesterov"):
        unknown = sorted(set(fixed) - {"dampening", "weight_decay"}, key=str)
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {listing(unknown)} for family {family!r}; "
                f"expected dampening, weight_decay"
            )
        v = torch_sgd_margins(
            lr=lr_,
            momentum=mom,
            lambda_max=lambda_max,
            full=full,
            nesterov=family == "torch_nesterov",
            **fixed,
        )
    else:
        names = get_method(family).parameters
        key = "momentum" if "momentum" in names else "beta"
        if "lr" not in names or key not in names:
            raise ConfigError(
                f"family {family!r} has parameters {list(names)}: no lr/momentum plane"
            )
        v = method_margins(
            family, lambda_max=lambda_max, full=full, **{"lr": lr_, key: mom}, **fixed
        )
    LR, MOM = np.meshgrid(lr_.ravel(), mom.ravel())
    return LR, MOM, v
