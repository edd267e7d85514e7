"""Searches on the stability sum: the critical batch size and the largest stable
learning rate of a family.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import progress
from .._values import describe, to_float
from ..algorithms import MemoryAlgorithm
from ..errors import ConfigError
from ..methods import get_method, torch_sgd
from .models import get_noise_model
from .spectra import PowerLawSpectrum, Spectrum, as_spectrum
from .sums import CHUNK, HEAD_TERMS, stability_sum, strict_on, ubar

__all__ = ["critical_batch_size", "max_stable_lr"]


def critical_batch_size(
    alg: MemoryAlgorithm, spectrum: Any, noise: Any = "gaussian", *, max_batch: float = 2**40
) -> float:
    """Smallest integer batch size ``B >= 1`` with ``U < 1`` (``inf`` if none up to
    ``max_batch``; ``inf`` also when the noiseless dynamics are unstable).

    ``U(B) = sum_k w_k (tau1/B) Ubar_k / (1 + (tau2/B) Ubar_k)`` decreases in ``B``; ``Ubar`` is
    computed once and ``B`` found by bisection (each candidate re-checks ``A_lambda``).
    """

    model = get_noise_model(noise)
    spec = as_spectrum(spectrum)
    if isinstance(spec, PowerLawSpectrum) and (spec.N is None or spec.N > HEAD_TERMS):

        def ok(B: float) -> bool:
            return stability_sum(alg, spec, B, model).bounded
    else:
        if isinstance(spec, PowerLawSpectrum):
            spec = spec.truncated(spec.N)
        lam = spec.lam
        res = strict_on(alg, lam)
        if not res.stable:
            return math.inf
        w = spec.weights
        ub = np.empty(lam.shape)  # Ubar, computed once, chunk by chunk
        for start in range(0, lam.size, CHUNK):
            ub[start : start + CHUNK] = ubar(alg, lam[start : start + CHUNK])
            progress.update("critical batch size", min(start + CHUNK, lam.size), lam.size)
        ub_max = float(ub.max())

        def ok(B: float) -> bool:
            k2 = model.tau2 / B
            if model.tau2 > 0:
                return stability_sum(alg, spec, B, model).bounded
            if 1 + k2 * ub_max <= 0:  # tau2 <= 0: the largest Ubar decides A_lambda
                return False
            total = math.fsum(
                float(np.sum(w[i : i + CHUNK] * ub[i : i + CHUNK] / (1 + k2 * ub[i : i + CHUNK])))
                for i in range(0, lam.size, CHUNK)
            )
            return model.tau1 / B * total < 1

    if ok(1.0):
        return 1.0
    if not ok(max_batch):
        return math.inf
    lo, hi = 1.0, max_batch
    while hi - lo > 0.5:
        mid = math.sqrt(lo * hi) if hi / lo > 4 else (lo + hi) / 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    B = float(math.ceil(hi))
    while B > 1 and ok(B - 1):
        B -= 1
    return B


def max_stable_lr(
    family: str,
    spectrum: Any,
    batch_size: Any,
    noise: Any = "gaussian",
    *,
    rtol: float = 1e-9,
    **fixed: Any,
) -> float:
    """Largest learning rate of a named family (``gd``, ``heavy_ball``, ``nesterov``,
    ``momentum_kick``; other parameters fixed by keyword) that is strictly stable on the
    spectrum and has ``U < 1``, to relative precision ``rtol``.

    The admissible set is assumed to be an interval ``(0, lr*)`` (it is for these families: U
    grows with the learning rate); it is scanned on a geometric grid first, and a
    non-admissible point below the answer raises.

    ``family="torch_sgd"`` is ``torch.optim.SGD`` with ``momentum``, ``dampening``,
    ``weight_decay`` and ``nesterov`` fixed by keyword (weight decay shifts a finite spectrum).

    >>> round(max_stable_lr("gd", [1.0], batch_size=1e12), 6)   # noiseless limit: 2/lambda
    2.0
    """

    spec = as_spectrum(spectrum)
    if family == "torch_sgd":
        unknown = sorted(set(fixed) - {"momentum", "dampening", "weight_decay", "nesterov"})
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {unknown} for family 'torch_sgd'; allowed: "
                "momentum, dampening, weight_decay, nesterov"
            )
        shift = to_float(fixed.pop("weight_decay", 0.0), "weight_decay")
        if shift < 0:
            raise ConfigError(f"weight_decay must be in [0, inf), got {describe(shift)}")
        torch_sgd(1.0, **fixed)  # validates the fixed settings once
        if shift != 0:
            if not isinstance(spec, Spectrum):
                raise ConfigError(
                    "weight decay with a power law: pass its eigenvalues "
                    "(power_law(...).truncated(N)) to shift them"
                )
            spec = Spectrum(spec.lam + float(shift), spec.weights, spec.c2)

        def build(lr: float) -> MemoryAlgorithm:
            return torch_sgd(lr, **fixed)
    else:
        method = get_method(family)
        if "lr" not in method.parameters:
            raise ConfigError(f"family {family!r} has no lr parameter")
        missing = set(method.parameters) - {"lr"} - set(fixed)
        if missing:
            raise ConfigError(f"family {family!r} needs {sorted(missing)} fixed by keyword")

        def build(lr: float) -> MemoryAlgorithm:
            return method.numeric(lr=lr, **fixed)

    def ok(lr: float) -> bool:
        return stability_sum(build(lr), spec, batch_size, noise).bounded

    scale = 1.0 / spec.lambda_max
    grid = scale * np.geomspace(1e-8, 1e3, 45)
    flags = [ok(float(x)) for x in grid]
    if not flags[0]:
        return 0.0
    first_bad = next((i for i, f in enumerate(flags) if not f), None)
    if first_bad is None:
        return math.inf
    if any(flags[first_bad:]):
        raise ConfigError(f"the stable learning rates of {family!r} are not an interval here")
    lo, hi = float(grid[first_bad - 1]), float(grid[first_bad])
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo
