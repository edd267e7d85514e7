"""Throughput of the vectorised checkers against the baselines a user would otherwise write,
measured in the same run (ratios printed), plus CLI cold start and peak memory at 1e8 configs.

Run: ``python benchmarks/bench_checkers.py [n_configs]`` (default 4,000,000). The baselines
(numpy eigenvalues of the 2x2 update matrix per config, batched over a stack, and the plain
numpy broadcast of eq. 25 for the noise sum) check *less* than the checkers do: only the
curvature ``lambda_max`` instead of every curvature in ``(0, lambda_max]``, and no
certification of near-boundary points.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from stability.checkers import memory1_margins, memory1_noise_sum, torch_sgd_margins


def best_of(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def torch_matrices(lr, mu, lam):
    """torch SGD's update of (theta, buffer) at curvature lam (no dampening)."""
    A = np.empty((lr.size, 2, 2))
    A[:, 0, 0] = 1 - lr * lam
    A[:, 0, 1] = -lr * mu
    A[:, 1, 0] = lam
    A[:, 1, 1] = mu
    return A


def triplet_matrices(beta, q0, q1, lam):
    """Companion matrix of chi = xi^2 - (1 + beta + lam q1) xi + (beta - lam q0)."""
    A = np.zeros((beta.size, 2, 2))
    A[:, 0, 0] = 1 + beta + lam * q1
    A[:, 0, 1] = -(beta - lam * q0)
    A[:, 1, 0] = 1.0
    return A


def baselines(A, k=200_000, m=20_000):
    t_batch = best_of(lambda: np.abs(np.linalg.eigvals(A[:k])).max(axis=-1) < 1)
    t_loop = best_of(lambda: [np.abs(np.linalg.eigvals(A[i])).max() < 1 for i in range(m)], 1)
    return k / t_batch, m / t_loop


def report(label, rate, batch, loop):
    print(f"  {label:58s}: {rate:10.3e} configs/s")
    print(
        f"  {'batched numpy eigvals at lambda_max only':58s}: {batch:10.3e} configs/s"
        f"  -> ratio {rate / batch:7.1f}x  (target >= 100x)"
    )
    print(
        f"  {'per-config numpy eigvals loop at lambda_max only':58s}: {loop:10.3e} configs/s"
        f"  -> ratio {rate / loop:7.1f}x  (target >= 1000x)"
    )


def child(code: str) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter; returns (wall seconds, its stdout)."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, res.stdout.strip()


def timed_child(setup: str, work: str) -> tuple[str, str]:
    """Seconds spent in ``work`` (after ``setup``) and the peak RSS in MiB of a fresh process."""
    code = (
        f"{setup}\nimport resource, time\nt = time.perf_counter()\n{work}\n"
        "print(f'{time.perf_counter() - t:.2f}', "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
    )
    secs, peak = child(code)[1].split()[-2:]
    return secs, peak


