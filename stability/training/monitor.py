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
from .curvature import _adam_preconditioner_for
from .estimators import _positive_int
from .lanczos import HessianOperator, distributed_world, lanczos_top
from .minibatch_edge import batching
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
    collapsed (the loss is not finite, or above 10 times the first check's: the ratio no longer
    describes it), the Hessian-vector products the check used and its wall time in seconds
    (``hvp_seconds`` of it in the products).

    With a batch size (mini-batch monitoring) also ``noise_ratio``, the learning rate over
    ``noise_lr_limit``, the largest lr with a certified mean-square ``rho < 1`` at that batch
    size (to 1 %), and ``rho`` at the current lr; ``ratio`` and ``lr_limit`` are then the worse
    of the two edges. ``sharpness_ratio`` is always the full-batch ``sharpness / threshold``."""

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
    batch_size: int | None = None
    noise_ratio: float = math.nan
    noise_lr_limit: float | None = None
    rho: float = math.nan
    crossing_from: str = ""

    @property
    def sharpness_ratio(self) -> float:
        """``sharpness / threshold``: the full-batch (noiseless) ratio."""
        return self.sharpness / self.threshold if self.threshold > 0 else math.inf

    def __str__(self) -> str:
        state = "COLLAPSED" if self.collapsed else ("above" if self.ratio > 1 else "below")
        cross = (
            f", the schedule crosses it at step {self.crossing_step}" if self.crossing_step else ""
        )
        limit = f", lr limit {self.lr_limit:.4g}" if self.lr_limit is not None else ""
        group = f" (param group {self.group})" if self.group else ""
        est = "" if self.converged else " [sharpness NOT converged: a lower bound]"
        head = (
            f"step {self.step}: loss {self.loss:.4g}, sharpness {self.sharpness:.4g} / threshold "
            f"{self.threshold:.4g} = {self.sharpness_ratio:.3g}"
        )
        if self.batch_size is not None and math.isfinite(self.noise_ratio):
            head += (
                f"; at B = {self.batch_size} lr / mean-square limit "
                f"{self.lr:.4g} / {self.noise_lr_limit or 0:.4g} = {self.noise_ratio:.3g} "
                f"(rho {self.rho:.3g}); ratio {self.ratio:.3g}"
            )
        return f"{head} ({state}) at lr {self.lr:.4g}{group}{limit}{cross}{est}"


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
            f"{_collapse_note(self)})"
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


def _collapse_note(history: list[MonitorRecord]) -> str:
    steps = [r.step for r in history if r.collapsed]
    if not steps:
        return ""
    if history[-1].collapsed:
        return f"; COLLAPSED from step {steps[0]}"
    return f"; COLLAPSED at step(s) {', '.join(map(str, steps[:5]))}, since recovered"


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
    """Watch the stability ratio while training (call :meth:`step` after each optimizer step).
    ``on_unstable`` is ``"warn"`` (a :class:`StabilityWarning`), ``"raise"`` (a
    :class:`~stability.StabilityError`) or a callable taking the :class:`MonitorRecord`.

    ``data`` is the batch ``(x, y)`` (or batches) the curvature is measured on; ``iters`` the
    most Lanczos iterations per check (each a Hessian-vector product, about two backward
    passes); ``lookahead`` the scheduler steps examined.

    **When it checks.** ``every="auto"`` (the default) spaces the checks so that they take
    about ``overhead`` (5 %) of the run's time: a check is due once the monitor's time so far
    plus one more check (as long as the last one) is at most ``overhead`` times the training
    time so far (measured between calls of :meth:`step`). The first check is after the first
    step (it also pays one-time costs: imports, the exact thresholds). An integer ``every``
    checks after the first step and every ``every`` steps. For Adam, the steps between checks
    follow the decay of ``v_t`` (below); a check is run early when it is predicted to reach
    the edge. Checks also come early when the learning rate rises (a schedule the monitor
    was not given: the last check's ``lr / lr_limit``, the ratio now at the same curvature,
    passes ``max(0.5, 1.2 x`` its ratio), when the ratio's trend over the last two checks
    reaches 1 (by half the steps it takes, once the ratio is 0.5 or more), and half a
    look-ahead before a crossing the schedule makes beyond the look-ahead, which with
    ``every="auto"`` extends to four times the expected steps between checks.

    **Mini-batch training.** ``batch_size=B`` (with ``dataset_size=n`` when known), or
    ``loader=`` the training ``DataLoader``, makes the ratio the one of the run being watched:
    besides ``sharpness / threshold``, the learning rate over the mean-square limit at that
    batch size, from the per-sample Gauss-Newton curvature of ``data`` in its top ``rank``
    directions (found by Lanczos at the first check, then tracked by one block-Krylov step
    per check: ``3 rank`` passes over ``data``; and a small search;
    :mod:`stability.training.minibatch_edge`). The record's ``ratio`` is
    the larger of the two, ``lr_limit`` the smaller limit. It needs ``loss_fn`` to be
    ``MSELoss()`` or ``CrossEntropyLoss()`` (or their functional forms, mean reduction) and
    ``data = (x, y)``. With the whole data set as the batch the ratio is the full-batch one.
    Under ``torch.distributed`` the mean-square limit is rank 0's (from its share of the
    samples), broadcast, and every rank checks when any rank's budget says so.

    **Adam.** The preconditioner is Adam's live ``sqrt(v_hat) + eps``, frozen at each check.
    Between checks, each step bounds how far the preconditioner alone can have moved the
    ratio: ``ratio * max_i P_i(check) / P_i(now)`` (a few operations per parameter; the
    operators are congruent by ``diag(sqrt(P(check)/P(now)))``; read as often as 1 % of the
    training time allows, and at least every 100 steps). When ``v_t`` decays (Bai et
    al. 2025: small gradients, ``v`` falling like ``beta2^t``) the bound climbs, and a full
    check is run as soon as it passes 1 (or 1.2 times the last check's ratio, when that was
    already above 1): the check says whether the curvature followed. A check whose ratio is
    0.9 or more (up to ``1 + tolerance``) and has risen since the last one warns of the step
    at which it reaches 1 at that geometric rate (within the look-ahead): the spike's lead
    time.

    **Collapse.** A check whose loss is not finite or above 10 times the first check's loss
    is marked collapsed (the ratio no longer describes the run) and reported once; a later
    check below that mark clears it.
    """

    def __init__(
        self,
        model: Any,
        loss_fn: Callable[..., Any],
        optimizer: Any,
        data: Any,
        *,
        scheduler: Any = None,
        every: int | str = "auto",
        on_unstable: str | Callable[[MonitorRecord], Any] = "warn",
        tolerance: float = 0.05,
        iters: int = 20,
        lookahead: int = 200,
        overhead: float = 0.05,
        batch_size: int | None = None,
        dataset_size: int | None = None,
        loader: Any = None,
        rank: int = 8,
    ) -> None:
        if every != "auto":
            every = _positive_int(every, "every")
        iters = _positive_int(iters, "iters", 10_000)
        rank = _positive_int(rank, "rank", 256)
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
        if (
            isinstance(overhead, bool)
            or not isinstance(overhead, int | float)
            or not 0 < overhead <= 1
        ):
            raise ConfigError(
                f"overhead must be in (0, 1] (a fraction of the training time), got "
                f"{describe(overhead)}"
            )
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
        self.batching = batching(batch_size, loader, dataset_size)
        self._ggn_loss = None
        if self.batching is not None and not self.batching.full_batch:
            self._ggn_loss = _ggn_loss(loss_fn)
            _check_inputs(data, self.batching)
        self.model, self.loss_fn, self.optimizer, self.data = model, loss_fn, optimizer, data
        self.scheduler, self.every, self.on_unstable = scheduler, every, on_unstable
        self.tolerance, self.iters, self.lookahead = float(tolerance), int(iters), int(lookahead)
        self.overhead, self.rank = float(overhead), rank
        self.history = MonitorHistory()
        self._calls = 0
        self._vector: np.ndarray | None = None
        self._first_loss = math.nan
        self._best_loss = math.inf
        self._reported_collapse = False
        self._thresholds: dict[Any, list[tuple[float, bool, bool]]] = {}
        self._memo: dict[Any, Any] = {}
        self._ggn_dirs: Any = None  # the top Gauss-Newton directions, tracked
        self._quiet_until = 0  # a predicted crossing already warned of
        self._train_seconds = 0.0  # training time since the last check
        self._due_step: float = math.inf  # a check is due by this step at the latest
        self._since = 0  # steps since the last check
        self._far: int | None = None  # a crossing seen beyond the look-ahead
        self._watch: Any = None  # Adam: (P at the check, its sharpness ratio)
        self._drift_next = 0  # the step the Adam bound is read next (at most 1 % of the time)
        self._drift_cost = math.inf  # the cheapest read of it so far
        self.monitor_seconds = 0.0
        self.training_seconds = 0.0
        self._threshold()  # refuses optimizers the package cannot analyse, now
        self._last_return = time.perf_counter()  # the first step's time counts as training

    def step(self) -> MonitorRecord | None:
        """Count an optimizer step; run a check when one is due (see the class docstring) and
        return its record (``record.step`` counts optimizer steps: 1 after the first)."""
        now = time.perf_counter()
        gap = now - self._last_return
        self._train_seconds += gap
        self.training_seconds += gap
        self._calls += 1
        self._since += 1
        try:
            if not self._agreed(self._due()):
                return None
            record = self.check()
            if record.collapsed:
                if not self._reported_collapse:
                    self._reported_collapse = True
                    self._act(record)
            else:
                self._reported_collapse = False
                if self._alarming(record) or record.crossing_step is not None:
                    self._act(record)
            return record
        finally:
            self._last_return = time.perf_counter()
            self.monitor_seconds += self._last_return - now

    def _agreed(self, due: bool) -> bool:
        """Under ``torch.distributed`` every rank checks when any rank finds a check due (the
        time budget is measured per rank; a check all-reduces its products, so the ranks must
        enter it together): one all-reduce of a flag per step."""
        world = distributed_world()
        if world is None:
            return due
        import torch

        device = next(self.model.parameters()).device
        flag = torch.tensor([1.0 if due else 0.0], device=device)
        world.all_reduce(flag, op=world.ReduceOp.MAX)
        return bool(flag.item() > 0)

    def _alarming(self, r: MonitorRecord) -> bool:
        """Whether a check's ratio calls for action: above ``1 + tolerance``, or above
        ``1 - tolerance`` when the learning rate has risen since the last check (a ramp the
        monitor was not told about is about to cross). With cross-entropy the mean-square
        part counts only once the loss is above the first check's: cross-entropy saturates
        where the linearised noise would grow (healthy runs of small MLPs on sklearn's digits,
        wine and breast_cancer at their best learning rate, B = 32, momentum 0.9, showed
        mean-square ratios of 1.2-2.0 early on, and loss bumps between checks), so that ratio
        alone would cry wolf."""
        before = [h for h in self.history[:-1] if not h.collapsed]
        rising = bool(before) and r.lr > 1.01 * before[-1].lr and r.group == before[-1].group
        edge = 1 - self.tolerance if rising else 1 + self.tolerance  # a rising lr at the edge
        if r.sharpness_ratio > edge:
            return True
        if not (math.isfinite(r.noise_ratio) and r.noise_ratio > edge):
            return False
        if self._ggn_loss != "cross_entropy":
            return True
        return r.loss > self._first_loss  # the run has undone its progress

    @property
    def overhead_measured(self) -> float:
        """The monitor's share of the wall time between the first and the last :meth:`step`."""
        total = self.monitor_seconds + self.training_seconds
        return self.monitor_seconds / total if total > 0 else 0.0

    def _due(self) -> bool:
        if self._calls == 1:
            return True
        if self._watch is not None and self._calls >= self._drift_next:
            start = time.perf_counter()
            drifted = self._drifted()
            self._drift_cost = min(self._drift_cost, time.perf_counter() - start)  # load spikes
            per_step = self.training_seconds / max(self._calls - 1, 1)
            gap = math.ceil(self._drift_cost / (0.01 * max(per_step, 1e-9)))
            self._drift_next = self._calls + min(max(1, gap), 100)
            last = self._watch[1]
            if drifted > (1.0 if last < 1 else 1.2 * last):
                return True  # Adam's v_t has moved the ratio past the edge since the last check
        if self._calls >= self._due_step:
            return True  # the trend of the ratio, or a crossing beyond the look-ahead
        if self._lr_rose():
            return True
        if self.every == "auto":  # the whole run's share, the next check included
            last = self.history[-1].seconds if self.history else 0.0
            return self.monitor_seconds + last <= self.overhead * self.training_seconds
        return self._calls % self.every == 0

    def _lr_rose(self) -> bool:
        """The learning rate has risen since the last check (a schedule the monitor was not
        given, a manual ramp) so that ``lr / lr_limit`` of that check, which at the same
        curvature is the ratio now, has passed ``max(0.5, 1.2 x`` its ratio): checks come
        closer as the ratio approaches 1."""
        if not self.history:
            return False
        last = self.history[-1]
        if last.collapsed or not last.lr_limit or not math.isfinite(last.ratio):
            return False
        lr = float(self.optimizer.param_groups[last.group]["lr"])
        return lr / last.lr_limit >= max(0.5, 1.2 * last.ratio)

    def _drifted(self) -> float:
        """Adam: the most the ratio can have grown to since the last check through the
        preconditioner alone, ``ratio * max_i P_i(check) / P_i(now)`` (``P^-1/2 H P^-1/2``
        is congruent to the last check's operator by ``diag(sqrt(P(check) / P(now)))``)."""
        import torch

        p_then, ratio = self._watch
        with torch.no_grad():
            p_now = self._live_preconditioner()
            if p_now is None or p_now.numel() != p_then.numel():
                return 0.0
            return float(ratio * torch.max(p_then / p_now))

    def _live_preconditioner(self) -> Any:
        try:
            params = [p for p in self.model.parameters() if p.requires_grad]
            return _adam_preconditioner_for(self.optimizer, params)
        except ConfigError:
            return None

    def check(self) -> MonitorRecord:
        """Estimate the sharpness now (after ``step`` optimizer steps) and compare it with the
        threshold of the param group that sets the limit (and, for mini-batch training, the
        learning rate with the mean-square limit)."""
        import torch

        start = time.perf_counter()
        thresholds = self._threshold()
        adaptive = thresholds[0][2]
        lrs = [float(g["lr"]) for g in self.optimizer.param_groups]
        joint = _joint(thresholds, lrs)
        top = None
        noisy = self._ggn_loss is not None and (len(lrs) == 1 or joint)
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
        if math.isnan(self._first_loss):
            self._first_loss = loss
        self._best_loss = min(self._best_loss, loss) if math.isfinite(loss) else self._best_loss
        collapsed = not math.isfinite(loss) or loss > 10 * self._first_loss + 1e-12
        sharp = top.sharpness if top is not None else math.nan
        if top is not None:
            self._vector = top.vectors[:, 0]
        group, sharp_g = _limiting(thresholds, lrs, sharp, joint, top, members)
        threshold, scales, _ = thresholds[group]
        lr = lrs[group]
        ratio = sharp_g / threshold if threshold > 0 else math.inf
        ok = scales and sharp_g > 0 and 0 < threshold < math.inf
        limit = lr * threshold / sharp_g if ok else None
        noise_ratio, noise_limit, rho = math.nan, None, math.nan
        if noisy and top is not None and not collapsed:
            with self._rng_untouched():
                noise_limit, rho = self._mean_square(pre, group, lrs)
            if noise_limit is not None:
                noise_ratio = lrs[group] / noise_limit if noise_limit > 0 else math.inf
                ratio = max(ratio, noise_ratio)
                limit = noise_limit if limit is None else min(limit, noise_limit)
        crossing = self._far = None
        if not collapsed and limit is not None and ratio < 1 and self._settled(adaptive):
            crossing = self._crossing(limit, lr, group, self._horizon(time.perf_counter() - start))
            if crossing is not None and crossing > self._calls + self.lookahead:
                self._far, crossing = crossing, None  # not a warning yet: check before it
        crossing_from = "schedule" if crossing is not None else ""
        edge = 1 + self.tolerance
        if crossing is None and adaptive and not collapsed and 0.9 <= ratio <= edge:
            crossing = self._adam_trend(ratio)
            crossing_from = "preconditioner trend" if crossing is not None else ""
        if crossing is not None and self._calls < self._quiet_until:
            crossing = None  # a crossing still ahead was warned of at an earlier check
        record = MonitorRecord(
            self._calls,
            lr,
            sharp_g,
            threshold,
            ratio,
            crossing,
            top.matvecs if top is not None else 0,
            loss,
            limit,
            collapsed,
            time.perf_counter() - start,
            hvp_seconds,
            group,
            top.converged if top is not None else True,
            self.batching.batch_size if self.batching is not None else None,
            noise_ratio,
            noise_limit,
            rho,
            crossing_from,
        )
        self.history.append(record)
        if crossing is not None:
            self._quiet_until = crossing
        self._watch = None
        if adaptive and top is not None and math.isfinite(sharp_g / threshold):
            p_then = self._live_preconditioner()
            if p_then is not None:
                self._watch = (p_then, sharp_g / threshold)
        self._schedule_next(record)
        return record

    def _settled(self, adaptive: bool) -> bool:
        """Whether a crossing along the schedule can be predicted at a frozen preconditioner:
        always for SGD; for Adam once ``v_t`` averages ``min(100, 1/(1 - beta2))`` steps (at
        step 1 it is one squared gradient: a small transformer's preconditioned ratio fell
        from 0.55 at step 1 to 0.005 at step 6)."""
        if not adaptive:
            return True
        beta2 = min(float(g.get("betas", (0.9, 0.999))[1]) for g in self.optimizer.param_groups)
        return self._calls >= min(100.0, 1 / max(1 - beta2, 1e-12))

    def _adam_trend(self, ratio: float) -> int | None:
        """Adam: the step at which the preconditioned ratio reaches 1 if it keeps rising at its
        rate since the last check (geometric: ``v_t`` decays like ``beta2^t``), when within the
        look-ahead and the ratio is already 0.9 or more (the next step when it is at 1 within
        the tolerance: above that the ratio itself warns)."""
        if not self.history or self.history[-1].collapsed:
            return None
        prev = self.history[-1]
        if not 0 < prev.ratio < ratio or self._calls <= prev.step:
            return None
        rate = math.log(ratio / prev.ratio) / (self._calls - prev.step)
        steps = max(math.log(1 / ratio), 0.0) / rate  # at the edge already (within tolerance): now
        return self._calls + max(1, math.ceil(steps)) if steps <= self.lookahead else None

    def _horizon(self, cost: float) -> int:
        """Steps the look-ahead examines: ``lookahead``, and with ``every="auto"`` at least
        four times the expected steps to the next check (the check's ``cost`` in seconds over
        ``overhead`` and the time per training step; capped at 20,000), so that a crossing is
        seen at least one check before it."""
        if self.every != "auto" or self._since == 0 or self._train_seconds <= 0:
            return self.lookahead
        expected = cost / self.overhead / (self._train_seconds / self._since)
        return int(min(max(self.lookahead, 4 * expected), 20_000))

    def _schedule_next(self, record: MonitorRecord) -> None:
        """When the next check is due besides the budget (``every="auto"``: when the run's
        monitor time with one more check is at most ``overhead`` of its training time) and
        ``every``: by half the steps the ratio's trend over the last two checks (log-linear)
        takes to reach 1 once the ratio is 0.5 or more (for Adam at any ratio: the decay of
        ``v_t`` outpaced the drift bound after an early check), and half a look-ahead before a
        crossing seen beyond it."""
        self._train_seconds, self._since = 0.0, 0
        self._due_step = math.inf
        if self._far is not None:
            self._due_step = max(self._calls + 1, self._far - self.lookahead // 2)
        if len(self.history) >= 2 and not record.collapsed:
            a, b = self.history[-2], self.history[-1]
            adaptive = self._watch is not None  # Adam: v_t decay makes any rise a trend
            if 0 < a.ratio < b.ratio < 1 and (b.ratio >= 0.5 or adaptive) and b.step > a.step:
                rate = math.log(b.ratio / a.ratio) / (b.step - a.step)
                to_edge = math.log(1 / b.ratio) / rate
                self._due_step = min(self._due_step, self._calls + max(1.0, to_edge / 2))

    def _mean_square(self, pre: Any, group: int, lrs: list[float]) -> tuple[float | None, float]:
        """The mean-square limit of the group's settings at the run's batch size, and ``rho``
        at its learning rate, from the per-sample Gauss-Newton curvature of ``data`` in its
        top ``rank`` directions (with the check's preconditioner): found by Lanczos at the
        first check, then tracked from check to check by one block-Krylov step
        (:func:`~stability.training.ggn.tracked_ggn`)."""
        from .ggn import tracked_ggn
        from .minibatch_edge import _mean_square_limit

        P = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        if min(self.rank, P - 1) < 2:
            return None, math.nan
        try:
            curv, self._ggn_dirs = tracked_ggn(
                self.model, self._ggn_loss, self.data[0], self._ggn_dirs, rank=self.rank,
                preconditioner=pre, seed=self._calls,
            )  # fmt: skip
        except ConfigError:
            self._ggn_dirs = None
            return None, math.nan  # e.g. no curvature in the top directions: nothing to add
        opts = from_optimizer(self.optimizer)
        ref = int(np.argmax(lrs)) if len(lrs) > 1 else group
        limit, rho = _mean_square_limit(opts[ref], curv, self.batching, self._memo)
        if ref != group:
            limit *= lrs[group] / lrs[ref]
        world = distributed_world()
        if world is not None:  # rank 0's samples decide, so that every rank acts alike
            import torch

            shared = torch.tensor([limit, rho], dtype=torch.float64, device=self.data[0].device)
            world.broadcast(shared, src=0)
            limit, rho = float(shared[0]), float(shared[1])
        return limit, rho

    def _preconditioner(self, adaptive: bool, lrs: list[float] | None) -> tuple[Any, Any]:
        """``P`` of the operator ``P^-1/2 H P^-1/2`` the check measures, and each trainable
        parameter's group (``None`` with one group): Adam's ``sqrt(v_hat) + eps``, and with
        several groups that differ only in their learning rates ``lr_max / lr_g`` (the joint
        dynamics see ``D^1/2 H D^1/2``, ``D`` the per-parameter learning rates relative to the
        largest); a parameter in no group does not move and is left out (``P`` huge)."""
        import torch

        groups = self.optimizer.param_groups
        params = [p for p in self.model.parameters() if p.requires_grad]
        pre = _adam_preconditioner_for(self.optimizer, params) if adaptive else None
        if len(groups) == 1:
            return pre, None
        where = {id(p): i for i, g in enumerate(groups) for p in g["params"]}
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
        self, limit: float, lr: float, group: int = 0, horizon: int | None = None
    ) -> int | None:
        """First future step whose scheduled learning rate is above ``limit`` (the largest
        stable lr at the current curvature, and batch noise), in the schedule of the group
        that sets the limit; a scheduler past its last step keeps its last learning rate
        (torch refuses to step it further)."""
        if self.scheduler is None or not limit > 0 or lr >= limit:
            return None
        if self.lookahead < 2 or type(self.scheduler).__name__ == "ReduceLROnPlateau":
            return None  # a plateau scheduler cannot be predicted: each check reads the lr
        steps = max(horizon or self.lookahead, 2)
        future = schedule_from_torch(self.scheduler, steps, group=group).values
        now = future[0]
        if not now > 0:
            return None
        above = np.flatnonzero(lr * future / now > limit)
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
                f"{self._best_loss:.4g}, its first {self._first_loss:.4g}); the sharpness ratio "
                f"({r.ratio:.3g}) no longer describes "
                "it. Restart from a checkpoint before the rise with a lower learning rate "
                f"(the last limit seen: {self._last_limit()})"
            )
        limit = f"{r.lr_limit:.4g}" if r.lr_limit is not None else "lower"
        noise_binds = math.isfinite(r.noise_ratio) and r.noise_ratio >= r.sharpness_ratio
        if r.crossing_from == "preconditioner trend":
            return (
                f"step {r.step}: Adam's preconditioned sharpness is {r.ratio:.3g}x its edge and "
                f"rising (v_t decays where the gradients are small): at this rate it crosses at "
                f"step {r.crossing_step}, where a loss spike follows once the gradient aligns "
                "with the top direction (Bai et al. 2025). Lower the lr, or raise eps or beta2"
            )
        if r.crossing_step is None and r.ratio <= 1 + self.tolerance:  # a rising lr at the edge
            return (
                f"step {r.step}: the learning rate has risen to {r.lr:.4g}, {r.ratio:.3g}x the "
                f"largest stable lr {limit} at the current sharpness"
                f"{f' and batch size {r.batch_size}' if noise_binds else ''}: stop raising it "
                "(a schedule passed to the monitor gives the crossing in advance)"
            )
        if r.ratio > 1 + self.tolerance and noise_binds:
            return (
                f"step {r.step}: at batch size {r.batch_size} the mini-batch noise is unstable: "
                f"lr {r.lr:.4g} is {r.noise_ratio:.3g}x the mean-square limit {limit} (rho "
                f"{r.rho:.3g} > 1; the full-batch ratio is {r.sharpness_ratio:.3g}); lower the lr "
                f"below it (e.g. to {0.9 * (r.lr_limit or r.lr / r.ratio):.4g}) or raise the "
                "batch size"
            )
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
            f"step {r.step}: at the current sharpness {r.sharpness:.4g}"
            f"{f' and batch size {r.batch_size}' if noise_binds else ''} the largest stable lr is "
            f"{limit}; the schedule passes it at step {cross} (it peaks at {peak:.4g}). Cap the "
            f"schedule at {limit} (scale it by {(r.lr_limit or peak) / peak:.3g}), or end the "
            f"warm-up at step {cross - 1} (lr {before:.4g})"
        )

    def _last_limit(self) -> str:
        limits = [r.lr_limit for r in self.history if r.lr_limit is not None and not r.collapsed]
        return f"lr {limits[-1]:.4g}" if limits else "none measured"


