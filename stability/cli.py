"""Command line: ``stability check ...``.

Exit codes: 0 stable, 1 unstable (or marginal), 2 invalid input (``error: ...`` on stderr, no
traceback). Numbers are parsed with :class:`fractions.Fraction` (exact decimals); nothing the
user types is ever evaluated.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import ConfigError, StabilityError

__all__ = ["main"]

CONFIG_KEYS = {"optimizer", "lr", "learning_rate", "momentum", "dampening", "weight_decay",
               "nesterov", "lambda_max", "spectrum", "power_law", "batch_size", "noise"}
POWER_LAW_KEYS = {"nu", "Lambda", "zeta", "N"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage + traceback-free exit
        raise ConfigError(message)


def number(text: str, name: str = "value") -> Fraction:
    """Parse a decimal number exactly (``'0.1'`` -> 1/10); refuse anything else."""
    if not isinstance(text, str):
        raise ConfigError(f"{name} must be a number, got {text!r}")
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"{name} must be a finite number, got {text!r}") from None
    return value


def _as_arg(fn: Any, name: str) -> Any:
    """Wrap a parser so argparse shows our message (it hides other exceptions' text)."""
    def parse(text: str) -> Any:
        try:
            return fn(text, name)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name
    return parse


def _num_arg(name: str) -> Any:
    return _as_arg(number, name)


def _power_law(text: str, name: str = "power_law") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in text.split(","):
        if "=" not in part:
            raise ConfigError(f"--power-law expects key=value pairs (nu=2,N=1e6), got {part!r}")
        key, value = (s.strip() for s in part.split("=", 1))
        if key not in POWER_LAW_KEYS:
            raise ConfigError(f"unknown power-law key {key!r}; allowed: {sorted(POWER_LAW_KEYS)}")
        out[key] = number(value, f"power-law {key}")
    return out


def _load_spectrum(path: str) -> Any:
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"spectrum file not found: {path}")
    try:
        if p.suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif p.suffix in (".txt", ".csv", ".dat"):
            arr = np.loadtxt(p, delimiter="," if p.suffix == ".csv" else None, ndmin=1)
        else:
            raise ConfigError(f"spectrum file must be .npy, .txt or .csv, got {p.suffix!r}")
    except (ValueError, OSError) as exc:
        raise ConfigError(f"could not read spectrum file {path}: {exc}") from None
    if arr.dtype.kind not in "fiu":
        raise ConfigError(f"spectrum file must hold numbers, got dtype {arr.dtype}")
    return arr.astype(float).ravel()


def _load_config(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = p.read_text()
    try:
        if p.suffix == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"malformed config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a table/object of keys")
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown}; allowed: {sorted(CONFIG_KEYS)}")
    for key, value in data.items():
        if key in ("optimizer", "noise", "spectrum", "power_law", "nesterov"):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, got {value!r}")
    return data


def _build(args: argparse.Namespace) -> dict[str, Any]:
    if args.config:
        data = _load_config(args.config)
    else:
        data = {k: v for k, v in {
            "optimizer": args.optimizer, "lr": args.lr, "momentum": args.momentum,
            "dampening": args.dampening, "weight_decay": args.weight_decay,
            "nesterov": args.nesterov or None, "lambda_max": args.lambda_max,
            "spectrum": args.spectrum, "power_law": args.power_law,
            "batch_size": args.batch_size, "noise": args.noise}.items() if v is not None}
    return data


