"""The compiled backend (numba) against the numpy path it replaces: same verdicts, margins and
certification counts on random and boundary-adjacent sets, the same errors on bad input, and
the numpy fallback when numba is absent."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stability.checkers import (
    _backend,
    _compiled,
    memory1_interval_margins,
    memory1_margins,
    memory1_noise_sum,
    method_margins,
    torch_sgd_margins,
)
from stability.checkers._backend import use_backend
from stability.errors import ConfigError

numba_only = pytest.mark.skipif(not _backend.available(), reason="numba is not installed")


@pytest.fixture
def anywhere(monkeypatch):
    """Send every input, however small, to the compiled backend."""
    monkeypatch.setattr(_backend, "MIN_CONFIGS", 0)


def both(fn):
    with use_backend("numpy"):
        ref = fn()
    with use_backend("numba"):
        got = fn()
    return ref, got


def same_verdicts(ref, got):
    assert got.stable.shape == ref.stable.shape
    assert np.array_equal(got.stable, ref.stable)
    # same operations in the same order: bit for bit, NaN-free after certification
    assert np.array_equal(got.margin, ref.margin)
    assert got.n_certified == ref.n_certified
    assert got.names == ref.names


def boundary_lrs(mu, lam, n, rng):
    """Learning rates within a few ulps of torch SGD's boundary lr lam = 2 (1 + mu)."""
    edge = 2 * (1 + mu) / lam
    return edge + rng.integers(-3, 4, n) * np.spacing(edge)


@numba_only
@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"nesterov": True},
        {"dampening": 0.3, "weight_decay": 0.01},
    ],
)
def test_torch_sgd_random_and_boundary_sets(extra):
    rng = np.random.default_rng(1)
    n = _backend.MIN_CONFIGS + 123
    mu = rng.uniform(0.01, 0.99, n)
    lam = rng.uniform(1, 50, n)
    lr = np.where(rng.random(n) < 0.5, rng.uniform(1e-3, 1, n), boundary_lrs(mu, lam, n, rng))
    ref, got = both(lambda: torch_sgd_margins(lr=lr, momentum=mu, lambda_max=lam, **extra))
    same_verdicts(ref, got)
    if not extra:
        assert got.n_certified > 1000  # the boundary half really was on the boundary
        # and the certified verdicts are the exact ones: lr lam < 2 (1 + mu) in rationals
        from fractions import Fraction

        for i in np.flatnonzero(np.abs(got.margin) < 1e-12)[:200]:
            exact = Fraction(lr[i]) * Fraction(lam[i]) < 2 * (1 + Fraction(mu[i]))
            assert got.stable[i] == exact


@numba_only
def test_grids_and_strided_inputs():
    lr = np.linspace(1e-3, 1, 301)
    mu = np.linspace(0, 0.99, 400)[::2]  # a strided view
    lam = np.array([[10.0], [37.9]])[:, :, None]
    ref, got = both(lambda: torch_sgd_margins(lr=lr[:, None], momentum=mu[None, :], lambda_max=lam))
    assert got.stable.shape == (2, 301, 200)
    with use_backend("numba"):
        assert _backend.wanted(got.stable.size)
    same_verdicts(ref, got)


@numba_only
def test_triplet_and_method_kernels():
    rng = np.random.default_rng(2)
    n = _backend.MIN_CONFIGS
    beta, q0, q1 = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), rng.uniform(-2, 1, n)
    same_verdicts(*both(lambda: memory1_margins(beta=beta, q0=q0, q1=q1, lambda_max=1.0)))
    hi = rng.uniform(0.2, 3, n)
    same_verdicts(
        *both(
            lambda: memory1_interval_margins(beta=beta, q0=q0, q1=q1, lambda_lo=0.1, lambda_hi=hi)
        )
    )
    lr, mom = rng.uniform(0, 4, n), rng.uniform(0, 0.999, n)
    same_verdicts(*both(lambda: method_margins("heavy_ball", lr=lr, momentum=mom, lambda_max=1.0)))


