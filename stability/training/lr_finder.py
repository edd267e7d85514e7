"""The largest stable learning rate of a real network, batch size and momentum (docs §6.2).

``find_lr`` combines what the package knows with a short measured probe:

1. **The quadratic edge at the start point.** The data model's largest stable learning rate
   from the per-sample Gauss-Newton curvature of (a seeded subset of) the data, at the run's
   batch size, batches as independent subsets (noiseless when the batch is the whole set). A
   certified statement about the quadratic model of the loss at the start; on real networks it
   is off by 0.0-14x (catapults above it, sharpening and cross-entropy spikes below it), so it
   only says where to look.
2. **A probe of the nonlinear part.** Constant-lr runs from copies of the model and optimizer
   (:mod:`stability.training.lr_probe`), each of ``probe_steps`` steps on the same batches,
   bracket the learning rate at which training diverges (loss non-finite or above 1000x its
   start): from the edge up or down by factors of 2, then bisection to ``resolution``. This
   search takes 40 % of the budget (about 7 probes), the edge at most 20 %.
3. **The answer, confirmed.** A probe is shorter than the horizon and sees one order of the
   batches, and runs that survive a probe can still diverge later (momentum and progressive
   sharpening let the curvature grow over hundreds of steps; a ReLU network's cross-entropy
   spikes come from a few samples at random times). The answer is therefore ``margin`` (0.6)
   times the largest learning rate that survived, then checked by one longer run (the rest of
   the budget, at least twice a search probe) and halved while that run diverges or rises
   (after the first search-probe length, its second half's mean loss or mean velocity, the
   norm of the momentum buffers, above 1.5x the first half's beyond their noise; at most 3
   times). The measured accuracy of this rule against
   10-epoch torch runs is in the benchmark (docs §6.2): an estimate, not a certificate.

Cost is counted in per-sample training passes (a forward and backward pass of one sample;
forward-only passes a third; a Gauss-Newton product two) and reported in training steps at the
run's batch size and in epochs.
"""

from __future__ import annotations

import copy
import html
import math
from dataclasses import dataclass, field
from typing import Any

from .._values import check_range
from ..errors import ConfigError, describe
from .estimators import _torch
from .lr_probe import ProbeRun, _preserved_rng, _sgd_from, _Trainer

__all__ = ["LRFinderResult", "find_lr"]

_MARGIN = 0.6
_MIN_PROBE_STEPS = 20  # a catapult's spike rises and falls within about ten steps at momentum 0
_PLANNED_PROBES = 7  # the search's share of the budget is split among about this many probes
_EDGE_SHARE, _SEARCH_SHARE, _CONFIRM_SHARE = 0.2, 0.4, 0.4  # of the budget
_CONFIRMATIONS = 3
_CONFIRM_STEP = 2.0  # a failed confirmation divides the answer by this
_PROGRESS_TRIES = 4
_NOISE_DOMINATED = 0.3  # the edge at B below this share of the noiseless edge caps the answer
_RISE = 1.5
_EDGE_SAMPLES = 128


