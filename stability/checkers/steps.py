"""Certified verdicts of a configured optimizer at every step of a schedule.

A schedule moves the learning rate, and for OneCycleLR and CyclicLR the momentum (Adam: its
``beta1``) too. Each step's configuration is the configured optimizer with those two values
replaced; its memory-1 triplet is an exact expression in them (built once, symbolically, from
the exact values of the other settings, then lambdified), so all the steps are decided in one
vectorised call of the certified checkers: strict stability on the curvature interval, and
with a batch size the certified noise bounds. Distinct ``(lr, momentum)`` pairs are decided
once each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from ..errors import ConfigError
from ..methods import _exact_value
from ..noise.data import DataNoise
from ..noise.models import get_noise_model
from ..noise.spectra import PowerLawSpectrum, Spectrum
from ..noise.sums import _check_shift, stability_sum
from ..optimizers import ConfiguredOptimizer, from_optimizer
from .bounds import memory1_noise_bounds
from .searches import curvature_interval
from .triplets import memory1_interval_margins

__all__ = ["MAX_SUMS", "stable_steps"]

_LR, _MOM, _DAMP = sp.symbols("lr momentum dampening", nonnegative=True)
MAX_SUMS = 64
"""Most distinct momenta along a schedule whose noise is decided by certified sums (infinite
power laws, ``tau2 > 0``, the data model: a bisection over the learning rates per momentum);
beyond, the noise along the schedule is reported as undecided."""


def _triplet_function(opt: ConfiguredOptimizer) -> Callable[..., Any]:
    """``(lr, momentum) -> (beta, q0, q1)`` arrays for the optimizer's family (torch keeps no
    momentum buffer at momentum 0, so SGD's dampening is dropped there)."""
    kind = opt.kind
    cfg = {k: _exact_value(v)[0] for k, v in opt.config.items()}
    cfg[kind.lr_key] = _LR
    sgd = kind.family == "sgd"
    if sgd:
        cfg["momentum"] = _MOM
        if "dampening" in cfg:
            cfg["dampening"] = _DAMP
    elif "betas" in cfg:
        cfg["betas"] = (_MOM, cfg["betas"][1])
    else:
        cfg["b1"] = _MOM
    alg = from_optimizer({"optimizer": kind.name, **cfg})[0].algorithm
    t = alg.triplet() if alg.M == 1 else (0, 0, -alg.alpha)
    f = sp.lambdify((_LR, _MOM, _DAMP), list(t), modules="numpy")
    damp = float(opt.config.get("dampening", 0) or 0) if sgd else 0.0

    def triplets(lr: np.ndarray, mom: np.ndarray) -> tuple[np.ndarray, ...]:
        d = np.where(mom == 0, 0.0, damp)
        return tuple(np.broadcast_to(np.asarray(v, dtype=float), lr.shape) for v in f(lr, mom, d))

    return triplets


def stable_steps(
    opt: ConfiguredOptimizer,
    lrs: Any,
    momenta: Any = None,
    *,
    lambda_max: Any = None,
    spectrum: Any = None,
    batch_size: Any = None,
    noise: Any = "gaussian",
) -> tuple[np.ndarray, bool]:
    """``(stable at each step, decided)``: the certified verdict of ``opt`` with the learning
    rate ``lrs[t]`` and the momentum ``momenta[t]`` (``None``: the configuration's own) on the
    curvature (``lambda_max``, or a spectrum), with the noise of ``batch_size`` when given.
    ``decided`` is false when the noise along the schedule could not be certified (then the
    steps whose noise is unknown count as not stable)."""
    if opt.kind is None:
        raise ConfigError("a schedule's steps need a framework optimizer (its lr to vary)")
    lrs = np.asarray(lrs, dtype=float).ravel()
    mom0 = _momentum(opt)
    moms = np.full(lrs.shape, mom0) if momenta is None else np.asarray(momenta, float).ravel()
    if moms.shape != lrs.shape:
        raise ConfigError(f"momenta must have one value per step ({lrs.size}), got {moms.shape}")
    pairs, back = np.unique(np.stack([lrs, moms]), axis=1, return_inverse=True)
    lr_u, mom_u = pairs
    beta, q0, q1 = _triplet_function(opt)(lr_u, mom_u)
    shift = _check_shift(opt.curvature_shift)[1]
    lo, hi = curvature_interval(lambda_max, spectrum, shift)
    ok = memory1_interval_margins(beta=beta, q0=q0, q1=q1, lambda_lo=lo, lambda_hi=hi).stable
    ok &= lr_u * float(opt.config.get("weight_decay", 0) or 0) < 2  # AdamW's domain
    still = lr_u == 0  # no step is taken (annealed to 0): nothing can grow
    ok |= still
    decided = True
    if batch_size is not None and spectrum is not None and np.any(ok & ~still):
        moving = ok & ~still
        if isinstance(noise, DataNoise):
            return _data_steps(opt, noise, lr_u, mom_u, ok, moving, batch_size, shift, back)
        model = get_noise_model(noise)
        finite = isinstance(spectrum, Spectrum) or (
            isinstance(spectrum, PowerLawSpectrum) and spectrum.N is not None
        )
        if finite and model.tau2 <= 0:
            ok[moving] = memory1_noise_bounds(
                beta=beta[moving], q0=q0[moving], q1=q1[moving], spectrum=spectrum,
                shift=float(shift), batch_size=float(batch_size), tau1=model.tau1,
                tau2=model.tau2,
            ).bounded  # fmt: skip
        else:

            def bounded(i: int) -> bool:
                alg = _algorithm(opt, lr_u[i], mom_u[i])
                return stability_sum(alg, spectrum, batch_size, model, shift=shift).bounded

            decided = _monotone_verdicts(ok, moving, lr_u, mom_u, bounded)
    return ok[back.ravel()], decided


