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

from . import progress
from ._values import to_exact, to_float, to_sympy
from .algorithms import MemoryAlgorithm
from .checkers.minibatch import minibatch_verdict
from .checkers.searches import largest_stable_lr
from .checkers.steps import stable_steps
from .errors import ConfigError, describe
from .ltv.filters import filter_from_config
from .ltv.schedules import Schedule
from .ltv.verdicts import ltv_verdict
from .noise.data import DataNoise, check_work
from .noise.persample import PerSampleCurvature
from .noise.spectra import PowerLawSpectrum, Spectrum, as_spectrum
from .noise.sums import _shift_note
from .optimizers import ConfiguredOptimizer, from_optimizer
from .regions.geometry import spectral_radius
from .regions.verdicts import is_strictly_stable
from .report import Report, ReportSet
from .training.schedulers import DEFAULT_STEPS, horizon_of, is_torch_scheduler, scheduler_groups

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
    data: Any = None,
    batch_size: Any = None,
    noise: Any = "gaussian",
    sampling: str = "with_replacement",
    schedule: Any = None,
    tol: float = 1e-3,
    drop_last: bool | None = None,
) -> Report | ReportSet:
    """Check an optimizer configuration against what is known about the curvature.

    ``config`` is a mapping (see :func:`stability.from_optimizer`), a torch optimizer object,
    a :class:`ConfiguredOptimizer` or a :class:`MemoryAlgorithm`. Give ``lambda_max`` (all
    curvatures in ``(0, lambda_max]``), ``spectrum`` (eigenvalues, a
    :class:`~stability.noise.Spectrum` or a power law) or ``data``; ``batch_size`` adds the
    mini-batch noise analysis.

    With ``data`` the verdict comes from the data's own per-sample curvature (the exact
    mean-square condition, docs §4.4): ``data`` is ``(X, Y)`` or ``X`` of a linear model
    trained with torch's ``MSELoss()`` (:meth:`~stability.noise.PerSampleCurvature.from_features`
    for another convention), or the per-sample curvature of a network
    (:func:`stability.training.per_sample_ggn`); ``sampling`` says how batches are drawn
    (``with_replacement``: ``B`` independent samples, or ``without_replacement``: each batch an
    independent random subset of ``B`` distinct samples; neither is a shuffled epoch of
    disjoint batches, whose threshold can differ when an epoch has few batches, docs §4.4).
    Without data the mini-batch noise follows the Gaussian (SE) model ``noise`` on the
    spectrum, which on real data can be off by an order of magnitude either way.

    ``schedule`` (a :class:`~stability.ltv.Schedule` or a torch
    lr scheduler) adds the LTV verdict and the verdict of every scheduled step. A torch
    scheduler's learning rates (and momenta) are absolute: the configuration is analysed at
    the schedule's first step, whatever its own lr says.

    ``batch_size`` may be a list: the result is then a :class:`~stability.report.ReportSet`
    with one report per batch size (and a table), sharing everything that does not depend on
    the batch size (with data: the response matrices and the radii, ``rho(B) = kappa_B
    rho_1``). ``tol`` is the relative accuracy of the data model's largest stable learning
    rate (the value is certified stable; the edge is within ``tol`` above it). ``drop_last``
    (with data) says whether the DataLoader drops the epoch's partial last batch (``n mod B``
    samples): ``False``, its default, models it (the epoch-average batch factor, with the
    partial batch's own ``rho`` beside it); ``None`` notes it when ``B`` does not divide ``n``.

    ``bool(report)`` is ``report.stable``: ``if check(...):`` passes only a stable verdict.

    >>> r = check({"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}, lambda_max=30.0)
    >>> r.verdict, round(r.strict["lambda_crit"], 6)
    ('stable', 38.0)
    """

    tol = _tolerance(tol)
    if drop_last is not None and not isinstance(drop_last, bool):
        raise ConfigError(f"drop_last must be True, False or None, got {describe(drop_last)}")
    if drop_last is not None and data is None:
        raise ConfigError("drop_last= describes the batches of data=: it needs data")
    if _is_many(batch_size):
        return _check_many(
            config, lambda_max, spectrum, data, batch_size, noise, sampling, schedule, tol,
            drop_last,
        )  # fmt: skip
    _check_noise_size(spectrum, batch_size)
    model = _data_model(data, sampling, noise, lambda_max, spectrum)
    if model is None and (lambda_max is None) == (spectrum is None):
        raise ConfigError("give exactly one of lambda_max, spectrum and data")
    groups = _configured(config)
    schedules = _group_schedules(schedule, len(groups))
    horizon_note = _horizon_note(schedule)
    groups = [
        _at_first_step(g, sch) if sch is not None and sch.base_lr is not None else g
        for g, sch in zip(groups, schedules, strict=True)
    ]
    if model is not None:
        _check_data_for_adam(groups, data)
        noise, spectrum = (
            model,
            Spectrum._of_own(
                model.data.eigenvalues, np.broadcast_to(1.0, model.data.eigenvalues.shape)
            ),
        )
    reports = [
        _check_one(g, lambda_max, spectrum, batch_size, noise, sch, tol, drop_last)
        for g, sch in zip(groups, schedules, strict=True)
    ]
    for r in reports:
        r.caveats.extend(horizon_note)
    if len(reports) == 1:
        return reports[0]
    limiting = _limiting_group(reports)
    worst = reports[limiting]
    return Report(
        worst.verdict,
        worst.source,
        {},
        "",
        worst.spectrum,
        worst.effective_lr,
        worst.strict,
        caveats=[*_CAVEATS, _GROUPS_CAVEAT],
        groups=reports,
        limiting_group=limiting,
    )


