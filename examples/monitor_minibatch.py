"""The stability monitor on a mini-batch run that is pushed over its edge.

A tanh MLP on sklearn's digits (MSE on one-hot targets) trained by ``torch.optim.SGD`` with
momentum 0.9 at batch size 8, its learning rate raised 3 % per step by an ``ExponentialLR``
until the run blows up (the loss on the monitored samples above 1000x its start). The monitor
watches with the training ``DataLoader`` (so its ratio is the one of the mini-batch run: the
learning rate over the mean-square limit at B = 8, beside the sharpness over the full-batch
threshold) and the scheduler (so it predicts the step the schedule passes the limit).

The figure (``monitor_minibatch.png``): left, the monitor's two ratios against the step with
the edge at 1, the predicted crossing and the blow-up; right, the loss on the monitored
samples. The full-batch ratio stays below 1 until the run has collapsed (0.25 at the step the
mean-square ratio passes 1): without the batch size the monitor would have seen the blow-up
only as it happened. The prediction made at step 1 (the curvature of step 1) comes some 20
steps before the ratio actually crosses, as the limit rises with training. About 10 s. Needs
torch and scikit-learn.
"""

from __future__ import annotations

import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def run(B: int = 8, momentum: float = 0.9, gamma: float = 1.03, seed: int = 0):
    import torch
    from sklearn.datasets import load_digits

    from stability.training import StabilityMonitor

    X, y = load_digits(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / (X.std(0) + 1e-8), dtype=torch.float32)
    Y = torch.nn.functional.one_hot(torch.tensor(y), 10).float()
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10))
    loss_fn = torch.nn.MSELoss()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=momentum)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, Y), batch_size=B, shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    watched = torch.randperm(len(X), generator=torch.Generator().manual_seed(1))[:256]
    events = []
    monitor = StabilityMonitor(
        net, loss_fn, opt, (X[watched], Y[watched]), scheduler=sched, loader=loader,
        on_unstable=events.append,
    )  # fmt: skip
    losses, step = [], 0
    while True:
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(net(xb), yb).backward()
            opt.step()
            sched.step()
            step += 1
            monitor.step()
            with torch.no_grad():
                losses.append(float(loss_fn(net(X[watched]), Y[watched])))
            if not math.isfinite(losses[-1]) or losses[-1] > 1000 * losses[0]:
                return monitor, events, losses, step


def main(out: str = "monitor_minibatch.png") -> None:
    from stability import plots

    monitor, events, losses, blow = run()
    first = events[0] if events else None
    print(f"blow-up (loss > 1000x its start) at step {blow}")
    if first is not None:
        print(f"first warning at step {first.step}: {first}")
    for r in monitor.history:
        print(f"  step {r.step:4d}: lr {r.lr:.4g}, lr / mean-square limit {r.noise_ratio:.3g}, "
              f"sharpness / threshold {r.sharpness_ratio:.3g}")  # fmt: skip
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    plots.plot_monitor(monitor.history, ax=ax)
    ax.axvline(blow, color="tab:purple", lw=1.2, label=f"blow-up (step {blow})")
    ax.legend(fontsize=8, loc="upper left")
    bx.semilogy(range(1, len(losses) + 1), losses, label="loss on the monitored samples")
    if first is not None:
        bx.axvline(first.step, color="tab:red", ls=":", label=f"first warning (step {first.step})")
    bx.axvline(blow, color="tab:purple", lw=1.2, label=f"blow-up (step {blow})")
    bx.set_xlabel("optimizer step")
    bx.set_ylabel("MSE loss (256 monitored samples)")
    bx.set_title("the run: lr x1.03 per step, B = 8, momentum 0.9")
    bx.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
