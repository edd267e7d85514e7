"""stability: exact and certified stability analysis of stochastic-gradient optimizers.

The symbolic core represents an optimizer as a memory-M algorithm (:class:`MemoryAlgorithm`)
and derives its update matrix, characteristic polynomial ``chi = P - lambda Q``, multistep form
and effective learning rate exactly. Conventions and formulas: docs/mathematics.md (after
Yarotsky & Velikanov, 2025).
"""

from __future__ import annotations

from . import symbols
from .algorithms import (
    METHODS,
    MemoryAlgorithm,
    Method,
    gd,
    get_method,
    heavy_ball,
    memory1,
    momentum_kick,
    nesterov,
)
from .charpoly import CharPoly, Multistep, Triplet, from_multistep
from .errors import ConfigError, StabilityError
from .noise import critical_batch_size, noise_term, power_law, stability_sum
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

__version__ = "0.1.0.dev0"

__all__ = [
    "METHODS",
    "CharPoly",
    "ConfigError",
    "ConfiguredOptimizer",
    "MemoryAlgorithm",
    "Method",
    "Multistep",
    "StabilityError",
    "Triplet",
    "__version__",
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
    "memory1",
    "momentum_kick",
    "nesterov",
    "noise_term",
    "power_law",
    "schur_conditions",
    "stability_sum",
    "strict_stability_conditions",
    "symbols",
]
