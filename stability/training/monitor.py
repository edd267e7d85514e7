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

The curvature is measured on the model's device (:mod:`stability.training.lanczos`), warm-started
from the previous check's eigenvector: a few Hessian-vector products per check. Under
``torch.distributed`` (a plain or ``DistributedDataParallel`` model, each rank with its share
of ``data``) every product is all-reduced, so every rank computes the same record, and every
rank warns, raises or calls back: all of them or none.
"""

from __future__ import annotations

import copy
import html
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, StabilityError, describe
from ..optimizers import from_optimizer
from ..regions.verdicts import stable_curvature_intervals
from .curvature import _adam_preconditioner
from .estimators import _positive_int
from .lanczos import HessianOperator, lanczos_top
from .schedulers import is_torch_scheduler, schedule_from_torch

__all__ = ["MonitorHistory", "MonitorRecord", "StabilityMonitor", "StabilityWarning"]


class StabilityWarning(UserWarning):
    """The sharpness is above the stability threshold, or the schedule will push it there."""


@dataclass(frozen=True)
class MonitorRecord:
    """One check after ``step`` optimizer steps: the learning rate, the (preconditioned)
    sharpness, the threshold of the current settings and their ratio, ``lr_limit`` (the largest
    learning rate with a ratio below 1 at this sharpness; ``None`` where the threshold does not
    scale with the lr), the first optimizer step whose scheduled lr is above that limit
    (``None``: none in the look-ahead), the loss on the monitored data, whether the run has
    collapsed (the loss is not finite, or well above its best: the ratio no longer describes
    it), the Hessian-vector products the check used and its wall time in seconds (``hvp_seconds``
    of it in the products)."""

    step: int
    lr: float
    sharpness: float
    threshold: float
    ratio: float
    crossing_step: int | None
    hvps: int
    loss: float = math.nan
    lr_limit: float | None = None
    collapsed: bool = False
    seconds: float = 0.0
    hvp_seconds: float = 0.0
    group: int = 0
    converged: bool = True

    def __str__(self) -> str:
        state = "COLLAPSED" if self.collapsed else ("above" if self.ratio > 1 else "below")
        cross = (
            f", the schedule crosses it at step {self.crossing_step}" if self.crossing_step else ""
        )
        limit = f", lr limit {self.lr_limit:.4g}" if self.lr_limit is not None else ""
        group = f" (param group {self.group})" if self.group else ""
        est = "" if self.converged else " [sharpness NOT converged: a lower bound]"
        return (
            f"step {self.step}: loss {self.loss:.4g}, sharpness {self.sharpness:.4g} / threshold "
            f"{self.threshold:.4g} = {self.ratio:.3g} ({state}) at lr {self.lr:.4g}{group}"
            f"{limit}{cross}{est}"
        )


class MonitorHistory(list):
    """The monitor's records, with a table for notebooks (figure:
    :func:`stability.plots.plot_monitor`)."""

    def __repr__(self) -> str:
        if not self:
            return "MonitorHistory(no checks yet)"
        worst = max(self, key=lambda r: r.ratio if math.isfinite(r.ratio) else math.inf)
        return (
            f"MonitorHistory({len(self)} checks, steps {self[0].step}..{self[-1].step}; "
            f"largest ratio {worst.ratio:.3g} at step {worst.step}"
            f"{'; COLLAPSED' if any(r.collapsed for r in self) else ''})"
        )

    def _repr_html_(self) -> str:
        head = "".join(
            f"<th>{h}</th>"
            for h in ("step", "lr", "loss", "sharpness", "threshold", "ratio", "lr limit",
                      "crossing step", "HVPs", "seconds")
        )  # fmt: skip

        def cell(x: Any) -> str:
            return "" if x is None else (f"{x:.4g}" if isinstance(x, float) else str(x))

        rows = "".join(
            f"<tr style='color:{'#c62828' if r.collapsed or r.ratio > 1 else 'inherit'}'>"
            + "".join(
                f"<td>{cell(v)}</td>"
                for v in (
                    r.step,
                    r.lr,
                    r.loss,
                    r.sharpness,
                    r.threshold,
                    r.ratio,
                    r.lr_limit,
                    r.crossing_step,
                    r.hvps,
                    r.seconds,
                )
            )
            + "</tr>"
            for r in self
        )
        return f"<p>{html.escape(repr(self))}</p><table><tr>{head}</tr>{rows}</table>"


def _thresholds(optimizer: Any) -> list[tuple[float, bool, bool]]:
    """:func:`_threshold` of every param group; a group whose learning rate is 0 (annealed to
    the end of a schedule) takes no step, so nothing can grow: its threshold is infinite."""
    groups = optimizer.param_groups
    idle = [float(g["lr"]) == 0 for g in groups]
    reader = optimizer
    if any(idle):
        reader = copy.copy(optimizer)  # the settings read with lr 1 where it is 0
        reader.param_groups = [
            dict(g, lr=1.0) if z else g for g, z in zip(groups, idle, strict=True)
        ]
    out = [_threshold(opt) for opt in from_optimizer(reader)]
    return [(math.inf, True, t[2]) if z else t for t, z in zip(out, idle, strict=True)]


def _threshold(opt: Any) -> tuple[float, bool, bool]:
    """(largest stable curvature at a group's current settings, whether it scales as 1/lr,
    whether the optimizer is adaptive: its curvature is that of ``P^-1 H``)."""
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
        if data is None:
            raise ConfigError(
                "data must be the batch (x, y) or the batches the curvature is measured on, "
                "got None"
            )
        if not _is_module(model):
            raise ConfigError(f"model must be a torch.nn.Module, got {describe(model)}")
        if scheduler is not None and not is_torch_scheduler(scheduler):
            raise ConfigError(
                f"scheduler must be a torch.optim.lr_scheduler object or None, got "
                f"{describe(scheduler)}"
            )
        self.model, self.loss_fn, self.optimizer, self.data = model, loss_fn, optimizer, data
        self.scheduler, self.every, self.on_unstable = scheduler, every, on_unstable
        self.tolerance, self.iters, self.lookahead = float(tolerance), int(iters), int(lookahead)
        self.history = MonitorHistory()
        self._calls = 0
        self._vector: np.ndarray | None = None
        self._best_loss = math.inf
        self._reported_collapse = False
        self._thresholds: dict[Any, list[tuple[float, bool, bool]]] = {}
        self._threshold()  # refuses optimizers the package cannot analyse, now

    def step(self) -> MonitorRecord | None:
        """Count an optimizer step; after the first and then every ``every`` steps run a check
        and return its record (``record.step`` counts optimizer steps: 1 after the first)."""
        self._calls += 1
        if self._calls != 1 and self._calls % self.every:
            return None
        record = self.check()
        if record.collapsed:
            if not self._reported_collapse:
                self._reported_collapse = True
                self._act(record)
        elif record.ratio > 1 + self.tolerance or record.crossing_step is not None:
            self._act(record)
        return record

    def check(self) -> MonitorRecord:
        """Estimate the sharpness now (after ``step`` optimizer steps) and compare it with the
        threshold of the param group that sets the limit."""
        import torch

        start = time.perf_counter()
        thresholds = self._threshold()
        adaptive = thresholds[0][2]
        lrs = [float(g["lr"]) for g in self.optimizer.param_groups]
        joint = _joint(thresholds, lrs)
        top = None
        buffers = [b.detach().clone() for b in self.model.buffers()]
        with self._rng_untouched():
            pre, members = self._preconditioner(adaptive, lrs if joint else None)
            op = HessianOperator(self.model, self.loss_fn, self.data, preconditioner=pre)
            loss = op.loss()  # the forward pass the products reuse
            if math.isfinite(loss):
                top = lanczos_top(
                    op, 1, tol=1e-4, v0=self._vector, maxiter=self.iters, seed=self._calls
                )
        with torch.no_grad():
            for b, saved in zip(self.model.buffers(), buffers, strict=True):
                b.copy_(saved)
        hvp_seconds = op.seconds
        self._best_loss = min(self._best_loss, loss) if math.isfinite(loss) else self._best_loss
        collapsed = not math.isfinite(loss) or (
            loss > 2 * self._best_loss + 1e-12 and len(self.history) > 0
        )
        sharp = top.sharpness if top is not None else math.nan
        if top is not None:
            self._vector = top.vectors[:, 0]
        group, sharp_g = _limiting(thresholds, lrs, sharp, joint, top, members)
        threshold, scales, _ = thresholds[group]
        lr = lrs[group]
        ratio = sharp_g / threshold if threshold > 0 else math.inf
        ok = scales and sharp_g > 0 and 0 < threshold < math.inf
        limit = lr * threshold / sharp_g if ok else None
        record = MonitorRecord(
            self._calls,
            lr,
            sharp_g,
            threshold,
            ratio,
            None if collapsed else self._crossing(sharp_g, threshold, lr, scales, group),
            top.matvecs if top is not None else 0,
            loss,
            limit,
            collapsed,
            time.perf_counter() - start,
            hvp_seconds,
            group,
            top.converged if top is not None else True,
        )
        self.history.append(record)
        return record

    def _preconditioner(self, adaptive: bool, lrs: list[float] | None) -> tuple[Any, Any]:
        """``P`` of the operator ``P^-1/2 H P^-1/2`` the check measures, and each trainable
        parameter's group (``None`` with one group): Adam's ``sqrt(v_hat) + eps``, and with
        several groups that differ only in their learning rates ``lr_max / lr_g`` (the joint
        dynamics see ``D^1/2 H D^1/2``, ``D`` the per-parameter learning rates relative to the
        largest); a parameter in no group does not move and is left out (``P`` huge)."""
        import torch

        groups = self.optimizer.param_groups
        pre = _adam_preconditioner(self.optimizer) if adaptive else None
        if len(groups) == 1:
            return pre, None
        where = {id(p): i for i, g in enumerate(groups) for p in g["params"]}
        params = [p for p in self.model.parameters() if p.requires_grad]
        owner = [where.get(id(p), -1) for p in params]
        members = np.repeat(owner, [p.numel() for p in params])  # each entry's group
        if lrs is None:
            return pre, members
        top = max(lrs)
        parts = [
            torch.full((p.numel(),), top / lrs[g] if g >= 0 and lrs[g] > 0 else 1e12)
            for p, g in zip(params, owner, strict=True)
        ]
        scale = torch.cat(parts).to(params[0].device)
        if pre is not None and pre.numel() != scale.numel():
            pre = None  # Adam's state covers parameters outside the model: measured plain
        return (scale if pre is None else pre * scale), members

    def _threshold(self) -> list[tuple[float, bool, bool]]:
        """:func:`_threshold` of every group's current settings, remembered per settings (the
        exact stable interval is a sympy computation; schedules revisit few settings)."""
        key = (
            type(self.optimizer).__name__,
            tuple(
                tuple(sorted((k, repr(v)) for k, v in g.items() if k != "params"))
                for g in self.optimizer.param_groups
            ),
        )
        if key not in self._thresholds:
            if len(self._thresholds) > 256:
                self._thresholds.clear()
            self._thresholds[key] = _thresholds(self.optimizer)
        return self._thresholds[key]

    def _rng_untouched(self) -> Any:
        """The RNG state of the model's device (and the host) restored after the block."""
        import torch

        device = next(self.model.parameters()).device
        return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])

    def _crossing(
        self, sharp: float, threshold: float, lr: float, scales: bool, group: int = 0
    ) -> int | None:
        """First future step at which ``threshold(lr_t) < sharpness`` (threshold ~ 1/lr), in
        the schedule of the group that sets the limit; a scheduler past its last step keeps
        its last learning rate (torch refuses to step it further)."""
        if self.scheduler is None or not scales or not sharp > 0 or sharp >= threshold:
            return None
        if self.lookahead < 2 or type(self.scheduler).__name__ == "ReduceLROnPlateau":
            return None  # a plateau scheduler cannot be predicted: each check reads the lr
        future = schedule_from_torch(self.scheduler, self.lookahead, group=group).values
        now = future[0]
        if not now > 0:
            return None
        limits = threshold * now / np.maximum(future, 1e-300)
        above = np.flatnonzero(limits < sharp)
        # future[0] is the lr of the next optimizer step, number calls + 1
        return self._calls + 1 + int(above[0]) if above.size else None

    def _act(self, record: MonitorRecord) -> None:
        """Warn, raise or call back with a message that says what to change."""
        what = self._message(record)
        if callable(self.on_unstable):
            self.on_unstable(record)
        elif self.on_unstable == "raise":
            raise StabilityError(what)
        else:
            warnings.warn(what, StabilityWarning, stacklevel=3)

    def _message(self, r: MonitorRecord) -> str:
        if r.collapsed:
            return (
                f"step {r.step}: the run has collapsed: the loss is {r.loss:.4g} (its best was "
                f"{self._best_loss:.4g}); the sharpness ratio ({r.ratio:.3g}) no longer describes "
                "it. Restart from a checkpoint before the rise with a lower learning rate "
                f"(the last limit seen: {self._last_limit()})"
            )
        limit = f"{r.lr_limit:.4g}" if r.lr_limit is not None else "lower"
        if r.ratio > 1 + self.tolerance:
            return (
                f"step {r.step}: sharpness {r.sharpness:.4g} is {r.ratio:.3g}x the stability "
                f"threshold {r.threshold:.4g} of lr {r.lr:.4g}: at this sharpness the largest "
                f"stable lr is {limit}; lower the lr below it (e.g. to "
                f"{0.9 * (r.lr_limit or r.lr / r.ratio):.4g}), or expect the edge of stability "
                "(the loss stops decreasing monotonically while the sharpness adapts)"
            )
        future = schedule_from_torch(self.scheduler, self.lookahead, group=r.group).values
        base = float(self.optimizer.param_groups[r.group]["lr"]) / max(float(future[0]), 1e-300)
        peak = base * float(future.max())
        cross = r.crossing_step or r.step
        before = base * float(future[max(cross - r.step - 2, 0)])
        return (
            f"step {r.step}: at the current sharpness {r.sharpness:.4g} the largest stable lr is "
            f"{limit}; the schedule passes it at step {cross} (it peaks at {peak:.4g}). Cap the "
            f"schedule at {limit} (scale it by {(r.lr_limit or peak) / peak:.3g}), or end the "
            f"warm-up at step {cross - 1} (lr {before:.4g})"
        )

    def _last_limit(self) -> str:
        limits = [r.lr_limit for r in self.history if r.lr_limit is not None and not r.collapsed]
        return f"lr {limits[-1]:.4g}" if limits else "none measured"


