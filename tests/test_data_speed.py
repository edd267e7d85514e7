"""Issue 27: data verdicts with a tolerance, many batch sizes in one call, the stability curve,
and the reuse behind them, each checked against the answer computed the slow way (the search to
1e-10, fresh radii at each batch size, einsum products, exact strict verdicts)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import stability as stb
from stability.checkers import largest_stable_lr
from stability.errors import ConfigError
from stability.noise import DataNoise, PerSampleCurvature, mean_square_radius
from stability.noise.data import _strict
from stability.report import ReportSet

sklearn = pytest.importorskip("sklearn.datasets")


def _digits():
    X, y = sklearn.load_digits(return_X_y=True)
    return PerSampleCurvature.from_features(X / 16, y / 1.0)


def _diabetes():
    X, y = sklearn.load_diabetes(return_X_y=True)
    return PerSampleCurvature.from_features(X, y / 100)


@pytest.fixture(scope="module")
def digits():
    return _digits()


@pytest.mark.parametrize(
    ("which", "momentum", "B"), [("digits", 0.0, 1), ("digits", 0.9, 16), ("diabetes", 0.9, 4)]
)
def test_largest_lr_to_the_tolerance_asked_is_within_it_of_the_1e_10_answer(which, momentum, B):
    data = _digits() if which == "digits" else _diabetes()
    cfg = {"optimizer": "sgd", "lr": 0.01, "momentum": momentum}
    opt = stb.from_optimizer(cfg)[0]
    exact, _ = largest_stable_lr(opt, batch_size=B, noise=DataNoise(data), rtol=1e-10)
    rep = stb.check(cfg, data=data, batch_size=B, tol=1e-3)
    assert exact * (1 - 1e-3) <= rep.max_stable_lr <= exact  # certified side, within tol
    alg = stb.from_optimizer({**cfg, "lr": rep.max_stable_lr})[0].algorithm
    assert mean_square_radius(alg, data, B).stable


def test_many_batch_sizes_in_one_call_equal_one_call_each(digits):
    cfg = {"optimizer": "sgd", "lr": 0.02, "momentum": 0.9}
    many = stb.check(cfg, data=digits, batch_size=[1, 8, 32, 128])
    assert isinstance(many, ReportSet) and len(many) == 4
    for rep, B in zip(many, [1, 8, 32, 128], strict=True):
        one = stb.check(cfg, data=digits, batch_size=B)
        assert rep.verdict == one.verdict
        assert rep.noise["lower"] <= one.noise["rho"] <= rep.noise["upper"]
        assert rep.max_stable_lr == pytest.approx(one.max_stable_lr, rel=1.1e-3)
        assert rep.noise["critical_batch_size"] == one.noise["critical_batch_size"]
    assert many.verdict == min(
        (r.verdict for r in many), key=["unstable", "marginal", "stable"].index
    )
    assert "4 settings" in str(many) and json.dumps(many.to_dict())
    assert "<table>" in many._repr_html_()


def test_a_radius_scaled_from_another_batch_size_matches_a_fresh_one(digits):
    model = DataNoise(digits, "without_replacement")
    alg = stb.heavy_ball(0.02, 0.9)
    model.radius(alg, 4, rtol=1e-8)  # computed once ...
    for B in (2, 16, 100):  # ... and scaled: N is linear in kappa_B
        scaled = model.radius(alg, B, rtol=1e-6)
        fresh = mean_square_radius(alg, digits, B, sampling="without_replacement", rtol=1e-8)
        assert scaled.matvecs == 0
        assert scaled.lower <= fresh.rho <= scaled.upper
        assert fresh.lower <= scaled.rho <= fresh.upper
        assert scaled.stable == fresh.stable


def test_stability_curve_against_one_search_per_batch_size(digits):
    cfg = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9}
    sizes = [1, 16, 256]
    curve = stb.stability_curve(cfg, data=digits, batch_sizes=sizes)
    opt = stb.from_optimizer(cfg)[0]
    model = DataNoise(digits)
    for B, lr in zip(sizes, curve.max_lr, strict=True):
        want, _ = largest_stable_lr(opt, batch_size=B, noise=model, rtol=1e-6)
        assert want * (1 - 1.001e-3) <= lr <= want * (1 + 1e-6)
    assert np.all(np.diff(curve.max_lr) >= 0) and curve.max_lr[-1] <= curve.noiseless_lr
    # the knee: the smallest batch whose largest stable lr reaches 90 % of the noiseless limit
    k = int(curve.knee)
    at_knee, _ = largest_stable_lr(opt, batch_size=k, noise=model, rtol=1e-6)
    below, _ = largest_stable_lr(opt, batch_size=k - 1, noise=model, rtol=1e-6)
    assert at_knee >= 0.9 * curve.noiseless_lr * (1 - 1e-6) > below
    text = str(curve)
    assert "knee: B = " in text and "noiseless limit" in text
    assert json.dumps(curve.to_dict())


def test_stability_curve_plot_is_labelled(digits, tmp_path):
    import matplotlib.pyplot as plt

    curve = stb.stability_curve({"optimizer": "sgd", "lr": 0.01}, data=digits, batch_sizes=[1, 8])
    fig, ax = plt.subplots()
    curve.plot(ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("largest stable lr" in t for t in labels)
    assert any("noiseless limit" in t for t in labels)
    assert ax.get_xlabel() and ax.get_ylabel()
    fig.savefig(tmp_path / "curve.png")
    plt.close(fig)


def test_stability_curve_refuses_bad_input(digits):
    cfg = {"optimizer": "sgd", "lr": 0.01}
    with pytest.raises(ConfigError, match="batch_sizes must be a list"):
        stb.stability_curve(cfg, data=digits, batch_sizes=8)
    with pytest.raises(ConfigError, match=r"each batch size must be a number in \[1, inf\)"):
        stb.stability_curve(cfg, data=digits, batch_sizes=[0.5])
    with pytest.raises(ConfigError, match="needs data"):
        stb.stability_curve(cfg, data=None, batch_sizes=[1])
    with pytest.raises(ConfigError, match="tol must be"):
        stb.stability_curve(cfg, data=digits, batch_sizes=[1], tol=0.5)
    with pytest.raises(ConfigError, match="Adam"):
        stb.stability_curve({"optimizer": "adam", "lr": 0.01}, data=digits, batch_sizes=[1])
    with pytest.raises(ConfigError, match="tol must be"):
        stb.check(cfg, data=digits, batch_size=4, tol=0)


def test_fourth_moment_products_equal_the_einsum():
    rng = np.random.default_rng(1)
    data = PerSampleCurvature.from_factors(rng.standard_normal((50, 3, 7)))
    W = rng.standard_normal((data.dim, data.dim))
    W = W + W.T
    F = data.factors
    G = np.einsum("nkr,rs,nls->nkl", F, W, F)
    want = np.einsum("nkr,nkl,nls->rs", F, G, F) / data.n
    assert np.allclose(data.fourth_moment(W), want, rtol=1e-12, atol=1e-12)


@given(
    scale=st.one_of(st.floats(0.5, 1.5), st.floats(1 - 1e-12, 1 + 1e-12)),
    momentum=st.sampled_from([0.0, 0.5, 0.9, 0.999]),
    nesterov=st.booleans(),
    tiny=st.sampled_from([0.0, 1e-12, 1e-6]),
    seed=st.integers(0, 1000),
)
def test_the_float_strict_check_agrees_with_the_exact_one(scale, momentum, nesterov, tiny, seed):
    """Near the noiseless edge (scale ~ 1) and at curvatures near 0 (heavy ball's radius
    within lr lambda of 1) the float decision (Jury's margins) agrees with the exact one, or
    defers to it."""
    lam = np.sort(np.random.default_rng(seed).uniform(0.1, 3.0, 20))
    lam[0] = tiny if tiny else lam[0]
    nesterov = nesterov and momentum > 0
    lr = scale * 2 * (1 + momentum) / lam.max()
    if nesterov:
        lr = scale * 2 * (1 + momentum) / (1 + 2 * momentum) / lam.max()
    cfg = {"optimizer": "sgd", "lr": lr, "momentum": momentum, "nesterov": nesterov}
    alg = stb.from_optimizer(cfg)[0].algorithm
    got = _strict(alg, lam, 0.0, 0)
    assert got.stable == stb.is_strictly_stable(alg, lam).stable


@given(seed=st.integers(0, 10_000), n=st.integers(2, 9))
def test_the_search_interpolant_is_scipys_pchip(seed, n):
    """The data edge search's monotone cubic (written out: scipy is optional in the core)
    equals scipy's PchipInterpolator on random increasing abscissae."""
    from scipy.interpolate import PchipInterpolator

    from stability.checkers.searches import _pchip

    rng = np.random.default_rng(seed)
    xs = np.cumsum(rng.uniform(0.05, 1.0, n))
    ys = rng.standard_normal(n).cumsum() if seed % 2 else np.sort(rng.standard_normal(n))
    ours, theirs = _pchip(xs, ys), PchipInterpolator(xs, ys)
    for x in np.linspace(xs[0], xs[-1], 23):
        assert ours(float(x)) == pytest.approx(float(theirs(x)), rel=1e-10, abs=1e-10)


def test_a_warm_started_radius_keeps_its_certificate(digits):
    """The eigenmatrix at one learning rate starts the iteration at the next; the bounds
    still hold (checked against the Perron root of the dense operator on a small set), a
    start from another lr or a random PD matrix only costs applications."""
    rng = np.random.default_rng(3)
    small = PerSampleCurvature.from_features(rng.standard_normal((40, 4)), rng.standard_normal(40))
    lam = small.eigenvalues
    for lr, start_lr in [(0.05, 0.049), (0.1, 0.01)]:
        alg = stb.heavy_ball(lr, 0.9)
        R = stb.noise.response_matrix(alg, lam)
        F = small.factors.reshape(small.n, -1, small.dim)
        Hs = np.einsum("nki,nkj->nij", F, F)
        E = np.einsum("nij,nkl->ikjl", Hs, Hs).reshape(small.dim**2, -1) / small.n
        N = (E - np.kron(np.diag(lam), np.diag(lam))) * R.reshape(-1)[None, :]
        rho = float(np.max(np.abs(np.linalg.eigvals(N))))
        first = mean_square_radius(stb.heavy_ball(start_lr, 0.9), small, 1, rtol=1e-10)
        starts = [first._eigenmatrix, np.eye(small.dim) + 0.1 * np.ones((small.dim,) * 2)]
        for start in starts:
            res = mean_square_radius(alg, small, 1, rtol=1e-8, start=start)
            assert res.lower <= rho * (1 + 1e-9) and rho <= res.upper * (1 + 1e-9)
            assert res.rho == pytest.approx(rho, rel=1e-6)
    # a nearby start needs fewer applications than the cold one
    cold = mean_square_radius(stb.heavy_ball(0.05, 0.9), digits, 8, rtol=1e-4)
    near = mean_square_radius(stb.heavy_ball(0.0501, 0.9), digits, 8, rtol=1e-4)
    warm = mean_square_radius(
        stb.heavy_ball(0.0501, 0.9), digits, 8, rtol=1e-4, start=cold._eigenmatrix
    )
    assert warm.matvecs < near.matvecs
    assert warm.lower <= near.rho <= warm.upper and near.lower <= warm.rho <= near.upper
    bad = mean_square_radius(stb.heavy_ball(0.05, 0.9), digits, 8, start=np.full((2, 2), np.nan))
    assert bad.rho == pytest.approx(cold.rho, rel=1e-3)  # an unusable start is ignored


def test_cli_batch_size_list(tmp_path):
    X = np.random.default_rng(0).standard_normal((300, 4))
    np.save(tmp_path / "X.npy", X)
    run = subprocess.run(
        [sys.executable, "-m", "stability", "check", "--optimizer", "sgd", "--lr", "0.05",
         "--data", str(tmp_path / "X.npy"), "--batch-size", "1,8,64", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode in (0, 1), run.stderr
    out = json.loads(run.stdout)
    assert [s["noise"]["batch_size"] for s in out["settings"]] == [1, 8, 64]
    assert run.returncode == (0 if out["verdict"] == "stable" else 1)
    from stability.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'optimizer = "sgd"\nlr = 0.05\ndata = "{tmp_path / "X.npy"}"\n'
                   "batch_size = [2, 16]\n")  # fmt: skip
    assert main(["check", "--config", str(cfg)]) in (0, 1)
    assert main(["check", "--lr", "0.05", "--data", str(tmp_path / "X.npy"), "--batch-size",
                 "1,x"]) == 2  # fmt: skip


def test_the_auto_subspace_is_chosen_by_cost():
    torch = pytest.importorskip("torch")
    from stability.training import per_sample_ggn

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 30), torch.nn.Tanh(), torch.nn.Linear(30, 1))
    net = net.double()
    small = torch.randn(20, 4, dtype=torch.float64)  # 20 Jacobian rows <= 2 rank: exact
    assert "exact" in per_sample_ggn(net, "mse", small, rank=16).subspace
    big = torch.randn(200, 4, dtype=torch.float64)  # 200 rows (181 parameters) > 2 rank: top
    data = per_sample_ggn(net, "mse", big, rank=16)
    assert data.subspace == "the top 16 Gauss-Newton eigenvectors"
    exact = per_sample_ggn(net, "mse", big, subspace="jacobian")
    # the top 16 directions of the exact curvature are the ones found
    assert np.allclose(data.eigenvalues, exact.eigenvalues[-16:], rtol=1e-6)


