"""Stochastic acceleration: Theorem 7 criteria and the AM1 schedule (docs §4.1).

AM1 keeps ``q0 > 0`` fixed, lets ``delta_t = 1 - beta_t = delta t^-b -> 0`` and grows
``alpha_eff,t = alpha0 t^a``; under a power law with exponent ``nu`` and ``0 < a <= b(1 - 1/nu)``,
``b < 1``, the predicted signal-phase rate is ``L_t = O(t^-zeta(1+a))`` (plain SGD: ``t^-zeta``).
Only the exponent is predicted. It is realised through the momentum+kick form
``beta_t = 1 - delta t^-b``, ``eta'_t = q0/beta_t``,
``eta_t = delta t^-b (alpha0 t^a - q0/beta_t)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._values import real_array, to_float
from ..errors import ConfigError, describe
from .trajectories import MemorySchedule

__all__ = ["AM1Schedule", "am1_schedule", "theorem7_quantities"]


@dataclass(frozen=True)
class AM1Schedule:
    """Per-step AM1 parameters (t = 1..T) and the memory-1 schedule realising them."""

    t: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    kick: np.ndarray
    q0: float
    alpha_eff: np.ndarray
    exponent_gain: float  # a: predicted loss exponent is zeta * (1 + a)

    def schedule(self) -> MemorySchedule:
        """momentum+kick realisation: alpha = eta + eta', b = -eta beta, c = 1, D = beta."""
        T = self.t.size
        return MemorySchedule(
            self.eta + self.kick,
            np.zeros((T, 1)),
            (-self.eta * self.beta)[:, None],
            np.ones((T, 1)),
            self.beta[:, None, None],
        )

    def predicted_exponent(self, zeta: float) -> float:
        """The predicted signal-phase loss exponent ``zeta (1 + a)``."""
        return zeta * (1 + self.exponent_gain)


def am1_schedule(
    alpha0: Any, delta: Any, q0: Any, a: Any, b: Any, steps: int, nu: Any = None
) -> AM1Schedule:
    """The AM1 schedule of docs §4.1 for ``t = 1..steps``.

    Validated: ``alpha0 > 0``, ``0 < delta < 1``, ``q0 > 0``, ``0 < a``, ``0 <= b < 1`` and, when
    the spectrum exponent ``nu`` is given, ``a <= b (1 - 1/nu)``; every ``eta_t`` must be
    positive (``alpha0 t^a > q0/beta_t``).

    >>> s = am1_schedule(alpha0=1.0, delta=0.5, q0=0.2, a=0.3, b=0.6, steps=4, nu=2.0)
    >>> s.alpha_eff.round(3).tolist()
    [1.0, 1.231, 1.39, 1.516]
    """
    a0 = to_float(alpha0, "alpha0")
    d = to_float(delta, "delta")
    q = to_float(q0, "q0")
    af = to_float(a, "a")
    bf = to_float(b, "b")
    if a0 <= 0:
        raise ConfigError(f"alpha0 must be in (0, inf), got {describe(alpha0)}")
    if not 0 < d < 1:
        raise ConfigError(f"delta must be in (0, 1), got {describe(delta)}")
    if q <= 0:
        raise ConfigError(f"q0 must be in (0, inf), got {describe(q0)}")
    if not 0 <= bf < 1:
        raise ConfigError(f"b must be in [0, 1), got {describe(b)}")
    if af <= 0:
        raise ConfigError(f"a must be in (0, inf), got {describe(a)}")
    if nu is not None:
        nuf = to_float(nu, "nu")
        if nuf <= 1:
            raise ConfigError(f"nu must be in (1, inf), got {describe(nu)}")
        if af > bf * (1 - 1 / nuf) + 1e-15:
            raise ConfigError(
                f"a must be in (0, b(1 - 1/nu)] = (0, {bf * (1 - 1 / nuf):.6g}], got {describe(a)}"
            )
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ConfigError(f"steps must be an integer >= 1, got {describe(steps)}")
    t = np.arange(1, steps + 1, dtype=float)
    dt = d * t ** (-bf)
    beta = 1 - dt
    kick = q / beta
    alpha_eff = a0 * t**af
    eta = dt * (alpha_eff - kick)
    if np.any(eta <= 0):
        first = int(t[np.argmax(eta <= 0)])
        raise ConfigError(
            f"eta_t must be positive: alpha0 t^a <= q0/beta_t at t = {first}; "
            f"increase alpha0 or decrease q0"
        )
    return AM1Schedule(t, beta, eta, kick, q, alpha_eff, af)


def theorem7_quantities(beta: Any, q0: Any, q1: Any, eigenvalues: Any) -> dict[str, np.ndarray]:
    """The Theorem 7 quantities of memory-1 triplets (arrays broadcast over steps).

    Returns ``delta``, ``alpha_eff``, ``low = alpha_eff * sum_{lambda < delta/q0} lambda`` and
    ``mid = (delta alpha_eff/q0) #{delta/q0 <= lambda <= delta alpha_eff/q0^2}``. ``U`` stays
    bounded as ``alpha_eff -> inf`` iff ``delta -> 0``, ``q0 > 0`` and both sums stay ``O(1)``.
    """
    lam = np.sort(real_array(eigenvalues, "eigenvalues", low=0, low_open=True).ravel())
    b_, p_, r_ = (
        np.atleast_1d(real_array(x, n)) for x, n in ((beta, "beta"), (q0, "q0"), (q1, "q1"))
    )
    b_, p_, r_ = np.broadcast_arrays(b_, p_, r_)
    delta = 1 - b_
    alpha_eff = -(p_ + r_) / delta
    csum = np.concatenate([[0.0], np.cumsum(lam)])
    with np.errstate(divide="ignore", invalid="ignore"):
        lo_edge = np.where(p_ > 0, delta / p_, np.inf)
        hi_edge = np.where(p_ > 0, delta * alpha_eff / p_**2, np.inf)
    n_low = np.searchsorted(lam, lo_edge, side="left")
    low = alpha_eff * csum[n_low]
    count_mid = np.searchsorted(lam, hi_edge, side="right") - n_low
    mid = np.where(p_ > 0, delta * alpha_eff / np.where(p_ > 0, p_, 1) * count_mid, np.inf)
    return {"delta": delta, "alpha_eff": alpha_eff, "low": low, "mid": mid}
