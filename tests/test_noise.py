"""Mini-batch noise: closed forms vs Lyapunov solves vs direct propagator sums vs Monte Carlo."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import solve_discrete_lyapunov

import stability as stb
from stability import noise as nz
from stability import symbols as S
from stability.noise import sums as noisesum


def _numeric(alg, lam):
    p = alg.numeric_arrays()
    Smat = np.array(alg.update_matrix(lam).evalf(), dtype=float)
    v = np.array([-p["alpha"], *p["c"]])
    r = np.array([1.0, *p["a"]])
    return Smat, v, r


def ubar_direct_sum(alg, lam, tol=1e-17):
    """lambda^2 sum_t (r^T S^t v)^2: the impulse response energy, summed until negligible."""
    Smat, v, r = _numeric(alg, lam)
    total, x = 0.0, v.copy()
    for _ in range(200_000):
        term = (r @ x) ** 2
        total += term
        x = Smat @ x
        if term < tol * max(total, 1e-300) and np.abs(x).max() < 1e-12:
            break
    return lam**2 * total


def ubar_scipy(alg, lam):
    Smat, v, r = _numeric(alg, lam)
    X = solve_discrete_lyapunov(Smat, np.outer(v, v))
    return lam**2 * r @ X @ r


def stable_algorithms(rng, M, count):
    out = []
    while len(out) < count:
        D = rng.normal(size=(M, M))
        D *= rng.uniform(0.1, 0.85) / np.abs(np.linalg.eigvals(D)).max()
        a = rng.uniform(-0.4, 0.4, M).tolist() if rng.integers(2) else None
        alg = stb.MemoryAlgorithm(
            rng.uniform(0.05, 0.8),
            rng.uniform(-0.3, 0.3, M).tolist(),
            rng.uniform(-0.3, 0.3, M).tolist(),
            D.tolist(),
            a,
        )
        lams = rng.uniform(0.05, 1.5, 6)
        if stb.is_strictly_stable(alg, lams.tolist()).stable:
            out.append((alg, lams))
    return out


# -- per-eigenvalue term -----------------------------------------------------------------
@pytest.mark.parametrize("M", [1, 2])
def test_ubar_three_ways(M):
    rng = np.random.default_rng(40 + M)
    for alg, lams in stable_algorithms(rng, M, 8):
        ours = nz.ubar(alg, lams, method="lyapunov")
        if M == 1:
            np.testing.assert_allclose(nz.ubar(alg, lams, method="closed"), ours, rtol=1e-11)
        for lam, u in zip(lams, ours, strict=True):
            assert u == pytest.approx(ubar_scipy(alg, lam), rel=1e-11)
            assert u == pytest.approx(ubar_direct_sum(alg, lam), rel=1e-10)
            if M == 1:  # closed form eq. 25 (via the triplet) is a fourth, exact, witness
                closed = float(nz.noise_term(alg.to_exact(), sp.Rational(float(lam))))
                assert u == pytest.approx(closed, rel=1e-11)


@pytest.mark.symbolic
@pytest.mark.timeout(120)
def test_symbolic_closed_forms_reduce():
    a, b, lam = S.alpha, S.beta, S.lam
    assert sp.simplify(nz.noise_term(stb.gd(a)) - a * lam / (2 - a * lam)) == 0
    hb = nz.noise_term(stb.heavy_ball(a, b))
    assert sp.simplify(hb - a * lam * (1 + b) / ((1 - b) * (2 * (1 + b) - a * lam))) == 0
    assert nz.noise_term(stb.heavy_ball(sp.Rational(1, 2), sp.Rational(1, 2)), 1) == sp.Rational(
        3, 5
    )


@pytest.mark.symbolic
@pytest.mark.timeout(200)
def test_memory1_closed_form_is_the_lyapunov_solution_symbolically():
    # eq. 25 against a symbolic Lyapunov solve of the Nesterov realisation (a != 0)
    alg = stb.nesterov(S.alpha, S.beta)
    n = 2
    Smat = alg.update_matrix()
    X = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"x{min(i, j)}{max(i, j)}"))
    sol = sp.solve(list(X - Smat * X * Smat.T - alg.v * alg.v.T), sorted(X.free_symbols, key=str))
    lyap = S.lam**2 * (alg.r.T * X.subs(sol) * alg.r)[0, 0]
    assert sp.simplify(lyap - nz.noise_term(alg)) == 0


def test_memory2_symbolic_term_matches_numeric():
    F = Fraction
    alg = stb.MemoryAlgorithm(
        F(2, 5),
        [F(3, 10), F(-1, 5)],
        [F(-1, 2), F(1, 4)],
        [[F(1, 2), F(1, 10)], [F(-1, 5), F(3, 10)]],
    )
    exact = nz.noise_term(alg, sp.Rational(1, 3))
    assert exact.is_Rational
    assert float(exact) == pytest.approx(ubar_scipy(alg, 1 / 3), rel=1e-12)


# -- stability sum ------------------------------------------------------------------------
def U_direct(alg, lams, weights, B, tau1, tau2, steps=20_000):
    """sum_t U_t with U_t = (tau1/B) sum_k w_k lambda_k^2 <r r^T, A_k^{t-1} v v^T>."""
    total = 0.0
    for lam, w in zip(lams, weights, strict=True):
        Smat, v, r = _numeric(alg, lam)
        X = np.outer(v, v)
        acc = 0.0
        for _ in range(steps):
            val = r @ X @ r
            acc += val
            X = Smat @ X @ Smat.T - tau2 / B * lam**2 * val * np.outer(v, v)
            if abs(val) < 1e-18 * max(acc, 1e-300):
                break
        total += w * tau1 / B * lam**2 * acc
    return total


@pytest.mark.parametrize("M", [1, 2])
@pytest.mark.parametrize("noise", ["gaussian", "se0", "translation_invariant"])
def test_stability_sum_equals_direct_propagator_sum(M, noise):
    rng = np.random.default_rng(7 + M)
    model = nz.get_noise_model(noise)
    for alg, lams in stable_algorithms(rng, M, 4):
        weights = rng.uniform(0.5, 2, lams.size)
        B = float(rng.integers(4, 40))
        res = nz.stability_sum(alg, nz.Spectrum.from_arrays(lams, weights), B, noise)
        assert math.isfinite(res.U)
        direct = U_direct(alg, lams, weights, B, model.tau1, model.tau2)
        assert res.U == pytest.approx(direct, rel=1e-10)


def test_public_examples():
    r = nz.stability_sum(stb.gd(1), [1, 0.5, 0.25, 0.125], 10, "se0")
    assert r.U == pytest.approx(0.15428571428571428, rel=1e-14) and r.bounded
    # docs §4: SGD alpha = 1.5, lambda = 0.8, B = 1, gaussian: the naive formula gives -3,
    # but A_lambda = 1.48 > 1. It must be reported unstable, never as a negative sum.
    bad = nz.stability_sum(stb.gd(1.5), [0.8], 1, "gaussian")
    assert bad.U == math.inf and not bad.bounded and "A_lambda" in bad.reason
    assert noisesum._second_moment_radius(stb.gd(1.5), np.array([0.8]), -1.0)[0] == pytest.approx(
        1.48
    )


def test_noiseless_instability_reported():
    r = nz.stability_sum(stb.heavy_ball(1.0, 0.5), [1.0, 3.5], 100)
    assert r.U == math.inf and "noiseless" in r.reason


def test_sgd_sum_closed_form():
    # SGD: U = sum (tau1/B) u/(1 + tau2 u/B), u = a l/(2 - a l)
    lams = np.array([0.9, 0.4, 0.1])
    a, B = 0.7, 5
    u = a * lams / (2 - a * lams)
    expected = np.sum(u / B / (1 - u / B))
    assert nz.stability_sum(stb.gd(a), lams, B).U == pytest.approx(expected, rel=1e-13)


def test_theorem7_contrast_heavy_ball_vs_positive_q0():
    # At a large effective learning rate, heavy ball (q0 = 0) pays U >= (tau1/B) a_eff sum(l)/2
    # (eq. 26), while memory-1 with q0 > 0 and delta = 1 - beta -> 0 tends to plain SGD with
    # lr q0: U -> (tau1/B) sum q0 l/(2 - q0 l) (Theorem 7), however large a_eff is.
    lams = np.geomspace(1e-3, 1, 60)
    B, q0 = 64, 0.5
    for a_eff in (10.0, 100.0, 1000.0):
        beta = 1 - 1e-7
        hb = stb.heavy_ball(a_eff * (1 - beta), beta)
        U_hb = nz.stability_sum(hb, lams, B, "se0").U
        assert U_hb >= a_eff * lams.sum() / (2 * B) * (1 - 1e-9)
        delta = 1e-10  # corrections are O(delta a_eff / (q0 lambda_min)) <= 2e-4
        am = stb.memory1(1 - delta, q0, -q0 - delta * a_eff)
        U_am = nz.stability_sum(am, lams, B, "se0").U
        limit = np.sum(q0 * lams / (2 - q0 * lams)) / B
        assert U_am == pytest.approx(limit, rel=1e-3)
    assert U_hb > 1 > U_am  # heavy ball diverges under noise, the q0 > 0 method does not


def test_critical_batch_size():
    alg = stb.heavy_ball(0.5, 0.9)
    lams = np.geomspace(1e-3, 1, 100)
    Bc = stb.critical_batch_size(alg, lams)
    assert nz.stability_sum(alg, lams, Bc).bounded
    assert not nz.stability_sum(alg, lams, Bc - 1).bounded
    assert stb.critical_batch_size(stb.gd(0.01), [0.1]) == 1.0
    assert stb.critical_batch_size(stb.gd(3.0), [1.0]) == math.inf  # noiseless unstable


def test_U_threshold_separates_bounded_and_divergent_recursion():
    alg = stb.heavy_ball(0.3, 0.8)
    spec = nz.Spectrum.from_arrays(np.geomspace(0.01, 1, 30), c2=np.ones(30))
    Bc = stb.critical_batch_size(alg, spec)
    low = nz.loss_trajectory(alg, spec, max(1.0, 0.6 * Bc), 3000)
    high = nz.loss_trajectory(alg, spec, 1.6 * Bc, 3000)
    assert nz.stability_sum(alg, spec, 1.6 * Bc).U < 1 < nz.stability_sum(alg, spec, 0.6 * Bc).U
    assert high[-1] < high[0] and np.all(np.isfinite(high))
    assert low[-1] > 1e3 * low[0]


# -- loss trajectory vs Monte Carlo of the actual mini-batch optimizer --------------------
def simulate_minibatch(alg, lam, w_star, B, steps, runs, seed):
    """Mini-batch SGD-with-memory on Gaussian linear regression, x ~ N(0, diag(lam))."""
    rng = np.random.default_rng(seed)
    p = alg.numeric_arrays()
    d, M = lam.size, alg.M
    w = np.zeros((runs, d))
    u = np.zeros((runs, M, d))
    losses = np.empty((steps + 1, runs))
    for t in range(steps + 1):
        err = w - w_star
        losses[t] = 0.5 * np.sum(lam * err**2, axis=1)
        if t == steps:
            break
        x = rng.normal(size=(runs, B, d)) * np.sqrt(lam)
        point = w + np.einsum("m,rmd->rd", p["a"], u) - w_star
        resid = np.einsum("rbd,rd->rb", x, point)
        g = np.einsum("rb,rbd->rd", resid, x) / B
        w, u = (
            w - p["alpha"] * g + np.einsum("m,rmd->rd", p["b"], u),
            np.einsum("m,rd->rmd", p["c"], g) + np.einsum("mn,rnd->rmd", p["D"], u),
        )
    return losses.mean(axis=1), losses.std(axis=1) / np.sqrt(runs)


@pytest.mark.parametrize("B", [1, 4, 16])
@pytest.mark.parametrize(
    "alg", [stb.heavy_ball(0.2, 0.6), stb.nesterov(0.25, 0.5)], ids=["heavy_ball", "nesterov"]
)
def test_loss_trajectory_matches_monte_carlo(alg, B):
    lam = np.array([1.0, 0.5, 0.25, 0.1, 0.05])
    w_star = np.array([1.0, -1.0, 0.5, 2.0, 1.0])
    steps = 25
    pred = nz.loss_trajectory(alg, nz.Spectrum.from_arrays(lam, c2=w_star**2), B, steps)
    mean, se = simulate_minibatch(alg, lam, w_star, B, steps, runs=20_000, seed=B)
    z = np.abs(mean - pred) / np.maximum(se, 1e-12)
    assert pred[0] == pytest.approx(mean[0])
    assert np.max(z[1:]) < 5.0, z


def test_loss_trajectory_noiseless_limit_is_deterministic_loss():
    alg = stb.heavy_ball(0.3, 0.5)
    lam = np.array([1.0, 0.3])
    c = np.array([1.0, 2.0])
    pred = nz.loss_trajectory(alg, nz.Spectrum.from_arrays(lam, c2=c**2), 1e12, 20)
    from stability.simulate import simulate

    traj = simulate(alg, lambda w: lam * (w - c), np.zeros(2), 20)
    det_loss = 0.5 * np.sum(lam * (traj - c) ** 2, axis=1)
    np.testing.assert_allclose(pred, det_loss, rtol=1e-9)


# -- power laws ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "alg",
    [stb.gd(0.8), stb.heavy_ball(0.1, 0.8), stb.memory1(0.9, 0.2, -0.3)],
    ids=["gd", "hb", "m1"],
)
def test_infinite_power_law_matches_extrapolated_finite_sums(alg):
    nu = 1.5
    inf_res = nz.stability_sum(alg, nz.power_law(nu), 32)
    assert inf_res.tolerance < 1e-9
    n1, n2 = 400_000, 1_600_000
    u1 = nz.stability_sum(alg, nz.power_law(nu, N=n1), 32).U
    u2 = nz.stability_sum(alg, nz.power_law(nu, N=n2), 32).U
    # tail ~ c N^(1-nu): eliminate c (Richardson); the remainder is O(N^-nu)
    ratio = (n2 / n1) ** (1 - nu)
    extrapolated = (u2 - ratio * u1) / (1 - ratio)
    assert inf_res.U == pytest.approx(extrapolated, rel=1e-8)
    assert abs(inf_res.U - u2) > 1e-6  # the finite sum alone is visibly short
    assert any("Hurwitz zeta" in n for n in inf_res.notes)


def test_power_law_validation():
    with pytest.raises(stb.ConfigError, match="nu must be in"):
        nz.power_law(0.4)
    with pytest.raises(stb.ConfigError, match="N must be a positive integer"):
        nz.power_law(2, N=2.5)
    assert nz.stability_sum(stb.gd(0.5), nz.power_law(0.9), 8).U == math.inf


# -- validation ---------------------------------------------------------------------------
@given(st.floats(-5, 5), st.floats(-5, 5))
def test_noise_model_validation(t1, t2):
    if t1 >= 0 and t2 <= t1:
        m = nz.get_noise_model((t1, t2))
        assert (m.tau1, m.tau2) == (t1, t2)
    else:
        with pytest.raises(stb.ConfigError):
            nz.get_noise_model((t1, t2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be in [1, inf), got 0"),
        ({"batch_size": "32"}, "batch_size must be a number"),
        ({"batch_size": float("nan")}, "batch_size must be finite"),
        ({"spectrum": []}, "eigenvalues must not be empty"),
        ({"spectrum": [1.0, -1.0]}, "eigenvalues must be in (0, inf), got -1.0"),
        ({"noise": "laplace"}, "noise must be one of"),
    ],
)
def test_stability_sum_validation(kwargs, message):
    args = {"spectrum": [1.0], "batch_size": 8, "noise": "gaussian", **kwargs}
    with pytest.raises(stb.ConfigError) as info:
        nz.stability_sum(stb.gd(0.5), args["spectrum"], args["batch_size"], args["noise"])
    assert message in str(info.value)


def test_result_notes_say_what_is_approximate():
    exact = nz.stability_sum(stb.gd(0.5), [1.0], 8, "gaussian")
    approx = nz.stability_sum(stb.gd(0.5), [1.0], 8, "se0")
    assert any("exact for Gaussian" in n for n in exact.notes)
    assert any("approximation" in n for n in approx.notes)
    assert approx.to_dict()["noise"]["name"] == "se0"