_GROUPS_CAVEAT = (
    "parameter groups: each group's settings are checked against the whole curvature given "
    "(the curvature of its own parameters is at most that); with one momentum for all groups "
    "this is sufficient for the joint dynamics, whose curvature is that of D^1/2 H D^1/2 with "
    "D the per-parameter learning rates"
)


def _limiting_group(reports: list[Report]) -> int:
    """The group that sets the limit: the worst verdict, then the least headroom (its
    learning rate, or its schedule's peak, over its largest stable learning rate)."""
    order = {"unstable": 0, "marginal": 1, "stable": 2}

    def use(r: Report) -> float:
        sched = r.schedule or {}
        lr = sched.get("peak_lr") or r.config.get("lr") or r.config.get("learning_rate")
        limit = r.max_stable_lr
        if lr is None or limit is None or not limit > 0:
            return math.inf if r.verdict == "unstable" else 0.0
        return float(lr) / float(limit)

    return min(range(len(reports)), key=lambda i: (order[reports[i].verdict], -use(reports[i])))


def _horizon_note(schedule: Any) -> list[str]:
    """What was read of a torch scheduler that declares no horizon."""
    if schedule is None or not is_torch_scheduler(schedule) or horizon_of(schedule) is not None:
        return []
    return [
        f"schedule: {type(schedule).__name__} declares no last step, so its first "
        f"{DEFAULT_STEPS} steps were read (a LambdaLR calls its function once per step and "
        "group); for the run's own length pass stability.training.schedule_from_torch("
        "scheduler, steps=N)"
    ]


def _group_schedules(schedule: Any, groups: int) -> list[Schedule | None]:
    """One schedule per parameter group: a torch scheduler gives each group its own (read from
    one replay); a :class:`~stability.ltv.Schedule` is shared."""
    if schedule is None:
        return [None] * groups
    if is_torch_scheduler(schedule):
        per_group = scheduler_groups(schedule)
        if len(per_group) != groups:
            raise ConfigError(
                f"schedule: the scheduler's optimizer has {len(per_group)} param group(s), the "
                f"configuration {groups}: pass the optimizer the scheduler was built on"
            )
        return list(per_group)
    if not isinstance(schedule, Schedule):
        raise ConfigError(
            "schedule must be a stability.ltv.Schedule, e.g. "
            "stability.ltv.schedule('cosine', 1000) or schedule('array', n, "
            f"values=...), got {describe(schedule)}"
        )
    return [schedule] * groups


_MAX_NOISE_EIGENVALUES = 4 * 10**6
"""Most eigenvalues of an array spectrum :func:`check` takes with a batch size: near its
threshold the certified noise sum passes over every eigenvalue for each batch size the critical
batch size search visits (1e7 eigenvalues: 10 s; 1e8: minutes)."""


