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

__all__ = [
    "Memory1Margins",
    "family_triplet",
    "lr_momentum_grid",
    "memory1_interval_margins",
    "memory1_margins",
    "memory1_noise_sum",
    "torch_sgd_margins",
]

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
    return _certified(names, f, g, h, (b, a0, a1, lm))


@cache
def family_triplet(name: str):
    """``(params, f)`` where ``f(*params) -> (beta, q0, q1)`` for a registered family.

    Families: the registry's memory-1 methods plus ``torch_sgd`` (lr, momentum, dampening)
    and ``torch_nesterov`` (lr, momentum).
    """
    from .algorithms import get_method
    from .charpoly import triplet
    from .optimizers import from_torch_sgd

    mu, tau = sp.symbols("momentum dampening", real=True)
    lr = sp.Symbol("lr", positive=True)
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


# ---------------------------------------------------------------------------------------
# Interval spectra and the torch SGD family
# ---------------------------------------------------------------------------------------
@cache
def _interval_conditions():
    """Jury conditions of chi_lambda, linear in lambda, at both ends of [lo, hi]."""
    lo, hi = sp.symbols("lam_lo lam_hi", nonnegative=True)
    b, a0, a1 = S.beta, S.q0, S.q1
    conds = [
        ("q0 + q1 < 0 (alpha_eff > 0)", -(a0 + a1)),
        ("chi(-1) > 0 at lambda_hi", 2 * (1 + b) - hi * (a0 - a1)),
        ("chi(-1) > 0 at lambda_lo", 2 * (1 + b) - lo * (a0 - a1)),
        ("1 - chi(0) > 0 at lambda_lo", 1 - b + lo * a0),
        ("1 - chi(0) > 0 at lambda_hi", 1 - b + hi * a0),
        ("1 + chi(0) > 0 at lambda_lo", 1 + b - lo * a0),
        ("1 + chi(0) > 0 at lambda_hi", 1 + b - hi * a0),
    ]
    exprs = [e for _, e in conds]
    scales = [sp.Add(*(sp.Abs(t) for t in sp.Add.make_args(sp.expand(e)))) for e in exprs]
    params = (b, a0, a1, lo, hi)
    f = sp.lambdify(params, exprs, modules="numpy", cse=True)
    g = sp.lambdify(params, scales, modules="numpy", cse=True)
    h = sp.lambdify(params, exprs, modules=[{"Abs": abs}, "math"])
    return tuple(n for n, _ in conds), f, g, h


def memory1_interval_margins(*, beta: Any, q0: Any, q1: Any, lambda_lo: Any,
                             lambda_hi: Any) -> Memory1Margins:
    """Certified strict stability of memory-1 triplets for every curvature in
    ``[lambda_lo, lambda_hi]`` (``lambda_lo = 0`` means ``(0, lambda_hi]``: Theorem 6.1).

    The Jury conditions are linear in ``lambda``, so the end points decide.

    >>> m = memory1_interval_margins(beta=0.9, q0=0.0, q1=-0.1, lambda_lo=[0.0, 2.0],
    ...                              lambda_hi=[37.0, 39.0])
    >>> m.stable.tolist()     # weight decay 2 shifts (0, 37] to [2, 39]: beyond 38
    [True, False]
    """
    b, a0, a1, lo, hi = _arrays(beta=beta, q0=q0, q1=q1, lambda_lo=lambda_lo,
                                lambda_hi=lambda_hi)
    if np.any(lo < 0) or np.any(hi <= 0) or np.any(lo > hi):
        raise ConfigError("need 0 <= lambda_lo <= lambda_hi and lambda_hi > 0")
    names, f, g, h = _interval_conditions()
    return _certified(names, f, g, h, (b, a0, a1, lo, hi))


def _certified(names, f, g, h, args) -> Memory1Margins:
    shape = args[0].shape
    margins = np.array([np.broadcast_to(x, shape) for x in f(*args)], dtype=float)
    scales = np.array([np.broadcast_to(x, shape) for x in g(*args)], dtype=float)
    stable = np.all(margins > 0, axis=0)
    close = np.any(np.abs(margins) <= _CERTIFY_RTOL * np.maximum(scales, 1e-300), axis=0)
    idx = np.flatnonzero(close.ravel())
    flat = stable.reshape(-1)
    for i in idx:
        exact = [Fraction(float(x.reshape(-1)[i])) for x in args]
        flat[i] = all(v > 0 for v in h(*exact))
    return Memory1Margins(names, margins, stable, int(idx.size))


def _check_torch_ranges(lr, mu, tau, wd, nest) -> None:
    def bad(mask: np.ndarray, message: str, values: np.ndarray) -> None:
        if np.any(mask):
            i = int(np.flatnonzero(mask.ravel())[0])
            raise ConfigError(f"{message}, got {float(values.ravel()[i])!r} "
                              f"({int(mask.sum())} config(s), first at flat index {i})")

    bad(~(lr > 0), "lr must be in (0, inf)", lr)
    bad(~((mu >= 0) & (mu < 1)), "momentum must be in [0, 1)", mu)
    bad(~((tau >= 0) & (tau < 1)), "dampening must be in [0, 1)", tau)
    bad(~(wd >= 0), "weight_decay must be in [0, inf)", wd)
    bad(nest & ((mu == 0) | (tau != 0)), "nesterov requires momentum > 0 and dampening = 0",
        mu)


