"""Command line: ``stability check ...``, ``stability sweep ...``, ``stability derive ...``.

Exit codes: 0 stable, 1 unstable (or marginal), 2 invalid input or a file that cannot be read or
written (``error: ...`` on stderr, no traceback). Numbers are parsed exactly from their decimal
text (``0.1`` is 1/10) after their magnitude is checked; nothing the user types is ever
evaluated. A config file (TOML or JSON) carries the same keys as the flags; flags given beside
``--config`` override its values, and a spectrum path inside it is read relative to the file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .. import progress
from ..checkers._backend import check_environment
from ..checking import check
from ..configs import kind_of
from ..errors import ConfigError, StabilityError, describe, listing
from ..latex import derive
from ..noise.persample import PerSampleCurvature
from ..noise.spectra import power_law
from .inputs import (
    ANALYSIS_KEYS,
    CURVATURE_KEYS,
    DATA_KEYS,
    POWER_LAW_KEYS,
    load_config,
    load_data,
    load_spectrum,
    parse_power_law,
)
from .parser import build_parser
from .sweep import publish, sweep

__all__ = ["main"]


# --lr covers both learning-rate names; --beta1/--beta2 cover torch's betas and optax's b1/b2
_FLAG_KEYS = (
    *ANALYSIS_KEYS[:1],
    *("lr", "momentum", "dampening", "weight_decay", "nesterov", "beta1", "beta2", "eps"),
    *ANALYSIS_KEYS[1:],
)


def _build(args: argparse.Namespace) -> dict[str, Any]:
    """The config: the file's values (if any), overridden by the flags that were given."""
    data = load_config(args.config) if args.config else {}
    flags = {k: getattr(args, k) for k in _FLAG_KEYS}
    flags["nesterov"] = True if args.nesterov else None
    flags = {k: v for k, v in flags.items() if v is not None}
    if any(k in flags for k in CURVATURE_KEYS):  # a curvature flag replaces the file's
        data = {k: v for k, v in data.items() if k not in CURVATURE_KEYS}
    if "lr" in flags and "learning_rate" in data:
        data.pop("learning_rate")
    data.update(flags)
    return data


def _run_check(data: dict[str, Any]) -> Any:

    data = dict(data)
    kind = kind_of(data.pop("optimizer", "sgd"))
    if "lr" in data and kind.lr_key != "lr":  # --lr names the framework's learning rate
        data[kind.lr_key] = data.pop("lr")
    b1, b2 = data.pop("beta1", None), data.pop("beta2", None)
    if kind.family == "adam" and (b1 is not None or b2 is not None):
        if kind.name.startswith("torch"):
            old = data.get("betas", (0.9, 0.999))
            data["betas"] = (old[0] if b1 is None else b1, old[1] if b2 is None else b2)
        else:
            data.update({k: v for k, v in (("b1", b1), ("b2", b2)) if v is not None})
    elif b1 is not None or b2 is not None:
        raise ConfigError(f"--beta1/--beta2 are Adam's; optimizer {kind.name!r} has momentum")
    sources = [k for k in CURVATURE_KEYS if k in data]
    if len(sources) != 1:
        raise ConfigError("give exactly one of --lambda-max, --spectrum, --power-law, --data")
    if "data" in data:
        return _check_data(kind.name, data)
    extra = [k for k in DATA_KEYS if k in data]
    if extra:
        flags = ", ".join("--no-bias" if k == "bias" else f"--{k}" for k in extra)
        raise ConfigError(f"{flags} describe the data of --data: give --data too")
    spectrum = None
    note = None
    lambda_max = data.pop("lambda_max", None)
    if "spectrum" in data:
        raw = data.pop("spectrum")
        if isinstance(raw, str):
            spectrum, note = load_spectrum(raw)
        elif isinstance(raw, list) and all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in raw
        ):
            spectrum = raw
        else:
            raise ConfigError(
                f"spectrum must be a list of numbers or a file path, got {describe(raw)}"
            )
    if "power_law" in data:
        pl = data.pop("power_law")
        if isinstance(pl, str):
            pl = parse_power_law(pl)
        if not isinstance(pl, dict):
            raise ConfigError(
                f"power_law must be a table like {{nu = 2, N = 1e6}}, got {describe(pl)}"
            )
        unknown = sorted(set(pl) - set(POWER_LAW_KEYS))
        if unknown:
            raise ConfigError(
                f"unknown power-law key(s) {listing(unknown)}; allowed: {listing(POWER_LAW_KEYS)}"
            )
        if "nu" not in pl:
            raise ConfigError("power law needs nu")
        spectrum = power_law(**pl)
    batch_size = data.pop("batch_size", None)
    noise = data.pop("noise", "gaussian")
    if not isinstance(noise, str):
        raise ConfigError(f"noise must be a model name, got {describe(noise)}")
    if lambda_max is not None and batch_size is not None:
        raise ConfigError("--batch-size needs --spectrum or --power-law (not --lambda-max)")
    cfg = {"optimizer": kind.name, **data}
    report = check(
        cfg, lambda_max=lambda_max, spectrum=spectrum, batch_size=batch_size, noise=noise
    )
    if note:
        report.caveats.append(note)
    return report


