"""Per-sample curvature: the Hessians ``H_i = F_i^T F_i`` of each sample's loss near a minimum,
in the eigenbasis of their mean ``H``, and how batches are drawn from them (docs §4.4).

A linear model's per-sample Hessians come from its features (:meth:`PerSampleCurvature.
from_features`, with the loss convention of torch's ``MSELoss()``); a network's from its
per-sample Gauss-Newton factors (:func:`stability.training.per_sample_ggn`). The mean-square
condition built on them is in :mod:`stability.noise.data`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._values import real_array
from ..errors import ConfigError, describe
from .sums import _check_batch

__all__ = ["LOSSES", "SAMPLING", "PerSampleCurvature", "batch_factor"]


SAMPLING = ("with_replacement", "without_replacement")


LOSSES = {"mse": 2.0, "half_mse": 1.0}
"""Loss conventions of a linear model with ``m`` outputs: the per-sample Hessian of each output
block is ``c / m x_i x_i^T``; torch's ``MSELoss()`` (the mean over samples and outputs) has
``c = 2``; ``half_mse`` is half of it."""


def batch_factor(batch_size: Any, n: int, sampling: str = "with_replacement") -> float:
    """``kappa_B``: ``1/B`` with replacement, ``(n - B)/(B (n - 1))`` without.

    >>> batch_factor(4, 100), round(batch_factor(4, 100, "without_replacement"), 6)
    (0.25, 0.242424)
    """
    B = _check_batch(batch_size)
    if sampling not in SAMPLING:
        raise ConfigError(f"sampling must be one of {list(SAMPLING)}, got {describe(sampling)}")
    if sampling == "with_replacement":
        return 1.0 / B
    if B > n or B != int(B):
        raise ConfigError(
            f"batch_size must be an integer in [1, n] = [1, {n}] when batches are drawn "
            f"without replacement, got {describe(batch_size)}"
        )
    return (n - B) / (B * (n - 1)) if n > 1 else 0.0


@dataclass(frozen=True)
class PerSampleCurvature:
    """Per-sample Hessians ``H_i = F_i^T F_i`` in the eigenbasis of their mean ``H``.

    ``eigenvalues`` are those of ``H`` (ascending, positive: the null space of the data is
    dropped, nothing moves there), ``factors`` has shape ``(n, k, r)``. ``outputs`` is the
    number of identical parameter blocks that share each batch (the outputs of a linear
    model: their blocks do not couple, so the verdict is that of one block). Build with
    :meth:`from_features` (linear least squares) or :meth:`from_factors` (the per-sample
    Gauss-Newton factors of a network, :func:`stability.training.per_sample_ggn`).
    """

    eigenvalues: np.ndarray
    factors: np.ndarray
    outputs: int = 1
    notes: tuple[str, ...] = ()
    subspace: str = "the range of H (exact)"
    products: int = 0  # curvature-vector products its subspace took (0: exact, no search)

    @property
    def n(self) -> int:
        return int(self.factors.shape[0])

    def __repr__(self) -> str:
        lam = self.eigenvalues
        return (
            f"PerSampleCurvature({self.n} samples, {self.dim} directions ({self.subspace}), "
            f"{self.factors.shape[1]} factor row(s) per sample, {self.outputs} output block(s); "
            f"eigenvalues of H in [{lam[0]:.4g}, {lam[-1]:.4g}])"
        )

    @property
    def dim(self) -> int:
        return int(self.eigenvalues.size)

    @classmethod
    def from_features(
        cls,
        X: Any,
        Y: Any = None,
        *,
        outputs: int | None = None,
        bias: bool = True,
        loss: str = "mse",
    ) -> PerSampleCurvature:
        """Linear least squares on features ``X`` (``n x d``): ``H_i = c/m x_i x_i^T`` per
        output block, ``m`` the outputs (from ``Y``'s columns, or ``outputs``; 1 by default),
        ``c`` the loss convention (``mse``: torch's ``MSELoss()``, the mean over samples and
        outputs, ``c = 2``; ``half_mse``: ``c = 1``). ``bias=True`` (torch's ``nn.Linear``)
        appends a constant feature.

        >>> data = PerSampleCurvature.from_features([[1.0], [3.0]], bias=False)
        >>> round(float(data.eigenvalues[0]), 12)     # H = 2 mean(x^2) = 10
        10.0
        """
        Xa = real_array(X, "X", ndim=2)
        n = Xa.shape[0]
        if n < 2:
            raise ConfigError(f"X must hold at least 2 samples (rows), got {n}")
        m = _outputs(Y, outputs, n)
        if loss not in LOSSES:
            raise ConfigError(f"loss must be one of {sorted(LOSSES)}, got {describe(loss)}")
        if not isinstance(bias, bool):
            raise ConfigError(f"bias must be true or false, got {describe(bias)}")
        if bias:
            Xa = np.hstack([Xa, np.ones((n, 1))])
        F = Xa * math.sqrt(LOSSES[loss] / m)
        note = (
            f"linear least squares, {n} samples x {Xa.shape[1]} features"
            f"{' (with a bias)' if bias else ''}, {m} output(s): loss "
            f"{'torch MSELoss() (mean over samples and outputs)' if loss == 'mse' else loss}, "
            f"per-sample Hessian {LOSSES[loss]:g}/{m} x_i x_i^T per output block"
        )
        return cls.from_factors(F[:, None, :], outputs=m, notes=(note,))

    @classmethod
    def from_factors(
        cls,
        factors: Any,
        *,
        outputs: int = 1,
        notes: tuple[str, ...] = (),
        subspace: str = "the range of H (exact)",
        rtol: float = 1e-10,
    ) -> PerSampleCurvature:
        """From per-sample factors ``F_i`` (shape ``(n, k, p)``: ``H_i = F_i^T F_i``), rotated
        into the eigenbasis of ``H``; directions with eigenvalue below ``rtol`` of the largest
        carry no curvature and are dropped."""
        F = real_array(factors, "factors")
        if F.ndim != 3 or F.shape[0] < 2:
            raise ConfigError(f"factors must have shape (n >= 2, k, p), got {F.shape}")
        n, k, p = F.shape
        flat = F.reshape(n * k, p)
        size = float(np.abs(flat).max())
        if size == 0:
            raise ConfigError("the per-sample curvature is zero: nothing to analyse")
        if not _ENTRY_RANGE[0] <= size <= _ENTRY_RANGE[1]:
            raise ConfigError(
                f"data: the largest entry of the features (or factors) must be in [1e-75, "
                f"1e75], got {size:.3g}: the verdict needs the square of the curvature "
                "(entries to the fourth power) in float64. Rescale the data: the verdict "
                "depends on lr times the curvature, so scale the learning rate inversely"
            )
        lam, rotated = _eigenbasis(flat, n)
        if not lam.size or lam[-1] <= 0:
            raise ConfigError("the per-sample curvature is zero: nothing to analyse")
        keep = lam > rtol * lam[-1]
        dropped = int(np.count_nonzero(~keep)) + (p - lam.size)
        rotated = rotated[:, keep].reshape(n, k, int(np.count_nonzero(keep)))
        extra = (
            (f"{dropped} flat direction(s) of H dropped (no sample moves them)",) if dropped else ()
        )
        return cls(lam[keep], rotated, int(outputs), tuple(notes) + extra, subspace)

    def truncated(self, r: int) -> PerSampleCurvature:
        """The same samples in the ``r`` directions of largest curvature (a subspace: the
        convergence check of a network's analysis compares ``rho`` at ``r`` and ``r/2``)."""
        if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= self.dim:
            raise ConfigError(f"r must be an integer in [1, {self.dim}], got {describe(r)}")
        return PerSampleCurvature(
            self.eigenvalues[-r:],
            self.factors[:, :, -r:],
            self.outputs,
            self.notes,
            f"the top {r} directions of {self.subspace}",
        )

    def fourth_moment(self, W: np.ndarray) -> np.ndarray:
        """``E_i[H_i W H_i]`` for a symmetric ``W`` in the eigenbasis (``O(n k r^2)``): two
        matrix products over all ``n k`` factor rows (BLAS) and two batched ``k x k`` ones."""
        F = self.factors
        n, k, _ = F.shape
        if k == 1:
            f = F[:, 0, :]
            q = np.einsum("ij,ij->i", f @ W, f)
            return (f * q[:, None]).T @ f / n
        flat = F.reshape(n * k, -1)
        FW = (flat @ W).reshape(F.shape)  # F_i W, one GEMM over all rows
        G = FW @ F.transpose(0, 2, 1)  # F_i W F_i^T, batched (n, k, k)
        return flat.T @ (G @ F).reshape(n * k, -1) / n  # sum_i F_i^T G_i F_i, one GEMM

    def sample_curvatures(self) -> np.ndarray:
        """``lambda_max(H_i)`` of every sample (``|x_i|^2 c/m`` for a linear model)."""
        F = self.factors
        if F.shape[1] == 1:
            return np.einsum("ij,ij->i", F[:, 0, :], F[:, 0, :])
        return np.linalg.norm(F, ord=2, axis=(1, 2)) ** 2

    def noise_level(self) -> float:
        """``tr(E_i[H_i^2] - H^2) / (tr(H^2) + tr(H)^2)``: the batch-noise strength relative to
        Gaussian features with the same ``H`` (1 for Gaussian data; heavy tails make it
        larger)."""
        lam = self.eigenvalues
        I = np.eye(lam.size)
        excess = np.trace(self.fourth_moment(I)) - float(lam @ lam)
        return float(excess / (lam @ lam + lam.sum() ** 2))

    def summary(self) -> dict[str, Any]:
        c = self.sample_curvatures()
        return {
            "samples": self.n,
            "dimension": self.dim,
            "subspace": self.subspace,
            "lambda_max_H": float(self.eigenvalues[-1]),
            "trace_H": float(self.eigenvalues.sum()),
            "sample_lambda_max": {
                "median": float(np.median(c)),
                "p99": float(np.quantile(c, 0.99)),
                "max": float(c.max()),
            },
            "noise_level_vs_gaussian": self.noise_level(),
        }


_ENTRY_RANGE = (1e-75, 1e75)


def _eigenbasis(flat: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The eigenvalues (ascending) of ``H = flat^T flat / n`` and the rows of ``flat`` in its
    eigenbasis. With more columns than rows the Gram matrix ``flat flat^T`` (``nk x nk``) has
    the same non-zero eigenvalues and gives the rotated rows as ``A Sigma`` of the thin SVD,
    so no ``p x p`` matrix is formed (100 samples of 20,000 features: a 100 x 100 problem)."""
    rows, p = flat.shape
    if p <= rows:
        H = flat.T @ flat / n
        lam, U = np.linalg.eigh((H + H.T) / 2)
        return lam, flat @ U
    G = flat @ flat.T
    s2, A = np.linalg.eigh((G + G.T) / 2)
    s2 = np.maximum(s2, 0.0)
    return s2 / n, A * np.sqrt(s2)[None, :]


def _outputs(Y: Any, outputs: Any, n: int) -> int:
    if Y is not None:
        Ya = real_array(Y, "Y")
        if Ya.shape[0] != n or Ya.ndim > 2:
            raise ConfigError(f"Y must have n = {n} rows (one per sample), got shape {Ya.shape}")
        m = 1 if Ya.ndim == 1 else Ya.shape[1]
        if outputs is not None and outputs != m:
            raise ConfigError(f"outputs = {describe(outputs)} disagrees with Y's {m} columns")
        return m
    if outputs is None:
        return 1
    if isinstance(outputs, bool) or not isinstance(outputs, int) or outputs < 1:
        raise ConfigError(f"outputs must be a positive integer, got {describe(outputs)}")
    return outputs
