"""The largest learning rate real training survives, measured (the truth ``find_lr`` answers to;
issue 26), beside the quadratic predictions at initialisation.

Each cell is (data set, network, loss, momentum, batch size). The truth follows the protocol
of the issue: ``torch.optim.SGD`` for ``--epochs`` epochs (10) with a shuffled ``DataLoader``
(the last partial batch kept), a run **diverges** when its loss (the batch loss at every step,
the full-data loss at every epoch's end) is non-finite or above 1000x its initial full-data
value; learning rates on a grid a factor sqrt(2) apart from a low start until the first
divergent one, refined by bisection to a factor 2^(1/8) (9 %); per seed the largest surviving
learning rate; the cell's value is the median over ``--seeds`` (3) seeds. A run that survives
but ends with a full-data loss at or above its initial value is **degraded** (cross-entropy
saturating, a ReLU network dying): counted as surviving, and reported; the largest tried lr
whose run survived *without* degrading (median over seeds) is reported beside the truth.

Beside it, at initialisation: ``2(1+mu)/lambda_max`` (the full-batch threshold on the Hessian's
top eigenvalue) and the data model's largest stable lr at the cell's batch size from the
per-sample Gauss-Newton curvature (``per_sample_ggn``, the top 8 directions, batches as
independent subsets), and their ratios to the truth. Cost: the training steps the truth took.

Results go to ``--out`` (JSON lines, one per cell, appended; cells already there are skipped).

Usage: ``python benchmarks/lr_truth.py [--cells N] [--epochs 10] [--seeds 3] [--out FILE]``
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)


def datasets():
    from sklearn import datasets as d

    def standard(X):
        X = np.asarray(X, dtype=float)
        return (X - X.mean(0)) / (X.std(0) + 1e-8)

    X, y = d.load_iris(return_X_y=True)
    yield "iris", standard(X), y, "classification"
    X, y = d.make_moons(400, noise=0.2, random_state=0)
    yield "moons", standard(X), y, "classification"
    X, y = d.make_classification(600, 20, n_informative=8, n_classes=3, random_state=0)
    yield "classification", standard(X), y, "classification"
    X, y = d.load_digits(return_X_y=True)
    yield "digits", standard(X), y, "classification"
    X, y = d.load_diabetes(return_X_y=True)
    yield "diabetes", standard(X), (y - y.mean()) / y.std(), "regression"
    X, y = d.make_classification(5000, 20, n_informative=8, n_classes=3, random_state=1)
    yield "classification5k", standard(X), y, "classification"  # budget-sized: 2 epochs go far
    rng = np.random.default_rng(0)  # a teacher network: tanh, 10 inputs, 3 outputs
    X = rng.standard_normal((500, 10))
    W1, W2 = rng.standard_normal((10, 16)) / 3, rng.standard_normal((16, 3)) / 4
    yield "teacher", X, np.tanh(X @ W1) @ W2, "regression"


def network(d, k, kind, seed):
    torch.manual_seed(seed)
    if kind == "tanh":
        return torch.nn.Sequential(torch.nn.Linear(d, 32), torch.nn.Tanh(), torch.nn.Linear(32, k))
    return torch.nn.Sequential(
        torch.nn.Linear(d, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
        torch.nn.Linear(32, k),
    )  # fmt: skip


def cells():
    for name, X, y, task in datasets():
        losses = ("mse", "ce") if task == "classification" else ("mse",)
        for net in ("tanh", "relu"):
            for loss in losses:
                for mu in (0.0, 0.9):
                    for B in (1, 8, 32, 128):
                        if B == 1 and len(X) > 600:
                            continue  # B = 1 on the larger sets: too many steps for 10 epochs
                        if B >= len(X) or (B < 32 and len(X) > 2000):
                            continue  # (small batches on the 5,000-sample set: too slow)
                        yield name, X, y, task, net, loss, mu, B


def tensors(X, y, task, loss):
    x = torch.tensor(X, dtype=torch.float32)
    if task == "regression":
        t = torch.tensor(np.asarray(y, dtype=float).reshape(len(X), -1), dtype=torch.float32)
        return x, t, t.shape[1]
    k = int(np.max(y)) + 1
    labels = torch.tensor(y)
    if loss == "ce":
        return x, labels, k
    return x, torch.nn.functional.one_hot(labels, k).float(), k


def run(x, t, k, net_kind, loss, mu, B, lr, seed, epochs):
    """(diverged, degraded, steps) of one training run."""
    net = network(x.shape[1], k, net_kind, seed=0)  # the same initialisation for every run
    loss_fn = torch.nn.CrossEntropyLoss() if loss == "ce" else torch.nn.MSELoss()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=mu)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, t), batch_size=B, shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    with torch.no_grad():
        start = float(loss_fn(net(x), t))
    steps = 0
    for _ in range(epochs):
        for xb, tb in loader:
            opt.zero_grad()
            batch = loss_fn(net(xb), tb)
            batch.backward()
            opt.step()
            steps += 1
            value = float(batch.detach())
            if not math.isfinite(value) or value > 1000 * start:
                return True, False, steps
        with torch.no_grad():
            full = float(loss_fn(net(x), t))
        if not math.isfinite(full) or full > 1000 * start:
            return True, False, steps
    return False, full >= start, steps


def largest_surviving(x, t, k, net_kind, loss, mu, B, seed, epochs, start):
    """The largest surviving lr of one seed (sqrt(2) grid up, then bisection to 2^(1/8)),
    the steps it took, whether the run at that lr degraded, and the largest lr tried whose run
    survived without degrading (the one that still makes progress; on the tried points)."""
    state = {"steps": 0, "lo": None, "hi": None, "degraded": False, "progress": 0.0}

    def attempt(lr):
        div, deg, s = run(x, t, k, net_kind, loss, mu, B, lr, seed, epochs)
        state["steps"] += s
        if div:
            state["hi"] = lr
        else:
            state["lo"], state["degraded"] = lr, deg
            if not deg:
                state["progress"] = max(state["progress"], lr)

    lr = start
    while state["hi"] is None:
        attempt(lr)
        lr *= math.sqrt(2)
        if state["hi"] is None and lr > 1e4:
            return math.inf, state["steps"], state["degraded"], state["progress"]
    if state["lo"] is None:
        return 0.0, state["steps"], False, 0.0  # diverges at the start of the grid: below it
    while state["hi"] / state["lo"] > 2 ** (1 / 8):
        attempt(math.sqrt(state["lo"] * state["hi"]))
    return state["lo"], state["steps"], state["degraded"], state["progress"]


def predictions(x, t, k, net_kind, loss, mu, B):
    import stability as stb
    from stability.training import per_sample_ggn, sharpness

    net = network(x.shape[1], k, net_kind, seed=0)
    loss_fn = torch.nn.CrossEntropyLoss() if loss == "ce" else torch.nn.MSELoss()
    lam = sharpness(net, loss_fn, (x, t), tol=1e-4).sharpness
    curv = per_sample_ggn(net, "cross_entropy" if loss == "ce" else "mse", x, subspace="top",
                          rank=8, tol=1e-4)  # fmt: skip
    rep = stb.check({"optimizer": "sgd", "lr": 0.01, "momentum": mu}, data=curv, batch_size=B,
                    sampling="without_replacement")  # fmt: skip
    return 2 * (1 + mu) / lam, float(rep.max_stable_lr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default="lr_truth.jsonl")
    a = ap.parse_args()
    out = Path(a.out)
    done = set()
    if out.exists():
        done = {tuple(json.loads(line)["cell"]) for line in out.read_text().splitlines() if line}
    for count, (name, X, y, task, net_kind, loss, mu, B) in enumerate(cells()):
        if count >= a.cells:
            break
        cell = (name, net_kind, loss, mu, B)
        if cell in done:
            continue
        t0 = time.perf_counter()
        x, t, k = tensors(X, y, task, loss)
        threshold, edge = predictions(x, t, k, net_kind, loss, mu, B)
        start = 2 ** math.floor(math.log2(max(min(edge, threshold) / 16, 1e-4)))
        per_seed, steps, degraded, progress = [], 0, [], []
        for seed in range(a.seeds):
            lr, s, deg, prog = largest_surviving(
                x, t, k, net_kind, loss, mu, B, seed, a.epochs, start
            )
            per_seed.append(lr)
            steps += s
            degraded.append(deg)
            progress.append(prog)
        truth = statistics.median(per_seed)
        row = {
            "cell": list(cell), "truth": truth, "per_seed": per_seed, "degraded": degraded,
            "largest_with_progress": statistics.median(progress),
            "threshold_2(1+mu)/lambda_max": threshold, "edge_data_model": edge,
            "threshold/truth": threshold / truth if truth > 0 else math.inf,
            "edge/truth": edge / truth if truth > 0 else math.inf,
            "truth_steps": steps, "seconds": round(time.perf_counter() - t0, 1),
            "steps_per_epoch": math.ceil(len(X) / B),
        }  # fmt: skip
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{' '.join(map(str, cell)):40s} truth {truth:.4g} (seeds {per_seed}) "
              f"edge/truth {row['edge/truth']:.2f} threshold/truth "
              f"{row['threshold/truth']:.2f} degraded {sum(degraded)}/{len(degraded)} "
              f"[{row['seconds']} s]", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