def _check_data(optimizer: str, data: dict[str, Any]) -> Any:
    """``check --data X [--targets Y]``: the verdict from the data's per-sample curvature (a
    linear model, the loss ``--loss``, a bias unless ``--no-bias``)."""
    if kind_of(optimizer).family == "adam":
        raise ConfigError(
            "--data holds raw features: Adam's frozen-preconditioner verdict needs the "
            "preconditioned per-sample curvature; use the Python API "
            "(stability.PerSampleCurvature.from_features(X / sqrt(P)))"
        )
    X = load_data(data.pop("data"), "data")
    Y = None
    if "targets" in data:
        Y = load_data(data.pop("targets"), "targets")
    loss = data.pop("loss", "mse")
    bias = data.pop("bias", True)
    sampling = data.pop("sampling", "with_replacement")
    noise = data.pop("noise", "gaussian")
    if noise != "gaussian":
        raise ConfigError("--noise names a Gaussian/SE model; with --data the data's own is used")
    batch_size = data.pop("batch_size", None)
    per_sample = PerSampleCurvature.from_features(X, Y, bias=bias, loss=loss)
    cfg = {"optimizer": optimizer, **data}
    return check(cfg, data=per_sample, batch_size=batch_size, sampling=sampling)


def _run_derive(args: argparse.Namespace) -> int:
    import shutil
    import subprocess
    import tempfile

    if args.pdf and not args.latex:
        raise ConfigError("--pdf needs --latex PATH")
    if args.latex:
        if args.latex.endswith(("/", os.sep)):
            raise ConfigError(f"--latex names a directory (it ends in a slash): {args.latex}")
        path = Path(args.latex)
        if path.suffix != ".tex":
            raise ConfigError(f"--latex must name a .tex file, got {describe(args.latex)}")
        if path.is_dir():
            raise ConfigError(f"--latex names a directory: {path}")
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise ConfigError(f"--latex folder does not exist: {folder}")
        exe = shutil.which("pdflatex") if args.pdf else None
        if args.pdf and exe is None:
            raise ConfigError(
                "pdflatex is not installed (e.g. apt-get install "
                "texlive-latex-base); nothing was written"
            )
    d = derive(args.method)
    text = d.to_latex(standalone=True)
    if not args.latex:
        sys.stdout.write(text)
        return 0
    _write_atomic(path, text)
    sys.stdout.write(f"wrote {path}\n")
    if args.pdf:
        # pdflatex runs in a scratch folder on a fixed file name: the user's name is never
        # read as an option (``-jobname=...``) or as TeX, and .aux/.log go with the folder
        with tempfile.TemporaryDirectory() as work:
            (Path(work) / "derivation.tex").write_text(text)
            try:
                res = subprocess.run(
                    [
                        exe,
                        "-interaction=nonstopmode",
                        "-halt-on-error",
                        "-no-shell-escape",
                        "derivation.tex",
                    ],
                    cwd=work,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                raise ConfigError(
                    "pdflatex did not finish in 300 s; the .tex file was written"
                ) from None
            if res.returncode != 0:
                raise ConfigError(f"pdflatex failed on {path}: {res.stdout[-500:]}")
            pdf = path.with_suffix(".pdf")
            shutil.copyfile(Path(work) / "derivation.pdf", pdf)
        sys.stdout.write(f"wrote {pdf}\n")
    return 0


def _write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder: a failure leaves ``path`` as it
    was."""
    import tempfile

    fd, tmp = tempfile.mkstemp(
        dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".part"
    )
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _run_sweep(args: argparse.Namespace) -> int:
    """Certified verdicts on ``lr x momentum x dampening x weight_decay`` (see
    :mod:`stability.sweep`)."""
    import numpy as np

    sources = [k for k in CURVATURE_KEYS if getattr(args, k, None) is not None]
    if len(sources) != 1:
        raise ConfigError("give --lambda-max, --spectrum or --power-law (exactly one)")
    eig = None
    pl = None
    if args.spectrum is not None:
        eig, _ = load_spectrum(args.spectrum)
    elif args.power_law is not None:
        if "nu" not in args.power_law:
            raise ConfigError("power law needs nu")
        pl = power_law(**args.power_law)
        if pl.N is None:
            raise ConfigError(
                "the sweep needs a finite power law: give N (any size; the noise sum is "
                "certified on a compressed spectrum); `stability check` also sums infinite "
                "laws, with a tail formula"
            )
    if eig is not None and (eig.size == 0 or eig.min() <= 0):
        raise ConfigError(
            f"spectrum eigenvalues must be in (0, inf), got min "
            f"{describe(eig.min()) if eig.size else 'none (empty)'}"
        )
    lam_max = (
        float(args.lambda_max)
        if args.lambda_max is not None
        else (pl.lambda_max if pl is not None else float(eig.max()))
    )
    if args.lambda_max is not None and not lam_max > 0:
        raise ConfigError(f"lambda_max must be in (0, inf), got {describe(args.lambda_max)}")
    batch = None if args.batch_size is None else float(args.batch_size)
    if batch is not None and not batch >= 1:
        raise ConfigError(f"batch_size must be in [1, inf), got {describe(args.batch_size)}")
    axes = {
        n: getattr(args, n)
        for n in ("lr", "momentum", "dampening", "weight_decay")
        if getattr(args, n) is not None
    }
    summary = sweep(
        axes,
        out=args.out,
        lambda_max=lam_max,
        nesterov=args.nesterov,
        eigenvalues=None if eig is None else np.ascontiguousarray(eig),
        spectrum=pl,
        batch_size=batch,
        noise=args.noise,
        progress=True if args.progress else None,
    )
    sys.stdout.write(f"{summary}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 stable, 1 unstable/marginal, 2 invalid input).

    Bad input (:class:`~stability.ConfigError`), analyses that cannot answer
    (:class:`~stability.StabilityError`), files that cannot be read or written (``OSError``)
    and exhausted memory print ``error: ...`` and return 2; anything else is a bug, reported on
    one line with exit code 2 (``STABILITY_DEBUG=1`` shows its traceback).
    """
    try:
        check_environment()
        parser = build_parser()
        if not (sys.argv[1:] if argv is None else argv):
            sys.stderr.write(parser.format_help())
            return 2
        args = parser.parse_args(argv)
        if args.command == "sweep":
            return _run_sweep(args)
        if args.command == "derive":
            return _run_derive(args)
        with progress.reporting(args.progress or sys.stderr.isatty()):
            report = _run_check(_build(args))
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except (StabilityError, OSError) as exc:
        sys.stderr.write(f"error: {_one_line(exc)}\n")
        return 2
    except MemoryError:
        sys.stderr.write("error: not enough memory for this input\n")
        return 2
    except Exception as exc:  # a bug: still no traceback and never the "unstable" code 1
        if os.environ.get("STABILITY_DEBUG"):
            raise
        sys.stderr.write(
            f"error: internal error {type(exc).__name__}: {_one_line(exc)} (a bug in stability: "
            "please report the command line; STABILITY_DEBUG=1 shows the traceback)\n"
        )
        return 2
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(str(report) + "\n")
    return 0 if report.verdict == "stable" else 1


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.strerror or exc}: {exc.filename}"
    else:
        text = str(exc)
    return text if len(text) <= 2000 else text[:1997] + "..."


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
