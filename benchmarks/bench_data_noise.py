"""The data noise model (docs §4.4): time and peak memory against what a user would otherwise do.

Each case runs in a fresh process (its peak RSS is its own):

1. **digits-sized least squares** (sklearn digits, standardised, n = 1797, 65 features with a
   bias; heavy ball, B = 16). ``rho`` by :func:`stability.noise.mean_square_radius` against the
   dense operator a user would write (``E_i[H_i (x) H_i]`` from the features, the Hadamard
   weights, ``numpy.linalg.eigvals`` of the ``d^2 x d^2`` matrix); the largest stable lr by
   ``check(data=...)`` against a learning-rate range test with torch SGD (41 learning rates x 3
   seeds, five epochs, every run at once).
2. **n = 1e5, d = 512** (Student-t features): ``rho`` alone; the dense operator would hold
   ``d^4`` = 6.9e10 numbers (550 GB) and is not attempted.
3. **an MLP with ~1e5 parameters on 2000 samples** (digits, cross-entropy, float32):
   :func:`stability.training.per_sample_ggn` (top 64 Gauss-Newton directions) and ``rho``;
   the exact per-sample Jacobians would hold n k P = 2e9 numbers (8 GB) and are not formed.

4. **networks at every batch size** (issue 27): a 1,982-parameter MLP on sklearn's
   breast_cancer (569 samples, cross-entropy): ``per_sample_ggn`` (rank 64), then the eight
   largest stable lrs (momentum 0 and 0.9, B = 1, 8, 32, 128) as two stability curves, against
   eight separate checks at the old tolerance (1e-10); the digits least-squares curve over ten
   batch sizes. ``--threads`` adds the rows at one and at two BLAS/torch threads with another
   process busy on one core.

Usage: ``python benchmarks/bench_data_noise.py [--skip-baselines] [--threads]``
"""

from __future__ import annotations

import subprocess
import sys

SETUP = """
import resource, time
import numpy as np
import stability as stb
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

DIGITS = """
from sklearn.datasets import load_digits
X, y = load_digits(return_X_y=True)
X = (X - X.mean(0)) / (X.std(0) + 1e-8)
"""

CASES = {
    "digits: rho": DIGITS
    + """
data = stb.PerSampleCurvature.from_features(X, y)
alg = stb.from_torch_sgd(1e-4, 0.9).algorithm
stb.noise.mean_square_radius(alg, data, 16)  # warm-up (imports, caches)
t = time.perf_counter()
res = stb.noise.mean_square_radius(alg, data, 16)
print("RESULT", time.perf_counter() - t, rss(), f"rho={res.rho:.6g} (r={data.dim})")
""",
    "digits: rho, dense eigvals (baseline)": DIGITS
    + """
t = time.perf_counter()
Xb = np.hstack([X, np.ones((len(X), 1))])
F = Xb * np.sqrt(2.0)
n, d = F.shape
H = F.T @ F / n
lam, U = np.linalg.eigh(H)
keep = lam > 1e-10 * lam[-1]
lam, F = lam[keep], F @ U[:, keep]
d = lam.size
alg = stb.from_torch_sgd(1e-4, 0.9).algorithm
R = stb.noise.response_matrix(alg, lam)
F2 = np.einsum("ni,nj->nij", F, F).reshape(n, d * d)
E = F2.T @ F2 / n  # E_i[H_i (x) H_i]
HH = np.kron(np.diag(lam), np.diag(lam))
N = (E - HH) * R.reshape(-1)[None, :] / 16
rho = np.max(np.abs(np.linalg.eigvals(N)))
print("RESULT", time.perf_counter() - t, rss(), f"rho={rho:.6g} (r={d})")
""",
    "digits: largest stable lr": DIGITS
    + """
data = stb.PerSampleCurvature.from_features(X, y)
cfg = {"optimizer": "sgd", "lr": 1e-4, "momentum": 0.9}
opt = stb.from_optimizer(cfg)[0]
t = time.perf_counter()
lr, _ = stb.checkers.largest_stable_lr(opt, batch_size=16, noise=stb.DataNoise(data))
print("RESULT", time.perf_counter() - t, rss(), f"lr={lr:.6g}")
""",
    "digits: lr range test, torch SGD (baseline)": DIGITS
    + """
import runpy
ex = runpy.run_path("examples/minibatch_from_data.py")
Y = ((y - y.mean()) / y.std())[:, None]
t = time.perf_counter()
got = ex["measure"](X, Y, 16, 0.9, 4e-4 * ex["GRID"], 3)
print("RESULT", time.perf_counter() - t, rss(), f"blow-up lr={np.median(got['blow']):.6g}")
""",
    "n=1e5, d=512: rho": """
