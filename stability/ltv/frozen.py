"""Constant-alpha models of the LTV view: the filter as a memory-1 algorithm, its stationary
variance, and Adam with a frozen preconditioner (docs §6.4, §7).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from .._values import check_range, real_array, square_matrix, to_sympy
from ..errors import ConfigError
from ..fluctuations import stationary_covariance
from ..methods import from_multistep, torch_sgd
from .filters import AutoSGMFilter

__all__ = [
    "adam_frozen_covariance",
    "adam_frozen_threshold",
    "filter_as_algorithm",
    "filter_stationary_variance",
]


def filter_as_algorithm(filt: AutoSGMFilter, lr: Any):
    """The filter with a constant step ``alpha[t] = lr`` as a memory-1 algorithm (via its
    multistep form).

    ``(1 - beta z^-1)(w[t+1] - w[t]) = -lr eta (1 - gamma z^-1) g[t]`` gives
    ``w[t+1] = (1+beta) w[t] - beta w[t-1] - lr eta g[t] + lr eta gamma g[t-1]``.
    """

    a = to_sympy(lr, "lr")
    return from_multistep(
        [-filt.beta, 1 + filt.beta],
        [a * filt.eta * filt.gamma, -a * filt.eta],
        name="autosgm_filter",
    )


def filter_stationary_variance(
    filt: AutoSGMFilter, lr: Any, h: Any, sigma2: Any
) -> tuple[sp.Expr, list[sp.Expr]]:
    """docs §7: stationary ``Var w`` of the filter on a noisy 1-D quadratic, and the
    stability conditions (all must be ``> 0``).

    With a constant step ``alpha[t] = lr``, ``l = eta lr`` and ``q = eta lr h``:
    ``Var = l s2 [(1+beta)(1-gamma) + q gamma (1+gamma)] /
    (h (1 - beta + q gamma)(2(1+beta) - q(1+gamma)))``; stable iff ``q(1-gamma) > 0``,
    ``q(1+gamma) < 2(1+beta)``, ``|beta - q gamma| < 1``. (The notes' range
    ``alpha < (1+beta)/(eta lambda)`` is sufficient only.)
    """
    b, g, e = filt.beta, filt.gamma, filt.eta
    a, hh, s2 = to_sympy(lr, "lr"), to_sympy(h, "h"), to_sympy(sigma2, "sigma2")
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
    b1 = float(check_range(beta1, "beta1", 0, 1, high_open=True))
    Hm = square_matrix(np.atleast_2d(real_array(H, "H")), "H", symmetric=True)
    d = Hm.shape[0]
    Pm = np.eye(d) if P is None else square_matrix(P, "P", d, positive_definite=True)
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

    b1 = float(check_range(beta1, "beta1", 0, 1, high_open=True))
    Hm = square_matrix(np.atleast_2d(real_array(H, "H")), "H", symmetric=True)
    d = Hm.shape[0]
    Pm = square_matrix(P, "P", d, positive_definite=True)
    w, V = np.linalg.eigh(Pm)
    Pmh = V @ np.diag(w**-0.5) @ V.T
    Cm = square_matrix(C, "C", d, psd=True)
    alg = torch_sgd(lr, b1, b1)
    cov = stationary_covariance(alg, Pmh @ Hm @ Pmh, Pmh @ Cm @ Pmh).w
    return Pmh @ cov @ Pmh
