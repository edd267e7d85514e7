"""From a model to a verdict: a small torch MLP on sklearn's digits.

1. Estimate the curvature with Hessian-vector products only: the top eigenvalue by Lanczos (with
   its residual) and the spectral density by stochastic Lanczos quadrature.
2. Check an SGD config against the sharpness, and with mini-batch noise against the density.
3. Take a few AdamW steps, read its preconditioner, and check the AdamW config against the
   preconditioned sharpness (the eigenvalues of P^-1 H).

Writes ``model_to_verdict.png`` (the density, the sharpness and the SGD threshold). Needs torch
and scikit-learn.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits

import stability as stb
from stability.training import curvature as cv


def loss_fn(out, target):
    return torch.nn.functional.cross_entropy(out, target)


def main(out: str = "model_to_verdict.png") -> None:
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X[:1000] / 16.0, dtype=torch.float64)
    y = torch.tensor(y[:1000])
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10)
    ).double()
    data = (X, y)

    top = cv.sharpness(model, loss_fn, data, k=1, tol=1e-8)
    dens = cv.hessian_density(model, loss_fn, data, probes=6, steps=50)
    neg, flat, pos = dens.split()
    print(
        f"sharpness {top.sharpness:.5g} (residual {top.residuals[0]:.1e}, "
        f"{top.matvecs} Hessian-vector products); density from {dens.matvecs} products: "
        f"{pos:.1%} clearly positive, {flat:.1%} flat (within 1e-3 of the top of zero, either "
        f"sign: SLQ cannot resolve the sign there), {neg:.1%} clearly negative"
    )

    sgd = {"optimizer": "sgd", "lr": 0.5, "momentum": 0.9}
    print("\n" + str(stb.check(sgd, lambda_max=top.sharpness)))
    print("\n" + str(stb.check(sgd, spectrum=dens.spectrum, batch_size=32)))

    adamw = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    for _ in range(20):
        adamw.zero_grad()
        loss_fn(model(X), y).backward()
        adamw.step()
    matvec, n = cv.hessian_matvec(model, loss_fn, data)
    pre = cv.top_eigenvalues(cv.preconditioned(matvec, cv.adam_preconditioner(adamw)), n)
    print("\n" + str(stb.check(adamw, lambda_max=pre.sharpness)))

    fig, ax = plt.subplots(figsize=(7, 5.4))
    keep = dens.nodes > 0
    ax.hist(
        dens.nodes[keep],
        bins=np.geomspace(dens.nodes[keep].min(), top.sharpness * 1.2, 40),
        weights=dens.weights[keep],
        color="C0",
        alpha=0.7,
        label=f"SLQ density above zero ({flat:.0%} of the spectrum is flat, {neg:.1%} clearly < 0)",
    )
    ax.axvline(top.sharpness, color="C1", lw=2, label=f"sharpness (Lanczos) {top.sharpness:.3g}")
    limit = stb.check(sgd, lambda_max=1.0).strict["lambda_crit"]
    ax.axvline(
        limit, color="C3", ls="--", lw=2, label=f"SGD lr 0.5, momentum 0.9: threshold {limit:.3g}"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Hessian eigenvalue (curvature)")
    ax.set_ylabel("number of eigenvalues")
    ax.set_title("tanh MLP on sklearn digits: Hessian spectrum at initialisation")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
