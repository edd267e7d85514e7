"""Learning-rate schedules as window functions ``F[t]`` with a declared continuation (docs §7)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._values import real_array, to_float
from ..errors import ConfigError, describe, listing

__all__ = ["Schedule", "schedule"]


@dataclass(frozen=True)
class Schedule:
    """Window values ``F[0..T-1]`` and what happens after the horizon (``tail``).

    ``tail``: ``"finite"`` (training ends), ``"constant"`` (continues at the last value),
    ``"nonincreasing"``, ``"periodic"`` (repeats), ``"dipping"`` (restarts whose minima tend to
    0), ``"unbounded"`` (grows without bound, subexponentially), ``"exponential"`` (multiplied
    by ``growth > 1`` at every step after the horizon).

    ``base_lr`` (optional) makes the schedule absolute: the learning rate at step ``t`` is
    ``base_lr F[t]`` whatever the optimizer's lr is (a torch scheduler read with
    :func:`stability.training.schedule_from_torch`); without it the window multiplies the
    configuration's lr. ``momentum`` (optional) is the momentum (Adam: ``beta1``) at each step,
    for schedulers that cycle it.
    """

    values: np.ndarray
    name: str
    tail: str = "finite"
    growth: float = 1.0
    base_lr: float | None = None
    momentum: np.ndarray | None = None

    def __post_init__(self) -> None:
        v = self.values
        if v.ndim != 1 or v.size == 0:
            raise ConfigError(f"schedule must be a non-empty 1-D array, got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ConfigError("schedule values must be finite")
        if np.any(v < 0):
            raise ConfigError(f"schedule values must be >= 0, got min {v.min()!r}")
        if self.tail not in _TAILS:
            raise ConfigError(f"tail must be one of {sorted(_TAILS)}, got {describe(self.tail)}")
        if self.base_lr is not None and not (math.isfinite(self.base_lr) and self.base_lr > 0):
            raise ConfigError(f"base_lr must be in (0, inf), got {describe(self.base_lr)}")
        if self.momentum is not None:
            m = self.momentum
            if m.shape != v.shape or not np.all((m >= 0) & (m < 1)):
                raise ConfigError(
                    "schedule momentum must hold one value in [0, 1) per step "
                    f"({v.size}), got shape {m.shape}"
                )
        for field_name in ("values", "momentum"):  # immutable once built: an own copy
            array = getattr(self, field_name)
            if array is not None:
                own = np.array(array, dtype=float)
                own.flags.writeable = False
                object.__setattr__(self, field_name, own)

    @property
    def ratio(self) -> np.ndarray:
        """``r[t] = F[t]/F[t-1]`` for ``t >= 1`` (``nan`` where ``F[t-1] = 0``)."""
        v = self.values
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(v[:-1] > 0, v[1:] / np.where(v[:-1] > 0, v[:-1], 1), np.nan)


_TAILS = frozenset(
    {"finite", "constant", "nonincreasing", "periodic", "dipping", "unbounded", "exponential"}
)


def _count(value: Any, name: str, low: int = 1) -> int:
    """An integer option (a period, a multiplier) in ``[low, 1e9]``, as torch requires."""
    x = to_float(value, name)
    if not (x.is_integer() and low <= x <= 1e9):
        raise ConfigError(f"{name} must be an integer in [{low}, 1e9], got {describe(value)}")
    return int(x)


def schedule(kind: str, steps: int, **kw: Any) -> Schedule:
    """Built-in windows: ``constant``, ``step`` (milestones, gamma), ``linear_warmup``
    (warmup), ``cosine`` (min_factor), ``polynomial`` (power), ``exponential`` (gamma),
    ``inverse_time`` (t0), ``sqrt_growth``, ``warm_restarts`` (period, mult, min_factor),
    ``array`` (values: the user's own array) or ``callable`` (fn: ``t -> F[t]``); user
    schedules have a ``finite`` tail (the verdict covers the given horizon).

    >>> schedule("linear_warmup", 6, warmup=3).values.tolist()
    [0.3333333333333333, 0.6666666666666666, 1.0, 1.0, 1.0, 1.0]
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 10**8:
        raise ConfigError(f"steps must be an integer in [1, 1e8], got {describe(steps)}")
    if not isinstance(kind, str):
        raise ConfigError(f"schedule kind must be a name, got {describe(kind)}")
    build = _KINDS.get(kind)
    if build is None:
        raise ConfigError(f"schedule kind must be one of {sorted(_KINDS)}, got {describe(kind)}")
    options = dict(kw)
    v, tail, growth = build(steps, np.arange(steps, dtype=float), options)
    if options:
        raise ConfigError(f"unknown schedule option(s) {listing(sorted(options))} for {kind!r}")
    return Schedule(np.asarray(v, dtype=float), kind, tail, growth)


_Window = tuple[np.ndarray, str, float]  # (values, tail, growth after the horizon)


def _opt(kw: dict[str, Any], name: str, default: Any) -> float:
    return to_float(kw.pop(name, default), name)


def _gamma(kw: dict[str, Any], default: float) -> float:
    g = _opt(kw, "gamma", default)
    if g < 0:
        raise ConfigError(f"gamma must be in [0, inf), got {describe(g)}")
    return g


def _constant(steps: int, t: np.ndarray, kw: dict[str, Any]) -> _Window:
    return np.ones(steps), "constant", 1.0


def _step(steps: int, t: np.ndarray, kw: dict[str, Any]) -> _Window:
    ms = np.sort(real_array(kw.pop("milestones", [steps // 2]), "milestones", low=0, ndim=1))
    g = _gamma(kw, 0.1)
    # after the last milestone the value stays: bounded whichever way it steps
    tail = "finite" if ms.size and ms[-1] >= steps else ("nonincreasing" if g <= 1 else "constant")
    return g ** np.searchsorted(ms, t, side="right"), tail, 1.0


def _linear_warmup(steps: int, t: np.ndarray, kw: dict[str, Any]) -> _Window:
    w = int(_opt(kw, "warmup", max(1, steps // 10)))
    if w < 1:
        raise ConfigError(f"warmup must be >= 1, got {w}")
    return np.minimum((t + 1) / w, 1.0), "constant", 1.0


def _cosine(steps: int, t: np.ndarray, kw: dict[str, Any]) -> _Window:
    m = _opt(kw, "min_factor", 0.0)
    return m + (1 - m) * 0.5 * (1 + np.cos(np.pi * t / steps)), "finite", 1.0


def _polynomial(steps: int, t: np.ndarray, kw: dict[str, Any]) -> _Window:
    return (1 - t / steps) ** _opt(kw, "power", 1.0), "finite", 1.0


def _exponential(steps: int, t: np.ndarray, kw: dict[str, Any]) -> _Window:
    g = _gamma(kw, 0.99)
    with np.errstate(over="ignore"):
        v = g**t
    if not np.all(np.isfinite(v)):
        raise ConfigError(f"gamma^steps overflows a float (gamma = {g!r}, steps = {steps})")
    return (v, "nonincreasing", 1.0) if g <= 1 else (v, "exponential", g)


def _inverse_time(steps: int, t: np.ndarray, kw: dict[str, Any]) -> _Window:
    return 1 / (1 + t / _opt(kw, "t0", 1.0)), "nonincreasing", 1.0


def _sqrt_growth(steps: int, t: np.ndarray, kw: dict[str, Any]) -> _Window:
    return np.sqrt(t + 1), "unbounded", 1.0


def _warm_restarts(steps: int, t: np.ndarray, kw: dict[str, Any]) -> _Window:
    period = _count(kw.pop("period", max(2, steps // 4)), "period")
    mult = _count(kw.pop("mult", 1), "mult")
    m = _opt(kw, "min_factor", 0.0)
    v = np.empty(steps)
    start, length = 0, period
    while start < steps:
        cur = np.arange(min(length, steps - start), dtype=float)
        v[start : start + cur.size] = m + (1 - m) * 0.5 * (1 + np.cos(np.pi * cur / length))
        start += length
        length *= mult
    return v, "periodic" if mult == 1 else ("dipping" if m == 0 else "periodic"), 1.0


def _callable(steps: int, t: np.ndarray, kw: dict[str, Any]) -> _Window:
    fn = kw.pop("fn", None)
    if not callable(fn):
        raise ConfigError("schedule('callable', ...) needs fn=<callable t -> F[t]>")
    return np.array([to_float(fn(int(k)), f"fn({int(k)})") for k in t]), "finite", 1.0


def _array(steps: int, t: np.ndarray, kw: dict[str, Any]) -> _Window:
    values = kw.pop("values", None)
    if values is None or isinstance(values, str):
        raise ConfigError("schedule('array', ...) needs values=<array of numbers>")
    v = real_array(values, "values", low=0, ndim=1)
    if v.size != steps:
        raise ConfigError(f"values must have length steps = {steps}, got {v.size}")
    return v, "finite", 1.0


_KINDS = {
    "constant": _constant,
    "step": _step,
    "linear_warmup": _linear_warmup,
    "cosine": _cosine,
    "polynomial": _polynomial,
    "exponential": _exponential,
    "inverse_time": _inverse_time,
    "sqrt_growth": _sqrt_growth,
    "warm_restarts": _warm_restarts,
    "callable": _callable,
    "array": _array,
}
