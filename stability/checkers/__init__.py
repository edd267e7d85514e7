"""Vectorised, certified numerics: verdicts and margins of whole grids of configurations."""

from __future__ import annotations

from ._engine import THREADS, Verdicts
from .families import family_triplet, lr_momentum_grid, method_margins, torch_sgd_margins
from .triplets import memory1_interval_margins, memory1_margins, memory1_noise_sum

__all__ = [
    "THREADS",
    "Verdicts",
    "family_triplet",
    "lr_momentum_grid",
    "memory1_interval_margins",
    "memory1_margins",
    "memory1_noise_sum",
    "method_margins",
    "torch_sgd_margins",
]
