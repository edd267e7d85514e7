"""Throughput of the vectorised checkers against the baselines a user would write, measured in
the same run (ratios printed), plus CLI cold start and peak memory of a chunked sweep.

Run: ``python benchmarks/bench_checkers.py [n_configs]``.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import numpy as np

from stability.checkers import memory1_noise_sum, torch_sgd_margins


def best_of(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def torch_matrices(lr, mu, lam):
    A = np.empty((lr.size, 2, 2))
    A[:, 0, 0] = 1 - lr * lam
    A[:, 0, 1] = -lr * mu
    A[:, 1, 0] = lam
    A[:, 1, 1] = mu
    return A


def main(n: int = 4_000_000) -> None:
    rng = np.random.default_rng(0)
    lr = rng.uniform(1e-3, 1, n)
    mu = rng.uniform(0, 0.99, n)
    lam = rng.uniform(1, 50, n)
    print(f"== strict stability of torch SGD configs (n = {n:,}) ==")
    t_vec = best_of(lambda: torch_sgd_margins(lr=lr, momentum=mu, lambda_max=lam))
    k = 200_000
    A = torch_matrices(lr[:k], mu[:k], lam[:k])
    t_batch = best_of(lambda: np.abs(np.linalg.eigvals(A)).max(axis=-1) < 1)
    m = 20_000
    t_loop = best_of(lambda: [np.abs(np.linalg.eigvals(A[i])).max() < 1 for i in range(m)], 1)
    r_vec, r_batch, r_loop = n / t_vec, k / t_batch, m / t_loop
    print(f"  vectorised, certified, all curvatures in (0, lambda_max]: {r_vec:10.3e} configs/s")
    print(f"  batched numpy eigvals at lambda_max only              : {r_batch:10.3e} configs/s"
          f"  -> ratio {r_vec / r_batch:6.1f}x")
    print(f"  per-config numpy eigvals loop at lambda_max only       : {r_loop:10.3e} configs/s"
          f"  -> ratio {r_vec / r_loop:6.1f}x")

    print("== noise sum U over configs x eigenvalues ==")
    eig = np.geomspace(1e-4, 1, 1000)
    nc = 20_000
    beta, q0 = rng.uniform(0.5, 0.99, nc), rng.uniform(0, 0.3, nc)
    q1 = -q0 - (1 - beta) * rng.uniform(0.1, 3, nc)
    t_noise = best_of(lambda: memory1_noise_sum(beta=beta, q0=q0, q1=q1, eigenvalues=eig,
                                                batch_size=32.0))
    print(f"  {nc * eig.size / t_noise:10.3e} (config x eigenvalue)/s")

    print("== CLI cold start (`stability check`, new interpreter) ==")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stability.cli", "check", "--lr", "0.1", "--momentum",
                    "0.9", "--lambda-max", "30"], check=False, capture_output=True)
    print(f"  {time.perf_counter() - t0:.2f} s")

    print("== peak memory of a chunked sweep ==")
    chunk = 2_000_000
    total = 0
    t0 = time.perf_counter()
    for _ in range(10):
        a = rng.uniform(1e-3, 1, chunk)
        torch_sgd_margins(lr=a, momentum=0.9, lambda_max=10.0)
        total += chunk
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  {total:,} configs in chunks of {chunk:,}: {dt:.1f} s, peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4_000_000)
