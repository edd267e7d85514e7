"""The compiled loops of the checkers (numba), generated from our own expressions.

With numba installed (``pip install sgd-stability[fast]``), a checker's conditions run as one fused
loop over the broadcast inputs: no temporaries, no buffers, every config read once and its
margin written once, on all cores. The loop body is generated from the same symbolic
conditions and in the same operation order as the numpy code of
:mod:`stability.checkers._codegen` (:func:`~stability.checkers._codegen.scalar_lines`), with
floating-point contraction off, so margins agree bit for bit and the certification (exact
re-decision of points within ``1e-12`` of a boundary) is the numpy path's own. The noise sum
``U`` runs as a loop over eigenvalues per config, compiled with reassociation only (its
summation order is free: the numpy path sums by matrix products), so it vectorises; certified
verdicts on ``U`` come from :mod:`stability.checkers.bounds`, whose compiled loop widens its
sums by their rounding bound, valid in any order. Whether the loops run is decided in
:mod:`stability.checkers._backend`.

Written here because numba compiles loops, not sympy conditions: the generated source comes
only from our own expressions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy as sp

from .. import progress
from ._backend import _in_threads, _jit, _lock, _workers
from ._codegen import scalar_lines

__all__: list[str] = []


CERTIFY_RTOL = 1e-12  # the engine's certification band (stability._engine)

_CHUNK = 1 << 14  # configs per task of the parallel loop


# ---------------------------------------------------------------------------------------
# Margins of a condition set: min_i c_i / s over broadcast inputs
# ---------------------------------------------------------------------------------------
_margin_loops: dict[Any, Callable[..., Any]] = {}


def _margin_source(
    params: Sequence[sp.Symbol],
    outputs: Sequence[sp.Expr],
    kinds: Sequence[int],
    tracked: Sequence[bool],
) -> str:
    """The loop for one condition set, specialised on how each input moves along the last
    axis (``kinds``: 0 constant, 1 contiguous, -1 strided) and on which inputs are range
    checked in the loop (``tracked``): a value outside its open bounds (or NaN) makes the
    margin NaN, which flags the point, and the caller then checks the whole input."""
    k = len(params)
    lines, outs = scalar_lines(params, outputs, [f"a{i}" for i in range(k)])
    *cs, s = outs
    body = [ln.strip() for ln in lines]
    body.append(f"r = {cs[0]}")
    for c in cs[1:]:  # numpy's minimum: a NaN wins
        body.append(f"r = r if (r < {c} or r != r) else {c}")
    args = ", ".join(f"x{i}, s{i}" for i in range(k))
    head, reads = [], []
    for i, kind in enumerate(kinds):
        head += [f"o{i} = 0"]
        if kind == 0:
            reads.append(("outer", f"a{i} = x{i}[o{i}]"))
        elif kind == 1:
            reads.append(("inner", f"a{i} = x{i}[o{i} + c]"))
        else:
            reads.append(("inner", f"a{i} = x{i}[o{i} + c * s{i}[nd - 1]]"))
        if tracked[i]:
            head += [f"low{i} = bounds[{2 * i}]", f"high{i} = bounds[{2 * i + 1}]"]
    step = [f"o{i} += j * s{i}[d]" for i in range(k)]
    inside = " & ".join(f"(a{i} > low{i}) & (a{i} < high{i})" for i in range(k) if tracked[i])
    if inside:  # a select, not a branch: the loop still vectorises
        body.append(f"r = r if {inside} else np.nan")

    def block(lines: list[str], depth: int) -> str:
        pad = "    " * depth
        return "\n".join(pad + ln for chunk in lines for ln in chunk.split("\n"))

    outer = [r for where, r in reads if where == "outer"]
    inner = [r for where, r in reads if where == "inner"]
    return f"""
def margin_loop(t0, t1, shape, {args}, margin, stable, flags, bounds, chunk):
    nd = shape.size
    cols = shape[nd - 1]
    per_row = (cols + chunk - 1) // chunk
    for t in range(t0, t1):
        row = t // per_row
        c0 = (t % per_row) * chunk
        c1 = min(cols, c0 + chunk)
{block(head, 2)}
        rest = row
        for d in range(nd - 2, -1, -1):
            j = rest % shape[d]
            rest //= shape[d]
{block(step, 3)}
{block(outer or ["pass"], 2)}
        bad = 0
        base = row * cols
        for c in range(c0, c1):
{block(inner or ["pass"], 3)}
{block(body, 3)}
            m = r / {s}
            margin[base + c] = m
            stable[base + c] = m > 0.0
            bad += (abs(m) <= {CERTIFY_RTOL!r}) | (m != m)
        flags[t] = bad
