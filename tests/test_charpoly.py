"""Characteristic polynomial, multistep equivalence (Thm 1), effective lr, Theorem 4.

Every derived object is checked against something computed another way: determinants of
S_lambda, the a = 0 formula for Q, simulated trajectories, numeric eigenvalues.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import stability as stb
from stability import symbols as S
from stability.simulate import simulate, simulate_multistep

from .conftest import exact_algorithms, random_algorithm

xi, lam = S.xi, S.lam


def symbolic_algorithm(M: int, lookahead: bool = True) -> stb.MemoryAlgorithm:
    a = sp.symbols(f"a1:{M + 1}", real=True)
    b = sp.symbols(f"b1:{M + 1}", real=True)
    c = sp.symbols(f"c1:{M + 1}", real=True)
    D = sp.Matrix(M, M, sp.symbols(f"d1:{M * M + 1}", real=True))
    return stb.MemoryAlgorithm(S.alpha, b, c, D, a if lookahead else None)


@pytest.mark.symbolic
@pytest.mark.timeout(120)
@pytest.mark.parametrize("M", [1, 2])
@pytest.mark.parametrize("lookahead", [False, True])
def test_det_equals_P_minus_lambda_Q_symbolic(M, lookahead):
    alg = symbolic_algorithm(M, lookahead)
    P, Q, chi = alg.charpoly()
    direct = (xi * sp.eye(M + 1) - alg.update_matrix(lam)).det(method="bareiss")
    assert sp.expand(direct - (P.as_expr() - lam * Q.as_expr())) == 0
    assert sp.expand(chi.as_expr() - direct) == 0
    assert P.degree() == M + 1 and P.LC() == 1 and Q.degree() <= M
    assert sp.expand(P.eval(1)) == 0


@pytest.mark.symbolic
@pytest.mark.timeout(120)
@pytest.mark.parametrize("M", [1, 2, 3])
def test_Q_matches_a0_formula(M):
    # docs/mathematics.md: for a = 0, Q = b^T adj(xi I - D) c - alpha det(xi I - D)
    alg = symbolic_algorithm(M, lookahead=False)
    A = xi * sp.eye(M) - alg.D
    expected = (alg.b.T * A.adjugate() * alg.c)[0, 0] - alg.alpha * A.det()
    assert sp.expand(alg.charpoly().Q.as_expr() - expected) == 0


def test_literature_polynomials():
    a, be = S.alpha, S.beta
    hb = stb.heavy_ball(a, be).charpoly()
    assert sp.expand(hb.P.as_expr() - (xi - 1) * (xi - be)) == 0
    assert sp.expand(hb.Q.as_expr() + a * xi) == 0
    ne = stb.nesterov(a, be).charpoly()
    assert sp.expand(ne.Q.as_expr() - (-a * (1 + be) * xi + a * be)) == 0
    # memory-1 chi of docs §3.2
    m1 = stb.memory1(be, S.q0, S.q1).charpoly().chi.as_expr()
    assert sp.expand(m1 - (xi**2 - (1 + be + lam * S.q1) * xi + (be - lam * S.q0))) == 0


def test_public_memory2_example():
    F = Fraction
    alg = stb.MemoryAlgorithm(
        F(2, 5),
        [F(3, 10), F(-1, 5)],
        [F(-1, 2), F(1, 4)],
        [[F(1, 2), F(1, 10)], [F(-1, 5), F(3, 10)]],
    )
    P, Q, _ = alg.charpoly()
    R = sp.Rational
    assert P.as_expr() == xi**3 - R(9, 5) * xi**2 + R(97, 100) * xi - R(17, 100)
    assert Q.as_expr() == -R(2, 5) * xi**2 + R(3, 25) * xi - R(21, 2000)
    assert alg.effective_lr() == alg.effective_lr("direct") == R(581, 740)


def test_P_at_one_vanishes_for_every_method(method):
    assert sp.simplify(method.symbolic().charpoly().P.eval(1)) == 0


@given(exact_algorithms(1, 4))
def test_effective_lr_two_formulas_agree_exactly(alg):
    assert alg.effective_lr("charpoly") == alg.effective_lr("direct")


@given(exact_algorithms(1, 3))
def test_chi_is_det_for_random_exact_algorithms(alg):
    M = alg.M
    l0 = sp.Rational(3, 7)
    direct = (xi * sp.eye(M + 1) - alg.update_matrix(l0)).det()
    assert sp.expand(direct - alg.charpoly().at(l0).as_expr()) == 0


def test_effective_lr_literature_values():
    a, be, g, mu, tau = S.alpha, S.beta, *sp.symbols("gamma mu tau", positive=True)
    assert sp.simplify(stb.heavy_ball(a, be).effective_lr() - a / (1 - be)) == 0
    assert sp.simplify(stb.nesterov(a, be).effective_lr() - a / (1 - be)) == 0
    assert (
        sp.simplify(
            stb.momentum_kick(S.eta, S.eta_kick, be).effective_lr()
            - (S.eta / (1 - be) + S.eta_kick)
        )
        == 0
    )
    torch = stb.MemoryAlgorithm(g * (1 - tau), [-g * mu], [1 - tau], [[mu]])
    assert sp.simplify(torch.effective_lr() - g * (1 - tau) / (1 - mu)) == 0
    torch_n = stb.MemoryAlgorithm(g * (1 + mu), [-g * mu**2], [1], [[mu]])
    assert sp.simplify(torch_n.effective_lr() - g / (1 - mu)) == 0


def test_effective_lr_undefined_when_D_has_eigenvalue_one():
    with pytest.raises(stb.StabilityError, match="eigenvalue 1"):
        stb.memory1(1, 0, -1).effective_lr()
    with pytest.raises(stb.ConfigError, match="method must be"):
        stb.gd(1).effective_lr("magic")


def test_triplets_of_named_methods():
    a, be = S.alpha, S.beta
    assert stb.heavy_ball(a, be).triplet() == (be, 0, -a)
    t = stb.nesterov(a, be).triplet()
    assert t.q0 == a * be and sp.expand(t.q1 + a * (1 + be)) == 0
    t = stb.momentum_kick(S.eta, S.eta_kick, be).triplet()
    assert t.q0 == be * S.eta_kick and sp.expand(t.q1 + S.eta + S.eta_kick) == 0
    # torch Nesterov with lr gamma == momentum+kick with eta = gamma*beta, eta' = gamma
    g = sp.Symbol("gamma", positive=True)
    torch_n = stb.MemoryAlgorithm(g * (1 + be), [-g * be**2], [1], [[be]]).triplet()
    mk = stb.momentum_kick(g * be, g, be).triplet()
    assert all(sp.expand(x - y) == 0 for x, y in zip(torch_n, mk, strict=True))
    with pytest.raises(stb.ConfigError, match="memory-1"):
        stb.gd(1).triplet()


def test_alpha_eff_in_triplet_terms():
    # docs/mathematics.md: alpha_eff = -(q0 + q1)/(1 - beta) for every memory-1 algorithm
    t = stb.memory1(S.beta, S.q0, S.q1)
    assert sp.simplify(t.effective_lr() + (S.q0 + S.q1) / (1 - S.beta)) == 0


# -- Theorem 1 ---------------------------------------------------------------------------
def _quadratic(rng, d=5):
    A = rng.normal(size=(d, d))
    H = A @ A.T / d + 0.1 * np.eye(d)
    H /= np.linalg.eigvalsh(H).max()
    w_star = rng.normal(size=d)
    return (lambda w: H @ (w - w_star)), w_star


@pytest.mark.parametrize("M", [1, 2, 3])
@pytest.mark.parametrize("lookahead", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_theorem1_matrix_form_equals_multistep(M, lookahead, seed):
    rng = np.random.default_rng(1000 * M + seed)
    alg = random_algorithm(rng, M, lookahead=lookahead, scale=0.4)
    grad, _ = _quadratic(rng)
    w0 = rng.normal(size=5)
    u0 = rng.normal(size=(M, 5))
    traj = simulate(alg, grad, w0, 40, u0=u0)
    ms = alg.to_multistep()
    assert abs(sum(float(p) for p in ms.p) - 1) < 1e-14
    cont = simulate_multistep(ms, grad, traj[: M + 1], 40 - M)
    scale = np.abs(traj).max()
    np.testing.assert_allclose(cont, traj, rtol=0, atol=1e-12 * scale)


@given(exact_algorithms(0, 3, lookahead=True))
def test_multistep_round_trip_reproduces_P_and_Q(alg):
    back = stb.from_multistep(alg.to_multistep())
    assert back.charpoly().P == alg.charpoly().P
    assert back.charpoly().Q == alg.charpoly().Q
    assert not back.has_lookahead  # the realisation of the converse has a = 0


@pytest.mark.parametrize("M", [1, 2, 3])
def test_realisation_trajectory_satisfies_the_recurrence(M):
    rng = np.random.default_rng(7 + M)
    p = rng.uniform(-0.3, 0.3, size=M + 1)
    p[-1] += 1 - p.sum()
    q = rng.uniform(-0.5, 0.5, size=M + 1)
    alg = stb.from_multistep(p.tolist(), q.tolist())
    grad, _ = _quadratic(rng)
    traj = simulate(alg, grad, rng.normal(size=5), 30, u0=rng.normal(size=(M, 5)))
    ms = stb.Multistep(tuple(p), tuple(q))
    cont = simulate_multistep(ms, grad, traj[: M + 1], 30 - M)
    np.testing.assert_allclose(cont, traj, atol=1e-12 * np.abs(traj).max())


def test_from_multistep_validation():
    with pytest.raises(stb.ConfigError, match="p must sum to 1"):
        stb.from_multistep([0.5, 0.4], [0, -1])
    with pytest.raises(stb.ConfigError, match="q must have length"):
        stb.from_multistep([0, 1], [1])
    with pytest.raises(stb.ConfigError, match="empty"):
        stb.from_multistep([], [])
    with pytest.raises(stb.ConfigError, match="string"):
        stb.from_multistep("01", "01")
    # float dust in sum(p) is tolerated
    alg = stb.from_multistep([-0.9, 1.9 + 1e-15], [0, -0.1])
    assert alg.M == 1


def test_from_multistep_memory_zero_is_gd():
    alg = stb.from_multistep([1], [-S.alpha])
    assert alg.M == 0 and alg.alpha == S.alpha


# -- Theorem 4 ---------------------------------------------------------------------------
def _leading_eigenvalue(alg, lam_value):
    S_num = np.array(alg.update_matrix(lam_value).evalf(30).tolist(), dtype=complex)
    ev = np.linalg.eigvals(S_num)
    return ev[np.argmin(np.abs(ev - 1))]


@pytest.mark.parametrize("M", [1, 2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_theorem4_leading_eigenvalue(M, seed):
    rng = np.random.default_rng(50 + 10 * M + seed)
    alg = random_algorithm(rng, M, lookahead=bool(seed % 2), exact=True, scale=0.4)
    a_eff = float(alg.effective_lr())
    series2 = alg.leading_eigenvalue_series(2).removeO()
    errs = []
    for lv in (1e-2, 1e-3):
        ev = _leading_eigenvalue(alg, lv)
        errs.append(abs(ev - (1 - a_eff * lv)))
        # the second-order series is accurate to O(lambda^3)
        assert abs(ev - float(series2.subs(lam, lv))) < 50 * lv**3 * (1 + a_eff) ** 3
    # first-order error is O(lambda^2): shrinking lambda 10x shrinks it ~100x
    assert errs[1] < errs[0] / 30


def test_theorem4_series_leading_term_is_minus_alpha_eff():
    for method in stb.METHODS.values():
        alg = method.symbolic()
        series = alg.leading_eigenvalue_series(1).removeO()
        assert sp.simplify(series - (1 - alg.effective_lr() * lam)) == 0


def test_series_order_validation():
    with pytest.raises(stb.ConfigError, match="order"):
        stb.gd(1).leading_eigenvalue_series(0)


@given(
    st.fractions(min_value=Fraction(1, 100), max_value=3, max_denominator=100),
    st.fractions(min_value=Fraction(-9, 10), max_value=Fraction(9, 10), max_denominator=100),
)
def test_heavy_ball_multistep_is_textbook(a, b):
    ms = stb.heavy_ball(a, b).to_multistep()
    assert ms.p == (-sp.Rational(b), 1 + sp.Rational(b))
    assert ms.q == (0, -sp.Rational(a))
    eq = ms.as_equation()
    assert isinstance(eq, sp.Eq)
