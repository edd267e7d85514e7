"""From a torch model to a verdict, during training: curvature, schedulers, the monitor.

The only area that touches torch (``pip install 'sgd-stability[torch]'``); importing it does not
import torch.
"""

from __future__ import annotations

from .curvature import adam_preconditioner, ggn_matvec, hessian_density, hessian_matvec, sharpness
from .estimators import Density, TopEigen, preconditioned, slq_density, top_eigenvalues
from .ggn import EXACT_ROWS, GGN_LOSSES, per_sample_ggn, tracked_ggn
from .lanczos import LANCZOS_MEMORY, HessianOperator, distributed_world, lanczos_top, slq
from .lr_finder import LRFinderResult, find_lr
from .lr_probe import ProbeRun
from .monitor import MonitorHistory, MonitorRecord, StabilityMonitor, StabilityWarning
from .schedulers import horizon_of, is_torch_scheduler, schedule_from_torch

__all__ = [
    "EXACT_ROWS",
    "GGN_LOSSES",
    "LANCZOS_MEMORY",
    "Density",
    "HessianOperator",
    "LRFinderResult",
    "MonitorHistory",
    "MonitorRecord",
    "ProbeRun",
    "StabilityMonitor",
    "StabilityWarning",
    "TopEigen",
    "adam_preconditioner",
    "distributed_world",
    "find_lr",
    "ggn_matvec",
    "hessian_density",
    "hessian_matvec",
    "horizon_of",
    "is_torch_scheduler",
    "lanczos_top",
    "per_sample_ggn",
    "preconditioned",
    "schedule_from_torch",
    "sharpness",
    "slq",
    "slq_density",
    "top_eigenvalues",
    "tracked_ggn",
]