def main(n: int = 4_000_000) -> None:
    rng = np.random.default_rng(0)
    print(f"threads: {os.cpu_count()} cores; checkers use stability.checkers.THREADS")
    lr = rng.uniform(1e-3, 1, n)
    mu = rng.uniform(0, 0.99, n)
    lam = rng.uniform(1, 50, n)
    print(f"== torch SGD configs, flat arrays (n = {n:,}) ==")
    t_vec = best_of(lambda: torch_sgd_margins(lr=lr, momentum=mu, lambda_max=lam), 5)
    t_one = best_of(lambda: torch_sgd_margins(lr=lr, momentum=mu, lambda_max=lam, threads=1))
    t_full = best_of(lambda: torch_sgd_margins(lr=lr, momentum=mu, lambda_max=lam, full=True))
    batch, loop = baselines(torch_matrices(lr[:200_000], mu[:200_000], lam[:200_000]))
    report("certified, every curvature in (0, lambda_max]", n / t_vec, batch, loop)
    print(f"  {'  same, one thread':58s}: {n / t_one:10.3e} configs/s")
    print(
        f"  {'  same, all seven conditions and their margins (full=True)':58s}: "
        f"{n / t_full:10.3e} configs/s"
    )

    side = int(np.sqrt(n))
    g_lr, g_mu = np.linspace(1e-3, 1, side), np.linspace(0, 0.99, side)
    t_grid = best_of(
        lambda: torch_sgd_margins(lr=g_lr[:, None], momentum=g_mu[None, :], lambda_max=10.0)
    )
    print(f"== torch SGD, lr x momentum grid by broadcasting ({side} x {side}) ==")
    print(f"  {'certified':58s}: {side * side / t_grid:10.3e} configs/s  (target >= 1e8)")

    print(f"== memory-1 triplets, Theorem 6.1 (n = {n:,}) ==")
    beta = rng.uniform(-1, 1, n)
    q0 = rng.uniform(-1, 1, n)
    q1 = rng.uniform(-2, 1, n)
    t_m1 = best_of(lambda: memory1_margins(beta=beta, q0=q0, q1=q1, lambda_max=1.0), 5)
    batch, loop = baselines(triplet_matrices(beta[:200_000], q0[:200_000], q1[:200_000], 1.0))
    report("certified, every curvature in (0, lambda_max]", n / t_m1, batch, loop)

    print("== noise sum U over configs x eigenvalues ==")
    eig = np.geomspace(1e-4, 1, 1000)
    nc = 20_000
    beta = rng.uniform(0.5, 0.99, nc)
    q0 = rng.uniform(0, 0.3, nc)
    q1 = -q0 - (1 - beta) * rng.uniform(0.1, 3, nc)
    t_noise = best_of(
        lambda: memory1_noise_sum(beta=beta, q0=q0, q1=q1, spectrum=eig, batch_size=32.0)
    )

    def plain_numpy(B=32.0):  # eq. 25 broadcast over the whole (configs x eigenvalues) array
        L, b, x0, x1 = eig[None, :], beta[:, None], q0[:, None], q1[:, None]
        ub = (
            L
            * (-(1 + b) * (x0 + x1) + L * x0 * (x0 - x1))
            / ((1 - b + L * x0) * (2 * (1 + b) - L * (x0 - x1)))
        )
        return np.sum(ub / B / (1 - ub / B), axis=1)

    t_plain = best_of(plain_numpy)
    rate = nc * eig.size / t_noise
    print(
        f"  {'checker (S_lambda, A_lambda checks included)':58s}: {rate:10.3e} "
        f"(config x eigenvalue)/s  (target >= 1e8)"
    )
    print(
        f"  {'plain numpy broadcast of eq. 25, no checks':58s}: "
        f"{nc * eig.size / t_plain:10.3e} (config x eigenvalue)/s  -> ratio "
        f"{t_plain / t_noise:5.1f}x"
    )

    print("== CLI cold start (`stability check`, new interpreter, best of 3) ==")
    cold = min(
        child(
            "from stability.cli import main; main(['check', '--lr', '0.1', "
            "'--momentum', '0.9', '--lambda-max', '30'])"
        )[0]
        for _ in range(3)
    )
    print(f"  {cold:.2f} s  (target < 2 s)")

    print("== 1e8 configs: time and peak RSS of a fresh process (target ~2 GB) ==")
    setup = (
        "import numpy as np; from stability.checkers import torch_sgd_margins; "
        "lr = np.linspace(1e-3, 1, 10_000); mu = np.linspace(0, 0.99, 10_000)"
    )
    secs, peak = timed_child(
        setup, "torch_sgd_margins(lr=lr[:, None], momentum=mu[None, :], lambda_max=10.0)"
    )
    print(f"  {'API, 10^4 x 10^4 grid, all results kept':58s}: {secs} s, peak RSS {peak} MiB")
    setup = (
        "import numpy as np; from stability.checkers import torch_sgd_margins; "
        "rng = np.random.default_rng(0)"
    )
    secs, peak = timed_child(
        setup,
        "for _ in range(25):\n"
        "    lr = rng.uniform(1e-3, 1, 4_000_000)\n"
        "    mu = rng.uniform(0, 0.99, 4_000_000)\n"
        "    torch_sgd_margins(lr=lr, momentum=mu, lambda_max=10.0)",
    )
    print(
        f"  {'API, 25 random chunks of 4e6 (drawing included)':58s}: {secs} s, peak RSS {peak} MiB"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "grid.npz")
        secs, peak = timed_child(
            "from stability.cli import main",
            "main(['sweep', '--lr', '0.001:1:10000', '--momentum', "
            f"'0:0.99:10000', '--lambda-max', '10', '--out', {path!r}])",
        )
        size = os.path.getsize(path) / 2**20
    print(
        f"  {'CLI sweep 10^4 x 10^4 -> .npz (writing included)':58s}: {secs} s, "
        f"peak RSS {peak} MiB, file {size:.0f} MiB"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4_000_000)
