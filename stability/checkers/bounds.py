"""Certified noise verdicts on long spectra: the stability sum ``U`` of memory-1 triplets
between a lower and an upper bound, from a compressed spectrum (docs §4.3).

A long spectrum (a power law with ``N = 1e6`` or ``1e12`` terms, ``1e8`` eigenvalues of a
network, an SLQ density) is replaced by a few hundred *bins*: the largest eigenvalues one by
one, the rest grouped into curvature intervals ``[a_j, b_j]`` of geometric width, each with its
total weight ``W_j``. On a bin every term of ``U`` lies between the smallest and the largest
value the term can take on ``[a_j, b_j]``, so

    sum_j W_j min_[a_j, b_j] u  <=  U  <=  sum_j W_j max_[a_j, b_j] u,

with ``u(lambda) = tau1 N(lambda) / (B D(lambda) + tau2 N(lambda))`` (docs §4, eq. 25 with
the noise correction). The bounds of ``u`` on an interval come from interval arithmetic on the
two quadratics ``N`` and ``T = B D + tau2 N`` (``lambda >= 0``, so each monomial is monotone),
widened by a rounding allowance of ``1e-13`` times the sum of the absolute values of their terms
(far above the float error of the few operations involved, coefficients included). The cost
per configuration grows with ``log N``, not ``N``.

A verdict is *decided* when the upper bound is below 1 (``U < 1``: bounded) or the lower bound
is at least 1 (or a second-moment map is unstable). Undecided configurations are refined: finer
bins, then the spectrum itself eigenvalue by eigenvalue (every bin a point, bounds a few ulps
apart). A configuration still undecided after that has ``|U - 1|`` at rounding level; it is
reported as not bounded (never "stable" without a proof) and counted in ``undecided``.

Written here because no library bounds sums of rational functions over binned spectra; the
bins themselves come from :mod:`stability.checkers.bins`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import sympy as sp

from ..errors import ConfigError
from ..noise.spectra import PowerLawSpectrum, Spectrum, as_spectrum
from . import _backend, _compiled
from ._kernels import term_sum
from .bins import Bins, _compressed, _extremes
from .triplets import _noise_coefficients, _noise_inputs, _noise_params, memory1_interval_margins

__all__ = ["MAX_POINTS", "NoiseBounds", "ROUNDING", "STAGES", "memory1_noise_bounds"]

ROUNDING = 1e-13
"""Relative rounding allowance on each polynomial (times the sum of its terms' sizes)."""

STAGES = ((256, 1.02), (4096, 1.001))
"""``(head, ratio)`` of the successive compressions before the eigenvalue-by-eigenvalue sum."""

MAX_POINTS = 10**8
"""Longest spectrum summed eigenvalue by eigenvalue in the last refinement."""


@cache
def _abs_exprs(shifted: bool) -> tuple[sp.Expr, ...]:
    """The coefficients of ``N`` and ``D`` (as :func:`_noise_coefficients`) with every term
    replaced by its absolute value: bounds on the size of the float evaluation."""
    *_, exprs = _noise_coefficients(shifted)
    return tuple(term_sum(e) for e in exprs)


@cache
def _abs_coefficients(shifted: bool):
    return sp.lambdify(_noise_params(shifted), list(_abs_exprs(shifted)), modules="numpy")


def _interval(coeffs: list[np.ndarray], sizes: list[np.ndarray], a: np.ndarray, b: np.ndarray):
    """Bounds of ``sum_k c_k lambda^(n-k)`` for ``lambda`` in ``[a, b]`` (``a >= 0``), widened
    by the rounding allowance. ``coeffs``/``sizes`` are columns ``(m, 1)``, ``a``/``b`` rows."""
    deg = len(coeffs) - 1
    lo = np.zeros(np.broadcast_shapes(coeffs[0].shape, a.shape))
    hi = np.zeros_like(lo)
    size = np.zeros_like(lo)
    for k, (c, s) in enumerate(zip(coeffs, sizes, strict=True)):
        p = deg - k
        pa, pb = (a**p, b**p) if p else (1.0, 1.0)
        ta, tb = c * pa, c * pb
        lo += np.minimum(ta, tb)
        hi += np.maximum(ta, tb)
        size += s * pb
    slack = ROUNDING * size
    return lo - slack, hi + slack


@dataclass(frozen=True)
class NoiseBounds:
    """Certified bounds on the stability sum ``U`` of each configuration.

    ``lower <= U <= upper``; ``U`` is their midpoint (``inf`` when a map is unstable).
    ``bounded`` is the certified verdict ``U < 1`` with ``S_lambda`` strictly stable on the
    spectrum; ``undecided`` counts configurations whose bounds straddle 1 even eigenvalue by
    eigenvalue (reported as not bounded); ``refined`` how many needed finer bins.
    """

    U: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    bounded: np.ndarray
    bins: int
    refined: int
    undecided: int

    @property
    def error(self) -> np.ndarray:
        """Half the width of the bounds: ``|U - true U| <= error``."""
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(self.upper), (self.upper - self.lower) / 2, np.inf)

    @property
    def stable(self) -> np.ndarray:
        """The certified verdict of each configuration (``bounded``)."""
        return self.bounded

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """Counts and, for at most 10,000 configurations, the arrays as lists."""
        out: dict[str, Any] = {
            "configurations": int(self.bounded.size),
            "bounded": int(np.count_nonzero(self.bounded)),
            "bins": self.bins,
            "refined": self.refined,
            "undecided": self.undecided,
        }
        if self.bounded.size <= 10_000:

            def clean(a: np.ndarray) -> list[Any]:
                return [x if np.isfinite(x) else "inf" for x in a.ravel().tolist()]

            out.update(U=clean(self.U), lower=clean(self.lower), upper=clean(self.upper))
            out["stable"] = self.bounded.ravel().tolist()
        return out

    def summary(self) -> str:
        n = self.bounded.size
        k = int(np.count_nonzero(self.bounded))
        fin = np.isfinite(self.upper)
        worst = (
            float(np.max(self.error[fin] / np.maximum(self.U[fin], 1e-300))) if fin.any() else 0.0
        )
        return (
            f"{k:,} of {n:,} configurations with U < 1 (certified); spectrum compressed to "
            f"{self.bins:,} bins, {self.refined:,} refined, {self.undecided:,} undecided; "
            f"largest relative bound width {worst:.1e}"
        )