def _check_noise_size(spectrum: Any, batch_size: Any) -> None:
    """Refuse, before any work, an eigenvalue array too long for the certified noise sums."""
    if batch_size is None or spectrum is None or isinstance(spectrum, PowerLawSpectrum):
        return
    size = int(np.size(spectrum)) if isinstance(spectrum, np.ndarray) else None
    if isinstance(spectrum, Spectrum):
        size = int(spectrum.lam.size)
    if size is None and isinstance(spectrum, list | tuple):
        size = len(spectrum)
    if size is not None and size > _MAX_NOISE_EIGENVALUES:
        raise ConfigError(
            f"spectrum: {size:,} eigenvalues with a batch_size; the certified mini-batch noise "
            f"sum takes at most {_MAX_NOISE_EIGENVALUES:,} (near its threshold it passes over "
            "every eigenvalue for each batch size it tries): keep the top eigenvalues exactly "
            "and pass the rest as a weighted density, stability.Spectrum.from_arrays(nodes, "
            "weights) (e.g. np.histogram of the bulk), or a power law"
        )


def _is_many(batch_size: Any) -> bool:
    return isinstance(batch_size, list | tuple | np.ndarray)


def _check_many(
    config: Any, lambda_max: Any, spectrum: Any, data: Any, batch_size: Any, noise: Any,
    sampling: str, schedule: Any, tol: float, drop_last: bool | None,
) -> ReportSet:  # fmt: skip
    """:func:`check` at each batch size of a list, with the data model built once (its
    response matrices and radii are shared by every batch size)."""
    sizes = list(np.asarray(batch_size, dtype=object).ravel())
    if not sizes:
        raise ConfigError("batch_size must not be an empty list")
    if len(sizes) > 1000:
        raise ConfigError(f"batch_size takes at most 1000 sizes, got {len(sizes)}")
    model = _data_model(data, sampling, noise, lambda_max, spectrum)
    shared = {"data": model, "sampling": model.sampling if model is not None else sampling}
    out = ReportSet()
    for i, b in enumerate(sizes):
        progress.update("batch sizes", i, len(sizes))
        out.append(
            check(config, lambda_max=lambda_max, spectrum=spectrum, batch_size=b, noise=noise,
                  schedule=schedule, tol=tol, drop_last=drop_last, **shared)
        )  # fmt: skip
    progress.done("batch sizes")
    return out


def _tolerance(tol: Any) -> float:
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not 1e-12 <= tol <= 0.1:
        raise ConfigError(f"tol must be a relative accuracy in [1e-12, 0.1], got {describe(tol)}")
    return float(tol)


def _data_model(
    data: Any, sampling: Any, noise: Any, lambda_max: Any, spectrum: Any
) -> DataNoise | None:
    """The data noise model of ``check(data=...)``, or ``None`` without data."""
    if data is None:
        if sampling != "with_replacement":
            raise ConfigError("sampling= says how batches of the data are drawn: it needs data=")
        return None
    if lambda_max is not None or spectrum is not None:
        raise ConfigError(
            "give data= or a curvature (lambda_max=, spectrum=), not both: with data the "
            "curvature is the data's own H"
        )
    if not (isinstance(noise, str) and noise == "gaussian"):
        raise ConfigError(
            "noise= names a Gaussian/SE model; with data= the data's own noise is used"
        )
    if isinstance(data, DataNoise):  # kept as it is (its memo): sampling= may only confirm it
        keep = sampling in ("with_replacement", data.sampling)
        model = data if keep else DataNoise(data.data, sampling)
    elif isinstance(data, PerSampleCurvature):
        model = DataNoise(data, sampling)
    elif isinstance(data, tuple | list) and len(data) == 2:
        model = DataNoise(PerSampleCurvature.from_features(data[0], data[1]), sampling)
    elif isinstance(data, tuple | list) and len(data) == 1:
        model = DataNoise(PerSampleCurvature.from_features(data[0]), sampling)
    else:
        model = DataNoise(PerSampleCurvature.from_features(data), sampling)
    check_work(model.data)
    return model