@dataclass(frozen=True)
class LRFinderResult:
    """What :func:`find_lr` found (``str()`` for a summary, ``plot()`` for the figure)."""

    largest_stable_lr: float
    edge: float | None
    recommended_lr: float
    rule: str
    regime: str
    bracket: tuple[float, float | None]
    probes: tuple[ProbeRun, ...] = field(repr=False)
    batch_size: int = 0
    dataset_size: int = 0
    horizon_steps: int = 0
    probe_steps: int = 0
    cost_steps: float = 0.0
    cost_epochs: float = 0.0
    budget_epochs: float = 0.0
    margin: float = _MARGIN
    caveats: tuple[str, ...] = ()
    noiseless_edge: float | None = None

    @property
    def survived(self) -> float:
        """The largest learning rate whose probe survived (0 when none did)."""
        return self.bracket[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "largest_stable_lr": self.largest_stable_lr, "edge": self.edge,
            "recommended_lr": self.recommended_lr, "rule": self.rule, "regime": self.regime,
            "bracket": list(self.bracket), "batch_size": self.batch_size,
            "dataset_size": self.dataset_size, "horizon_steps": self.horizon_steps,
            "probe_steps": self.probe_steps, "cost_steps": self.cost_steps,
            "cost_epochs": self.cost_epochs, "budget_epochs": self.budget_epochs,
            "margin": self.margin, "caveats": list(self.caveats),
            "noiseless_edge": self.noiseless_edge,
            "probes": [p.to_dict() for p in self.probes],
        }  # fmt: skip

    def _lines(self) -> list[str]:
        edge = "not computed" if self.edge is None else f"{self.edge:.4g}"
        if self.noiseless_edge is not None and self.batch_size < self.dataset_size:
            edge += f" at B = {self.batch_size}; {self.noiseless_edge:.4g} without noise"
        hi = "none diverged" if self.bracket[1] is None else f"{self.bracket[1]:.4g}"
        failed = sum(p.role == "confirm" and not p.survived for p in self.probes)
        how = {0: "", 1: ", halved once by the confirmation run"}.get(
            failed, f", halved {failed} times by the confirmation runs"
        )
        capped = any(c.startswith("noise-dominated") for c in self.caveats)
        how += ", capped at the edge (noise-dominated)" if capped else ""
        return [
            f"largest stable lr  {self.largest_stable_lr:.4g}  (estimate: {self.margin:g} x "
            f"the largest lr that survived a {self.probe_steps}-step probe, "
            f"{self.bracket[0]:.4g}{how}; the first to diverge {hi})",
            f"recommended lr     {self.recommended_lr:.4g}  ({self.rule})",
            f"quadratic edge     {edge}  (the data model at the start point)",
            f"regime             {self.regime}",
            f"horizon            {self.horizon_steps:,} steps at B = {self.batch_size} of "
            f"{self.dataset_size:,} samples",
            f"cost               {self.cost_steps:,.0f} training steps = "
            f"{self.cost_epochs:.2f} epochs (budget {self.budget_epochs:g}); "
            f"{len(self.probes)} probes",
        ]

    def __str__(self) -> str:
        lines = ["find_lr:"] + ["  " + s for s in self._lines()]
        lines += ["  probes:"] + [
            f"    lr {p.lr:<10.4g} {p.verdict:<10s} {p.steps:>5d} steps  peak {p.peak:.3g}x"
            + ("" if p.end is None else f"  end {p.end / p.start:.3g}x")
            for p in sorted(self.probes, key=lambda p: p.lr)
        ]
        lines += ["  caveats:"] + [f"    - {c}" for c in self.caveats]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>"
            for a, b in map(_split, self._lines())
        )
        probes = "".join(
            f"<tr><td>{p.lr:.4g}</td><td>{p.verdict}</td><td>{p.steps}</td>"
            f"<td>{p.peak:.3g}</td><td>{'' if p.end is None else f'{p.end / p.start:.3g}'}"
            "</td></tr>"
            for p in sorted(self.probes, key=lambda p: p.lr)
        )
        cav = "".join(f"<li>{html.escape(c)}</li>" for c in self.caveats)
        return (
            f"<b>find_lr</b><table>{rows}</table><details><summary>probes</summary><table>"
            "<tr><th>lr</th><th>verdict</th><th>steps</th><th>peak / start</th>"
            f"<th>end / start</th></tr>{probes}</table></details><ul>{cav}</ul>"
        )

    def plot(self, ax: Any = None, truth: float | None = None) -> Any:
        """The probes' loss curves and verdicts against the learning rate, with the edge, the
        answer and (``truth=``, e.g. measured by full training runs) the measured limit."""
        from ..plots import plot_find_lr

        return plot_find_lr(self, ax=ax, truth=truth)


def _split(line: str) -> tuple[str, str]:
    head, _, rest = line.partition("  ")
    return head.strip(), rest.strip()


