"""Mini-batch stability from the data itself, against real torch training.

A linear model trained by ``torch.optim.SGD`` with ``MSELoss()`` on standardised sklearn data,
batches drawn with replacement: for each batch size ``B`` and momentum, the script asks
``stability.check(config, data=(X, Y), batch_size=B)`` for the largest stable learning rate,
then trains on a grid of learning rates around it (several seeds, every learning rate of a seed
fed the same batches) and records, per seed, the smallest learning rate at which

* the run **blows up**: the full-data loss exceeds 1000x its initial value (or overflows);
* the loss first exceeds **10x** its initial value (fires earlier where the stationary
  loss near the threshold is already large).

The data model's prediction should sit below the first and not far below the second; the
Gaussian noise model on the same curvature is shown for comparison. Writes
``minibatch_from_data.png`` (predicted and measured largest stable lr against ``B``).

``python examples/minibatch_from_data.py`` runs digits (pixels in [0, 1], and standardised:
heavy tails) with B in {1, 16} (about 40 s); ``--full`` adds diabetes, digits with ten
one-hot outputs and a tanh MLP linearised at initialisation, B in {1, 4, 16, 64}, momentum 0
and 0.9, five seeds (about 10 minutes). Needs torch and scikit-learn.
"""

from __future__ import annotations

import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_diabetes, load_digits

import stability as stb
from stability import progress

