"""Read a ``torch.optim.lr_scheduler`` object into a :class:`~stability.schedules.Schedule`.

The user's scheduler is never stepped: its state is copied onto a stand-in optimizer (one
dummy parameter per param group, the groups' hyperparameters copied), the copy is stepped
``steps - 1`` times with torch's own code, and the learning rates of group 0 are recorded.
Any scheduler works this way — LambdaLR, StepLR, MultiStepLR, ExponentialLR,
CosineAnnealingLR, CosineAnnealingWarmRestarts, LinearLR, OneCycleLR, and the composite
SequentialLR and ChainedScheduler — because torch computes every value. The window is
``F[t] = lr[t] / base_lr`` (``base_lr`` = the group's initial learning rate), so
``alpha[t] = base_lr F[t]`` is what torch uses at step ``t`` counted from the scheduler's
current position. Needs torch (``pip install 'stability[torch]'``).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..ltv.schedules import Schedule

__all__ = ["horizon_of", "is_torch_scheduler", "schedule_from_torch"]

_COMPOSITE = ("_schedulers",)


def is_torch_scheduler(obj: Any) -> bool:
    """Whether ``obj`` looks like a torch learning-rate scheduler (duck-typed)."""
    return hasattr(obj, "optimizer") and hasattr(obj, "get_last_lr") and hasattr(obj, "step")


def horizon_of(scheduler: Any) -> int | None:
    """The natural length of a scheduler when it declares one (OneCycleLR's
    ``total_steps``, CosineAnnealingLR's ``T_max``, LinearLR/ConstantLR's ``total_iters``)."""
    for name in ("total_steps", "T_max", "total_iters"):
        value = getattr(scheduler, name, None)
        if isinstance(value, int) and value > 0:
            return value + (1 if name == "T_max" else 0)
    return None


def _stand_in(optimizer: Any, torch: Any) -> Any:
    groups = []
    for g in optimizer.param_groups:
        group = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
        group["params"] = [torch.zeros(1, requires_grad=True)]
        groups.append(group)
    stand_in = torch.optim.SGD([{"params": groups[0]["params"]}], lr=float(groups[0]["lr"]))
    stand_in.param_groups = groups
    return stand_in


def _rebind(scheduler: Any, optimizer: Any) -> Any:
    clone = copy.copy(scheduler)
    clone.__dict__ = {
        k: (v if k in ("optimizer", *_COMPOSITE) else copy.deepcopy(v))
        for k, v in scheduler.__dict__.items()
    }
    clone.optimizer = optimizer
    for name in _COMPOSITE:
        if hasattr(scheduler, name):
            setattr(clone, name, [_rebind(s, optimizer) for s in getattr(scheduler, name)])
    return clone


def schedule_from_torch(scheduler: Any, steps: int | None = None) -> Schedule:
    """The learning rates a torch scheduler will produce for the next ``steps`` steps (group 0),
    as a window relative to the group's initial learning rate. ``steps`` defaults to the
    scheduler's own horizon (:func:`horizon_of`) or 1000.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised without the extra
        raise ConfigError(
            "reading torch schedulers needs torch: pip install 'stability[torch]'"
        ) from None
    if not is_torch_scheduler(scheduler):
        raise ConfigError(
            f"expected a torch.optim.lr_scheduler object, got {type(scheduler).__name__}"
        )
    if steps is None:
        steps = horizon_of(scheduler) or 1000
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 10**7:
        raise ConfigError(f"steps must be an integer in [1, 1e7], got {steps!r}")
    groups = scheduler.optimizer.param_groups
    base = float(groups[0].get("initial_lr", groups[0]["lr"]))
    if not base > 0:
        raise ConfigError(f"the scheduler's initial learning rate must be > 0, got {base}")
    stand_in = _stand_in(scheduler.optimizer, torch)
    clone = _rebind(scheduler, stand_in)
    lrs = np.empty(steps)
    lrs[0] = stand_in.param_groups[0]["lr"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
        for t in range(1, steps):
            clone.step()
            lrs[t] = stand_in.param_groups[0]["lr"]
    name = f"torch:{type(scheduler).__name__}"
    return Schedule(lrs / base, name, "finite")
