"""Vectorised checkers against the exact engine, brute-force eigenvalues and stability_sum."""

from __future__ import annotations

import numpy as np
import pytest

import stability as stb
from stability import checkers as ck
from stability import noise as nz


def random_torch_configs(rng, n):
    lr = np.exp(rng.uniform(np.log(1e-3), np.log(3), n))
    mu = np.where(rng.random(n) < 0.15, 0.0, rng.uniform(0, 0.99, n))
    nest = (rng.random(n) < 0.4) & (mu > 0)
    tau = np.where(nest | (rng.random(n) < 0.5), 0.0, rng.uniform(0, 0.9, n))
    wd = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0, 0.5, n))
    lam = np.exp(rng.uniform(np.log(0.5), np.log(50), n))
    return lr, mu, tau, wd, nest, lam


def test_torch_checker_vs_exact_engine():
    rng = np.random.default_rng(0)
    lr, mu, tau, wd, nest, lam = random_torch_configs(rng, 250)
    m = ck.torch_sgd_margins(lr=lr, momentum=mu, dampening=tau, weight_decay=wd, nesterov=nest,
                             lambda_max=lam)
    for i in range(lr.size):
        opt = stb.from_torch_sgd(lr[i], mu[i], tau[i], wd[i], bool(nest[i]))
        spec = (wd[i], lam[i] + wd[i]) if wd[i] else lam[i]
        assert m.stable[i] == stb.is_strictly_stable(opt.algorithm, spec).stable, i
    assert 0.1 < m.stable.mean() < 0.9


def test_torch_checker_vs_brute_force_eigenvalues():
    rng = np.random.default_rng(1)
    lr, mu, tau, wd, nest, lam = random_torch_configs(rng, 20_000)
    m = ck.torch_sgd_margins(lr=lr, momentum=mu, dampening=tau, weight_decay=wd, nesterov=nest,
                             lambda_max=lam)
    # torch's own update as a 2x2 matrix in (theta, buffer) for each curvature of a grid
    grid = np.concatenate([np.geomspace(1e-6, 1, 100), np.linspace(0, 1, 201)[1:]])
    h = wd[:, None] + lam[:, None] * grid[None, :]  # shifted curvatures
    tau = np.where(mu == 0, 0.0, tau)  # torch keeps no buffer (ignores dampening) when mu = 0
    A = np.empty((*h.shape, 2, 2))
    # buffer' = mu buf + (1-tau) h theta ; theta' = theta - lr(step)
    #   plain:   step = buffer'           nesterov: step = h theta + mu buffer'
    c = (1 - tau)[:, None]
    A[..., 1, 0] = c * h
    A[..., 1, 1] = mu[:, None]
    plain_00 = 1 - lr[:, None] * c * h
    plain_01 = -lr[:, None] * mu[:, None]
    nest_00 = 1 - lr[:, None] * (h + mu[:, None] * h)
    nest_01 = -lr[:, None] * mu[:, None] ** 2
    A[..., 0, 0] = np.where(nest[:, None], nest_00, plain_00)
    A[..., 0, 1] = np.where(nest[:, None], nest_01, plain_01)
    rho = np.abs(np.linalg.eigvals(A)).max(axis=-1).max(axis=-1)
    scale = np.abs(m.margins).min(axis=0) / (1 + lr * (lam + wd))
    away = (scale > 1e-3) & (np.abs(rho - 1) > 1e-4) & ((mu < 0.98) | (wd > 0))
    assert away.sum() > 10_000
    np.testing.assert_array_equal(m.stable[away], rho[away] < 1)


def test_torch_checker_certifies_the_boundary():
    crit = 38.0  # lr 0.1, momentum 0.9: exact boundary (binary values) just below 38
    lams = [np.nextafter(crit, 0) - 1e-12, 38.0]
    m = ck.torch_sgd_margins(lr=0.1, momentum=0.9, lambda_max=lams)
    exact = [stb.is_strictly_stable(stb.from_torch_sgd(0.1, 0.9).algorithm, x).stable
             for x in lams]
    assert m.stable.tolist() == exact == [True, False]
    assert m.n_certified >= 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": [0.1, -1.0]}, "lr must be in (0, inf), got -1.0"),
        ({"lr": 0.1, "momentum": [0.5, 1.0]}, "momentum must be in [0, 1)"),
        ({"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}, "nesterov requires"),
        ({"lr": float("nan")}, "lr must be finite"),
        ({"lr": "0.1"}, "string"),
    ],
)
def test_torch_checker_validation(kwargs, message):
    with pytest.raises(stb.ConfigError) as info:
        ck.torch_sgd_margins(lambda_max=1.0, **kwargs)
    assert message in str(info.value)


def test_broadcasting_shapes():
    lr = np.linspace(0.01, 1, 7)[:, None]
    mu = np.linspace(0, 0.95, 5)[None, :]
    m = ck.torch_sgd_margins(lr=lr, momentum=mu, lambda_max=10.0)
    assert m.stable.shape == (7, 5) and m.margins.shape == (7, 7, 5)


def test_noise_sum_vs_stability_sum():
    rng = np.random.default_rng(2)
    lams = np.geomspace(1e-3, 1, 40)
    w = rng.uniform(0.5, 2, 40)
    n = 200
    beta = rng.uniform(0, 0.99, n)
    q0 = rng.uniform(-0.2, 0.5, n)
    q1 = -q0 - (1 - beta) * rng.uniform(0.1, 5, n)
    B = rng.integers(1, 64, n).astype(float)
    U = ck.memory1_noise_sum(beta=beta, q0=q0, q1=q1, eigenvalues=lams, weights=w, batch_size=B,
                             chunk=1000)
    for i in range(n):
        ref = nz.stability_sum(stb.memory1(beta[i], q0[i], q1[i]),
                               nz.Spectrum.from_arrays(lams, w), B[i]).U
        if np.isinf(ref):
            assert np.isinf(U[i])
        else:
            assert U[i] == pytest.approx(ref, rel=1e-9)
    assert np.isfinite(U).sum() > 50 and np.isinf(U).sum() > 5


def test_noise_sum_validation():
    with pytest.raises(stb.ConfigError, match="tau2 > 0"):
        ck.memory1_noise_sum(beta=0, q0=0, q1=-1, eigenvalues=[1.0], batch_size=1, tau2=1.0)
    with pytest.raises(stb.ConfigError, match="eigenvalues"):
        ck.memory1_noise_sum(beta=0, q0=0, q1=-1, eigenvalues=[], batch_size=1)
    with pytest.raises(stb.ConfigError, match="batch_size"):
        ck.memory1_noise_sum(beta=0, q0=0, q1=-1, eigenvalues=[1.0], batch_size=0)
