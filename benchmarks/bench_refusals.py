"""Issue 28's reproducers, timed: each must give a correct answer or a named refusal within 5 s.

Each case runs in this process after a warm-up import; the time is the wall time of the call
(the answers themselves are checked against oracles in ``tests/test_regressions_28.py``).

Usage: ``python benchmarks/bench_refusals.py``
"""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np

import stability as stb
from stability.errors import StabilityError


def _cases():
    rng = np.random.default_rng(0)
    cfg = {"optimizer": "sgd", "lr": 0.1}
    lam7177 = np.sort(rng.uniform(0.01, 1, 7177))
    yield (
        "data 100 x 20,000 features, B = 8",
        lambda: stb.check(cfg, data=(rng.standard_normal((100, 20000)), None), batch_size=8),
    )
    yield (
        "data 3,000 x 1,500 features, B = 8",
        lambda: stb.check(cfg, data=(rng.standard_normal((3000, 1500)), None), batch_size=8),
    )
    yield (
        "spectrum of 1e8 eigenvalues, B = 8",
        lambda: stb.check(cfg, spectrum=np.ones(10**8), batch_size=8),
    )
    yield "7,177 eigenvalues, momentum 1 - 3e-6, B near critical", lambda: stb.check(
        {"optimizer": "sgd", "lr": 0.5, "momentum": 1 - 3e-6}, spectrum=lam7177,
        batch_size=328433490.0,
    )  # fmt: skip
    X = rng.standard_normal((50, 3))
    yield "features x 1e150", lambda: stb.check(cfg, data=(X * 1e150, None))
    yield "features x 1e200", lambda: stb.check(cfg, data=(X * 1e200, None), batch_size=4)
    yield (
        "momentum 1 - 1e-20 (exact), data",
        lambda: stb.check(
            {**cfg, "momentum": 1 - Fraction(1, 10**20)}, data=(X, None), batch_size=4
        ),
    )
    yield "zero data", lambda: stb.check(cfg, data=(np.zeros((50, 3)), None), batch_size=4)


def main() -> None:
    stb.check({"optimizer": "sgd", "lr": 0.1}, lambda_max=1.0)  # warm-up
    for name, call in _cases():
        start = time.perf_counter()
        try:
            rep = call()
            what = f"{rep.verdict}"
        except StabilityError as exc:
            what = f"refused: {str(exc)[:90]}..."
        seconds = time.perf_counter() - start
        print(f"{name:<58} {seconds:7.2f} s  [{'met' if seconds < 5 else 'MISSED'}]  {what}")


if __name__ == "__main__":
    main()
