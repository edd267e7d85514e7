"""The AutoSGM filter: momentum as a lowpass filter, its LTV recursion and config mapping (docs §7).

Per coordinate, momentum is ``H(z) = eta (1 - gamma z^-1)/(1 - beta z^-1)``, realised as
``v[t] = beta v[t-1] + eta (g[t] - gamma g[t-1])``, ``w[t+1] = w[t] - alpha[t] v[t]``. With
``r[t] = alpha[t]/alpha[t-1]`` the step is the scalar LTV system
``dw[t+1] = beta r[t] dw[t] + eta alpha[t] e[t]``, ``e[t] = gamma g[t-1] - g[t]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from .. import symbols as S
from .._values import check_range, to_sympy
from ..configs import read_config
from ..errors import ConfigError, describe

__all__ = [
    "AutoSGMFilter",
    "beta_s",
    "derive_ltv_recursion",
    "eta_s",
    "filter_from_config",
    "gamma_s",
    "lowpass_filter",
    "prox_update",
    "t_sym",
    "weight_decay_equivalence",
    "z",
]


z = S.z


t_sym = S.t


beta_s = S.beta


gamma_s = S.gamma


eta_s = S.eta


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

    The mapping is read by :func:`stability.configs.read_config` (torch, optax and Keras SGD,
    torch and optax Adam/AdamW, with the framework's own names). The learning rate and the
    schedule are not part of the filter (they form ``alpha[t]``), so ``lr`` may be omitted.

    >>> filter_from_config({"optimizer": "sgd", "momentum": 0.9, "nesterov": True}).gamma
    0.473684210526316
    """
    kind, cfg = read_config(config, need_lr=False)
    if kind.family == "sgd":
        mu = check_range(cfg.get("momentum") or 0, "momentum", 0, 1, high_open=True)
        tau = check_range(cfg.get("dampening", 0), "dampening", 0, 1, high_open=True)
        mu_f, tau_f = float(mu), float(tau)
        if bool(cfg.get("nesterov", False)):
            if mu_f == 0 or tau_f != 0:
                raise ConfigError("nesterov=True requires momentum > 0 and dampening = 0")
            return AutoSGMFilter(
                sp.Float(mu_f),
                sp.Float(mu_f / (1 + mu_f)),
                sp.Float(1 + mu_f),
                kind.name,
                (
                    "torch Nesterov: g + mu m = (1+mu) g (1 - gamma z^-1)"
                    "/(1 - mu z^-1), gamma = mu/(1+mu)",
                ),
            )
        notes = (
            ("torch's first step is undamped (m = g): v[0] = g[0], not (1-tau) g[0]",)
            if tau_f
            else ()
        )
        return AutoSGMFilter(sp.Float(mu_f), sp.Integer(0), sp.Float(1 - tau_f), kind.name, notes)
    if "betas" in cfg:
        betas = cfg["betas"]
        if not isinstance(betas, tuple | list | np.ndarray) or len(betas) != 2:
            raise ConfigError(f"betas must be a pair (beta1, beta2), got {describe(betas)}")
        b1 = check_range(betas[0], "betas[0]", 0, 1, high_open=True)
    else:
        b1 = check_range(cfg.get("b1", 0.9), "b1", 0, 1, high_open=True)
    b1_f = float(b1)
    notes = (
        "alpha[t] = lr F[t] / d[t] with d[t] = (1 - beta1^t)(sqrt(v_hat_t) + eps): "
        "eps outside the square root (torch, optax)",
    )
    if kind.name.endswith("adamw"):
        notes += (
            "decoupled decay: theta <- theta (1 - lr wd) before the step; in the LTV "
            "form e += (rho/eta)(beta w~[t-1] - w~[t]), w~ = d w, rho = wd",
        )
    return AutoSGMFilter(sp.Float(b1_f), sp.Integer(0), sp.Float(1 - b1_f), kind.name, notes)
