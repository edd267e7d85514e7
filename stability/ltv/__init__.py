"""The linear time-varying (AutoSGM) view of momentum, schedules and Adam (docs §7).

Per coordinate, momentum is the lowpass filter ``H(z) = eta (1 - gamma z^-1)/(1 - beta z^-1)``
realised as ``v[t] = beta v[t-1] + eta (g[t] - gamma g[t-1])`` and the step
``w[t+1] = w[t] - alpha[t] v[t]`` with a time-varying learning rate ``alpha[t]`` (schedule,
adaptive denominator). With ``r[t] = alpha[t]/alpha[t-1]`` the update is the scalar LTV system

    dw[t+1] = beta r[t] dw[t] + eta alpha[t] e[t],     e[t] = gamma g[t-1] - g[t]

whose transition telescopes: ``Phi(t, s) = beta^(t-s) alpha[t-1]/alpha[s-1]``. Everything here
is exact on the given horizon; statements about an infinite horizon use the schedule's declared
tail and say so.

One namespace over the modules of the view: :mod:`stability.autosgm` (the filter, its
recursion and the config mapping), :mod:`stability.schedules`, :mod:`stability.ltv_verdicts`,
:mod:`stability.replay` and :mod:`stability.frozen` (constant-alpha models, frozen Adam).
"""

from __future__ import annotations

from .filters import (
    AutoSGMFilter,
    beta_s,
    derive_ltv_recursion,
    eta_s,
    filter_from_config,
    gamma_s,
    lowpass_filter,
    prox_update,
    t_sym,
    weight_decay_equivalence,
    z,
)
from .frozen import (
    adam_frozen_covariance,
    adam_frozen_threshold,
    filter_as_algorithm,
    filter_stationary_variance,
)
from .replay import AdamAlpha, ltv_replay
from .schedules import Schedule, schedule
from .verdicts import LTVVerdict, ltv_verdict, scalar_ltv_verdict, ues_constant, uniform_rate

__all__ = [
    "AdamAlpha",
    "AutoSGMFilter",
    "LTVVerdict",
    "Schedule",
    "adam_frozen_covariance",
    "adam_frozen_threshold",
    "beta_s",
    "derive_ltv_recursion",
    "eta_s",
    "filter_as_algorithm",
    "filter_from_config",
    "filter_stationary_variance",
    "gamma_s",
    "lowpass_filter",
    "ltv_replay",
    "ltv_verdict",
    "prox_update",
    "scalar_ltv_verdict",
    "schedule",
    "t_sym",
    "ues_constant",
    "uniform_rate",
    "weight_decay_equivalence",
    "z",
]
