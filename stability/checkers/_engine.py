"""The blocked, threaded evaluation engine of the checkers (private).

Inputs broadcast against each other without being materialised; a kernel runs on cache-sized
blocks on a few threads; ranges are validated in the same pass (one min/max per block); points
whose relative margin is within ``1e-12`` of zero are re-decided exactly. Written by hand:
numexpr lacks an elementwise minimum and the exact re-decision, and numba is not a required
dependency.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from .._values import float_array
from ..errors import ConfigError, describe, interval_text
from . import _backend, _compiled
from ._kernels import Kernel

__all__ = ["THREADS", "Verdicts"]


_CERTIFY_RTOL = 1e-12


BLOCK = 2**16  # elements per block: a block's temporaries stay in the CPU cache


THREADS = max(1, min(os.cpu_count() or 1, 4))
"""Default number of worker threads (numpy releases the GIL inside each block)."""


# ---------------------------------------------------------------------------------------
# Blocked, threaded evaluation over a broadcast shape
# ---------------------------------------------------------------------------------------
def run_blocks(
    inputs: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    fn: Callable[[int, list[np.ndarray], list[np.ndarray]], Any],
    threads: int | None,
    block: int | None = None,
) -> list[Any]:
    """Call ``fn(start, input_blocks, output_blocks)`` over C-order blocks of the outputs'
    shape (inputs broadcast to it without copies). Returns the non-``None`` results."""
    block = BLOCK if block is None else block
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ConfigError(f"threads must be a positive integer, got {describe(threads)}")
    it = np.nditer(
        [*inputs, *outputs],
        flags=["external_loop", "buffered", "zerosize_ok", "ranged", "delay_bufalloc"],
        op_flags=[["readonly"]] * len(inputs) + [["writeonly"]] * len(outputs),
        op_dtypes=[np.float64] * len(inputs) + [o.dtype for o in outputs],
        order="C",
        buffersize=block,
    )
    n, k = it.itersize, len(inputs)
    workers = max(1, min(THREADS if threads is None else threads, n // block))
    edges = [n * t // workers for t in range(workers + 1)]
    iters = [it] + [it.copy() for _ in range(workers - 1)]

    def work(t: int) -> list[Any]:
        sub, found = iters[t], []
        sub.iterrange = (edges[t], edges[t + 1])
        sub.reset()
        with np.errstate(all="ignore"), sub:
            for ops in sub:
                r = fn(sub.iterindex, list(ops[:k]), list(ops[k:]))
                if r is not None:
                    found.append(r)
        return found

    if workers == 1:
        return work(0)
    with ThreadPoolExecutor(workers) as pool:
        return [r for part in pool.map(work, range(workers)) for r in part]


@dataclass
class Verdicts:
    """Certified strict-stability verdicts with margins, over a broadcast array of configs.

    Attributes
    ----------
    stable : bool array
        Certified verdict for every configuration (the broadcast shape of the inputs).
    margin : float array
        Relative margin ``min_i c_i / s`` (module docstring): ``> 0`` exactly where ``stable``;
        points with ``|margin| <= 1e-12`` were re-decided exactly and carry the exact value.
    names : tuple of str
        The conditions evaluated.
    implied : tuple of (str, str)
        Conditions not evaluated because the parameter ranges imply them, with the reason.
    margins : float array of shape ``(len(names), *shape)`` or None
        Each condition's value (only with ``full=True``).
    n_certified : int
        How many points were re-decided in exact arithmetic.
    """

    stable: np.ndarray
    margin: np.ndarray
    names: tuple[str, ...]
    implied: tuple[tuple[str, str], ...] = ()
    margins: np.ndarray | None = None
    n_certified: int = 0

    def __len__(self) -> int:
        return int(self.stable.size)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """Counts, the conditions, and for at most 10,000 configurations the arrays as lists."""
        out: dict[str, Any] = {
            "configurations": int(self.stable.size),
            "stable": int(np.count_nonzero(self.stable)),
            "conditions": list(self.names),
            "implied": [{"condition": c, "reason": r} for c, r in self.implied],
            "certified_exactly": self.n_certified,
        }
        if self.stable.size <= 10_000:
            out["verdicts"] = self.stable.ravel().tolist()
            out["margins"] = self.margin.ravel().tolist()
        return out

    def summary(self) -> str:
        """One line: how many configurations are stable, and the certification count."""
        n, k = self.stable.size, int(np.count_nonzero(self.stable))
        pct = 100 * k / n if n else 0.0
        return (
            f"{k:,} of {n:,} configurations strictly stable ({pct:.1f}%); "
            f"{self.n_certified} decided in exact arithmetic"
        )


def kernel_symbols(kernel: Kernel) -> list[sp.Symbol]:
    """The kernel's parameters as the symbols its expressions use, in argument order."""
    free = {s.name: s for e in kernel.outputs for s in e.free_symbols}
    return [free.get(p, sp.Symbol(p)) for p in kernel.params]


