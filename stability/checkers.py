"""Vectorised numeric checkers: the only module that lambdifies.

Each checker is compiled once (cached) from a symbolic result of the core, through sympy's
``cse`` into numpy code that reuses its buffers (:mod:`stability._codegen`; ``lambdify`` with
``cse=True`` is the fallback and the reference it is tested against): the strict-stability
conditions (Theorem 6.1 or the Jury conditions on a curvature
interval) composed with an optimizer's triplet, and the noise term of eq. 25. Inputs are
keyword-only and broadcast against each other; nothing is materialised at the broadcast shape
except the outputs, and the work runs in cache-sized blocks on a few threads.

**Certified verdicts.** Every condition ``c_i > 0`` is a polynomial in the inputs. In floating
point it is accurate to a few ulps of a scale ``s``: the sum of the absolute values of the terms
of all conditions, or a cheaper expression proved at compile time to be at least half of each
condition's own term sum (Theorem 6.1 uses ``1 + |beta| + (1 + lambda_max)(|q0| + |q1|)``).
The *relative margin* ``min_i c_i / s`` (dimensionless, at most 2 in absolute value) is positive
exactly when the configuration is strictly stable; where its float value is within ``1e-12`` of
zero, the point is re-decided in exact rational arithmetic on the exact binary values of the
inputs (``Verdicts.n_certified`` counts them; each costs about 30 microseconds, so only a grid
laid exactly on a boundary makes this path noticeable).

**Implied conditions.** Conditions that the validated parameter ranges imply (for torch SGD,
``1 - momentum > 0``, or the lower end of the curvature interval once the upper end holds) are
proved so once, symbolically, and then not evaluated; ``Verdicts.implied`` lists them with the
reason. ``full=True`` evaluates every condition and returns each one's value.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from . import symbols as S
from ._codegen import inplace_numpy
from ._values import _interval, describe, float_array, listing
from .errors import ConfigError, StabilityError

__all__ = [
    "Verdicts",
    "family_triplet",
    "lr_momentum_grid",
    "memory1_interval_margins",
    "memory1_margins",
    "memory1_noise_sum",
    "method_margins",
    "torch_sgd_margins",
]

_CERTIFY_RTOL = 1e-12
_BLOCK = 2**16  # elements per block: a block's temporaries stay in the CPU cache
THREADS = max(1, min(os.cpu_count() or 1, 4))
"""Default number of worker threads (numpy releases the GIL inside each block)."""


# ---------------------------------------------------------------------------------------
# Compiled condition sets
# ---------------------------------------------------------------------------------------
class _FractionPrinter(PythonCodePrinter):
    """Python code that stays exact on :class:`~fractions.Fraction` inputs."""

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"Fraction({expr.p}, {expr.q})"

    _print_Half = _print_Rational


@dataclass(frozen=True)
class _Kernel:
    names: tuple[str, ...]  # the conditions evaluated, in order
    implied: tuple[tuple[str, str], ...]  # (condition, reason) not evaluated
    params: tuple[str, ...]  # argument order
    outputs: tuple[sp.Expr, ...]  # c_1, ..., c_k, s
    numeric: Callable[..., list[Any]]  # arrays -> [c_1, ..., c_k, s]
    exact: Callable[..., list[Any]]  # Fractions -> [c_1, ..., c_k, s]
    in_scale: frozenset[str]  # parameters that occur in s


def _provably(expr: sp.Expr, domain: dict[sp.Symbol, sp.Expr], strict: bool) -> bool:
    """``expr > 0`` (``>= 0`` if not ``strict``) for every parameter in the domain, proved by
    sympy's assumptions after substituting the domain's parametrisation."""
    e = sp.factor(sp.together(sp.expand(expr).subs(domain)))
    return bool(e.is_positive if strict else e.is_nonnegative)


def _reduce(
    conds: Sequence[tuple[str, sp.Expr]], domain: dict[sp.Symbol, sp.Expr]
) -> tuple[list[tuple[str, sp.Expr]], list[tuple[str, str]]]:
    """Drop duplicate conditions, conditions positive on the whole domain, and conditions
    ``c_j`` with ``c_j >= c_i`` on the domain for a kept ``c_i`` (``c_i > 0`` implies them)."""
    kept: list[tuple[str, sp.Expr]] = []
    implied: list[tuple[str, str]] = []
    for name, e in conds:
        e = sp.expand(e)
        same = next((n for n, k in kept if k == e), None)
        if same is not None:
            implied.append((name, f"the same as {same!r}"))
        elif _provably(e, domain, strict=True):
            implied.append((name, "holds for every valid parameter value"))
        else:
            kept.append((name, e))
    j = 0
    while j < len(kept):
        name, e = kept[j]
        by = next(
            (
                n
                for i, (n, k) in enumerate(kept)
                if i != j and _provably(e - k, domain, strict=False)
            ),
            None,
        )
        if by is not None:
            implied.append((name, f"implied by {by!r}"))
            del kept[j]
        else:
            j += 1
    return kept, implied


def _term_sum(expr: sp.Expr) -> sp.Expr:
    """The sum of the absolute values of the terms of ``expr`` (expanded)."""
    return sp.Add(
        *(
            abs(c) * sp.Abs(m)
            for c, m in (t.as_coeff_Mul() for t in sp.Add.make_args(sp.expand(expr)))
        )
    )


def _dominates(scale: sp.Expr, bound: sp.Expr, factor: int) -> bool:
    """``factor * scale - bound`` has only nonnegative coefficients as a polynomial in the
    absolute values (``scale`` and ``bound`` are sums of nonnegative products)."""
    absolute = {
        a: sp.Symbol(f"abs_{i}", nonnegative=True)
        for i, a in enumerate(sorted((factor * scale - bound).atoms(sp.Abs), key=str))
    }
    diff = sp.expand((factor * scale - bound).xreplace(absolute))
    return (
        all(c >= 0 for c in sp.Poly(diff, *diff.free_symbols).coeffs())
        if diff.free_symbols
        else diff >= 0
    )


def _compile(
    conds: Sequence[tuple[str, sp.Expr]],
    params: Sequence[sp.Symbol],
    domain: dict[sp.Symbol, sp.Expr] | None = None,
    scale: sp.Expr | None = None,
) -> _Kernel:
    """Lambdify conditions (``> 0``) once: float kernel with the common scale, exact twin.

    ``scale`` defaults to the sum of the absolute values of all terms of all conditions; a
    cheaper one may be given if it is proved (here) to be at least half of every condition's
    own term sum, which keeps the float error of each condition below ``1e-12 * scale``.
    """
    if domain is None:
        kept, implied = [(n, sp.expand(e)) for n, e in conds], []
    else:
        kept, implied = _reduce(conds, domain)
    exprs = [e for _, e in kept]
    if scale is None:
        scale = sp.Add(*(_term_sum(e) for e in exprs))
    elif not all(_dominates(scale, _term_sum(e), 2) for e in exprs):
        raise AssertionError(f"scale {scale} does not bound the conditions' term sums")
    out = [*exprs, scale]
    try:
        numeric: Callable[..., list[Any]] = inplace_numpy(params, out)
    except NotImplementedError:
        numeric = sp.lambdify(params, out, modules="numpy", cse=True)
    exact = sp.lambdify(params, out, modules=[{"Fraction": Fraction}], printer=_FractionPrinter)
    return _Kernel(
        tuple(n for n, _ in kept),
        tuple(implied),
        tuple(p.name for p in params),
        tuple(out),
        numeric,
        exact,
        frozenset(p.name for p in params if p in scale.free_symbols),
    )


# ---------------------------------------------------------------------------------------
# Blocked, threaded evaluation over a broadcast shape
# ---------------------------------------------------------------------------------------
def _blocks(
    inputs: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    fn: Callable[[int, list[np.ndarray], list[np.ndarray]], Any],
    threads: int | None,
    block: int | None = None,
) -> list[Any]:
    """Call ``fn(start, input_blocks, output_blocks)`` over C-order blocks of the outputs'
    shape (inputs broadcast to it without copies). Returns the non-``None`` results."""
    block = _BLOCK if block is None else block
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

    def summary(self) -> str:
        """One line: how many configurations are stable, and the certification count."""
        n, k = self.stable.size, int(np.count_nonzero(self.stable))
        pct = 100 * k / n if n else 0.0
        return (
            f"{k:,} of {n:,} configurations strictly stable ({pct:.1f}%); "
            f"{self.n_certified} decided in exact arithmetic"
        )


def _run(
    kernel: _Kernel,
    args: dict[str, np.ndarray],
    ranges: dict[str, _Range],
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
        if a.size > _BLOCK and p in kernel.in_scale
    ]
    late_names = {kernel.params[j] for j in late}
    for name, a in args.items():
        if name not in late_names:
            ranges.get(name, _REAL).check(name, a)
    k = len(kernel.names)
    margin = np.empty(shape)
    stable = np.empty(shape, dtype=bool)
    margins = np.empty((k, *shape)) if full else None
    outputs = [margin, stable] + ([margins[i] for i in range(k)] if full else [])
    late_ranges = [(j, ranges.get(kernel.params[j], _REAL)) for j in late]
    local = threading.local()  # a scratch block per worker thread

    def block(start: int, xs: list[np.ndarray], outs: list[np.ndarray]) -> Any:
        bad = [j for j, rng in late_ranges if not rng.bounds_hold(xs[j])]
        if bad:
            return ("bad", bad)
        *cs, s = kernel.numeric(*xs)
        if not cs:  # every condition is implied by the parameter ranges
            outs[0][...] = 1.0
            outs[1][...] = True
            return None
        scratch = getattr(local, "scratch", None)
        if scratch is None or scratch.size < outs[0].size:
            scratch = local.scratch = np.empty(max(outs[0].size, _BLOCK))
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

    found = _blocks(arrays, outputs, block, threads)
    for item in found:
        if isinstance(item, tuple):
            for j in item[1]:
                ranges.get(kernel.params[j], _REAL).check(kernel.params[j], arrays[j])
    idx = np.concatenate(found) if found else np.empty(0, dtype=np.intp)
    if idx.size:
        pos = np.unravel_index(idx, shape) if shape else ()
        columns = [np.broadcast_to(a, shape)[pos].reshape(idx.size) for a in arrays]
        for name, a, col in zip(kernel.params, arrays, columns, strict=True):
            if not np.all(np.isfinite(col)):
                ranges.get(name, _REAL).check(name, a)
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
    return Verdicts(stable, margin, kernel.names, kernel.implied, margins, int(idx.size))


# ---------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------
def _array(name: str, value: Any) -> np.ndarray:
    """Type gate only: the values are range-checked inside the blocked pass."""
    return float_array(value, name)


def _arrays(**kw: Any) -> dict[str, np.ndarray]:
    """Float arrays, checked to broadcast together (not broadcast, not range-checked)."""
    out = {name: _array(name, value) for name, value in kw.items()}
    try:
        np.broadcast_shapes(*(a.shape for a in out.values()))
    except ValueError as exc:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in out.items())
        raise ConfigError(f"the inputs must broadcast together, got shapes {shapes}") from exc
    return out


def _require(mask: np.ndarray, message: str, values: np.ndarray) -> None:
    """Raise ``message, got <first bad value>`` if ``mask`` has a True entry."""
    if np.any(mask):
        flat = np.broadcast_to(values, mask.shape).ravel()
        i = int(np.flatnonzero(mask.ravel())[0])
        raise ConfigError(
            f"{message}, got {describe(float(flat[i]))} "
            f"({int(np.count_nonzero(mask))} config(s), first at flat index {i})"
        )


@dataclass(frozen=True)
class _Range:
    """An allowed interval for a parameter (always finite)."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = True
    high_open: bool = True

    def __str__(self) -> str:  # the wording of stability._values.check_range
        return _interval(
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

    def holds(self, low: float, high: float) -> bool:
        """Whether values with this minimum and maximum lie in the range (NaN fails)."""
        ok_lo = low > self.low if self.low_open else low >= self.low
        ok_hi = high < self.high if self.high_open else high <= self.high
        return bool(ok_lo and ok_hi and math.isfinite(low) and math.isfinite(high))

    def check(self, name: str, values: np.ndarray) -> None:
        if values.size == 0 or self.holds(values.min(), values.max()):
            return
        _require(~np.isfinite(values), f"{name} must be finite", values)
        inside = (values > self.low if self.low_open else values >= self.low) & (
            values < self.high if self.high_open else values <= self.high
        )
        _require(~inside, f"{name} must be in {self}", values)


_REAL = _Range()
_POSITIVE = _Range(0.0)
_NONNEGATIVE = _Range(0.0, low_open=False)
_UNIT = _Range(0.0, 1.0, low_open=False)  # [0, 1)


# ---------------------------------------------------------------------------------------
# Memory-1 triplets: Theorem 6.1 on (0, lambda_max] and Jury conditions on an interval
# ---------------------------------------------------------------------------------------
_LO, _HI = sp.symbols("lambda_lo lambda_hi", nonnegative=True)


def _interval_conditions(
    beta: Any, q0: Any, q1: Any, lo: Any, hi: Any
) -> list[tuple[str, sp.Expr]]:
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
def _theorem61_kernel(merged: bool = True) -> _Kernel:
    """Theorem 6.1; ``merged`` evaluates ``1 - beta > 0`` and ``1 + beta > 0`` together as
    ``1 - |beta| > 0`` (the same minimum, two operations fewer per config) and normalises by
    the cheaper scale ``1 + |beta| + (1 + lambda_max)(|q0| + |q1|)``."""
    from .regions import theorem61_conditions

    conds = [(c.name, c.expr) for c in theorem61_conditions(S.beta, S.q0, S.q1, S.lam_max)]
    if not merged:
        return _compile(conds, (S.beta, S.q0, S.q1, S.lam_max))
    if not (conds[0][1] == 1 - S.beta and conds[1][1] == 1 + S.beta):
        raise StabilityError(
            "theorem61_conditions changed order: the merged kernel needs "
            "1 - beta and 1 + beta first"
        )
    conds = [("|beta| < 1", 1 - sp.Abs(S.beta)), *conds[2:]]
    # every condition's term sum is at most twice this (checked by _compile)
    scale = 1 + sp.Abs(S.beta) + (1 + S.lam_max) * (sp.Abs(S.q0) + sp.Abs(S.q1))
    return _compile(conds, (S.beta, S.q0, S.q1, S.lam_max), scale=scale)


@cache
def _interval_kernel() -> _Kernel:
    return _compile(
        _interval_conditions(S.beta, S.q0, S.q1, _LO, _HI), (S.beta, S.q0, S.q1, _LO, _HI)
    )


def memory1_margins(
    *, beta: Any, q0: Any, q1: Any, lambda_max: Any, full: bool = False, threads: int | None = None
) -> Verdicts:
    """Vectorised, certified Theorem 6.1 verdicts for memory-1 triplets on ``(0, lambda_max]``.

    >>> m = memory1_margins(beta=[0.9, 0.9], q0=0.0, q1=[-0.1, -0.4], lambda_max=10.0)
    >>> m.stable.tolist(), m.margin.round(4).tolist()
    ([True, False], [0.0333, -0.0317])
    """
    a = _arrays(beta=beta, q0=q0, q1=q1, lambda_max=lambda_max)
    return _run(
        _theorem61_kernel(not full), a, {"lambda_max": _POSITIVE}, full=full, threads=threads
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
    a = _arrays(beta=beta, q0=q0, q1=q1, lambda_lo=lambda_lo, lambda_hi=lambda_hi)
    lo, hi = a["lambda_lo"], a["lambda_hi"]
    ranges = {"lambda_lo": _NONNEGATIVE, "lambda_hi": _POSITIVE}
    for name in ranges:
        ranges[name].check(name, a[name])
    _require(lo > hi, "lambda_lo must be <= lambda_hi", lo)
    return _run(_interval_kernel(), a, ranges, full=full, threads=threads)


# ---------------------------------------------------------------------------------------
# Optimizer families: torch SGD and the registry's memory-0/1 methods
# ---------------------------------------------------------------------------------------
_TORCH_PARAMS = ("lr", "momentum", "dampening", "weight_decay", "lambda_max")


@cache
def _torch_symbols() -> dict[str, sp.Symbol]:
    return {
        "lr": sp.Symbol("lr", positive=True),
        "momentum": sp.Symbol("momentum", nonnegative=True),
        "dampening": sp.Symbol("dampening", nonnegative=True),
        "weight_decay": sp.Symbol("weight_decay", nonnegative=True),
        "lambda_max": S.lam_max,
    }


@cache
def _torch_kernel(nesterov: bool, zero: frozenset[str], reduce: bool) -> _Kernel:
    """Jury conditions of torch SGD on ``[wd, lambda_max + wd]`` (the curvatures shifted by
    weight decay), with the parameters in ``zero`` set to 0. ``reduce`` drops the conditions
    implied by ``lr > 0``, ``0 <= momentum, dampening < 1``, ``weight_decay >= 0``."""
    from .charpoly import triplet
    from .optimizers import from_torch_sgd

    sym = _torch_symbols()
    val = {n: (sp.S.Zero if n in zero else s) for n, s in sym.items()}
    damp = 0 if nesterov else val["dampening"]
    t = triplet(from_torch_sgd(val["lr"], val["momentum"], damp, nesterov=nesterov).algorithm)
    wd = val["weight_decay"]
    conds = _interval_conditions(t.beta, t.q0, t.q1, wd, val["lambda_max"] + wd)
    params = tuple(
        sym[n] for n in _TORCH_PARAMS if n not in zero and not (nesterov and n == "dampening")
    )
    s, u = sp.symbols("s u", real=True)  # momentum = s^2/(1+s^2), dampening = u^2/(1+u^2)
    domain = {sym["momentum"]: s**2 / (1 + s**2), sym["dampening"]: u**2 / (1 + u**2)}
    return _compile(conds, params, domain if reduce else None)


def torch_sgd_margins(
    *,
    lr: Any,
    momentum: Any = 0.0,
    dampening: Any = 0.0,
    weight_decay: Any = 0.0,
    nesterov: Any = False,
    lambda_max: Any,
    full: bool = False,
    threads: int | None = None,
) -> Verdicts:
    """Certified strict stability of ``torch.optim.SGD`` configs on curvatures
    ``(0, lambda_max]`` (shifted by weight decay), vectorised over any broadcast shape.

    Parameters broadcast together (scalars, grids such as ``lr[:, None]`` with
    ``momentum[None, :]``, or flat arrays); only the outputs are allocated at the broadcast
    shape. ``full=True`` evaluates and returns all seven Jury conditions; the default evaluates
    only those the parameter ranges do not imply (for plain SGD: one).

    >>> m = torch_sgd_margins(lr=[0.1, 0.1], momentum=0.9, lambda_max=[37.9, 38.1])
    >>> m.stable.tolist()
    [True, False]
    >>> m.names
    ('chi(-1) > 0 at lambda_hi',)
    """
    a = _arrays(
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
        lambda_max=lambda_max,
    )
    try:
        nest = np.asarray(nesterov)
        if nest.dtype.kind not in "bi" or not np.all((nest == 0) | (nest == 1)):
            raise ValueError
        nest = nest.astype(bool)
        shape = np.broadcast_shapes(nest.shape, *(x.shape for x in a.values()))
    except ValueError as exc:
        raise ConfigError(
            f"nesterov must be a boolean (or array of booleans), got {nesterov!r}"
        ) from exc
    mu, tau = a["momentum"], a["dampening"]
    ranges = {
        "lr": _POSITIVE,
        "momentum": _UNIT,
        "dampening": _UNIT,
        "weight_decay": _NONNEGATIVE,
        "lambda_max": _POSITIVE,
    }
    _UNIT.check("dampening", tau)  # the rest is checked in the blocked pass
    if np.any(nest) or tau.max(initial=0.0) > 0:
        _UNIT.check("momentum", mu)
    if np.any(nest):
        _require(
            nest & ((mu == 0) | (tau != 0)), "nesterov requires momentum > 0 and dampening = 0", mu
        )
    if tau.max(initial=0.0) > 0 and mu.min(initial=1.0) == 0:
        a["dampening"] = np.where(mu == 0, 0.0, tau)  # torch keeps no buffer without momentum
    zero = frozenset(
        n for n in ("dampening", "weight_decay") if a[n].size and a[n].min() == 0 == a[n].max()
    )

    def run(flag: bool) -> Verdicts:
        return _run(
            _torch_kernel(flag, zero, not full), a, ranges, full=full, threads=threads, shape=shape
        )

    if not np.any(nest) or np.all(nest):
        return run(bool(np.any(nest)))
    plain, nes = run(False), run(True)  # mixed: both families, then select
    pick = np.broadcast_to(nest, shape)
    margins = None if not full else np.where(pick, nes.margins, plain.margins)
    names = plain.names if full else tuple(dict.fromkeys(plain.names + nes.names))
    return Verdicts(
        np.where(pick, nes.stable, plain.stable),
        np.where(pick, nes.margin, plain.margin),
        names,
        tuple(dict.fromkeys(plain.implied + nes.implied)),
        margins,
        plain.n_certified + nes.n_certified,
    )


def _symbol_range(symbol: sp.Symbol) -> _Range:
    if symbol.is_positive:
        return _POSITIVE
    return _NONNEGATIVE if symbol.is_nonnegative else _REAL


@cache
def _method_kernel(name: str, reduce: bool) -> tuple[_Kernel, tuple[str, ...]]:
    from .algorithms import get_method
    from .regions import strict_stability_conditions

    method = get_method(name)
    alg = method.symbolic()
    if alg.M > 1:
        raise ConfigError(
            f"vectorised checks cover memory 0 and 1, got "
            f"{describe(method.name)} with "
            f"M = {alg.M}; use stability.is_strictly_stable"
        )
    conds = strict_stability_conditions(alg, S.lam_max).conditions
    renamed = {
        s: sp.Symbol(p, **s.assumptions0)
        for s, p in zip(method.symbols, method.parameters, strict=True)
    }
    pairs = [(c.name, c.expr.subs(renamed)) for c in conds]
    params = (*renamed.values(), S.lam_max)
    return _compile(pairs, params, {} if reduce else None), method.parameters


def method_margins(
    name: str, *, lambda_max: Any, full: bool = False, threads: int | None = None, **params: Any
) -> Verdicts:
    """Certified strict stability on ``(0, lambda_max]`` for a registered memory-0/1 method
    (``gd``, ``heavy_ball``, ``nesterov``, ``memory1``, ``momentum_kick``), vectorised over its
    parameters (given by name, broadcasting).

    >>> method_margins("heavy_ball", lr=[1.0, 3.0], momentum=0.5, lambda_max=1.0).stable.tolist()
    [True, False]
    >>> method_margins("gd", lr=[1.9, 2.0], lambda_max=1.0).stable.tolist()
    [True, False]
    """
    from .algorithms import get_method

    method = get_method(name)
    kernel, names = _method_kernel(method.name, not full)
    missing = [p for p in names if p not in params]
    unknown = sorted(set(params) - set(names), key=str)
    if missing or unknown:
        raise ConfigError(
            f"method {method.name!r} takes parameters {list(names)} and "
            f"lambda_max; missing {missing}, unknown parameter(s) "
            f"{listing(unknown)}"
        )
    a = _arrays(**{p: params[p] for p in names}, lambda_max=lambda_max)
    ranges = {p: _symbol_range(sym) for sym, p in zip(method.symbols, names, strict=True)}
    for p, (low, high, low_open, high_open) in method.ranges.items():
        ranges[p] = _Range(
            -math.inf if low is None else float(low),
            math.inf if high is None else float(high),
            low_open,
            high_open,
        )
    return _run(kernel, a, {**ranges, "lambda_max": _POSITIVE}, full=full, threads=threads)


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
            raise ConfigError(f"family must be memory-1, got {describe(name)} with M = {alg.M}")
        params = method.symbols
    t = triplet(alg)
    return params, sp.lambdify(params, list(t), modules="numpy", cse=True)


def lr_momentum_grid(
    family: str, *, lambda_max: float, lr: Any, momentum: Any, full: bool = False, **fixed: Any
) -> tuple[np.ndarray, np.ndarray, Verdicts]:
    """Certified stability of an optimizer family on an ``lr x momentum`` grid.

    ``family`` is ``torch_sgd``, ``torch_nesterov`` or a registered memory-0/1 method whose
    parameters include ``lr`` and ``momentum`` (or ``beta``); other parameters (e.g.
    ``dampening``) are passed by name. Returns ``(LR, MOM, verdicts)`` with ``LR``/``MOM``
    from :func:`numpy.meshgrid` (shape ``(len(momentum), len(lr))``).

    >>> LR, MOM, m = lr_momentum_grid("heavy_ball", lambda_max=1.0, lr=[1.0, 3.0], momentum=[0.5])
    >>> m.stable.tolist()
    [[True, False]]
    """
    lr_ = float_array(lr, "lr").ravel()[None, :]
    mom = float_array(momentum, "momentum").ravel()[:, None]
    if family in ("torch_sgd", "torch_nesterov"):
        unknown = sorted(set(fixed) - {"dampening", "weight_decay"}, key=str)
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {listing(unknown)} for family {family!r}; "
                f"expected dampening, weight_decay"
            )
        v = torch_sgd_margins(
            lr=lr_,
            momentum=mom,
            lambda_max=lambda_max,
            full=full,
            nesterov=family == "torch_nesterov",
            **fixed,
        )
    else:
        from .algorithms import get_method

        names = get_method(family).parameters
        key = "momentum" if "momentum" in names else "beta"
        if "lr" not in names or key not in names:
            raise ConfigError(
                f"family {family!r} has parameters {list(names)}: no lr/momentum plane"
            )
        v = method_margins(
            family, lambda_max=lambda_max, full=full, **{"lr": lr_, key: mom}, **fixed
        )
    LR, MOM = np.meshgrid(lr_.ravel(), mom.ravel())
    return LR, MOM, v


# ---------------------------------------------------------------------------------------
# The noise condition U < 1, vectorised over configurations x eigenvalues
# ---------------------------------------------------------------------------------------
@cache
def _noise_kernel() -> tuple[Callable[..., list[Any]], tuple[bool, ...], tuple[bool, ...]]:
    """eq. 25's ``Ubar_lambda = N(lambda) / D(lambda)`` for the memory-1 triplet, as the
    polynomial coefficients (highest power first, ``N`` then ``D``) lambdified in
    ``(beta, q0, q1)``, with masks of the coefficients that are not identically zero. ``D`` is
    oriented to be positive where ``S_lambda`` is stable."""
    from .algorithms import memory1
    from .noisesum import noise_term

    num, den = sp.fraction(sp.cancel(noise_term(memory1(S.beta, S.q0, S.q1), S.lam)))
    if den.subs({S.lam: 0, S.beta: 0}) < 0:  # D(0) = 2 (1 - beta^2) up to sign
        num, den = -num, -den
    width = max(sp.degree(num, S.lam), sp.degree(den, S.lam)) + 1
    cd = [sp.expand(den).coeff(S.lam, k) for k in reversed(range(width))]
    cn = [sp.expand(num).coeff(S.lam, k) for k in reversed(range(width))]
    f = sp.lambdify((S.beta, S.q0, S.q1), [*cn, *cd], modules="numpy", cse=True)
    return f, tuple(c != 0 for c in cn), tuple(c != 0 for c in cd)


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


def memory1_noise_sum(
    *,
    beta: Any,
    q0: Any,
    q1: Any,
    eigenvalues: Any,
    batch_size: Any,
    weights: Any = None,
    tau1: float = 1.0,
    tau2: float = -1.0,
    chunk: int = _BLOCK,
    threads: int | None = None,
) -> np.ndarray:
    """``U`` for every memory-1 triplet (broadcast shape), summed over a finite spectrum.

    ``U = sum_lambda w_lambda (tau1/B) Ubar_lambda / (1 + (tau2/B) Ubar_lambda)`` with
    ``Ubar_lambda = N(lambda)/D(lambda)`` from eq. 25, evaluated as
    ``tau1 N / (B D + tau2 N)``. ``inf`` where ``S_lambda`` is not strictly stable for some
    eigenvalue (certified: the Jury conditions are linear in ``lambda``, so the interval
    ``[min, max]`` of the spectrum decides) or ``A_lambda`` is not (``B D + tau2 N <= 0``).
    Work runs in blocks of about ``chunk`` config-eigenvalue pairs. ``tau2 > 0`` is not
    vectorised (use :func:`stability.noise.stability_sum`).

    >>> float(memory1_noise_sum(beta=0.0, q0=0.0, q1=-1.0, eigenvalues=[1, 0.5, 0.25, 0.125],
    ...                         batch_size=10, tau2=0.0).round(14))
    0.15428571428571
    """
    if not (math.isfinite(tau1) and math.isfinite(tau2)) or tau1 < 0 or tau2 > tau1:
        raise ConfigError(f"need tau1 >= 0 and tau2 <= tau1, got ({tau1}, {tau2})")
    if tau2 > 0:
        raise ConfigError("tau2 > 0 is not vectorised; use stability.noise.stability_sum")
    a = _arrays(beta=beta, q0=q0, q1=q1, batch_size=batch_size)
    for name, rng in {
        "beta": _REAL,
        "q0": _REAL,
        "q1": _REAL,
        "batch_size": _Range(1.0, low_open=False),
    }.items():
        rng.check(name, a[name])
    lam = _array("eigenvalues", eigenvalues).ravel()
    if lam.size == 0:
        raise ConfigError("eigenvalues must be a non-empty array of finite positive numbers")
    _POSITIVE.check("eigenvalues", lam)
    w = np.ones_like(lam) if weights is None else _array("weights", weights).ravel()
    if w.shape != lam.shape:
        raise ConfigError(f"weights must be one per eigenvalue ({lam.size}), got shape {w.shape}")
    _NONNEGATIVE.check("weights", w)
    strict = memory1_interval_margins(
        beta=a["beta"],
        q0=a["q0"],
        q1=a["q1"],
        lambda_lo=lam.min(),
        lambda_hi=lam.max(),
        threads=threads,
    )
    f, nz_n, nz_d = _noise_kernel()
    nz_t = tuple(d or (n and tau2 != 0) for n, d in zip(nz_n, nz_d, strict=True))
    width = len(nz_n)
    shape = strict.stable.shape
    out = np.empty(shape)
    pairs = max(1, int(chunk))
    per = max(1, pairs // lam.size)  # configs per block
    step = max(1, pairs // per)  # eigenvalues per sub-block

    def block(_start: int, xs: list[np.ndarray], outs: list[np.ndarray]) -> None:
        b, x0, x1, B = (x[:, None] for x in xs)
        m = b.shape[0]
        cs = [np.broadcast_to(c, (m, 1)) for c in f(b, x0, x1)]
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

    _blocks([a["beta"], a["q0"], a["q1"], a["batch_size"]], [out], block, threads, block=per)
    out[~strict.stable] = np.inf
    return out
