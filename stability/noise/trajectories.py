"""The exact SE second-moment recursion: loss trajectories and propagators (docs §4,
Theorem 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..algorithms import MemoryAlgorithm, update_matrices
from ..errors import ConfigError, describe
from .models import get_noise_model
from .spectra import PowerLawSpectrum, Spectrum, as_spectrum
from .sums import _check_batch

__all__ = ["MemorySchedule", "loss_trajectory", "propagators"]


@dataclass(frozen=True)
class MemorySchedule:
    """Per-step parameters of a memory-M algorithm: arrays with a leading time axis.

    ``alpha[t]`` (T,), ``a/b/c[t]`` (T, M), ``D[t]`` (T, M, M). Step ``t`` maps state ``t`` to
    ``t + 1``. Build with :meth:`constant`, :meth:`from_algorithms` or
    :func:`stability.acceleration.am1_schedule`.
    """

    alpha: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    D: np.ndarray

    def __post_init__(self) -> None:
        T = self.alpha.shape[0]
        M = self.b.shape[1] if self.b.ndim == 2 else -1
        shapes = {"alpha": (T,), "a": (T, M), "b": (T, M), "c": (T, M), "D": (T, M, M)}
        for name, shape in shapes.items():
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ConfigError(f"{name} must have shape {shape}, got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ConfigError(f"{name} must be finite")

    @property
    def steps(self) -> int:
        return self.alpha.shape[0]

    @property
    def M(self) -> int:
        return self.b.shape[1]

    @classmethod
    def constant(cls, alg: MemoryAlgorithm, steps: int) -> MemorySchedule:
        p = alg.numeric_arrays()
        return cls(
            np.full(steps, p["alpha"]),
            np.tile(p["a"], (steps, 1)),
            np.tile(p["b"], (steps, 1)),
            np.tile(p["c"], (steps, 1)),
            np.tile(p["D"], (steps, 1, 1)),
        )

    @classmethod
    def from_algorithms(cls, algs: list[MemoryAlgorithm]) -> MemorySchedule:
        if not algs:
            raise ConfigError("algorithms must not be empty")
        Ms = {alg.M for alg in algs}
        if len(Ms) != 1:
            raise ConfigError(f"every step must have the same memory size, got {sorted(Ms)}")
        ps = [alg.numeric_arrays() for alg in algs]
        return cls(*(np.array([p[k] for p in ps]) for k in ("alpha", "a", "b", "c", "D")))

    def step(self, t: int, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(S_lambda for each lambda, v v^T, r)`` of step ``t``."""
        n = self.M + 1
        v = np.concatenate([[-self.alpha[t]], self.c[t]])
        r = np.concatenate([[1.0], self.a[t]])
        S0 = np.zeros((n, n))
        S0[0, 0] = 1
        S0[0, 1:] = self.b[t]
        S0[1:, 1:] = self.D[t]
        return update_matrices(S0, v, r, lam), np.outer(v, v), r


