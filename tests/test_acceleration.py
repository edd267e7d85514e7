"""Propagators and renewal identity, non-stationary schedules, AM1 and Theorem 7, max lr."""

from __future__ import annotations

import math

import numpy as np
import pytest

import stability as stb
from stability import noise as nz
from stability.noise.acceleration import am1_schedule, theorem7_quantities


def spectrum(n=25):
    lam = np.geomspace(0.01, 1, n)
    return nz.Spectrum.from_arrays(lam, weights=np.linspace(1, 2, n), c2=1 / np.sqrt(lam))


@pytest.mark.parametrize("noise", ["gaussian", "se0", "translation_invariant"])
@pytest.mark.parametrize(
    "alg",
    [stb.gd(0.8), stb.heavy_ball(0.3, 0.7), stb.memory1(0.8, 0.3, -0.5)],
    ids=["gd", "hb", "m1"],
)
def test_renewal_identity(alg, noise):
    spec = spectrum()
    T = 60
    V, U = nz.propagators(alg, spec, 8, T + 1, noise)
    L = nz.loss_trajectory(alg, spec, 8, T, noise)
    assert V[0] == pytest.approx(2 * L[0])  # V_1 = 2 L_0
    for t in range(T + 1):
        rhs = 0.5 * V[t] + sum(U[t - s - 1] * L[s] for s in range(t))
        assert L[t] == pytest.approx(rhs, rel=1e-11)
    # and the propagator sum is the stability sum
    U_long = nz.propagators(alg, spec, 8, 20_000, noise)[1].sum()
    assert U_long == pytest.approx(nz.stability_sum(alg, spec, 8, noise).U, rel=1e-9)


def test_propagators_refuse_lookahead():
    with pytest.raises(stb.ConfigError, match="a = 0"):
        nz.propagators(stb.nesterov(0.1, 0.5), spectrum(), 8, 5)


def test_constant_schedule_equals_stationary_run():
    alg = stb.heavy_ball(0.3, 0.7)
    sched = nz.MemorySchedule.constant(alg, 40)
    np.testing.assert_allclose(
        nz.loss_trajectory(sched, spectrum(), 4),
        nz.loss_trajectory(alg, spectrum(), 4, 40),
        rtol=1e-13,
    )
    mixed = nz.MemorySchedule.from_algorithms(
        [stb.heavy_ball(0.3, 0.7)] * 20 + [stb.heavy_ball(0.1, 0.9)] * 20
    )
    L = nz.loss_trajectory(mixed, spectrum(), 4)
    first = nz.loss_trajectory(alg, spectrum(), 4, 20)
    np.testing.assert_allclose(L[:21], first, rtol=1e-13)
    with pytest.raises(stb.ConfigError, match="same memory size"):
        nz.MemorySchedule.from_algorithms([stb.gd(0.1), stb.heavy_ball(0.1, 0.5)])
    with pytest.raises(stb.ConfigError, match="steps must be <="):
        nz.loss_trajectory(sched, spectrum(), 4, 41)


def test_schedule_matches_monte_carlo_free_simulation():
    # noiseless limit of a time-varying schedule = deterministic run of the same schedule
    from stability.simulate import simulate

    algs = [stb.heavy_ball(0.2 + 0.01 * t, 0.5) for t in range(15)]
    lam, c = np.array([1.0, 0.2]), np.array([1.0, -2.0])
    L = nz.loss_trajectory(
        nz.MemorySchedule.from_algorithms(algs), nz.Spectrum.from_arrays(lam, c2=c**2), 1e15
    )
    w, u, ref = np.zeros(2), np.zeros((1, 2)), []
    for alg in algs:
        ref.append(0.5 * np.sum(lam * (w - c) ** 2))
        traj = simulate(alg, lambda x: lam * (x - c), w, 1, u0=u)
        p = alg.numeric_arrays()
        g = lam * (w - c)
        u = np.outer(p["c"], g) + p["D"] @ u
        w = traj[1]
    ref.append(0.5 * np.sum(lam * (w - c) ** 2))
    np.testing.assert_allclose(L, ref, rtol=1e-10)


