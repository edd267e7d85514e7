"""The stability curve ``lr_max(B)``: the largest stable learning rate of a configuration at every
batch size, from the data's own per-sample curvature (docs §4.4), and its knee.

The noise operator scales with the batch factor, ``rho(B) = kappa_B rho_1`` (with or without
replacement), so every batch size shares one response matrix per learning rate and one
``rho_1``: a verdict found at one batch size decides the others whenever its certified bounds,
scaled, fall on one side of 1, and the search at each new batch size starts from the bracket
the earlier ones left (:class:`~stability.noise.DataNoise` remembers them). The curve rises
with ``B`` (the noise falls as ``kappa_B``) until the noiseless limit caps it; the *knee* is
the smallest batch size whose largest stable lr reaches ``knee_fraction`` (90 %) of that
limit: beyond it a larger batch buys little stability (the stability side of the critical
batch size).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checkers.searches import _config_family, largest_stable_lr
from .checking import _configured, _data_model, _plain, _tolerance
from .errors import ConfigError, describe
from .noise.data import DataNoise

__all__ = ["StabilityCurve", "stability_curve"]


@dataclass(frozen=True)
class StabilityCurve:
    """``max_lr[i]``: the largest stable learning rate at ``batch_sizes[i]`` (certified stable,
    within ``tol`` relative of the edge), ``binding[i]`` the condition that sets it,
    ``noiseless_lr`` the limit without mini-batch noise, ``knee`` the smallest batch size with
    ``max_lr >= knee_fraction * noiseless_lr`` (``inf`` if none)."""

    batch_sizes: np.ndarray
    max_lr: np.ndarray
    binding: tuple[str, ...]
    noiseless_lr: float
    knee: float
    knee_fraction: float
    sampling: str
    tol: float
    config: dict[str, Any]
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"StabilityCurve({self.batch_sizes.size} batch sizes "
            f"{_fmt(self.batch_sizes[0])}..{_fmt(self.batch_sizes[-1])}: largest stable lr "
            f"{self.max_lr[0]:.4g}..{self.max_lr[-1]:.4g}, noiseless {self.noiseless_lr:.4g}, "
            f"knee at B = {_fmt(self.knee)})"
        )

    def rows(self) -> list[tuple[float, float, float, str]]:
        """``(batch size, largest stable lr, its share of the noiseless limit, binding)``."""
        return [
            (float(b), float(lr), float(lr / self.noiseless_lr), why)
            for b, lr, why in zip(self.batch_sizes, self.max_lr, self.binding, strict=True)
        ]

    def __str__(self) -> str:
        cfg = ", ".join(f"{k}={v}" for k, v in self.config.items())
        lines = [
            f"largest stable learning rate against batch size ({cfg}; data model, batches "
            f"{self.sampling.replace('_', ' ')}; to {self.tol:g} relative, certified stable)",
            f"  {'batch size':>10}  {'largest lr':>12}  {'of noiseless':>12}  binding",
        ]
        for b, lr, share, why in self.rows():
            lines.append(f"  {_fmt(b):>10}  {lr:>12.6g}  {share:>12.1%}  {why.split(';')[0]}")
        lines.append(f"  noiseless limit: {self.noiseless_lr:.6g}")
        lines.append(
            f"  knee: B = {_fmt(self.knee)} (the smallest batch whose largest stable lr is "
            f"{self.knee_fraction:.0%} of the noiseless limit; beyond it a larger batch buys "
            "little stability)"
        )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("batch size", "largest stable lr", "of noiseless"))
        rows = "".join(
            f"<tr><td>{_fmt(b)}</td><td>{lr:.6g}</td><td>{share:.1%}</td></tr>"
            for b, lr, share, _ in self.rows()
        )
        return (
            f"<p>{html.escape(repr(self))}</p><table><tr>{head}</tr>{rows}</table>"
            f"<p>noiseless limit {self.noiseless_lr:.6g}; knee at B = {_fmt(self.knee)}</p>"
        )

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | str:
            return float(x) if math.isfinite(x) else "inf"

        return {
            "batch_sizes": [num(b) for b in self.batch_sizes],
            "max_lr": [num(x) for x in self.max_lr],
            "binding": list(self.binding),
            "noiseless_lr": num(self.noiseless_lr),
            "knee": num(self.knee),
            "knee_fraction": self.knee_fraction,
            "sampling": self.sampling,
            "tol": self.tol,
            "config": self.config,
            "notes": list(self.notes),
        }

    def plot(self, ax: Any = None) -> Any:
        """The curve on log-log axes with the noiseless limit and the knee."""
        from .plots import plot_stability_curve

        return plot_stability_curve(self, ax=ax)


def _fmt(x: float) -> str:
    return "inf" if not math.isfinite(x) else (f"{x:.0f}" if float(x).is_integer() else f"{x:g}")


def stability_curve(
    config: Any,
    *,
    data: Any,
    batch_sizes: Any,
    sampling: str = "with_replacement",
    tol: float = 1e-3,
    knee_fraction: float = 0.9,
) -> StabilityCurve:
    """The largest stable learning rate of ``config`` at each of ``batch_sizes``, from
    ``data`` (as in :func:`stability.check`: ``(X, Y)``, ``X``, a
    :class:`~stability.noise.PerSampleCurvature` or a :class:`~stability.noise.DataNoise`),
    every value certified stable and within ``tol`` (relative) of the edge, and the knee.

    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((200, 3))
    >>> c = stability_curve({"optimizer": "sgd", "lr": 0.1}, data=(X, None), batch_sizes=[1, 8])
    >>> bool(c.max_lr[0] < c.max_lr[1] <= c.noiseless_lr)
    True
    """
    tol = _tolerance(tol)
    if not (isinstance(knee_fraction, int | float) and 0 < knee_fraction < 1):
        raise ConfigError(f"knee_fraction must be in (0, 1), got {describe(knee_fraction)}")
    sizes = _batch_sizes(batch_sizes)
    model = _data_model(data, sampling, "gaussian", None, None)
    if model is None:
        raise ConfigError("stability_curve needs data= (the per-sample curvature)")
    groups = _configured(config)
    if len(groups) != 1:
        raise ConfigError(
            f"stability_curve takes one parameter group, got {len(groups)}: pass one group's "
            "settings as a mapping"
        )
    opt = groups[0]
    if opt.kind is None:
        raise ConfigError("stability_curve needs a framework optimizer (its lr to vary)")
    if opt.kind.family == "adam":
        raise ConfigError(
            "stability_curve: Adam's data verdict needs the preconditioned per-sample "
            "curvature; pass a configuration of SGD (with or without momentum)"
        )
    noiseless, _ = largest_stable_lr(opt, noise=model)
    max_lr, binding = [], []
    for b in sizes:
        lr, why = largest_stable_lr(opt, batch_size=float(b), noise=model, rtol=tol)
        max_lr.append(lr)
        binding.append(why or "")
    knee = _knee(opt, model, noiseless, knee_fraction)
    return StabilityCurve(
        sizes,
        np.asarray(max_lr, dtype=float),
        tuple(binding),
        float(noiseless),
        knee,
        float(knee_fraction),
        model.sampling,
        tol,
        {k: _plain(v) for k, v in opt.config.items()},
        (
            "mean-square stability of the linearised (quadratic) dynamics from the data's "
            "per-sample curvature; batches drawn independently (not a shuffled epoch)",
        ),
    )


def _knee(opt: Any, model: DataNoise, noiseless: float, fraction: float) -> float:
    """The smallest batch with ``max_lr >= fraction * noiseless``: the critical batch size of
    the configuration at that learning rate."""
    if not (math.isfinite(noiseless) and noiseless > 0):
        return math.inf
    fam = _config_family(opt)
    alg = fam.build(fraction * noiseless)
    return float(model.critical_batch_size(alg, fam.shift))


def _batch_sizes(value: Any) -> np.ndarray:
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise ConfigError(f"batch_sizes must be a list of batch sizes, got {describe(value)}")
    out = []
    for b in value:
        if isinstance(b, bool) or not isinstance(b, int | float | np.integer | np.floating):
            raise ConfigError(f"batch_sizes must hold numbers, got {describe(b)}")
        if not (math.isfinite(float(b)) and b >= 1):
            raise ConfigError(f"each batch size must be a number in [1, inf), got {describe(b)}")
        out.append(float(b))
    if not out:
        raise ConfigError("batch_sizes must not be empty")
    if len(out) > 1000:
        raise ConfigError(f"batch_sizes takes at most 1000 sizes, got {len(out)}")
    return np.unique(np.asarray(out))