def run_kernel(
    kernel: Kernel,
    args: dict[str, np.ndarray],
    ranges: dict[str, Range],
    *,
    full: bool = False,
    threads: int | None = None,
    shape: tuple[int, ...] | None = None,
) -> Verdicts:
    """Evaluate ``kernel`` on broadcast ``args``, each checked against its range (default:
    any finite value).

    Large arrays are checked inside the blocked pass while they are in cache: the range's
    bounds by a min/max reduction per block, finiteness for free, because a NaN or infinite
    input makes the scale ``s`` non-finite, hence the margin NaN or 0, hence the point goes
    to the exact path, which checks its inputs first.
    """
    arrays = [args[p] for p in kernel.params]
    if shape is None:
        shape = np.broadcast_shapes(*(a.shape for a in args.values()))
    late = [
        j
        for j, (p, a) in enumerate(zip(kernel.params, arrays, strict=True))
        if a.size > BLOCK and p in kernel.in_scale
    ]
    late_names = {kernel.params[j] for j in late}
    for name, a in args.items():
        if name not in late_names:
            ranges.get(name, REAL).check(name, a)
    k = len(kernel.names)
    total = math.prod(shape)
    compiled = (
        not full and k > 0 and _backend.wanted(total, broadcast=any(a.size < total for a in arrays))
    )
    margins = np.empty((k, *shape)) if full else None
    if compiled:  # one fused loop (numba) that also returns each input's extremes
        bounds = [
            ranges.get(kernel.params[j], REAL).open_bounds() if j in late else None
            for j in range(len(arrays))
        ]
        margin, stable, idx = _compiled.run_margins(
            kernel, kernel_symbols(kernel), kernel.outputs, arrays, shape, threads, bounds
        )
        bad = list(late) if idx.size else []  # an out-of-range value reads as a NaN margin
    else:
        margin, stable, idx, bad = _numpy_margins(kernel, arrays, shape, margins, threads, {
            j: ranges.get(kernel.params[j], REAL) for j in late
        })  # fmt: skip
    for j in bad:
        ranges.get(kernel.params[j], REAL).check(kernel.params[j], arrays[j])
    if idx.size:
        _redecide_exactly(kernel, arrays, ranges, shape, idx, margin, stable)
    return Verdicts(stable, margin, kernel.names, kernel.implied, margins, int(idx.size))