def test_small_products_run_on_one_thread():
    from threadpoolctl import threadpool_info

    from stability._threads import PARALLEL_FLOPS, limited

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    with limited(PARALLEL_FLOPS / 10):
        assert all(t == 1 for t in blas_threads())
    with limited(PARALLEL_FLOPS * 10):
        assert blas_threads() == before
    assert blas_threads() == before


def _epoch_map(X, sizes, lr, mu):
    """Oracle: the exact second-moment map of one epoch of heavy ball whose batches (drawn
    with replacement) have the given sizes, by Kronecker products; its radius per step."""
    n, d = X.shape
    Hs = [2 * np.outer(x, x) for x in X]
    H = sum(Hs) / n
    EK = sum(np.kron(h, h) for h in Hs) / n
    eye, zero = np.eye(d), np.zeros((d, d))
    A0 = np.block([[(1 + mu) * eye, -mu * eye], [eye, zero]])
    P = np.block([[eye], [zero]])
    PP, PHP = np.kron(P, P), P @ H @ P.T
    M = np.eye((2 * d) ** 2)
    for b in sizes:
        EHb = np.kron(H, H) + (EK - np.kron(H, H)) / b
        step = (
            np.kron(A0, A0) - lr * (np.kron(A0, PHP) + np.kron(PHP, A0)) + lr**2 * PP @ EHb @ PP.T
        )
        M = step @ M
    return max(abs(np.linalg.eigvals(M))) ** (1 / len(sizes))


