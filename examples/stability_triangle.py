"""The memory-1 stability triangle (Theorem 6.1) and the eigenvalue circle (Theorem 6.2).

Marks heavy ball, Nesterov and a momentum+kick config in the (q0, q1) plane at beta = 0.6 with
their exact verdicts on (0, lambda_max], draws the stable (lr, momentum) region of torch SGD,
and the eigenvalues of S_lambda over lambda with the predicted circle. Writes
``stability_triangle.png`` (or the path given as the first argument).
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import stability as stb
from stability import plots


def main(out: str = "stability_triangle.png") -> None:
    beta, lam_max = 0.6, 1.0
    configs = [
        stb.heavy_ball(2.5, beta),
        stb.nesterov(1.2, beta),
        stb.momentum_kick(1.0, 0.8, beta),
        stb.heavy_ball(3.5, beta),
    ]
    for alg in configs:
        res = stb.is_strictly_stable(alg, lam_max)
        print(
            f"{alg.name:14s} triplet {tuple(round(float(x), 3) for x in alg.triplet())}: "
            f"{'stable' if res else 'UNSTABLE'} (lambda_crit {res.lambda_crit:.4g})"
        )
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.6))
    plots.plot_stability_triangle(beta, lam_max, configs=configs, ax=axes[0])
    plots.plot_lr_momentum_region(
        "torch_sgd", lam_max, ax=axes[1], dampening=0.0, configs=[(0.1, 0.9)]
    )
    plots.plot_eigenvalue_locus(stb.nesterov(1.2, beta), 2.5, ax=axes[2])
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
