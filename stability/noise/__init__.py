"""Mini-batch noise (docs §4): the noise models, spectra, the certified stability sum ``U``,
loss trajectories, asymptotics, stochastic acceleration and curves of ``U``.

The noise is the *spectrally expressible* (SE) model ``Sigma(X) = tau1 Tr(HX) H - tau2 HXH``;
it is exact for Gaussian features with ``(tau1, tau2) = (1, -1)`` (the default preset) and an
approximation otherwise: results say so in their ``notes``. The certified searches on ``U``
(critical batch size, largest stable learning rate) are in :mod:`stability.checkers`.

On real, heavy-tailed data the Gaussian model can be off by an order of magnitude either way;
:class:`DataNoise` replaces it with the exact mean-square condition computed from the data's own
per-sample curvature (:class:`PerSampleCurvature`, docs §4.4).
"""

from __future__ import annotations

from .acceleration import AM1Schedule, am1_schedule, theorem7_quantities
from .asymptotics import PowerLawAsymptotics, power_law_asymptotics
from .curves import SumCurve, heavy_ball_vs_memory1, stability_sum_vs_batch, stability_sum_vs_lr
from .data import (
    DataNoise,
    DataNoiseResult,
    gaussian_radius,
    mean_square_radius,
    response_matrix,
)
from .models import NOISE_MODELS, SE_NOTE, NoiseModel, get_noise_model
from .persample import LOSSES, SAMPLING, PerSampleCurvature, batch_factor
from .spectra import MAX_EIGENVALUES, PowerLawSpectrum, Spectrum, as_spectrum, power_law
from .sums import NoiseResult, stability_sum
from .terms import noise_term, ubar
from .trajectories import MemorySchedule, loss_trajectory, propagators

__all__ = [
    # spectra and noise models
    "MAX_EIGENVALUES",
    "NOISE_MODELS",
    "SE_NOTE",
    "NoiseModel",
    "PowerLawSpectrum",
    "Spectrum",
    "as_spectrum",
    "get_noise_model",
    "power_law",
    # the stability sum
    "NoiseResult",
    "noise_term",
    "stability_sum",
    "ubar",
    # the exact mean-square condition from the data (per-sample curvature)
    "LOSSES",
    "SAMPLING",
    "DataNoise",
    "DataNoiseResult",
    "PerSampleCurvature",
    "batch_factor",
    "gaussian_radius",
    "mean_square_radius",
    "response_matrix",
    # loss trajectories and asymptotics
    "MemorySchedule",
    "PowerLawAsymptotics",
    "loss_trajectory",
    "power_law_asymptotics",
    "propagators",
    # stochastic acceleration (Theorem 7)
    "AM1Schedule",
    "am1_schedule",
    "theorem7_quantities",
    # U along one parameter
    "SumCurve",
    "heavy_ball_vs_memory1",
    "stability_sum_vs_batch",
    "stability_sum_vs_lr",
]