rng = np.random.default_rng(0)
X = rng.standard_t(4, size=(100_000, 512))
data = stb.PerSampleCurvature.from_features(X, bias=False)
alg = stb.from_torch_sgd(0.02 / data.eigenvalues[-1], 0.9).algorithm
t = time.perf_counter()
res = stb.noise.mean_square_radius(alg, data, 32)
print("RESULT", time.perf_counter() - t, rss(),
      f"rho={res.rho:.6g} in [{res.lower:.6g}, {res.upper:.6g}], {res.matvecs} applications")
""",
    "MLP 1e5 parameters, 2000 samples: curvature + rho": """
import torch
from sklearn.datasets import load_digits
X, _ = load_digits(return_X_y=True)
x = torch.tensor(np.vstack([X, X[:203]]) / 16, dtype=torch.float32)  # 2000 samples
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 512), torch.nn.Tanh(),
                            torch.nn.Linear(512, 128), torch.nn.Tanh(), torch.nn.Linear(128, 10))
P = sum(p.numel() for p in model.parameters())
t = time.perf_counter()
data = stb.training.per_sample_ggn(model, "cross_entropy", x, rank=64)
t1 = time.perf_counter()
alg = stb.from_torch_sgd(0.05, 0.9).algorithm
res = stb.noise.mean_square_radius(alg, data, 32)
t2 = time.perf_counter()
print("RESULT", t2 - t, rss(),
      f"{P:,} parameters: curvature {t1 - t:.1f} s, rho {t2 - t1:.2f} s (rho={res.rho:.4g})")
""",
}

BREAST = """
import torch
from sklearn.datasets import load_breast_cancer
X, y = load_breast_cancer(return_X_y=True)
X = (X - X.mean(0)) / X.std(0)
x = torch.tensor(X, dtype=torch.float32)
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(30, 60), torch.nn.Tanh(), torch.nn.Linear(60, 2))
P = sum(p.numel() for p in net.parameters())
"""

CASES.update(
    {
        "breast_cancer MLP (1,982 parameters): per_sample_ggn rank 64": BREAST
        + """
stb.training.per_sample_ggn(net, "cross_entropy", x[:50], subspace="top", rank=16)  # warm-up
t = time.perf_counter()
data = stb.training.per_sample_ggn(net, "cross_entropy", x, subspace="top", rank=64)
print("RESULT", time.perf_counter() - t, rss(), f"{P:,} parameters, r={data.dim}")
""",
        "breast_cancer MLP: 8 largest stable lrs (mu 0, 0.9; B 1, 8, 32, 128)": BREAST
        + """
data = stb.training.per_sample_ggn(net, "cross_entropy", x, subspace="top", rank=64)
t = time.perf_counter()
curves = [stb.stability_curve({"optimizer": "sgd", "lr": 0.1, "momentum": mu}, data=data,
                              batch_sizes=[1, 8, 32, 128]) for mu in (0.0, 0.9)]
lrs = ", ".join(f"{v:.3g}" for c in curves for v in c.max_lr)
print("RESULT", time.perf_counter() - t, rss(), f"lr_max = {lrs}")
""",
        "breast_cancer MLP: 8 settings, one check each (before: how issue 20 was used)": BREAST
        + """
data = stb.training.per_sample_ggn(net, "cross_entropy", x, subspace="top", rank=64)
t = time.perf_counter()
for mu in (0.0, 0.9):
    for B in (1, 8, 32, 128):
        stb.check({"optimizer": "sgd", "lr": 0.1, "momentum": mu}, data=data, batch_size=B,
                  tol=1e-10)
print("RESULT", time.perf_counter() - t, rss(), "8 separate checks at tol 1e-10")
""",
        "digits least squares: curve over 10 batch sizes": DIGITS.replace(
            "X = (X - X.mean(0)) / (X.std(0) + 1e-8)", "X = X / 16"
        )
        + """
