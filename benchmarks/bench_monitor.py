"""The stability monitor on real training runs (issue 25): lead time and cost.

**Lead time.** Induced instabilities and healthy runs, each trained by torch in this process
with the monitor at its defaults (``every="auto"``, 5 % overhead budget) watching:

* learning-rate ramps past the edge (``ExponentialLR``, the scheduler given to the monitor),
  MSE on one-hot targets, sklearn's wine (tanh MLP) and digits (tanh MLP), B in {1, 8, 32},
  momentum in {0, 0.9};
* the same ramps with the scheduler *not* given to the monitor (a manual ramp);
* SGD at a constant learning rate above the mean-square edge but below the full-batch one
  (digits, B = 1 and 4, momentum 0.9: the full-batch ratio is far below 1);
* Adam spikes from ``v_t`` decay (least squares trained to convergence, Bai et al. 2025),
  two settings;
* a small transformer (one encoder layer, width 32) on a synthetic next-token task, Adam at a
  high learning rate, ramped;
* healthy runs: small MLPs at their best learning rate (momentum 0.9, B = 32, 10 epochs) on
  digits, wine and breast_cancer, cross-entropy and MSE.

For each run: the step of the monitor's first warning, the step of the blow-up (the loss on the
monitored data non-finite or above 1000x its start; for Adam spikes, 10x its best), and the same
for two detectors used today, from the same run: a **10x-loss rule** (the batch loss above 10x
the median of the previous 100 batch losses, Megatron-style) and a **gradient-norm z-score**
(ZClip-style: an exponential mean and variance of the gradient norm, alpha = 0.97, 25 warm-up
steps; fires at z > 3). Lead = blow-up step - warning step (positive: before); "said" is the
crossing step the monitor's first warning named (a schedule's or a trend's), for its accuracy.

**Cost.** An MLP with 1.07e6 parameters (784-1024-256-10, ReLU, cross-entropy, B = 128, SGD
momentum 0.9, 5,000 steps on 8,192 synthetic samples; the monitor on 256 of them with the
loader's batch size): the wall time with the monitor at its defaults against without, in one
process, and the monitor's own share of the run (``monitor.overhead_measured``).

Usage: ``python benchmarks/bench_monitor.py [--skip-cost] [--skip-lead]``
"""

from __future__ import annotations

import math
import statistics
import sys
import time
import warnings

import numpy as np
import torch

from stability.training import StabilityMonitor

torch.set_num_threads(1)
warnings.simplefilter("ignore")


# ---------------------------------------------------------------------------------------
# data and models
# ---------------------------------------------------------------------------------------


def _sk(name: str):
    from sklearn import datasets

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / (X.std(0) + 1e-8), dtype=torch.float32)
    return X, torch.tensor(y)


def _mlp(d: int, k: int, act=torch.nn.Tanh, widths=(32,), seed=0):
    torch.manual_seed(seed)
    layers, w = [], d
    for h in widths:
        layers += [torch.nn.Linear(w, h), act()]
        w = h
    return torch.nn.Sequential(*layers, torch.nn.Linear(w, k))


# ---------------------------------------------------------------------------------------
# one run: the series every detector reads
# ---------------------------------------------------------------------------------------


def _train(net, loss_fn, opt, X, T, *, B, steps, sched=None, give_sched=True, spike=False):
    """Train, watched by the monitor; returns the per-step batch losses, gradient norms, the
    monitored loss, the monitor's events, and the monitor."""
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, T), batch_size=B, shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    idx = torch.randperm(len(X), generator=torch.Generator().manual_seed(1))[:256]
    mdata = (X[idx], T[idx])
    events: list = []
    mon = StabilityMonitor(
        net, loss_fn, opt, mdata, scheduler=sched if give_sched else None,
        loader=loader if B < len(X) else None, on_unstable=events.append,
    )  # fmt: skip
    batch, grad, watched = [], [], []
    t = 0
    while t < steps:
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            g = torch.sqrt(sum((p.grad**2).sum() for p in net.parameters() if p.grad is not None))
            opt.step()
            if sched is not None:
                sched.step()
            mon.step()
            with torch.no_grad():
                w = float(loss_fn(net(mdata[0]), mdata[1]))
            batch.append(float(loss.detach()))
            grad.append(float(g))
            watched.append(w)
            t += 1
            if not math.isfinite(w) or w > 1e6 * max(watched[0], 1e-12):
                return batch, grad, watched, events, mon
            if t >= steps:
                break
    return batch, grad, watched, events, mon