def find_lr(
    model: Any,
    loss_fn: Any,
    data: Any,
    optimizer: Any,
    batch_size: int | None = None,
    *,
    scheduler: Any = None,
    epochs: float | None = None,
    steps: int | None = None,
    budget: float = 2.0,
    margin: float = _MARGIN,
    resolution: float = 2**0.25,
    seed: int = 0,
) -> LRFinderResult:
    """The largest stable learning rate of ``model`` trained on ``data`` with ``loss_fn`` by
    ``optimizer`` at ``batch_size``, over a horizon of ``epochs`` (10) or ``steps``.

    ``data`` is a torch ``DataLoader`` of ``(x, y)`` batches (its batch size is the run's) or
    ``(X, Y)`` tensors with ``batch_size`` (batches then drawn as a shuffled epoch).
    ``optimizer`` is a live ``torch.optim.SGD`` (only read; every group's learning rate is
    scaled with group 0's, which the answer is) or a mapping such as
    ``{"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}``.
    ``scheduler`` (optional, a torch lr scheduler of that optimizer) makes the answer the
    schedule's peak learning rate: probes run at the peak throughout (warm-up is not credited).
    ``budget`` is the compute allowed, in epochs of training at the batch size (2); a probe
    takes at least 20 steps, so on a small data set with a large batch the cost can exceed it
    (the result says so). ``margin`` (0.6) scales the largest surviving probe lr to the
    answer; ``resolution`` is the bisection's final ratio.

    Nothing of the caller's changes: the model, its buffers, the optimizer, the scheduler, the
    loader and the global RNG states are as they were.
    """
    import time

    torch = _torch()
    t0 = time.perf_counter()
    budget = _positive(budget, "budget")
    setup = _setup(
        model, loss_fn, data, optimizer, batch_size, scheduler, epochs, steps, budget, torch
    )
    margin = _positive(margin, "margin", high=1.0)
    resolution = float(check_range(resolution, "resolution", 1, None, low_open=True))
    with _preserved_rng(torch, setup["generators"]):
        return _search(setup, budget, margin, resolution, int(seed), torch, t0)


def _search(
    s: dict, budget: float, margin: float, resolution: float, seed: int, torch: Any, t0: float
) -> LRFinderResult:
    trainer = _Trainer(
        s["model"], s["loss_fn"], s["loader"], s["full"], s["optimizer"], torch, seed,
        s["cross_entropy"],
    )  # fmt: skip
    # on a copy: a forward pass in training mode updates batch-norm statistics
    start = trainer.full_loss(copy.deepcopy(s["model"]))
    if not math.isfinite(start):
        raise ConfigError(
            f"loss_fn: the loss at the start is {start} (non-finite): nothing to probe; check "
            "the data and the model's initialisation"
        )
    caveats: list[str] = []
    edge, noiseless, edge_units = _edge(s, seed, torch, caveats)
    trainer.units += edge_units
    n, B, H = s["n"], s["B"], s["horizon"]
    budget_units = budget * n
    k = min(H, max(_MIN_PROBE_STEPS, int(_SEARCH_SHARE * budget_units / (_PLANNED_PROBES * B))))
    probes: list[ProbeRun] = []

    def survives(lr: float) -> bool:
        run = trainer.run(lr, k, start)
        probes.append(run)
        return run.survived

    base = edge if edge is not None and edge > 0 else s["base_lr"]
    lo, hi = _bracket(survives, base, resolution)
    if lo == 0.0:
        caveats.append(
            f"every probe diverged, down to lr {min(p.lr for p in probes):.3g}: no stable "
            "learning rate was found (is the loss or the data scaled sensibly?)"
        )
    # the confirmation: a longer run at the answer, halved while it diverges or rises
    left = min(_CONFIRM_SHARE * budget_units, budget_units - trainer.units)
    k2 = min(H, max(_MIN_PROBE_STEPS, 2 * k, int(left / B)))  # at least twice a search probe
    largest, confirmed = margin * lo, False
    for _ in range(_CONFIRMATIONS if lo > 0 else 0):
        run = trainer.run(largest, k2, start, rise=_RISE, role="confirm", transient=k)
        probes.append(run)
        if run.survived:
            confirmed = True
            break
        largest /= _CONFIRM_STEP
    noise_cap = edge is not None and noiseless is not None and not s["cross_entropy"]
    if noise_cap and edge < _NOISE_DOMINATED * noiseless:
        # the batch noise sets the edge (far below the noiseless one): the mean-square growth it
        # predicts is slow and shows late, beyond a probe; there the data model is the better
        # guide (within 0.8-1.3 of measured limits at small batches), so it caps the answer.
        # Not with cross-entropy, which saturates where the linearised noise would grow
        if largest > edge:
            caveats.append(
                f"noise-dominated: the edge at B = {B} is {edge / noiseless:.2g}x the noiseless "
                f"one ({noiseless:.3g}); the answer is capped at the edge ({edge:.3g}; the "
                f"probes alone gave {largest:.3g})"
            )
            largest = edge
    if lo > 0 and not confirmed:
        caveats.append(
            f"the confirmation runs diverged or rose {_CONFIRMATIONS} times: the answer, "
            f"{largest:.3g}, is unconfirmed"
        )
    progress = [p.lr for p in probes if p.progress]
    tries = 0
    while not progress and largest > 0 and tries < _PROGRESS_TRIES:
        # no probe made progress (cross-entropy saturating, a ReLU net dying above some lr):
        # halve from the answer until a short run ends below its start
        tries += 1
        lr = min(largest, min(p.lr for p in probes)) / 2.0
        run = trainer.run(lr, k, start, role="progress")
        probes.append(run)
        if run.progress:
            progress.append(lr)
    if progress:
        best = max(progress)
        recommended = min(largest, 0.5 * best)
        rule = (
            f"half the largest probed lr whose run made progress ({best:.4g}), at most the "
            "largest stable lr"
        )
    else:
        recommended = 0.5 * largest
        rule = "half the largest stable lr (no probe made progress)"
        caveats.append("no probe ended below its starting loss: the recommendation is a guess")
    regime = _regime(probes, lo, edge, s["cross_entropy"])
    units = trainer.units
    if units > budget_units * 1.0001:
        caveats.append(
            f"the cost, {units / n:.2f} epochs, is above the budget of {budget:g}: a probe "
            f"takes at least {_MIN_PROBE_STEPS} steps and the data set has only "
            f"{math.ceil(n / B)} batches of {B}"
        )
    if k2 < H:
        caveats.append(
            f"probes ran {k} and {k2} of the horizon's {H:,} steps on one order of the "
            "batches: runs can diverge later (sharpening, momentum, rare large-loss samples), "
            f"hence the margin {margin:g}; an estimate, not a certificate"
        )
    mu = float(s["optimizer"].param_groups[0].get("momentum", 0.0))
    if mu > 0 and B <= 8 and B < n:
        caveats.append(
            f"momentum {mu:g} at B = {B}: the regime where find_lr errs high most (in the "
            "benchmark at momentum 0.9 and B <= 8 the answer was above 1.25x the measured "
            "limit in 10 of 35 cells: the noise with momentum grows past the budget's runs); "
            "treat the answer as an upper bound and start below it"
        )
    if s["scheduler_note"]:
        caveats.append(s["scheduler_note"])
    caveats.extend(s["notes"])
    return LRFinderResult(
        largest_stable_lr=largest, edge=edge, recommended_lr=recommended, rule=rule,
        regime=regime, bracket=(lo, hi), probes=tuple(probes), batch_size=B, dataset_size=n,
        horizon_steps=H, probe_steps=k, cost_steps=units / B, cost_epochs=units / n,
        budget_epochs=budget, margin=margin, caveats=tuple(caveats), noiseless_edge=noiseless,
    )  # fmt: skip


