"""Validate an optimizer config before training, then watch the optimizer do what the report
said. Uses a real ``torch.optim.SGD`` when torch is installed, else the same config as a
mapping (the analysis never needs torch).

Writes ``validate_torch_config.png`` (or the path given as the first argument).
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import stability as stb
from stability import check

EIGENVALUES = np.linspace(0.5, 20.0, 16)  # e.g. Hessian eigenvalues from a Lanczos run


def make(lr: float, momentum: float):
    try:
        import torch
    except ImportError:
        return {"optimizer": "sgd", "lr": lr, "momentum": momentum}
    p = torch.nn.Parameter(torch.ones(EIGENVALUES.size, dtype=torch.float64))
    return torch.optim.SGD([p], lr=lr, momentum=momentum)


def run(config, steps: int = 300) -> np.ndarray:
    (opt,) = stb.from_optimizer(config)  # same rule torch would apply
    traj = opt.simulate(lambda w: EIGENVALUES * w, np.ones(EIGENVALUES.size), steps)
    return 0.5 * np.sum(EIGENVALUES * traj**2, axis=1)


def main(out: str = "validate_torch_config.png") -> None:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for lr in (0.15, 0.2):
        cfg = make(lr, 0.9)
        report = check(cfg, spectrum=list(EIGENVALUES))
        print(report, "\n")
        loss = run(cfg)
        ax.semilogy(
            loss,
            label=f"lr={lr}: report says {report.verdict} "
            f"(headroom {report.strict['headroom']:.3g})",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("torch SGD, momentum 0.9: verdict vs actual run")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
