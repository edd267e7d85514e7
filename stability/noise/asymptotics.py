"""Power-law asymptotics of the loss under mini-batch noise (docs §4, Theorems 3 and 5)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..algorithms import MemoryAlgorithm
from ..errors import ConfigError
from .models import get_noise_model
from .spectra import PowerLawSpectrum
from .sums import _check_batch, stability_sum

__all__ = ["PowerLawAsymptotics", "power_law_asymptotics"]


@dataclass(frozen=True)
class PowerLawAsymptotics:
    """Large-``t`` behaviour of a stationary algorithm on a power law (Theorems 3 and 5).

    ``V_t ~ C_V t^-zeta``, ``U_t ~ C_U t^-xi_U`` with ``xi_U = 2 - 1/nu``. When ``U < 1`` the loss
    decays like ``t^-min(zeta, xi_U)`` — the exponent of plain GD/SGD whatever the memory
    (Theorem 5) — with the signal-dominated constant ``C_V / (2 (1 - U))`` when
    ``zeta < xi_U``. Leading-order asymptotics: prefactors hold as ``t -> inf``.
    """

    C_V: float
    zeta: float
    C_U: float
    xi_U: float
    U: float
    regime: str

    @property
    def exponent(self) -> float:
        return min(self.zeta, self.xi_U)

    def signal_loss(self, t: Any) -> np.ndarray:
        """``C_V t^-zeta / (2 (1 - U))`` (signal-dominated regime)."""
        return self.C_V * np.asarray(t, dtype=float) ** (-self.zeta) / (2 * (1 - self.U))


def power_law_asymptotics(
    alg: MemoryAlgorithm, spectrum: PowerLawSpectrum, batch_size: Any, noise: Any = "gaussian"
) -> PowerLawAsymptotics:
    """Theorem 3 constants and the Theorem 5 exponent for an infinite power law with targets.

    Small curvatures dominate: the leading eigenvalue of ``A_lambda`` is
    ``1 - 2 alpha_eff lambda + O(lambda^2)`` (Theorem 4) and the iterate's response to a
    gradient impulse has residue ``-alpha_eff``, so
    ``C_V = Q Gamma(zeta)/nu (2 alpha_eff Lambda)^-zeta`` and
    ``C_U = (tau1/B) alpha_eff^2 Lambda^(1/nu) Gamma(2 - 1/nu) (2 alpha_eff)^(1/nu - 2) / nu``.
    """
    if not isinstance(spectrum, PowerLawSpectrum) or spectrum.zeta is None:
        raise ConfigError("spectrum must be power_law(nu, zeta=..., ...) with target exponent")
    model = get_noise_model(noise)
    B = _check_batch(batch_size)
    a_eff = float(alg.effective_lr())
    if a_eff <= 0:
        raise ConfigError(f"effective learning rate must be > 0, got {a_eff}")
    nu, zeta, Lam, Q = spectrum.nu, spectrum.zeta, spectrum.Lambda, spectrum.Q
    C_V = Q * math.gamma(zeta) / nu * (2 * a_eff * Lam) ** (-zeta)
    xi_U = 2 - 1 / nu
    C_U = (
        model.tau1
        / B
        * a_eff**2
        * Lam ** (1 / nu)
        * math.gamma(xi_U)
        * (2 * a_eff) ** (1 / nu - 2)
        / nu
    )
    U = stability_sum(alg, PowerLawSpectrum(nu, Lam, zeta, Q, None), B, model).U
    regime = "signal" if zeta < xi_U else "noise"
    return PowerLawAsymptotics(C_V, zeta, C_U, xi_U, U, regime)