def _bracket(survives: Any, base: float, resolution: float) -> tuple[float, float | None]:
    """``(lo, hi)``: the largest lr that survived and the smallest that diverged, from
    ``base`` by factors of 2, then by bisection in log lr to ``hi / lo <= resolution``."""
    lo: float = 0.0
    hi: float | None = None
    lr = base
    for _ in range(40):
        if survives(lr):
            lo = lr
            if hi is not None:
                break
            lr *= 2.0
        else:
            hi = lr
            if lo > 0:
                break
            lr /= 2.0
    else:
        return lo, hi
    if hi is None or lo == 0.0:
        return lo, hi
    while hi / lo > resolution:
        mid = math.sqrt(lo * hi)
        if survives(mid):
            lo = mid
        else:
            hi = mid
    return lo, hi


def _regime(probes: list[ProbeRun], lo: float, edge: float | None, ce: bool) -> str:
    survivors = [p for p in probes if p.survived]
    top = max(survivors, key=lambda p: p.lr, default=None)
    parts = []
    if edge is not None and lo > 0:
        ratio = lo / edge
        if ratio >= 1.25:
            parts.append(
                f"training survives {ratio:.2g}x the quadratic edge"
                + (
                    " (catapult: the loss spikes and comes back)"
                    if any(p.verdict == "catapult" and p.lr > edge for p in survivors)
                    else ""
                )
            )
        elif ratio <= 0.8:
            parts.append(
                f"training diverges at {ratio:.2g}x the quadratic edge (the curvature grows "
                "along the run: sharpening, or a few samples with large loss)"
            )
        else:
            parts.append("the divergence boundary is at the quadratic edge")
    if top is not None and top.verdict in ("saturated", "stalled"):
        made = max((p.lr for p in survivors if p.progress), default=0.0)
        since = min(p.lr for p in survivors if not p.progress and p.lr > made)
        what = "saturates (cross-entropy: no progress, no divergence)" if ce else "stalls"
        parts.append(f"from lr {since:.3g} training {what}")
    return "; ".join(parts) or "no probe survived"


