"""The mean-square (mini-batch) edge at a point of a training run, for the stability monitor.

Full-batch training is stable while the (preconditioned) sharpness stays below the threshold of
the optimizer's settings. Mini-batch training has a lower edge: the noise of the batches makes
the second moments grow once the spectral radius ``rho`` of the data noise operator passes 1
(docs §4.4). At each check the monitor takes the per-sample Gauss-Newton curvature of its data
in the top ``r`` (8) Gauss-Newton directions (found by Lanczos at the first check and tracked
since, :func:`stability.training.tracked_ggn`, with Adam's preconditioner when there is one),
and the largest learning rate with a certified ``rho < 1`` at the run's batch size follows
from the data model. The top directions matter:
on a tanh MLP on digits (B = 1, momentum 0.9) the 8 converged Gauss-Newton directions gave a
limit of 0.060 where constant-lr runs diverge from 0.057-0.08; the Ritz vectors of the
sharpness' own short warm-started Lanczos run gave 0.12-0.18 (their lower vectors are mostly
the random start), and 64 directions gave 0.003 (slow directions whose noise does not show in
hundreds of steps). With the whole data
set as the batch there is no noise (``kappa_B = 0``) and the edge is the full-batch one.

What it assumes, and the record says: the curvature in the top ``r`` directions (the dynamics
outside them are left out), the Gauss-Newton part of the Hessian, the monitored samples standing
for the training set, and batches drawn as independent subsets (a shuffled epoch with few
batches can differ, docs §4.4). It is the edge of the linearised dynamics at the current point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, describe
from ..noise.data import DataNoise
from ..noise.persample import batch_factor

__all__ = ["Batching", "batching"]


@dataclass(frozen=True)
class Batching:
    """How the run draws its batches: ``batch_size``, the data set size ``n`` (``None``:
    unknown, batches of independent samples), ``sampling`` and the epoch-average batch factor
    ``kappa`` (with ``drop_last=False`` one batch per epoch has the remainder)."""

    batch_size: int
    n: int | None
    sampling: str
    kappa: float
    source: str

    @property
    def full_batch(self) -> bool:
        return self.kappa == 0.0

    def describe(self) -> str:
        where = f" of {self.n:,} samples" if self.n else ""
        how = (
            "independent random subsets" if self.sampling == "without_replacement" else
            "independent samples (with replacement)"
        )  # fmt: skip
        return f"B = {self.batch_size}{where} ({self.source}; batches as {how})"


def batching(batch_size: Any, loader: Any, dataset_size: Any) -> Batching | None:
    """The run's batching from ``batch_size`` (with ``dataset_size`` when known) or a torch
    ``DataLoader``; ``None`` when neither is given (full-batch monitoring)."""
    if loader is not None and batch_size is not None:
        raise ConfigError("give batch_size or loader, not both (the loader says its batch size)")
    if loader is not None:
        return _from_loader(loader)
    if batch_size is None:
        if dataset_size is not None:
            raise ConfigError("dataset_size is used with batch_size: give the batch size too")
        return None
    B = _count(batch_size, "batch_size")
    if dataset_size is None:
        return Batching(B, None, "with_replacement", 1.0 / B, "batch_size")
    n = _count(dataset_size, "dataset_size")
    if B > n:
        raise ConfigError(
            f"batch_size must be at most the data set size, dataset_size = {n:,}, got {B:,}"
        )
    return Batching(B, n, "without_replacement", _kappa(B, n, True), "batch_size, dataset_size")


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {describe(value)}")
    return int(value)


def _kappa(B: int, n: int, drop_last: bool) -> float:
    """Epoch-average batch factor of subsets of ``B`` of ``n`` (a remainder batch when kept)."""
    rest = n % B
    if drop_last or not rest or B >= n:
        return batch_factor(B, n, "without_replacement")
    steps = math.ceil(n / B)
    full = batch_factor(B, n, "without_replacement")
    part = batch_factor(rest, n, "without_replacement")
    return ((steps - 1) * full + part) / steps


def _from_loader(loader: Any) -> Batching:
    import torch

    if not isinstance(loader, torch.utils.data.DataLoader):
        raise ConfigError(f"loader must be a torch DataLoader, got {describe(loader)}")
    B = loader.batch_size
    if B is None:
        raise ConfigError(
            "loader has no batch_size (a custom batch_sampler): pass batch_size=B and, if "
            "known, dataset_size=n instead of the loader"
        )
    try:
        n = len(loader.dataset)
    except TypeError:
        raise ConfigError(
            "loader's dataset has no len() (an IterableDataset): pass batch_size=B instead; "
            "batches are then taken as B independent samples"
        ) from None
    if n < 1:
        raise ConfigError("loader's dataset is empty")
    if B > n:
        raise ConfigError(f"the loader's batch_size ({B:,}) is larger than its dataset ({n:,})")
    sampler = loader.sampler
    if isinstance(sampler, torch.utils.data.distributed.DistributedSampler):
        # each of the replicas draws B of the data set's n: the averaged gradient sees B x ranks
        ranks = int(sampler.num_replicas)
        total = min(B * ranks, n)
        kappa = _kappa(total, n, bool(loader.drop_last))
        source = f"DataLoader with a DistributedSampler: B = {B} on each of {ranks} ranks"
        return Batching(total, n, "without_replacement", kappa, source)
    if isinstance(sampler, torch.utils.data.RandomSampler) and sampler.replacement:
        return Batching(B, n, "with_replacement", 1.0 / B, "DataLoader, sampled with replacement")
    kappa = _kappa(B, n, bool(loader.drop_last))
    return Batching(B, n, "without_replacement", kappa, f"DataLoader, drop_last={loader.drop_last}")


def _mean_square_limit(
    opt: Any, curvature: Any, batch: Batching, memo: dict
) -> tuple[float, float]:
    """``(lr_limit, rho)``: the largest learning rate of ``opt``'s family with a certified
    ``rho < 1`` at the batch factor (to 1 %), and ``rho`` at ``opt``'s own learning rate.
    ``memo`` carries the float systems of the family from one check to the next."""
    from ..checkers.searches import largest_stable_lr

    model = DataNoise(curvature, "with_replacement")
    model._memo.update(_affine(memo))
    B_eff = 1.0 / batch.kappa  # rho is linear in kappa: kappa = 1/B_eff with replacement
    limit, _ = largest_stable_lr(opt, batch_size=B_eff, noise=model, rtol=1e-2)
    res = model.radius(opt.algorithm, B_eff, shift=opt.curvature_shift, rtol=1e-3, decide=False)
    memo.update(_affine(model._memo))
    return float(limit), float(res.rho) if res.strict else math.inf


def _affine(memo: dict) -> dict:
    """The entries of a data model's memo that do not depend on the data: the float systems
    of the optimizer family (the radii and brackets do, and stay with their data)."""
    return {k: v for k, v in memo.items() if isinstance(k, tuple) and k[:1] == ("affine",)}