def _ggn_loss(loss_fn: Any) -> str:
    """``"mse"`` or ``"cross_entropy"``: the per-sample Gauss-Newton curvature of the mean-square
    edge needs to know the loss."""
    import torch

    from .ggn import _loss_name

    functional = {
        torch.nn.functional.mse_loss: "mse",
        torch.nn.functional.cross_entropy: "cross_entropy",
    }
    if loss_fn in functional:
        return functional[loss_fn]
    try:
        return _loss_name(loss_fn, torch)
    except ConfigError:
        raise ConfigError(
            "the mini-batch edge (batch_size= or loader=) needs the per-sample Gauss-Newton "
            "curvature, so loss_fn must be torch.nn.MSELoss() or torch.nn.CrossEntropyLoss() "
            f"(mean reduction) or their functional forms, got {describe(loss_fn)}"
        ) from None


def _check_inputs(data: Any, batch: Any) -> None:
    import torch

    if not (isinstance(data, tuple | list) and len(data) == 2 and torch.is_tensor(data[0])):
        raise ConfigError(
            "the mini-batch edge (batch_size= or loader=) takes the per-sample curvature of "
            f"data = (x, y), one batch of tensors; got {describe(data)}"
        )
    if data[0].shape[0] < 2:
        raise ConfigError(f"data must hold at least 2 samples, got {data[0].shape[0]}")


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
