"""find_lr against the measured truth, beside the quadratic predictions and the lr finders
people use (issue 26).

For every cell of ``results/lr_truth.jsonl`` (data set, network, loss, momentum, batch size;
the largest lr that 10-epoch ``torch.optim.SGD`` runs survive, median of 3 shuffles, measured
by ``lr_truth.py``):

* ``find_lr``'s ``largest_stable_lr`` (and its ``edge``, ``recommended_lr``, regime, cost);
* ``2(1+mu)/lambda_max`` at initialisation (from the truth file);
* torch-lr-finder's suggestion (``LRFinder.range_test``, its defaults: 100 steps from 1e-7
  to 10, exponential; the suggestion is its ``steepest`` rule: the lr of the steepest descent
  of the smoothed loss, skipping the first 10 and last 5 points);
* fastai's ``valley`` rule (the longest valley of the loss curve, 2/3 of the way down; fastai's
  own function, reproduced here on the same ramp, since fastai itself is a large install).

Cost is in epochs of training at the cell's batch size (per-sample passes / n; find_lr counts
its Gauss-Newton products as two passes). Results go to ``results/find_lr.jsonl``; the summary
(the share of cells with ``answer / truth`` in [0.5, 1.1] and above 1.25, per method) is
printed and written to ``results/find_lr_summary.md``.

Usage: ``python benchmarks/bench_find_lr.py [--cells N] [--summary-only]``
(needs the ``bench`` extra: ``pip install -e '.[torch,bench]'``)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import time
from pathlib import Path

import lr_truth as T
import numpy as np
import torch

from stability.training import find_lr

torch.set_num_threads(1)
HERE = Path(__file__).parent / "results"


def lr_range_test(net, loss_fn, x, t, mu, B):
    """torch-lr-finder's range test (its defaults) on a copy: (steepest, valley, epochs)."""
    from torch_lr_finder import LRFinder

    net = copy.deepcopy(net)
    opt = torch.optim.SGD(net.parameters(), lr=1e-7, momentum=mu)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, t), batch_size=B, shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    finder = LRFinder(net, opt, loss_fn)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(loader, end_lr=10, num_iter=100)
    lrs, losses = finder.history["lr"], finder.history["loss"]
    steps = len(lrs)
    lo, hi = 10, 5  # torch-lr-finder's plot(skip_start=10, skip_end=5)
    cut_l, cut = lrs[lo:-hi], losses[lo:-hi]
    steepest = float(cut_l[int(np.gradient(np.array(cut)).argmin())]) if len(cut) > 2 else math.nan
    return steepest, valley(lrs, losses), steps * B / len(x)


def valley(lrs, losses):
    """fastai's ``valley`` suggestion (fastai.callback.schedule.valley)."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx])


def ratio(a, truth):
    return a / truth if truth > 0 and math.isfinite(a) else math.nan


def summary(rows):
    lines = [
        "| method | cells | in [0.5, 1.1] | above 1.25 | median ratio | median cost (epochs) |",
        "|---|---|---|---|---|---|",
    ]
    for key, cost in (("find_lr", "find_lr_epochs"), ("edge", "find_lr_epochs"),
                      ("threshold", None), ("lr_finder", "lr_finder_epochs"),
                      ("valley", "lr_finder_epochs")):  # fmt: skip
        v = np.array([r["ratios"][key] for r in rows if math.isfinite(r["ratios"][key])])
        c = np.median([r[cost] for r in rows]) if cost else math.nan
        inside = np.mean((v >= 0.5) & (v <= 1.1)) if v.size else math.nan
        lines.append(
            f"| {key} | {v.size} | {inside:.0%} | {int(np.sum(v > 1.25))} | "
            f"{np.median(v):.2f} | {'-' if math.isnan(c) else f'{c:.2f}'} |"
        )
    lines += [
        "",
        "| find_lr by setting | cells | in [0.5, 1.1] | above 1.25 | ratio range |",
        "|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        _, net, loss, mu, B = r["cell"]
        key = (net, loss, f"momentum {mu:g}", "B <= 8" if B <= 8 else "B >= 32")
        groups.setdefault(key, []).append(r["ratios"]["find_lr"])
    for key, v in sorted(groups.items()):
        a = np.array(v)
        lines.append(
            f"| {', '.join(key)} | {a.size} | {np.mean((a >= 0.5) & (a <= 1.1)):.0%} | "
            f"{int(np.sum(a > 1.25))} | {a.min():.2f}-{a.max():.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--summary-only", action="store_true")
    a = ap.parse_args()
    out = HERE / "find_lr.jsonl"
    rows = [json.loads(s) for s in out.read_text().splitlines()] if out.exists() else []
    done = {tuple(r["cell"]) for r in rows}
    truth_rows = [json.loads(s) for s in (HERE / "lr_truth.jsonl").read_text().splitlines()]
    data = {name: (X, y, task) for name, X, y, task in T.datasets()}
    for count, tr in enumerate(truth_rows):
        if a.summary_only or count >= a.cells:
            break
        cell = tuple(tr["cell"])
        if cell in done or tr["truth"] <= 0:
            continue
        name, kind, loss, mu, B = cell
        X, y, task = data[name]
        x, t, k = T.tensors(X, y, task, loss)
        net = T.network(x.shape[1], k, kind, seed=0)
        loss_fn = torch.nn.CrossEntropyLoss() if loss == "ce" else torch.nn.MSELoss()
        t0 = time.perf_counter()
        res = find_lr(net, loss_fn, (x, t), {"optimizer": "sgd", "momentum": mu}, B)
        seconds = time.perf_counter() - t0
        steepest, val, lrf_epochs = lr_range_test(net, loss_fn, x, t, mu, B)
        truth = tr["truth"]
        row = {
            "cell": list(cell), "truth": truth, "per_seed": tr["per_seed"],
            "find_lr": res.largest_stable_lr, "recommended": res.recommended_lr,
            "edge": res.edge, "bracket": list(res.bracket), "regime": res.regime,
            "find_lr_epochs": res.cost_epochs, "find_lr_steps": res.cost_steps,
            "probe_steps": res.probe_steps, "probes": len(res.probes),
            "threshold": tr["threshold_2(1+mu)/lambda_max"], "lr_finder": steepest,
            "valley": val, "lr_finder_epochs": lrf_epochs, "seconds": round(seconds, 2),
        }  # fmt: skip
        row["ratios"] = {
            key: ratio(row[key] if row[key] is not None else math.nan, truth)
            for key in ("find_lr", "edge", "threshold", "lr_finder", "valley")
        }
        rows.append(row)
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        r = row["ratios"]
        print(f"{' '.join(map(str, cell)):32s} truth {truth:<8.3g} find_lr/truth "
              f"{r['find_lr']:.2f} edge {r['edge']:.2f} lr-finder {r['lr_finder']:.2f} "
              f"valley {r['valley']:.2f}  cost {res.cost_epochs:.1f} vs {lrf_epochs:.1f} ep "
              f"[{seconds:.1f} s]", flush=True)  # fmt: skip
    text = summary(rows)
    print(text)
    (HERE / "find_lr_summary.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