def _is_module(model: Any) -> bool:
    import torch

    return isinstance(model, torch.nn.Module)


def _joint(thresholds: list[tuple[float, bool, bool]], lrs: list[float]) -> bool:
    """Whether several groups differ only in their learning rates (each threshold scales as
    ``1/lr`` with one constant ``lr_g threshold_g``): their joint dynamics are then exactly
    those of one group on ``D^1/2 H D^1/2``."""
    if len(lrs) < 2 or not all(lr > 0 for lr in lrs) or not all(t[1] for t in thresholds):
        return False
    c = [lr * t[0] for lr, t in zip(lrs, thresholds, strict=True)]
    return max(c) - min(c) <= 1e-9 * max(c)


def _limiting(
    thresholds: list[tuple[float, bool, bool]],
    lrs: list[float],
    sharp: float,
    joint: bool,
    top: Any,
    members: Any,
) -> tuple[int, float]:
    """The group that sets the limit and the sharpness it is compared with. Joint: the
    measured ``lambda_max(D^1/2 H D^1/2)`` against the threshold of the largest learning
    rate, named after the group that holds most of the top eigenvector; otherwise each group's
    threshold against the whole sharpness (sufficient: a group's own block curvature is at
    most that), the largest ratio."""
    if len(lrs) == 1:
        return 0, sharp
    if joint:
        ref = int(np.argmax(lrs))
        if top is None or members is None:
            return ref, sharp
        v = top.vectors[:, 0].double().cpu().numpy() ** 2
        ids = np.asarray(members)
        g = int(np.argmax([float(v[ids == i].sum()) for i in range(len(lrs))]))
        # the same ratio in group g's terms: the curvature its own lr would have to see
        return g, sharp * lrs[ref] / lrs[g]
    ratios = [sharp / t[0] if t[0] > 0 else math.inf for t in thresholds]
    return int(np.nanargmax(ratios)) if not all(math.isnan(r) for r in ratios) else 0, sharp
