"""The critical batch size: the smallest batch with a certified bounded mini-batch noise (``U < 1``
on a spectrum, or ``rho < 1`` from the data), by a search over the powers of two and then the
integers between."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import progress
from .._values import to_float
from ..algorithms import MemoryAlgorithm
from ..errors import ConfigError, describe
from ..noise.data import DataNoise
from ..noise.spectra import PowerLawSpectrum, Spectrum, as_spectrum
from ..noise.sums import _check_shift, stability_sum
from ..noise.terms import _triplet
from ..regions.verdicts import is_strictly_stable
from .bounds import memory1_noise_bounds
from .searches import _ROUND, _noise_model, _strict_target

__all__ = ["critical_batch_size"]


def critical_batch_size(
    alg: MemoryAlgorithm,
    spectrum: Any,
    noise: Any = "gaussian",
    *,
    shift: Any = 0,
    max_batch: float = 2.0**996,
) -> float:
    """Smallest integer batch size ``B >= 1`` with a certified ``U < 1`` (``inf`` if none up to
    ``max_batch``, and when the noiseless dynamics are unstable). ``U`` decreases in ``B``.
    With ``noise`` the data noise model (:class:`~stability.noise.DataNoise`) it is the
    smallest ``B`` with a certified ``rho < 1``, and ``spectrum`` may be ``None``.

    >>> from stability import heavy_ball
    >>> critical_batch_size(heavy_ball(0.5, 0.9), [1.0, 0.1, 0.01])
    6.0
    """
    model = _noise_model(noise)
    if isinstance(model, DataNoise):
        return model.critical_batch_size(alg, shift)
    spec = as_spectrum(spectrum)
    omega, omega_x = _check_shift(shift)
    top = to_float(max_batch, "max_batch")
    if top < 1:
        raise ConfigError(f"max_batch must be in [1, inf), got {describe(max_batch)}")
    if not is_strictly_stable(alg, _strict_target(spec), shift=omega_x).stable:
        return math.inf
    finite = isinstance(spec, Spectrum) or (isinstance(spec, PowerLawSpectrum) and spec.N)
    trip = tuple(float(x) for x in _triplet(alg, exact=True)) if alg.M <= 1 else None

    def one_by_one(B: np.ndarray) -> np.ndarray:
        return np.array([stability_sum(alg, spec, b, model, shift=omega_x).bounded for b in B])

    if trip is not None and finite and model.tau2 <= 0:

        def vectorised(B: np.ndarray) -> np.ndarray:
            return memory1_noise_bounds(
                beta=trip[0], q0=trip[1], q1=trip[2], spectrum=spec, shift=omega,
                batch_size=B, tau1=model.tau1, tau2=model.tau2,
            ).bounded  # fmt: skip

        found = _smallest_batch(vectorised, top, _ROUND)
        if math.isfinite(found):
            return _refined(found, one_by_one, trip, spec, omega, model)
        # the bounds cannot certify a term whose Jury margin is below their rounding
        # allowance (a step size within 1e-13 of its limit): the exact sums can
    return _smallest_batch(one_by_one, top, 3)


def _refined(
    found: float,
    exact: Callable[[np.ndarray], np.ndarray],
    trip: tuple[float, float, float],
    spec: Any,
    omega: float,
    model: Any,
) -> float:
    """The smallest bounded batch at or below ``found`` (certified by the float bounds):
    below it the bounds may be merely undecided (``U`` within their rounding allowance of 1,
    about 1e-8), so the batches down to the largest one the bounds certify as unbounded are
    bisected with the exact sums (:func:`~stability.noise.stability_sum`, which re-evaluates
    terms exactly near 1)."""
    if found <= 1:
        return found
    steps = found - 2.0 ** np.arange(0, int(math.log2(found)) + 1)
    steps = np.unique(np.concatenate([[0.0], steps[steps >= 1]]))[::-1]
    bounds = memory1_noise_bounds(
        beta=trip[0], q0=trip[1], q1=trip[2], spectrum=spec, shift=omega,
        batch_size=np.maximum(steps, 1.0), tau1=model.tau1, tau2=model.tau2,
    )  # fmt: skip
    lower, mid_u = bounds.lower, (bounds.lower + bounds.upper) / 2
    unbounded = steps[(lower >= 1) & (steps >= 1)]
    lo, hi = (float(unbounded.max()) if unbounded.size else 0.0), found
    # a guess from the float values (U is smooth in B): the exact sums at the guess and one
    # below it usually close the bracket at once
    i = np.flatnonzero(steps == lo)
    if i.size and lo >= 1 and np.isfinite(mid_u[i[0]]) and mid_u[0] < 1 < mid_u[i[0]]:
        u_lo, u_hi = float(mid_u[i[0]]), float(mid_u[0])
        guess = math.ceil(lo + (hi - lo) * (u_lo - 1) / (u_lo - u_hi))
        for g in (guess, guess - 1, guess + 1):
            if lo < g < hi:
                if exact(np.array([float(g)]))[0]:
                    hi = float(g)
                else:
                    lo = float(g)
    while hi - lo > 1 and hi - lo > hi * 2.0**-52:
        mid = math.floor((lo + hi) / 2)
        if exact(np.array([float(mid)]))[0]:
            hi = float(mid)
        else:
            lo = float(mid)
    return hi


def _smallest_batch(ok: Callable[[np.ndarray], Any], top: float, points: int) -> float:
    """Smallest integer ``B`` in ``[1, top]`` with ``ok`` (monotone), or ``inf``. The powers of
    two bracket it (all at once when ``ok`` is vectorised, by bisection on the exponent when
    each candidate is a full sum), then rounds of candidates narrow the bracket to adjacent
    integers (adjacent floats beyond 2^53)."""
    powers = 2.0 ** np.arange(0, int(math.log2(top)) + 1)
    if points > 3:
        good = ok(powers)
        if not good.any():
            return math.inf
        k = int(np.argmax(good))
    else:
        if not ok(powers[-1:])[0]:
            return math.inf
        lo_k, hi_k = -1, powers.size - 1  # ok(2^hi_k); not ok(2^lo_k) (or below 1)
        while hi_k - lo_k > 1:
            mid = (lo_k + hi_k) // 2
            lo_k, hi_k = (lo_k, mid) if ok(powers[mid : mid + 1])[0] else (mid, hi_k)
        k = hi_k
    lo, hi = (0.0, 1.0) if k == 0 else (powers[k - 1], powers[k])  # bad lo, good hi
    width = math.log2(max(hi - lo, 2))
    while True:
        cand = np.unique(np.round(np.linspace(lo, hi, points)[1:-1]))
        cand = cand[(cand > lo) & (cand < hi)]
        if not cand.size:
            break
        g = ok(cand)
        hi = float(cand[np.argmax(g)]) if g.any() else hi
        lo = float(cand[~g].max()) if (~g).any() and cand[~g].max() < hi else lo
        progress.update("critical batch size", width - math.log2(max(hi - lo, 1)), width)
    progress.done("critical batch size")
    return float(hi)
