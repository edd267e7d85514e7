"""The largest learning rate that keeps a configuration stable, the other settings fixed.

With a batch size the answer satisfies both strict stability and ``U < 1`` and names the
condition that binds. The memory-1 triplet of every SGD family is proportional to the learning
rate at fixed momentum (checked on the configuration itself), so a whole bracket of candidate
rates is decided per call by the certified vectorised checkers; power laws too long to list use
:func:`~stability.noise.stability_sum` (zeta tail) in a bisection.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import progress
from .._values import to_exact, to_sympy
from ..algorithms import MemoryAlgorithm
from ..noise.models import get_noise_model
from ..noise.spectra import PowerLawSpectrum, Spectrum
from ..noise.sums import stability_sum
from ..optimizers import ConfiguredOptimizer, from_optimizer
from .bounds import memory1_noise_bounds
from .triplets import memory1_interval_margins

__all__ = ["largest_stable_lr"]


def _triplet_of(alg: MemoryAlgorithm) -> tuple[float, float, float]:
    """``(beta, q0, q1)`` of a memory-0/1 algorithm (GD as ``(0, 0, -alpha)``)."""
    if alg.M == 0:
        return 0.0, 0.0, -float(alg.alpha)
    t = alg.triplet()
    return float(t.beta), float(t.q0), float(t.q1)


def largest_stable_lr(
    opt: ConfiguredOptimizer, lambda_max: Any, spec_obj: Any, batch_size: Any, noise: Any
) -> tuple[float | None, str | None]:
    """Largest learning rate that keeps the verdict stable, the other settings fixed, and the
    condition that binds there (``None`` when the config has no learning rate to vary).

    With a batch size the answer satisfies both strict stability and ``U < 1``. The memory-1
    triplet of every SGD family is proportional to the learning rate at fixed momentum
    (checked on the config itself), so a whole bracket of candidate rates is decided per call
    by the certified vectorised checkers; power laws too long to list use
    :func:`~stability.noise.stability_sum` (zeta tail) in a bisection.
    """

    if opt.kind is None:
        return None, None
    kind, key = opt.kind.name, opt.kind.lr_key
    lr0 = float(opt.config[key])
    base = _triplet_of(opt.algorithm)
    probe = from_optimizer({"optimizer": kind, **opt.config, key: 2 * lr0})[0]
    twice = _triplet_of(probe.algorithm)
    if not (
        twice[0] == base[0] and np.allclose(twice[1:], np.multiply(base[1:], 2), rtol=1e-12, atol=0)
    ):
        return None, None  # not proportional to lr: no fast search (never happens for SGD)
    beta, q0, q1 = base[0], base[1] / lr0, base[2] / lr0
    shift = float(to_exact(opt.curvature_shift))
    if lambda_max is not None:
        lo, hi = 0.0, float(to_exact(to_sympy(lambda_max, "lambda_max")))
    elif isinstance(spec_obj, PowerLawSpectrum):
        lo, hi = 0.0, spec_obj.Lambda
    else:
        lo, hi = float(spec_obj.lam.min()), float(spec_obj.lam.max())
    lo, hi = lo + shift, hi + shift

    def strict_ok(lr: np.ndarray) -> np.ndarray:
        return memory1_interval_margins(
            beta=np.full(lr.shape, beta), q0=q0 * lr, q1=q1 * lr, lambda_lo=lo, lambda_hi=hi
        ).stable

    noise_ok = None
    long_law = isinstance(spec_obj, PowerLawSpectrum) and spec_obj.N is None
    if batch_size is not None and spec_obj is not None:
        model = get_noise_model(noise)
        B = float(to_sympy(batch_size, "batch_size"))
        if long_law or model.tau2 > 0:  # exact sums, one candidate at a time
            seen = spec_obj  # as in the report: weight decay shifts a finite spectrum only
            if shift and isinstance(spec_obj, Spectrum):
                seen = Spectrum(spec_obj.lam + shift, spec_obj.weights, spec_obj.c2)

            def noise_ok(lr: np.ndarray) -> np.ndarray:
                return np.array(
                    [stability_sum(_alg(opt, kind, key, x), seen, B, model).bounded for x in lr]
                )
        else:  # tau2 <= 0: certified bounds decide a bracket of candidates per call
            seen_shift = shift if isinstance(spec_obj, Spectrum) else 0.0  # as in the report

            def noise_ok(lr: np.ndarray) -> np.ndarray:
                return memory1_noise_bounds(
                    beta=np.full(lr.shape, beta),
                    q0=q0 * lr,
                    q1=q1 * lr,
                    spectrum=spec_obj,
                    shift=seen_shift,
                    batch_size=B,
                    tau1=model.tau1,
                    tau2=model.tau2,
                    points=False,  # undecided within ~1e-7 of U = 1: not ok (conservative)
                ).bounded

    def ok(lr: np.ndarray) -> np.ndarray:
        good = strict_ok(lr)
        if noise_ok is not None and np.any(good):
            good[good] = noise_ok(lr[good])
        return good

    if noise_ok is None:
        points = 66
    elif long_law or model.tau2 > 0:
        points = 3  # each candidate is an exact stability_sum: bisect
    else:  # a round costs points x a few hundred bins
        points = 66
    lr_hi = _upper_limit(strict_ok, lr0)
    if lr_hi == 0.0:
        return 0.0, "strict stability"
    if noise_ok is None:
        return lr_hi, "strict stability"
    top = _largest(ok, lr_hi, points)
    binding = "strict stability" if top >= lr_hi * (1 - 1e-6) else "mini-batch noise (U < 1)"
    if binding != "strict stability":
        binding += f"; noiseless limit {lr_hi:.6g}"
    return top, binding


def _alg(opt: ConfiguredOptimizer, kind: str, key: str, lr: float) -> MemoryAlgorithm:

    return from_optimizer({"optimizer": kind, **opt.config, key: float(lr)})[0].algorithm


def _upper_limit(ok: Any, lr0: float) -> float:
    """Largest ``lr`` with ``ok`` (assumed an interval ``(0, lr*)``), to 1e-6 relative."""
    hi = lr0
    if ok(np.array([hi]))[0]:
        while hi < 1e12 and ok(np.array([2 * hi]))[0]:
            hi *= 2
        lo, hi = hi, 2 * hi
    else:
        lo = 0.0
    return _refine(ok, lo, hi, 66)


def _largest(ok: Any, hi: float, points: int) -> float:
    """Largest ``lr`` in ``(0, hi]`` with ``ok``, to 1e-6 relative."""
    if ok(np.array([hi]))[0]:
        return hi
    lo = hi
    while lo > hi * 1e-12 and not ok(np.array([lo / 2]))[0]:
        lo /= 2
    lo /= 2
    if lo <= hi * 1e-12:
        return 0.0
    return _refine(ok, lo, min(2 * lo, hi), points)


def _refine(ok: Any, lo: float, hi: float, points: int) -> float:
    """Shrink ``[lo, hi]`` (``ok(lo)``, not ``ok(hi)``) to 1e-6 relative width, testing
    ``points - 2`` candidates per round (one call of the vectorised checker)."""
    start = hi - lo
    while hi - lo > 1e-6 * hi:
        # progress in orders of magnitude of the bracket, from its first width to 1e-6
        done = math.log(start / (hi - lo)) / max(math.log(start / (1e-6 * hi)), 1e-300)
        progress.update("largest stable lr", min(done, 0.99), 1.0)
        grid = np.linspace(lo, hi, points)[1:-1]
        good = grid[ok(grid)]
        lo_new = float(good.max()) if good.size else lo
        above = grid[grid > lo_new]
        hi = float(above.min()) if above.size else hi
        lo = lo_new
    return lo
