"""Exact BIBO and uniform-exponential-stability verdicts of the LTV view (docs §7).

The transition telescopes, ``Phi(t, s) = beta^(t-s) alpha[t-1]/alpha[s-1]``: every quantity is
exact on the given horizon; statements about an infinite horizon follow the schedule's declared
continuation and say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._values import real_array, to_float
from ..errors import ConfigError, describe
from .filters import AutoSGMFilter
from .schedules import Schedule, schedule

__all__ = ["LTVVerdict", "ltv_verdict", "scalar_ltv_verdict", "ues_constant", "uniform_rate"]


@dataclass(frozen=True)
class LTVVerdict:
    """Exact finite-horizon quantities and (where the tail allows) infinite-horizon verdicts.

    * ``bibo_gain``: exact zero-state gain ``sup_t sum_k |Phi(t, k+1) b[k]|`` over the horizon.
    * ``ues_rate``/``ues_constant``: ``|Phi(t, s)| <= C rho^(t-s)`` holds on the horizon with
      these ``(C, rho)``.
    * ``frozen_pole_margin``: ``sup |a[t]|`` — below 1 is *sufficient* for UES, never necessary.
    * ``w_gain``: worst-case ``|w|`` (sum of ``dw``) for unit-bounded inputs; unbounded as the
      horizon grows unless the schedule is summable.
    """

    horizon: int
    bibo_gain: float
    ues_rate: float
    ues_constant: float
    frozen_pole_margin: float
    w_gain: float | None = None
    bibo: bool | None = None
    ues: bool | None = None
    w_bounded: bool | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def stable(self) -> bool:
        """BIBO and UES, as far as they are decided: on a finite horizon (``None``) every
        quantity is finite, so only a verdict of ``False`` makes it unstable."""
        return self.bibo is not False and self.ues is not False

    def __bool__(self) -> bool:
        return self.stable

    def __str__(self) -> str:
        def word(x: bool | None) -> str:
            return "yes" if x else ("no" if x is False else "finite horizon")

        lines = [
            f"{'STABLE' if self.stable else 'UNSTABLE'} over {self.horizon} steps: "
            f"BIBO {word(self.bibo)} (gain {self.bibo_gain:.6g}), uniformly exponentially "
            f"stable {word(self.ues)} (|Phi(t, s)| <= {self.ues_constant:.6g} "
            f"{self.ues_rate:.6g}^(t-s)), frozen-pole margin {self.frozen_pole_margin:.6g} "
            "(a sufficient test only)",
        ]
        lines += [f"  {r}" for r in self.reasons]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        def num(x: Any) -> Any:
            return x if x is None or isinstance(x, bool) or math.isfinite(x) else "inf"

        return {
            k: num(getattr(self, k))
            for k in (
                "horizon",
                "bibo_gain",
                "ues_rate",
                "ues_constant",
                "frozen_pole_margin",
                "w_gain",
                "bibo",
                "ues",
                "w_bounded",
                "stable",
            )
        } | {"reasons": list(self.reasons)}


def _arrays(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    aa = real_array(a, "a").ravel()
    b_arr = real_array(b, "b")
    try:
        bb = np.broadcast_to(b_arr, aa.shape).astype(float)
    except ValueError:
        raise ConfigError(
            f"b must be a scalar or match a ({aa.size} values), got shape {b_arr.shape}"
        ) from None
    return aa, bb


def uniform_rate(a: Any, window: int | None = None) -> float:
    """Estimate of the uniform exponential rate ``max_s |Phi(s+n, s)|^(1/n)`` (window ``n``)."""
    aa = np.abs(real_array(a, "a").ravel())
    n = window or max(1, aa.size // 4)
    logs = np.log(np.maximum(aa, 1e-300))  # a zero factor: Phi vanishes across it
    c = np.concatenate([[0.0], np.cumsum(logs)])
    n = min(n, aa.size)
    best = np.max(c[n:] - c[:-n]) / n
    return float(np.exp(best))


def ues_constant(a: Any, rho: float) -> float:
    """``C(rho) = max_{s <= t} |Phi(t, s)| rho^-(t-s)`` on the horizon (exact, O(T))."""
    aa = np.abs(real_array(a, "a").ravel())
    if not rho > 0:
        raise ConfigError(f"rho must be > 0, got {describe(rho)}")
    m, best = 1.0, 1.0
    for x in aa:
        m = max(1.0, x / rho * m)
        best = max(best, m)
    return best


def scalar_ltv_verdict(a: Any, b: Any, rho: float | None = None) -> LTVVerdict:
    """``x[t+1] = a[t] x[t] + b[t] u[t]``: exact BIBO gain and UES constants on the horizon.

    BIBO gain ``sup_t sum_{k<t} |Phi(t, k+1) b[k]|`` via ``G(t+1) = |a_t| G(t) + |b_t|``;
    ``C(rho)`` via ``M(t+1) = max(1, |a_t|/rho M(t))``. ``rho`` defaults to the estimated
    uniform rate (times ``1 + 1e-9``).

    >>> v = scalar_ltv_verdict([1.5, 0.2] * 50, 1.0)
    >>> round(v.ues_rate, 6), v.frozen_pole_margin   # UES with rho = sqrt(0.3) although sup|a| > 1
    (0.547723, 1.5)
    """
    aa, bb = _arrays(a, b)
    G, gain = 0.0, 0.0
    for x, y in zip(np.abs(aa), np.abs(bb), strict=True):
        G = x * G + y
        gain = max(gain, G)
    rate = uniform_rate(aa, window=2 * (aa.size // 4) or 1) if rho is None else float(rho)
    rho_used = rate * (1 + 1e-9)
    C = ues_constant(aa, rho_used)
    return LTVVerdict(aa.size, gain, rho_used, C, float(np.abs(aa).max()))


def ltv_verdict(filt: AutoSGMFilter, lr: Any, sched: Schedule | None = None) -> LTVVerdict:
    """BIBO/UES verdict of the AutoSGM filter under ``alpha[t] = lr F[t]``.

    Exact on the horizon (``Phi(t, s) = beta^(t-s) alpha[t-1]/alpha[s-1]``):
    ``G* = max_t eta alpha[t-1] (1 - beta^t)/(1 - beta)``; UES constants with ``rho = beta``
    where ``inf alpha > 0`` (``C = max_{s<=t} alpha[t-1]/alpha[s-1]``); the frozen-pole margin
    ``sup |beta r[t]|`` (sufficient only). Infinite-horizon verdicts follow the schedule's tail.
    """
    b, _g, e = filt.numeric()
    if not 0 <= b < 1:
        raise ConfigError(f"beta must be in [0, 1), got {b}")
    lr_f = to_float(lr, "lr")
    if lr_f <= 0:
        raise ConfigError(f"lr must be in (0, inf), got {describe(lr)}")
    sched = sched or schedule("constant", 1)
    alpha = lr_f * sched.values
    T = alpha.size
    tt = np.arange(1, T + 1)
    G = e * alpha * (1 - b**tt) / (1 - b) if b < 1 else np.inf
    gain = float(np.max(np.abs(G)))
    w_gain = float(abs(e) * np.sum(alpha * (1 - b**tt)) / (1 - b))
    reasons = []
    ratio = sched.ratio
    frozen = float(np.nanmax(np.abs(b * ratio))) if ratio.size else 0.0
    if np.any(alpha[:-1] == 0):
        C, rho = math.inf, b
        reasons.append("alpha[t] = 0 inside the horizon: r[t] undefined, no uniform constant")
    else:
        running_min = np.minimum.accumulate(alpha)
        with np.errstate(divide="ignore", invalid="ignore"):  # a final alpha of 0: 0/0
            ratio_to_min = np.where(alpha > 0, alpha / running_min, 0.0)
        C = float(np.max(ratio_to_min)) if T else 1.0  # max_{s<=t} alpha[t]/alpha[s]
        rho = b
    out = _infinite_horizon(sched, alpha, b, ratio, {"gain": gain, "rho": rho, "C": C})
    reasons += out.pop("reasons")
    gain, rho, C = out["gain"], out["rho"], out["C"]
    bibo, ues, w_bounded = out["bibo"], out["ues"], out["w_bounded"]
    if frozen >= 1:
        reasons.append(
            f"frozen-pole margin sup|beta r[t]| = {frozen:.4g} >= 1: the sufficient "
            "test fails, which proves nothing (see UES/BIBO above)"
        )
    return LTVVerdict(T, gain, rho, C, frozen, w_gain, bibo, ues, w_bounded, tuple(reasons))


def _infinite_horizon(
    sched: Schedule, alpha: np.ndarray, b: float, ratio: np.ndarray, exact: dict[str, float]
) -> dict[str, Any]:
    """The verdicts beyond the horizon, from the schedule's declared tail: BIBO, UES, whether
    ``w`` itself stays bounded, and the constants they change (gain, rate, UES constant)."""
    out: dict[str, Any] = {**exact, "bibo": None, "ues": None, "w_bounded": None, "reasons": []}
    say = out["reasons"].append
    tail = sched.tail
    if tail == "finite":
        say("finite horizon: every quantity is finite; constants above are exact")
    if tail == "nonincreasing" and np.any(np.diff(alpha) > 0):
        tail = "constant"  # the label promised more than the values hold: bounded only
    unit = b * np.concatenate([[1.0], np.nan_to_num(ratio, nan=1.0)])
    if tail in ("constant", "nonincreasing", "periodic"):
        ues = bool(np.all(alpha > 0))
        # w itself is bounded for every bounded input iff sum alpha[t] < inf (geometric decay)
        w_bounded = sched.name == "exponential" and sched.values[-1] < sched.values[0]
        out.update(bibo=True, ues=ues, w_bounded=w_bounded)
        say(f"tail '{tail}': sup alpha < inf, so BIBO (gain as above)")
        if ues and tail == "nonincreasing":
            out["C"] = 1.0
            say("alpha non-increasing: UES with C = 1, rho = beta")
        elif ues:
            say("inf alpha > 0 and sup alpha < inf: UES with rho = beta, C = sup alpha / inf alpha")
        say(
            "w itself: bounded for all bounded inputs only if sum alpha[t] < inf "
            f"({'summable' if w_bounded else 'not summable'} here)"
        )
    elif tail == "dipping":
        out.update(bibo=True, ues=False, w_bounded=False)
        say(
            "restart minima tend to 0 while the peak stays: Phi(t, s) = "
            "beta^(t-s) alpha[t-1]/alpha[s-1] has no uniform constant -> not UES; "
            "sup alpha < inf -> BIBO"
        )
    elif tail == "exponential":
        g = sched.growth
        rate = b * g
        out.update(bibo=False, w_bounded=False, gain=math.inf)
        say(f"alpha[t] grows by {g:.6g} per step after the horizon: not BIBO")
        if rate < 1:
            rho = rate * (1 + 1e-9)
            out.update(ues=True, rho=rho, C=ues_constant(unit, rho))
            say(f"|Phi(t, s)| ~ (beta g)^(t-s) = {rate:.6g}^(t-s) < 1: UES with that rate")
        else:
            out.update(ues=False, rho=rate, C=math.inf)
            say(
                f"|Phi(t, s)| ~ (beta g)^(t-s) = {rate:.6g}^(t-s) >= 1: not UES "
                "(the filter's state grows without bound)"
            )
    elif tail == "unbounded":
        rho = b + (1 - b) * 1e-3
        out.update(bibo=False, ues=True, w_bounded=False, gain=math.inf, rho=rho)
        out["C"] = ues_constant(unit, rho)
        say(
            "alpha[t] -> inf: not BIBO (gain grows with the horizon); growth is "
            "subexponential, so UES holds for every rho > beta"
        )
    return out