def _bounds_on(
    bins: Bins,
    cols: list[np.ndarray],
    tau1: float,
    tau2: float,
    threads: int | None,
    omega: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper)`` of ``U`` for flat config columns ``beta, q0, q1, B`` on ``bins``
    (``omega``: the curvature shift of the dynamics, the noise at the data curvature)."""
    shifted = bool(omega)
    extra = (omega,) if shifted else ()
    if _backend.wanted(cols[0].size * len(bins)):
        return _compiled.run_noise_bounds(
            _noise_params(shifted),
            _noise_coefficients(shifted)[3],
            _abs_exprs(shifted),
            cols,
            bins,
            tau1,
            tau2,
            ROUNDING,
            threads,
            omega,
        )
    f, *_ = _noise_coefficients(shifted)
    g = _abs_coefficients(shifted)
    m = cols[0].size
    lower, upper = np.empty(m), np.empty(m)
    per = max(1, (1 << 18) // max(1, len(bins)))
    a, b, w = bins.lo[None, :], bins.hi[None, :], bins.weight
    for s in range(0, m, per):
        bt, x0, x1, B = (c[s : s + per, None] for c in cols)
        k = bt.shape[0]
        cs = [np.broadcast_to(c, (k, 1)) for c in f(bt, x0, x1, *extra)]
        sz = [np.broadcast_to(c, (k, 1)) for c in g(bt, x0, x1, *extra)]
        width = len(cs) // 2
        cn, cd = cs[:width], cs[width:]
        sn, sd = sz[:width], sz[width:]
        ct = [B * d + tau2 * n for n, d in zip(cn, cd, strict=True)]
        st = [B * d + abs(tau2) * n for n, d in zip(sn, sd, strict=True)]
        n_lo, n_hi = _interval(cn, sn, a, b)
        t_lo, t_hi = _interval(ct, st, a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            u_hi = np.where(t_lo > 0, np.maximum(n_hi, 0) / t_lo, np.inf) * (1 + 1e-15)
            u_lo = np.where(t_hi > 0, np.maximum(n_lo, 0) / t_hi, np.inf) * (1 - 1e-15)
            sure_bad = np.any(t_hi <= 0, axis=1)  # T <= 0 on a whole bin: A_lambda unstable
            grow = 1 + 2 * len(bins) * np.finfo(float).eps
            upper[s : s + per] = tau1 * (u_hi @ w) * grow
            lower[s : s + per] = np.where(sure_bad, np.inf, tau1 * (u_lo @ w) / grow)
    return lower, upper


def memory1_noise_bounds(
    *,
    beta: Any,
    q0: Any,
    q1: Any,
    spectrum: Any,
    batch_size: Any,
    shift: float = 0.0,
    tau1: float = 1.0,
    tau2: float = -1.0,
    threads: int | None = None,
    points: bool = True,
) -> NoiseBounds:
    """Certified bounds on ``U`` for memory-1 triplets (any broadcast shape) on a long
    spectrum (an eigenvalue array, a :class:`~stability.noise.Spectrum` with weights, or a
    finite power law), refined until every verdict ``U < 1`` is decided (module docstring).
    ``shift`` is a curvature shift (weight decay): the dynamics see ``lambda + shift``, the
    gradient noise the data curvature ``lambda`` (as in :func:`~stability.noise.noise_term`).
    ``points=False`` skips the
    last, eigenvalue-by-eigenvalue refinement (what is still undecided then counts as not
    bounded: a search that only needs a conservative answer stays fast on 1e8 eigenvalues).

    >>> from stability.noise import power_law
    >>> r = memory1_noise_bounds(beta=0.9, q0=0.0, q1=[-1.0, -2.0], batch_size=32,
    ...                          spectrum=power_law(2, N=10**9))
    >>> r.bounded.tolist(), r.U.round(4).tolist(), bool((r.error < 1e-4 * r.U).all())
    ([True, False], [0.3758, 2.1667], True)
    """
    a = _noise_inputs(beta, q0, q1, batch_size, tau1, tau2)
    spec = as_spectrum(spectrum)
    if not (math.isfinite(shift) and shift >= 0):
        raise ConfigError(f"shift (weight decay) must be in [0, inf), got {shift!r}")
    lam_lo, lam_hi = _curvature_range(spec, shift)
    strict = memory1_interval_margins(
        beta=a["beta"], q0=a["q0"], q1=a["q1"], lambda_lo=lam_lo, lambda_hi=lam_hi, threads=threads
    )
    shape = np.broadcast_shapes(strict.stable.shape, a["batch_size"].shape)
    cols = [np.broadcast_to(a[p], shape).ravel() for p in ("beta", "q0", "q1", "batch_size")]
    ok = np.broadcast_to(strict.stable, shape).ravel()
    lower, upper, bins_used, refined, undecided = _refined_bounds(
        spec, cols, ok, (tau1, tau2, shift), threads, points
    )
    with np.errstate(invalid="ignore"):
        U = np.where(np.isfinite(upper), (lower + upper) / 2, np.inf)
    bounded = (upper < 1) & ok
    return NoiseBounds(
        U.reshape(shape),
        lower.reshape(shape),
        upper.reshape(shape),
        bounded.reshape(shape),
        bins_used,
        refined,
        undecided,
    )


def _curvature_range(spec: Spectrum | PowerLawSpectrum, shift: float) -> tuple[float, float]:
    """``[lo, hi]`` holding every curvature the dynamics see (rounded outwards)."""
    if isinstance(spec, PowerLawSpectrum):
        if spec.N is None:
            raise ConfigError(
                "give the power law's N (infinite laws: stability.noise.stability_sum)"
            )
        lam_lo, lam_hi = spec.Lambda * float(spec.N) ** (-spec.nu), spec.Lambda
        lam_lo *= 1 - 4 * np.finfo(float).eps
    else:
        lam_lo, lam_hi = _extremes(spec)
    if shift:
        lam_lo = (lam_lo + shift) * (1 - 2 * np.finfo(float).eps)
        lam_hi = (lam_hi + shift) * (1 + 2 * np.finfo(float).eps)
    return lam_lo, lam_hi


def _refined_bounds(
    spec: Spectrum | PowerLawSpectrum,
    cols: list[np.ndarray],
    ok: np.ndarray,
    model: tuple[float, float, float],
    threads: int | None,
    points: bool,
) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """``(lower, upper, bins of the first stage, configs refined, undecided)``: bounds on
    compressions of increasing resolution (then eigenvalue by eigenvalue when ``points``)
    until every strictly stable config (``ok``) is decided."""
    tau1, tau2, shift = model
    lower = np.full(ok.size, np.inf)
    upper = np.full(ok.size, np.inf)
    todo = np.flatnonzero(ok)
    refined = bins_used = 0
    stages = [*STAGES, None] if points else list(STAGES)
    for level, stage in enumerate(stages):
        if not todo.size:
            break
        bins = _points(spec) if stage is None else _compressed(spec, *stage)
        if bins is None:
            break
        if level == 0:
            bins_used = len(bins)
        elif level == 1:
            refined = todo.size
        lo, hi = _bounds_on(bins, [c[todo] for c in cols], tau1, tau2, threads, shift)
        lower[todo], upper[todo] = lo, hi
        todo = todo[~((hi < 1) | (lo >= 1))]
        if bins.exact:
            break
    return lower, upper, bins_used, refined, int(todo.size)


def _points(spec: Spectrum | PowerLawSpectrum) -> Bins | None:
    """The spectrum eigenvalue by eigenvalue (``None`` if longer than :data:`MAX_POINTS`)."""
    if isinstance(spec, PowerLawSpectrum):
        if spec.N is None or spec.N > MAX_POINTS:
            return None
        lam = spec.eigenvalues()
        return Bins(lam, lam, np.ones(lam.size), True)
    if spec.lam.size > MAX_POINTS:
        return None
    w = np.asarray(spec.weights, dtype=float)
    if w.min() > 0:
        return Bins(spec.lam, spec.lam, w, True)
    keep = w > 0  # a zero weight is no eigenvalue
    return Bins(spec.lam[keep], spec.lam[keep], w[keep], True)