def loss_trajectory(
    alg: MemoryAlgorithm | MemorySchedule,
    spectrum: Any,
    batch_size: Any,
    steps: int | None = None,
    noise: Any = "gaussian",
) -> np.ndarray:
    """Mean loss ``L_0 .. L_steps`` from the exact SE second-moment recursion (docs §4).

    ``C_{k,t+1} = A_k(C_{k,t}) + (tau1/B) lambda_k (sum_j w_j lambda_j r^T C_{j,t} r) v v^T``,
    ``C_{k,0} = c_k^2 E11``, ``L_t = 1/2 sum_k w_k lambda_k (C_{k,t})_11``; vectorised over
    eigenvalues. ``alg`` may be a :class:`MemorySchedule` (non-stationary parameters; then
    ``steps`` defaults to its length). The spectrum must carry target coefficients ``c2``.
    """
    model = get_noise_model(noise)
    B = _check_batch(batch_size)
    if isinstance(alg, MemorySchedule):
        sched = alg
        steps = sched.steps if steps is None else steps
        if steps > sched.steps:
            raise ConfigError(f"steps must be <= the schedule length {sched.steps}, got {steps}")
    if not isinstance(steps, int | np.integer) or isinstance(steps, bool) or steps < 0:
        raise ConfigError(f"steps must be an integer >= 0, got {describe(steps)}")
    if not isinstance(alg, MemorySchedule):
        sched = MemorySchedule.constant(alg, max(steps, 1))
    spec = _finite_with_targets(spectrum)
    lam, w = spec.lam, spec.weights
    n = sched.M + 1
    C = np.zeros((lam.size, n, n))
    C[:, 0, 0] = spec.c2
    out = np.empty(steps + 1)
    k1, k2 = model.tau1 / B, model.tau2 / B
    stationary = not isinstance(alg, MemorySchedule)
    mats = vv = r = None
    for t in range(steps + 1):
        out[t] = 0.5 * np.sum(w * lam * C[:, 0, 0])
        if t == steps:
            break
        if mats is None or not stationary:
            mats, vv, r = sched.step(0 if stationary else t, lam)
        rCr = np.einsum("i,kij,j->k", r, C, r)
        feedback = np.sum(w * lam * rCr)
        coef = k1 * lam * feedback - k2 * lam**2 * rCr
        C = mats @ C @ mats.transpose(0, 2, 1) + coef[:, None, None] * vv
    return out


def _finite_with_targets(spectrum: Any) -> Spectrum:
    spec = as_spectrum(spectrum)
    if isinstance(spec, PowerLawSpectrum):
        if spec.N is None:
            raise ConfigError("a finite spectrum is needed here: power_law(..., N=...)")
        spec = spec.truncated(spec.N)
    if spec.c2 is None:
        raise ConfigError("spectrum needs target coefficients c2 (e.g. power_law(..., zeta=...))")
    return spec


def propagators(
    alg: MemoryAlgorithm, spectrum: Any, batch_size: Any, steps: int, noise: Any = "gaussian"
) -> tuple[np.ndarray, np.ndarray]:
    """Signal and noise propagators ``V_1..V_steps`` and ``U_1..U_steps`` (Theorem 2, a = 0).

    ``V_t = sum_k w_k lambda_k c_k^2 <E11, A_k^{t-1} E11>``,
    ``U_t = (tau1/B) sum_k w_k lambda_k^2 <E11, A_k^{t-1} v v^T>``; the loss satisfies the
    renewal equation ``L_t = V_{t+1}/2 + sum_{s<t} U_{t-s} L_s``.
    """
    if alg.has_lookahead:
        raise ConfigError(
            "propagators are defined for a = 0 realisations (use the canonical "
            "memory-1 realisation or from_multistep(alg.to_multistep()))"
        )
    model = get_noise_model(noise)
    B = _check_batch(batch_size)
    spec = _finite_with_targets(spectrum)
    lam, w = spec.lam, spec.weights
    n = alg.M + 1
    _, v, _ = alg.numeric_system()
    mats = alg.update_matrices(lam)  # r = e1 (no lookahead)
    vv = np.outer(v, v)
    k2 = model.tau2 / B
    X_sig = np.zeros((lam.size, n, n))
    X_sig[:, 0, 0] = 1.0
    X_noise = np.broadcast_to(vv, (lam.size, n, n)).copy()
    V, U = np.empty(steps), np.empty(steps)
    for t in range(steps):
        V[t] = np.sum(w * lam * spec.c2 * X_sig[:, 0, 0])
        U[t] = model.tau1 / B * np.sum(w * lam**2 * X_noise[:, 0, 0])
        X_sig = (
            mats @ X_sig @ mats.transpose(0, 2, 1)
            - (k2 * lam**2 * X_sig[:, 0, 0])[:, None, None] * vv
        )
        X_noise = (
            mats @ X_noise @ mats.transpose(0, 2, 1)
            - (k2 * lam**2 * X_noise[:, 0, 0])[:, None, None] * vv
        )
    return V, U
