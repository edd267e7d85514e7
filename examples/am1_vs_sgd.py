"""SGD, heavy ball and AM1 on a power-law Gaussian problem (paper Fig. 1 analogue).

Exact mean-loss trajectories from the SE second-moment recursion (exact for Gaussian
features) on an effectively infinite power law (nu = 2, zeta = 0.5, binned quadrature to
k = 1e9), batch size 100. Prints the fitted slopes next to the predictions -zeta (SGD) and
-zeta (1 + a) (AM1) and writes ``am1_vs_sgd.png`` (or the path given as the first argument).
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import stability as stb
from stability import noise as nz
from stability.noise.acceleration import am1_schedule
from stability.plots import plot_loss_curves


def main(out: str = "am1_vs_sgd.png", steps: int = 20_000) -> dict[str, float]:
    nu, zeta, a = 2.0, 0.5, 0.4
    spec = nz.power_law(nu, zeta=zeta).binned(exact=300, k_max=1e9, bins=500)
    s = am1_schedule(alpha0=2.0, delta=0.5, q0=0.5, a=a, b=0.8, steps=steps, nu=nu)
    curves = {
        "SGD (lr 0.5)": nz.loss_trajectory(stb.gd(0.5), spec, 100, steps),
        "heavy ball (lr 0.2, beta 0.9)": nz.loss_trajectory(
            stb.heavy_ball(0.2, 0.9), spec, 100, steps
        ),
        "AM1": nz.loss_trajectory(s.schedule(), spec, 100),
    }
    # Theorem 5: stationary methods keep the SGD exponent (heavy ball only changes the constant)
    predicted = {
        "SGD (lr 0.5)": -zeta,
        "heavy ball (lr 0.2, beta 0.9)": -zeta,
        "AM1": -s.predicted_exponent(zeta),
    }
    t = np.arange(steps + 1)
    sel = t >= steps // 10
    fitted = {k: float(np.polyfit(np.log(t[sel]), np.log(L[sel]), 1)[0]) for k, L in curves.items()}
    for k in curves:
        print(f"{k:30s} fitted slope {fitted[k]:+.3f}   predicted {predicted[k]:+.3f}")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    plot_loss_curves(curves, predicted, ax=ax)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    print(f"wrote {out}")
    return fitted


if __name__ == "__main__":
    main(*sys.argv[1:2])
