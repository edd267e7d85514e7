"""Peak memory and time of ``stability sweep`` against the obvious numpy baseline.

Each run is a fresh process (so peak RSS is its own): the streamed sweep writes the grid slab
by slab through temporary files; the baseline materialises the grid with ``numpy.meshgrid``,
checks it with ``torch_sgd_margins`` and saves it with ``numpy.savez`` (what a user would
write). Sizes: 1e7 and 1e8 configs by default; ``--huge`` adds a 1e9-config NPZ sweep
(about 10 GB on disk, a few minutes). Usage::

    python benchmarks/bench_sweep_memory.py [--huge] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

STREAMED = """
import resource, sys, time
from stability.cli import main
t = time.perf_counter()
rc = main(["sweep", "--lr", "0.001:1:{n_lr}", "--momentum", "0:0.99:{n_mu}",
           "--lambda-max", "10", "--out", {out!r}])
print(rc, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

BASELINE = """
import resource, time
import numpy as np
from stability.checkers import torch_sgd_margins
t = time.perf_counter()
LR, MU = np.meshgrid(np.linspace(0.001, 1, {n_lr}), np.linspace(0, 0.99, {n_mu}),
                     indexing="ij")
v = torch_sgd_margins(lr=LR, momentum=MU, lambda_max=10.0)
np.savez({out!r}, lr=LR, momentum=MU, stable=v.stable, margin=v.margin)
print(0, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure(template: str, n_lr: int, n_mu: int, out: Path) -> tuple[float, float]:
    code = template.format(n_lr=n_lr, n_mu=n_mu, out=str(out))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    _rc, seconds, kib = res.stdout.split()[-3:]
    out.unlink(missing_ok=True)
    return float(seconds), int(kib) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--huge", action="store_true", help="also a 1e9-config sweep (~10 GB)")
    ap.add_argument("--dir", default=None, help="folder for the outputs")
    args = ap.parse_args()
    sizes = [(1000, 10_000), (10_000, 10_000)] + ([(100_000, 10_000)] if args.huge else [])
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        print(
            f"{'configs':>14} {'streamed s':>11} {'peak MiB':>9} {'baseline s':>11} "
            f"{'peak MiB':>9} {'memory ratio':>13}"
        )
        for n_lr, n_mu in sizes:
            n = n_lr * n_mu
            s_t, s_m = measure(STREAMED, n_lr, n_mu, Path(work) / "s.npz")
            if n <= 10**8:
                b_t, b_m = measure(BASELINE, n_lr, n_mu, Path(work) / "b.npz")
                print(
                    f"{n:>14,} {s_t:>11.1f} {s_m:>9.0f} {b_t:>11.1f} {b_m:>9.0f} "
                    f"{b_m / s_m:>12.1f}x"
                )
            else:
                print(f"{n:>14,} {s_t:>11.1f} {s_m:>9.0f} {'(baseline needs > 24 GB)':>35}")


if __name__ == "__main__":
    main()