def _blowup(watched: list[float], spike: bool) -> int | None:
    w = np.array(watched)
    if spike:
        best = np.minimum.accumulate(w)
        hits = [t for t in range(1, w.size) if w[t] > 10 * best[t - 1] and best[t - 1] < 1e-2]
    else:
        hits = [t for t in range(w.size) if not math.isfinite(w[t]) or w[t] > 1000 * w[0]]
    return hits[0] + 1 if hits else None  # steps count from 1


def _ten_x(batch: list[float]) -> int | None:
    for t in range(10, len(batch)):
        ref = statistics.median(batch[max(0, t - 100) : t])
        if not math.isfinite(batch[t]) or batch[t] > 10 * ref:
            return t + 1
    return None


def _zscore(grad: list[float], alpha: float = 0.97, warm: int = 25, z: float = 3.0):
    mean, var = grad[0], 0.0
    for t in range(1, len(grad)):
        g = grad[t]
        if not math.isfinite(g):
            return t + 1
        if t >= warm and var > 0 and (g - mean) / math.sqrt(var) > z:
            return t + 1
        d = g - mean
        mean += (1 - alpha) * d
        var = alpha * (var + (1 - alpha) * d * d)
    return None


# ---------------------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------------------


def _ramp(name, B, mu, give_sched=True, gamma=1.03):
    X, y = _sk(name)
    k = int(y.max()) + 1
    T = torch.nn.functional.one_hot(y, k).float()
    net = _mlp(X.shape[1], k, seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=mu)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma)
    return _train(net, torch.nn.MSELoss(), opt, X, T, B=B, steps=600, sched=sched,
                  give_sched=give_sched)  # fmt: skip


def _constant(B, lr):
    X, y = _sk("digits")
    T = torch.nn.functional.one_hot(y, 10).float()
    net = _mlp(64, 10, seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    return _train(net, torch.nn.MSELoss(), opt, X, T, B=B, steps=2000)


def _adam_spike(lr, beta2):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 20, generator=g, dtype=torch.float64) * torch.linspace(0.3, 2, 20)
    Y = X @ torch.randn(20, 1, generator=g, dtype=torch.float64)
    torch.manual_seed(1)
    net = torch.nn.Linear(20, 1, bias=False).double()
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, beta2))
    return _train(net, torch.nn.MSELoss(), opt, X, Y, B=200, steps=8000, spike=True)


class _TinyTransformer(torch.nn.Module):
    def __init__(self, vocab=16, width=32, length=12):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.pos = torch.nn.Parameter(torch.randn(length, width) * 0.1)
        self.layer = torch.nn.TransformerEncoderLayer(width, 4, 64, dropout=0.0, batch_first=True)
        self.out = torch.nn.Linear(width * length, vocab)

    def forward(self, x):
        h = self.layer(self.embed(x) + self.pos)
        return self.out(h.flatten(1))


def _transformer(B):
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 16, (1024, 12), generator=g)
    y = (X.sum(1) * 7 + X[:, 0]) % 16  # a next-token rule to learn
    torch.manual_seed(0)
    net = _TinyTransformer()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, 1.02)
    return _train(net, torch.nn.CrossEntropyLoss(), opt, X, y, B=B, steps=600, sched=sched)


