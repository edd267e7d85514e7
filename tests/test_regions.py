"""Strict-stability regions against brute-force eigenvalues and the literature (docs §3)."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st

import stability as stb
from stability import symbols as S
from stability.checkers import lr_momentum_grid, memory1_margins
from stability.regions import geometry as m1
from stability.regions import (
    hurwitz_conditions,
    is_strictly_stable,
    schur_conditions,
    stable_curvature_intervals,
    strict_stability_conditions,
)

from .conftest import random_algorithm

x = sp.Symbol("x")


# -- root-location conditions vs numpy roots --------------------------------------------
roots_strategy = st.lists(
    st.tuples(st.floats(-1.6, 1.6), st.floats(0, 1.2), st.booleans()), min_size=1, max_size=3
)


def _poly_from(roots_spec):
    roots = []
    for re, im, pair in roots_spec:
        if pair and im > 1e-3:
            roots += [complex(re, im), complex(re, -im)]
        else:
            roots.append(complex(re, 0))
    coeffs = np.real(np.poly(roots))
    exact = [Fraction(c).limit_denominator(10**6) for c in coeffs]
    return exact, np.roots([float(c) for c in exact])


@given(roots_strategy, st.integers(1, 4))
def test_schur_conditions_match_numpy_roots(spec, lead):
    coeffs, roots = _poly_from(spec)
    rho = np.abs(roots).max()
    assume(abs(rho - 1) > 1e-6)
    conds = schur_conditions([lead * c for c in coeffs])
    assert (conds != [-1] and all(c > 0 for c in conds)) == (rho < 1)


@given(roots_strategy, st.sampled_from([1, -3]))
def test_hurwitz_conditions_match_numpy_roots(spec, lead):
    coeffs, roots = _poly_from(spec)
    worst = roots.real.max()
    assume(abs(worst) > 1e-6)
    conds = hurwitz_conditions([lead * c for c in coeffs])
    assert (conds != [-1] and all(c > 0 for c in conds)) == (worst < 0)


def test_schur_contract_edge_cases():
    assert schur_conditions([3]) == []  # no roots
    assert schur_conditions(x - 2, x) == [-1]
    with pytest.raises(stb.ConfigError, match="zero polynomial"):
        schur_conditions([0, 0])
    with pytest.raises(stb.ConfigError, match="gen is required"):
        schur_conditions(S.alpha**2 + 1)
    with pytest.raises(stb.ConfigError):
        schur_conditions("x**2 - 1/4")
    # floats are read exactly; a root exactly on the circle is not strictly inside
    assert schur_conditions([1.0, 0.0, -1.0]) == [-1]


def test_schur_symbolic_cubic_matches_jury():
    a0, a1, a2 = sp.symbols("a0 a1 a2", real=True)
    conds = schur_conditions(x**3 + a2 * x**2 + a1 * x + a0, x)
    rng = np.random.default_rng(0)
    for _ in range(400):
        vals = dict(zip((a0, a1, a2), rng.uniform(-2, 2, 3), strict=True))
        rho = np.abs(np.roots([1, vals[a2], vals[a1], vals[a0]])).max()
        if abs(rho - 1) < 1e-6:
            continue
        assert all(float(c.subs(vals)) > 0 for c in conds) == (rho < 1)


# -- exact reductions to the classical regions ------------------------------------------
def test_gd_region():
    conds = strict_stability_conditions(stb.gd(S.alpha)).as_list()
    assert conds == [2 - S.alpha * S.lam_max]  # with alpha > 0: 0 < alpha lambda_max < 2


def test_heavy_ball_region_is_classical():
    conds = strict_stability_conditions(stb.heavy_ball(S.alpha, S.beta)).as_list()
    expected = [1 - S.beta, 1 + S.beta, 2 * (1 + S.beta) - S.alpha * S.lam_max]
    assert len(conds) == 3
    assert all(sp.expand(c - e) == 0 for c, e in zip(conds, expected, strict=True))


def test_nesterov_region_is_classical():
    b = sp.Symbol("beta", nonnegative=True)
    conds = strict_stability_conditions(stb.nesterov(S.alpha, b)).as_list()
    h = S.alpha * S.lam_max
    # for 0 <= beta < 1 every condition but one is implied; that one is the classical bound
    classical = 2 * (1 + b) / (1 + 2 * b) - h
    # exactly one condition is a positive multiple (here 1 + 2 beta) of the classical bound
    key = [c for c in conds if sp.simplify(c / classical).is_positive]
    assert len(key) == 1
    for c in conds:
        if c is key[0] or c in (1 - b,):
            continue
        # implied: positive whenever 0 <= beta < 1 and 0 < h < classical bound
        for bv in (0, 0.3, 0.9, 0.999):
            hmax = 2 * (1 + bv) / (1 + 2 * bv)
            for hv in np.linspace(1e-6, hmax * (1 - 1e-9), 20):
                val = c.subs({b: bv, S.alpha: hv, S.lam_max: 1})
                assert float(val) > 0


def test_general_M_conditions_memory2_consistent_with_exact_engine():
    rng = np.random.default_rng(5)
    for _ in range(4):
        alg = random_algorithm(rng, 2, exact=True, scale=0.3)
        sym = strict_stability_conditions(alg, 1)
        fixed_ok = all(float(c.expr) > 0 for c in sym.conditions)
        grid = np.linspace(1e-4, 1, 300)
        over_ok = all(
            float(sp.Poly(c.expr, S.lam).eval(sp.Rational(g))) > 0
            for c in sym.interval_conditions
            for g in grid
        )
        assert (fixed_ok and over_ok) == is_strictly_stable(alg, 1).stable


# -- brute force: memory 1 (vectorised checker and exact engine) -------------------------
def _triplet_matrices(beta, q0, q1, lams):
    """Canonical realisation S_lambda = [[1 + q1 lam, 1], [lam (q0 + beta q1), beta]]."""
    n, k = beta.size, lams.shape[-1]
    L = lams.reshape(n, k) if lams.ndim == 2 else np.broadcast_to(lams, (n, k))
    mats = np.empty((n, k, 2, 2))
    mats[..., 0, 0] = 1 + q1[:, None] * L
    mats[..., 0, 1] = 1
    mats[..., 1, 0] = L * (q0 + beta * q1)[:, None]
    mats[..., 1, 1] = beta[:, None]
    return mats


def _brute_force_memory1(beta, q0, q1, lam_max, n_grid=300):
    grid = lam_max * np.concatenate(
        [np.geomspace(1e-6, 1, n_grid // 2), np.linspace(0, 1, n_grid // 2 + 1)[1:]]
    )
    out = np.empty(beta.size, dtype=bool)
    for s in range(0, beta.size, 2000):
        sl = slice(s, s + 2000)
        mats = _triplet_matrices(beta[sl], q0[sl], q1[sl], grid)
        rho = np.abs(np.linalg.eigvals(mats)).max(axis=(-1, -2))
        out[sl] = rho < 1
    return out


@pytest.mark.parametrize("n", [8_000, pytest.param(20_000, marks=pytest.mark.slow)])
def test_memory1_closed_form_vs_brute_force_20000_triplets(n):
    rng = np.random.default_rng(2024)
    beta = rng.uniform(-1.1, 1.1, n)
    q0 = rng.uniform(-2.5, 2.5, n)
    q1 = rng.uniform(-5.0, 2.0, n)
    m = memory1_margins(beta=beta, q0=q0, q1=q1, lambda_max=1.0, full=True)
    scale = np.abs(beta) + np.abs(q0) + np.abs(q1) + 1
    away = np.abs(m.margins).min(axis=0) > 2e-3 * scale
    np.testing.assert_array_equal(m.stable, m.margin > 0)
    # the theorem's lambda -> 0 conditions are tight only in the limit; keep the grid honest
    away &= np.abs(1 - np.abs(beta)) > 2e-3
    brute = _brute_force_memory1(beta[away], q0[away], q1[away], 1.0)
    assert away.sum() > 3 * n // 4
    low = 0.1 if n >= 20_000 else 0.05  # ~10% of the draws are stable
    assert low < brute.mean() < 0.9  # both verdicts well represented
    np.testing.assert_array_equal(m.stable[away], brute)


@pytest.mark.parametrize("seed", range(3))
def test_exact_engine_agrees_with_theorem61_memory1(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        t = [Fraction(int(v), 64) for v in rng.integers(-70, 70, 3)]
        alg = stb.memory1(*t)
        lam_max = Fraction(int(rng.integers(1, 40)), 16)
        closed = strict_stability_conditions(alg, lam_max).as_list()
        assert is_strictly_stable(alg, lam_max).stable == (closed != [-1])


@given(st.floats(0.01, 3), st.floats(-0.95, 0.95), st.floats(0.1, 10))
def test_lookahead_memory1_exact_engine_matches_closed_form(lr, mom, lam_max):
    alg = stb.nesterov(lr, mom)  # a != 0 realisation
    closed = strict_stability_conditions(alg, lam_max).as_list()
    assert is_strictly_stable(alg, lam_max).stable == (closed != [-1])


# -- brute force: memory 2 and 3 ----------------------------------------------------------
@pytest.mark.parametrize(
    ("M", "count"),
    [
        (2, 20),
        pytest.param(2, 40, marks=pytest.mark.slow),
        pytest.param(3, 40, marks=pytest.mark.slow),
    ],
)
def test_general_M_verdict_vs_brute_force(M, count):
    rng = np.random.default_rng(100 + M)
    agree, stable_count, checked = 0, 0, 0
    grid = np.concatenate([np.geomspace(1e-6, 1, 200), np.linspace(0, 1, 401)[1:]])
    while checked < count:
        alg = _random_contractive(rng, M)
        lam_max = float(rng.uniform(0.2, 4))
        rho = m1.spectral_radius(alg, lam_max * grid)
        # stay away from the boundary: the exact verdict is certain, the grid is not.
        # (rho -> 1 as lambda -> 0 for every algorithm, Theorem 4: there alpha_eff decides)
        if abs(rho[grid > 1e-2].max() - 1) < 1e-3 or abs(float(alg.effective_lr())) < 1e-3:
            continue
        d_rho = np.abs(np.linalg.eigvals(alg.numeric_arrays()["D"])).max()
        if abs(d_rho - 1) < 1e-3:
            continue
        checked += 1
        verdict = is_strictly_stable(alg, lam_max).stable
        brute = bool(rho.max() < 1) and d_rho < 1
        agree += verdict == brute
        stable_count += verdict
    assert agree == checked
    assert 3 <= stable_count <= checked - 3


def _random_contractive(rng, M):
    """Random memory-M algorithm with D of spectral radius < 0.9 (so both verdicts occur)."""
    D = rng.normal(size=(M, M))
    D *= rng.uniform(0.1, 0.9) / np.abs(np.linalg.eigvals(D)).max()
    a = rng.uniform(-0.5, 0.5, M) if rng.integers(2) else None
    return stb.MemoryAlgorithm(
        rng.uniform(0.1, 1.0),
        rng.uniform(-0.3, 0.3, M).tolist(),
        rng.uniform(-0.3, 0.3, M).tolist(),
        D.tolist(),
        None if a is None else a.tolist(),
    )


@pytest.mark.parametrize("M", [1, 2, 3])
def test_eigenvalue_array_verdicts(M):
    rng = np.random.default_rng(7 * M)
    for _ in range(5):
        alg = _random_contractive(rng, M)
        eig = rng.uniform(0.01, 4.0, 50)
        rho = m1.spectral_radius(alg, eig)
        if np.min(np.abs(rho - 1)) < 1e-6:
            continue
        res = is_strictly_stable(alg, eig)
        assert res.stable == bool(np.all(rho < 1))
        bad = set(np.round(eig[rho >= 1], 12))
        assert set(np.round(res.unstable_eigenvalues, 12)) <= bad


def test_stable_intervals_match_brute_force_sign_changes():
    rng = np.random.default_rng(11)
    for _ in range(5):
        alg = random_algorithm(rng, 2, exact=True, scale=0.6)
        intervals = stable_curvature_intervals(alg)
        lams = np.linspace(1e-3, 10, 4000)
        rho = m1.spectral_radius(alg, lams)
        inside = np.zeros_like(lams, dtype=bool)
        for a, b in intervals:
            inside |= (lams > float(a)) & (lams < (np.inf if b == sp.oo else float(b)))
        ok = np.abs(rho - 1) > 1e-6
        np.testing.assert_array_equal(inside[ok], rho[ok] < 1)


# -- certified verdicts at the boundary ---------------------------------------------------
@pytest.mark.parametrize("rel", [1e-15, 1e-30])
def test_exact_boundary_heavy_ball(rel):
    alpha, beta = sp.Rational(1, 10), sp.Rational(9, 10)
    crit = 2 * (1 + beta) / alpha  # 38
    alg = stb.heavy_ball(alpha, beta)
    eps = sp.Rational(rel)
    assert is_strictly_stable(alg, crit * (1 - eps)).stable
    assert not is_strictly_stable(alg, crit).stable  # on the boundary: not strict
    assert not is_strictly_stable(alg, crit * (1 + eps)).stable


def test_float_neighbours_of_the_boundary():
    # floats are exact binary numbers: the true boundary for heavy_ball(0.1, 0.9) is not 38
    alg = stb.heavy_ball(0.1, 0.9)
    crit = 2 * (1 + sp.Rational(0.9)) / sp.Rational(0.1)
    below = np.nextafter(float(crit), 0.0)
    while sp.Rational(below) >= crit:
        below = np.nextafter(below, 0.0)
    above = np.nextafter(below, np.inf)
    while sp.Rational(above) <= crit:
        above = np.nextafter(above, np.inf)
    assert is_strictly_stable(alg, float(below)).stable
    assert not is_strictly_stable(alg, float(above)).stable
    # the vectorised checker agrees through its certified path
    t = alg.triplet()
    m = memory1_margins(
        beta=float(t.beta), q0=float(t.q0), q1=float(t.q1), lambda_max=[below, above]
    )
    assert m.stable.tolist() == [True, False]
    assert m.n_certified == 2


def test_near_boundary_eigenvalue_is_certified():
    alg = stb.gd(sp.Rational(1, 2))  # unstable at lambda >= 4
    below = np.nextafter(4.0, 0.0)
    assert is_strictly_stable(alg, [1.0, below]).stable
    assert not is_strictly_stable(alg, [1.0, 4.0]).stable


def test_memory_matrix_must_be_stable_on_intervals_from_zero():
    # beta = 1: S_lambda is stable for each lambda > 0 here, but the rate degenerates at 0
    alg = stb.memory1(1, 1, Fraction(-3, 2))
    res = is_strictly_stable(alg, Fraction(1, 10))
    assert not res.stable and "memory matrix D" in res.reason
    # on an interval away from 0 it is fine
    assert is_strictly_stable(alg, (Fraction(1, 100), Fraction(1, 10))).stable


def test_result_reports_margins_and_failures():
    res = is_strictly_stable(stb.heavy_ball(0.1, 0.9), 50)
    assert not res and res.failing and res.headroom < 1
    d = res.to_dict()
    assert d["stable"] is False and d["conditions"] and "exact" in d["method"]
    assert abs(d["lambda_crit"] - 38) < 1e-9
    assert "UNSTABLE" in str(res)
    ok = is_strictly_stable(stb.heavy_ball(0.1, 0.9), 19)
    assert ok and ok.headroom == pytest.approx(2.0)
    assert all(c.holds and c.min_value > 0 for c in ok.conditions)


@pytest.mark.parametrize(
    ("spectrum", "message"),
    [
        (-1.0, "lambda_max must be in (0, inf)"),
        (float("nan"), "lambda_max must be finite"),
        ([], "spectrum eigenvalues must not be empty"),
        ([1.0, -2.0], "eigenvalues must be in [0, inf), got -2.0"),
        ([1.0, float("nan")], "must be finite"),
        ((2.0, 1.0), "0 <= lambda_min <= lambda_max"),
        ((1.0, 2.0, 3.0), "an interval spectrum must be"),
        ("10", "must be a number"),
        ([0.0, 0.0], "no positive eigenvalue"),
    ],
)
def test_spectrum_validation(spectrum, message):
    with pytest.raises(stb.ConfigError) as info:
        is_strictly_stable(stb.gd(0.1), spectrum)
    assert message in str(info.value)


def test_symbolic_algorithm_refused_by_numeric_verdict():
    with pytest.raises(stb.ConfigError, match="numeric"):
        is_strictly_stable(stb.gd(S.alpha), 1.0)


# -- memory-1 geometry --------------------------------------------------------------------
@given(
    st.fractions(-Fraction(99, 100), Fraction(99, 100), max_denominator=100),
    st.fractions(Fraction(1, 10), 10, max_denominator=10),
)
def test_triangle_vertices_and_right_angle(beta, lam_max):
    tri = m1.stability_triangle(beta, lam_max)
    (a, b, c) = [sp.Matrix(v) for v in tri.vertices]
    assert (b - a).dot(c - a) == 0  # right angle at the first vertex
    # vertices lie on the boundary lines of Theorem 6.1
    lm = sp.Rational(lam_max)
    bt = sp.Rational(beta)
    assert a[0] + a[1] == 0 and lm * (a[0] - a[1]) == 2 * (1 + bt)
    assert b[0] + b[1] == 0 and -b[0] * lm == 1 - bt
    assert -c[0] * lm == 1 - bt and lm * (c[0] - c[1]) == 2 * (1 + bt)
    # centroid inside, a point beyond each edge outside
    cen = (a + b + c) / 3
    assert tri.contains(cen[0], cen[1])
    assert not tri.contains(a[0] + 1, a[1])


def test_triangle_membership_matches_exact_verdict():
    rng = np.random.default_rng(3)
    tri = m1.stability_triangle(Fraction(1, 2), 2)
    for _ in range(60):
        q0, q1 = (Fraction(int(v), 16) for v in rng.integers(-40, 40, 2))
        alg = stb.memory1(Fraction(1, 2), q0, q1)
        assert tri.contains(q0, q1) == is_strictly_stable(alg, 2).stable


def test_sup_effective_lr_vs_sampling():
    beta, lam_max = 0.6, 2.0
    sup = float(m1.sup_effective_lr(beta, lam_max))
    rng = np.random.default_rng(0)
    q0 = rng.uniform(-1, 2, 200_000)
    q1 = rng.uniform(-3, 1, 200_000)
    m = memory1_margins(beta=beta, q0=q0, q1=q1, lambda_max=lam_max)
    a_eff = -(q0 + q1)[m.stable] / (1 - beta)
    assert a_eff.max() < sup and a_eff.max() > 0.97 * sup
    hb = float(m1.sup_effective_lr(beta, lam_max, q0=0))
    assert hb == pytest.approx(2 * (1 + beta) / ((1 - beta) * lam_max))
    with pytest.raises(stb.ConfigError, match="q0 must be in"):
        m1.sup_effective_lr(0.5, 1.0, q0=5)


@pytest.mark.parametrize(
    "alg",
    [
        stb.heavy_ball(0.3, 0.7),
        stb.nesterov(0.2, 0.8),
        stb.memory1(0.5, -0.1, -0.5),
        stb.momentum_kick(0.1, 0.3, 0.9),
        stb.memory1(0.4, 0.3, 0.0) if False else stb.memory1(0.2, -0.05, -1.0),
    ],
)
def test_complex_eigenvalues_lie_on_theorem62_circle(alg):
    locus = m1.eigenvalue_locus(alg)
    lams = np.linspace(1e-3, 30, 20_000)
    ev = m1.eigenvalues_over(alg, lams)
    cplx = np.abs(ev.imag) > 1e-9
    if locus.kind == "real":
        assert not cplx.any()
        return
    assert cplx.any()
    z = ev[cplx]
    if locus.kind == "circle":
        dist = np.abs(z - float(locus.center))
        np.testing.assert_allclose(dist, float(locus.radius), atol=1e-9)
    else:
        np.testing.assert_allclose(z.real, float(locus.line_re), atol=1e-9)


def test_locus_literature_cases():
    b = Fraction(9, 16)
    assert m1.eigenvalue_locus(stb.heavy_ball(1, b)).radius == sp.sqrt(sp.Rational(b))
    ne = m1.eigenvalue_locus(stb.nesterov(1, b))
    assert ne.center == ne.radius == sp.Rational(b) / (1 + sp.Rational(b))
    assert m1.eigenvalue_locus(stb.memory1(Fraction(1, 2), 1, -2)).kind == "real"
    line = m1.eigenvalue_locus(stb.memory1(Fraction(1, 2), -1, 0))
    assert line.kind == "line" and line.line_re == sp.Rational(3, 4)
    with pytest.raises(stb.ConfigError, match=r"Theorem 6\.2 needs"):
        m1.eigenvalue_locus(stb.memory1(Fraction(1, 2), 1, 1))


@pytest.mark.parametrize(
    "alg", [stb.heavy_ball(0.3, 0.7), stb.nesterov(0.2, 0.8), stb.momentum_kick(0.1, 0.3, 0.9)]
)
def test_real_complex_boundaries(alg):
    bounds = [float(b) for b in m1.real_complex_boundaries(alg)]
    # docs §3.2: roots in s = sqrt(lambda) of (q0 + d a) s^2 - 2 sqrt(d a) s + d = 0,
    # d a = -(q0+q1)
    t = alg.triplet()
    q0, q1, d = float(t.q0), float(t.q1), 1 - float(t.beta)
    da = -(q0 + q1)
    s = np.roots([q0 + da, -2 * np.sqrt(da), d])
    from_s = sorted((s.real[np.abs(s.imag) < 1e-12]) ** 2)
    np.testing.assert_allclose(bounds, from_s, rtol=1e-10)
    # and numerically: complex strictly between, real outside
    lo, hi = bounds
    ev_in = m1.eigenvalues_over(alg, [(lo + hi) / 2])
    ev_out = m1.eigenvalues_over(alg, [lo / 2, hi * 2])
    assert np.abs(ev_in.imag).max() > 1e-8 and np.abs(ev_out.imag).max() < 1e-12


def test_gd_optimum_by_grid_search():
    lo, hi = 0.5, 8.0
    alpha, rate = m1.gd_optimal(lo, hi)
    alphas = np.linspace(0.01, 0.4, 4001)
    rates = np.maximum(np.abs(1 - alphas * lo), np.abs(1 - alphas * hi))
    assert float(alpha) == pytest.approx(alphas[np.argmin(rates)], abs=1e-4)
    assert float(rate) == pytest.approx(rates.min(), abs=1e-4)


def test_heavy_ball_optimum_by_grid_search():
    lo, hi = 1.0, 16.0
    alpha, beta, rate = m1.heavy_ball_optimal(lo, hi)
    eig = np.linspace(lo, hi, 60)
    best = m1.convergence_rate(stb.heavy_ball(float(alpha), float(beta)), eig)
    assert best == pytest.approx(float(rate), rel=1e-3)  # (sqrt(16)-1)/(sqrt(16)+1) = 3/5
    assert float(rate) == 0.6 and m1.heavy_ball_optimal(1, 16)[2] == sp.Rational(3, 5)
    rng = np.random.default_rng(1)
    for _ in range(300):  # no random (alpha, beta) nearby does better
        a = float(alpha) * rng.uniform(0.8, 1.2)
        b = float(beta) * rng.uniform(0.8, 1.2)
        assert m1.convergence_rate(stb.heavy_ball(a, min(b, 0.99)), eig) >= best - 1e-6
    with pytest.raises(stb.ConfigError, match="lambda_min must be <= lambda_max"):
        m1.gd_optimal(2, 1)


# -- vectorised checker and plots ---------------------------------------------------------
def test_lr_momentum_grid_matches_classical_heavy_ball():
    lr = np.linspace(0.01, 5, 120)
    mom = np.linspace(0, 0.99, 90)
    LR, MOM, m = lr_momentum_grid("heavy_ball", lambda_max=1.0, lr=lr, momentum=mom)
    classical = LR * 1.0 < 2 * (1 + MOM)
    near = np.abs(LR - 2 * (1 + MOM)) < 1e-9
    np.testing.assert_array_equal(m.stable[~near], classical[~near])
    _, _, mt = lr_momentum_grid("torch_sgd", lambda_max=1.0, lr=lr, momentum=mom, dampening=0.0)
    # torch SGD with u = momentum buffer has the heavy-ball triplet
    np.testing.assert_array_equal(mt.stable, m.stable)
    _, _, md = lr_momentum_grid("torch_sgd", lambda_max=1.0, lr=lr, momentum=mom)
    np.testing.assert_array_equal(md.stable, m.stable)  # dampening defaults to torch's 0
    with pytest.raises(stb.ConfigError, match="unknown parameter"):
        lr_momentum_grid("torch_sgd", lambda_max=1.0, lr=lr, momentum=mom, wd=1)
    with pytest.raises(stb.ConfigError, match="no lr/momentum plane"):
        lr_momentum_grid("gd", lambda_max=1.0, lr=lr, momentum=mom)
    with pytest.raises(stb.ConfigError, match="unknown parameter"):
        lr_momentum_grid("heavy_ball", lambda_max=1.0, lr=lr, momentum=mom, wd=1)


def test_checker_rejects_bad_input():
    with pytest.raises(stb.ConfigError, match="beta must be finite"):
        memory1_margins(beta=float("nan"), q0=0, q1=-1, lambda_max=1)
    with pytest.raises(stb.ConfigError, match="string"):
        memory1_margins(beta="0.5", q0=0, q1=-1, lambda_max=1)
    with pytest.raises(stb.ConfigError, match="lambda_max"):
        memory1_margins(beta=0.5, q0=0, q1=-1, lambda_max=0)


def test_plots_draw_labelled_figures(tmp_path):
    import matplotlib.pyplot as plt

    from stability import plots

    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    a1 = plots.plot_stability_triangle(
        0.5, 1.0, configs=[stb.heavy_ball(0.5, 0.5), stb.heavy_ball(3.5, 0.5)], ax=axes[0]
    )
    a2 = plots.plot_lr_momentum_region("nesterov", 1.0, ax=axes[1], configs=[(0.5, 0.9)])
    a3 = plots.plot_eigenvalue_locus(stb.heavy_ball(0.3, 0.7), 5.0, ax=axes[2])
    assert a1 and a2 and a3
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    out = tmp_path / "regions.png"
    fig.savefig(out)
    plt.close(fig)
    assert out.stat().st_size > 10_000


def test_symbolic_core_does_not_import_matplotlib():
    code = (
        "import sys, stability, stability.regions, stability.regions.geometry, stability.checkers; "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