def _numpy_margins(
    kernel: Kernel,
    arrays: list[np.ndarray],
    shape: tuple[int, ...],
    margins: np.ndarray | None,
    threads: int | None,
    late: dict[int, Range],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """``(margin, stable, points to re-decide, inputs to range-check)`` by blocked numpy."""
    k = len(kernel.names)
    full = margins is not None
    local = threading.local()  # a scratch block per worker thread

    def block(start: int, xs: list[np.ndarray], outs: list[np.ndarray]) -> Any:
        bad = [j for j, rng in late.items() if not rng.bounds_hold(xs[j])]
        if bad:
            return ("bad", bad)
        *cs, s = kernel.numeric(*xs)
        if not cs:  # every condition is implied by the parameter ranges
            outs[0][...] = 1.0
            outs[1][...] = True
            return None
        scratch = getattr(local, "scratch", None)
        if scratch is None or scratch.size < outs[0].size:
            scratch = local.scratch = np.empty(max(outs[0].size, BLOCK))
        r = scratch[: outs[0].size]
        if k == 1:
            np.divide(cs[0], s, out=outs[0])
        else:
            np.minimum(cs[0], cs[1], out=r)
            for c in cs[2:]:
                np.minimum(r, c, out=r)
            np.divide(r, s, out=outs[0])
        np.greater(outs[0], 0, out=outs[1])
        if full:
            for o, c in zip(outs[2:], cs, strict=True):
                o[...] = c
        size = np.absolute(outs[0], out=r)
        if size.min() > _CERTIFY_RTOL:  # also False when there is a NaN (s = 0 or not finite)
            return None
        return np.flatnonzero(~(size > _CERTIFY_RTOL)) + start

    margin = np.empty(shape)
    stable = np.empty(shape, dtype=bool)
    outputs = [margin, stable] + ([margins[i] for i in range(k)] if full else [])
    found = run_blocks(arrays, outputs, block, threads)
    bad = sorted({j for item in found if isinstance(item, tuple) for j in item[1]})
    idx = [item for item in found if not isinstance(item, tuple)]
    return margin, stable, np.concatenate(idx) if idx else np.empty(0, dtype=np.intp), bad


def _redecide_exactly(
    kernel: Kernel,
    arrays: list[np.ndarray],
    ranges: dict[str, Range],
    shape: tuple[int, ...],
    idx: np.ndarray,
    margin: np.ndarray,
    stable: np.ndarray,
) -> None:
    """Decide the points ``idx`` (flat) in exact rational arithmetic on the exact binary
    values of their inputs, in place (the margin keeps its exact value's float)."""
    pos = np.unravel_index(idx, shape) if shape else ()
    columns = [np.broadcast_to(a, shape)[pos].reshape(idx.size) for a in arrays]
    for name, a, col in zip(kernel.params, arrays, columns, strict=True):
        if not np.all(np.isfinite(col)):
            ranges.get(name, REAL).check(name, a)
    flat_margin, flat_stable = margin.reshape(-1), stable.reshape(-1)
    rows = zip(*(c.tolist() for c in columns), strict=True)
    for i, values in zip(idx.tolist(), rows, strict=True):
        *cs, s = kernel.exact(*map(Fraction, values))
        low = Fraction(min(cs))
        flat_stable[i] = low > 0
        value = float(low / s) if s else 0.0
        if low > 0 and value <= 0:  # below the smallest subnormal
            value = math.ulp(0.0)
        flat_margin[i] = value


# ---------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------
def checked_array(name: str, value: Any) -> np.ndarray:
    """Type gate only: the values are range-checked inside the blocked pass."""
    return float_array(value, name)


def checked_arrays(**kw: Any) -> dict[str, np.ndarray]:
    """Float arrays, checked to broadcast together (not broadcast, not range-checked)."""
    out = {name: checked_array(name, value) for name, value in kw.items()}
    try:
        np.broadcast_shapes(*(a.shape for a in out.values()))
    except ValueError as exc:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in out.items())
        raise ConfigError(f"the inputs must broadcast together, got shapes {shapes}") from exc
    return out


def require(mask: np.ndarray, message: str, values: np.ndarray) -> None:
    """Raise ``message, got <first bad value>`` if ``mask`` has a True entry."""
    if np.any(mask):
        flat = np.broadcast_to(values, mask.shape).ravel()
        i = int(np.flatnonzero(mask.ravel())[0])
        raise ConfigError(
            f"{message}, got {describe(float(flat[i]))} "
            f"({int(np.count_nonzero(mask))} config(s), first at flat index {i})"
        )


@dataclass(frozen=True)
class Range:
    """An allowed interval for a parameter (always finite)."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = True
    high_open: bool = True

    def __str__(self) -> str:  # the wording of stability._values.check_range
        return interval_text(
            None if self.low == -math.inf else self.low,
            None if self.high == math.inf else self.high,
            self.low_open,
            self.high_open,
        )

    def bounds_hold(self, values: np.ndarray) -> bool:
        """Whether the bounds hold (finiteness is not checked; NaN fails a finite bound)."""
        if self.low != -math.inf:
            low = values.min()
            if not (low > self.low if self.low_open else low >= self.low):
                return False
        if self.high != math.inf:
            high = values.max()
            if not (high < self.high if self.high_open else high <= self.high):
                return False
        return True

    def open_bounds(self) -> tuple[float, float]:
        """``(low, high)`` with ``low < x < high`` exactly for the finite ``x`` in the range."""
        low = self.low if self.low_open else float(np.nextafter(self.low, -np.inf))
        high = self.high if self.high_open else float(np.nextafter(self.high, np.inf))
        return low, high

    def holds(self, low: float, high: float) -> bool:
        """Whether values with this minimum and maximum lie in the range (NaN fails)."""
        ok_lo = low > self.low if self.low_open else low >= self.low
        ok_hi = high < self.high if self.high_open else high <= self.high
        return bool(ok_lo and ok_hi and math.isfinite(low) and math.isfinite(high))

    def check(self, name: str, values: np.ndarray) -> None:
        if values.size == 0 or self.holds(values.min(), values.max()):
            return
        require(~np.isfinite(values), f"{name} must be finite", values)
        inside = (values > self.low if self.low_open else values >= self.low) & (
            values < self.high if self.high_open else values <= self.high
        )
        require(~inside, f"{name} must be in {self}", values)


REAL = Range()


POSITIVE = Range(0.0)


NONNEGATIVE = Range(0.0, low_open=False)


UNIT = Range(0.0, 1.0, low_open=False)  # [0, 1)
