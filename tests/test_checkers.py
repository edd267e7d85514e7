"""Vectorised checkers against the exact engine, brute-force eigenvalues and stability_sum."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import stability as stb
from stability import checkers as ck
from stability import noise as nz
from stability import symbols as S
from stability.checkers._kernels import compile_kernel


def random_torch_configs(rng, n):
    lr = np.exp(rng.uniform(np.log(1e-3), np.log(3), n))
    mu = np.where(rng.random(n) < 0.15, 0.0, rng.uniform(0, 0.99, n))
    nest = (rng.random(n) < 0.4) & (mu > 0)
    tau = np.where(nest | (rng.random(n) < 0.5), 0.0, rng.uniform(0, 0.9, n))
    wd = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0, 0.5, n))
    lam = np.exp(rng.uniform(np.log(0.5), np.log(50), n))
    return lr, mu, tau, wd, nest, lam


@pytest.mark.parametrize("n", [80, pytest.param(250, marks=pytest.mark.slow)])
def test_torch_checker_vs_exact_engine(n):
    rng = np.random.default_rng(0)
    lr, mu, tau, wd, nest, lam = random_torch_configs(rng, n)
    m = ck.torch_sgd_margins(
        lr=lr, momentum=mu, dampening=tau, weight_decay=wd, nesterov=nest, lambda_max=lam
    )
    for i in range(lr.size):
        opt = stb.from_torch_sgd(lr[i], mu[i], tau[i], wd[i], bool(nest[i]))
        spec = (wd[i], lam[i] + wd[i]) if wd[i] else lam[i]
        assert m.stable[i] == stb.is_strictly_stable(opt.algorithm, spec).stable, i
    assert 0.1 < m.stable.mean() < 0.9


@pytest.mark.parametrize("n", [5_000, pytest.param(20_000, marks=pytest.mark.slow)])
def test_torch_checker_vs_brute_force_eigenvalues(n):
    rng = np.random.default_rng(1)
    lr, mu, tau, wd, nest, lam = random_torch_configs(rng, n)
    m = ck.torch_sgd_margins(
        lr=lr, momentum=mu, dampening=tau, weight_decay=wd, nesterov=nest, lambda_max=lam
    )
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
    scale = np.abs(m.margin)
    away = (scale > 1e-3) & (np.abs(rho - 1) > 1e-4) & ((mu < 0.98) | (wd > 0))
    assert away.sum() > n // 2
    np.testing.assert_array_equal(m.stable[away], rho[away] < 1)


def test_torch_checker_certifies_the_boundary():
    crit = 38.0  # lr 0.1, momentum 0.9: exact boundary (binary values) just below 38
    lams = [np.nextafter(crit, 0) - 1e-12, 38.0]
    m = ck.torch_sgd_margins(lr=0.1, momentum=0.9, lambda_max=lams)
    exact = [stb.is_strictly_stable(stb.from_torch_sgd(0.1, 0.9).algorithm, x).stable for x in lams]
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
    assert m.stable.shape == (7, 5) and m.margin.shape == (7, 5)
    full = ck.torch_sgd_margins(lr=lr, momentum=mu, lambda_max=10.0, full=True)
    assert full.margins.shape == (7, 7, 5) and len(full.names) == 7


@pytest.mark.parametrize("n", [60, pytest.param(200, marks=pytest.mark.slow)])
def test_noise_sum_vs_stability_sum(n):
    rng = np.random.default_rng(2)
    lams = np.geomspace(1e-3, 1, 40)
    w = rng.uniform(0.5, 2, 40)
    beta = rng.uniform(0, 0.99, n)
    q0 = rng.uniform(-0.2, 0.5, n)
    q1 = -q0 - (1 - beta) * rng.uniform(0.1, 5, n)
    B = rng.integers(1, 64, n).astype(float)
    U = ck.memory1_noise_sum(
        beta=beta, q0=q0, q1=q1, spectrum=nz.Spectrum.from_arrays(lams, w), batch_size=B, chunk=1000
    )
    for i in range(n):
        ref = nz.stability_sum(
            stb.memory1(beta[i], q0[i], q1[i]), nz.Spectrum.from_arrays(lams, w), B[i]
        ).U
        if np.isinf(ref):
            assert np.isinf(U[i])
        else:
            assert U[i] == pytest.approx(ref, rel=1e-9)
    assert np.isfinite(U).sum() > n // 4 and np.isinf(U).sum() > n // 40


def test_noise_sum_validation():
    with pytest.raises(stb.ConfigError, match="tau2 > 0"):
        ck.memory1_noise_sum(beta=0, q0=0, q1=-1, spectrum=[1.0], batch_size=1, tau2=1.0)
    with pytest.raises(stb.ConfigError, match="eigenvalues"):
        ck.memory1_noise_sum(beta=0, q0=0, q1=-1, spectrum=[], batch_size=1)
    with pytest.raises(stb.ConfigError, match="batch_size"):
        ck.memory1_noise_sum(beta=0, q0=0, q1=-1, spectrum=[1.0], batch_size=0)


# ---------------------------------------------------------------------------------------
# The blocked engine: reduced kernels, threads, broadcasting, late validation, certification
# ---------------------------------------------------------------------------------------
def test_reduced_kernels_agree_with_all_seven_conditions():
    """Dropping the conditions the parameter ranges imply changes no verdict."""
    rng = np.random.default_rng(5)
    lr, mu, tau, wd, nest, lam = random_torch_configs(rng, 200_000)
    fast = ck.torch_sgd_margins(
        lr=lr, momentum=mu, dampening=tau, weight_decay=wd, nesterov=nest, lambda_max=lam
    )
    full = ck.torch_sgd_margins(
        lr=lr, momentum=mu, dampening=tau, weight_decay=wd, nesterov=nest, lambda_max=lam, full=True
    )
    assert len(full.names) == 7 and full.implied == ()
    np.testing.assert_array_equal(fast.stable, full.stable)
    np.testing.assert_array_equal(fast.stable, full.margins.min(axis=0) > 0)
    for flag in (False, True):
        sel = nest == flag
        one = ck.torch_sgd_margins(
            lr=lr[sel],
            momentum=mu[sel],
            dampening=tau[sel],
            weight_decay=wd[sel],
            nesterov=flag,
            lambda_max=lam[sel],
        )
        np.testing.assert_array_equal(one.stable, full.stable[sel])
        assert one.implied and all(reason for _, reason in one.implied)


def test_plain_torch_sgd_needs_one_condition_and_says_why():
    m = ck.torch_sgd_margins(lr=0.1, momentum=0.9, lambda_max=10.0)
    assert m.names == ("chi(-1) > 0 at lambda_hi",)
    reasons = dict(m.implied)
    assert reasons["1 - chi(0) > 0 at lambda_hi"] == "holds for every valid parameter value"
    # 2(1 + mu) - 10 lr(1 - tau) over 2(1 + mu) + 10 lr (1 + tau) at lr 0.1, mu 0.9
    assert float(m.margin) == pytest.approx((3.8 - 1.0) / (3.8 + 1.0))
    d = ck.torch_sgd_margins(lr=0.1, momentum=0.9, weight_decay=0.5, lambda_max=10.0)
    assert dict(d.implied)["chi(-1) > 0 at lambda_lo"] == "implied by 'chi(-1) > 0 at lambda_hi'"


def test_threads_blocks_and_broadcasting_do_not_change_results():
    rng = np.random.default_rng(6)
    lr = np.exp(rng.uniform(np.log(1e-3), np.log(2), 300))
    mu = rng.uniform(0, 0.99, 400)
    grid = ck.torch_sgd_margins(lr=lr[:, None], momentum=mu[None, :], lambda_max=7.0)
    LR, MU = np.meshgrid(lr, mu, indexing="ij")
    flat = ck.torch_sgd_margins(lr=LR.ravel(), momentum=MU.ravel(), lambda_max=7.0, threads=1)
    two = ck.torch_sgd_margins(lr=LR.ravel(), momentum=MU.ravel(), lambda_max=7.0, threads=2)
    assert grid.stable.shape == (300, 400)
    np.testing.assert_array_equal(grid.stable.ravel(), flat.stable)
    np.testing.assert_array_equal(flat.stable, two.stable)
    np.testing.assert_array_equal(grid.margin.ravel(), two.margin)
    np.testing.assert_array_equal(flat.stable, LR.ravel() * 7.0 < 2 * (1 + MU.ravel()))


def test_certified_points_are_found_in_every_block_and_thread():
    # exact boundary of plain SGD: lr * lambda_max = 2 (1 + mu) holds exactly at lr = 2(1+mu)/L
    # with L a power of two and (1 + mu) exact in binary
    n = 140_000  # three blocks, two threads
    rng = np.random.default_rng(7)
    mu = rng.integers(0, 2**20, n) / 2**21  # exact binary values in [0, 0.5)
    lam = 2.0 ** rng.integers(-3, 4, n)
    lr = 2 * (1 + mu) / lam  # exact: on the boundary
    idx = rng.choice(n, 50, replace=False)
    lr_off = lr.copy()
    lr_off[idx] = np.nextafter(lr[idx], 0)  # one ulp inside: stable
    m = ck.torch_sgd_margins(lr=lr_off, momentum=mu, lambda_max=lam, threads=2)
    assert m.n_certified == n
    expected = np.zeros(n, dtype=bool)
    expected[idx] = True
    np.testing.assert_array_equal(m.stable, expected)
    np.testing.assert_array_equal(m.stable, m.margin > 0)
    assert np.all(m.margin[~expected] == 0.0) and np.all(m.margin[idx] < 1e-15)


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("lr", np.nan, "lr must be finite, got nan"),
        ("lr", np.inf, "lr must be finite, got inf"),
        ("lr", -1.0, "lr must be in (0, inf), got -1.0"),
        ("momentum", 1.0, "momentum must be in [0, 1), got 1.0"),
        ("momentum", -np.inf, "momentum must be finite"),
        ("lambda_max", 0.0, "lambda_max must be in (0, inf), got 0.0"),
        ("lambda_max", -np.inf, "lambda_max must be finite"),
    ],
)
def test_bad_values_deep_inside_large_arrays_are_reported(name, bad, message):
    n = 150_000  # several blocks: these arrays are validated inside the blocked pass
    rng = np.random.default_rng(8)
    kw = {
        "lr": rng.uniform(1e-3, 1, n),
        "momentum": rng.uniform(0, 0.99, n),
        "lambda_max": rng.uniform(1, 50, n),
    }
    kw[name][123_456] = bad
    with pytest.raises(stb.ConfigError) as info:
        ck.torch_sgd_margins(**kw)
    assert message in str(info.value) and "flat index 123456" in str(info.value)


def test_nonfinite_triplets_deep_inside_large_arrays_are_reported():
    beta = np.zeros(100_000)
    for bad in (np.nan, np.inf):
        beta[77_000] = bad
        with pytest.raises(stb.ConfigError, match="beta must be finite"):
            ck.memory1_margins(beta=beta, q0=0.0, q1=-0.5, lambda_max=1.0)


def test_input_shape_and_type_errors():
    with pytest.raises(stb.ConfigError, match="must broadcast together"):
        ck.torch_sgd_margins(lr=[0.1, 0.2], momentum=[0.1, 0.2, 0.3], lambda_max=1.0)
    with pytest.raises(stb.ConfigError, match="nesterov must be a boolean"):
        ck.torch_sgd_margins(lr=0.1, momentum=0.5, nesterov=0.5, lambda_max=1.0)
    with pytest.raises(stb.ConfigError, match="lr must be numeric"):
        ck.torch_sgd_margins(lr=object(), lambda_max=1.0)
    with pytest.raises(stb.ConfigError, match="threads must be a positive integer, got 0"):
        ck.torch_sgd_margins(lr=0.1, lambda_max=1.0, threads=0)
    with pytest.raises(stb.ConfigError, match="lambda_lo must be <= lambda_hi"):
        ck.memory1_interval_margins(beta=0, q0=0, q1=-1, lambda_lo=2.0, lambda_hi=1.0)


def test_empty_inputs_give_empty_verdicts():
    m = ck.torch_sgd_margins(lr=np.empty(0), momentum=0.9, lambda_max=1.0)
    assert m.stable.shape == (0,) and m.margin.shape == (0,) and len(m) == 0
    assert "0 of 0" in m.summary()


def test_exact_path_uses_exact_rational_coefficients():
    # gd: 2 - alpha lambda_max hits 0 exactly at lr = 0.5, lambda_max = 4
    m = ck.method_margins("gd", lr=[0.5, 0.5], lambda_max=[4.0, np.nextafter(4.0, 0)])
    assert m.stable.tolist() == [False, True] and m.n_certified == 2
    assert m.margin[0] == 0.0 and m.margin[1] > 0
    printed = compile_kernel(
        [("half", sp.Rational(1, 3) * S.beta - sp.Rational(1, 6))], (S.beta,)
    ).exact(Fraction(1, 2))
    assert printed[0] == 0 and isinstance(printed[0], Fraction | int)


@pytest.mark.parametrize("n", [25, pytest.param(60, marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", ["gd", "heavy_ball", "nesterov", "memory1", "momentum_kick"])
def test_method_margins_agree_with_the_exact_engine(name, n):
    rng = np.random.default_rng(9)
    method = stb.get_method(name)
    values = {}
    for p in method.parameters:
        if p == "momentum":
            values[p] = rng.uniform(-0.2, 0.999, n)
        elif p == "beta":
            values[p] = rng.uniform(-1.1, 1.1, n)
        elif p == "q0":
            values[p] = rng.uniform(-0.5, 0.5, n)
        elif p == "q1":
            values[p] = rng.uniform(-2.0, 0.2, n)
        else:
            values[p] = np.exp(rng.uniform(np.log(0.01), np.log(3.0), n))
    lam = np.exp(rng.uniform(np.log(0.3), np.log(10), n))
    m = ck.method_margins(name, lambda_max=lam, **values)
    mf = ck.method_margins(name, lambda_max=lam, full=True, **values)
    np.testing.assert_array_equal(m.stable, mf.stable)
    for i in range(n):
        alg = method(**{p: float(v[i]) for p, v in values.items()})
        assert m.stable[i] == stb.is_strictly_stable(alg, float(lam[i])).stable, (name, i)
    assert 0 < m.stable.sum() < n


def test_method_margins_rejects_bad_parameters():
    with pytest.raises(stb.ConfigError, match="missing \\['momentum'\\]"):
        ck.method_margins("heavy_ball", lr=0.1, lambda_max=1.0)
    with pytest.raises(stb.ConfigError, match="unknown parameter\\(s\\) \\['wd'\\]"):
        ck.method_margins("gd", lr=0.1, wd=0.1, lambda_max=1.0)
    with pytest.raises(stb.ConfigError, match="lr must be in \\(0, inf\\)"):
        ck.method_margins("gd", lr=[0.1, -0.1], lambda_max=1.0)
    with pytest.raises(stb.ConfigError, match=r"momentum must be in \(-1, 1\), got 1\.0"):
        ck.method_margins("nesterov", lr=0.1, momentum=[0.5, 1.0], lambda_max=1.0)
    with pytest.raises(stb.ConfigError, match="kick must be in \\[0, inf\\)"):
        ck.method_margins("momentum_kick", lr=0.1, kick=-0.1, momentum=0.5, lambda_max=1.0)
    with pytest.raises(stb.ConfigError, match="method must be one of"):
        ck.method_margins("adamw", lr=0.1, lambda_max=1.0)


@pytest.mark.parametrize("n", [50, pytest.param(120, marks=pytest.mark.slow)])
def test_noise_sum_vs_lyapunov_summation(n):
    """Independent of eq. 25: Ubar from the batched Lyapunov solve of S_lambda."""
    rng = np.random.default_rng(10)
    lams = np.geomspace(1e-3, 2, 64)
    w = rng.uniform(0.2, 3, lams.size)
    beta = rng.uniform(0, 0.99, n)
    q0 = rng.uniform(-0.2, 0.5, n)
    q1 = -q0 - (1 - beta) * rng.uniform(0.1, 3, n)
    B = 8.0
    U = ck.memory1_noise_sum(
        beta=beta,
        q0=q0,
        q1=q1,
        spectrum=nz.Spectrum.from_arrays(lams, w),
        batch_size=B,
        chunk=500,
        threads=2,
    )
    finite = 0
    for i in range(n):
        alg = stb.memory1(beta[i], q0[i], q1[i])
        if not stb.is_strictly_stable(alg, (float(lams.min()), float(lams.max()))).stable:
            assert np.isinf(U[i])
            continue
        ub = nz.ubar(alg, lams, method="lyapunov")
        if np.any(1 - ub / B <= 0):
            assert np.isinf(U[i])
            continue
        ref = float(np.sum(w * (ub / B) / (1 - ub / B)))
        assert U[i] == pytest.approx(ref, rel=1e-9)
        finite += 1
    assert finite > n // 3


def test_noise_sum_broadcasts_and_rejects_bad_spectra():
    U = ck.memory1_noise_sum(
        beta=np.array([[0.0], [0.5]]),
        q0=0.0,
        q1=[-0.1, -0.2, -0.3],
        spectrum=[1.0, 0.5],
        batch_size=4,
    )
    assert U.shape == (2, 3) and np.all(np.isfinite(U))
    with pytest.raises(stb.ConfigError, match="spectrum must be finite"):
        ck.memory1_noise_sum(beta=0, q0=0, q1=-1, spectrum=[1.0, np.nan], batch_size=1)
    with pytest.raises(stb.ConfigError, match="weights must have shape"):
        nz.Spectrum.from_arrays([1.0], [1, 2])
    with pytest.raises(stb.ConfigError, match="weights must be >= 0"):
        nz.Spectrum.from_arrays([1.0], [-1])


# ---------------------------------------------------------------------------------------
# Property tests: every verdict equals the exact engine's, boundary points included
# ---------------------------------------------------------------------------------------
_unit = st.floats(0.0, 0.995)
_pos = st.floats(1e-3, 20.0)


@given(
    lr=_pos,
    mu=_unit,
    tau=st.one_of(st.just(0.0), _unit),
    wd=st.one_of(st.just(0.0), _unit),
    nest=st.booleans(),
    lam=_pos,
    ulps=st.integers(-3, 3),
    on_edge=st.booleans(),
)
def test_property_torch_verdict_is_the_exact_verdict(lr, mu, tau, wd, nest, lam, ulps, on_edge):
    if nest:
        tau = 0.0
        mu = max(mu, 0.01)
    if on_edge:  # put lr within a few ulps of the plain-SGD boundary
        c = 2 * (1 + mu) / ((lam + wd) * (1 - tau if mu else 1.0))
        lr = float(c)
        for _ in range(abs(ulps)):
            lr = float(np.nextafter(lr, np.inf if ulps > 0 else 0.0))
    m = ck.torch_sgd_margins(
        lr=lr, momentum=mu, dampening=tau, weight_decay=wd, nesterov=nest, lambda_max=lam
    )
    opt = stb.from_torch_sgd(lr, mu, tau, wd, nest)
    spec = (Fraction(wd), Fraction(lam) + Fraction(wd)) if wd else lam  # exact shift
    assert bool(m.stable) == stb.is_strictly_stable(opt.algorithm, spec).stable
    assert bool(m.stable) == bool(m.margin > 0)


@given(beta=st.floats(-1.2, 1.2), q0=st.floats(-2, 2), q1=st.floats(-4, 2), lam=st.floats(1e-2, 10))
def test_property_memory1_verdict_is_the_exact_verdict(beta, q0, q1, lam):
    m = ck.memory1_margins(beta=beta, q0=q0, q1=q1, lambda_max=lam)
    conds = [
        c.expr
        for c in stb.strict_stability_conditions(
            stb.memory1(Fraction(beta), Fraction(q0), Fraction(q1)), Fraction(lam)
        ).conditions
    ]
    exact = all(c > 0 for c in conds)
    assert bool(m.stable) == exact


@given(
    beta=st.floats(-0.99, 0.99),
    q0=st.floats(-1, 1),
    q1=st.floats(-3, 1),
    lo=st.floats(0, 5),
    width=st.floats(0, 5),
)
def test_property_interval_verdict_is_pointwise_at_the_ends(beta, q0, q1, lo, width):
    hi = lo + width
    if hi <= 0:
        hi = 1.0
    m = ck.memory1_interval_margins(beta=beta, q0=q0, q1=q1, lambda_lo=lo, lambda_hi=hi)
    alg = stb.memory1(beta, q0, q1)
    # the exact engine on the closed interval [lo, hi] (or (0, hi] when lo = 0)
    exact = stb.is_strictly_stable(alg, (lo, hi) if lo > 0 else hi).stable
    assert bool(m.stable) == exact


def test_merged_theorem61_kernel_equals_the_five_conditions():
    rng = np.random.default_rng(11)
    n = 300_000
    beta, q0, q1 = rng.uniform(-1.2, 1.2, n), rng.uniform(-2, 2, n), rng.uniform(-4, 2, n)
    lam = np.exp(rng.uniform(-3, 3, n))
    fast = ck.memory1_margins(beta=beta, q0=q0, q1=q1, lambda_max=lam)
    full = ck.memory1_margins(beta=beta, q0=q0, q1=q1, lambda_max=lam, full=True)
    assert fast.names[0] == "|beta| < 1" and len(full.names) == 5
    np.testing.assert_array_equal(fast.stable, full.stable)
    np.testing.assert_array_equal(full.stable, full.margins.min(axis=0) > 0)
    # the relative margins differ only by the normalisation (both share the sign)
    np.testing.assert_array_equal(np.sign(fast.margin), np.sign(full.margin))


def test_cheaper_scales_must_be_proved_to_bound_the_conditions():
    beta = S.beta
    with pytest.raises(AssertionError, match="does not bound"):
        compile_kernel([("c", 2 - 3 * beta)], (beta,), scale=sp.Integer(1))
    k = compile_kernel([("c", 2 - 3 * beta)], (beta,), scale=1 + 2 * sp.Abs(beta))
    assert k.names == ("c",)
    # Theorem 6.1's scale passes the proof, and keeps |margin| <= 2 with the right sign
    rng = np.random.default_rng(12)
    n = 100_000
    m = ck.memory1_margins(
        beta=rng.uniform(-3, 3, n),
        q0=rng.uniform(-5, 5, n),
        q1=rng.uniform(-5, 5, n),
        lambda_max=np.exp(rng.uniform(-5, 5, n)),
    )
    assert np.all(np.abs(m.margin) <= 2) and np.array_equal(m.stable, m.margin > 0)