def test_am1_schedule_matches_its_definition():
    s = am1_schedule(alpha0=2.0, delta=0.5, q0=0.5, a=0.4, b=0.8, steps=50, nu=2.0)
    sched = s.schedule()
    for i in (0, 10, 49):
        alg = stb.momentum_kick(s.eta[i], s.kick[i], s.beta[i])
        t = alg.triplet()
        assert float(t.q0) == pytest.approx(0.5)  # q0 constant
        assert float(alg.effective_lr()) == pytest.approx(s.alpha_eff[i], rel=1e-12)
        assert 1 - float(t.beta) == pytest.approx(0.5 * s.t[i] ** -0.8)
        assert sched.alpha[i] == pytest.approx(float(alg.alpha))
    assert s.predicted_exponent(0.5) == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"a": 0.5, "b": 0.8, "nu": 2.0}, "a must be in (0, b(1 - 1/nu)] = (0, 0.4]"),
        ({"b": 1.0}, "b must be in [0, 1)"),
        ({"delta": 1.5}, "delta must be in (0, 1)"),
        ({"q0": 0.0}, "q0 must be in (0, inf)"),
        ({"alpha0": 0.1}, "eta_t must be positive"),
        ({"nu": 0.9}, "nu must be in (1, inf)"),
    ],
)
def test_am1_validation(kwargs, message):
    args = {"alpha0": 2.0, "delta": 0.5, "q0": 0.5, "a": 0.3, "b": 0.8, "steps": 10, **kwargs}
    with pytest.raises(stb.ConfigError) as info:
        am1_schedule(**args)
    assert message in str(info.value)


def test_theorem7_quantities_bounded_for_am1_not_for_heavy_ball():
    lam = nz.power_law(2.0, N=100_000).eigenvalues()
    s = am1_schedule(alpha0=2.0, delta=0.5, q0=0.5, a=0.4, b=0.8, steps=10**6, nu=2.0)
    idx = np.array([10, 10**3, 10**5, 10**6 - 1])
    q = theorem7_quantities(s.beta[idx], s.q0, -s.q0 - (1 - s.beta[idx]) * s.alpha_eff[idx], lam)
    assert np.all(np.isfinite(q["low"])) and q["low"].max() < 5 and q["mid"].max() < 50
    # heavy ball (q0 = 0) with the same alpha_eff: the "mid" quantity is infinite by definition
    qh = theorem7_quantities(s.beta[idx], 0.0, -(1 - s.beta[idx]) * s.alpha_eff[idx], lam)
    assert np.all(np.isinf(qh["mid"]))


def test_binned_power_law_matches_truncated_sum():
    pl = nz.power_law(2.0, zeta=0.5, N=20_000)
    exact = nz.loss_trajectory(stb.gd(0.5), pl.truncated(20_000), 64, 400)
    binned = nz.loss_trajectory(stb.gd(0.5), pl.binned(exact=300, bins=300), 64, 400)
    np.testing.assert_allclose(binned, exact, rtol=2e-3)


@pytest.mark.slow
def test_am1_loss_slope_beats_sgd():
    nu, zeta, a = 2.0, 0.5, 0.4
    spec = nz.power_law(nu, zeta=zeta).binned(exact=300, k_max=1e9, bins=500)
    T = 20_000
    s = am1_schedule(alpha0=2.0, delta=0.5, q0=0.5, a=a, b=0.8, steps=T, nu=nu)
    t = np.arange(T + 1)
    sel = (t >= 2000) & (t <= T)
    slope_am1 = np.polyfit(
        np.log(t[sel]), np.log(nz.loss_trajectory(s.schedule(), spec, 100)[sel]), 1
    )[0]
    slope_sgd = np.polyfit(
        np.log(t[sel]), np.log(nz.loss_trajectory(stb.gd(0.5), spec, 100, T)[sel]), 1
    )[0]
    assert slope_sgd == pytest.approx(-zeta, abs=0.02)
    assert slope_am1 == pytest.approx(-zeta * (1 + a), abs=0.06)
    assert slope_am1 < slope_sgd - 0.15