def _check_data_for_adam(groups: list[ConfiguredOptimizer], data: Any) -> None:
    """Adam's verdict concerns ``P^-1/2 H_i P^-1/2`` (a frozen preconditioner): raw features
    are the wrong curvature, a per-sample curvature built for it is taken (the report's
    caveat says which curvature it must be)."""
    adam = any(g.kind is not None and g.kind.family == "adam" for g in groups)
    if adam and not isinstance(data, PerSampleCurvature | DataNoise):
        raise ConfigError(
            "data=(X, Y) gives the per-sample curvature of plain SGD; Adam's frozen-"
            "preconditioner verdict needs that of the preconditioned problem, P^-1/2 H_i "
            "P^-1/2: pass per_sample_ggn(model, loss, x, preconditioner=optimizer) (a torch "
            "Adam/AdamW that has taken a step: its live sqrt(v_hat) + eps), "
            "PerSampleCurvature.from_features(X / sqrt(P)) for a linear model with one output "
            "(P = sqrt(v_hat) + eps per feature, stability.training.adam_preconditioner), or "
            "from_factors(F_i / sqrt(P))"
        )


def _at_first_step(opt: ConfiguredOptimizer, schedule: Schedule) -> ConfiguredOptimizer:
    """The configuration at an absolute schedule's first step (its lr, and its momentum when
    the schedule moves it); unchanged for a bare algorithm, which has no lr to set."""
    if opt.kind is None:
        return opt
    cfg = dict(opt.config)
    lr0 = float(schedule.base_lr * schedule.values[0])
    if lr0 == float(cfg[opt.kind.lr_key]) and schedule.momentum is None:
        return opt
    cfg[opt.kind.lr_key] = lr0 if lr0 > 0 else float(cfg[opt.kind.lr_key])
    if schedule.momentum is not None:
        m0 = float(schedule.momentum[0])
        if opt.kind.family == "sgd":
            cfg["momentum"] = m0
        elif "betas" in cfg:
            cfg["betas"] = (m0, cfg["betas"][1])
        else:
            cfg["b1"] = m0
    return from_optimizer({"optimizer": opt.kind.name, **cfg})[0]


def _check_one(
    opt: ConfiguredOptimizer,
    lambda_max: Any,
    spectrum: Any,
    batch_size: Any,
    noise: Any,
    schedule: Any,
    tol: float = 1e-3,
    drop_last: bool | None = None,
) -> Report:
    alg = opt.algorithm
    shift = float(to_exact(opt.curvature_shift))
    cur = _curvature(alg, opt.curvature_shift, lambda_max, spectrum)
    caveats = [*_CAVEATS, *cur.notes]
    decoupled = opt.kind is not None and opt.kind.decoupled  # its own note says how
    if shift and not decoupled:
        caveats.append(_shift_note(shift))
    a_eff = float(alg.effective_lr())
    noise_info = None
    if batch_size is not None:
        if cur.spectrum is None:
            raise ConfigError(
                "the noise analysis (batch_size) needs spectrum= or data=, not lambda_max"
            )
        noise_info, notes = minibatch_verdict(
            opt, cur.spectrum, cur.strict.stable, batch_size, noise, drop_last
        )
        skip = {_shift_note(shift)} if decoupled else set()
        caveats.extend(n for n in notes if n not in caveats and n not in skip)
    max_lr, binding = largest_stable_lr(
        opt,
        lambda_max=lambda_max,
        spectrum=cur.spectrum,
        batch_size=batch_size,
        noise=noise,
        rtol=tol if isinstance(noise, DataNoise) else 1e-6,
    )
    label = cur.label
    if isinstance(noise, DataNoise):
        exact = noise.data.subspace == "the range of H (exact)"
        label = f"the data's H{'' if exact else ' in ' + noise.data.subspace}: {label}"
        if noise_info is not None:
            caveats.extend(
                _compare_with_gaussian(opt, cur.spectrum, batch_size, max_lr, noise_info)
            )
    sched_info = None
    if schedule is not None:
        curvature = {
            "lambda_max": lambda_max,
            "spectrum": cur.spectrum,
            "batch_size": batch_size,
            "noise": noise,
        }
        sched_info, notes = _schedule_info(opt, schedule, max_lr, a_eff, curvature)
        caveats += [_SCHEDULE_CAVEAT, *notes]
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


