"""The measured part of :func:`stability.training.find_lr`: short training runs from copies.

A probe is a run of ``steps`` optimizer steps at a constant learning rate, from a deep copy of
the caller's model and optimizer state, on the caller's batches in one fixed order (every probe
sees the same batches, so two probes differ only in their learning rate). It is read the way
the truth it answers to is defined: the run **diverges** when a batch loss is non-finite or
above ``1000x`` the full-data loss at the start. A run that survives is classified by its loss
(its end: the mean batch loss of its last quarter):

* ``catapult``: the loss rose above twice its start and came back down (Lewkowycz et al. 2020:
  above the quadratic edge the loss spikes, the curvature falls, training goes on);
* ``saturated`` (cross-entropy) or ``stalled`` (another loss): it ends no lower than it started,
  neither progress nor divergence (a tanh network's outputs saturate, a ReLU network dies);
* ``stable``: it ends below its start without such a spike.

A confirmation run (``rise=``) is also ``rising`` when, after its transient, its loss or its
velocity (the norm of the momentum buffers; of the gradients without momentum) grows: the
second half's mean above ``rise`` times the first half's, beyond their noise.

Everything the caller owns is left as it was: the model and optimizer are copied, the global
RNG states (python, numpy, torch and CUDA) and a loader's own generator are saved before and
restored after (:func:`_preserved_rng`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, describe

__all__ = ["ProbeRun"]

_DIVERGENCE = 1000.0  # a loss above this multiple of its start is divergence (issue protocol)
_SPIKE = 2.0  # a catapult's loss rises above this multiple of its start


@dataclass(frozen=True)
class ProbeRun:
    """One probe: ``steps`` optimizer steps at learning rate ``lr`` (of ``planned``; fewer
    when it diverged), the batch loss of every step, the full-data loss at its ``start`` and
    ``end`` (``None`` when it diverged), its ``verdict``: ``"divergent"``, ``"rising"`` (a
    confirmation run on its way to diverging), ``"catapult"``, ``"saturated"``/``"stalled"`` or
    ``"stable"``, and its ``role``: ``"search"`` (bracketing the divergence), ``"confirm"``
    (a longer run at the answer) or ``"progress"`` (below the answer, looking for a run that
    makes progress when none did)."""

    lr: float
    steps: int
    planned: int
    start: float
    end: float | None
    verdict: str
    losses: np.ndarray = field(repr=False)
    role: str = "search"

    @property
    def survived(self) -> bool:
        return self.verdict not in ("divergent", "rising")

    @property
    def progress(self) -> bool:
        """Whether the run made progress: it survived and ended below its start."""
        return self.verdict in ("stable", "catapult")

    @property
    def peak(self) -> float:
        """The largest batch loss over the full-data loss at the start."""
        finite = self.losses[np.isfinite(self.losses)]
        return math.inf if finite.size < self.losses.size else float(finite.max()) / self.start

    def to_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr, "steps": self.steps, "planned": self.planned, "start": self.start,
            "end": self.end, "verdict": self.verdict, "role": self.role, "peak": self.peak,
            "losses": [float(v) for v in self.losses],
        }  # fmt: skip


def _classify(
    losses: np.ndarray, start: float, end: float | None, cross_entropy: bool,
    rise: float | None = None, transient: int = 0,
) -> str:  # fmt: skip
    """The verdict of a run from its batch losses and full-data losses (module docstring).
    With ``rise``, a run whose mean loss over the second half of its steps after the first
    ``transient`` (a catapult's spike comes and goes there) is above ``rise`` times the first
    half's, beyond their noise, is ``"rising"``: on its way to diverging, as momentum and
    sharpening make it (a confirmation run's test)."""
    if end is None or not math.isfinite(end) or end > _DIVERGENCE * start:
        return "divergent"
    if not np.all(np.isfinite(losses)) or np.any(losses > _DIVERGENCE * start):
        return "divergent"
    after = losses[transient:]
    if rise is not None and after.size >= 10 and _rising(after, rise):
        return "rising"
    if end >= start:
        return "saturated" if cross_entropy else "stalled"
    if losses.size and float(losses.max()) > _SPIKE * start:
        return "catapult"
    return "stable"


def _speed(opt: Any, torch: Any) -> float:
    """The norm of the step's velocity: every parameter's momentum buffer (its gradient when
    it has none), a few operations per parameter."""
    total = 0.0
    for group in opt.param_groups:
        for p in group["params"]:
            buf = opt.state.get(p, {}).get("momentum_buffer")
            v = buf if buf is not None else p.grad
            if v is not None:
                total += float(torch.linalg.vector_norm(v)) ** 2
    return math.sqrt(total)


def _rising(losses: np.ndarray, rise: float) -> bool:
    """Whether the second half of ``losses`` is above ``rise`` times the first, by more than
    twice the standard error of the difference (batch losses are noisy: a dip is not a base)."""
    half = losses.size // 2
    a, b = losses[:half], losses[half:]
    gap = float(b.mean() - a.mean())
    noise = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return bool(b.mean() > rise * a.mean() and gap > 2.0 * noise)


@contextlib.contextmanager
def _preserved_rng(torch: Any, generators: tuple[Any, ...] = ()) -> Iterator[None]:
    """Save the global RNG states (python, numpy, torch, CUDA when initialised) and the states
    of ``generators`` (torch.Generator), and restore them on exit, whatever happens inside."""
    py, np_state, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    own = [(g, g.get_state()) for g in generators]
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        for g, state in own:
            g.set_state(state)


class _Trainer:
    """Builds probes: copies of the model and of the optimizer (every group's learning rate
    scaled together, group 0's set to the probe's), batches in one order, the loss."""

    def __init__(
        self, model: Any, loss_fn: Any, loader: Any, full: Any, optimizer: Any, torch: Any,
        seed: int, cross_entropy: bool,
    ) -> None:  # fmt: skip
        self.model, self.loss_fn, self.loader, self.full = model, loss_fn, loader, full
        self.optimizer, self.torch, self.seed = optimizer, torch, int(seed)
        self.cross_entropy = cross_entropy
        self.units = 0.0  # compute used, in per-sample training passes (forward + backward)

    def full_loss(self, model: Any) -> float:
        """The loss over the whole data set (batches of the full loader, weighted by size);
        a forward pass costs a third of a training pass."""
        torch = self.torch
        total, count = 0.0, 0
        with torch.no_grad():
            for x, y in self.full:
                b = len(x)
                total += float(self.loss_fn(model(x), y)) * b
                count += b
        self.units += count / 3.0
        return total / count

    def _copies(self, lr: float) -> tuple[Any, Any]:
        model = copy.deepcopy(self.model)
        opt = self.optimizer
        index = {id(p): i for i, p in enumerate(self.model.parameters())}
        params = list(model.parameters())
        groups = []
        base = float(opt.param_groups[0]["lr"])
        for g in opt.param_groups:
            group = {k: v for k, v in g.items() if k != "params"}
            group["params"] = [params[index[id(p)]] for p in g["params"]]
            group["lr"] = lr * float(g["lr"]) / base
            groups.append(group)
        twin = type(opt)(groups)
        state = copy.deepcopy(opt.state_dict())
        for g, src in zip(state["param_groups"], groups, strict=True):
            g["lr"] = src["lr"]
        twin.load_state_dict(state)
        return model, twin

    def run(
        self, lr: float, steps: int, start: float, rise: float | None = None,
        role: str = "search", transient: int = 0,
    ) -> ProbeRun:  # fmt: skip
        """One probe of ``steps`` steps at ``lr`` (group 0's), the batches in the fixed order."""
        torch = self.torch
        model, opt = self._copies(lr)
        model.train(self.model.training)
        torch.manual_seed(self.seed)  # the loader's shuffle: the same order for every probe
        gen = getattr(self.loader, "generator", None)
        if gen is not None:
            gen.manual_seed(self.seed)
        losses: list[float] = []
        speeds: list[float] = []  # |the step's velocity|: momentum buffers, else gradients
        diverged = False
        while len(losses) < steps and not diverged:
            for x, y in self.loader:
                opt.zero_grad(set_to_none=True)
                loss = self.loss_fn(model(x), y)
                loss.backward()
                opt.step()
                self.units += len(x)
                value = float(loss.detach())
                losses.append(value)
                if rise is not None:
                    speeds.append(_speed(opt, torch))
                if not math.isfinite(value) or value > _DIVERGENCE * start:
                    diverged = True
                if diverged or len(losses) >= steps:
                    break
        arr = np.asarray(losses, dtype=float)
        # the end: the mean batch loss of the run's last quarter (no extra pass over the data)
        end = None if diverged else float(arr[-max(1, arr.size // 4) :].mean())
        verdict = _classify(arr, start, end, self.cross_entropy, rise, transient)
        after = np.asarray(speeds[transient:], dtype=float)
        if verdict not in ("divergent", "rising") and after.size >= 10 and _rising(after, rise):
            verdict = "rising"  # the velocity grows: the mean-square instability of momentum
        return ProbeRun(float(lr), len(losses), int(steps), start, end, verdict, arr, role)


def _sgd_from(optimizer: Any, params: list[Any], torch: Any) -> Any:
    """A torch SGD over ``params`` from a config mapping or a live optimizer (which is only
    read); anything but SGD is refused with what is supported."""
    if isinstance(optimizer, torch.optim.Optimizer):
        if not isinstance(optimizer, torch.optim.SGD):
            raise ConfigError(
                f"optimizer: find_lr supports torch.optim.SGD (with or without momentum and "
                f"Nesterov) for now, got {type(optimizer).__name__}; adaptive optimizers "
                "(Adam, AdamW) are not supported yet"
            )
        mine = {id(p) for p in params}
        theirs = [p for g in optimizer.param_groups for p in g["params"]]
        if not theirs or any(id(p) not in mine for p in theirs):
            raise ConfigError(
                "optimizer: its parameters must be the model's (an optimizer of another model?)"
            )
        if float(optimizer.param_groups[0]["lr"]) <= 0:
            raise ConfigError(
                "optimizer: group 0's lr must be positive (find_lr scales every group's lr "
                f"with group 0's), got {describe(optimizer.param_groups[0]['lr'])}"
            )
        return optimizer
    if not isinstance(optimizer, dict):
        raise ConfigError(
            f"optimizer must be a torch.optim.SGD or a mapping like {{'optimizer': 'sgd', "
            f"'momentum': 0.9}}, got {describe(optimizer)}"
        )
    from ..optimizers import from_optimizer

    # the package's own adapter checks the keys, the ranges and torch's Nesterov rule
    config = from_optimizer({"optimizer": "sgd", "lr": 1.0, **optimizer})[0]
    if config.kind is None or config.kind.torch_class != "SGD":
        raise ConfigError(
            f"optimizer: find_lr supports SGD (with or without momentum and Nesterov) for now, "
            f"got {describe(optimizer.get('optimizer'))}; adaptive optimizers (Adam, AdamW) "
            "are not supported yet"
        )
    kwargs = {k: v if isinstance(v, bool) else float(v) for k, v in config.config.items()}
    return torch.optim.SGD(params, **kwargs)