def _monotone_verdicts(
    ok: np.ndarray,
    moving: np.ndarray,
    lr_u: np.ndarray,
    mom_u: np.ndarray,
    bounded: Callable[[int], bool],
) -> bool:
    """Decide the noise of the ``moving`` steps in place: at each momentum the steps are
    sorted by learning rate and the first unbounded one is found by bisection (the noise grows
    with the learning rate at a fixed momentum, as the largest-stable-lr search assumes), so
    ``log2(steps) + 1`` certified sums per momentum decide every step. More than
    :data:`MAX_SUMS` distinct momenta: the steps count as not stable and ``False`` (undecided)
    is returned."""
    idx = np.flatnonzero(moving)
    momenta = np.unique(mom_u[idx])
    if momenta.size > MAX_SUMS:
        ok[moving] = False
        return False
    for m in momenta:
        sel = idx[mom_u[idx] == m]
        sel = sel[np.argsort(lr_u[sel], kind="stable")]
        lo, hi = 0, sel.size  # sel[:lo] bounded, sel[hi:] not
        while lo < hi:
            mid = (lo + hi) // 2
            if bounded(int(sel[mid])):
                lo = mid + 1
            else:
                hi = mid
        ok[sel[lo:]] = False
    return True


def _data_steps(
    opt: ConfiguredOptimizer,
    model: DataNoise,
    lr_u: np.ndarray,
    mom_u: np.ndarray,
    ok: np.ndarray,
    moving: np.ndarray,
    batch_size: Any,
    shift: Any,
    back: np.ndarray,
) -> tuple[np.ndarray, bool]:
    """The data model's verdict of each distinct moving step: certified ``rho`` at the
    steps a bisection per momentum visits (:func:`_monotone_verdicts`)."""

    def bounded(i: int) -> bool:
        alg = _algorithm(opt, lr_u[i], mom_u[i])
        return model.radius(alg, batch_size, shift=shift, decide=True).stable

    decided = _monotone_verdicts(ok, moving, lr_u, mom_u, bounded)
    return ok[back.ravel()], decided


def _momentum(opt: ConfiguredOptimizer) -> float:
    cfg = opt.config
    if opt.kind.family == "sgd":
        return float(cfg.get("momentum", 0) or 0)
    if "betas" in cfg:
        return float(cfg["betas"][0])
    return float(cfg.get("b1", 0.9))


def _algorithm(opt: ConfiguredOptimizer, lr: float, mom: float) -> Any:
    cfg = dict(opt.config)
    cfg[opt.kind.lr_key] = float(lr)
    if opt.kind.family == "sgd":
        cfg["momentum"] = float(mom)
    elif "betas" in cfg:
        cfg["betas"] = (float(mom), cfg["betas"][1])
    else:
        cfg["b1"] = float(mom)
    return from_optimizer({"optimizer": opt.kind.name, **cfg})[0].algorithm