def test_max_stable_lr():
    lams = [1.0, 0.3, 0.1]
    lr = stb.max_stable_lr("heavy_ball", lams, 16, momentum=0.9)
    ok = nz.stability_sum(stb.heavy_ball(lr, 0.9), lams, 16)
    bad = nz.stability_sum(stb.heavy_ball(lr * (1 + 1e-6), 0.9), lams, 16)
    assert ok.bounded and not bad.bounded
    with pytest.raises(stb.ConfigError, match="needs"):
        stb.max_stable_lr("heavy_ball", lams, 16)
    with pytest.raises(stb.ConfigError, match="no lr parameter"):
        stb.max_stable_lr("memory1", lams, 16, beta=0.5, q0=0, q1=-1)


@pytest.mark.slow
def test_max_stable_lr_other_families():
    assert stb.max_stable_lr("gd", [2.0], 1e15) == pytest.approx(1.0, rel=1e-8)
    assert math.isfinite(stb.max_stable_lr("nesterov", [1.0, 0.3, 0.1], 4, momentum=0.5))


def test_power_law_asymptotics_regime_and_validation():
    asym = nz.power_law_asymptotics(stb.heavy_ball(0.1, 0.8), nz.power_law(2.0, zeta=0.5), 100)
    assert asym.regime == "signal" and asym.exponent == 0.5 and asym.U < 1
    with pytest.raises(stb.ConfigError, match="zeta"):
        nz.power_law_asymptotics(stb.heavy_ball(0.1, 0.8), nz.power_law(2.0), 100)


@pytest.mark.slow
def test_power_law_asymptotics_match_exact_recursion():
    pl = nz.power_law(2.0, zeta=0.5)
    spec = pl.binned(exact=300, k_max=1e10, bins=500)
    alg = stb.heavy_ball(0.1, 0.8)  # alpha_eff = 0.5
    asym = nz.power_law_asymptotics(alg, pl, 100)
    assert asym.regime == "signal" and asym.exponent == 0.5 and asym.U < 1
    T = 20_000
    L = nz.loss_trajectory(alg, spec, 100, T)
    # prefactor: L_t t^zeta -> C_V / (2 (1 - U)), corrections O(t^-1/2) here
    assert L[T] / asym.signal_loss(T) == pytest.approx(1.0, abs=0.03)
    V, U = nz.propagators(alg, spec, 100, T)
    t = np.arange(1, T + 1)
    assert V[-1] / (asym.C_V * T ** (-0.5)) == pytest.approx(1.0, abs=0.02)
    assert U[-1] / (asym.C_U * T ** (-asym.xi_U)) == pytest.approx(1.0, abs=0.03)
    assert t.size == T
    with pytest.raises(stb.ConfigError, match="zeta"):
        nz.power_law_asymptotics(alg, nz.power_law(2.0), 100)


def test_noise_plots(tmp_path):
    import matplotlib.pyplot as plt

    from stability import plots

    lams = np.geomspace(1e-3, 1, 50)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    from stability.noise import curves

    by_batch = curves.stability_sum_vs_batch(stb.heavy_ball(0.5, 0.9), lams, [1, 4, 16, 64])
    assert plots.plot_stability_sum(by_batch, ax=axes[0])
    by_lr = curves.stability_sum_vs_lr(
        "heavy_ball", lams, 16, np.linspace(0.05, 2, 15), momentum=0.9
    )
    assert plots.plot_stability_sum_vs_lr(by_lr, 16, ax=axes[1])
    hb, m1 = curves.heavy_ball_vs_memory1(lams, 64, np.geomspace(1, 1e3, 8), q0=0.5)
    assert plots.plot_heavy_ball_vs_memory1((hb, m1), ax=axes[2])
    hb_U, m1_U = hb.U, m1.U
    assert hb_U[-1] > 10 * hb_U[0] and m1_U[-1] < 2 * m1_U[0]  # grows like alpha_eff vs bounded
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    fig.savefig(tmp_path / "noise.png")
    plt.close(fig)
    assert (tmp_path / "noise.png").stat().st_size > 10_000
