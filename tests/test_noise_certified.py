"""The certified noise sum never calls a sum bounded when U >= 1 (issue 19).

The oracle is independent of the package's formulas: each term is ``lambda^2 X_11`` with ``X``
the solution of the Lyapunov system ``X = S X S^T + v v^T`` at the exact binary values of the
inputs, solved as a linear system in 50-digit mpmath arithmetic (not eq. 25), combined as
``(tau1/B) Ubar / (1 + (tau2/B) Ubar)``. Adversarial cases put the batch size where ``U`` is
within 1e-12 of 1, on spectra from 1e-12 to 1e6, with batch sizes up to 1e300, for memory 0 and
1 (plain SGD, heavy ball, Nesterov, general triplets).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import stability as stb

DPS = 50


def _mp(x: float) -> mpmath.mpf:
    return mpmath.mpf(x)  # a float's exact binary value


def oracle_U(alg: stb.MemoryAlgorithm, lam, w, B: float, tau1=1.0, tau2=-1.0, strict=True):
    """``U`` at 50 digits, or ``inf`` when a second-moment map is not stable (``strict``:
    check the noiseless maps too, by their eigenvalues)."""
    with mpmath.workdps(DPS):
        exact = alg.to_exact()
        n = exact.M + 1

        def mp(e):
            from sympy import Rational

            r = Rational(e)
            return mpmath.mpf(int(r.p)) / int(r.q)

        S0 = mpmath.matrix([[mp(exact.S0[i, j]) for j in range(n)] for i in range(n)])
        v = [mp(x) for x in exact.v]
        r = [mp(x) for x in exact.r]
        total = mpmath.mpf(0)
        for lk, wk in zip(lam, w, strict=True):
            L = _mp(lk)
            S = S0 + L * mpmath.matrix([[v[i] * r[j] for j in range(n)] for i in range(n)])
            if strict and max(abs(e) for e in mpmath.eig(S)[0]) >= 1:
                return math.inf
            # vec(X) = (I - S (x) S)^-1 vec(v v^T)
            K = mpmath.matrix(n * n, n * n)
            for i in range(n):
                for j in range(n):
                    for a in range(n):
                        for b in range(n):
                            K[i * n + a, j * n + b] = S[i, j] * S[a, b]
            rhs = mpmath.matrix([v[i] * v[a] for i in range(n) for a in range(n)])
            X = mpmath.lu_solve(mpmath.eye(n * n) - K, rhs)
            rxr = sum(r[i] * X[i * n + a] * r[a] for i in range(n) for a in range(n))
            ubar = L * L * rxr
            den = _mp(B) + _mp(tau2) * ubar
            if den <= 0:
                return math.inf
            total += _mp(wk) * _mp(tau1) * ubar / den
        return total


def _algorithm(rng: np.random.Generator, lam_max: float) -> stb.MemoryAlgorithm:
    kind = rng.integers(4)
    frac = float(rng.uniform(0.05, 0.999))  # of the noiseless limit
    if kind == 0:
        return stb.gd(frac * 2 / lam_max)
    beta = float(rng.uniform(0.0, 0.99))
    if kind == 1:
        return stb.heavy_ball(frac * 2 * (1 + beta) / lam_max, beta)
    if kind == 2:
        return stb.nesterov(frac * 2 * (1 + beta) / ((1 + 2 * beta) * lam_max), beta)
    q0 = float(rng.uniform(0, 0.9)) * (1 + beta) / lam_max
    q1 = -q0 - float(rng.uniform(0.01, 1.0)) * (2 * (1 + beta) / lam_max - 2 * q0)
    return stb.memory1(beta, q0, q1)


def _case(seed: int):
    """An algorithm, a spectrum, and the batch size at which U = 1 (50 digits), or None."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 5))
    lam = np.sort(10 ** rng.uniform(-12, 6, size=k))
    w = 10 ** rng.uniform(-3, 12, size=k) if rng.random() < 0.5 else np.ones(k)
    alg = _algorithm(rng, float(lam.max()))
    if not stb.is_strictly_stable(alg, lam).stable:
        return None
    with mpmath.workdps(DPS):
        f = lambda B: oracle_U(alg, lam, w, float(B), strict=False)  # noqa: E731
        lo, hi = 1.0, 1e300
        if f(hi) >= 1 or f(lo) < 1:
            return None
        for _ in range(2000):  # bisection in log space on floats
            mid = math.sqrt(lo * hi) if hi / lo > 2 else (lo + hi) / 2
            if mid in (lo, hi):
                break
            lo, hi = (lo, mid) if f(mid) < 1 else (mid, hi)
    return alg, lam, w, lo, hi  # f(lo) >= 1 > f(hi): adjacent floats around U = 1


def _check_case(alg, lam, w, B):
    spec = stb.Spectrum.from_arrays(lam, w)
    res = stb.stability_sum(alg, spec, B)
    exact = oracle_U(alg, lam, w, B)
    if res.bounded:
        assert exact < 1, (alg, lam, w, B, res.U, exact)
    if math.isfinite(res.U) and math.isfinite(exact) and not res.undecided:
        assert abs(res.U - float(exact)) <= res.tolerance + 1e-15 * float(exact)
    return res


def _run(seeds):
    checked = 0
    for seed in seeds:
        case = _case(seed)
        if case is None:
            continue
        alg, lam, w, lo, hi = case
        for B in (lo, hi, lo * (1 - 1e-12), hi * (1 + 1e-12), lo * (1 - 1e-9)):
            if 1 <= B <= 1e300:
                _check_case(alg, lam, w, B)
                checked += 1
    return checked


def test_no_bounded_verdict_at_U_above_one_on_adversarial_cases():
    assert _run(range(20)) >= 50  # make test-slow runs 1,360 more seeds


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_no_bounded_verdict_at_U_above_one_on_thousands_of_cases():
    assert _run(range(40, 1400)) >= 3000


@given(
    lr_frac=st.floats(0.01, 0.9999),
    lam=st.floats(1e-12, 1e6),
    logB=st.floats(0, 300),
    beta=st.floats(0, 0.999),
)
def test_property_memory0_and_1_against_mpmath(lr_frac, lam, logB, beta):
    B = 10.0**logB
    for alg in (stb.gd(lr_frac * 2 / lam), stb.heavy_ball(lr_frac * 2 * (1 + beta) / lam, beta)):
        _check_case(alg, np.array([lam]), np.array([1.0]), B)
