"""find_lr on a practitioner's MLP, beside the limit real training runs survive.

A ReLU MLP (20-32-32-3) on sklearn's ``make_classification`` (600 samples, standardised),
cross-entropy, ``torch.optim.SGD`` with momentum 0.9 at batch size 32, 10 epochs. ``find_lr``
gives the quadratic edge at the start, its probes and its answer; then the example measures
what training survives the way the benchmark does: for each of three shuffles, constant-lr
10-epoch runs on a grid a factor 2^(1/4) apart, the largest lr whose run neither produced a
non-finite loss nor a loss above 1000x its start.

The figure (``find_lr_mlp.png``): every probe's peak loss against its learning rate, marked by
what it did, with the edge, ``largest_stable_lr``, ``recommended_lr`` and the measured limit
(the median of the shuffles; the band spans the three). About 30 s. Needs torch and
scikit-learn. ``--quick`` skips the measured limit; ``--out FILE`` names the figure (the
README's is ``docs/figures/find_lr_mlp.png``).
"""

from __future__ import annotations

import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def problem():
    import numpy as np
    import torch
    from sklearn.datasets import make_classification

    X, y = make_classification(600, 20, n_informative=8, n_classes=3, random_state=0)
    X = (X - X.mean(0)) / X.std(0)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(20, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
        torch.nn.Linear(32, 3),
    )  # fmt: skip
    return net, torch.tensor(X, dtype=torch.float32), torch.tensor(np.asarray(y))


def survives(net, X, y, lr, momentum, B, epochs, seed) -> bool:
    """One 10-epoch torch run on a copy of ``net``: no non-finite loss, none above 1000x."""
    import copy

    import torch

    net = copy.deepcopy(net)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, y), batch_size=B, shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    with torch.no_grad():
        start = float(loss_fn(net(X), y))
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            v = float(loss.detach())
            if not math.isfinite(v) or v > 1000 * start:
                return False
    return True


def measured_limit(net, X, y, momentum, B, epochs, start, seeds=(0, 1, 2)):
    """Per shuffle, the largest grid lr (factor 2^(1/4), upward from ``start``) that survives."""
    out = []
    for seed in seeds:
        lr, last = start, 0.0
        while survives(net, X, y, lr, momentum, B, epochs, seed) and lr < 1e4:
            last, lr = lr, lr * 2**0.25
        out.append(last)
    return out


def main(out: str = "find_lr_mlp.png", quick: bool = False):
    import statistics

    import torch

    from stability.training import find_lr

    torch.set_num_threads(1)
    net, X, y = problem()
    momentum, B, epochs = 0.9, 32, 10
    res = find_lr(net, torch.nn.CrossEntropyLoss(), (X, y),
                  {"optimizer": "sgd", "momentum": momentum}, B, epochs=epochs)  # fmt: skip
    print(res)
    fig, ax = plt.subplots(figsize=(11, 5))
    truth = None
    if not quick:
        limits = measured_limit(net, X, y, momentum, B, epochs, res.largest_stable_lr / 8)
        truth = statistics.median(limits)
        print(f"measured: 10-epoch runs survive up to {', '.join(f'{v:.3g}' for v in limits)} "
              f"(three shuffles; median {truth:.3g}); find_lr / measured = "
              f"{res.largest_stable_lr / truth:.2f}")  # fmt: skip
        ax.axvspan(min(limits), max(limits), color="tab:red", alpha=0.12,
                   label="measured limit over three shuffles")  # fmt: skip
    res.plot(ax=ax, truth=truth)
    ax.set_title("find_lr: ReLU MLP, cross-entropy, SGD momentum 0.9, B = 32")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    return res, truth


if __name__ == "__main__":
    args = sys.argv[1:]
    out = args[args.index("--out") + 1] if "--out" in args else "find_lr_mlp.png"
    main(out, quick="--quick" in args)
