"""stability: exact and certified stability analysis of stochastic-gradient optimizers.

The symbolic core represents an optimizer as a memory-M algorithm (:class:`MemoryAlgorithm`)
and derives its update matrix, characteristic polynomial ``chi = P - lambda Q``, multistep form
and effective learning rate exactly. Conventions and formulas: docs/mathematics.md (after
Yarotsky & Velikanov, 2025).
"""

from __future__ import annotations

from . import symbols
from .algorithms import MemoryAlgorithm
from .charpoly import CharPoly, Multistep, Triplet
from .errors import ConfigError, StabilityError
from .fluctuations import stationary_covariance
from .ltv import lowpass_filter, ltv_verdict, schedule
from .methods import (
    METHODS,
    Method,
    from_multistep,
    gd,
    get_method,
    heavy_ball,
    memory1,
    momentum_kick,
    nesterov,
)
from .noise import (
    PowerLawSpectrum,
    Spectrum,
    critical_batch_size,
    loss_trajectory,
    max_stable_lr,
    noise_term,
    power_law,
    stability_sum,
)
from .optimizers import (
    ConfiguredOptimizer,
    from_keras_sgd,
    from_optax_sgd,
    from_optimizer,
    from_torch_sgd,
)
from .regions import (
    hurwitz_conditions,
    is_strictly_stable,
    schur_conditions,
    strict_stability_conditions,
)
from .report import Report, check

__version__ = "0.1.0.dev0"

__all__ = [
    "METHODS",
    "CharPoly",
    "ConfigError",
    "ConfiguredOptimizer",
    "MemoryAlgorithm",
    "Method",
    "Multistep",
    "PowerLawSpectrum",
    "Report",
    "Spectrum",
    "StabilityError",
    "Triplet",
    "__version__",
    "check",
    "critical_batch_size",
    "from_keras_sgd",
    "from_multistep",
    "from_optax_sgd",
    "from_optimizer",
    "from_torch_sgd",
    "gd",
    "get_method",
    "heavy_ball",
    "hurwitz_conditions",
    "is_strictly_stable",
    "loss_trajectory",
    "lowpass_filter",
    "ltv_verdict",
    "max_stable_lr",
    "memory1",
    "momentum_kick",
    "nesterov",
    "noise_term",
    "power_law",
    "schedule",
    "schur_conditions",
    "stability_sum",
    "stationary_covariance",
    "strict_stability_conditions",
    "symbols",
]
