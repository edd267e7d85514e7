"""Large memory sizes: the ring-based exact path (M up to 12) and the certified per-eigenvalue
Schur-Cohn test beyond it, against numpy eigenvalues of ``S_lambda`` and numpy polynomial
roots (independent of both)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import stability as stb
from stability import symbols as S
from stability.regions.geometry import spectral_radius
from stability.regions.schurcohn import float_radii, schur_cohn_at


def dense_algorithm(M: int, seed: int, alpha: float = 0.3) -> stb.MemoryAlgorithm:
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(M, M))
    D *= 0.8 / np.abs(np.linalg.eigvals(D)).max()
    return stb.MemoryAlgorithm(
        alpha, rng.uniform(-0.3, 0.3, M).tolist(), rng.uniform(-0.3, 0.3, M).tolist(), D.tolist()
    )


def radius_grid(
    alg: stb.MemoryAlgorithm, hi: float, n: int = 4000
) -> tuple[np.ndarray, np.ndarray]:
    lam = np.linspace(hi / n, hi, n)
    return lam, float_radii(alg, lam)


@pytest.mark.symbolic
@pytest.mark.timeout(120)
@pytest.mark.parametrize("M, seed", [(7, 0), (8, 3)])
def test_exact_verdicts_at_large_M_agree_with_numpy_eigenvalues(M, seed):
    alg = dense_algorithm(M, seed)
    lam, rho = radius_grid(alg, 30.0)
    crit = float(stb.is_strictly_stable(alg, 30.0).lambda_crit)
    # numpy's first loss of stability on a fine grid brackets the exact critical curvature
    first_bad = lam[np.argmax(rho >= 1)] if np.any(rho >= 1) else np.inf
    assert crit <= first_bad + 1e-9
    assert np.all(rho[lam < crit * (1 - 1e-6)] < 1 + 1e-9)
    for hi in (0.5 * crit, 0.99 * crit, 1.01 * crit):
        if np.isfinite(hi):
            r = stb.is_strictly_stable(alg, hi)
            assert r.stable == (hi < crit)


@pytest.mark.slow
@pytest.mark.symbolic
@pytest.mark.timeout(300)
@pytest.mark.parametrize("M", [10, 12])
def test_conditions_and_verdicts_at_M_10_and_12(M):
    alg = dense_algorithm(M, 1)
    conds = stb.strict_stability_conditions(alg, S.lam_max)
    assert conds.conditions or conds.interval_conditions
    crit = float(stb.is_strictly_stable(alg, 30.0).lambda_crit)
    lam, rho = radius_grid(alg, 30.0)
    assert np.all(rho[lam < crit * (1 - 1e-6)] < 1 + 1e-9)
    if np.isfinite(crit) and crit < 29:
        assert np.any(rho[(lam > crit) & (lam < crit * 1.05)] > 1 - 1e-9)


def test_charpoly_of_a_large_memory_equals_the_determinant():
    # chi = P - lambda Q (Faddeev-LeVerrier adjugate form) against det(xi I - S_lambda) of the
    # rational matrix at rational points
    alg = dense_algorithm(10, 2).to_exact()
    _, _, chi = alg.charpoly()
    for lam0, xi0 in [(sp.Rational(7, 3), sp.Rational(1, 2)), (sp.Integer(5), sp.Integer(-2))]:
        direct = (xi0 * sp.eye(11) - alg.update_matrix(lam0)).det(method="bareiss")
        assert direct == chi.as_expr().subs({S.lam: lam0, S.xi: xi0})


@given(
    roots=st.lists(st.tuples(st.floats(0.0, 0.97), st.floats(0, np.pi)), min_size=1, max_size=8),
    scale=st.floats(0.5, 2.0),
)
@settings(deadline=None)
def test_schur_cohn_agrees_with_numpy_roots(roots, scale):
    # a real polynomial from conjugate pairs r e^{+-i t}, radii scaled beyond 1 at will
    zs = []
    for r, t in roots:
        zs += [r * scale * np.exp(1j * t), r * scale * np.exp(-1j * t)]
    c = np.real(np.poly(zs))[::-1]  # ascending
    inside = np.abs(zs).max() < 1
    if abs(np.abs(zs).max() - 1) < 1e-6:
        return  # too close to call in floats: the witness itself is unsure
    exact = [sp.Rational(float(x)) for x in c]
    got = schur_cohn_at(exact)
    assert got == bool(np.abs(np.roots(c[::-1])).max() < 1) == inside


def test_schur_cohn_on_the_circle_is_never_stable():
    xi = sp.Symbol("x")
    on_circle = sp.Poly((xi + 1) * (xi - sp.Rational(1, 2)), xi).all_coeffs()[::-1]
    assert schur_cohn_at([sp.Rational(c) for c in on_circle]) is not True
    assert schur_cohn_at([sp.Rational(1, 3), sp.Integer(0), sp.Integer(1)]) is True


@pytest.mark.timeout(60)
def test_memory_30_on_eigenvalues_is_certified_and_matches_numpy():
    M = 30
    rng = np.random.default_rng(0)
    alg = stb.MemoryAlgorithm(
        0.1,
        rng.uniform(-0.1, 0.1, M).tolist(),
        rng.uniform(-0.1, 0.1, M).tolist(),
        (0.3 * np.eye(M)).tolist(),
    )
    lam = np.linspace(0.1, 40, 60)
    r = stb.is_strictly_stable(alg, lam)
    rho = np.array([float(np.max(spectral_radius(alg, [x]))) for x in lam])
    assert not r.stable
    assert sorted(r.unstable_eigenvalues) == sorted(lam[rho >= 1].tolist())[:10]
    assert "Schur-Cohn" in r.method and "certified" in r.method
    assert stb.is_strictly_stable(alg, lam[rho < 0.999]).stable
    d = r.to_dict()
    assert d["lambda_crit"] == "nan"


def test_memory_20_gd_embedding_is_decided_exactly_at_the_boundary():
    # b = c = 0 and D = 0: gradient descent with 20 inert memory slots, stable iff lambda < 2/alpha
    M = 20
    alg = stb.MemoryAlgorithm(sp.Rational(1, 2), [0] * M, [0] * M, np.zeros((M, M)).tolist())
    edge = 4.0
    below = np.nextafter(edge, 0)
    assert stb.is_strictly_stable(alg, [0.5, below]).stable
    assert not stb.is_strictly_stable(alg, [0.5, edge]).stable
    assert not stb.is_strictly_stable(alg, [below], shift=2 * (edge - below)).stable


@pytest.mark.parametrize("M, seed", [(2, 0), (3, 1), (5, 2)])
def test_pointwise_and_interval_location_agree_on_eigenvalue_lists(M, seed, monkeypatch):
    from stability.regions import verdicts

    alg = dense_algorithm(M, seed)
    intervals = verdicts.stable_curvature_intervals(alg)
    ends = [float(b) for a, b in intervals if b != sp.oo] + [float(a) for a, _ in intervals]
    near = [x for e in ends if e > 0 for x in (np.nextafter(e, 0), e, np.nextafter(e, np.inf))]
    lam = np.concatenate([np.linspace(0.01, 40, 997), near])
    for shift in (0, sp.Rational(1, 1000)):
        monkeypatch.setattr(verdicts, "POINTWISE_MEMORY", 100)
        by_intervals = stb.is_strictly_stable(alg, lam, shift=shift)
        monkeypatch.setattr(verdicts, "POINTWISE_MEMORY", 0)
        pointwise = stb.is_strictly_stable(alg, lam, shift=shift)
        assert pointwise.stable == by_intervals.stable
        assert pointwise.unstable_eigenvalues == by_intervals.unstable_eigenvalues
        assert pointwise.reason == by_intervals.reason


@pytest.mark.timeout(60)
def test_eigenvalue_lists_at_M_10_take_seconds_and_match_numpy():
    alg = dense_algorithm(10, 0)
    lam = np.linspace(0.01, 30, 2000)
    r = stb.is_strictly_stable(alg, lam)
    rho = float_radii(alg, lam)
    clear = np.abs(rho - 1) > 1e-6
    failing = set(lam[(rho >= 1) & clear].tolist())
    got = stb.is_strictly_stable(alg, lam[clear])
    assert not r.stable and not got.stable
    assert set(got.unstable_eigenvalues) <= failing
    assert stb.is_strictly_stable(alg, lam[(rho < 1) & clear]).stable
