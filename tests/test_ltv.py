"""The LTV (AutoSGM) view: derivations, replays of real update rules, verdicts, variances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

import stability as stb
from stability import ltv
from stability.fluctuations import stationary_variance_1d
from stability.ltv import filters as autosgm


# -- symbolic derivations -----------------------------------------------------------------
def test_ltv_recursion_and_prox():
    eq = ltv.derive_ltv_recursion()
    assert "alpha_t" in str(eq.rhs)
    realised, claimed = autosgm._ltv_recursion_parts()
    assert sp.simplify(realised - claimed) == 0 and claimed == eq.rhs
    prox = ltv.prox_update()
    _D, e, r, dw = sp.symbols("Delta e r dw", real=True)
    beta, eta = ltv.beta_s, ltv.eta_s
    alpha = sp.Symbol("alpha", positive=True)
    assert sp.simplify(prox["minimiser"] - (beta * r * dw + eta * alpha * e)) == 0
    assert prox["modulus"] == 1 / alpha


def test_weight_decay_equivalence_and_caveat():
    res = ltv.weight_decay_equivalence()
    (sol,) = res["solutions"]
    assert sol[ltv.gamma_s] == ltv.beta_s
    assert sol[sp.Symbol("rho'", positive=True)] == sp.Symbol("rho", positive=True) / ltv.eta_s
    assert res["filter_when_equal"] == ltv.eta_s  # no momentum left
    assert "no momentum" in res["caveat"]


def test_impulse_response_is_the_series_of_H():
    f = ltv.lowpass_filter(sp.Rational(4, 5), sp.Rational(1, 3), 2)
    x = sp.Symbol("x")  # x = 1/z
    series = sp.series(f.transfer_function.subs(ltv.z, 1 / x), x, 0, 8).removeO()
    for t in range(8):
        assert sp.simplify(series.coeff(x, t) - f.impulse_response(t)) == 0
    assert f.dc_gain == sp.Rational(2) * (1 - sp.Rational(1, 3)) / (1 - sp.Rational(4, 5))
    assert f.normalised().dc_gain == 1


def test_filter_validation():
    with pytest.raises(stb.ConfigError, match=r"beta must be in \[0, 1\)"):
        ltv.lowpass_filter(1.0)
    with pytest.raises(stb.ConfigError, match="gamma must be < beta"):
        ltv.lowpass_filter(0.5, 0.7)
    with pytest.raises(stb.ConfigError, match="unknown key"):
        ltv.filter_from_config({"optimizer": "adam", "beta1": 0.9})
    with pytest.raises(stb.ConfigError, match="optimizer must be one of"):
        ltv.filter_from_config({"optimizer": "rmsprop"})


def test_config_mapping():
    f = ltv.filter_from_config({"optimizer": "sgd", "momentum": 0.9, "nesterov": True})
    assert float(f.gamma) == pytest.approx(0.9 / 1.9) and float(f.eta) == pytest.approx(1.9)
    f = ltv.filter_from_config({"optimizer": "sgd", "momentum": 0.9, "dampening": 0.1})
    assert (float(f.beta), float(f.gamma), float(f.eta)) == (0.9, 0.0, pytest.approx(0.9))
    assert float(ltv.filter_from_config({"optimizer": "sgd"}).eta) == 1.0  # not 0 (notes' typo)
    f = ltv.filter_from_config({"optimizer": "adamw", "betas": (0.8, 0.99), "weight_decay": 0.1})
    assert (float(f.beta), float(f.eta)) == (0.8, pytest.approx(0.2)) and len(f.notes) == 2


# -- replays against re-implemented update rules -------------------------------------------
def quadratic(seed=0, d=4):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, d))
    H = A @ A.T / d + 0.1 * np.eye(d)
    H /= np.linalg.eigvalsh(H).max()
    w_star = rng.normal(size=d)
    return (lambda w: H @ (w - w_star)), rng.normal(size=d)


def torch_sgd(grad, w0, lrs, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    w, buf, out = np.array(w0, dtype=float), None, [np.array(w0, dtype=float)]
    for lr in lrs:
        g = grad(w) + weight_decay * w
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        w = w - lr * g
        out.append(w)
    return np.array(out)


def torch_adam(grad, w0, lrs, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=True):
    w = np.array(w0, dtype=float)
    m, v, out = np.zeros_like(w), np.zeros_like(w), [w.copy()]
    for t, lr in enumerate(lrs, start=1):
        g = grad(w)
        if decoupled:
            w = w * (1 - lr * weight_decay)
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(w.copy())
    return np.array(out)


SCHEDULES = {
    "warmup_cosine": lambda T: (
        0.3 * np.minimum((np.arange(T) + 1) / 10, 1) * 0.5 * (1 + np.cos(np.pi * np.arange(T) / T))
    ),
    "step": lambda T: 0.2 * 0.5 ** (np.arange(T) // 15),
    "restarts": lambda T: (
        0.25 * ltv.schedule("warm_restarts", T, period=12, min_factor=0.05).values
    ),
}


@pytest.mark.parametrize("sched", sorted(SCHEDULES))
@pytest.mark.parametrize(
    "cfg",
    [
        {"momentum": 0.9},
        {"momentum": 0.8, "dampening": 0.3},
        {"momentum": 0.9, "nesterov": True},
        {"momentum": 0.7, "weight_decay": 0.05},
        {"momentum": 0.9, "nesterov": True, "weight_decay": 0.02},
    ],
)
def test_replay_torch_sgd(cfg, sched):
    grad, w0 = quadratic()
    T = 60
    lrs = SCHEDULES[sched](T)
    ref = torch_sgd(grad, w0, lrs, **cfg)
    filt = ltv.filter_from_config(
        {"optimizer": "sgd", **{k: v for k, v in cfg.items() if k != "weight_decay"}}
    )
    got = ltv.ltv_replay(
        filt,
        grad,
        w0,
        T,
        lrs,
        coupled_decay=cfg.get("weight_decay", 0.0),
        first_eta=1.0 if cfg.get("dampening") else None,
    )
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sched", sorted(SCHEDULES))
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_replay_adam_and_adamw(sched, wd):
    grad, w0 = quadratic(1)
    T = 60
    lrs = SCHEDULES[sched](T) * 0.1
    ref = torch_adam(grad, w0, lrs, weight_decay=wd)
    filt = ltv.filter_from_config({"optimizer": "adamw", "betas": (0.9, 0.999)})
    got = ltv.ltv_replay(
        filt, grad, w0, T, ltv.AdamAlpha(lrs, 0.9, 0.999, 1e-8), decoupled_decay=wd
    )
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_replay_real_torch():
    torch = pytest.importorskip("torch")
    grad, w0 = quadratic(2)
    T = 40
    for name, make, mapping, kw in [
        (
            "sgd",
            lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True),
            {"optimizer": "sgd", "momentum": 0.9, "nesterov": True},
            {},
        ),
        (
            "adamw",
            lambda p: torch.optim.AdamW([p], lr=0.05, weight_decay=0.1),
            {"optimizer": "adamw"},
            {"decoupled_decay": 0.1},
        ),
    ]:
        p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
        opt = make(p)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min((t + 1) / 10, 1.0))
        lrs, traj = [], [w0.copy()]
        for _ in range(T):
            lrs.append(opt.param_groups[0]["lr"])
            opt.zero_grad()
            p.grad = torch.tensor(grad(p.detach().numpy()), dtype=torch.float64)
            opt.step()
            sched.step()
            traj.append(p.detach().numpy().copy())
        filt = ltv.filter_from_config(mapping)
        alpha = ltv.AdamAlpha(np.array(lrs), 0.9, 0.999, 1e-8) if name == "adamw" else np.array(lrs)
        got = ltv.ltv_replay(filt, grad, w0, T, alpha, **kw)
        np.testing.assert_allclose(got, np.array(traj), rtol=1e-9, atol=1e-12)


# -- verdicts and docs §7 counterexamples ------------------------------------------------
def worst_case_gain(a, b):
    """Independent: impulse responses of x[t+1] = a x + b u, then the largest row l1 norm."""
    T = len(a)
    resp = np.zeros((T + 1, T))
    for k in range(T):
        x = 0.0
        for t in range(T):
            x = a[t] * x + (b[t] if t == k else 0.0)
            resp[t + 1, k] = x
    return np.abs(resp).sum(axis=1).max()


@pytest.mark.parametrize(
    "kind,kw",
    [
        ("linear_warmup", {"warmup": 20}),
        ("cosine", {}),
        ("inverse_time", {}),
        ("warm_restarts", {"period": 15}),
        ("step", {"milestones": [20, 40]}),
    ],
)
def test_bibo_gain_equals_worst_case_response(kind, kw):
    f = ltv.lowpass_filter(0.8)
    s = ltv.schedule(kind, 60, **kw)
    v = ltv.ltv_verdict(f, 0.3, s)
    alpha = 0.3 * s.values
    a = 0.8 * np.concatenate([[1.0], alpha[1:] / alpha[:-1]])
    b = float(f.eta) * alpha
    assert v.bibo_gain == pytest.approx(worst_case_gain(a, b), rel=1e-12)
    assert ltv.scalar_ltv_verdict(a, b).bibo_gain == pytest.approx(v.bibo_gain, rel=1e-12)


def test_counterexample_linear_warmup():
    v = ltv.ltv_verdict(ltv.lowpass_filter(0.9), 0.1, ltv.schedule("linear_warmup", 500, warmup=50))
    assert v.frozen_pole_margin > 1  # beta r[1] = 1.8
    assert v.ues and v.bibo and v.ues_rate == pytest.approx(0.9) and v.ues_constant == 50
    # the constants really bound the transition on the horizon
    a = 0.9 * ltv.schedule("linear_warmup", 500, warmup=50).ratio
    assert ltv.ues_constant(a, 0.9 * (1 + 1e-12)) <= 50 * (1 + 1e-9)


def test_counterexample_sqrt_growth():
    v = ltv.ltv_verdict(ltv.lowpass_filter(0.5), 0.1, ltv.schedule("sqrt_growth", 400))
    assert v.ues and v.bibo is False and math.isinf(v.bibo_gain)
    gains = [
        ltv.ltv_verdict(
            ltv.lowpass_filter(0.5), 0.1, ltv.schedule("array", T, values=np.sqrt(np.arange(T) + 1))
        ).bibo_gain
        for T in (100, 400, 1600)
    ]
    assert gains[1] > 1.9 * gains[0] and gains[2] > 1.9 * gains[1]  # grows like sqrt(T)
    a = 0.5 * np.sqrt((np.arange(1, 4000) + 1) / np.arange(1, 4000))
    assert ltv.ues_constant(a, 0.6) < 2  # UES for rho > beta


def test_counterexample_warm_restarts_dipping():
    s = ltv.schedule("warm_restarts", 2000, period=10, mult=2)
    v = ltv.ltv_verdict(ltv.lowpass_filter(0.9), 0.1, s)
    assert v.bibo and v.ues is False
    # the constant C = max alpha[t]/alpha[s] grows with every longer restart
    cs = [
        ltv.ltv_verdict(
            ltv.lowpass_filter(0.9), 0.1, ltv.schedule("array", T, values=s.values[:T])
        ).ues_constant
        for T in (100, 400, 1600)
    ]
    assert cs[0] < cs[1] < cs[2]


def test_counterexample_alternating():
    v = ltv.scalar_ltv_verdict([1.5, 0.2] * 200, 1.0)
    assert v.frozen_pole_margin == 1.5
    assert v.ues_rate == pytest.approx(math.sqrt(0.3), rel=1e-6)
    assert v.ues_constant == pytest.approx(1.5 / math.sqrt(0.3), rel=1e-6)
    assert v.bibo_gain < 10


def test_counterexample_inverse_time_ratio_tends_to_one():
    s = ltv.schedule("inverse_time", 10_000)
    assert s.ratio[-1] == pytest.approx(1.0, abs=2e-4)  # annealing shrinks the gain, not the pole
    assert ltv.schedule("exponential", 100, gamma=0.97).ratio == pytest.approx(0.97)
    lin = ltv.schedule("polynomial", 100, power=1.0)
    assert lin.ratio[-1] == pytest.approx(0.5) and lin.ratio[0] > 0.98  # 0 only at the end


def test_schedule_validation():
    with pytest.raises(stb.ConfigError, match="schedule kind must be one of"):
        ltv.schedule("onecycle", 10)
    with pytest.raises(stb.ConfigError, match="values must have length"):
        ltv.schedule("array", 10, values=[1, 2])
    with pytest.raises(stb.ConfigError, match=r"values must be in \[0, inf\), got -2.0"):
        ltv.schedule("array", 2, values=[1, -2])
    with pytest.raises(stb.ConfigError, match="unknown schedule option"):
        ltv.schedule("cosine", 10, warmup=3)
    with pytest.raises(stb.ConfigError, match="lr must be in"):
        ltv.ltv_verdict(ltv.lowpass_filter(0.5), -1.0)


# -- constant-alpha models -----------------------------------------------------------------
@pytest.mark.symbolic
@pytest.mark.timeout(180)
def test_filter_variance_closed_form_matches_lyapunov():
    b, g, e, a, h, s2 = sp.symbols("beta gamma eta alpha h s2", positive=True)
    filt = ltv.AutoSGMFilter(b, g, e)
    closed, _ = ltv.filter_stationary_variance(filt, a, h, s2)
    derived = stationary_variance_1d(ltv.filter_as_algorithm(filt, a), h, s2)
    assert sp.simplify(closed - derived) == 0


def test_filter_variance_vs_monte_carlo_and_conditions():
    filt = ltv.lowpass_filter(0.8, 0.3, 1.0)
    alpha, h, s2 = 0.2, 1.5, 1.0
    var, conds = ltv.filter_stationary_variance(filt, alpha, h, s2)
    assert all(float(c) > 0 for c in conds)
    rng = np.random.default_rng(0)
    runs = 20_000
    w, v, g_prev = np.zeros(runs), np.zeros(runs), np.zeros(runs)
    acc = []
    for t in range(600):
        g = h * w + rng.normal(size=runs) * math.sqrt(s2)
        v = 0.8 * v + 1.0 * (g - 0.3 * g_prev)
        w = w - alpha * v
        g_prev = g
        if t > 200 and t % 25 == 0:
            acc.append(w.copy())
    x = np.concatenate(acc)
    se = x.var() * math.sqrt(2 / len(x))
    assert abs(x.var() - float(var)) < 5 * se
    # the conditions are the exact (Jury) region of the equivalent memory-1 algorithm
    for a_test in (0.5, 3.0, 6.0):
        _, cs = ltv.filter_stationary_variance(filt, a_test, h, s2)
        alg = ltv.filter_as_algorithm(filt, a_test)
        assert all(float(c) > 0 for c in cs) == stb.is_strictly_stable(alg, [h]).stable


def test_adam_frozen_preconditioner_threshold():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(4, 4))
    H = A @ A.T + 0.1 * np.eye(4)
    P = np.diag(rng.uniform(0.5, 3, 4))
    eta_star = ltv.adam_frozen_threshold(0.9, H, P)

    def radius(eta):
        # EMA momentum with frozen P: m <- b m + (1-b) g, w <- w - eta P^-1 m (full state)
        d = 4
        Pi = np.linalg.inv(P)
        top = np.hstack([np.eye(d) - eta * 0.1 * Pi @ H, -eta * 0.9 * Pi])
        bottom = np.hstack([0.1 * H, 0.9 * np.eye(d)])
        return np.abs(np.linalg.eigvals(np.vstack([top, bottom]))).max()

    assert radius(0.99 * eta_star) < 1 < radius(1.01 * eta_star)


def test_ltv_plots(tmp_path):
    import matplotlib.pyplot as plt

    from stability import plots

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    f = ltv.lowpass_filter(0.9)
    assert plots.plot_schedule_verdict(
        f, 0.1, ltv.schedule("linear_warmup", 300, warmup=50), ax=axes[0]
    )
    assert plots.plot_filter_response(ltv.lowpass_filter(0.8, 0.3), axes=axes[1:])
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert "UES yes" in axes[0].get_title() and "BIBO yes" in axes[0].get_title()
    fig.savefig(tmp_path / "ltv.png")
    plt.close(fig)
    assert (tmp_path / "ltv.png").stat().st_size > 10_000


def test_adam_frozen_covariance_vs_monte_carlo():
    H = np.array([[1.0, 0.3], [0.3, 0.5]])
    P = np.array([2.0, 0.5])
    C = np.array([[0.5, 0.1], [0.1, 0.3]])
    lr, b1 = 0.05, 0.9
    pred = ltv.adam_frozen_covariance(lr, b1, H, P, C)
    rng = np.random.default_rng(4)
    runs = 4000
    L = np.linalg.cholesky(C)
    w, m, acc = np.zeros((runs, 2)), np.zeros((runs, 2)), []
    for t in range(3000):
        g = w @ H.T + rng.normal(size=(runs, 2)) @ L.T
        m = b1 * m + (1 - b1) * g
        w = w - lr * m / P
        if t > 1000 and t % 20 == 0:
            acc.append(w.copy())
    x = np.concatenate(acc)
    emp = x.T @ x / len(x)
    se = np.sqrt((np.outer(np.diag(emp), np.diag(emp)) + emp**2) / (len(x) / 10))
    assert np.max(np.abs(emp - pred) / se) < 5


def test_callable_schedule_and_w_boundedness():
    s = ltv.schedule("callable", 5, fn=lambda t: 1 / (t + 1))
    assert s.values.tolist() == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    with pytest.raises(stb.ConfigError, match="fn"):
        ltv.schedule("callable", 5)
    f = ltv.lowpass_filter(0.5)
    assert ltv.ltv_verdict(f, 0.1, ltv.schedule("exponential", 100, gamma=0.9)).w_bounded
    assert ltv.ltv_verdict(f, 0.1, ltv.schedule("inverse_time", 100)).w_bounded is False
    assert ltv.ltv_verdict(f, 0.1, ltv.schedule("constant", 100)).w_bounded is False
