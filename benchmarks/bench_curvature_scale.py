"""Curvature at scale (docs §6.6), against what a user would otherwise run, in the same run:

1. **lambda_max of an MLP with ~1e6 parameters** to 1e-3 relative: Hessian-vector products
   and seconds of the torch-native Lanczos (:func:`stability.training.sharpness`) against
   scipy's ARPACK on the same products through numpy (``top_eigenvalues(hessian_matvec)``),
   both against a tight reference.
2. **Time per HVP**: :class:`~stability.training.HessianOperator` against a raw
   ``torch.autograd.grad`` HVP that rebuilds the graph (what a user writes), and against a raw
   HVP through a kept graph.
3. **SLQ memory**: peak RSS of a fresh process running SLQ with a re-orthogonalisation window
   of 4 and of 32 vectors, against the stated bound ``(window + 6) P`` numbers.
4. **The monitor** on a digits MLP: a check's time against the raw cost of the HVPs it used,
   and the training overhead at ``every=10`` next to the unwatched run.

Usage: ``python benchmarks/bench_curvature_scale.py``
"""

from __future__ import annotations

import subprocess
import sys
import time

import torch

from stability.training import HessianOperator, sharpness
from stability.training.curvature import hessian_matvec
from stability.training.estimators import top_eigenvalues


def mlp_1e6():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 1024), torch.nn.Tanh(), torch.nn.Linear(1024, 256), torch.nn.Tanh(),
        torch.nn.Linear(256, 10),
    )  # fmt: skip
    x = torch.randn(512, 784)
    y = torch.randint(0, 10, (512,))
    return model, torch.nn.functional.cross_entropy, (x, y)


def raw_hvp_seconds(model, loss_fn, data, repeats: int = 10) -> tuple[float, float]:
    """A raw HVP as a user writes it (graph rebuilt each time), and through a kept graph."""
    params = list(model.parameters())
    x, y = data
    v = [torch.randn_like(p) for p in params]
    start = time.perf_counter()
    for _ in range(repeats):
        g = torch.autograd.grad(loss_fn(model(x), y), params, create_graph=True)
        torch.autograd.grad(sum((a * b).sum() for a, b in zip(g, v, strict=True)), params)
    rebuilt = (time.perf_counter() - start) / repeats
    g = torch.autograd.grad(loss_fn(model(x), y), params, create_graph=True)
    start = time.perf_counter()
    for _ in range(repeats):
        dot = sum((a * b).sum() for a, b in zip(g, v, strict=True))
        torch.autograd.grad(dot, params, retain_graph=True)
    kept = (time.perf_counter() - start) / repeats
    return rebuilt, kept


def lambda_max_case() -> None:
    model, loss_fn, data = mlp_1e6()
    n = sum(p.numel() for p in model.parameters())
    ref = sharpness(model, loss_fn, data, tol=1e-7, maxiter=200).sharpness
    t = time.perf_counter()
    top = sharpness(model, loss_fn, data, tol=1e-3)
    ours = time.perf_counter() - t
    matvec, _ = hessian_matvec(model, loss_fn, data)
    t = time.perf_counter()
    arpack = top_eigenvalues(matvec, n, 1, tol=1e-3, check_symmetry=False)
    theirs = time.perf_counter() - t
    print(f"MLP with {n:,} parameters, batch 512: lambda_max reference {ref:.6g}")
    print(
        f"  torch Lanczos : {top.matvecs:3d} HVPs, {ours:6.2f} s, relative error "
        f"{abs(top.sharpness / ref - 1):.1e}   [budget: <= 30 HVPs to 1e-3]"
    )
    print(
        f"  scipy ARPACK  : {arpack.matvecs:3d} HVPs, {theirs:6.2f} s, relative error "
        f"{abs(arpack.sharpness / ref - 1):.1e}   ({theirs / ours:.1f}x the time)"
    )
    op = HessianOperator(model, loss_fn, data)
    v = torch.randn(op.n)
    op(v)  # the graph is built at the first product
    t = time.perf_counter()
    for _ in range(10):
        op(v)
    per = (time.perf_counter() - t) / 10
    rebuilt, kept = raw_hvp_seconds(model, loss_fn, data)
    print(
        f"  time per HVP  : {per * 1e3:.1f} ms ours, {rebuilt * 1e3:.1f} ms raw (graph rebuilt: "
        f"{per / rebuilt:.2f}x), {kept * 1e3:.1f} ms raw through a kept graph "
        f"({per / kept:.2f}x)   [budget: <= 1.2x raw]"
    )


SLQ_PROCESS = """
import torch
from stability.training import HessianOperator, slq
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.Tanh(), torch.nn.Linear(1024, 256),
                            torch.nn.Tanh(), torch.nn.Linear(256, 10))
x, y = torch.randn(8, 784), torch.randint(0, 10, (8,))  # a small batch: the basis dominates
op = HessianOperator(model, torch.nn.functional.cross_entropy, (x, y))
op(torch.randn(op.n))  # the graph and its memory exist before SLQ starts
def peak():  # VmHWM: this process's own peak (ru_maxrss would carry the parent's across exec)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    return int(line.split()[1]) * 1024
before = peak()
slq(op, probes=2, steps=40, window={window})
after = peak()
print(op.n, after - before)
"""


def slq_memory_case() -> None:
    for window in (4, 32):
        res = subprocess.run(
            [sys.executable, "-c", SLQ_PROCESS.format(window=window)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        n, extra = (int(v) for v in res.stdout.split())
        bound = (window + 6) * n * 4
        print(
            f"SLQ, window {window:2d}: peak extra memory {extra / 2**20:7.1f} MiB, stated bound "
            f"(window + 6) P = {bound / 2**20:7.1f} MiB ({'within' if extra <= bound else 'ABOVE'})"
        )


def monitor_case() -> None:
    from sklearn.datasets import load_digits

    from stability.training import StabilityMonitor

    X, y = load_digits(return_X_y=True)
    x = torch.tensor(X[:1000] / 16, dtype=torch.float32)
    t = torch.tensor(y[:1000])

    def train(watch: bool):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10)
        )
        loss_fn = torch.nn.functional.cross_entropy
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        mon = None
        if watch:
            mon = StabilityMonitor(model, loss_fn, opt, (x, t), every=10, on_unstable=lambda r: 0)
        start = time.perf_counter()
        for _ in range(300):
            opt.zero_grad()
            loss_fn(model(x), t).backward()
            opt.step()
            if mon is not None:
                mon.step()
        return time.perf_counter() - start, mon, model, loss_fn

    plain, _, _, _ = train(False)
    watched, mon, model, loss_fn = train(True)
    rebuilt, kept = raw_hvp_seconds(model, loss_fn, (x, t), repeats=50)
    h = mon.history
    hvps = sum(r.hvps for r in h)
    checks = sum(r.seconds for r in h)
    print(
        f"monitor, digits MLP, 300 steps, every=10: unwatched {plain:.2f} s, watched "
        f"{watched:.2f} s (+{watched - plain:.2f} s); {len(h)} checks, {hvps} HVPs "
        f"({hvps / len(h):.1f} per check), {checks * 1e3 / len(h):.2f} ms per check = "
        f"{checks / (hvps * rebuilt):.2f}x the raw cost of its HVPs ({rebuilt * 1e3:.2f} ms "
        f"each, graph rebuilt as a user writes it), {checks / (hvps * kept):.2f}x through a "
        f"kept graph ({kept * 1e3:.2f} ms)   [budget: <= 1.3x]"
    )


if __name__ == "__main__":
    lambda_max_case()
    slq_memory_case()
    monitor_case()
