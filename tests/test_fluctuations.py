"""Stationary fluctuations (Liu-Ziyin-Ueda 2021) and least-squares thresholds (docs §6.3)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.linalg import solve_discrete_lyapunov

import stability as stb
from stability import fluctuations as fl
from stability import symbols as S


def test_doubling_lyapunov_matches_scipy():
    rng = np.random.default_rng(0)
    for n in (1, 3, 8):
        A = rng.normal(size=(n, n))
        A *= 0.95 / np.abs(np.linalg.eigvals(A)).max()
        B = rng.normal(size=(n, n))
        Q = B @ B.T
        np.testing.assert_allclose(
            fl.solve_lyapunov(A, Q), solve_discrete_lyapunov(A, Q), rtol=1e-10, atol=1e-12
        )
    with pytest.raises(stb.StabilityError, match="spectral radius"):
        fl.solve_lyapunov(np.array([[1.1]]), np.eye(1))


@pytest.mark.symbolic
@pytest.mark.timeout(120)
def test_closed_forms_from_the_lyapunov_system():
    a, b, h = S.lr, S.beta, S.h
    assert sp.simplify(fl.stationary_variance_1d(stb.gd(a)) - fl.sgd_variance()) == 0
    assert (
        sp.simplify(fl.stationary_variance_1d(stb.heavy_ball(a, b)) - fl.heavy_ball_variance()) == 0
    )
    assert sp.simplify(fl.continuous_time_ratio() - 2 / (2 - a * h)) == 0


def test_public_values():
    assert float(fl.sgd_variance(0.1, 1, 1)) == pytest.approx(0.0526315789, abs=1e-10)
    assert float(fl.heavy_ball_variance(0.1, 0.9, 1, 1)) == pytest.approx(0.5135135135, abs=1e-10)
    hb = fl.stationary_covariance(stb.heavy_ball(0.1, 0.9), [[1.0]], 1.0)
    assert float(hb.w[0, 0]) == pytest.approx(0.5135135135, abs=1e-9)


def _simulate_additive(alg, H, L_noise, steps, runs, burn, seed):
    rng = np.random.default_rng(seed)
    p = alg.numeric_arrays()
    d = H.shape[0]
    w = np.zeros((runs, d))
    u = np.zeros((runs, alg.M, d))
    samples = []
    for t in range(steps):
        eps = rng.normal(size=(runs, d)) @ L_noise.T
        g = (w + np.einsum("m,rmd->rd", p["a"], u)) @ H.T + eps
        w, u = (
            w - p["alpha"] * g + np.einsum("m,rmd->rd", p["b"], u),
            np.einsum("m,rd->rmd", p["c"], g) + np.einsum("mn,rnd->rmd", p["D"], u),
        )
        if t >= burn and t % 10 == 0:
            samples.append(w.copy())
    return np.concatenate(samples)


@pytest.mark.parametrize(
    "alg",
    [stb.gd(0.3), stb.heavy_ball(0.2, 0.7), stb.nesterov(0.2, 0.6)],
    ids=["gd", "hb", "nesterov"],
)
def test_stationary_covariance_vs_monte_carlo(alg):
    rng = np.random.default_rng(1)
    A = rng.normal(size=(3, 3))
    H = A @ A.T / 3 + 0.2 * np.eye(3)
    H /= np.linalg.eigvalsh(H).max()
    Lc = rng.normal(size=(3, 3)) * 0.5
    C = Lc @ Lc.T
    pred = fl.stationary_covariance(alg, H, C).w
    x = _simulate_additive(alg, H, Lc, 1500, 4000, 300, seed=2)
    emp = x.T @ x / len(x)
    # samples are correlated; compare with a tolerance of several effective standard errors
    se = np.sqrt((np.outer(np.diag(emp), np.diag(emp)) + emp**2) / (len(x) / 20))
    assert np.max(np.abs(emp - pred) / se) < 5


def test_stationary_covariance_diagonal_case_reduces_to_1d():
    alg = stb.heavy_ball(0.2, 0.5)
    h = np.array([1.0, 0.3, 0.05])
    s2 = np.array([1.0, 2.0, 0.5])
    cov = fl.stationary_covariance(alg, np.diag(h), s2).w
    expected = [
        float(fl.heavy_ball_variance(0.2, 0.5, hi, si)) for hi, si in zip(h, s2, strict=True)
    ]
    np.testing.assert_allclose(np.diag(cov), expected, rtol=1e-10)
    np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-12)


def test_stationary_covariance_validation():
    with pytest.raises(stb.StabilityError, match="no stationary covariance"):
        fl.stationary_covariance(stb.gd(3.0), [[1.0]], 1.0)
    with pytest.raises(stb.ConfigError, match="symmetric"):
        fl.stationary_covariance(stb.gd(0.1), [[1.0, 2.0], [0.0, 1.0]], 1.0)
    with pytest.raises(stb.ConfigError, match="positive semi-definite"):
        fl.stationary_covariance(stb.gd(0.1), [[1.0]], -1.0)
    with pytest.raises(stb.ConfigError, match="square 2x2"):
        fl.stationary_covariance(stb.gd(0.1), np.eye(2), np.eye(3))


@pytest.mark.parametrize("S_batch", [1, 4, 16])
def test_minibatch_gaussian_variance_vs_monte_carlo(S_batch):
    alpha, a, s2 = 0.3, 1.5, 0.8
    var, thr = fl.minibatch_gaussian_variance(alpha, a, s2, S_batch)
    assert float(thr) == pytest.approx(2 * S_batch / (a * (S_batch + 2)))
    rng = np.random.default_rng(S_batch)
    runs, e, acc = 10_000, np.zeros(10_000), []
    for t in range(400):
        x = rng.normal(size=(runs, S_batch)) * np.sqrt(a)
        eps = rng.normal(size=(runs, S_batch)) * np.sqrt(s2)
        g = np.mean(x * (x * e[:, None] - eps), axis=1)
        e = e - alpha * g
        if t >= 100 and t % 20 == 0:
            acc.append(e.copy())
    samples = np.concatenate(acc)
    emp = samples.var()
    se = emp * np.sqrt(2 / (len(samples) / 2))
    assert abs(emp - float(var)) < 5 * se
    with pytest.raises(stb.StabilityError, match="lr must be <"):
        fl.minibatch_gaussian_variance(2.0, a, s2, S_batch)


def _second_moment_growth(X, eta, steps=400):
    """Iterate P <- mean_i (I - eta x_i x_i^T) P (I - eta x_i x_i^T) in the original space."""
    N, d = X.shape
    P = np.linalg.pinv(X) @ np.linalg.pinv(X).T  # a PSD start inside the row space
    P /= np.trace(P)
    for _ in range(steps):
        P = (
            sum(
                (np.eye(d) - eta * np.outer(x, x)) @ P @ (np.eye(d) - eta * np.outer(x, x))
                for x in X
            )
            / N
        )
    return np.trace(P)


@pytest.mark.parametrize("shape", [(8, 20), (12, 5), (30, 6)])
def test_least_squares_hierarchy(shape):
    rng = np.random.default_rng(shape[0])
    X = rng.normal(size=shape) * rng.uniform(0.3, 2.0, size=(shape[0], 1))
    t = fl.least_squares_thresholds(X)
    tol = 1e-10
    assert t["2/R^2"] <= t["eta_desc"] * (1 + tol)
    assert t["eta_desc"] <= t["eta_ms"] * (1 + tol)
    assert t["eta_ms"] <= t["2/lambda_max"] * (1 + tol)
    # eta_ms is the exact mean-square threshold: check with an independent iteration
    assert _second_moment_growth(X, 0.97 * t["eta_ms"], 1500) < 0.5
    assert _second_moment_growth(X, 1.03 * t["eta_ms"], 1500) > 2.0


def test_least_squares_validation():
    with pytest.raises(stb.ConfigError, match="X must be"):
        fl.least_squares_thresholds(np.ones(3))
    with pytest.raises(stb.ConfigError, match="must not be zero"):
        fl.least_squares_thresholds(np.zeros((3, 4)))


def test_the_symbolic_lyapunov_solve_has_one_home_and_one_error():
    """noise_term (memory >= 2) and stationary_variance_1d share the Lyapunov solve: where it
    has no unique solution both raise StabilityError (the analysis cannot answer), not a
    ConfigError (nothing is wrong with the input)."""
    alg = stb.from_multistep([0, 0, 1], [0, 0, -1])  # M = 2, a GD-like recurrence
    half = sp.Rational(1, 2)
    X = fl.unit_noise_covariance(alg, half)
    # independent check: the Lyapunov equation holds exactly
    S_ = alg.update_matrix(half)
    assert sp.simplify(X - S_ * X * S_.T - alg.v * alg.v.T) == sp.zeros(3, 3)
    assert stb.noise_term(alg, half) == sp.factor(half**2 * X[0, 0])
    with pytest.raises(stb.StabilityError, match="no unique solution"):
        stb.noise_term(alg, 2)  # chi_2 has roots -1 and ... : a pair with product 1
    with pytest.raises(stb.StabilityError, match="no unique solution"):
        fl.stationary_variance_1d(stb.gd(1), 2)  # S = -1: X = X + 1 has no solution
