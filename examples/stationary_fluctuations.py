"""Stationary fluctuations of SGD with additive noise (Liu, Ziyin and Ueda, 2021):
discrete-time variance ``lr sigma^2 / (h (2 - lr h))`` against the continuous-time
``lr sigma^2 / (2h)``; the ratio ``2/(2 - lr h)`` blows up at the stability edge.
Monte Carlo points check it.

Writes ``stationary_fluctuations.png`` (or the path given as the first argument).
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import stability as stb
from stability import fluctuations as fl


def main(out: str = "stationary_fluctuations.png") -> None:
    h, s2 = 1.0, 1.0
    ah = np.linspace(0.02, 1.95, 200)
    ratio = [float(fl.continuous_time_ratio(a, h)) for a in ah]
    rng = np.random.default_rng(0)
    mc_ah, mc_ratio = np.array([0.2, 0.8, 1.4, 1.8]), []
    for a in mc_ah:
        w, acc = np.zeros(20_000), []
        for t in range(400):
            w = w - a * (h * w + rng.normal(size=w.size))
            if t > 100:
                acc.append(w.var())
        mc_ratio.append(np.mean(acc) / (a * s2 / (2 * h)))
    hb = fl.stationary_covariance(stb.heavy_ball(0.1, 0.9), [[h]], s2).w[0, 0]
    print(
        f"SGD lr=0.1: Var = {float(fl.sgd_variance(0.1, h, s2)):.10f}; "
        f"heavy ball beta=0.9: Var = {hb:.10f}"
    )
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.semilogy(ah, ratio, label="exact: 2/(2 - lr h)")
    ax.semilogy(mc_ah, mc_ratio, "o", label="Monte Carlo")
    ax.axvline(2.0, color="r", ls="--", label="stability edge lr h = 2")
    ax.set_xlabel("lr h (learning rate x curvature)")
    ax.set_ylabel("Var (discrete) / Var (continuous time)")
    ax.set_title("SGD fluctuations: discrete vs continuous time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
