"""``check(config, ...) -> Report``: the answer a practitioner acts on.

Combines the exact strict-stability verdict (with margins), the effective learning rate, the
spectral radius, the certified mini-batch noise sum ``U`` and critical batch size, the largest
stable learning rate at the other settings, the LTV verdict of a schedule, and the caveats,
into a :class:`~stability.report.Report`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._values import to_exact, to_float, to_sympy
from .algorithms import MemoryAlgorithm
from .checkers.searches import critical_batch_size, largest_stable_lr
from .errors import ConfigError, describe
from .ltv.filters import filter_from_config
from .ltv.schedules import Schedule
from .ltv.verdicts import ltv_verdict
from .noise.spectra import PowerLawSpectrum, as_spectrum
from .noise.sums import _shift_note, stability_sum
from .optimizers import ConfiguredOptimizer, from_optimizer
from .regions.geometry import spectral_radius
from .regions.verdicts import is_strictly_stable
from .report import Report
from .training.schedulers import is_torch_scheduler, schedule_from_torch

__all__ = ["check"]


_CAVEATS = (
    "Linearised analysis: exact for a quadratic loss with the given curvatures; near a minimum "
    "of a smooth loss it describes the local dynamics, not a worst-case guarantee.",
)


def _configured(config: Any) -> list[ConfiguredOptimizer]:
    if isinstance(config, ConfiguredOptimizer):
        return [config]
    if isinstance(config, MemoryAlgorithm):
        import sympy as sp

        return [ConfiguredOptimizer(config, sp.Integer(0), config.name, {})]
    return from_optimizer(config)


def check(
    config: Any,
    *,
    lambda_max: Any = None,
    spectrum: Any = None,
    batch_size: Any = None,
    noise: Any = "gaussian",
    schedule: Any = None,
) -> Report:
    """Check an optimizer configuration against what is known about the curvature.

    ``config`` is a mapping (see :func:`stability.from_optimizer`), a torch optimizer object,
    a :class:`ConfiguredOptimizer` or a :class:`MemoryAlgorithm`. Give ``lambda_max`` (all
    curvatures in ``(0, lambda_max]``) or ``spectrum`` (eigenvalues, a
    :class:`~stability.noise.Spectrum` or a power law); ``batch_size`` adds the mini-batch noise
    analysis (needs ``spectrum``); ``schedule`` (a :class:`~stability.ltv.Schedule`) adds the
    LTV verdict.

    ``bool(report)`` is ``report.stable``: ``if check(...):`` passes only a stable verdict.

    >>> r = check({"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}, lambda_max=30.0)
    >>> r.verdict, round(r.strict["lambda_crit"], 6)
    ('stable', 38.0)
    """

    if (lambda_max is None) == (spectrum is None):
        raise ConfigError("give exactly one of lambda_max and spectrum")
    if schedule is not None and is_torch_scheduler(schedule):
        schedule = schedule_from_torch(schedule)
    if schedule is not None and not isinstance(schedule, Schedule):
        raise ConfigError(
            "schedule must be a stability.ltv.Schedule, e.g. "
            "stability.ltv.schedule('cosine', 1000) or schedule('array', n, "
            f"values=...), got {describe(schedule)}"
        )
    groups = _configured(config)
    reports = [_check_one(g, lambda_max, spectrum, batch_size, noise, schedule) for g in groups]
    if len(reports) == 1:
        return reports[0]
    order = {"unstable": 0, "marginal": 1, "stable": 2}
    worst = min(reports, key=lambda r: order[r.verdict])
    return Report(
        worst.verdict,
        worst.source,
        {},
        "",
        worst.spectrum,
        worst.effective_lr,
        worst.strict,
        caveats=list(_CAVEATS),
        groups=reports,
    )


def _check_one(
    opt: ConfiguredOptimizer,
    lambda_max: Any,
    spectrum: Any,
    batch_size: Any,
    noise: Any,
    schedule: Any,
) -> Report:
    alg = opt.algorithm
    shift = float(to_exact(opt.curvature_shift))
    cur = _curvature(alg, opt.curvature_shift, lambda_max, spectrum)
    caveats = [*_CAVEATS, *cur.notes]
    if shift:
        caveats.append(_shift_note(shift))
    a_eff = float(alg.effective_lr())
    noise_info = None
    if batch_size is not None:
        noise_info, notes = _noise_info(opt, cur, batch_size, noise)
        caveats.extend(n for n in notes if n not in caveats)
    max_lr, binding = largest_stable_lr(
        opt, lambda_max=lambda_max, spectrum=cur.spectrum, batch_size=batch_size, noise=noise
    )
    sched_info = None
    if schedule is not None:
        sched_info = _schedule_info(opt, schedule, max_lr, a_eff)
        caveats.append(_SCHEDULE_CAVEAT)
    label = cur.label
    adam_info = None
    if opt.kind is not None and opt.kind.family == "adam":
        adam_info = _adam_info(opt, cur.strict, shift, cur.top)
        caveats = [c for c in caveats if c not in opt.notes] + list(opt.notes) + [_ADAM_TRANSIENT]
        label = f"preconditioned curvatures (eigenvalues of P^-1 H): {label}"
    return Report(
        _verdict(cur.strict, noise_info, sched_info),
        opt.source,
        {k: _plain(v) for k, v in opt.config.items()},
        repr(alg),
        label,
        a_eff,
        cur.strict.to_dict(),
        float(spectral_radius(alg, cur.grid).max()),
        noise_info,
        max_lr,
        sched_info,
        caveats,
        max_lr_binding=binding,
        adam=adam_info,
    )


@dataclass(frozen=True)
class _Curvature:
    """What a check knows of the curvature: a label, the exact strict verdict, the largest
    curvature, a grid for the spectral radius, the spectrum object (``None`` for an interval)
    and its notes."""

    label: str
    strict: Any
    top: float
    grid: np.ndarray
    spectrum: Any
    notes: tuple[str, ...]


def _curvature(alg: MemoryAlgorithm, shift: Any, lambda_max: Any, spectrum: Any) -> _Curvature:
    shift_exact = to_exact(shift)
    shift_f = float(shift_exact)
    if lambda_max is not None:
        lm = to_float(lambda_max, "lambda_max")
        if lm <= 0:
            raise ConfigError(f"lambda_max must be in (0, inf), got {describe(lambda_max)}")
        top = to_exact(to_sympy(lambda_max, "lambda_max"))
        strict = is_strictly_stable(alg, top, shift=shift_exact)
        grid = np.linspace(lm / 2000, lm, 2000) + shift_f
        return _Curvature(f"curvatures in (0, {lm:g}]", strict, lm, grid, None, ())
    spec = as_spectrum(spectrum)
    if isinstance(spec, PowerLawSpectrum):
        label = f"power law nu={spec.nu:g}, Lambda={spec.Lambda:g}, N={spec.N if spec.N else 'inf'}"
        strict = is_strictly_stable(alg, spec.top, shift=shift_exact)
        grid = spec.eigenvalues(min(spec.N or 10**5, 10**5)) + shift_f
        return _Curvature(label, strict, spec.Lambda, grid, spec, ())
    lam = spec.lam
    what = "eigenvalues" if not spec.notes else "weighted nodes"
    label = f"{lam.size} {what} in [{lam.min():.4g}, {lam.max():.4g}]"
    strict = is_strictly_stable(alg, lam, shift=shift_exact)
    return _Curvature(label, strict, float(lam.max()), _spread(lam) + shift_f, spec, spec.notes)


def _noise_info(
    opt: ConfiguredOptimizer, cur: _Curvature, batch_size: Any, noise: Any
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The certified noise sum and critical batch size, and the notes they carry."""
    if cur.spectrum is None:
        raise ConfigError("the noise analysis (batch_size) needs spectrum=, not lambda_max")
    alg, shift = opt.algorithm, opt.curvature_shift
    res = stability_sum(alg, cur.spectrum, batch_size, noise, shift=shift)
    critical = (
        critical_batch_size(alg, cur.spectrum, noise, shift=shift)
        if cur.strict.stable
        else math.inf
    )
    info = {
        "model": res.noise.name,
        "tau1": res.noise.tau1,
        "tau2": res.noise.tau2,
        "batch_size": res.batch_size,
        "U": res.U,
        "bounded": res.bounded,
        "margin": res.margin,
        "reason": res.reason,
        "critical_batch_size": critical,
        "tolerance": res.tolerance,
        "undecided": res.undecided,
    }
    return info, res.notes


_SCHEDULE_CAVEAT = (
    "schedule verdicts concern the optimizer's filter with alpha[t] = lr F[t] (the LTV view), "
    "not the loss; the peak and first crossing compare lr F[t] with the largest stable lr at "
    "the given curvature (frozen over the schedule)"
)


def _schedule_info(
    opt: ConfiguredOptimizer, schedule: Any, max_lr: float | None, a_eff: float
) -> dict[str, Any]:
    cfg = {"optimizer": opt.kind.name, **opt.config} if opt.kind else {"optimizer": "sgd"}
    lr = float(opt.config.get("lr", opt.config.get("learning_rate", a_eff)))
    v = ltv_verdict(filter_from_config(cfg), lr, schedule)
    return {"name": schedule.name, **v.to_dict(), **_crossing(lr, schedule, max_lr)}


def _verdict(strict: Any, noise_info: Any, sched_info: Any) -> str:
    """``stable``, ``unstable`` or ``marginal`` (stable, but within 1e-9 of a boundary)."""
    stable = strict.stable and (noise_info is None or noise_info["bounded"])
    if sched_info is not None and sched_info.get("peak_stable") is False:
        stable = False  # the run reaches an unstable learning rate
    near = (strict.stable and strict.headroom < 1 + 1e-9) or (
        noise_info is not None and noise_info["bounded"] and noise_info["U"] > 1 - 1e-9
    )
    if stable and near:
        return "marginal"
    return "stable" if stable else "unstable"


_ADAM_TRANSIENT = (
    "bias corrections (1 - beta1^t, 1 - beta2^t) act during the first ~1/(1 - beta2) steps: "
    "the verdict concerns the steady state"
)


def _adam_info(
    opt: ConfiguredOptimizer, strict: Any, shift: float, sharpness: float
) -> dict[str, Any]:
    """What the frozen-preconditioner verdict means for real Adam (docs §6.4)."""
    threshold = strict.lambda_crit - shift  # in units of the preconditioned curvature
    ratio = sharpness / threshold if threshold > 0 else math.inf
    if ratio < 1:
        meaning = (
            f"below the threshold: stable at this preconditioner. During training the "
            f"preconditioned sharpness typically rises until it sits at {threshold:.6g} (the "
            "adaptive edge of stability)."
        )
    else:
        meaning = (
            f"ABOVE the threshold: real Adam (beta2 < 1) does not simply diverge: v grows until "
            f"the preconditioned sharpness is back at {threshold:.6g}; expect loss spikes and "
            "slower progress. It is a hard limit when beta2 -> 1 (v cannot follow) or when the "
            "learning rate rises faster than v adapts (warm-up)."
        )
    return {"threshold": threshold, "sharpness": sharpness, "ratio": ratio, "meaning": meaning}


def _crossing(lr: float, schedule: Any, limit: float | None) -> dict[str, Any]:
    """The peak of ``lr F[t]`` and the first step above the largest stable lr ``limit``."""
    lrs = lr * schedule.values
    out: dict[str, Any] = {"peak_lr": float(lrs.max())}
    if limit is not None:
        above = np.flatnonzero(lrs > limit)
        out.update(
            limit_lr=limit,
            peak_stable=bool(above.size == 0),
            first_unstable_step=int(above[0]) if above.size else None,
        )
    return out


def _plain(value: Any) -> Any:
    """A config value as a float (tuples element-wise), booleans and None as they are."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, tuple | list):
        return tuple(_plain(v) for v in value)
    return float(value)


def _spread(lam: np.ndarray, n: int = 4096) -> np.ndarray:
    """At most ``n`` eigenvalues spanning ``lam`` (extremes kept) for the spectral radius."""
    if lam.size <= n:
        return lam
    srt = np.sort(lam[np.linspace(0, lam.size - 1, n).astype(np.int64)])
    return np.unique(np.concatenate([[lam.min()], srt, [lam.max()]]))