def _healthy(name, act, loss, lr):
    X, y = _sk(name)
    k = int(y.max()) + 1
    T = y if loss == "ce" else torch.nn.functional.one_hot(y, k).float()
    A = torch.nn.ReLU if act == "relu" else torch.nn.Tanh
    net = _mlp(X.shape[1], k, act=A, widths=(32, 32), seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    fn = torch.nn.CrossEntropyLoss() if loss == "ce" else torch.nn.MSELoss()
    steps = 10 * math.ceil(len(X) / 32)
    return _train(net, fn, opt, X, T, B=32, steps=steps)


def _cases():
    for name in ("wine", "digits"):
        for B in (1, 8, 32):
            for mu in (0.0, 0.9):
                yield (
                    f"ramp {name} B={B} mu={mu}",
                    "unstable",
                    lambda n=name, b=B, m=mu: _ramp(n, b, m),
                )
    for B, mu in ((1, 0.9), (8, 0.0), (32, 0.9)):
        yield (f"manual ramp digits B={B} mu={mu}", "unstable",
               lambda b=B, m=mu: _ramp("digits", b, m, give_sched=False))  # fmt: skip
    for B, lr in ((1, 0.11), (4, 0.3)):
        yield f"constant lr {lr} digits B={B} mu=0.9", "unstable", lambda b=B, r=lr: _constant(b, r)
    for lr, beta2 in ((0.01, 0.999), (0.02, 0.99)):
        yield (f"Adam v_t decay lr={lr} beta2={beta2}", "spike",
               lambda r=lr, b=beta2: _adam_spike(r, b))  # fmt: skip
    yield "transformer Adam ramp B=64", "unstable", lambda: _transformer(64)
    # healthy: the best lr of a sqrt(2) grid, 10 epochs, B = 32, momentum 0.9
    for name, act, loss, lr in (
        ("digits", "relu", "ce", 0.04), ("wine", "tanh", "ce", 0.113),
        ("breast_cancer", "relu", "ce", 0.113), ("digits", "relu", "mse", 0.32),
        ("breast_cancer", "tanh", "mse", 0.453),
    ):  # fmt: skip
        yield (f"healthy {name} {act} {loss} lr={lr}", "healthy",
               lambda n=name, a=act, lo=loss, r=lr: _healthy(n, a, lo, r))  # fmt: skip


def lead_table() -> None:
    print(f"{'case':44s} {'blow-up':>8s} | {'monitor':>8s} {'lead':>6s} {'said':>6s} | "
          f"{'10x loss':>8s} {'lead':>6s} | {'z-score':>8s} {'lead':>6s} | share")  # fmt: skip
    leads: dict[str, list] = {"monitor": [], "10x": [], "z": []}
    false = {"monitor": 0, "10x": 0, "z": 0}
    healthy = 0
    for name, kind, run in _cases():
        t0 = time.perf_counter()
        batch, grad, watched, events, mon = run()
        blow = _blowup(watched, kind == "spike")
        firsts = {
            "monitor": events[0].step if events else None,
            "10x": _ten_x(batch),
            "z": _zscore(grad),
        }
        cells = []
        for key, step in firsts.items():
            lead = (blow - step) if (blow is not None and step is not None) else None
            if kind == "healthy":
                false[key] += step is not None
            elif blow is not None:
                leads[key].append(lead if lead is not None and lead >= 0 else None)
            cell = f"{step if step is not None else '-':>8} {lead if lead is not None else '-':>6}"
            if key == "monitor":  # the step the first warning named (a crossing), if any
                said = events[0].crossing_step if events else None
                cell += f" {said if said is not None else '-':>6}"
            cells.append(cell)
        healthy += kind == "healthy"
        print(f"{name:44s} {blow if blow is not None else '-':>8} | " + " | ".join(cells)
              + f" | {mon.overhead_measured:.2f} ({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    print()
    for key, label in (("monitor", "the monitor"), ("10x", "10x-loss rule"), ("z", "grad-norm z")):
        got = [x for x in leads[key] if x is not None]
        n = len(leads[key])
        med = statistics.median(got) if got else float("nan")
        print(f"{label:14s}: warned before {len(got)}/{n} instabilities, median lead {med:.0f} "
              f"steps; false alarms on {false[key]}/{healthy} healthy runs")  # fmt: skip


# ---------------------------------------------------------------------------------------
# cost
# ---------------------------------------------------------------------------------------


def cost(steps: int = 5000) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    n, d, k = 8192, 784, 10
    X = torch.randn(n, d)
    y = (X @ torch.randn(d, k)).argmax(1)

    def run(monitor: bool):
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Linear(d, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 256),
            torch.nn.ReLU(), torch.nn.Linear(256, k),
        )  # fmt: skip
        opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(X, y), batch_size=128, shuffle=True,
            generator=torch.Generator().manual_seed(0),
        )  # fmt: skip
        mon = (
            StabilityMonitor(net, loss_fn, opt, (X[:256], y[:256]), loader=loader)
            if monitor
            else None
        )
        start, t = time.perf_counter(), 0
        while t < steps:
            for xb, yb in loader:
                opt.zero_grad()
                loss_fn(net(xb), yb).backward()
                opt.step()
                t += 1
                if mon is not None:
                    mon.step()
                if t >= steps:
                    break
        params = sum(p.numel() for p in net.parameters())
        return time.perf_counter() - start, mon, params

    plain1, _, params = run(False)
    watched, mon, _ = run(True)
    plain2, _, _ = run(False)
    plain = (plain1 + plain2) / 2
    print(f"MLP {params:,} parameters, {steps} steps of B = 128: without the monitor "
          f"{plain1:.1f} / {plain2:.1f} s, with it {watched:.1f} s: {watched / plain - 1:+.1%} "
          f"wall time (the two plain runs differ by {abs(plain1 - plain2) / plain:.1%}); the "
          f"monitor's own share of its run {mon.overhead_measured:.1%} (budget 5 %); "
          f"{len(mon.history)} checks, {statistics.mean(r.seconds for r in mon.history):.2f} s "
          f"each (first {mon.history[0].seconds:.2f} s)")  # fmt: skip


if __name__ == "__main__":
    if "--skip-lead" not in sys.argv:
        lead_table()
    if "--skip-cost" not in sys.argv:
        cost()