def _edge(
    s: dict, seed: int, torch: Any, caveats: list[str]
) -> tuple[float | None, float | None, float]:
    """The data model's edge at the start point at the run's batch size, the noiseless
    (full-batch) edge on the same curvature, and their cost (per-sample passes)."""
    from .ggn import per_sample_ggn
    from .minibatch_edge import Batching, _kappa, _mean_square_limit
    from .monitor import _threshold

    if s["ggn_loss"] is None:
        caveats.append("no quadratic edge: the Gauss-Newton curvature needs MSE or cross-entropy")
        return None, None, 0.0
    x = s["edge_inputs"]
    m = len(x)
    rank = 8
    try:
        curv = per_sample_ggn(
            s["model"], s["ggn_loss"], x, subspace="top", rank=min(rank, s["P"] - 1), seed=seed,
            tol=1e-2,
        )  # fmt: skip
    except ConfigError as err:
        caveats.append(f"no quadratic edge: {err}")
        return None, None, 0.0
    units = 2.0 * m * (curv.products + rank)  # Gauss-Newton products, then J_i V (2 passes)
    from ..optimizers import from_optimizer

    opt = from_optimizer(s["optimizer"])[0]
    curvature, scales, _ = _threshold(opt)
    if not scales:  # weight decay with a threshold that does not scale as 1/lr
        caveats.append("no quadratic edge: the threshold does not scale with the lr")
        return None, None, units
    lr = float(s["optimizer"].param_groups[0]["lr"])
    full = lr * curvature / float(curv.eigenvalues.max())
    n, B = s["n"], s["B"]
    if B >= n:  # no noise: the full-batch edge on the top Gauss-Newton eigenvalue
        return full, full, units
    batch = Batching(B, n, "without_replacement", _kappa(B, n, s["drop_last"]), "find_lr")
    limit, _ = _mean_square_limit(opt, curv, batch, {})
    return limit, full, units


def _setup(
    model: Any, loss_fn: Any, data: Any, optimizer: Any, batch_size: Any, scheduler: Any,
    epochs: Any, steps: Any, budget: float, torch: Any,
) -> dict:  # fmt: skip
    """Every argument checked (a ConfigError naming it, before any work) and what the search
    needs: the loaders, the optimizer template, the horizon, the edge's inputs."""
    from .ggn import _loss_name

    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {describe(model)}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(
            "model has no trainable parameters (requires_grad=True): nothing to train"
        )
    if not callable(loss_fn):
        raise ConfigError(f"loss_fn must be callable (a torch loss), got {describe(loss_fn)}")
    try:
        ggn_loss = _loss_name(loss_fn, torch)
    except ConfigError:
        ggn_loss = None
    loader, full, n, B, drop_last, generators, edge_source = _data(data, batch_size, torch)
    opt = _sgd_from(optimizer, list(model.parameters()), torch)
    if epochs is not None and steps is not None:
        raise ConfigError("give epochs or steps as the horizon, not both")
    per_epoch = n // B if drop_last else math.ceil(n / B)
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"steps must be a positive integer, got {describe(steps)}")
        horizon = int(steps)
    else:
        e = _positive(10.0 if epochs is None else epochs, "epochs")
        horizon = max(1, round(e * per_epoch))
    note = "" if scheduler is None else _peak(scheduler, opt, horizon)
    # the edge's share of the budget: about 2 (rank + 25) passes per sample of its subset
    m = min(n, _EDGE_SAMPLES, max(32, int(_EDGE_SHARE * budget * n / (2 * 33))))
    gen = torch.Generator().manual_seed(0)
    rows = torch.randperm(n, generator=gen)[:m].sort().values.tolist()
    x_edge = _collect(edge_source, rows, torch)
    notes = []
    if m < n:
        notes.append(f"the quadratic edge is from {m} of the {n:,} samples (seeded subset)")
    return {
        "model": model, "loss_fn": loss_fn, "loader": loader, "full": full, "n": n, "B": B,
        "drop_last": drop_last, "generators": generators, "optimizer": opt,
        "horizon": horizon, "scheduler_note": note,
        "cross_entropy": isinstance(loss_fn, torch.nn.CrossEntropyLoss), "ggn_loss": ggn_loss,
        "edge_inputs": x_edge, "P": sum(p.numel() for p in params), "notes": notes,
        "base_lr": float(opt.param_groups[0]["lr"]),
    }  # fmt: skip


