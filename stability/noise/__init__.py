"""Mini-batch noise (docs §4): one namespace for its concepts, each in its own module.

* :mod:`stability.noise_models` — the SE noise models (``gaussian``, ``translation_invariant``,
  ``se0``);
* :mod:`stability.spectra` — finite spectra and power laws;
* :mod:`stability.noisesum` — the per-eigenvalue term and the stability sum ``U``;
* :mod:`stability.searches` — critical batch size, largest stable learning rate;
* :mod:`stability.trajectories` — the exact second-moment recursion of the loss;
* :mod:`stability.asymptotics` — power-law asymptotics.

The noise is the *spectrally expressible* (SE) model ``Sigma(X) = tau1 Tr(HX) H - tau2 HXH``;
it is exact for Gaussian features with ``(tau1, tau2) = (1, -1)`` (the default preset) and an
approximation otherwise: results say so in their ``notes``.
"""

from __future__ import annotations

from .asymptotics import PowerLawAsymptotics, power_law_asymptotics
from .models import NOISE_MODELS, SE_NOTE, NoiseModel, get_noise_model
from .searches import critical_batch_size, max_stable_lr
from .spectra import MAX_EIGENVALUES, PowerLawSpectrum, Spectrum, as_spectrum, power_law
from .sums import NoiseResult, noise_term, stability_sum, ubar
from .trajectories import MemorySchedule, loss_trajectory, propagators

__all__ = [
    "MAX_EIGENVALUES",
    "NOISE_MODELS",
    "SE_NOTE",
    "MemorySchedule",
    "NoiseModel",
    "NoiseResult",
    "PowerLawAsymptotics",
    "PowerLawSpectrum",
    "Spectrum",
    "as_spectrum",
    "critical_batch_size",
    "get_noise_model",
    "loss_trajectory",
    "max_stable_lr",
    "noise_term",
    "power_law",
    "power_law_asymptotics",
    "propagators",
    "stability_sum",
    "ubar",
]