def _run_check(data: dict[str, Any]) -> Any:
    from .noise import power_law
    from .report import check

    data = dict(data)
    optimizer = str(data.pop("optimizer", "sgd")).lower()
    kind = {"sgd": "torch.sgd", "torch": "torch.sgd"}.get(optimizer, optimizer)
    sources = [k for k in ("lambda_max", "spectrum", "power_law") if k in data]
    if len(sources) != 1:
        raise ConfigError("give exactly one of --lambda-max, --spectrum, --power-law")
    spectrum = None
    lambda_max = data.pop("lambda_max", None)
    if "spectrum" in data:
        raw = data.pop("spectrum")
        spectrum = _load_spectrum(raw) if isinstance(raw, str) else raw
        if isinstance(spectrum, list) and not all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in spectrum):
            raise ConfigError("spectrum must be a list of numbers or a file path")
    if "power_law" in data:
        pl = data.pop("power_law")
        if isinstance(pl, str):
            pl = _power_law(pl)
        if not isinstance(pl, dict):
            raise ConfigError("power_law must be a table like {nu = 2, N = 1e6}")
        unknown = sorted(set(pl) - POWER_LAW_KEYS)
        if unknown:
            raise ConfigError(f"unknown power-law key(s) {unknown}; allowed: "
                              f"{sorted(POWER_LAW_KEYS)}")
        if "nu" not in pl:
            raise ConfigError("power law needs nu")
        spectrum = power_law(**pl)
    batch_size = data.pop("batch_size", None)
    noise = data.pop("noise", "gaussian")
    if lambda_max is not None and batch_size is not None:
        raise ConfigError("--batch-size needs --spectrum or --power-law (not --lambda-max)")
    cfg = {"optimizer": kind, **data}
    return check(cfg, lambda_max=lambda_max, spectrum=spectrum, batch_size=batch_size,
                 noise=noise)


def _spectrum_args(p: argparse.ArgumentParser, noise_choices: list[str],
                   noise_default: str | None) -> None:
    """The curvature/noise options shared by ``check`` and ``sweep``."""
    p.add_argument("--lambda-max", dest="lambda_max", type=_num_arg("lambda_max"))
    p.add_argument("--spectrum", help="eigenvalues: .npy, .txt or .csv file")
    p.add_argument("--power-law", dest="power_law", type=_as_arg(_power_law, "power_law"),
                   help="power-law spectrum, e.g. nu=2,N=1e6 (keys nu, Lambda, zeta, N)")
    p.add_argument("--batch-size", dest="batch_size", type=_num_arg("batch_size"))
    p.add_argument("--noise", choices=noise_choices, default=noise_default)