data = stb.PerSampleCurvature.from_features(X, y / 1.0)
t = time.perf_counter()
c = stb.stability_curve({"optimizer": "sgd", "lr": 0.01, "momentum": 0.9}, data=data,
                        batch_sizes=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
first = time.perf_counter() - t
data = stb.PerSampleCurvature.from_features(X, y / 1.0)  # again, without the one-time costs
t = time.perf_counter()
stb.stability_curve({"optimizer": "sgd", "lr": 0.02, "momentum": 0.9}, data=data,
                    batch_sizes=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
again = time.perf_counter() - t
print("RESULT", first, rss(), f"knee B = {c.knee:.0f}; a second curve in the same process "
      f"(no sympy construction or kernel compilation) {again:.2f} s")
""",
    }
)

BEFORE = {  # the previous release (commit 73ecf3f) on the same machine, the same cases
    "n=1e5, d=512: rho": "32.2 s",
    "MLP 1e5 parameters, 2000 samples: curvature + rho": "curvature 25.1 s",
    "breast_cancer MLP (1,982 parameters): per_sample_ggn rank 64": "1.82 s",
    "breast_cancer MLP: 8 largest stable lrs (mu 0, 0.9; B 1, 8, 32, 128)": (
        "6.16 s as 8 checks; issue 27 saw 12-34 s per setting on a loaded machine"
    ),
    "digits least squares: curve over 10 batch sizes": "5.07 s as 10 searches",
}

BASELINE_OF = {
    "digits: rho": "digits: rho, dense eigvals (baseline)",
    "digits: largest stable lr": "digits: lr range test, torch SGD (baseline)",
}
BASELINE_OF["breast_cancer MLP: 8 largest stable lrs (mu 0, 0.9; B 1, 8, 32, 128)"] = (
    "breast_cancer MLP: 8 settings, one check each (before: how issue 20 was used)"
)
TARGETS = {  # seconds, GB: the budget on a 2-core machine
    "digits: rho": (0.2, None),
    "digits: largest stable lr": (2.0, None),
    "n=1e5, d=512: rho": (30.0, 2.0),
    "MLP 1e5 parameters, 2000 samples: curvature + rho": (12.0, None),
    "breast_cancer MLP (1,982 parameters): per_sample_ggn rank 64": (5.0, None),
    "breast_cancer MLP: 8 largest stable lrs (mu 0, 0.9; B 1, 8, 32, 128)": (5.0, None),
    "digits least squares: curve over 10 batch sizes": (0.5, None),
}


def run(name: str) -> tuple[float, float, str]:
    res = subprocess.run(
        [sys.executable, "-c", SETUP + CASES[name]], capture_output=True, text=True
    )
    if res.returncode != 0:
        raise SystemExit(f"{name}: {res.stderr[-2000:]}")
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("RESULT"))
    _, seconds, mib, what = line.split(" ", 3)
    return float(seconds), float(mib), what


THREADS_CASE = (
    BREAST
    + """
import stability._threads as threads
if MODE == "several":
    threads.PARALLEL_FLOPS = 0.0  # never limit: BLAS and torch on all their threads
data = stb.training.per_sample_ggn(net, "cross_entropy", x, subspace="top", rank=64)
t = time.perf_counter()
for mu in (0.0, 0.9):
    stb.stability_curve({"optimizer": "sgd", "lr": 0.1, "momentum": mu}, data=data,
                        batch_sizes=[1, 8, 32, 128])
print("RESULT", time.perf_counter() - t, rss(), MODE)
"""
)


def threads_rows() -> None:
    """The 8 breast_cancer settings at one thread per small product (the default) and at every
    thread, each with another process busy on one core."""
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\n"
                             "while time.time() - t < 600: pass"])  # fmt: skip
    try:
        for mode in ("one", "several"):
            code = SETUP + f"MODE = {mode!r}\n" + THREADS_CASE
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if res.returncode != 0:
                raise SystemExit(res.stderr[-2000:])
            line = next(ln for ln in res.stdout.splitlines() if ln.startswith("RESULT"))
            _, seconds, _, _ = line.split(" ", 3)
            label = "one thread per small product" if mode == "one" else "every thread"
            print(f"8 breast_cancer settings, another process busy, {label:<29} "
                  f"{float(seconds):8.2f} s", flush=True)  # fmt: skip
    finally:
        busy.kill()


def main() -> None:
    if "--threads" in sys.argv[1:]:
        threads_rows()
        return
    skip = "--skip-baselines" in sys.argv[1:]
    results = {}
    for name in CASES:
        if skip and "baseline" in name:
            continue
        results[name] = run(name)
        seconds, mib, what = results[name]
        line = f"{name:<52} {seconds:8.2f} s  peak {mib / 1024:5.2f} GB   {what}"
        target = TARGETS.get(name)
        if target:
            ok = seconds < target[0] and (target[1] is None or mib / 1024 < target[1])
            budget = f"< {target[0]:g} s" + (f", < {target[1]:g} GB" if target[1] else "")
            line += f"   [budget {budget}: {'met' if ok else 'MISSED'}]"
        if name in BEFORE:
            line += f"   (before: {BEFORE[name]})"
        print(line, flush=True)
    for ours, base in BASELINE_OF.items():
        if base in results:
            print(f"{ours}: {results[base][0] / results[ours][0]:.0f}x faster than {base}")


if __name__ == "__main__":
    main()
