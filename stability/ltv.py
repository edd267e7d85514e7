"""The linear time-varying (AutoSGM) view of momentum, schedules and Adam (docs §7).

Per coordinate, momentum is the lowpass filter ``H(z) = eta (1 - gamma z^-1)/(1 - beta z^-1)``
realised as ``v[t] = beta v[t-1] + eta (g[t] - gamma g[t-1])`` and the step
``w[t+1] = w[t] - alpha[t] v[t]`` with a time-varying learning rate ``alpha[t]`` (schedule,
adaptive denominator). With ``r[t] = alpha[t]/alpha[t-1]`` the update is the scalar LTV system

    dw[t+1] = beta r[t] dw[t] + eta alpha[t] e[t],     e[t] = gamma g[t-1] - g[t]

whose transition telescopes: ``Phi(t, s) = beta^(t-s) alpha[t-1]/alpha[s-1]``. Everything here
is exact on the given horizon; statements about an infinite horizon use the schedule's declared
tail and say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ._values import describe, listing, real_array, to_float, to_sympy
from .errors import ConfigError

__all__ = [
    "AdamAlpha",
    "AutoSGMFilter",
    "LTVVerdict",
    "Schedule",
    "adam_frozen_covariance",
    "adam_frozen_threshold",
    "filter_as_algorithm",
    "filter_from_config",
    "filter_stationary_variance",
    "lowpass_filter",
    "ltv_replay",
    "ltv_verdict",
    "prox_update",
    "scalar_ltv_verdict",
    "schedule",
    "weight_decay_equivalence",
]

z, t_sym = sp.symbols("z t")
beta_s, gamma_s = sp.symbols("beta gamma", real=True)
eta_s = sp.Symbol("eta", positive=True)


# ---------------------------------------------------------------------------------------
# The filter
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AutoSGMFilter:
    """``H(z) = eta (1 - gamma z^-1)/(1 - beta z^-1)`` with its realisation conventions."""

    beta: sp.Expr
    gamma: sp.Expr
    eta: sp.Expr
    source: str = "custom"
    notes: tuple[str, ...] = ()

    @property
    def transfer_function(self) -> sp.Expr:
        return self.eta * (1 - self.gamma / z) / (1 - self.beta / z)

    def impulse_response(self, t: Any = t_sym) -> sp.Expr:
        """``h[0] = eta``, ``h[t] = eta beta^(t-1) (beta - gamma)`` for ``t >= 1``."""
        return sp.Piecewise(
            (self.eta, sp.Eq(t, 0)),
            (self.eta * self.beta ** (t - 1) * (self.beta - self.gamma), True),
        )

    @property
    def dc_gain(self) -> sp.Expr:
        """``H(1) = eta (1 - gamma)/(1 - beta)``."""
        return sp.simplify(self.transfer_function.subs(z, 1))

    def normalised(self) -> AutoSGMFilter:
        """The same pole and zero with unit DC gain: ``eta = (1 - beta)/(1 - gamma)``."""
        return AutoSGMFilter(
            self.beta, self.gamma, (1 - self.beta) / (1 - self.gamma), self.source, self.notes
        )

    def numeric(self) -> tuple[float, float, float]:
        return float(self.beta), float(self.gamma), float(self.eta)

    def ltv_recursion(self) -> sp.Eq:
        """The LTV recursion derived from the realisation (see :func:`derive_ltv_recursion`)."""
        return derive_ltv_recursion()

    def frequency_response(self, omega: Any) -> np.ndarray:
        """``H(e^{i omega})`` for an array of frequencies."""
        b, g, e = self.numeric()
        zz = np.exp(1j * np.asarray(omega, dtype=float))
        return e * (1 - g / zz) / (1 - b / zz)


def lowpass_filter(beta: Any, gamma: Any = 0, eta: Any = None) -> AutoSGMFilter:
    """A filter with pole ``0 <= beta < 1`` and zero ``gamma < beta`` (unit DC gain by default).

    >>> f = lowpass_filter(sp.Rational(9, 10))
    >>> f.eta, f.dc_gain
    (1/10, 1)
    """
    b = to_sympy(beta, "beta")
    g = to_sympy(gamma, "gamma")
    if b.is_number and not (0 <= b < 1):
        raise ConfigError(f"beta must be in [0, 1), got {describe(beta)}")
    if b.is_number and g.is_number and not g < b and not (b == 0 and g == 0):
        raise ConfigError(f"gamma must be < beta = {b}, got {describe(gamma)}")
    e = (1 - b) / (1 - g) if eta is None else to_sympy(eta, "eta")
    return AutoSGMFilter(b, g, e)


def derive_ltv_recursion() -> sp.Eq:
    """Derive ``dw[t+1] = beta r[t] dw[t] + eta alpha[t] e[t]`` from the realisation.

    Substitutes ``v[t] = beta v[t-1] + eta (g[t] - gamma g[t-1])`` and
    ``v[t-1] = -dw[t]/alpha[t-1]`` into ``dw[t+1] = -alpha[t] v[t]``; returns the recursion as
    a sympy equation (the tests check that it equals the substituted realisation).
    """
    return sp.Eq(sp.Symbol("dw_{t+1}"), _ltv_recursion_parts()[1])


def _ltv_recursion_parts() -> tuple[sp.Expr, sp.Expr]:
    """``(dw[t+1] from the realisation, the claimed LTV recursion)``."""
    a_t, a_tm1, dw_t, g_t, g_tm1 = sp.symbols("alpha_t alpha_tm1 dw_t g_t g_tm1")
    v_tm1 = -dw_t / a_tm1
    v_t = beta_s * v_tm1 + eta_s * (g_t - gamma_s * g_tm1)
    dw_next = sp.expand(-a_t * v_t)
    r = a_t / a_tm1
    e = gamma_s * g_tm1 - g_t
    return dw_next, beta_s * r * dw_t + eta_s * a_t * e


def prox_update() -> dict[str, sp.Expr]:
    """The proximal subproblem ``min_D -eta D e + (D - beta r dw)^2 / (2 alpha)`` solved.

    Returns the objective, its minimiser (the LTV update) and its strong-convexity modulus
    ``1/alpha`` (so ``alpha[t] > 0`` is required).
    """
    D, e, r, dw = sp.symbols("Delta e r dw", real=True)
    alpha = sp.Symbol("alpha", positive=True)
    objective = -eta_s * D * e + (D - beta_s * r * dw) ** 2 / (2 * alpha)
    (minimiser,) = sp.solve(sp.diff(objective, D), D)
    return {
        "objective": objective,
        "minimiser": sp.expand(minimiser),
        "modulus": sp.diff(objective, D, 2),
    }


def weight_decay_equivalence() -> dict[str, Any]:
    """When do coupled (L2) and decoupled (AdamW-style) decay give the same trajectories?

    Coupled: ``e += rho' (gamma w[t-1] - w[t])``; decoupled (``d = 1``):
    ``e += (rho/eta) (beta w[t-1] - w[t])``. Equal for every trajectory iff the coefficients
    of ``w[t]`` and ``w[t-1]`` match: ``rho' = rho/eta`` and ``gamma = beta`` (for rho != 0).
    But ``gamma = beta`` cancels the filter (``H = eta``: no momentum) and violates
    ``gamma < beta``: L2 equals decoupled decay only for momentum-free, non-adaptive SGD.
    """
    rho_p, rho = sp.symbols("rho' rho", positive=True)
    w_t, w_tm1 = sp.symbols("w_t w_tm1")
    diff = sp.expand(rho_p * (gamma_s * w_tm1 - w_t) - rho / eta_s * (beta_s * w_tm1 - w_t))
    eqs = [diff.coeff(w_t), diff.coeff(w_tm1)]
    sol = sp.solve(eqs, [rho_p, gamma_s], dict=True)
    filt = AutoSGMFilter(beta_s, beta_s, eta_s)
    return {
        "solutions": sol,
        "filter_when_equal": sp.simplify(filt.transfer_function),
        "caveat": "gamma = beta cancels pole and zero: H(z) = eta, no momentum; it also "
        "violates gamma < beta. Equivalence holds only for momentum-free SGD (d = 1).",
    }


# ---------------------------------------------------------------------------------------
# Optimizer configs -> filter
# ---------------------------------------------------------------------------------------
def filter_from_config(config: dict[str, Any]) -> AutoSGMFilter:
    """Map a framework config to ``(beta, gamma, eta)`` (docs §7 mapping).

    Keys: ``optimizer`` in ``torch.sgd``/``sgd``, ``torch.adam``/``adam``, ``torch.adamw``/
    ``adamw``, ``optax.sgd``, ``optax.adam``; the framework's hyperparameter names
    (``momentum``, ``dampening``, ``nesterov``, ``betas``/``b1``...). ``lr`` and schedules
    are not part of the filter: they form ``alpha[t]``.

    >>> filter_from_config({"optimizer": "sgd", "momentum": 0.9, "nesterov": True}).gamma
    0.473684210526316
    """
    cfg = dict(config)
    kind = str(cfg.pop("optimizer", "")).strip().lower()
    cfg.pop("lr", None)
    cfg.pop("learning_rate", None)
    if kind in ("sgd", "torch.sgd", "torch.optim.sgd", "optax.sgd"):
        allowed = {"momentum", "dampening", "nesterov", "weight_decay"}
        _reject_unknown(cfg, allowed, kind)
        mu = to_float(cfg.get("momentum", 0) or 0, "momentum")
        tau = to_float(cfg.get("dampening", 0), "dampening")
        if not 0 <= mu < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {describe(mu)}")
        if not 0 <= tau < 1:
            raise ConfigError(f"dampening must be in [0, 1), got {describe(tau)}")
        if cfg.get("nesterov", False):
            if mu == 0 or tau != 0:
                raise ConfigError("nesterov=True requires momentum > 0 and dampening = 0")
            return AutoSGMFilter(
                sp.Float(mu),
                sp.Float(mu / (1 + mu)),
                sp.Float(1 + mu),
                kind,
                (
                    "torch Nesterov: g + mu m = (1+mu) g (1 - gamma z^-1)"
                    "/(1 - mu z^-1), gamma = mu/(1+mu)",
                ),
            )
        notes = (
            ("torch's first step is undamped (m = g): v[0] = g[0], not (1-tau) g[0]",)
            if tau
            else ()
        )
        return AutoSGMFilter(sp.Float(mu), sp.Integer(0), sp.Float(1 - tau), kind, notes)
    if kind in ("adam", "adamw", "torch.adam", "torch.adamw", "optax.adam", "optax.adamw"):
        allowed = {"betas", "b1", "b2", "eps", "weight_decay", "amsgrad"}
        _reject_unknown(cfg, allowed, kind)
        if "betas" in cfg:
            b1 = to_float(cfg["betas"][0], "betas[0]")
        else:
            b1 = to_float(cfg.get("b1", 0.9), "b1")
        if not 0 <= b1 < 1:
            raise ConfigError(f"beta1 must be in [0, 1), got {describe(b1)}")
        notes = (
            "alpha[t] = lr F[t] / d[t] with d[t] = (1 - beta1^t)(sqrt(v_hat_t) + eps): "
            "eps outside the square root (torch, optax)",
        )
        if "adamw" in kind:
            notes += (
                "decoupled decay: theta <- theta (1 - lr wd) before the step; in the LTV "
                "form e += (rho/eta)(beta w~[t-1] - w~[t]), w~ = d w, rho = wd",
            )
        return AutoSGMFilter(sp.Float(b1), sp.Integer(0), sp.Float(1 - b1), kind, notes)
    raise ConfigError(
        f"optimizer must be one of sgd, adam, adamw (torch/optax), got {describe(kind)}"
    )


def _reject_unknown(cfg: dict[str, Any], allowed: set[str], kind: str) -> None:
    unknown = sorted(set(cfg) - allowed, key=str)
    if unknown:
        raise ConfigError(
            f"unknown key(s) {listing(unknown)} for {kind!r}; allowed: {sorted(allowed)}"
        )


# ---------------------------------------------------------------------------------------
# Schedules (window functions F[t])
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """Window values ``F[0..T-1]`` and what happens after the horizon (``tail``).

    ``tail``: ``"finite"`` (training ends), ``"constant"`` (continues at the last value),
    ``"nonincreasing"``, ``"periodic"`` (repeats), ``"dipping"`` (restarts whose minima tend to
    0), ``"unbounded"`` (grows without bound, subexponentially), ``"exponential"`` (multiplied
    by ``growth > 1`` at every step after the horizon).
    """

    values: np.ndarray
    name: str
    tail: str = "finite"
    growth: float = 1.0

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
    t = np.arange(steps, dtype=float)

    def opt(name: str, default: Any) -> float:
        return to_float(kw.pop(name, default), name)

    if kind == "constant":
        v, tail = np.ones(steps), "constant"
    elif kind == "step":
        ms = np.sort(real_array(kw.pop("milestones", [steps // 2]), "milestones", low=0, ndim=1))
        g = opt("gamma", 0.1)
        if g < 0:
            raise ConfigError(f"gamma must be in [0, inf), got {describe(g)}")
        v = g ** np.searchsorted(ms, t, side="right")
        # after the last milestone the value stays: bounded whichever way it steps
        tail = (
            "finite" if ms.size and ms[-1] >= steps else ("nonincreasing" if g <= 1 else "constant")
        )
    elif kind == "linear_warmup":
        w = int(opt("warmup", max(1, steps // 10)))
        if w < 1:
            raise ConfigError(f"warmup must be >= 1, got {w}")
        v, tail = np.minimum((t + 1) / w, 1.0), "constant"
    elif kind == "cosine":
        m = opt("min_factor", 0.0)
        v, tail = m + (1 - m) * 0.5 * (1 + np.cos(np.pi * t / steps)), "finite"
    elif kind == "polynomial":
        p = opt("power", 1.0)
        v, tail = (1 - t / steps) ** p, "finite"
    elif kind == "exponential":
        g = opt("gamma", 0.99)
        if g < 0:
            raise ConfigError(f"gamma must be in [0, inf), got {describe(g)}")
        with np.errstate(over="ignore"):
            v = g**t
        if not np.all(np.isfinite(v)):
            raise ConfigError(f"gamma^steps overflows a float (gamma = {g!r}, steps = {steps})")
        tail = "nonincreasing" if g <= 1 else "exponential"
    elif kind == "inverse_time":
        t0 = opt("t0", 1.0)
        v, tail = 1 / (1 + t / t0), "nonincreasing"
    elif kind == "sqrt_growth":
        v, tail = np.sqrt(t + 1), "unbounded"
    elif kind == "warm_restarts":
        period = _count(kw.pop("period", max(2, steps // 4)), "period")
        mult = _count(kw.pop("mult", 1), "mult")
        m = opt("min_factor", 0.0)
        v = np.empty(steps)
        start, length = 0, period
        while start < steps:
            cur = np.arange(min(length, steps - start), dtype=float)
            v[start : start + cur.size] = m + (1 - m) * 0.5 * (1 + np.cos(np.pi * cur / length))
            start += length
            length *= mult
        tail = "periodic" if mult == 1 else ("dipping" if m == 0 else "periodic")
    elif kind == "callable":
        fn = kw.pop("fn", None)
        if not callable(fn):
            raise ConfigError("schedule('callable', ...) needs fn=<callable t -> F[t]>")
        v, tail = np.array([to_float(fn(int(k)), f"fn({int(k)})") for k in t]), "finite"
    elif kind == "array":
        values = kw.pop("values", None)
        if values is None or isinstance(values, str):
            raise ConfigError("schedule('array', ...) needs values=<array of numbers>")
        v, tail = real_array(values, "values", low=0, ndim=1), "finite"
        if v.size != steps:
            raise ConfigError(f"values must have length steps = {steps}, got {v.size}")
    else:
        raise ConfigError(f"unknown schedule kind {kind!r}")
    if kw:
        raise ConfigError(f"unknown schedule option(s) {listing(sorted(kw))} for {kind!r}")
    growth = g if kind == "exponential" and tail == "exponential" else 1.0
    return Schedule(np.asarray(v, dtype=float), kind, tail, growth)


# ---------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------
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
    aa = np.abs(np.asarray(a, dtype=float).ravel())
    n = window or max(1, aa.size // 4)
    logs = np.log(np.maximum(aa, 1e-300))  # a zero factor: Phi vanishes across it
    c = np.concatenate([[0.0], np.cumsum(logs)])
    n = min(n, aa.size)
    best = np.max(c[n:] - c[:-n]) / n
    return float(np.exp(best))


def ues_constant(a: Any, rho: float) -> float:
    """``C(rho) = max_{s <= t} |Phi(t, s)| rho^-(t-s)`` on the horizon (exact, O(T))."""
    aa = np.abs(np.asarray(a, dtype=float).ravel())
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
        C = float(np.max(alpha / running_min)) if T else 1.0  # max_{s<=t} alpha[t]/alpha[s]
        rho = b
    bibo = ues = w_bounded = None
    tail = sched.tail
    if tail == "finite":
        reasons.append("finite horizon: every quantity is finite; constants above are exact")
    if tail == "nonincreasing" and np.any(np.diff(alpha) > 0):
        tail = "constant"  # the label promised more than the values hold: bounded only
    if tail in ("constant", "nonincreasing", "periodic"):
        bibo = True
        ues = bool(np.all(alpha > 0))
        # w itself is bounded for every bounded input iff sum alpha[t] < inf (geometric decay)
        w_bounded = sched.name == "exponential" and sched.values[-1] < sched.values[0]
        reasons.append(f"tail '{tail}': sup alpha < inf, so BIBO (gain as above)")
        if ues:
            reasons.append(
                "inf alpha > 0 and sup alpha < inf: UES with rho = beta, C = sup alpha / inf alpha"
                if tail != "nonincreasing"
                else "alpha non-increasing: UES with C = 1, rho = beta"
            )
            if tail == "nonincreasing":
                C = 1.0
        reasons.append(
            "w itself: bounded for all bounded inputs only if sum alpha[t] < inf "
            f"({'summable' if w_bounded else 'not summable'} here)"
        )
    elif tail == "dipping":
        bibo, ues, w_bounded = True, False, False
        reasons.append(
            "restart minima tend to 0 while the peak stays: Phi(t, s) = "
            "beta^(t-s) alpha[t-1]/alpha[s-1] has no uniform constant -> not UES; "
            "sup alpha < inf -> BIBO"
        )
    elif tail == "exponential":
        g = sched.growth
        rate = b * g
        bibo, w_bounded, gain = False, False, math.inf
        reasons.append(f"alpha[t] grows by {g:.6g} per step after the horizon: not BIBO")
        if rate < 1:
            ues = True
            rho = rate * (1 + 1e-9)
            C = ues_constant(b * np.concatenate([[1.0], np.nan_to_num(ratio, nan=1.0)]), rho)
            reasons.append(
                f"|Phi(t, s)| ~ (beta g)^(t-s) = {rate:.6g}^(t-s) < 1: UES with that rate"
            )
        else:
            ues, rho, C = False, rate, math.inf
            reasons.append(
                f"|Phi(t, s)| ~ (beta g)^(t-s) = {rate:.6g}^(t-s) >= 1: not UES "
                "(the filter's state grows without bound)"
            )
    elif tail == "unbounded":
        bibo, ues, w_bounded = False, True, False
        gain = math.inf
        reasons.append(
            "alpha[t] -> inf: not BIBO (gain grows with the horizon); growth is "
            "subexponential, so UES holds for every rho > beta"
        )
        rho = b + (1 - b) * 1e-3
        C = ues_constant(b * np.concatenate([[1.0], np.nan_to_num(ratio, nan=1.0)]), rho)
    if frozen >= 1:
        reasons.append(
            f"frozen-pole margin sup|beta r[t]| = {frozen:.4g} >= 1: the sufficient "
            "test fails, which proves nothing (see UES/BIBO above)"
        )
    return LTVVerdict(T, gain, rho, C, frozen, w_gain, bibo, ues, w_bounded, tuple(reasons))


# ---------------------------------------------------------------------------------------
# Replays: the LTV recursion run in closed loop on a gradient oracle
# ---------------------------------------------------------------------------------------
class AdamAlpha:
    """``alpha[t] = lr[t] / d[t]``, ``d[t] = (1 - beta1^(t+1)) (sqrt(v_hat) + eps)`` (torch's
    convention, eps outside the root), tracking ``v`` from the gradients it is shown."""

    def __init__(self, lr: Any, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr = np.asarray(lr, dtype=float)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.v: np.ndarray | None = None

    def __call__(self, t: int, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.v = (
            (1 - self.beta2) * g**2
            if self.v is None
            else self.beta2 * self.v + (1 - self.beta2) * g**2
        )
        v_hat = self.v / (1 - self.beta2 ** (t + 1))
        d = (1 - self.beta1 ** (t + 1)) * (np.sqrt(v_hat) + self.eps)
        lr_t = self.lr[t] if self.lr.ndim else self.lr
        return lr_t / d, d


def ltv_replay(
    filt: AutoSGMFilter,
    grad: Any,
    w0: Any,
    steps: int,
    alpha: Any,
    *,
    coupled_decay: float = 0.0,
    decoupled_decay: float = 0.0,
    first_eta: float | None = None,
) -> np.ndarray:
    """Iterates ``w[0..steps]`` of the LTV recursion driven by ``grad`` (closed loop).

    ``alpha`` is an array ``alpha[t]`` (scalar or per-coordinate rows) or a callable
    ``alpha(t, g) -> (alpha_t, d_t)`` (e.g. :class:`AdamAlpha`). ``coupled_decay`` adds
    ``rho' (gamma w[t-1] - w[t])`` to ``e``; ``decoupled_decay`` adds
    ``(rho/eta)(beta w~[t-1] - w~[t])`` with ``w~ = d w``. ``first_eta`` replaces ``eta`` at
    ``t = 0`` (torch's undamped first buffer: ``first_eta = 1``).
    """
    b, g_, e_ = filt.numeric()
    w = real_array(w0, "w0").copy()
    out = [w.copy()]
    u = np.zeros_like(w)  # filter state: dw[t] = alpha[t] u[t] (u stays defined at alpha = 0)
    g_prev = np.zeros_like(w)
    wt_prev = np.zeros_like(w)
    for t in range(steps):
        g = np.asarray(grad(w), dtype=float) + coupled_decay * w
        if callable(alpha):
            a_t, d_t = alpha(t, g)
        else:
            a_t = np.asarray(alpha, dtype=float)[t]
            d_t = np.ones_like(w)
        e = g_ * g_prev - g  # with coupled decay, g already includes rho' w
        if decoupled_decay:
            wt = d_t * w
            e = e + decoupled_decay / e_ * (b * wt_prev - wt)
            wt_prev = wt
        eta_t = first_eta if (t == 0 and first_eta is not None) else e_
        # dw[t] = beta r[t] dw[t-1] + eta alpha[t] e[t] with r[t] = alpha[t]/alpha[t-1],
        # written through u[t] = dw[t]/alpha[t] so that alpha[t-1] = 0 (warm-up from 0) is fine
        u = b * u + eta_t * e
        w = w + a_t * u
        g_prev = g
        out.append(w.copy())
    return np.array(out)


# ---------------------------------------------------------------------------------------
# Constant-alpha models: stationary variance, frozen-preconditioner Adam
# ---------------------------------------------------------------------------------------
def filter_as_algorithm(filt: AutoSGMFilter, alpha: Any):
    """The filter with constant ``alpha`` as a memory-1 algorithm (via its multistep form).

    ``(1 - beta z^-1)(w[t+1] - w[t]) = -alpha eta (1 - gamma z^-1) g[t]`` gives
    ``w[t+1] = (1+beta) w[t] - beta w[t-1] - alpha eta g[t] + alpha eta gamma g[t-1]``.
    """
    from .algorithms import from_multistep

    a = to_sympy(alpha, "alpha")
    return from_multistep(
        [-filt.beta, 1 + filt.beta],
        [a * filt.eta * filt.gamma, -a * filt.eta],
        name="autosgm_filter",
    )


def filter_stationary_variance(
    filt: AutoSGMFilter, alpha: Any, h: Any, noise: Any
) -> tuple[sp.Expr, list[sp.Expr]]:
    """docs §7: stationary ``Var w`` of the filter on a noisy 1-D quadratic, and the
    stability conditions (all must be ``> 0``).

    With ``l = eta alpha`` and ``q = eta alpha h``:
    ``Var = l s2 [(1+beta)(1-gamma) + q gamma (1+gamma)] /
    (h (1 - beta + q gamma)(2(1+beta) - q(1+gamma)))``; stable iff ``q(1-gamma) > 0``,
    ``q(1+gamma) < 2(1+beta)``, ``|beta - q gamma| < 1``. (The notes' range
    ``alpha < (1+beta)/(eta lambda)`` is sufficient only.)
    """
    b, g, e = filt.beta, filt.gamma, filt.eta
    a, hh, s2 = to_sympy(alpha, "alpha"), to_sympy(h, "h"), to_sympy(noise, "noise")
    ell, q = e * a, e * a * hh
    var = (
        ell
        * s2
        * ((1 + b) * (1 - g) + q * g * (1 + g))
        / (hh * (1 - b + q * g) * (2 * (1 + b) - q * (1 + g)))
    )
    conds = [q * (1 - g), 2 * (1 + b) - q * (1 + g), 1 - (b - q * g), 1 + (b - q * g)]
    return var, conds


def adam_frozen_threshold(beta1: Any, H: Any, P: Any = None) -> float:
    """Model: EMA momentum with a frozen diagonal/dense preconditioner ``P`` is stable iff
    ``eta lambda_max(P^-1 H) < (2 + 2 beta1)/(1 - beta1)``; returns that largest ``eta``.

    A model of Adam near a minimum (frozen ``P``), not a theorem about Adam.

    >>> round(adam_frozen_threshold(0.9, [[1.0]]), 10)
    38.0
    """
    b1 = to_float(beta1, "beta1")
    if not 0 <= b1 < 1:
        raise ConfigError(f"beta1 must be in [0, 1), got {describe(beta1)}")
    Hm = np.atleast_2d(np.asarray(H, dtype=float))
    Pm = np.eye(Hm.shape[0]) if P is None else np.asarray(P, dtype=float)
    if Pm.ndim == 1:
        Pm = np.diag(Pm)
    if Pm.shape != Hm.shape:
        raise ConfigError(f"P must have the shape of H {Hm.shape}, got {Pm.shape}")
    lam = float(np.max(np.linalg.eigvals(np.linalg.solve(Pm, Hm)).real))
    if lam <= 0:
        raise ConfigError("P^-1 H must have a positive eigenvalue")
    return (2 + 2 * b1) / ((1 - b1) * lam)


def adam_frozen_covariance(lr: Any, beta1: Any, H: Any, P: Any, C: Any):
    """Model: stationary covariance of EMA momentum with a frozen preconditioner ``P``
    (Adam near a minimum, bias corrections settled) under additive gradient noise ``C``.

    In ``w' = P^(1/2) w`` the update is torch-style SGD with ``momentum = dampening = beta1``
    on ``H' = P^(-1/2) H P^(-1/2)`` with noise ``C' = P^(-1/2) C P^(-1/2)``; the covariance is
    mapped back. A model, not a theorem about Adam (``P`` adapts in reality).
    """
    from .algorithms import torch_sgd
    from .fluctuations import stationary_covariance

    b1 = to_float(beta1, "beta1")
    Hm = np.atleast_2d(np.asarray(H, dtype=float))
    Pm = np.asarray(P, dtype=float)
    Pm = np.diag(Pm) if Pm.ndim == 1 else Pm
    w, V = np.linalg.eigh(Pm)
    if np.any(w <= 0):
        raise ConfigError("P must be positive definite")
    Pmh = V @ np.diag(w**-0.5) @ V.T
    Cm = np.asarray(C, dtype=float)
    Cm = Cm * np.eye(Hm.shape[0]) if Cm.ndim == 0 else (np.diag(Cm) if Cm.ndim == 1 else Cm)
    alg = torch_sgd(lr, b1, b1)
    cov = stationary_covariance(alg, Pmh @ Hm @ Pmh, Pmh @ Cm @ Pmh).w
    return Pmh @ cov @ Pmh
