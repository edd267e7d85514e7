"""Shared fixtures: the method registry, random algorithms, hypothesis profiles."""

from __future__ import annotations

import os
from fractions import Fraction

import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import stability as stb

matplotlib.use("Agg")

# default and CI runs draw 15 examples per property (the suite stays fast); make test-slow
# reruns every property test with the thorough profile (500 examples)
settings.register_profile(
    "default", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# CI: the same examples on every run (a red CI is reproducible, never a lucky draw)
settings.register_profile(
    "ci",
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default")
)


@pytest.fixture(autouse=True, scope="session")
def _torch_on_one_thread():
    """The torch models in the tests are tiny: one intra-op thread. With two, torch's OpenMP
    workers spin against anything else on a 2-core machine (a tiny HVP went from 6 ms to 0.2 s
    with a second process running)."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(params=sorted(stb.METHODS))
def method(request: pytest.FixtureRequest) -> stb.Method:
    """Every registered method: generic tests run on each."""
    return stb.METHODS[request.param]


def random_algorithm(
    rng: np.random.Generator,
    M: int,
    *,
    lookahead: bool = False,
    exact: bool = False,
    scale: float = 0.5,
) -> stb.MemoryAlgorithm:
    """A random memory-M algorithm; ``exact`` gives Fractions with denominator 64."""

    def draw(*shape: int):
        x = rng.uniform(-1, 1, size=shape) * scale
        if exact:
            return np.vectorize(lambda v: Fraction(round(v * 64), 64), otypes=[object])(x)
        return x

    alpha = abs(draw(1)[0]) + (Fraction(1, 8) if exact else 0.125)
    a = draw(M).tolist() if lookahead else None
    return stb.MemoryAlgorithm(alpha, draw(M).tolist(), draw(M).tolist(), draw(M, M).tolist(), a)


small_fraction = st.fractions(min_value=-1, max_value=1, max_denominator=32)


@st.composite
def exact_algorithms(draw, min_M: int = 1, max_M: int = 4, lookahead: bool = True):
    """Hypothesis strategy: exact rational memory-M algorithms (1 - D kept invertible)."""
    M = draw(st.integers(min_M, max_M))
    alpha = draw(st.fractions(min_value=Fraction(1, 32), max_value=2, max_denominator=32))
    vec = st.lists(small_fraction, min_size=M, max_size=M)
    b, c = draw(vec), draw(vec)
    a = draw(vec) if lookahead and draw(st.booleans()) else None
    D = [[x / 2 for x in draw(vec)] for _ in range(M)]  # entries in [-1/2, 1/2]
    return stb.MemoryAlgorithm(alpha, b, c, D, a)
