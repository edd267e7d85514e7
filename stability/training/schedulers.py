"""Read a ``torch.optim.lr_scheduler`` object into a :class:`~stability.ltv.Schedule`.

The user's scheduler is never stepped. Its future learning rates (and momenta, for the
schedulers that cycle them: OneCycleLR, CyclicLR) come from a copy: the scheduler's state is
copied onto a stand-in optimizer (one dummy parameter per param group, the groups'
hyperparameters copied) and the copy is stepped with torch's own code, recording group 0.
Any scheduler works this way (LambdaLR, StepLR, MultiStepLR, ExponentialLR,
CosineAnnealingLR, CosineAnnealingWarmRestarts, LinearLR, ConstantLR, PolynomialLR,
OneCycleLR, CyclicLR, SequentialLR, ChainedScheduler), because torch computes every value.
Stepping costs a few microseconds per step; horizons longer than :data:`REPLAY_STEPS` of the
schedulers whose value is a closed form of the step count are evaluated from that form
(vectorised; equal to torch's stepped values to about 1e-15, checked by the tests).

The schedule is absolute: ``F[t] = lr[t] / base`` with ``base`` the group's initial learning
rate, and ``Schedule.base_lr = base``, so ``alpha[t] = base F[t]`` is what torch uses at step
``t`` counted from the scheduler's current position, whatever a scheduler did to the lr when it
was built (LinearLR's ``start_factor``, OneCycleLR's ``max_lr / div_factor``). A
``ReduceLROnPlateau`` cannot be read: its future depends on the validation loss
(:class:`~stability.training.StabilityMonitor` follows it live). Needs torch
(``pip install 'sgd-stability[torch]'``).
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import numpy as np

from .. import progress
from ..errors import ConfigError, describe
from ..ltv.schedules import Schedule

__all__ = ["MAX_STEPS", "REPLAY_STEPS", "horizon_of", "is_torch_scheduler", "schedule_from_torch"]

REPLAY_STEPS = 10**6
"""Longest horizon replayed step by step (a few seconds); longer ones need a closed form."""

MAX_STEPS = 10**7
"""Longest horizon read at all (80 MB of learning rates)."""

_COMPOSITE = ("_schedulers",)


def is_torch_scheduler(obj: Any) -> bool:
    """Whether ``obj`` looks like a torch learning-rate scheduler (duck-typed)."""
    return hasattr(obj, "optimizer") and (
        (hasattr(obj, "get_last_lr") and hasattr(obj, "step"))
        or type(obj).__name__ == "ReduceLROnPlateau"
    )


def horizon_of(scheduler: Any) -> tuple[int, str] | None:
    """The natural length of a scheduler when it declares one, and the attribute it comes
    from: OneCycleLR's ``total_steps``, CosineAnnealingLR's ``T_max`` (values at steps
    ``0..T_max``), LinearLR/ConstantLR/PolynomialLR's ``total_iters`` (their last value is at
    step ``total_iters``); a SequentialLR's milestones plus its last part; a ChainedScheduler's
    longest part. The count starts at the scheduler's current step."""
    parts = getattr(scheduler, "_schedulers", None)
    done = max(0, int(getattr(scheduler, "last_epoch", 0)))
    if parts and hasattr(scheduler, "_milestones"):  # SequentialLR
        last = horizon_of(parts[-1])
        if last is None:
            return None
        total = int(scheduler._milestones[-1]) + last[0]
        return max(1, total - done), f"milestones + {last[1]}"
    if parts:  # ChainedScheduler
        found = [h for h in (horizon_of(s) for s in parts) if h is not None]
        return max(found) if found else None
    for name, extra in (("total_steps", 0), ("T_max", 1), ("total_iters", 1)):
        value = getattr(scheduler, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return max(1, value + extra - done), name
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


def _momentum_of(group: dict[str, Any]) -> float | None:
    """The group's momentum (SGD) or first-moment decay (Adam's ``betas[0]``)."""
    if "betas" in group:
        return float(group["betas"][0])
    if "momentum" in group:
        return float(group["momentum"])
    return None


def schedule_from_torch(scheduler: Any, steps: int | None = None) -> Schedule:
    """The learning rates (and momenta, when the scheduler moves them) a torch scheduler will
    produce for the next ``steps`` steps (group 0), as an absolute schedule (module
    docstring). ``steps`` defaults to the scheduler's own horizon (:func:`horizon_of`) or
    1000."""
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised without the extra
        raise ConfigError(
            "reading torch schedulers needs torch: pip install 'sgd-stability[torch]'"
        ) from None
    name = type(scheduler).__name__
    if name == "ReduceLROnPlateau":
        raise ConfigError(
            "schedule: ReduceLROnPlateau changes the learning rate from the validation loss, "
            "so its future cannot be predicted; check the largest learning rate it can reach, "
            "or watch the run with stability.training.StabilityMonitor (it reads the current "
            "learning rate at every check)"
        )
    if not is_torch_scheduler(scheduler):
        raise ConfigError(
            f"schedule must be a torch.optim.lr_scheduler object, got {describe(scheduler)}"
        )
    steps = _horizon(scheduler, steps)
    groups = scheduler.optimizer.param_groups
    base = float(groups[0].get("initial_lr", groups[0]["lr"]))
    if not base > 0:
        raise ConfigError(f"the scheduler's initial learning rate must be > 0, got {base}")
    closed = _closed_form(scheduler, steps) if steps > REPLAY_STEPS else None
    if closed is None and steps > REPLAY_STEPS:
        raise ConfigError(
            f"schedule: {name} has no closed form here and its horizon of {steps:,} steps "
            f"is longer than the {REPLAY_STEPS:,} steps replayed one by one; read the first "
            "steps with stability.training.schedule_from_torch(scheduler, steps=...)"
        )
    lrs, moms = closed if closed is not None else _replay(scheduler, steps, torch)
    mom0 = _momentum_of(groups[0])
    momentum = moms if moms is not None and mom0 is not None and np.ptp(moms) > 0 else None
    return Schedule(lrs / base, f"torch:{name}", "finite", base_lr=base, momentum=momentum)


def _horizon(scheduler: Any, steps: Any) -> int:
    """The number of steps to read, checked; an error names where a too-long horizon came
    from (the scheduler's own attribute, or ``steps``)."""
    if steps is None:
        found = horizon_of(scheduler)
        if found is None:
            return 1000
        steps, source = found
        if steps > MAX_STEPS:
            raise ConfigError(
                f"schedule: {type(scheduler).__name__}'s {source} gives a horizon of "
                f"{steps:,} steps; at most {MAX_STEPS:,} are read; read the first steps with "
                "stability.training.schedule_from_torch(scheduler, steps=...)"
            )
        return steps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ConfigError(
            f"steps must be an integer in [1, {MAX_STEPS:.0e}], got {describe(steps)}"
        )
    return steps


def _replay(scheduler: Any, steps: int, torch: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Step a copy of the scheduler on a stand-in optimizer; group 0's lr and momentum."""
    stand_in = _stand_in(scheduler.optimizer, torch)
    clone = _rebind(scheduler, stand_in)
    group = stand_in.param_groups[0]
    lrs = np.empty(steps)
    moms = np.empty(steps) if _momentum_of(group) is not None else None
    lrs[0] = group["lr"]
    if moms is not None:
        moms[0] = _momentum_of(group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
        for t in range(1, steps):
            clone.step()
            group = stand_in.param_groups[0]
            lrs[t] = group["lr"]
            if moms is not None:
                moms[t] = _momentum_of(group)
            if t % 65536 == 0:
                progress.update(f"replaying {type(scheduler).__name__}", t, steps)
    return lrs, moms


def _closed_form(scheduler: Any, steps: int) -> tuple[np.ndarray, None] | None:
    """Group 0's learning rates at the next ``steps`` steps from the closed form of the
    schedulers that have one (``None`` otherwise, or when the optimizer's current lr is not
    the closed form's value: someone changed it by hand)."""
    name = type(scheduler).__name__
    t = float(scheduler.last_epoch) + np.arange(steps, dtype=float)
    base = float(scheduler.base_lrs[0])
    s = scheduler
    if name == "CosineAnnealingLR":
        lrs = s.eta_min + (base - s.eta_min) * (1 + np.cos(math.pi * t / s.T_max)) / 2
    elif name == "LinearLR":
        frac = np.minimum(s.total_iters, t) / s.total_iters
        lrs = base * (s.start_factor + (s.end_factor - s.start_factor) * frac)
    elif name == "ConstantLR":
        lrs = base * (s.factor + (t >= s.total_iters) * (1 - s.factor))
    elif name == "PolynomialLR":
        lrs = base * (1.0 - np.minimum(s.total_iters, t) / s.total_iters) ** s.power
    elif name == "ExponentialLR":
        lrs = base * s.gamma**t
    elif name == "StepLR":
        lrs = base * s.gamma ** np.floor(t / s.step_size)
    else:
        return None
    current = float(scheduler.optimizer.param_groups[0]["lr"])
    if not math.isclose(float(lrs[0]), current, rel_tol=1e-9, abs_tol=1e-300):
        return None
    return lrs, None
