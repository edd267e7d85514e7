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
    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    for (kind, kw), ax in zip(cases, axes.ravel(), strict=True):
        s = ltv.schedule(kind, 800, **kw)
        v = ltv.ltv_verdict(filt, 0.1, s)
        print(
            f"{kind:14s} BIBO={v.bibo!s:5s} UES={v.ues!s:5s} gain={v.bibo_gain:.4g} "
            f"C={v.ues_constant:.4g} frozen-pole margin={v.frozen_pole_margin:.3g}"
        )
        plots.plot_schedule_verdict(filt, 0.1, s, ax=ax)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