def torch_sgd_margins(*, lr: Any, momentum: Any = 0.0, dampening: Any = 0.0,
                      weight_decay: Any = 0.0, nesterov: Any = False,
                      lambda_max: Any) -> Memory1Margins:
    """Certified strict stability of ``torch.optim.SGD`` configs on curvatures
    ``(0, lambda_max]`` (shifted by weight decay), vectorised over any broadcast shape.

    >>> m = torch_sgd_margins(lr=[0.1, 0.1], momentum=0.9, lambda_max=[37.9, 38.1])
    >>> m.stable.tolist()
    [True, False]
    """
    lr_, mu, tau, wd, lm = _arrays(lr=lr, momentum=momentum, dampening=dampening,
                                   weight_decay=weight_decay, lambda_max=lambda_max)
    nest = np.broadcast_to(np.asarray(nesterov, dtype=bool), lr_.shape)
    _check_torch_ranges(lr_, mu, tau, wd, nest)
    if np.any(lm <= 0):
        raise ConfigError("lambda_max must be in (0, inf)")
    tau = np.where(mu == 0, 0.0, tau)  # torch ignores dampening without momentum
    _, f_plain = family_triplet("torch_sgd")
    _, f_nest = family_triplet("torch_nesterov")
    tp = [np.broadcast_to(np.asarray(x, dtype=float), lr_.shape) for x in f_plain(lr_, mu, tau)]
    tn = [np.broadcast_to(np.asarray(x, dtype=float), lr_.shape) for x in f_nest(lr_, mu)]
    beta, q0, q1 = (np.where(nest, n, p) for n, p in zip(tn, tp, strict=True))
    return memory1_interval_margins(beta=beta, q0=q0, q1=q1, lambda_lo=wd, lambda_hi=lm + wd)


# ---------------------------------------------------------------------------------------
# The noise condition U < 1, vectorised over configurations x eigenvalues
# ---------------------------------------------------------------------------------------
def memory1_noise_sum(*, beta: Any, q0: Any, q1: Any, eigenvalues: Any, batch_size: Any,
                      weights: Any = None, tau1: float = 1.0, tau2: float = -1.0,
                      chunk: int = 2**22) -> np.ndarray:
    """``U`` for every memory-1 triplet (broadcast shape), summed over a finite spectrum.

    ``inf`` where some ``S_lambda`` (pointwise Jury) or ``A_lambda`` (``1 + (tau2/B) Ubar > 0``
    for ``tau2 <= 0``) is not strictly stable. Work is chunked so that at most ``chunk``
    config-eigenvalue pairs are in memory at once. ``tau2 > 0`` is not vectorised (use
    :func:`stability.noise.stability_sum`).

    >>> float(memory1_noise_sum(beta=0.0, q0=0.0, q1=-1.0, eigenvalues=[1, 0.5, 0.25, 0.125],
    ...                         batch_size=10, tau2=0.0).round(14))
    0.15428571428571
    """
    if tau2 > 0:
        raise ConfigError("tau2 > 0 is not vectorised; use stability.noise.stability_sum")
    if tau1 < 0 or tau2 > tau1:
        raise ConfigError(f"need tau1 >= 0 and tau2 <= tau1, got ({tau1}, {tau2})")
    b, a0, a1, B = _arrays(beta=beta, q0=q0, q1=q1, batch_size=batch_size)
    if np.any(B < 1):
        raise ConfigError("batch_size must be in [1, inf)")
    lam = np.asarray(eigenvalues, dtype=float).ravel()
    if lam.size == 0 or not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise ConfigError("eigenvalues must be a non-empty array of finite positive numbers")
    w = np.ones_like(lam) if weights is None else np.asarray(weights, dtype=float).ravel()
    if w.shape != lam.shape or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ConfigError("weights must be finite, >= 0 and one per eigenvalue")
    shape = b.shape
    bf, p0, p1, Bf = (x.reshape(-1) for x in (b, a0, a1, B))
    out = np.empty(bf.size)
    step = max(1, chunk // lam.size)
    for s in range(0, bf.size, step):
        sl = slice(s, s + step)
        be, x0, x1, bb = (v[sl, None] for v in (bf, p0, p1, Bf))
        L = lam[None, :]
        m_minus = 1 - be + L * x0          # 1 - chi(0)
        m_pm = 2 * (1 + be) - L * (x0 - x1)  # chi(-1)
        ok = (-(x0 + x1) > 0) & (m_minus > 0) & (m_pm > 0) & (1 + be - L * x0 > 0)
        ub = L * (-(1 + be) * (x0 + x1) + L * x0 * (x0 - x1)) / (m_minus * m_pm)
        k2 = tau2 / bb
        ok &= 1 + k2 * ub > 0
        terms = tau1 / bb * ub / (1 + k2 * ub)
        U = np.where(ok, terms, 0.0) @ w
        out[sl] = np.where(ok.all(axis=1), U, np.inf)
    return out.reshape(shape)
