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

__all__ = [
    "DEFAULT_STEPS",
    "MAX_STEPS",
    "REPLAY_STEPS",
    "horizon_of",
    "is_torch_scheduler",
    "schedule_from_torch",
    "scheduler_groups",
]

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
    if parts:  # ChainedScheduler: its parts act together, so it ends with the longest; a
        # part without a horizon (ExponentialLR, LambdaLR) keeps changing the lr for ever
        found = [horizon_of(s) for s in parts]
        if any(h is None for h in found):
            return None
        return max(found)
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


DEFAULT_STEPS = 1000
"""Steps read of a scheduler that declares no horizon (LambdaLR, ExponentialLR, ...)."""


def schedule_from_torch(scheduler: Any, steps: int | None = None, group: int = 0) -> Schedule:
    """The learning rates (and momenta, when the scheduler moves them) a torch scheduler will
    produce for the next ``steps`` steps in param group ``group``, as an absolute schedule
    (module docstring). ``steps`` defaults to the scheduler's own horizon (:func:`horizon_of`)
    or :data:`DEFAULT_STEPS`; a scheduler without a horizon (``LambdaLR``, ``ExponentialLR``)
    is read for that many steps (a ``LambdaLR`` calls its function once per step and group).
    """
    groups = scheduler_groups(scheduler, steps) if is_torch_scheduler(scheduler) else None
    if groups is None:
        _refuse(scheduler)
    n = len(groups)
    if isinstance(group, bool) or not isinstance(group, int) or not 0 <= group < n:
        raise ConfigError(f"group must be an integer in [0, {n - 1}], got {describe(group)}")
    return groups[group]


def _refuse(scheduler: Any) -> None:
    if type(scheduler).__name__ == "ReduceLROnPlateau":
        raise ConfigError(
            "schedule: ReduceLROnPlateau changes the learning rate from the validation loss, "
            "so its future cannot be predicted; check the largest learning rate it can reach, "
            "or watch the run with stability.training.StabilityMonitor (it reads the current "
            "learning rate at every check)"
        )
    raise ConfigError(
        f"schedule must be a torch.optim.lr_scheduler object, got {describe(scheduler)}"
    )


def scheduler_groups(scheduler: Any, steps: int | None = None) -> list[Schedule]:
    """:func:`schedule_from_torch` of every param group, from one replay (each group has its
    own base learning rate, and a ``LambdaLR`` may have one function per group)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised without the extra
        raise ConfigError(
            "reading torch schedulers needs torch: pip install 'sgd-stability[torch]'"
        ) from None
    name = type(scheduler).__name__
    if name == "ReduceLROnPlateau" or not is_torch_scheduler(scheduler):
        _refuse(scheduler)
    steps = _horizon(scheduler, steps)
    groups = scheduler.optimizer.param_groups
    bases = [float(g.get("initial_lr", g["lr"])) for g in groups]
    for i, base in enumerate(bases):
        if not base > 0:
            raise ConfigError(
                f"the scheduler's initial learning rate must be > 0, got {base} (group {i})"
            )
    closed = _closed_form(scheduler, steps) if steps > REPLAY_STEPS else None
    if closed is None and steps > REPLAY_STEPS:
        raise ConfigError(
            f"schedule: {name} has no closed form here and its horizon of {steps:,} steps "
            f"is longer than the {REPLAY_STEPS:,} steps replayed one by one; read the first "
            "steps with stability.training.schedule_from_torch(scheduler, steps=...)"
        )
    lrs, moms = closed if closed is not None else _replay(scheduler, steps, torch)
    out = []
    for i, base in enumerate(bases):
        mom = None
        if moms is not None and _momentum_of(groups[i]) is not None and np.ptp(moms[i]) > 0:
            mom = moms[i]
        out.append(Schedule(lrs[i] / base, f"torch:{name}", "finite", base_lr=base, momentum=mom))
    return out


def _horizon(scheduler: Any, steps: Any) -> int:
    """The number of steps to read, checked; an error names where a too-long horizon came
    from (the scheduler's own attribute, or ``steps``)."""
    if steps is None:
        found = horizon_of(scheduler)
        if found is None:
            return DEFAULT_STEPS
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
    """Step a copy of the scheduler on a stand-in optimizer; every group's lr and momentum
    (arrays ``(groups, steps)``). A scheduler with a last step (OneCycleLR's ``total_steps``)
    raises when stepped past it: the values after it are those of its last step (torch
    refuses to go on, and a run cannot either)."""
    stand_in = _stand_in(scheduler.optimizer, torch)
    clone = _rebind(scheduler, stand_in)
    groups = stand_in.param_groups
    lrs = np.empty((len(groups), steps))
    has_mom = all(_momentum_of(g) is not None for g in groups)
    moms = np.empty((len(groups), steps)) if has_mom else None

    def record(t: int) -> None:
        for i, g in enumerate(stand_in.param_groups):
            lrs[i, t] = g["lr"]
            if moms is not None:
                moms[i, t] = _momentum_of(g)

    # OneCycleLR's last step is total_steps: the values torch computes past it (before it
    # raises) are never used by a run, which must stop stepping it there
    total = getattr(scheduler, "total_steps", None)
    end = steps
    if isinstance(total, int) and not isinstance(total, bool):
        end = max(1, min(steps, total - max(0, int(scheduler.last_epoch))))
    record(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
        for t in range(1, steps):
            if t >= end:
                lrs[:, t:] = lrs[:, t - 1 : t]
                if moms is not None:
                    moms[:, t:] = moms[:, t - 1 : t]
                break
            try:
                clone.step()
            except ValueError as exc:  # "Tried to step N times": past its last step
                if "Tried to step" not in str(exc):
                    raise
                lrs[:, t:] = lrs[:, t - 1 : t]
                if moms is not None:
                    moms[:, t:] = moms[:, t - 1 : t]
                break
            record(t)
            if t % 65536 == 0:
                progress.update(f"replaying {type(scheduler).__name__}", t, steps)
    return lrs, moms


def _closed_form(scheduler: Any, steps: int) -> tuple[np.ndarray, None] | None:
    """Group 0's learning rates at the next ``steps`` steps from the closed form of the
    schedulers that have one (``None`` otherwise, or when the optimizer's current lr is not
    the closed form's value: someone changed it by hand)."""
    name = type(scheduler).__name__
    t = float(scheduler.last_epoch) + np.arange(steps, dtype=float)
    base = np.asarray(scheduler.base_lrs, dtype=float)[:, None]
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
    for i, g in enumerate(scheduler.optimizer.param_groups):
        if not math.isclose(float(lrs[i, 0]), float(g["lr"]), rel_tol=1e-9, abs_tol=1e-300):
            return None
    return lrs, None
