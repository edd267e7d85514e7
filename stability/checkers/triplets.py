"""Certified checks of memory-1 triplets ``(beta, q0, q1)``: Theorem 6.1 on ``(0, lambda_max]``,
the Jury conditions on a curvature interval, and the noise sum ``U`` over a finite spectrum.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np
import sympy as sp

from .. import symbols as S
from ..errors import ConfigError, StabilityError, describe
from ..methods import memory1
from ..noise.spectra import PowerLawSpectrum, Spectrum
from ..noise.terms import noise_term
from ..regions.conditions import theorem61_conditions
from . import _backend, _compiled
from ._engine import (
    BLOCK,
    NONNEGATIVE,
    POSITIVE,
    REAL,
    Range,
    Verdicts,
    checked_array,
    checked_arrays,
    require,
    run_blocks,
    run_kernel,
)
from ._kernels import Kernel, compile_kernel

__all__ = [
    "interval_conditions",
    "memory1_interval_margins",
    "memory1_margins",
    "memory1_noise_sum",
]


def interval_conditions(beta: Any, q0: Any, q1: Any, lo: Any, hi: Any) -> list[tuple[str, sp.Expr]]:
    """Jury conditions of ``chi_lambda`` (linear in ``lambda``) at both ends of ``[lo, hi]``."""
    return [
        ("q0 + q1 < 0 (alpha_eff > 0)", -(q0 + q1)),
        ("chi(-1) > 0 at lambda_hi", 2 * (1 + beta) - hi * (q0 - q1)),
        ("chi(-1) > 0 at lambda_lo", 2 * (1 + beta) - lo * (q0 - q1)),
        ("1 - chi(0) > 0 at lambda_lo", 1 - beta + lo * q0),
        ("1 - chi(0) > 0 at lambda_hi", 1 - beta + hi * q0),
        ("1 + chi(0) > 0 at lambda_lo", 1 + beta - lo * q0),
        ("1 + chi(0) > 0 at lambda_hi", 1 + beta - hi * q0),
    ]


@cache
def _theorem61_kernel(merged: bool = True) -> Kernel:
    """Theorem 6.1; ``merged`` evaluates ``1 - beta > 0`` and ``1 + beta > 0`` together as
    ``1 - |beta| > 0`` (the same minimum, two operations fewer per config) and normalises by
    the cheaper scale ``1 + |beta| + (1 + lambda_max)(|q0| + |q1|)``."""

    conds = [(c.name, c.expr) for c in theorem61_conditions(S.beta, S.q0, S.q1, S.lam_max)]
    if not merged:
        return compile_kernel(conds, (S.beta, S.q0, S.q1, S.lam_max))
    if not (conds[0][1] == 1 - S.beta and conds[1][1] == 1 + S.beta):
        raise StabilityError(
            "theorem61_conditions changed order: the merged kernel needs "
            "1 - beta and 1 + beta first"
        )
    conds = [("|beta| < 1", 1 - sp.Abs(S.beta)), *conds[2:]]
    # every condition's term sum is at most twice this (checked by compile_kernel)
    scale = 1 + sp.Abs(S.beta) + (1 + S.lam_max) * (sp.Abs(S.q0) + sp.Abs(S.q1))
    return compile_kernel(conds, (S.beta, S.q0, S.q1, S.lam_max), scale=scale)


@cache
def _interval_kernel() -> Kernel:
    return compile_kernel(
        interval_conditions(S.beta, S.q0, S.q1, S.lam_lo, S.lam_hi),
        (S.beta, S.q0, S.q1, S.lam_lo, S.lam_hi),
    )


def memory1_margins(
    *, beta: Any, q0: Any, q1: Any, lambda_max: Any, full: bool = False, threads: int | None = None
) -> Verdicts:
    """Vectorised, certified Theorem 6.1 verdicts for memory-1 triplets on ``(0, lambda_max]``.

    >>> m = memory1_margins(beta=[0.9, 0.9], q0=0.0, q1=[-0.1, -0.4], lambda_max=10.0)
    >>> m.stable.tolist(), m.margin.round(4).tolist()
    ([True, False], [0.0333, -0.0317])
    """
    a = checked_arrays(beta=beta, q0=q0, q1=q1, lambda_max=lambda_max)
    return run_kernel(
        _theorem61_kernel(not full), a, {"lambda_max": POSITIVE}, full=full, threads=threads
    )


def memory1_interval_margins(
    *,
    beta: Any,
    q0: Any,
    q1: Any,
    lambda_lo: Any,
    lambda_hi: Any,
    full: bool = False,
    threads: int | None = None,
) -> Verdicts:
    """Certified strict stability of memory-1 triplets for every curvature in
    ``[lambda_lo, lambda_hi]`` (``lambda_lo = 0`` means ``(0, lambda_hi]``: Theorem 6.1).

    The Jury conditions are linear in ``lambda``, so the end points decide.

    >>> m = memory1_interval_margins(beta=0.9, q0=0.0, q1=-0.1, lambda_lo=[0.0, 2.0],
    ...                              lambda_hi=[37.0, 39.0])
    >>> m.stable.tolist()     # weight decay 2 shifts (0, 37] to [2, 39]: beyond 38
    [True, False]
    """
    a = checked_arrays(beta=beta, q0=q0, q1=q1, lambda_lo=lambda_lo, lambda_hi=lambda_hi)
    lo, hi = a["lambda_lo"], a["lambda_hi"]
    ranges = {"lambda_lo": NONNEGATIVE, "lambda_hi": POSITIVE}
    for name in ranges:
        ranges[name].check(name, a[name])
    require(lo > hi, "lambda_lo must be <= lambda_hi", lo)
    return run_kernel(_interval_kernel(), a, ranges, full=full, threads=threads)


# ---------------------------------------------------------------------------------------
# The noise condition U < 1, vectorised over configurations x eigenvalues
# ---------------------------------------------------------------------------------------
def _noise_params(shifted: bool) -> tuple[sp.Symbol, ...]:
    """The parameters of the noise coefficients: the triplet, and the shift when shifted."""
    return (S.beta, S.q0, S.q1, S.weight_decay) if shifted else (S.beta, S.q0, S.q1)


@cache
def _noise_coefficients(
    shifted: bool = False,
) -> tuple[Callable[..., list[Any]], tuple[bool, ...], tuple[bool, ...], tuple[sp.Expr, ...]]:
    """eq. 25's ``Ubar_lambda = N(lambda) / D(lambda)`` for the memory-1 triplet, as the
    polynomial coefficients (highest power first, ``N`` then ``D``) lambdified in
    ``(beta, q0, q1)`` (``shifted``: also the curvature shift ``omega``, the term being
    :func:`~stability.noise.terms.noise_term` with that shift), with masks of the coefficients
    that are not identically zero. ``D`` is oriented to be positive where ``S_lambda`` is
    stable. Last, the coefficients themselves."""
    params = _noise_params(shifted)
    shift = S.weight_decay if shifted else 0
    num, den = sp.fraction(sp.cancel(noise_term(memory1(S.beta, S.q0, S.q1), S.lam, shift)))
    half = sp.Rational(1, 2)  # a stable point: GD with lr 1 at curvature 1/2 (+ 1/2)
    if den.subs({S.lam: half, S.weight_decay: half, S.beta: 0, S.q0: 0, S.q1: -1}) < 0:
        num, den = -num, -den
    width = max(sp.degree(num, S.lam), sp.degree(den, S.lam)) + 1
    cd = [sp.expand(den).coeff(S.lam, k) for k in reversed(range(width))]
    cn = [sp.expand(num).coeff(S.lam, k) for k in reversed(range(width))]
    f = sp.lambdify(params, [*cn, *cd], modules="numpy", cse=True)
    return f, tuple(c != 0 for c in cn), tuple(c != 0 for c in cd), (*cn, *cd)


def _horner(coeffs: list[np.ndarray], nonzero: Sequence[bool], lam: np.ndarray) -> np.ndarray:
    """``sum_k c_k lam^(n-k)`` for per-config columns ``c_k`` (shape ``(m, 1)``) and a row of
    curvatures (shape ``(1, e)``); terms with an identically-zero coefficient are skipped."""
    acc = coeffs[0] * lam
    for c, nz in zip(coeffs[1:-1], nonzero[1:-1], strict=True):
        if nz:
            acc += c
        acc *= lam
    if nonzero[-1]:
        acc += coeffs[-1]
    return acc


def _noise_inputs(
    beta: Any, q0: Any, q1: Any, batch_size: Any, tau1: float, tau2: float
) -> dict[str, np.ndarray]:
    """The checked inputs of the vectorised noise sums (triplets, batch sizes, noise model)."""
    if not (math.isfinite(tau1) and math.isfinite(tau2)) or tau1 < 0 or tau2 > tau1:
        raise ConfigError(f"need tau1 >= 0 and tau2 <= tau1, got ({tau1}, {tau2})")
    if tau2 > 0:
        raise ConfigError("tau2 > 0 is not vectorised; use stability.noise.stability_sum")
    a = checked_arrays(beta=beta, q0=q0, q1=q1, batch_size=batch_size)
    for name, rng in {
        "beta": REAL,
        "q0": REAL,
        "q1": REAL,
        "batch_size": Range(1.0, low_open=False),
    }.items():
        rng.check(name, a[name])
    return a


def memory1_noise_sum(
    *,
    beta: Any,
    q0: Any,
    q1: Any,
    spectrum: Any,
    batch_size: Any,
    shift: float = 0.0,
    tau1: float = 1.0,
    tau2: float = -1.0,
    chunk: int = BLOCK,
    threads: int | None = None,
) -> np.ndarray:
    """``U`` for every memory-1 triplet (broadcast shape), summed over a finite spectrum (an
    eigenvalue array, a :class:`~stability.noise.Spectrum` with weights, or a finite power
    law), in floats (the certified verdicts come from
    :func:`~stability.checkers.memory1_noise_bounds`).

    ``U = sum_lambda w_lambda (tau1/B) Ubar'_lambda / (1 + (tau2/B) Ubar'_lambda)`` with
    ``Ubar'`` the noise term of :func:`~stability.noise.noise_term` (eq. 25; ``shift``: the
    dynamics at ``lambda + shift``, the noise at ``lambda``), evaluated as
    ``tau1 N / (B D + tau2 N)``. ``inf`` where ``S`` is not strictly stable for some
    curvature (certified: the Jury conditions are linear in the curvature, so the interval of
    the spectrum decides) or ``A_lambda`` is not (``B D + tau2 N <= 0``). Work runs in blocks
    of about ``chunk`` config-eigenvalue pairs. ``tau2 > 0`` is not vectorised (use
    :func:`stability.noise.stability_sum`).

    >>> float(memory1_noise_sum(beta=0.0, q0=0.0, q1=-1.0, spectrum=[1, 0.5, 0.25, 0.125],
    ...                         batch_size=10, tau2=0.0).round(14))
    0.15428571428571
    """
    a = _noise_inputs(beta, q0, q1, batch_size, tau1, tau2)
    lam, w = _spectrum_arrays(spectrum)
    omega = _shift(shift)
    strict = memory1_interval_margins(
        beta=a["beta"],
        q0=a["q0"],
        q1=a["q1"],
        lambda_lo=float(np.nextafter(lam.min() + omega, 0)) if omega else lam.min(),
        lambda_hi=float(np.nextafter(lam.max() + omega, np.inf)) if omega else lam.max(),
        threads=threads,
    )
    f, nz_n, nz_d, exprs = _noise_coefficients(bool(omega))
    nz_t = tuple(d or (n and tau2 != 0) for n, d in zip(nz_n, nz_d, strict=True))
    width = len(nz_n)
    shape = strict.stable.shape
    n_configs = math.prod(shape)
    extra = (omega,) if omega else ()
    if _backend.wanted(n_configs * lam.size):
        cols = [np.broadcast_to(a[p], shape).ravel() for p in ("beta", "q0", "q1", "batch_size")]
        total, low = _compiled.run_noise(
            (nz_n, nz_t, bool(omega)),
            _noise_params(bool(omega)),
            exprs,
            nz_n,
            nz_t,
            cols,
            lam,
            w,
            tau2,
            threads,
            omega,
        )
        out = np.where(low > 0, tau1 * total, np.inf).reshape(shape)
        out[~strict.stable] = np.inf
        return out
    coefficients = (f, nz_n, nz_t, width)
    out = _noise_sum_numpy(a, lam, w, coefficients, tau1, tau2, extra, shape, chunk, threads)
    out[~strict.stable] = np.inf
    return out


def _noise_sum_numpy(
    a: dict[str, np.ndarray],
    lam: np.ndarray,
    w: np.ndarray,
    coefficients: tuple[Any, ...],
    tau1: float,
    tau2: float,
    extra: tuple[float, ...],
    shape: tuple[int, ...],
    chunk: int,
    threads: int | None,
) -> np.ndarray:
    """The numpy path of :func:`memory1_noise_sum`: blocks of configs against sub-blocks of
    eigenvalues, ``N`` and ``T = B D + tau2 N`` by Horner, the sum by a matrix product."""
    f, nz_n, nz_t, width = coefficients
    out = np.empty(shape)
    pairs = max(1, int(chunk))
    per = max(1, pairs // lam.size)  # configs per block
    step = max(1, pairs // per)  # eigenvalues per sub-block

    def block(_start: int, xs: list[np.ndarray], outs: list[np.ndarray]) -> None:
        b, x0, x1, B = (x[:, None] for x in xs)
        m = b.shape[0]
        cs = [np.broadcast_to(c, (m, 1)) for c in f(b, x0, x1, *extra)]
        cn, cd = cs[:width], cs[width:]
        ct = [B * d + tau2 * n for n, d in zip(cn, cd, strict=True)]  # B D + tau2 N
        total = np.zeros(m)
        low = np.full(m, np.inf)
        for s in range(0, lam.size, step):
            L = lam[None, s : s + step]
            num = _horner(cn, nz_n, L)
            den = _horner(ct, nz_t, L)
            low = np.minimum(low, den.min(axis=1))
            num /= den
            total += num @ w[s : s + step]
        outs[0][...] = np.where(low > 0, tau1 * total, np.inf)

    run_blocks([a["beta"], a["q0"], a["q1"], a["batch_size"]], [out], block, threads, block=per)
    return out


def _shift(shift: Any) -> float:
    """A curvature shift (weight decay) in ``[0, inf)``."""
    value = float(shift)
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"shift (weight decay) must be in [0, inf), got {describe(shift)}")
    return value


def _spectrum_arrays(spectrum: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(eigenvalues, weights)`` of an eigenvalue array, a Spectrum or a finite power law;
    unit weights stay a zero-stride view (no second array as long as the spectrum)."""
    if isinstance(spectrum, Spectrum | PowerLawSpectrum):
        spec = spectrum
        if isinstance(spec, PowerLawSpectrum):
            if spec.N is None:
                raise ConfigError("give the power law's N (infinite laws: stability_sum)")
            spec = spec.truncated(spec.N)
        return spec.lam, spec.weights
    lam = checked_array("spectrum", spectrum).ravel()
    if lam.size == 0:
        raise ConfigError("spectrum must be a non-empty array of finite positive eigenvalues")
    POSITIVE.check("spectrum", lam)
    return lam, np.broadcast_to(1.0, lam.shape)
