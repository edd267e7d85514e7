"""Compressed spectra for the certified noise bounds (docs §4.3): the largest eigenvalues one by
one, the rest grouped into curvature intervals of geometric width, each with its total weight.

The bins of a power law are index ranges (``lambda_k = Lambda k^-nu`` is monotone in ``k``);
the bins of an eigenvalue array are found in two streaming passes, so memory stays bounded.
Compressions are remembered per spectrum (spectra are immutable). Written here because no
library bins a weighted spectrum into certified intervals.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..noise.spectra import PowerLawSpectrum, Spectrum, as_spectrum

__all__ = ["Bins", "compress"]

_cache: dict[tuple[Any, ...], tuple[Any, Any]] = {}  # compressions per (spectrum, key)


_PASS = 1 << 20  # eigenvalues per chunk of the streaming passes


@dataclass(frozen=True)
class Bins:
    """A spectrum as weighted curvature intervals: every eigenvalue (weight) of the spectrum
    lies in exactly one ``[lo_j, hi_j]`` and ``weight_j`` is their total weight; a point bin
    has ``lo_j == hi_j``."""

    lo: np.ndarray
    hi: np.ndarray
    weight: np.ndarray
    exact: bool  # every bin is a single eigenvalue: the bounds are the sum itself

    def __len__(self) -> int:
        return int(self.lo.size)


def _chunks(a: np.ndarray) -> Iterator[slice]:
    for s in range(0, a.size, _PASS):
        yield slice(s, min(a.size, s + _PASS))


def _weights_of(spec: Spectrum, sl: slice) -> np.ndarray:
    return np.asarray(spec.weights[sl], dtype=float)


def _remembered(spec: Any, key: tuple[Any, ...], compute: Any) -> Any:
    """``compute()`` for ``spec``, remembered for the last few spectra while they live (a
    search calls the bounds many times on one spectrum, and an array spectrum costs passes
    over all its eigenvalues)."""
    full = (id(spec), *key)
    hit = _cache.get(full)
    if hit is not None and hit[0]() is spec:
        return hit[1]
    value = compute()
    if len(_cache) >= 8:
        _cache.pop(next(iter(_cache)))
    _cache[full] = (weakref.ref(spec), value)
    return value


def _compressed(spec: Spectrum | PowerLawSpectrum, head: int, ratio: float) -> Bins:
    return _remembered(spec, ("bins", head, float(ratio)), lambda: compress(spec, head, ratio))


def _extremes(spec: Spectrum) -> tuple[float, float]:
    return _remembered(spec, ("extremes",), lambda: (float(spec.lam.min()), float(spec.lam.max())))


def compress(spectrum: Any, head: int = 256, ratio: float = 1.02) -> Bins:
    """Bins of a spectrum: the ``head`` largest eigenvalues one by one, the rest in geometric
    curvature intervals of ratio ``ratio`` (a power law: index ranges of that ratio).

    >>> from stability.noise import power_law
    >>> b = compress(power_law(2, N=10**12), head=100, ratio=1.05)
    >>> len(b) < 700, float(b.weight.sum()) == 1e12
    (True, True)
    """
    if not (isinstance(head, int) and head >= 1):
        raise ConfigError(f"head must be a positive integer, got {head!r}")
    if not (isinstance(ratio, float | int) and 1 < ratio <= 4):
        raise ConfigError(f"ratio must be in (1, 4], got {ratio!r}")
    spec = as_spectrum(spectrum)
    if isinstance(spec, PowerLawSpectrum):
        return _power_law_bins(spec, head, float(ratio))
    return _array_bins(spec, head, float(ratio))


def _power_law_bins(spec: PowerLawSpectrum, head: int, ratio: float) -> Bins:
    if spec.N is None:
        raise ConfigError(
            "an infinite power law has no finite bins; give N (stability_sum sums infinite "
            "laws with a zeta-function tail)"
        )
    n = spec.N
    k_head = min(head, n)
    lam_head = spec.eigenvalues(k_head)  # the floats the finite spectrum would hold
    if k_head == n:
        w = np.ones(k_head)
        return Bins(lam_head, lam_head, w, True)
    # index ranges in floats (N may be 1e300: far beyond integer arithmetic in numpy); the
    # curvatures of the indices [ka, kb) lie in [Lambda kb^-nu, Lambda ka^-nu]
    count = 2 + int((math.log(float(n)) - math.log(k_head)) / math.log(ratio))
    edges = np.unique(np.floor(np.geomspace(float(k_head + 1), float(n) + 1.0, count)))
    edges[0], edges[-1] = float(k_head + 1), float(n) + 1.0
    ka, kb = edges[:-1], edges[1:]
    if float(n) < 2.0**52:  # integer indices: the ranges [ka, kb - 1] are exact and tighter
        kb = kb - 1
        count = kb - ka + 1
    else:
        count = kb - ka
    widen = 4 * np.finfo(float).eps  # both the floats Lambda k^-nu and the exact values
    lo = spec.Lambda * kb ** (-spec.nu) * (1 - widen)
    hi = spec.Lambda * ka ** (-spec.nu) * (1 + widen)
    return Bins(
        np.concatenate([lam_head, lo]),
        np.concatenate([lam_head, hi]),
        np.concatenate([np.ones(k_head), count]),
        False,
    )


def _array_bins(spec: Spectrum, head: int, ratio: float) -> Bins:
    lam = spec.lam
    if lam.size <= head:
        w = np.asarray(spec.weights, dtype=float)
        keep = w > 0  # a zero weight is no eigenvalue
        return Bins(lam[keep], lam[keep], w[keep], True)
    lo_all, hi_all = float(lam.min()), float(lam.max())
    # pass 1: a log-histogram finds the threshold above which about `head` eigenvalues lie
    fine = 4096
    span = math.log(hi_all / lo_all) or 1.0
    counts = np.zeros(fine + 1, dtype=np.int64)
    for sl in _chunks(lam):
        j = np.floor(np.log(lam[sl] / lo_all) * (fine / span)).astype(np.int64)
        counts += np.bincount(np.clip(j, 0, fine), minlength=fine + 1)
    above = np.cumsum(counts[::-1])
    top = int(np.searchsorted(above, head))  # fine bins from the top holding >= head values
    threshold = lo_all * math.exp(span * (fine - top) / fine) if top < fine else lo_all
    # pass 2: the head one by one, the rest counted into geometric bins below the threshold
    nb = max(1, math.ceil(math.log(max(threshold, lo_all) / lo_all) / math.log(ratio)) + 1)
    edges = lo_all * ratio ** np.arange(nb + 1, dtype=float)
    edges[0] = lo_all
    weight = np.zeros(nb)
    head_lam, head_w = [], []
    for sl in _chunks(lam):
        x = lam[sl]
        w = _weights_of(spec, sl)
        big = x >= threshold
        head_lam.append(x[big & (w > 0)])
        head_w.append(w[big & (w > 0)])
        x, w = x[~big], w[~big]
        j = np.clip(np.floor(np.log(x / lo_all) / math.log(ratio)).astype(np.int64), 0, nb - 1)
        for _ in range(2):  # rounding of the logarithm: move to the bin that holds x
            j -= (x < edges[j]) & (j > 0)
            j += (x >= edges[j + 1]) & (j < nb - 1)
        edges[nb] = max(edges[nb], float(x.max()) if x.size else 0.0)
        weight += np.bincount(j, weights=w, minlength=nb)
    keep = weight > 0
    lo_b = edges[:-1][keep]
    hi_b = np.minimum(edges[1:][keep], threshold)
    hl = np.concatenate(head_lam)
    hw = np.concatenate(head_w)
    return Bins(
        np.concatenate([hl, lo_b]),
        np.concatenate([hl, hi_b]),
        np.concatenate([hw, weight[keep]]),
        False,
    )