def test_the_partial_last_batch_of_drop_last_false():
    """40 samples at B = 12: three batches of 12 and one of 4 per epoch. The full-batch model
    alone allowed 1.35x the exact epoch threshold at momentum 0.9; the epoch-average model is
    within 0.95-1 of it, on the safe side."""
    X = np.random.default_rng(0).standard_normal((40, 2)) * [1, 0.3]
    data = PerSampleCurvature.from_features(X, bias=False)
    cfg = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9}
    lo, hi = 0.0, 4.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _epoch_map(X, [12, 12, 12, 4], mid, 0.9) < 1 else (lo, mid)
    exact = lo
    full, _ = largest_stable_lr(stb.from_optimizer(cfg)[0], batch_size=12, noise=DataNoise(data))
    assert full > 1.3 * exact  # the defect: every batch taken as 12
    for lr, want in (
        (0.95 * exact, "stable"),
        (1.001 * exact, "unstable"),
        (full * 0.99, "unstable"),
    ):
        rep = stb.check({**cfg, "lr": lr}, data=data, batch_size=12, drop_last=False)
        assert rep.verdict == want, (lr / exact, rep.noise)
        assert rep.noise["partial_batch"]["size"] == 4
    note = stb.check(cfg, data=data, batch_size=12).caveats
    assert any("pass drop_last=False to model it" in c for c in note)
    with pytest.raises(ConfigError, match="drop_last"):
        stb.check(cfg, lambda_max=1.0, drop_last=False)
