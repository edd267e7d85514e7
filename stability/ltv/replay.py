"""Replays of the LTV recursion in closed loop on a gradient oracle (torch SGD, Nesterov, Adam,
AdamW update rules), for comparison with the real optimizers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._values import real_array
from ..errors import ConfigError, describe
from .filters import AutoSGMFilter

__all__ = ["AdamAlpha", "ltv_replay"]


class AdamAlpha:
    """``alpha[t] = lr[t] / d[t]``, ``d[t] = (1 - beta1^(t+1)) (sqrt(v_hat) + eps)`` (torch's
    convention, eps outside the root), tracking ``v`` from the gradients it is shown."""

    def __init__(self, lr: Any, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr = real_array(lr, "lr", low=0)
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
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ConfigError(f"steps must be an integer >= 0, got {describe(steps)}")
    alpha_arr = None
    if not callable(alpha):
        alpha_arr = real_array(alpha, "alpha", low=0)
        if alpha_arr.ndim == 0 or alpha_arr.shape[0] < steps:
            raise ConfigError(
                f"alpha must hold at least steps = {steps} values, got shape {alpha_arr.shape}"
            )
    out = [w.copy()]
    u = np.zeros_like(w)  # filter state: dw[t] = alpha[t] u[t] (u stays defined at alpha = 0)
    g_prev = np.zeros_like(w)
    wt_prev = np.zeros_like(w)
    for t in range(steps):
        g = np.asarray(grad(w), dtype=float) + coupled_decay * w
        if callable(alpha):
            a_t, d_t = alpha(t, g)
        else:
            a_t = alpha_arr[t]
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