"""


def _collapse(
    shape: tuple[int, ...], strides: list[list[int]]
) -> tuple[list[int], list[list[int]]]:
    """Drop unit dimensions and merge neighbours that every array (and the C-order output)
    walks with one stride."""
    dims = [d for d in range(len(shape)) if shape[d] != 1] or [len(shape) - 1]
    out_shape = [shape[d] if shape else 1 for d in dims] if shape else [1]
    out_str = [[s[d] for d in dims] if shape else [0] for s in strides]
    i = len(out_shape) - 1
    while i > 0:
        n = out_shape[i]
        if all(s[i - 1] == s[i] * n for s in out_str):
            out_shape[i - 1] *= n
            del out_shape[i]
            for s in out_str:
                s[i - 1] = s[i]
                del s[i]
        i -= 1
    return out_shape, out_str


def run_margins(
    key: Any,
    params: Sequence[sp.Symbol],
    outputs: Sequence[sp.Expr],
    arrays: Sequence[np.ndarray],
    shape: tuple[int, ...],
    threads: int | None,
    bounds: Sequence[tuple[float, float] | None],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(margin, stable, candidates)`` of ``min(c_1..c_k) / s`` for ``outputs = (c_1, ...,
    c_k, s)`` over the broadcast ``arrays``: the compiled twin of the engine's blocked pass.
    ``candidates`` are the flat indices whose margin is within the certification band or
    NaN, for the exact re-decision; ``bounds[j]`` (``None``: not checked) is an open interval
    ``(low, high)`` input ``j`` must lie in: a value outside it gives a NaN margin, so the
    caller range-checks the inputs whenever there are candidates."""
    tracked = [b is not None for b in bounds]
    flat = []
    strides = []
    for a in arrays:
        c = np.asarray(a, dtype=np.float64)  # (ascontiguousarray would make 0-d 1-d)
        if not c.flags.c_contiguous:
            c = c.copy()
        view = np.broadcast_to(c, shape)
        flat.append(c.reshape(-1))
        strides.append([s // 8 for s in view.strides])
    dims, steps = _collapse(shape, strides)
    kinds = tuple(st[-1] if st[-1] in (0, 1) else -1 for st in steps)
    full_key = (key, kinds, tuple(tracked))
    with _lock:
        loop = _margin_loops.get(full_key)
        if loop is None:
            loop = _margin_loops[full_key] = _jit(
                _margin_source(params, outputs, kinds, tracked), "margin_loop"
            )
    size = int(np.prod(dims))
    margin = np.empty(shape)
    stable = np.empty(shape, dtype=bool)
    cols = dims[-1]
    ntask = max(1, size // cols) * (-(-cols // _CHUNK)) if size else 0
    flags = np.zeros(ntask, dtype=np.int64)
    limits = np.array([x for b in bounds for x in (b or (-np.inf, np.inf))], dtype=np.float64)
    if size:
        args: list[Any] = [np.asarray(dims, dtype=np.int64)]
        for x, st in zip(flat, steps, strict=True):
            args += [x, np.asarray(st, dtype=np.int64)]
        args += [margin.reshape(-1), stable.reshape(-1), flags, limits, _CHUNK]
        _in_threads(lambda t0, t1: loop(t0, t1, *args), ntask, _workers(threads, ntask))
    if not flags.any():
        return margin, stable, np.empty(0, dtype=np.intp)
    near = ~(np.abs(margin.reshape(-1)) > CERTIFY_RTOL)
    return margin, stable, np.flatnonzero(near)


# ---------------------------------------------------------------------------------------
# The noise sum: per config, sum_k w_k N(lambda_k) / T(lambda_k) and min_k T(lambda_k)
# ---------------------------------------------------------------------------------------
_noise_loops: dict[Any, Callable[..., Any]] = {}


def _horner_lines(
    name: str, coeffs: Sequence[str], nonzero: Sequence[bool], var: str = "L"
) -> list[str]:
    """Scalar Horner in the operation order of ``triplet_checkers._horner``."""
    out = [f"{name} = {coeffs[0]} * {var}"]
    for c, nz in zip(coeffs[1:-1], nonzero[1:-1], strict=True):
        if nz:
            out.append(f"{name} = {name} + {c}")
        out.append(f"{name} = {name} * {var}")
    if nonzero[-1]:
        out.append(f"{name} = {name} + {coeffs[-1]}")
    return out


def _config_lines(
    params: Sequence[sp.Symbol], coeffs: Sequence[sp.Expr], sizes: Sequence[sp.Expr] = ()
) -> list[str]:
    """Per-config statements of both noise loops: the coefficients ``n_k`` of ``N`` and
    ``t_k = B d_k + tau2 n_k`` of ``T`` from ``(beta, q0, q1) = (b_, x0, x1)``; with
    ``sizes`` (the coefficients' term-size bounds) also ``sn_k`` and ``st_k``."""
    width = len(coeffs) // 2
    lines, outs = scalar_lines(params, [*coeffs, *sizes], ["b_", "x0", "x1", "om"][: len(params)])
    cn, cd = outs[:width], outs[width : 2 * width]
    body = [ln.strip() for ln in lines]
    body += [f"n{k} = {c}" for k, c in enumerate(cn)]
    body += [f"t{k} = B * ({cd[k]}) + tau2 * n{k}" for k in range(width)]
    if sizes:
        sn, sd = outs[2 * width : 3 * width], outs[3 * width :]
        body += [f"sn{k} = {c}" for k, c in enumerate(sn)]
        body += [f"st{k} = B * ({sd[k]}) + abs(tau2) * sn{k}" for k in range(width)]
    return body


def _noise_source(
    params: Sequence[sp.Symbol],
    coeffs: Sequence[sp.Expr],
    nz_n: Sequence[bool],
    nz_t: Sequence[bool],
) -> str:
    width = len(nz_n)
    setup = "\n".join(f"        {ln}" for ln in _config_lines(params, coeffs))

    num = _horner_lines("num", [f"n{k}" for k in range(width)], nz_n)
    den = _horner_lines("den", [f"t{k}" for k in range(width)], nz_t)
    inner = "\n".join(f"            {ln}" for ln in [*num, *den])
    return f"""
def noise_loop(i0, i1, beta, q0, q1, batch, om, lam, w, ws, tau2, total, low):
    for i in range(i0, i1):
        b_ = beta[i]
        x0 = q0[i]
        x1 = q1[i]
        B = batch[i]
{setup}
        acc = 0.0
        bad = 0
        for j in range(lam.size):
            L = lam[j]
{inner}
            bad += (den <= 0.0) | (den != den)
            acc += w[j * ws] * (num / den)
        total[i] = acc
        low[i] = 1.0 if bad == 0 else -1.0  # the sign of min T (NaN counts as not positive)
"""


def unit_or(w: np.ndarray) -> tuple[np.ndarray, int]:
    """``(array, stride)``: a constant weight (a zero-stride view) is passed as one value."""
    if w.ndim == 1 and w.size > 1 and w.strides[0] == 0:
        return np.ascontiguousarray(w[:1], dtype=np.float64), 0
    return np.ascontiguousarray(w, dtype=np.float64), 1


def run_noise(
    key: Any,
    params: Sequence[sp.Symbol],
    coeffs: Sequence[sp.Expr],
    nz_n: Sequence[bool],
    nz_t: Sequence[bool],
    configs: Sequence[np.ndarray],
    lam: np.ndarray,
    w: np.ndarray,
    tau2: float,
    threads: int | None,
    omega: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(sum_k w_k N/T, s)`` per config (flat ``beta, q0, q1, batch``; the curvature shift
    ``omega`` when ``params`` has four symbols): ``s > 0`` iff ``T > 0`` at every eigenvalue
    (the sign of ``min_k T``, as the numpy path uses it)."""
    with _lock:
        loop = _noise_loops.get(key)
        if loop is None:
            # reassociation only: the sum over eigenvalues may be vectorised (its order is
            # free: the numpy path sums by matrix products); NaN and inf keep their meaning
            loop = _noise_loops[key] = _jit(
                _noise_source(params, coeffs, nz_n, nz_t), "noise_loop", {"reassoc"}
            )
    n = configs[0].size
    total, low = np.empty(n), np.empty(n)
    if n:
        args = [
            *(np.ascontiguousarray(c, dtype=np.float64) for c in configs),
            float(omega),
            np.ascontiguousarray(lam, dtype=np.float64),
            *unit_or(w),
            float(tau2),
            total,
            low,
        ]
        # long runs go in parts so that a progress line can follow them
        parts = 1 if n * lam.size < 2 * 10**9 else min(n, 50)
        for p in range(parts):
            a0, a1 = n * p // parts, n * (p + 1) // parts
            _in_threads(
                lambda i0, i1, a0=a0: loop(a0 + i0, a0 + i1, *args),
                a1 - a0,
                _workers(threads, a1 - a0),
            )
            progress.update("noise sum U", a1, n)
    return total, low


# ---------------------------------------------------------------------------------------
# Certified bounds of the noise sum on binned spectra (stability.noisebounds)
# ---------------------------------------------------------------------------------------
_bound_loops: dict[Any, Callable[..., Any]] = {}


def _interval_lines(name: str, coeffs: Sequence[str], sizes: Sequence[str]) -> list[str]:
    """Interval bounds of ``sum_k c_k lambda^(n-k)`` on ``[a, b]`` in the operation order of
    ``noisebounds._interval``, widened by the rounding allowance ``rounding * size``."""
    deg = len(coeffs) - 1
    out = [f"{name}_lo = 0.0", f"{name}_hi = 0.0", f"{name}_sz = 0.0"]
    for k, (c, s) in enumerate(zip(coeffs, sizes, strict=True)):
        p = deg - k
        pa = " * ".join(["a"] * p) if p else "1.0"
        pb = " * ".join(["b"] * p) if p else "1.0"
        out += [
            f"ta = {c} * ({pa})",
            f"tb = {c} * ({pb})",
            f"{name}_lo += ta if ta < tb else tb",
            f"{name}_hi += tb if ta < tb else ta",
            f"{name}_sz += {s} * ({pb})",
        ]
    out += [
        f"{name}_lo -= rounding * {name}_sz",
        f"{name}_hi += rounding * {name}_sz",
    ]
    return out


def _bounds_source(
    params: Sequence[sp.Symbol], coeffs: Sequence[sp.Expr], sizes: Sequence[sp.Expr]
) -> str:
    width = len(coeffs) // 2
    setup = _config_lines(params, coeffs, sizes)
    inner = _interval_lines("N", [f"n{k}" for k in range(width)], [f"sn{k}" for k in range(width)])
    inner += _interval_lines("T", [f"t{k}" for k in range(width)], [f"st{k}" for k in range(width)])
    pad2 = "\n".join(f"        {ln}" for ln in setup)
    pad3 = "\n".join(f"            {ln}" for ln in inner)
    return f"""
def bounds_loop(i0, i1, beta, q0, q1, batch, om, lo, hi, w, ws, tau2, rounding, lower, upper):
    for i in range(i0, i1):
        b_ = beta[i]
        x0 = q0[i]
        x1 = q1[i]
        B = batch[i]
{pad2}
        up = 0.0
        down = 0.0
        bad = False
        for j in range(lo.size):
            a = lo[j]
            b = hi[j]
{pad3}
            if T_lo > 0.0:
                up += w[j * ws] * ((N_hi if N_hi > 0.0 else 0.0) / T_lo)
            else:
                up = np.inf
            if T_hi > 0.0:
                down += w[j * ws] * ((N_lo if N_lo > 0.0 else 0.0) / T_hi)
            else:
                bad = True
        upper[i] = up
        lower[i] = np.inf if bad else down
"""


def run_noise_bounds(
    params: Sequence[sp.Symbol],
    coeffs: Sequence[sp.Expr],
    sizes: Sequence[sp.Expr],
    configs: Sequence[np.ndarray],
    bins: Any,
    tau1: float,
    tau2: float,
    rounding: float,
    threads: int | None,
    omega: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper)`` of ``U`` per config on ``bins`` (see :mod:`stability.noisebounds`);
    the division and summation roundings are covered by the same factors as there."""
    key = (tuple(coeffs), tuple(sizes))
    with _lock:
        loop = _bound_loops.get(key)
        if loop is None:
            loop = _bound_loops[key] = _jit(_bounds_source(params, coeffs, sizes), "bounds_loop")
    n = configs[0].size
    lower, upper = np.empty(n), np.empty(n)
    if n:
        args = [
            *(np.ascontiguousarray(c, dtype=np.float64) for c in configs),
            float(omega),
            np.ascontiguousarray(bins.lo, dtype=np.float64),
            np.ascontiguousarray(bins.hi, dtype=np.float64),
            *unit_or(bins.weight),
            float(tau2),
            float(rounding),
            lower,
            upper,
        ]
        _in_threads(lambda i0, i1: loop(i0, i1, *args), n, _workers(threads, n))
    grow = 1 + 2 * len(bins) * np.finfo(float).eps
    with np.errstate(invalid="ignore"):
        return tau1 * lower * (1 - 1e-15) / grow, tau1 * upper * (1 + 1e-15) * grow
