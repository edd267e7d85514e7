"""stability: exact and certified stability analysis of stochastic-gradient optimizers.

The symbolic core represents an optimizer as a memory-M algorithm (:class:`MemoryAlgorithm`)
and derives its update matrix, characteristic polynomial ``chi = P - lambda Q``, multistep form
and effective learning rate exactly. Conventions and formulas: docs/mathematics.md (after
Yarotsky & Velikanov, 2025); the section numbers below are that document's.

Module map (one concept per module; imports flow core -> adapters -> checkers -> faces):

Core (sympy/numpy/mpmath only)
    ``symbols``          every sympy Symbol, with its assumptions
    ``_values``          the input gate: numbers and arrays (finite, real, ranges, shapes)
    ``errors``           ``ConfigError`` (bad input), ``StabilityError`` (cannot answer)
    ``configs``          the one reader of optimizer configs (framework names, aliases, keys)
    ``algorithms``       ``MemoryAlgorithm`` (§1)
    ``methods``          named constructors, torch SGD's rule, multistep realisation, registry
    ``charpoly``         ``S_lambda``, ``P``/``Q``/``chi``, multistep form, ``alpha_eff`` (§2)
    ``rootconditions``   Schur/Hurwitz conditions with sympy's contract (§3.1)
    ``regions``          conditions of an algorithm on ``(0, lambda_max]``, Theorem 6.1 (§3)
    ``verdicts``         exact verdicts with margins, stable curvature intervals (§3)
    ``geometry``         memory-1 triangle, eigenvalue circle, spectral radius, optima (§3.2, §6)
    ``noise_models``     SE noise models (§4)
    ``spectra``          finite spectra and power laws (§4.2)
    ``noisesum``         ``Ubar_lambda`` and the stability sum ``U`` (§4, eq. 25)
    ``searches``         critical batch size, largest stable learning rate of a family
    ``trajectories``     exact second-moment recursion, propagators (§4, Theorem 2)
    ``asymptotics``      power-law asymptotics of the loss (§4)
    ``curves``           ``U`` along one parameter (the data behind the noise plots)
    ``acceleration``     Theorem 7 and the AM1 schedule (§4.1)
    ``fluctuations``     stationary covariances, least-squares thresholds (§5, §6.3)
    ``autosgm``          the AutoSGM filter, its LTV recursion and config mapping (§7)
    ``schedules``        learning-rate windows with a declared continuation (§7)
    ``ltv_verdicts``     exact BIBO/UES verdicts (§7)
    ``replay``           the LTV recursion replayed on a gradient oracle (§7)
    ``frozen``           constant-alpha models, Adam with a frozen preconditioner (§6.4, §7)
    ``simulate``         plain iterations, for validation
    ``noise``, ``ltv``   namespaces over the modules of §4 and §7
Adapters
    ``optimizers``       torch/optax/keras configs and objects -> ``MemoryAlgorithm``
Checkers (vectorised numerics)
    ``_kernels``, ``_engine``, ``_codegen``   compiled, certified, blocked evaluation
    ``triplet_checkers``, ``checkers``         memory-1 triplets; optimizer families
Faces
    ``report`` (``check`` -> ``Report``), ``maxlr``, ``inputs``, ``cli``, ``sweep``,
    ``latex``, ``plots``, ``demo``
"""

from __future__ import annotations

from . import symbols
from .algorithms import MemoryAlgorithm
from .charpoly import CharPoly, Multistep, Triplet
from .checkers.searches import critical_batch_size, max_stable_lr
from .checking import check
from .errors import ConfigError, StabilityError
from .fluctuations import stationary_covariance
from .ltv.filters import lowpass_filter
from .ltv.schedules import schedule
from .ltv.verdicts import ltv_verdict
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
from .noise.spectra import PowerLawSpectrum, Spectrum, power_law
from .noise.sums import stability_sum
from .noise.terms import noise_term
from .noise.trajectories import loss_trajectory
from .optimizers import (
    ConfiguredOptimizer,
    from_keras_sgd,
    from_optax_sgd,
    from_optimizer,
    from_torch_sgd,
)
from .regions.conditions import strict_stability_conditions
from .regions.rootconditions import hurwitz_conditions, schur_conditions
from .regions.verdicts import is_strictly_stable
from .report import Report

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
