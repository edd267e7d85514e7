"""Vectorised, certified numerics: verdicts and margins of whole grids of configurations."""

from __future__ import annotations

from ._backend import backend, use_backend
from ._engine import THREADS, Verdicts
from .batches import critical_batch_size
from .bins import Bins, compress
from .bounds import NoiseBounds, memory1_noise_bounds
from .families import family_triplet, lr_momentum_grid, method_margins, torch_sgd_margins
from .searches import largest_stable_lr, max_stable_lr
from .triplets import memory1_interval_margins, memory1_margins, memory1_noise_sum

__all__ = [
    "THREADS",
    "Bins",
    "NoiseBounds",
    "Verdicts",
    "backend",
    "compress",
    "critical_batch_size",
    "family_triplet",
    "largest_stable_lr",
    "lr_momentum_grid",
    "max_stable_lr",
    "memory1_interval_margins",
    "memory1_margins",
    "memory1_noise_bounds",
    "memory1_noise_sum",
    "method_margins",
    "torch_sgd_margins",
    "use_backend",
]
