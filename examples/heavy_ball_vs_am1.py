"""Theorem 7: stability sums of heavy ball and a q0 > 0 memory-1 method at equal effective
learning rate, with 1 - beta = alpha_eff^-kappa, on a power law (nu = 2) with batch size 64.

Heavy ball's U grows like alpha_eff (eq. 26) and crosses 1. The q0 > 0 method stays bounded
when kappa >= nu/(nu - 1) = 2, but grows with kappa = 1 (all three are plotted).
Writes ``heavy_ball_vs_am1.png`` (or the path given as the first argument).
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from stability import noise as nz
from stability import plots
from stability.noise import curves


def main(out: str = "heavy_ball_vs_am1.png") -> None:
    spec = nz.power_law(2.0, N=2000).truncated(2000)
    a_eff = np.geomspace(2, 1e4, 12)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    hb, m1 = curves.heavy_ball_vs_memory1(spec, 64, a_eff, q0=0.5, kappa=2.0)
    _, m1_k1 = curves.heavy_ball_vs_memory1(spec, 64, a_eff, q0=0.5, kappa=1.0)
    plots.plot_heavy_ball_vs_memory1((hb, m1, m1_k1), ax=ax)
    ax.set_title(ax.get_title() + "\n(power law nu = 2, N = 2000 eigenvalues, batch size 64)")
    for name, curve in (
        ("heavy ball", hb),
        ("memory-1, q0=0.5, kappa=2", m1),
        ("memory-1, q0=0.5, kappa=1", m1_k1),
    ):
        print(
            f"{name:26s} U at alpha_eff = 2 .. 1e4: " + " ".join(f"{u:.3g}" for u in curve.U[::3])
        )
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
