"""Certified bounds on the noise sum from compressed spectra: the bounds contain sums computed
independently (high-precision direct summation, the zeta-function tail of ``stability_sum``),
verdicts match the direct float sum away from rounding level, refinement decides what the
coarse bins cannot, and what stays undecided is reported as not bounded."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stability as stb
from stability.checkers import _backend, family_triplet, memory1_noise_sum
from stability.checkers import bounds as noisebounds
from stability.checkers._backend import use_backend
from stability.checkers.bins import compress
from stability.checkers.bounds import memory1_noise_bounds
from stability.errors import ConfigError
from stability.noise import Spectrum, power_law, stability_sum
from stability.optimizers import from_torch_sgd


def exact_U(beta, q0, q1, lam, w, B, tau1=1.0, tau2=-1.0, shift=0.0):
    """``sum_k w_k tau1 N / (B D + tau2 N)`` term by term in 40-digit arithmetic; with a
    ``shift`` the eq. 25 term at ``mu = lambda + shift`` times ``(lambda / mu)^2`` (the
    dynamics see the shifted curvature, the noise the data curvature)."""
    with mpmath.workdps(40):
        b, x0, x1, Bm = (mpmath.mpf(float(v)) for v in (beta, q0, q1, B))
        total = mpmath.mpf(0)
        for lk, wk in zip(lam.tolist(), w.tolist(), strict=True):
            if wk == 0:
                continue
            L = mpmath.mpf(lk) + mpmath.mpf(shift)
            num = L * (-(1 + b) * (x0 + x1) + L * x0 * (x0 - x1)) * (mpmath.mpf(lk) / L) ** 2
            den = (1 - b + L * x0) * (2 * (1 + b) - L * (x0 - x1))
            t = Bm * den + tau2 * num
            if t <= 0:
                return math.inf
            total += mpmath.mpf(wk) * tau1 * num / t
        return float(total)


def torch_triplet(lr, mu):
    _, f = family_triplet("torch_sgd")
    return np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in f(lr, mu, 0.0)))


@given(
    lr=st.floats(0.01, 3.0),
    mu=st.floats(0.0, 0.95),
    B=st.floats(1.0, 64.0),
    head=st.integers(1, 40),
    ratio=st.floats(1.05, 3.0),
    nu=st.floats(1.1, 2.5),
)
@settings(deadline=None)
def test_coarse_bins_bound_the_high_precision_sum(lr, mu, B, head, ratio, nu):
    spec = power_law(nu, N=400)
    lam = spec.eigenvalues()
    beta, q0, q1 = torch_triplet(lr, mu)
    bins = compress(spec, head=head, ratio=ratio)
    assert bins.weight.sum() == 400
    lo, hi = noisebounds._bounds_on(
        bins, [np.atleast_1d(x) for x in (beta, q0, q1, np.float64(B))], 1.0, -1.0, None
    )
    u = exact_U(beta, q0, q1, lam, np.ones_like(lam), B)
    if math.isinf(u):
        assert math.isinf(hi[0])
    else:
        assert lo[0] <= u <= hi[0]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_array_spectra_with_weights(backend):
    if backend == "numba" and not _backend.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(5)
    lam = np.concatenate([rng.uniform(0.5, 1.0, 30), 10 ** rng.uniform(-8, -0.3, 5000)])
    w = rng.integers(0, 4, lam.size).astype(float)
    spec = Spectrum.from_arrays(lam, w)
    bins = compress(spec, head=20, ratio=1.3)
    assert bins.weight.sum() == w.sum()
    beta, q0, q1 = torch_triplet(np.array([0.2, 1.0, 2.5]), 0.8)
    old = _backend.MIN_CONFIGS
    _backend.MIN_CONFIGS = 0
    try:
        with use_backend(backend):
            lo, hi = noisebounds._bounds_on(
                bins,
                [beta, np.broadcast_to(q0, 3), np.broadcast_to(q1, 3), np.full(3, 8.0)],
                1.0,
                -1.0,
                None,
            )
    finally:
        _backend.MIN_CONFIGS = old
    for i in range(3):
        u = exact_U(beta[i], q0[i], q1[i], lam, w, 8.0)
        assert lo[i] <= u <= hi[i], (i, lo[i], u, hi[i])


def test_verdicts_match_the_direct_sum_on_a_grid():
    spec = power_law(2, N=20_000)
    lr = np.linspace(0.01, 1.2, 60)[:, None]
    mu = np.linspace(0, 0.99, 50)[None, :]
    beta, q0, q1 = torch_triplet(lr, mu)
    r = memory1_noise_bounds(beta=beta, q0=q0, q1=q1, spectrum=spec, batch_size=4)
    U = memory1_noise_sum(beta=beta, q0=q0, q1=q1, spectrum=spec.eigenvalues(), batch_size=4)
    fin = np.isfinite(U)
    assert np.array_equal(np.isfinite(r.U), fin)
    assert np.all(r.lower[fin] <= U[fin] * (1 + 1e-12))
    assert np.all(U[fin] <= r.upper[fin] * (1 + 1e-12))
    assert np.array_equal(r.bounded, U < 1)
    assert 0 < r.bounded.sum() < r.bounded.size
    assert r.bins < 700


def test_a_trillion_eigenvalues_against_the_zeta_tail():
    # stability_sum sums 1e5 terms and a Hurwitz-zeta tail: an independent computation
    spec = power_law(2, Lambda=10, N=10**12)
    for lr, mu in [(0.1, 0.9), (0.02, 0.5), (0.3, 0.0)]:
        alg = from_torch_sgd(lr, mu).algorithm
        ref = stability_sum(alg, spec, batch_size=32)
        beta, q0, q1 = torch_triplet(lr, mu)
        r = memory1_noise_bounds(beta=beta, q0=q0, q1=q1, spectrum=spec, batch_size=32)
        assert r.lower - ref.tolerance <= ref.U <= r.upper + ref.tolerance
        assert bool(r.bounded) == ref.bounded
        assert r.bins < 1500  # 256 + log(1e12 / 256) / log(1.02)


def test_refinement_decides_a_config_next_to_the_boundary():
    spec = power_law(1.5, N=200_000)
    mu, B = 0.9, 2.0
    lo, hi = 0.0, 0.38  # bisect lr for U = 1 on the direct sum
    lam = spec.eigenvalues()
    for _ in range(60):
        mid = (lo + hi) / 2
        beta, q0, q1 = torch_triplet(mid, mu)
        u = memory1_noise_sum(beta=beta, q0=q0, q1=q1, spectrum=lam, batch_size=B)
        lo, hi = (mid, hi) if u < 1 else (lo, mid)
    for lr in (lo * (1 - 1e-7), hi * (1 + 1e-7)):
        beta, q0, q1 = torch_triplet(lr, mu)
        r = memory1_noise_bounds(beta=beta, q0=q0, q1=q1, spectrum=spec, batch_size=B)
        assert r.refined == 1 and r.undecided == 0
        assert bool(r.bounded) == (lr < lo)
        assert r.error < 1e-9


def test_what_rounding_cannot_decide_is_not_called_bounded(monkeypatch):
    monkeypatch.setattr(noisebounds, "MAX_POINTS", 0)  # no eigenvalue-by-eigenvalue stage
    spec = power_law(1.5, N=200_000)
    lam = spec.eigenvalues()
    lo, hi = 0.0, 0.38
    for _ in range(60):
        mid = (lo + hi) / 2
        beta, q0, q1 = torch_triplet(mid, 0.9)
        u = memory1_noise_sum(beta=beta, q0=q0, q1=q1, spectrum=lam, batch_size=2.0)
        lo, hi = (mid, hi) if u < 1 else (lo, mid)
    beta, q0, q1 = torch_triplet(lo, 0.9)  # truly bounded, but only by ~1e-16
    r = memory1_noise_bounds(beta=beta, q0=q0, q1=q1, spectrum=spec, batch_size=2.0)
    assert r.undecided == 1 and not r.bounded
    assert r.lower < 1 < r.upper
    assert "1 undecided" in r.summary()


def test_weight_decay_shifts_the_dynamics_not_the_noise():
    """With weight decay the dynamics see lambda + wd while the gradient noise keeps the data
    curvature lambda: the certified bounds contain that sum (40 digits, term by term), and
    shifting the whole spectrum instead would overstate U."""
    lam = np.geomspace(1e-3, 2.0, 3000)
    beta, q0, q1 = torch_triplet(np.array([0.1, 0.5]), 0.9)
    r = memory1_noise_bounds(beta=beta, q0=q0, q1=q1, spectrum=lam, batch_size=8, shift=0.05)
    for i in range(2):
        u = exact_U(beta[i], q0[i], q1[i], lam, np.ones_like(lam), 8.0, shift=0.05)
        assert r.lower[i] <= u <= r.upper[i]
        assert r.upper[i] < exact_U(beta[i], q0[i], q1[i], lam + 0.05, np.ones_like(lam), 8.0)
        rel = abs(memory1_noise_sum(beta=beta[i], q0=q0[i], q1=q1[i], spectrum=lam,
                                    batch_size=8, shift=0.05) - u) / u  # fmt: skip
        assert rel < 1e-12


@pytest.mark.parametrize("wd", [0.0, 0.3, 2.0])
def test_the_shift_semantics_match_the_exact_one_dimensional_recursion(wd):
    """1-D least squares with Gaussian inputs x ~ N(0, lam) and coupled weight decay:
    E w_{t+1}^2 = E[(1 - lr (H_B + wd))^2] E w_t^2 = ((1 - lr mu)^2 + 2 lr^2 lam^2 / B) E w_t^2
    (Var x^2 = 2 lam^2), so the second moment is stable iff that factor is < 1. The package's
    U < 1 must flip at the same learning rate."""
    lam, B = 1.7, 4.0
    a, b_ = (
        (1 + 2 / B) * lam**2 + 2 * lam * wd + wd**2,
        -2 * (lam + wd),
    )
    lr_star = -b_ / a
    for lr, bounded in ((lr_star * (1 - 1e-6), True), (lr_star * (1 + 1e-6), False)):
        r = stb.stability_sum(stb.gd(lr), [lam], B, shift=wd)
        assert r.bounded is bounded, (lr, r)


def test_refusals():
    beta, q0, q1 = torch_triplet(0.1, 0.9)
    kw = dict(beta=beta, q0=q0, q1=q1, batch_size=8)
    with pytest.raises(ConfigError, match="give the power law's N"):
        memory1_noise_bounds(**kw, spectrum=power_law(2))
    with pytest.raises(ConfigError, match="tau2 > 0 is not vectorised"):
        memory1_noise_bounds(**kw, spectrum=[1.0], tau2=0.5)
    with pytest.raises(ConfigError, match=r"shift \(weight decay\) must be in \[0, inf\)"):
        memory1_noise_bounds(**kw, spectrum=[1.0], shift=-1.0)
    with pytest.raises(ConfigError, match=r"ratio must be in \(1, 4\]"):
        compress([1.0, 2.0], ratio=1.0)
    with pytest.raises(ConfigError, match="head must be a positive integer"):
        compress([1.0, 2.0], head=0)
    with pytest.raises(ConfigError, match="batch_size must be in"):
        memory1_noise_bounds(beta=beta, q0=q0, q1=q1, batch_size=0.5, spectrum=[1.0])


def test_noise_sweep_writes_certified_U_with_its_error(tmp_path):
    from stability.cli import main

    out = tmp_path / "s.npz"
    args = ["sweep", "--lr", "0.01:1.5:40", "--momentum", "0:0.95:30", "--batch-size", "8"]
    assert main([*args, "--power-law", "nu=2,N=5000", "--out", str(out)]) == 0
    z = np.load(out)
    lr, mu = z["lr"][:, None], z["momentum"][None, :]
    beta, q0, q1 = torch_triplet(lr, mu)
    U = memory1_noise_sum(
        beta=beta, q0=q0, q1=q1, spectrum=power_law(2, N=5000).eigenvalues(), batch_size=8
    )
    got, err = z["U"][:, :, 0, 0], z["U_error"][:, :, 0, 0]
    fin = np.isfinite(U)
    assert np.array_equal(np.isfinite(got), fin)
    assert np.all(np.abs(got[fin] - U[fin]) <= err[fin] + 1e-12 * U[fin])
    assert np.array_equal(z["stable"][:, :, 0, 0], z["strict_stable"][:, :, 0, 0] & (U < 1))
    # a trillion eigenvalues: compressed, not listed
    big = tmp_path / "big.csv"
    assert main([*args, "--power-law", "nu=2,N=1e12", "--out", str(big)]) == 0
    header = big.read_text().splitlines()[0]
    assert header.endswith("stable,U_error")


def test_report_verdicts_on_long_spectra_are_certified():
    spec = power_law(2, Lambda=10, N=10**6)
    cfg = {"optimizer": "sgd", "momentum": 0.9}
    edge = stb_check({**cfg, "lr": 0.1}, spec).max_stable_lr  # the largest lr with U < 1
    for lr, expect in ((edge * 0.999, True), (edge * 1.001, False)):
        rep = stb_check({**cfg, "lr": lr}, spec)
        assert rep.noise["bounded"] is expect
        assert "certified: " in str(rep) and not rep.noise["undecided"]
        beta, q0, q1 = torch_triplet(lr, 0.9)
        r = memory1_noise_bounds(beta=beta, q0=q0, q1=q1, spectrum=spec, batch_size=32)
        assert r.lower <= rep.noise["U"] + rep.noise["tolerance"]
        assert rep.noise["U"] - rep.noise["tolerance"] <= r.upper


def stb_check(cfg, spec):
    from stability import check

    return check(cfg, spectrum=spec, batch_size=32)


def test_batch_sizes_broadcast_and_the_critical_batch_size_matches_the_search():
    from stability.checkers import critical_batch_size

    spec = power_law(2, Lambda=10, N=10**5)
    beta, q0, q1 = torch_triplet(0.3, 0.9)
    B = np.array([1.0, 16.0, 148.0, 149.0, 1e6])
    r = memory1_noise_bounds(beta=beta, q0=q0, q1=q1, spectrum=spec, batch_size=B)
    assert r.bounded.shape == (5,)
    assert r.bounded.tolist() == [False, False, False, True, True]
    for lr, mu in [(0.3, 0.9), (0.01, 0.5), (0.05, 0.0)]:
        rep = stb_check({"optimizer": "sgd", "lr": lr, "momentum": mu}, spec)
        alg = from_torch_sgd(lr, mu).algorithm
        assert rep.noise["critical_batch_size"] == critical_batch_size(alg, spec)
