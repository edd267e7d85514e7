"""LTV (AutoSGM) verdicts for learning-rate schedules (docs §7 counterexamples).

A linear warm-up breaks the frozen-pole test yet is UES and BIBO; sqrt growth is UES but not
BIBO; warm restarts with growing periods are BIBO but not UES. Writes
``schedule_verdicts.png`` (or the path given as the first argument).
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from stability import ltv, plots


def main(out: str = "schedule_verdicts.png") -> None:
    filt = ltv.filter_from_config({"optimizer": "sgd", "momentum": 0.9})
    cases = [
        ("linear_warmup", {"warmup": 100}),
        ("sqrt_growth", {}),
        ("warm_restarts", {"period": 25, "mult": 2}),
        ("inverse_time", {}),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.6))
    print("BIBO: bounded gradients give bounded steps; UES: the momentum forgets its past")
    for (kind, kw), ax in zip(cases, axes.ravel(), strict=True):
        s = ltv.schedule(kind, 800, **kw)
        v = ltv.ltv_verdict(filt, 0.1, s)
        print(
            f"{kind:14s} BIBO {plots._yes(v.bibo):3s} (gain {v.bibo_gain:.4g})  UES "
            f"{plots._yes(v.ues):3s} (C {v.ues_constant:.4g})  frozen-pole margin "
            f"{v.frozen_pole_margin:.3g}"
        )
        artists = plots.plot_schedule_verdict(filt, 0.1, s, ax=ax, legend=False)
    fig.suptitle(
        "BIBO: bounded gradients give bounded steps.  UES: the momentum filter forgets its past "
        "exponentially, |Phi(t, s)| <= C rho^(t-s).\nThe frozen-pole test beta r[t] < 1 (red "
        "line) is sufficient for UES, not necessary: the warm-up breaks it and is still UES.",
        fontsize=9,
    )
    fig.legend(artists, [a.get_label() for a in artists], loc="lower center", ncol=3, fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(out, dpi=100)
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
