"""stability: exact and certified stability analysis of stochastic-gradient optimizers.

An optimizer is represented as a memory-M algorithm (:class:`MemoryAlgorithm`); the package
derives its update matrix, characteristic polynomial ``chi = P - lambda Q``, multistep form and
effective learning rate exactly, decides strict stability exactly, sums the mini-batch noise
with a certificate, and reads real optimizer configurations. The mathematics is explained in
``docs/mathematics.md``; the section numbers in docstrings are that document's.

Layout. Each area's ``__init__`` is its public API; inside the package a module imports from
member modules only, and only from its own block and the blocks above it in this map (each
run of top-level modules is one block, each package one block). ``tests/test_layering.py``
reads the map: a module missing from it, or an import against its order, fails the tests.

::

    stability/
        errors.py           ConfigError, StabilityError and the wording of their messages
        symbols.py          every sympy Symbol once, with its assumptions
        progress.py         a progress line on stderr for long loops
        _threads.py         one BLAS/torch thread for small products (threadpoolctl)
        _values.py          the input gate: exact numbers, float arrays, ranges, shapes
        configs.py          optimizer names, aliases and keys of each framework (KINDS)
        charpoly.py         S_lambda, P/Q/chi, multistep form, alpha_eff (§2)
        algorithms.py       MemoryAlgorithm (§1) and the batched numeric S_lambda
        methods.py          named constructors, torch SGD's rule, multistep realisation
        simulate.py         plain iterations, for validation
        optimizers.py       torch/optax/keras configs and objects -> ConfiguredOptimizer
        fluctuations.py     stationary covariances, the Lyapunov solve, least squares (§5)
        regions/            strict (noiseless) stability (§3)
            __init__.py     the area's public API
            rootconditions.py   Schur/Hurwitz conditions with sympy's contract (§3.1)
            conditions.py   conditions of an algorithm on (0, lambda_max], Theorem 6.1
            roots.py        exact real roots of the conditions, the critical curvature
            eigenvalues.py  eigenvalue lists located against the exact stable set
            schurcohn.py    the certified per-eigenvalue test at large memory sizes
            verdicts.py     is_strictly_stable: exact verdicts with margins
            geometry.py     memory-1 triangle, eigenvalue circle, radius, optima (§3.2, §6)
        noise/              mini-batch noise (§4)
            __init__.py     the area's public API
            models.py       the SE noise models
            spectra.py      finite spectra and power laws (§4.2)
            terms.py        the per-eigenvalue term: symbolic, float with error, exact
            tails.py        the certified tail of a long power law
            sums.py         the certified stability sum U (Theorem 3)
            persample.py    per-sample curvature of the data, batch factors (§4.4)
            data.py         the exact mean-square condition from per-sample curvature (§4.4)
            trajectories.py exact second-moment recursion, propagators (Theorem 2)
            asymptotics.py  power-law asymptotics of the loss
            acceleration.py Theorem 7 and the AM1 schedule (§4.1)
            curves.py       U along one parameter (the data of the noise plots)
        ltv/                the linear time-varying (AutoSGM) view (§7)
            __init__.py     the area's public API
            filters.py      the AutoSGM filter, its LTV recursion, config mapping
            schedules.py    learning-rate windows with a declared continuation
            verdicts.py     exact BIBO/UES verdicts
            replay.py       the LTV recursion on a gradient oracle
            frozen.py       constant-step models, Adam with a frozen preconditioner (§6.4)
        checkers/           vectorised certified numerics and certified searches
            __init__.py     the area's public API
            _backend.py     the optional numba backend: choice, cache, threads
            _codegen.py     sympy expressions -> buffer-reusing numpy / scalar code
            _kernels.py     condition sets -> certified kernels (float and exact twins)
            _compiled.py    the generated numba loops
            _engine.py      blocked, threaded evaluation with exact re-decision
            triplets.py     memory-1 triplets: Theorem 6.1, interval conditions, noise sum
            families.py     torch SGD and the registry's memory-0/1 methods
            bins.py         compressed spectra: eigenvalues one by one, then curvature bins
            bounds.py       certified bounds on U from a compressed spectrum
            searches.py     the largest stable lr (certified)
            batches.py      the critical batch size (certified)
            steps.py        certified verdicts of every step of a schedule
            minibatch.py    a configuration's mini-batch verdict for a report: U, or rho from data
        training/           from a torch model to a verdict, during training (torch only)
            __init__.py     the area's public API
            estimators.py   Lanczos and SLQ for any numpy matvec (the framework-agnostic core)
            lanczos.py      torch-native Hessian products, Lanczos, SLQ: any device, ranks
            curvature.py    a model's sharpness, density and matvecs; Adam's preconditioner
            schedulers.py   torch lr schedulers read into schedules
            ggn.py          per-sample Gauss-Newton curvature of a network (data noise)
            minibatch_edge.py  a run's batching and its mean-square edge, for the monitor
            monitor.py      StabilityMonitor: the run's stability ratio while training
            lr_probe.py     find_lr's short training runs from copies, and their verdicts
            lr_finder.py    find_lr: the largest stable lr of a real network (edge + probes)
        report.py           the Report and its presentation (text, dict, notebook reprs)
        checking.py         check(config, ...) -> Report
        curve.py            the stability curve lr_max(B) from data, and its knee (§4.4)
        latex.py            derivation documents through sympy's LatexPrinter
        plots.py            matplotlib figures (imported lazily)
        __init__.py         the package's public API
        cli/                the command line
            __init__.py     the area's public API (main)
            inputs.py       numbers, power laws, spectrum and config files as typed
            sweep.py        certified verdicts of a grid, streamed to a file
            parser.py       the subcommands' flags, help, examples; close-match errors
            demo.py         make demo's built-in example
            main.py         stability check / sweep / derive
            __main__.py     python -m stability.cli
        __main__.py         python -m stability
"""

from __future__ import annotations

from . import symbols
from .algorithms import MemoryAlgorithm
from .charpoly import CharPoly, Multistep, Triplet
from .checkers.batches import critical_batch_size
from .checkers.searches import max_stable_lr
from .checking import check
from .curve import StabilityCurve, stability_curve
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
from .noise.data import DataNoise
from .noise.persample import PerSampleCurvature
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
    "__version__",
    # the answer a practitioner acts on
    "Report",
    "StabilityCurve",
    "check",
    "stability_curve",
    # algorithms and their algebra
    "CharPoly",
    "MemoryAlgorithm",
    "Multistep",
    "Triplet",
    "symbols",
    # named methods
    "METHODS",
    "Method",
    "from_multistep",
    "gd",
    "get_method",
    "heavy_ball",
    "memory1",
    "momentum_kick",
    "nesterov",
    # real optimizer configurations
    "ConfiguredOptimizer",
    "from_keras_sgd",
    "from_optax_sgd",
    "from_optimizer",
    "from_torch_sgd",
    # strict stability
    "hurwitz_conditions",
    "is_strictly_stable",
    "schur_conditions",
    "strict_stability_conditions",
    # mini-batch noise
    "DataNoise",
    "PerSampleCurvature",
    "PowerLawSpectrum",
    "Spectrum",
    "critical_batch_size",
    "loss_trajectory",
    "max_stable_lr",
    "noise_term",
    "power_law",
    "stability_sum",
    # stationary fluctuations
    "stationary_covariance",
    # the LTV view
    "lowpass_filter",
    "ltv_verdict",
    "schedule",
    # errors
    "ConfigError",
    "StabilityError",
]