QUICK = {
    "datasets": ("digits", "digits (standardised)"),
    "batches": (1, 16),
    "momenta": (0.0, 0.9),
    "seeds": 3,
}
FULL = {
    "datasets": (
        "digits",
        "diabetes",
        "digits (10 outputs)",
        "digits (standardised)",
        "linearised MLP",
    ),
    "batches": (1, 4, 16, 64),
    "momenta": (0.0, 0.9),
    "seeds": 5,
}
GRID = 2.0 ** (np.arange(-20, 21) / 12)  # learning rates 0.31x to 3.2x the prediction, 6% apart


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Standardised features and targets (one column per output)."""
    if name.startswith("digits"):
        X, y = load_digits(return_X_y=True)
        Y = np.eye(10)[y] if "10 outputs" in name else y[:, None].astype(float)
        X = X / 16.0  # pixel intensities in [0, 1]
    else:
        X, y = load_diabetes(return_X_y=True)
        Y = y[:, None]
    if "standardised" in name or name == "diabetes":
        X = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    Y = (Y - Y.mean(0)) / Y.std(0)
    return X, Y


def measure(
    X: np.ndarray,
    Y: np.ndarray,
    B: int,
    momentum: float,
    lrs: np.ndarray,
    seeds: int,
    bias: bool = True,
) -> dict[str, np.ndarray]:
    """Train ``nn.Linear``-equivalent models with torch SGD (one param group per learning rate,
    each holding every seed's weights); per seed, the smallest learning rate whose full-data
    loss exceeded 1000x (``blow``) and 10x (``ten``) its initial value (``inf``: none did).
    Without ``bias`` the weights start at 0 (the linearised network: ``Y`` is the residual)."""
    n, d = X.shape
    m = Y.shape[1]
    Xt = torch.as_tensor(X, dtype=torch.float64)
    Yt = torch.as_tensor(Y, dtype=torch.float64)
    steps = max(2000, 5 * n // B)  # five epochs, at least 2000 steps
    every = max(1, steps // 400)
    torch.manual_seed(0)
    if bias:
        Xt = torch.cat([Xt, torch.ones(n, 1, dtype=torch.float64)], 1)
        W0 = torch.stack(
            [torch.nn.Linear(d, m).double().state_dict()["weight"].T for _ in range(seeds)]
        )  # nn.Linear's initialisation, bias 0: (seeds, d, m)
        W0 = torch.cat([W0, torch.zeros(seeds, 1, m, dtype=torch.float64)], 1)
    else:
        W0 = torch.zeros(seeds, d, m, dtype=torch.float64)
    params = [torch.nn.Parameter(W0.clone()) for _ in lrs]
    opt = torch.optim.SGD(
        [{"params": [p], "lr": float(lr)} for p, lr in zip(params, lrs, strict=True)],
        momentum=momentum,
    )
    gens = [torch.Generator().manual_seed(1000 + s) for s in range(seeds)]

    def full_loss() -> torch.Tensor:
        with torch.no_grad():
            W = torch.stack(params)  # (lrs, seeds, d + 1, m)
            return ((torch.einsum("nd,lsdm->lsnm", Xt, W) - Yt) ** 2).mean(dim=(2, 3))

    L0 = full_loss()
    worst = torch.ones_like(L0)
    for t in range(steps):
        progress.update(f"training B={B}, momentum {momentum:g}", t + 1, steps)
        idx = torch.stack([torch.randint(n, (B,), generator=g) for g in gens])  # (seeds, B)
        xb, yb = Xt[idx], Yt[idx]
        pred = torch.einsum("sbd,lsdm->lsbm", xb, torch.stack(params))
        loss = ((pred - yb) ** 2).mean(dim=(2, 3)).sum()  # each run's own MSELoss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if t % every == every - 1 or t == steps - 1:
            ratio = full_loss() / L0
            worst = torch.maximum(worst, torch.nan_to_num(ratio, nan=np.inf))
    worst = worst.numpy()

    def first(level: float) -> np.ndarray:
        over = worst > level  # (lrs, seeds)
        return np.array([lrs[np.argmax(over[:, s])] if over[:, s].any() else np.inf
                         for s in range(seeds)])  # fmt: skip

    return {"blow": first(1000.0), "ten": first(10.0)}


def predict(X: np.ndarray, Y: np.ndarray, B: int, momentum: float) -> tuple[float, float]:
    """The largest stable lr from the data, and from the Gaussian model on the same H."""
    cfg = {"optimizer": "sgd", "lr": 1e-6, "momentum": momentum}
    rep = stb.check(cfg, data=(X, Y), batch_size=B)
    return rep.max_stable_lr, rep.noise["gaussian"]["max_stable_lr"]


def linearised_mlp(B: int, momentum: float, seeds: int = 5, n: int = 500) -> dict:
    """A tanh MLP on digits at initialisation, linearised: ``f(x) ~ f0(x) + J(x) dw``. The
    prediction from its per-sample Gauss-Newton curvature (MSE, the exact subspace), against
    torch SGD on the linearised model with the same batches (its features are the per-sample
    Jacobians, its targets the residuals)."""
    X, Y = load("digits")
    x = torch.as_tensor(X[:n])
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
    ).double()
    data = stb.training.per_sample_ggn(model, "mse", x, subspace="jacobian")  # exact
    cfg = {"optimizer": "sgd", "lr": 1e-6, "momentum": momentum}
    rep = stb.check(cfg, data=data, batch_size=B)
    lr = rep.max_stable_lr
    params = dict(model.named_parameters())
    jac = torch.func.vmap(
        torch.func.jacrev(lambda p, xi: torch.func.functional_call(model, p, (xi[None],))[0, 0]),
        in_dims=(None, 0),
    )({k: v.detach() for k, v in params.items()}, x)
    J = torch.cat([jac[k].reshape(n, -1) for k in params], 1).numpy()
    with torch.no_grad():
        residual = Y[:n] - model(x).numpy()
    got = measure(J, residual, B, momentum, lr * GRID, seeds, bias=False)
    return {"data": "linearised MLP", "B": B, "momentum": momentum, "predicted": lr,
            "gaussian": rep.noise["gaussian"]["max_stable_lr"], "parameters": J.shape[1],
            "subspace": data.dim, **got}  # fmt: skip


def run(settings: dict) -> list[dict]:
    rows = []
    for name in settings["datasets"]:
        X, Y = load(name) if name != "linearised MLP" else (None, None)
        for mom in settings["momenta"]:
            for B in settings["batches"]:
                t0 = time.perf_counter()
                if X is None:
                    row = linearised_mlp(B, mom, settings["seeds"])
                else:
                    lr, gauss = predict(X, Y, B, mom)
                    got = measure(X, Y, B, mom, lr * GRID, settings["seeds"])
                    row = {"data": name, "B": B, "momentum": mom, "predicted": lr,
                           "gaussian": gauss, **got}  # fmt: skip
                row["seconds"] = time.perf_counter() - t0
                rows.append(row)
                lr, blow, ten = row["predicted"], row["blow"], row["ten"]
                print(
                    f"{name:>21} B={B:<3} momentum={mom:<4}: predicted {lr:.3g} (Gaussian "
                    f"{row['gaussian']:.3g}); blow-up at {np.median(blow):.3g} (seeds "
                    f"{np.min(blow):.3g}..{np.max(blow):.3g}), 10x at {np.median(ten):.3g}; "
                    f"predicted/first blow-up {lr / np.min(blow):.2f}, predicted/last 10x "
                    f"{lr / np.max(ten):.2f} [{row['seconds']:.0f} s]",
                    flush=True,
                )
    return rows


TITLES = {
    "digits": "digits (pixels in [0, 1]), 1 output",
    "diabetes": "diabetes (standardised)",
    "digits (10 outputs)": "digits, 10 one-hot outputs",
    "digits (standardised)": "digits, standardised pixels (heavy tails)",
    "linearised MLP": "tanh MLP linearised at init (digits)",
}


def figure(rows: list[dict], path: str) -> None:
    names = list(dict.fromkeys(r["data"] for r in rows))
    cols = min(3, len(names) + 1)
    nrows = -(-(len(names) + 1) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.9 * nrows), squeeze=False)
    flat = axes.ravel()
    for ax, name in zip(flat, names, strict=False):
        for mom, colour in zip((0.0, 0.9), ("tab:blue", "tab:red"), strict=True):
            rs = [r for r in rows if r["data"] == name and r["momentum"] == mom]
            if not rs:
                continue
            B = np.array([r["B"] for r in rs])
            lo = np.array([np.min(r["blow"]) for r in rs])
            hi = np.array([np.max(r["blow"]) for r in rs])
            ax.fill_between(
                B,
                lo,
                hi,
                color=colour,
                alpha=0.18,
                lw=0,
                label=f"blow-up, range over seeds (momentum {mom:g})",
            )
            ax.plot(
                B,
                [np.median(r["blow"]) for r in rs],
                "o-",
                color=colour,
                label=f"measured blow-up, median (momentum {mom:g})",
            )
            ax.plot(
                B,
                [r["predicted"] for r in rs],
                "s--",
                color=colour,
                mfc="none",
                label=f"predicted from the data (momentum {mom:g})",
            )
            ax.plot(B, [r["gaussian"] for r in rs], "x:", color=colour,
                    label=f"Gaussian noise model (momentum {mom:g})")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size B")
        ax.set_ylabel("largest stable learning rate")
        ax.set_title(TITLES.get(name, name), fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = flat[0].get_legend_handles_labels()
    legend_ax = flat[len(names)]
    legend_ax.axis("off")
    legend_ax.legend(handles, labels, loc="center", fontsize=8,
                     title="torch SGD, MSELoss, batches with replacement")  # fmt: skip
    for ax in flat[len(names) + 1 :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(path: str = "minibatch_from_data.png", full: bool = False) -> list[dict]:
    with progress.reporting(True):  # a progress line on stderr while runs take long
        rows = run(FULL if full else QUICK)
    figure(rows, path)
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main(full="--full" in sys.argv[1:])