def _compare_with_gaussian(
    opt: ConfiguredOptimizer, spectrum: Any, batch_size: Any, max_lr: Any, info: dict[str, Any]
) -> list[str]:
    """The Gaussian model's largest stable lr on the same ``H``, into ``info``, and a warning
    when it differs from the data's by more than 2x."""
    g_lr, _ = largest_stable_lr(opt, spectrum=spectrum, batch_size=batch_size, noise="gaussian")
    info["gaussian"]["max_stable_lr"] = g_lr
    if g_lr is None or max_lr is None or not max_lr > 0:
        return []
    ratio = g_lr / max_lr
    info["gaussian"]["lr_ratio"] = ratio
    if 0.5 <= ratio <= 2:
        return []
    way = (
        "too permissive: it would call configurations stable that blow up"
        if ratio > 1
        else ("too cautious")
    )
    return [
        f"the Gaussian noise model on the same H would allow lr up to {g_lr:.4g}, {ratio:.3g}x "
        f"the data's {max_lr:.4g}: on this data it is {way}"
    ]


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


_SCHEDULE_CAVEAT = (
    "schedule: BIBO/UES concern the optimizer's filter with alpha[t] = lr F[t] (the LTV view), "
    "not the loss; the peak and first unstable step check every scheduled learning rate (and "
    "momentum) at the given curvature, frozen over the schedule (in training the curvature "
    "moves: watch it with stability.training.StabilityMonitor)"
)


def _schedule_info(
    opt: ConfiguredOptimizer,
    schedule: Schedule,
    max_lr: float | None,
    a_eff: float,
    curvature: dict[str, Any],
) -> tuple[dict[str, Any], list[str]]:
    """The LTV verdict of the schedule and the certified verdict of every scheduled step
    (its learning rate, and momentum when the schedule cycles it), with caveats."""
    cfg = {"optimizer": opt.kind.name, **opt.config} if opt.kind else {"optimizer": "sgd"}
    lr_cfg = float(opt.config.get("lr", opt.config.get("learning_rate", a_eff)))
    base = schedule.base_lr if schedule.base_lr is not None else lr_cfg
    notes: list[str] = []
    if schedule.base_lr is not None and opt.kind is not None and lr_cfg != base:
        notes.append(
            f"the learning rates come from the scheduler (its base lr {base:.6g}); the "
            f"configuration's current lr {lr_cfg:.6g} is its value at step 0, not its base"
        )
    v = ltv_verdict(filter_from_config(cfg), base, schedule)
    lrs = base * schedule.values
    out: dict[str, Any] = {"name": schedule.name, **v.to_dict(), "peak_lr": float(lrs.max())}
    if schedule.momentum is not None:
        out["momentum_range"] = [float(schedule.momentum.min()), float(schedule.momentum.max())]
    if opt.kind is not None and max_lr is not None:
        ok, decided = stable_steps(opt, lrs, schedule.momentum, **curvature)
        bad = np.flatnonzero(~ok)
        out.update(
            limit_lr=max_lr,
            peak_stable=bool(bad.size == 0),
            first_unstable_step=int(bad[0]) if bad.size else None,
            lr_at_first_unstable_step=float(lrs[bad[0]]) if bad.size else None,
        )
        if not decided:
            notes.append(
                "the mini-batch noise along the schedule could not be certified (more than "
                "64 distinct momenta, each needing its own certified sums): its steps are "
                "counted as not bounded, so the first unstable step is a lower bound"
            )
        out["noise_decided"] = decided
    return out, notes


def _verdict(strict: Any, noise_info: Any, sched_info: Any) -> str:
    """``stable``, ``unstable`` or ``marginal`` (stable, but within 1e-9 of a boundary)."""
    stable = strict.stable and (noise_info is None or noise_info["bounded"])
    if sched_info is not None and sched_info.get("peak_stable") is False:
        stable = False  # the run reaches an unstable learning rate
    near = (strict.stable and strict.headroom < 1 + 1e-9) or (
        noise_info is not None and noise_info["bounded"] and _noise_value(noise_info) > 1 - 1e-9
    )
    if stable and near:
        return "marginal"
    return "stable" if stable else "unstable"


def _noise_value(info: dict[str, Any]) -> float:
    """The figure whose level set at 1 is the mini-batch threshold: ``U`` (Gaussian/SE model)
    or the certified upper bound on ``rho`` (the data model)."""
    return float(info["upper"] if info["kind"] == "data" else info["U"])


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