def _data(data: Any, batch_size: Any, torch: Any) -> tuple:
    """(probe loader, full-data loader, n, B, drop_last, generators to preserve, dataset)."""
    DataLoader = torch.utils.data.DataLoader
    if isinstance(data, DataLoader):
        B = data.batch_size
        if B is None:
            raise ConfigError("data: a DataLoader with a batch_sampler has no batch_size")
        if batch_size is not None and batch_size != B:
            raise ConfigError(
                f"batch_size ({describe(batch_size)}) differs from the DataLoader's ({B}): give one"
            )
        try:
            n = len(data.dataset)
        except TypeError:
            raise ConfigError("data: the DataLoader's dataset has no len()") from None
        dataset, loader, drop_last = data.dataset, data, bool(data.drop_last)
        generators = tuple(g for g in (data.generator,) if g is not None)
    elif isinstance(data, tuple | list) and len(data) == 2:
        X, Y = data
        if not (isinstance(X, torch.Tensor) and isinstance(Y, torch.Tensor)):
            raise ConfigError(
                f"data must be a DataLoader or (X, Y) tensors, got ({type(X).__name__}, "
                f"{type(Y).__name__})"
            )
        if X.ndim == 0 or Y.ndim == 0 or len(X) != len(Y):
            raise ConfigError(
                f"data: X and Y need one row per sample, got shapes {tuple(X.shape)} and "
                f"{tuple(Y.shape)}"
            )
        if batch_size is None:
            raise ConfigError("batch_size is needed with (X, Y) data")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {describe(batch_size)}")
        n, B, drop_last = len(X), int(batch_size), False
        dataset = torch.utils.data.TensorDataset(X, Y)
        gen = torch.Generator()
        loader = DataLoader(dataset, batch_size=B, shuffle=True, generator=gen)
        generators = ()
    else:
        raise ConfigError(f"data must be a DataLoader or (X, Y) tensors, got {describe(data)}")
    if n < 2:
        raise ConfigError(f"data: needs at least 2 samples, got {n}")
    if B > n:
        raise ConfigError(f"batch_size must be at most the data set size {n:,}, got {B:,}")
    full = DataLoader(dataset, batch_size=min(n, 1024), shuffle=False)
    return loader, full, n, B, drop_last, generators, dataset


def _collect(dataset: Any, rows: list[int], torch: Any) -> Any:
    """The inputs of ``rows`` of ``dataset`` as one tensor (for the per-sample curvature)."""
    xs = [dataset[i][0] for i in rows]
    if not all(isinstance(x, torch.Tensor) for x in xs):
        raise ConfigError("data: each sample must be (x, y) with x a tensor")
    return torch.stack(xs)


def _peak(scheduler: Any, opt: Any, horizon: int) -> str:
    """The note on a schedule: its peak lr over the horizon, which the answer is."""
    from .schedulers import is_torch_scheduler, schedule_from_torch

    if not is_torch_scheduler(scheduler):
        raise ConfigError(f"scheduler must be a torch lr scheduler, got {describe(scheduler)}")
    if scheduler.optimizer is not opt:
        raise ConfigError("scheduler: it must schedule the optimizer given to find_lr")
    sched = schedule_from_torch(scheduler, steps=horizon)
    scale = sched.base_lr if sched.base_lr is not None else float(opt.param_groups[0]["lr"])
    peak = float(max(sched.values)) * scale
    if peak <= 0:
        raise ConfigError("scheduler: its learning rates are all 0 over the horizon")
    return (
        f"with the scheduler, the learning rates are its peak ({peak:.4g} now): probes ran at "
        "the peak throughout (conservative: warm-up and decay are not credited)"
    )


def _positive(value: Any, name: str, high: float | None = None) -> float:
    """A positive number (at most ``high``), refused by name otherwise."""
    return float(check_range(value, name, 0, high, low_open=True))