@numba_only
@given(
    shape_a=st.lists(st.integers(0, 3), max_size=3),
    shape_b=st.lists(st.integers(0, 3), max_size=3),
    seed=st.integers(0, 2**32 - 1),
    nesterov=st.booleans(),
)
def test_any_broadcast_shape_gives_the_numpy_result(shape_a, shape_b, seed, nesterov):
    rng = np.random.default_rng(seed)
    n = max(len(shape_a), len(shape_b))
    shape_a = [1] * (n - len(shape_a)) + shape_a
    shape_b = [1] * (n - len(shape_b)) + shape_b
    shape_b = [b if a in (1, b) or b == 1 else a for a, b in zip(shape_a, shape_b, strict=True)]
    lr = rng.uniform(1e-3, 1, shape_a)
    mu = rng.uniform(0.01, 0.99, shape_b)
    old = _backend.MIN_CONFIGS
    _backend.MIN_CONFIGS = 0
    try:
        same_verdicts(
            *both(lambda: torch_sgd_margins(lr=lr, momentum=mu, lambda_max=20.0, nesterov=nesterov))
        )
    finally:
        _backend.MIN_CONFIGS = old


@numba_only
@pytest.mark.parametrize(
    "bad, message",
    [(math.nan, "lr must be finite"), (-1.0, "lr must be in (0, inf)")],
)
def test_bad_values_deep_inside_large_arrays_name_the_parameter(bad, message):
    n = 3 * _backend.MIN_CONFIGS
    lr = np.full(n, 0.1)
    lr[n - 7] = bad
    for name in ("numpy", "numba"):
        with use_backend(name), pytest.raises(ConfigError, match=re.escape(message)):
            torch_sgd_margins(lr=lr, momentum=0.9, lambda_max=np.full(n, 10.0))


@numba_only
def test_noise_sum_agrees_with_numpy():
    rng = np.random.default_rng(3)
    n = 300
    beta = rng.uniform(0.5, 0.99, n)
    q0 = rng.uniform(0, 0.3, n)
    q1 = -q0 - (1 - beta) * rng.uniform(0.1, 3, n)
    q1[:10] = -5.0  # unstable at the top of the spectrum: U = inf on both paths
    eig = np.geomspace(1e-4, 1, 1000)
    for tau2 in (-1.0, 0.0):
        ref, got = both(
            lambda tau2=tau2: memory1_noise_sum(
                beta=beta, q0=q0, q1=q1, spectrum=eig, batch_size=4.0, tau2=tau2
            )
        )
        assert np.array_equal(np.isinf(ref), np.isinf(got))
        assert np.isinf(got[:10]).all()
        fin = np.isfinite(ref)
        assert fin.sum() > 200
        np.testing.assert_allclose(got[fin], ref[fin], rtol=1e-13)


def test_fallback_without_numba(monkeypatch):
    monkeypatch.setattr(_backend, "numba", None)
    assert not _backend.available()
    assert _backend.backend() == "numpy"
    with pytest.raises(ConfigError, match="numba is not installed"), use_backend("numba"):
        pass
    monkeypatch.setenv("STABILITY_BACKEND", "numba")
    with pytest.raises(ConfigError, match="numba is not installed"):
        _backend.backend()
    monkeypatch.setenv("STABILITY_BACKEND", "auto")
    n = _backend.MIN_CONFIGS + 5
    v = torch_sgd_margins(lr=np.linspace(0.01, 0.3, n), momentum=0.9, lambda_max=10.0)
    assert v.stable.sum() == np.count_nonzero(np.linspace(0.01, 0.3, n) * 10 < 3.8)


def test_backend_names_are_checked(monkeypatch):
    monkeypatch.setenv("STABILITY_BACKEND", "fortran")
    with pytest.raises(ConfigError, match="STABILITY_BACKEND must be 'auto', 'numba' or"):
        _backend.backend()
    with pytest.raises(ConfigError, match="backend must be"), use_backend("gpu"):
        pass


@numba_only
def test_works_without_a_writable_cache(monkeypatch, tmp_path, anywhere):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("STABILITY_CACHE_DIR", str(blocker / "sub"))
    assert _backend.cache_dir() is None
    monkeypatch.setattr(_compiled, "_margin_loops", {})
    ref, got = both(lambda: memory1_margins(beta=0.5, q0=0.0, q1=[-0.1, -3.1], lambda_max=1.0))
    same_verdicts(ref, got)
    assert got.stable.tolist() == [True, False]


@numba_only
def test_thread_counts_are_checked_and_do_not_change_results(anywhere):
    lr = np.linspace(0.01, 0.5, 50_000)
    with use_backend("numba"):
        one = torch_sgd_margins(lr=lr, momentum=0.9, lambda_max=10.0, threads=1)
        two = torch_sgd_margins(lr=lr, momentum=0.9, lambda_max=10.0, threads=2)
        with pytest.raises(ConfigError, match="threads must be a positive integer"):
            torch_sgd_margins(lr=lr, momentum=0.9, lambda_max=10.0, threads=0)
    same_verdicts(one, two)
