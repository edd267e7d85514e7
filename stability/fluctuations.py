"""Stationary fluctuations with additive gradient noise (docs §5, Liu-Ziyin-Ueda 2021) and the
least-squares step-size thresholds of batch-1 SGD (docs §6.3).

With ``g = H(w - w*) + eps``, ``Cov eps = C`` i.i.d., the stationary covariance of a strictly
stable memory-M algorithm solves ``Sigma = S Sigma S^T + (v v^T) (x) C`` with the full update
matrix ``S = S_0 (x) I + (v r^T) (x) H``. This is a linear (quadratic-loss) model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from . import symbols as S
from ._values import real_array, square_matrix, to_sympy
from .algorithms import MemoryAlgorithm
from .errors import ConfigError, StabilityError, describe

__all__ = [
    "StationaryCovariance",
    "continuous_time_ratio",
    "heavy_ball_variance",
    "least_squares_thresholds",
    "minibatch_gaussian_variance",
    "sgd_variance",
    "solve_lyapunov",
    "stationary_covariance",
    "stationary_variance_1d",
    "unit_noise_covariance",
]


def solve_lyapunov(
    A: np.ndarray, Q: np.ndarray, *, tol: float = 1e-15, max_iter: int = 200
) -> np.ndarray:
    """Solve ``X = A X A^T + Q`` for strictly stable ``A`` by the doubling iteration.

    ``X_{k+1} = X_k + A_k X_k A_k^T``, ``A_{k+1} = A_k^2`` sums ``sum_t A^t Q A^tT`` in
    ``O(log)`` squarings; raises when ``A`` is not strictly stable.
    """
    A = real_array(A, "A")
    Q = real_array(Q, "Q")
    if A.ndim != 2 or A.shape[0] != A.shape[1] or Q.shape != A.shape:
        raise ConfigError(f"A and Q must be square of the same shape, got {A.shape}, {Q.shape}")
    rho = np.abs(np.linalg.eigvals(A)).max() if A.size else 0.0
    if rho >= 1:
        raise StabilityError(f"no stationary covariance: spectral radius {rho:.6g} >= 1")
    X, Ak = Q.copy(), A.copy()
    for _ in range(max_iter):
        step = Ak @ X @ Ak.T
        X = X + step
        Ak = Ak @ Ak
        if np.abs(step).max() <= tol * max(np.abs(X).max(), 1e-300):
            return 0.5 * (X + X.T)
    raise StabilityError("Lyapunov doubling did not converge (spectral radius too close to 1)")


@dataclass(frozen=True)
class StationaryCovariance:
    """Stationary covariance of the iterate (``w``) and of the full state ``(w, u)``."""

    w: np.ndarray
    full: np.ndarray
    spectral_radius: float
    note: str = "linear model: quadratic loss with additive i.i.d. gradient noise"


def _psd(x: Any, name: str, d: int | None) -> np.ndarray:
    return square_matrix(x, name, d, psd=True)


def stationary_covariance(alg: MemoryAlgorithm, H: Any, C: Any) -> StationaryCovariance:
    """Stationary covariance of ``w - w*`` (and of the whole state) for any memory-M algorithm.

    ``H`` is the (dense) Hessian, ``C`` the gradient-noise covariance (a scalar means ``c I``,
    a vector a diagonal). Raises :class:`StabilityError` when the full update is not strictly
    stable (no stationary distribution).

    >>> from stability import gd
    >>> round(float(stationary_covariance(gd(0.1), [[1.0]], 1.0).w[0, 0]), 10)
    0.0526315789
    """
    Hm = _psd(H, "H", None)
    d = Hm.shape[0]
    Cm = _psd(C, "C", d)
    S0, v, r = alg.numeric_system()
    full_S = np.kron(S0, np.eye(d)) + np.kron(np.outer(v, r), Hm)
    Q = np.kron(np.outer(v, v), Cm)
    rho = float(np.abs(np.linalg.eigvals(full_S)).max())
    X = solve_lyapunov(full_S, Q)
    return StationaryCovariance(X[:d, :d], X, rho)


def unit_noise_covariance(alg: MemoryAlgorithm, lam: Any = S.lam) -> sp.Matrix:
    """The exact stationary covariance of the state under unit gradient noise at curvature
    ``lam``: the solution ``X`` of the Lyapunov system ``X = S_lam X S_lam^T + v v^T``.

    Solved symbolically (small memory sizes; every noise formula of the package that needs
    ``X`` comes here). Raises :class:`StabilityError` when the system has no unique solution
    (``S_lam`` has a pair of eigenvalues with product 1: no stationary state).

    >>> from stability import gd, symbols as S
    >>> unit_noise_covariance(gd(S.alpha), S.h)
    Matrix([[-alpha/(h*(alpha*h - 2))]])
    """
    lam_e = to_sympy(lam, "lam")
    n = alg.M + 1
    Smat = alg.update_matrix(lam_e)
    X = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"x_{min(i, j)}{max(i, j)}"))
    unknowns = sorted(X.free_symbols, key=str)
    sol = sp.solve(list(X - Smat * X * Smat.T - alg.v * alg.v.T), unknowns, dict=True)
    if len(sol) != 1 or set(unknowns) & set().union(*(v.free_symbols for v in sol[0].values())):
        raise StabilityError(
            "the Lyapunov system X = S X S^T + v v^T has no unique solution (S_lambda has "
            "eigenvalues whose product is 1: no stationary state)"
        )
    return X.subs(sol[0]).applyfunc(lambda e: sp.factor(sp.cancel(e)))


def stationary_variance_1d(alg: MemoryAlgorithm, h: Any = S.h, sigma2: Any = S.sigma2) -> sp.Expr:
    """Exact stationary ``Var w`` in one dimension (curvature ``h``, additive gradient-noise
    variance ``sigma2``): ``sigma2 X_11`` with ``X`` from :func:`unit_noise_covariance`.

    >>> from stability import gd, symbols as S
    >>> stationary_variance_1d(gd(S.alpha))
    -alpha*sigma^2/(h*(alpha*h - 2))
    """
    X = unit_noise_covariance(alg, h)
    return sp.factor(sp.cancel(to_sympy(sigma2, "sigma2") * X[0, 0]))


def sgd_variance(lr: Any = S.lr, h: Any = S.h, sigma2: Any = S.sigma2) -> sp.Expr:
    """SGD: ``lr sigma^2 / (h (2 - lr h))`` (docs §5; ``sigma2`` the additive gradient-noise
    variance)."""
    a, hh, s2 = (to_sympy(x, n) for x, n in ((lr, "lr"), (h, "h"), (sigma2, "sigma2")))
    return a * s2 / (hh * (2 - a * hh))


def heavy_ball_variance(
    lr: Any = S.lr, momentum: Any = S.beta, h: Any = S.h, sigma2: Any = S.sigma2
) -> sp.Expr:
    """Heavy ball: ``lr sigma^2 (1+beta) / (h (1-beta) (2(1+beta) - lr h))``, ``beta`` the
    momentum."""
    a, b, hh, s2 = (
        to_sympy(x, n)
        for x, n in ((lr, "lr"), (momentum, "momentum"), (h, "h"), (sigma2, "sigma2"))
    )
    return a * s2 * (1 + b) / (hh * (1 - b) * (2 * (1 + b) - a * hh))


def continuous_time_ratio(lr: Any = S.lr, h: Any = S.h) -> sp.Expr:
    """Discrete SGD variance over the continuous-time prediction ``lr sigma^2/(2h)``."""
    return sp.factor(sgd_variance(lr, h) / (to_sympy(lr, "lr") * S.sigma2 / (2 * to_sympy(h, "h"))))


def minibatch_gaussian_variance(
    lr: Any, a: Any, sigma2: Any, batch_size: Any
) -> tuple[sp.Expr, sp.Expr]:
    """Exact 1-D mini-batch SGD with Gaussian inputs (variance ``a``) and label noise of
    variance ``sigma2``, batches of ``S = batch_size``.

    Returns ``(Var, threshold)`` with ``Var = lr sigma^2 / (S (2 - lr a (1 + 2/S)))``,
    valid iff ``lr < threshold = 2S / (a (S + 2))``.
    """
    al, aa, s2, Sb = (
        to_sympy(x, n)
        for x, n in ((lr, "lr"), (a, "a"), (sigma2, "sigma2"), (batch_size, "batch_size"))
    )
    threshold = 2 * Sb / (aa * (Sb + 2))
    if al.is_number and threshold.is_number and not al < threshold:
        raise StabilityError(f"lr must be < 2S/(a(S+2)) = {threshold}, got {describe(lr)}")
    return al * s2 / (Sb * (2 - al * aa * (1 + 2 / Sb))), threshold


def least_squares_thresholds(X: Any) -> dict[str, float]:
    """Step-size thresholds of batch-1 SGD on least squares with data rows ``x_i`` (docs §6.3).

    Returns ``2/R^2 <= eta_desc <= eta_ms <= 2/lambda_max(A)`` with ``A = X^T X/N``,
    ``R^2 = max |x_i|^2``; ``eta_desc`` is the largest step for which the expected squared
    distance to the solution set decreases from every point (``eta K <= 2 A`` on the row space,
    ``K = E[|x|^2 x x^T] <= R^2 A``, the classical "descent dominates noise" argument made
    exact) and ``eta_ms`` the exact mean-square stability threshold (the spectral radius of
    ``P -> E[(I - eta x x^T) P (I - eta x x^T)]`` on the row space crosses 1).
    """
    Xm = real_array(X, "X")
    if Xm.ndim != 2 or Xm.shape[0] == 0 or not np.all(np.isfinite(Xm)):
        raise ConfigError(f"X must be a finite (N, d) array, got shape {Xm.shape}")
    N = Xm.shape[0]
    U, s, _ = np.linalg.svd(Xm.T, full_matrices=False)
    rank = int(np.sum(s > 1e-12 * s.max()))
    if rank == 0:
        raise ConfigError("X must not be zero")
    Y = Xm @ U[:, :rank]  # rows in row-space coordinates
    A = Y.T @ Y / N
    lam_max = float(np.linalg.eigvalsh(A).max())
    R2 = float(np.max(np.sum(Xm**2, axis=1)))
    K = np.einsum("i,ij,ik->jk", np.sum(Y**2, axis=1), Y, Y) / N
    w, V = np.linalg.eigh(A)
    A_mhalf = V @ np.diag(w**-0.5) @ V.T
    eta_desc = 2.0 / float(np.linalg.eigvalsh(A_mhalf @ K @ A_mhalf).max())

    def rho(eta: float) -> float:
        I = np.eye(rank)
        T = sum(np.kron(I - eta * np.outer(y, y), I - eta * np.outer(y, y)) for y in Y) / N
        return float(np.abs(np.linalg.eigvals(T)).max())

    lo, hi = eta_desc * (1 - 1e-12), 2.0 / lam_max
    if rho(lo) >= 1:  # pragma: no cover - contradicts eta_desc <= eta_ms
        raise StabilityError("mean-square threshold below the descent threshold")
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rho(mid) < 1 else (lo, mid)
    return {"2/R^2": 2.0 / R2, "eta_desc": eta_desc, "eta_ms": lo, "2/lambda_max": 2.0 / lam_max}