def _parser() -> _Parser:
    parser = _Parser(prog="stability", description="Stability analysis of SGD-type optimizers.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    c = sub.add_parser("check", help="check an optimizer config against curvature information")
    c.add_argument("--config", help="TOML or JSON file with the same keys as the flags")
    c.add_argument("--optimizer", choices=["sgd", "torch.sgd", "optax.sgd", "keras.sgd"])
    c.add_argument("--lr", "--learning-rate", dest="lr", type=_num_arg("lr"))
    c.add_argument("--momentum", type=_num_arg("momentum"))
    c.add_argument("--dampening", type=_num_arg("dampening"))
    c.add_argument("--weight-decay", dest="weight_decay", type=_num_arg("weight_decay"))
    c.add_argument("--nesterov", action="store_true")
    _spectrum_args(c, noise_choices=["gaussian", "translation_invariant", "se0"],
                   noise_default=None)
    c.add_argument("--json", action="store_true", help="print Report.to_dict() as JSON")

    d = sub.add_parser("derive", help="print or write the LaTeX derivation of a method")
    d.add_argument("method", choices=["gd", "heavy_ball", "nesterov", "memory1", "momentum_kick",
                                      "sgd", "adam"])
    d.add_argument("--latex", help="write a standalone .tex document to this path")
    d.add_argument("--pdf", action="store_true", help="also run pdflatex (when installed)")

    w = sub.add_parser("sweep", help="certified verdicts for a grid of torch SGD configs")
    w.add_argument("--lr", required=True, type=_grid_arg("lr"),
                   help="value, list a,b,c or range start:stop:num (linspace)")
    w.add_argument("--momentum", type=_grid_arg("momentum"), default=[0.0])
    w.add_argument("--dampening", type=_grid_arg("dampening"), default=[0.0])
    w.add_argument("--weight-decay", dest="weight_decay", type=_grid_arg("weight_decay"),
                   default=[0.0])
    w.add_argument("--nesterov", action="store_true")
    _spectrum_args(w, noise_choices=["gaussian", "se0"], noise_default="gaussian")
    w.add_argument("--out", required=True, help="output file: .csv or .npz")
    return parser


def _grid(text: str, name: str) -> list[float]:
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ConfigError(f"{name} range must be start:stop:num, got {text!r}")
        start, stop = (float(number(x, name)) for x in parts[:2])
        num = number(parts[2], f"{name} count")
        if num.denominator != 1 or not 1 <= num <= 10**8:
            raise ConfigError(f"{name} count must be an integer in [1, 1e8], got {parts[2]!r}")
        import numpy as np

        return list(np.linspace(start, stop, int(num)))
    return [float(number(x, name)) for x in text.split(",")]


def _grid_arg(name: str) -> Any:
    return _as_arg(_grid, name)


def _run_derive(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    from .latex import derive

    d = derive(args.method)
    if not args.latex:
        if args.pdf:
            raise ConfigError("--pdf needs --latex PATH")
        sys.stdout.write(d.to_latex(standalone=True))
        return 0
    path = Path(args.latex)
    if path.suffix != ".tex":
        raise ConfigError(f"--latex must name a .tex file, got {args.latex!r}")
    path.write_text(d.to_latex(standalone=True))
    sys.stdout.write(f"wrote {path}\n")
    if args.pdf:
        exe = shutil.which("pdflatex")
        if exe is None:
            raise ConfigError("pdflatex is not installed (e.g. apt-get install texlive-latex-base"
                              "); the .tex file was written")
        res = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", path.name],
                             cwd=path.parent or ".", capture_output=True, text=True)
        if res.returncode != 0:
            raise ConfigError(f"pdflatex failed on {path}: {res.stdout[-500:]}")
        sys.stdout.write(f"wrote {path.with_suffix('.pdf')}\n")
    return 0


SWEEP_CHUNK = 2_000_000
"""Configs per slab of ``stability sweep`` (a slab is a range of learning rates)."""


def _run_sweep(args: argparse.Namespace) -> int:
    """Certified verdicts on the grid ``lr x momentum x dampening x weight_decay``.

    The grid is never materialised: each slab of learning rates is checked by broadcasting
    the four axes, so memory holds only the result arrays (10 bytes per config, plus 8 for
    ``U``). CSV rows are streamed slab by slab.
    """
    import numpy as np

    from .checkers import family_triplet, memory1_noise_sum, torch_sgd_margins
    from .noise import get_noise_model, power_law

    if args.lambda_max is None and args.spectrum is None and args.power_law is None:
        raise ConfigError("give --lambda-max, --spectrum or --power-law")
    eig = None
    if args.spectrum is not None:
        eig = _load_spectrum(args.spectrum)
    elif args.power_law is not None:
        pl = power_law(**args.power_law)
        if pl.N is None:
            raise ConfigError("sweep needs a finite power law: add N=...")
        eig = pl.eigenvalues()
    if eig is not None and (eig.size == 0 or np.any(~np.isfinite(eig)) or np.any(eig <= 0)):
        raise ConfigError("spectrum must be non-empty, finite and > 0")
    lam_max = float(args.lambda_max) if args.lambda_max is not None else float(eig.max())
    out = Path(args.out)
    if out.suffix not in (".csv", ".npz"):
        raise ConfigError(f"--out must end in .csv or .npz, got {out.suffix!r}")
    names = ("lr", "momentum", "dampening", "weight_decay")
    axes = [np.array(getattr(args, n), dtype=float) for n in names]
    shape = tuple(a.size for a in axes)
    n = int(np.prod(shape, dtype=np.int64))
    if n > 10**9:
        raise ConfigError(f"the grid has {n:,} configs; at most 1e9 per sweep")
    if args.batch_size is not None:
        if eig is None:
            raise ConfigError("--batch-size needs --spectrum or --power-law")
        if axes[3].size > 1:
            raise ConfigError("the noise sweep needs a single weight decay value")
    grid = [a.reshape([-1 if i == j else 1 for j in range(4)]) for i, a in enumerate(axes)]
    stable = np.empty(shape, dtype=bool)
    margin = np.empty(shape)
    U = np.full(shape, np.nan) if args.batch_size is not None else None
    per_row = n // shape[0]
    chunk = SWEEP_CHUNK if args.batch_size is None else SWEEP_CHUNK // 100  # noise: x eigs
    rows = max(1, chunk // max(per_row, 1))
    show = n > 4_000_000 or (U is not None and n * eig.size > 10**9)
    if U is not None:
        _, f = family_triplet("torch_nesterov" if args.nesterov else "torch_sgd")
        tau = np.where(grid[1] == 0, 0.0, grid[2])  # no buffer, so no dampening, at momentum 0
        model = get_noise_model(args.noise)
    handle = out.open("w") if out.suffix == ".csv" else None
    cols = [*names, "strict_stable", "margin", "U", "stable"]
    try:
        if handle is not None:
            handle.write(",".join(cols) + "\n")
        for i0 in range(0, shape[0], rows):
            sl = slice(i0, i0 + rows)
            lr = grid[0][sl]
            v = torch_sgd_margins(lr=lr, momentum=grid[1], dampening=grid[2],
                                  weight_decay=grid[3], nesterov=args.nesterov,
                                  lambda_max=lam_max)
            stable[sl], margin[sl] = v.stable, v.margin
            if U is not None:
                trip = f(lr, grid[1]) if args.nesterov else f(lr, grid[1], tau)
                U[sl] = memory1_noise_sum(beta=trip[0], q0=trip[1], q1=trip[2],
                                          eigenvalues=eig + axes[3][0],
                                          batch_size=float(args.batch_size), tau1=model.tau1,
                                          tau2=model.tau2)
            if handle is not None:
                part = np.broadcast_arrays(lr, *grid[1:], stable[sl], margin[sl],
                                           np.nan if U is None else U[sl])
                ok = part[4] & (np.isnan(part[6]) | (part[6] < 1))
                np.savetxt(handle, np.column_stack([np.asarray(c, dtype=float).ravel()
                                                    for c in (*part, ok)]),
                           delimiter=",", fmt="%.17g")
            if show:
                done = min(shape[0], i0 + rows) * per_row
                sys.stderr.write(f"\rsweep: {100 * done / n:5.1f}% ({done:,}/{n:,} configs)")
    finally:
        if handle is not None:
            handle.close()
    if show:
        sys.stderr.write("\n")
    ok = stable if U is None else stable & (U < 1)
    if handle is None:
        extra = {} if U is None else {"U": U}
        np.savez(out, **dict(zip(names, axes, strict=True)), strict_stable=stable,
                 margin=margin, **extra, stable=ok, nesterov=args.nesterov,
                 lambda_max=lam_max)
    k = int(np.count_nonzero(ok))
    sys.stdout.write(f"{n:,} configs, {k:,} stable ({100 * k / n:.1f}%), written to {out}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 stable, 1 unstable/marginal, 2 invalid input)."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "sweep":
            return _run_sweep(args)
        if args.command == "derive":
            return _run_derive(args)
        data = _build(args)
        if args.config and any(getattr(args, k) not in (None, False) for k in
                               ("optimizer", "lr", "momentum", "dampening", "weight_decay",
                                "nesterov", "lambda_max", "spectrum", "power_law",
                                "batch_size", "noise")):
            raise ConfigError("--config cannot be combined with other config flags")
        if data.get("optimizer") in ("optax.sgd", "keras.sgd") and "lr" in data:
            data["learning_rate"] = data.pop("lr")
        report = _run_check(data)
    except (ConfigError, StabilityError, ValueError, TypeError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(str(report) + "\n")
    return 0 if report.verdict == "stable" else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
