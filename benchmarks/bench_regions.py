"""Timing of strict-stability analysis: symbolic conditions vs memory, exact verdicts,
and the vectorised memory-1 checker against eigenvalue baselines (same run, ratios printed).

Run: ``python benchmarks/bench_regions.py`` (or ``make bench``).
"""

from __future__ import annotations

import time

import numpy as np
import sympy as sp

import stability as stb
from stability import symbols as S
from stability.checkers import memory1_margins
from stability.regions import is_strictly_stable, strict_stability_conditions


def timed(fn, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def symbolic_algorithm(M):
    b = sp.symbols(f"b1:{M + 1}", real=True)
    c = sp.symbols(f"c1:{M + 1}", real=True)
    D = sp.Matrix(M, M, sp.symbols(f"d1:{M * M + 1}", real=True))
    return stb.MemoryAlgorithm(S.alpha, b, c, D)


def main() -> None:
    print("== symbolic strict-stability conditions on (0, lambda_max] (fully symbolic a = 0) ==")
    for M in (1, 2, 3):
        t, conds = timed(lambda M=M: strict_stability_conditions(symbolic_algorithm(M)))
        ops = sum(sp.count_ops(c.expr) for c in conds.conditions + conds.interval_conditions)
        print(
            f"  M={M}: {t:8.3f} s, {len(conds.conditions)} closed + "
            f"{len(conds.interval_conditions)} interval conditions, {ops} ops"
        )

    print("== exact numeric verdicts (rational arithmetic + Sturm), per call ==")
    rng = np.random.default_rng(0)
    for M in (1, 2, 3):
        algs = []
        for _ in range(10):
            D = rng.normal(size=(M, M))
            D *= 0.8 / np.abs(np.linalg.eigvals(D)).max()
            algs.append(
                stb.MemoryAlgorithm(
                    rng.uniform(0.1, 1),
                    rng.uniform(-0.3, 0.3, M).tolist(),
                    rng.uniform(-0.3, 0.3, M).tolist(),
                    D.tolist(),
                )
            )
        t, _ = timed(lambda algs=algs: [is_strictly_stable(a, 2.0) for a in algs])
        print(f"  M={M}: {1e3 * t / len(algs):8.1f} ms per verdict on (0, 2]")

    print("== vectorised memory-1 checker vs eigenvalue baselines (lambda_max only) ==")
    n = 2_000_000
    beta = rng.uniform(-1, 1, n)
    q0 = rng.uniform(-1, 1, n)
    q1 = rng.uniform(-3, 1, n)
    t_vec, _ = timed(lambda: memory1_margins(beta=beta, q0=q0, q1=q1, lambda_max=1.0), 3)
    # baseline a user would write: eigenvalues of S_lambda at lambda_max only (which is not even
    # a complete check: the interval needs all lambda), batched and per config
    k = 200_000
    mats = np.empty((k, 2, 2))
    mats[:, 0, 0] = 1 + q1[:k]
    mats[:, 0, 1] = 1
    mats[:, 1, 0] = q0[:k] + beta[:k] * q1[:k]
    mats[:, 1, 1] = beta[:k]
    t_batch, _ = timed(lambda: np.abs(np.linalg.eigvals(mats)).max(axis=-1) < 1, 3)
    m = 20_000
    t_loop, _ = timed(lambda: [np.abs(np.linalg.eigvals(mats[i])).max() < 1 for i in range(m)])
    r_vec, r_batch, r_loop = n / t_vec, k / t_batch, m / t_loop
    print(f"  vectorised Theorem 6.1 : {r_vec:12.3e} configs/s (certified, whole interval)")
    print(
        f"  batched numpy eigvals  : {r_batch:12.3e} configs/s (one lambda only)  "
        f"ratio {r_vec / r_batch:6.1f}x"
    )
    print(
        f"  per-config eigvals loop: {r_loop:12.3e} configs/s (one lambda only)  "
        f"ratio {r_vec / r_loop:6.1f}x"
    )


if __name__ == "__main__":
    main()
