"""The spectrally expressible (SE) noise models of mini-batch gradients (docs §4).

The noise covariance of a batch of B samples is modelled as
``Sigma(X) = tau1 Tr(HX) H - tau2 HXH``; exact for Gaussian features with
``(tau1, tau2) = (1, -1)`` (the default preset), an approximation otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .._values import to_float
from ..errors import ConfigError, describe

__all__ = ["NOISE_MODELS", "SE_NOTE", "NoiseModel", "get_noise_model"]


SE_NOTE = (
    "SE noise model: exact for Gaussian features with (tau1, tau2) = (1, -1); an "
    "approximation for other data; quadratic (linearised) loss"
)


@dataclass(frozen=True)
class NoiseModel:
    """SE noise ``Sigma(X) = tau1 Tr(HX) H - tau2 HXH`` (docs §4; Yarotsky & Velikanov eq. 15)."""

    tau1: float
    tau2: float
    name: str = "custom"

    def __post_init__(self) -> None:
        for label in ("tau1", "tau2"):
            value = getattr(self, label)
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                raise ConfigError(f"{label} must be a finite number, got {describe(value)}")
        if self.tau1 < 0:
            raise ConfigError(f"tau1 must be in [0, inf), got {describe(self.tau1)}")
        if self.tau2 > self.tau1:
            raise ConfigError(
                f"tau2 must be <= tau1 = {describe(self.tau1)}, got {describe(self.tau2)}"
            )

    @property
    def exact_for_gaussian(self) -> bool:
        return (self.tau1, self.tau2) == (1.0, -1.0)


NOISE_MODELS = {
    "gaussian": NoiseModel(1.0, -1.0, "gaussian"),
    "translation_invariant": NoiseModel(1.0, 1.0, "translation_invariant"),
    "se0": NoiseModel(1.0, 0.0, "se0"),
}


def get_noise_model(noise: Any = "gaussian") -> NoiseModel:
    """A preset name (``gaussian``, ``translation_invariant``, ``se0``), a :class:`NoiseModel`
    or an explicit ``(tau1, tau2)`` pair.

    >>> get_noise_model("se0")
    NoiseModel(tau1=1.0, tau2=0.0, name='se0')
    >>> get_noise_model((1, 2))
    Traceback (most recent call last):
    ...
    stability.errors.ConfigError: tau2 must be <= tau1 = 1.0, got 2.0
    """
    if isinstance(noise, NoiseModel):
        return noise
    if isinstance(noise, str):
        key = noise.strip().lower().replace("-", "_")
        if key not in NOISE_MODELS:
            raise ConfigError(
                f"noise must be one of {sorted(NOISE_MODELS)} or (tau1, tau2), "
                f"got {describe(noise)}"
            )
        return NOISE_MODELS[key]
    if isinstance(noise, tuple | list) and len(noise) == 2:
        return NoiseModel(to_float(noise[0], "tau1"), to_float(noise[1], "tau2"))
    raise ConfigError(f"noise must be a preset name or (tau1, tau2), got {describe(noise)}")
