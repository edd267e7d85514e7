"""Strict (noiseless) stability (docs §3): conditions, root conditions, exact verdicts and the
memory-1 geometry."""

from __future__ import annotations

from .conditions import Condition, StrictStabilityConditions, strict_stability_conditions
from .geometry import (
    Locus,
    Triangle,
    convergence_rate,
    eigenvalue_locus,
    eigenvalues_over,
    gd_optimal,
    heavy_ball_optimal,
    real_complex_boundaries,
    spectral_radius,
    stability_triangle,
    sup_effective_lr,
)
from .rootconditions import MAX_EXACT_MEMORY, hurwitz_conditions, schur_conditions
from .verdicts import StabilityResult, is_strictly_stable, stable_curvature_intervals

__all__ = [
    "MAX_EXACT_MEMORY",
    "Condition",
    "Locus",
    "StabilityResult",
    "StrictStabilityConditions",
    "Triangle",
    "convergence_rate",
    "eigenvalue_locus",
    "eigenvalues_over",
    "gd_optimal",
    "heavy_ball_optimal",
    "hurwitz_conditions",
    "is_strictly_stable",
    "real_complex_boundaries",
    "schur_conditions",
    "spectral_radius",
    "stability_triangle",
    "stable_curvature_intervals",
    "strict_stability_conditions",
    "sup_effective_lr",
]
