"""The certified mini-batch verdict of a configured optimizer, as a report shows it: the
Gaussian (SE) noise sum ``U`` on a spectrum, or the exact mean-square condition ``rho`` from
the data's own per-sample curvature beside the Gaussian model's figures; each with its
critical batch size and the caveats that say which model answered."""

from __future__ import annotations

import math
from typing import Any

from ..noise.data import DataNoise, mean_square_radius
from ..noise.persample import batch_factor
from ..noise.sums import stability_sum
from ..optimizers import ConfiguredOptimizer
from .batches import critical_batch_size

__all__ = ["EPOCH_BATCHES", "minibatch_verdict"]


def minibatch_verdict(
    opt: ConfiguredOptimizer,
    spectrum: Any,
    strict_ok: bool,
    batch_size: Any,
    noise: Any,
    drop_last: bool | None = None,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``(info, notes)``: the certified noise verdict and critical batch size of ``opt`` on
    ``spectrum`` (the data's ``H`` with the data noise model), for a report. ``drop_last``
    (data only): ``False`` models the partial last batch a DataLoader keeps by default."""
    alg, shift = opt.algorithm, opt.curvature_shift
    if isinstance(noise, DataNoise):
        info, notes = _data_noise_info(opt, spectrum, strict_ok, batch_size, noise)
        return info, notes + _partial_batch(info, opt, noise, batch_size, drop_last)
    res = stability_sum(alg, spectrum, batch_size, noise, shift=shift)
    critical = critical_batch_size(alg, spectrum, noise, shift=shift) if strict_ok else math.inf
    info = {
        "model": res.noise.name,
        "kind": "gaussian" if res.noise.name == "gaussian" else "se",
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
    return info, (*res.notes, _GAUSSIAN_CAVEAT)


_GAUSSIAN_CAVEAT = (
    "the mini-batch verdict follows the Gaussian (SE) noise model on the spectrum: exact for "
    "Gaussian features, but on real, heavy-tailed data it can be off by an order of magnitude "
    "either way; pass data=(X, Y) (a linear model, CLI --data) or "
    "stability.training.per_sample_ggn(...) (a network) for the exact condition from the data"
)


_DATA_CAVEAT = (
    "the mini-batch verdict comes from the data's own per-sample curvature: exact mean-square "
    "stability of the linearised (quadratic) dynamics{where}; a network may run beyond it at "
    "the edge of stability: watch training with stability.training.StabilityMonitor"
)


EPOCH_BATCHES = 20
"""Batches per epoch below which a report says a shuffled epoch may differ from the model."""

_SAMPLING_WORDS = {
    "with_replacement": "B independent samples each",
    "without_replacement": "each an independent random subset of B distinct samples",
}


def _partial_batch(
    info: dict[str, Any], opt: ConfiguredOptimizer, model: DataNoise, batch_size: Any,
    drop_last: bool | None,
) -> tuple[str, ...]:  # fmt: skip
    """The epoch's partial last batch (``n mod B`` samples when a DataLoader keeps it,
    ``drop_last=False``): one step in ``ceil(n / B)`` has the larger batch factor ``kappa_r``.
    The verdict takes the epoch-average factor (the second moments respond over many steps);
    the partial batch's own ``rho`` is shown beside it, and stability at the larger factor
    alone (every step as noisy as the partial one) would be the certified sufficient
    condition."""
    n, B = model.data.n, float(batch_size)
    rest = n % B if B == int(B) and 1 <= B < n else 0.0
    if not rest:
        return ()
    if drop_last is None:
        return (
            f"{n} samples are not a multiple of B = {B:g}: a DataLoader with drop_last=False "
            f"(its default) also takes a last batch of {rest:g} samples each epoch; pass "
            "drop_last=False to model it, or True to confirm that it is dropped",
        )
    if drop_last:
        return (f"the epoch's last {rest:g} samples are dropped (drop_last=True)",)
    alg, shift = opt.algorithm, opt.curvature_shift
    steps = math.ceil(n / B)
    k_b, k_r = batch_factor(B, n, model.sampling), batch_factor(rest, n, model.sampling)
    k_avg = ((steps - 1) * k_b + k_r) / steps
    part = model.radius(alg, rest, shift=shift, rtol=1e-6)
    if k_b > 0 and info["bounded"] is not None and math.isfinite(info["upper"]):
        scale = k_avg / k_b
        info["rho"], info["lower"], info["upper"] = (
            info["rho"] * scale, info["lower"] * scale, info["upper"] * scale,
        )  # fmt: skip
        info["bounded"] = bool(info["bounded"] and info["upper"] < 1)
        info["undecided"] = bool(info["lower"] <= 1 <= info["upper"] and info["undecided"])
    info["partial_batch"] = {
        "size": rest,
        "steps_per_epoch": steps,
        "kappa_epoch_average": k_avg,
        "rho_alone": part.rho,
        "bounded_alone": part.stable,
    }
    return (
        f"drop_last=False: each epoch has {steps - 1} batches of {B:g} and one of {rest:g}; rho "
        f"is that of the epoch-average batch factor ({k_avg:.4g} against {k_b:.4g} for a full "
        f"batch; an approximation: the second moments respond over many steps). The last batch "
        f"alone has rho = {part.rho:.4g} ({'bounded' if part.stable else 'NOT bounded'}): "
        "every step that noisy would be the certified sufficient condition",
    )


def _data_noise_info(
    opt: ConfiguredOptimizer, spectrum: Any, strict_ok: bool, batch_size: Any, model: DataNoise
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The exact mean-square condition from the data, beside the Gaussian model's figures."""
    alg, shift = opt.algorithm, opt.curvature_shift
    data = model.data
    res = model.radius(alg, batch_size, shift=shift, rtol=1e-6)
    if res.strict and not res.decided:  # within 1e-6 of 1: as far as floats can decide
        res = model.radius(alg, batch_size, shift=shift, rtol=1e-10)
    critical = model.critical_batch_size(alg, shift) if res.strict else math.inf
    gauss = stability_sum(alg, spectrum, batch_size, "gaussian", shift=shift)
    per = data.summary()
    info: dict[str, Any] = {
        "model": f"data ({model.sampling.replace('_', ' ')})",
        "kind": "data",
        "batch_size": res.batch_size,
        "sampling": model.sampling,
        "kappa": res.kappa,
        "rho": res.rho,
        "lower": res.lower,
        "upper": res.upper,
        "bounded": res.stable,
        "undecided": res.strict and not res.decided,
        "reason": res.reason,
        "critical_batch_size": critical,
        "per_sample": per,
        "gaussian": {"U": gauss.U, "bounded": gauss.bounded},
    }
    if opt.kind is not None and opt.kind.family == "sgd":
        mu = float(opt.config.get("momentum", 0) or 0)
        info["implied_lr_bound"] = (
            2 * res.batch_size * (1 - mu) / per["sample_lambda_max"]["max"]
        )  # one sample's curvature alone: a rough guide, not the condition
    notes = [*res.notes]
    if data.subspace != "the range of H (exact)" and data.dim >= 2:
        half = mean_square_radius(
            alg, data.truncated(data.dim // 2), batch_size, sampling=model.sampling,
            shift=shift, rtol=1e-6,
        )  # fmt: skip
        info["subspace"] = {"dimension": data.dim, "rho_half": half.rho}
        change = abs(res.rho - half.rho) / max(res.rho, 1e-300)
        notes.append(
            f"subspace of {data.dim} directions ({data.subspace}): rho {half.rho:.4g} with "
            f"{data.dim // 2}, {res.rho:.4g} with {data.dim} ({change:.1%} change)"
        )
    where = "" if data.subspace == "the range of H (exact)" else f" in {data.subspace}"
    notes.append(_DATA_CAVEAT.format(where=where))
    per_epoch = data.n / max(float(res.batch_size), 1.0)
    if per_epoch < EPOCH_BATCHES:
        notes.append(
            f"batches are modelled as drawn independently ({_SAMPLING_WORDS[model.sampling]}); "
            f"a shuffled DataLoader's epoch of {per_epoch:.3g} disjoint batches is not, and with "
            f"fewer than {EPOCH_BATCHES} batches per epoch its threshold can differ by up to "
            "about 1.3x either way (docs §4.4): keep a margin"
        )
    return info, tuple(notes)
