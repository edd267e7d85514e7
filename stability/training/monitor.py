"""Watching stability during training: the sharpness against the threshold of the optimizer's
current settings, with a look-ahead along the learning-rate scheduler (docs §6.5, the edge of
stability).

A check at initialisation is not enough: in full-batch training the sharpness rises until it
reaches the stability threshold (the edge of stability) and a learning-rate rise (warm-up,
restarts) can push it over. Every ``every`` steps :class:`StabilityMonitor` estimates the top
Hessian eigenvalue (for Adam: of ``P^-1 H``, the preconditioned curvature) by a few Lanczos
iterations warm-started from the previous eigenvector, compares it with the threshold the
package derives for the optimizer's current settings, and looks ahead along a copy of the
scheduler for the first step at which the scheduled learning rate would cross the limit at
the current curvature. Ratios near 1 mean "at the edge" (loss may be non-monotone); a ratio
above ``1 + tolerance`` or a predicted crossing triggers the chosen action.

The monitor leaves the run it watches unchanged: Hessian-vector products use
``torch.autograd.grad`` (no ``.grad`` written), the torch RNG state is restored, module
buffers (batch-norm statistics) are restored, and the optimizer and scheduler are only read.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, StabilityError, describe
from ..optimizers import from_optimizer
from ..regions.verdicts import stable_curvature_intervals
from .curvature import (
    _positive_int,
    adam_preconditioner,
    hessian_matvec,
    preconditioned,
    top_eigenvalues,
)
from .schedulers import is_torch_scheduler, schedule_from_torch

__all__ = ["MonitorRecord", "StabilityMonitor", "StabilityWarning"]


class StabilityWarning(UserWarning):
    """The sharpness is above the stability threshold, or the schedule will push it there."""


@dataclass(frozen=True)
class MonitorRecord:
    """One check: the step, learning rate, (preconditioned) sharpness, threshold, their ratio,
    the first future step whose scheduled lr crosses the limit (``None``: none in the
    look-ahead), and the Hessian-vector products the check cost."""

    step: int
    lr: float
    sharpness: float
    threshold: float
    ratio: float
    crossing_step: int | None
    hvps: int


def _threshold(optimizer: Any) -> tuple[float, bool, bool]:
    """(largest stable curvature at the current settings, whether it scales as 1/lr, whether
    the optimizer is adaptive: its curvature is that of ``P^-1 H``)."""
    opt = from_optimizer(optimizer)[0]
    adaptive = opt.kind is not None and opt.kind.family == "adam"
    intervals = stable_curvature_intervals(opt.algorithm.to_exact())
    if not intervals or intervals[0][0] != 0:
        return 0.0, False, adaptive
    shift = float(opt.curvature_shift)
    scales = not (opt.kind is not None and opt.kind.decoupled) or shift == 0
    return float(intervals[0][1]) - shift, scales, adaptive


class StabilityMonitor:
    """Watch ``sharpness / threshold`` while training (call :meth:`step` after each optimizer
    step). ``on_unstable`` is ``"warn"`` (a :class:`StabilityWarning`), ``"raise"`` (a
    :class:`~stability.StabilityError`) or a callable taking the :class:`MonitorRecord`.

    ``data`` is the batch ``(x, y)`` (or batches) the curvature is measured on; ``iters`` the
    Lanczos iterations per check (about ``iters + 1`` Hessian-vector products, each about two
    backward passes); ``lookahead`` the scheduler steps examined.
    """

    def __init__(
        self,
        model: Any,
        loss_fn: Callable[..., Any],
        optimizer: Any,
        data: Any,
        *,
        scheduler: Any = None,
        every: int = 10,
        on_unstable: str | Callable[[MonitorRecord], Any] = "warn",
        tolerance: float = 0.05,
        iters: int = 20,
        lookahead: int = 200,
    ) -> None:
        every = _positive_int(every, "every")
        iters = _positive_int(iters, "iters", 10_000)
        if isinstance(lookahead, bool) or not isinstance(lookahead, int) or lookahead < 0:
            raise ConfigError(
                f"lookahead must be an integer >= 0 (0: no look-ahead), got {describe(lookahead)}"
            )
        if lookahead > 10**6:
            raise ConfigError(f"lookahead must be at most 1,000,000 steps, got {lookahead:,}")
        if not (callable(on_unstable) or on_unstable in ("warn", "raise")):
            raise ConfigError(
                f"on_unstable must be 'warn', 'raise' or a callable, got {describe(on_unstable)}"
            )
        if (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, int | float)
            or not 0 <= tolerance < 1
        ):
            raise ConfigError(f"tolerance must be in [0, 1), got {describe(tolerance)}")
        if scheduler is not None and not is_torch_scheduler(scheduler):
            raise ConfigError(
                f"scheduler must be a torch.optim.lr_scheduler object or None, got "
                f"{describe(scheduler)}"
            )
        self.model, self.loss_fn, self.optimizer, self.data = model, loss_fn, optimizer, data
        self.scheduler, self.every, self.on_unstable = scheduler, every, on_unstable
        self.tolerance, self.iters, self.lookahead = float(tolerance), int(iters), int(lookahead)
        self.history: list[MonitorRecord] = []
        self._calls = 0
        self._vector: np.ndarray | None = None
        _threshold(optimizer)  # refuses optimizers the package cannot analyse, now

    def step(self) -> MonitorRecord | None:
        """Count a training step; every ``every`` steps run a check and return its record."""
        self._calls += 1
        if (self._calls - 1) % self.every:
            return None
        record = self.check()
        if record.ratio > 1 + self.tolerance or record.crossing_step is not None:
            self._act(record)
        return record

    def check(self) -> MonitorRecord:
        """Estimate the sharpness now and compare it with the threshold."""
        import torch

        buffers = [b.detach().clone() for b in self.model.buffers()]
        with torch.random.fork_rng(devices=[]):
            matvec, n = hessian_matvec(self.model, self.loss_fn, self.data)
            threshold, scales, adaptive = _threshold(self.optimizer)
            if adaptive:
                matvec = preconditioned(matvec, adam_preconditioner(self.optimizer))
            try:
                top = top_eigenvalues(
                    matvec, n, 1, tol=1e-4, v0=self._vector, maxiter=self.iters, seed=self._calls
                )
            except StabilityError:
                top = None
        with torch.no_grad():
            for b, saved in zip(self.model.buffers(), buffers, strict=True):
                b.copy_(saved)
        if top is None:
            raise StabilityError("the sharpness estimate did not converge in the iterations")
        self._vector = top.vectors[:, 0]
        lr = float(self.optimizer.param_groups[0]["lr"])
        sharp = top.sharpness
        ratio = sharp / threshold if threshold > 0 else math.inf
        record = MonitorRecord(
            self._calls - 1,
            lr,
            sharp,
            threshold,
            ratio,
            self._crossing(sharp, threshold, lr, scales),
            top.matvecs,
        )
        self.history.append(record)
        return record

    def _crossing(self, sharp: float, threshold: float, lr: float, scales: bool) -> int | None:
        """First future step at which ``threshold(lr_t) < sharpness`` (threshold ~ 1/lr)."""
        if self.scheduler is None or not scales or not sharp > 0 or sharp >= threshold:
            return None
        if self.lookahead < 2 or type(self.scheduler).__name__ == "ReduceLROnPlateau":
            return None  # a plateau scheduler cannot be predicted: each check reads the lr
        future = schedule_from_torch(self.scheduler, self.lookahead).values
        now = future[0]
        if not now > 0:
            return None
        limits = threshold * now / np.maximum(future, 1e-300)
        above = np.flatnonzero(limits < sharp)
        return self._calls - 1 + int(above[0]) if above.size else None

    def _act(self, record: MonitorRecord) -> None:
        what = (
            f"step {record.step}: sharpness {record.sharpness:.4g} is "
            f"{record.ratio:.3g} x the stability threshold {record.threshold:.4g} at lr "
            f"{record.lr:.4g}"
        )
        if record.crossing_step is not None and record.ratio <= 1 + self.tolerance:
            what = (
                f"step {record.step}: at the current sharpness {record.sharpness:.4g} the "
                f"scheduled learning rate crosses the stability limit at step "
                f"{record.crossing_step}"
            )
        if callable(self.on_unstable):
            self.on_unstable(record)
        elif self.on_unstable == "raise":
            raise StabilityError(what)
        else:
            warnings.warn(what, StabilityWarning, stacklevel=3)
