"""The command line's grammar: the ``check``, ``derive`` and ``sweep`` subcommands with their
help, examples and exit codes, typed flags, and errors that suggest the close match
(``--lamda-max``: did you mean ``--lambda-max``?, :func:`stability.errors.close_matches`)."""

from __future__ import annotations

import argparse
import re
import textwrap
from typing import Any

from .. import __version__
from ..configs import ALIASES, KINDS
from ..errors import ConfigError, close_matches, describe
from .inputs import number, parse_power_law
from .sweep import MAX_CONFIGS, Axis

__all__ = ["EXIT_CODES", "build_parser"]

EXIT_CODES = (
    "exit codes: 0 stable, 1 unstable or marginal, 2 invalid input or a file that cannot be\n"
    "read or written (the reason on stderr as error: ...; never a traceback)"
)
_EXIT_WRITTEN = (
    "exit codes: 0 done, 2 invalid input or a file that cannot be read or written (the reason\n"
    "on stderr as error: ...; never a traceback)"
)

_VOCABULARY = (
    "heavy ball with step alpha and momentum beta is torch SGD: --lr alpha --momentum beta; "
    "Nesterov adds --nesterov; plain gradient descent is --momentum 0"
)  # the flags' spelling of errors.METHOD_VOCABULARY

_TOP_EPILOG = """\
examples:
  stability check --optimizer sgd --lr 0.1 --momentum 0.9 --lambda-max 50
  stability derive heavy_ball
  stability sweep --lr 0.001:1:1000 --momentum 0:0.99:100 --lambda-max 10 --out grid.csv

run "stability COMMAND --help" for a command's flags and examples.

exit codes: 0 stable (check) or done (derive, sweep), 1 unstable or marginal (check), 2 invalid
input or a file that cannot be read or written (the reason on stderr as error: ...)
"""

_CHECK_EPILOG = f"""\
examples:
  stability check --optimizer sgd --lr 0.1 --momentum 0.9 --lambda-max 50
  stability check --lr 0.1 --momentum 0.9 --power-law nu=2,N=1e6 --batch-size 32
  stability check --lr 0.01 --momentum 0.9 --data X.npy --targets y.npy --batch-size 16
  stability check --config examples/run.toml --json

{textwrap.fill(_VOCABULARY + ".", 88)}

{EXIT_CODES}
"""

_DERIVE_EPILOG = f"""\
examples:
  stability derive heavy_ball                     # LaTeX on standard output
  stability derive nesterov --latex nesterov.tex  # a standalone document
  stability derive sgd --latex sgd.tex --pdf      # and its PDF (needs pdflatex)

{_EXIT_WRITTEN}
"""

_SWEEP_EPILOG = f"""\
examples:
  stability sweep --lr 0.001:1:1000 --momentum 0:0.99:100 --lambda-max 10 --out grid.csv
  stability sweep --lr 0.01,0.1 --momentum 0.9 --power-law nu=2,N=1e6 --batch-size 32 \\
      --out grid.npz

axes: a value (0.1), a list (0.1,0.2,0.5) or a range start:stop:num (linspace).
columns: every axis, stable, margin (the smallest condition margin), and U with --batch-size.

{_EXIT_WRITTEN}
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises our error (with a close match) instead of exiting itself."""

    def error(self, message: str) -> None:
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        if unknown:
            flags = [w for w in unknown.group(1).split() if w.startswith("-")]
            known = [s for a in self._actions for s in a.option_strings] + [
                s for p in _subparsers(self) for a in p._actions for s in a.option_strings
            ]
            raise ConfigError(message + close_matches([f.split("=")[0] for f in flags], known))
        choice = re.search(r"invalid choice: '([^']*)'", message)
        if choice:
            options = re.search(r"\(choose from (.*)\)", message)
            words = re.findall(r"'([^']*)'", options.group(1)) if options else []
            raise ConfigError(message + close_matches([choice.group(1)], words))
        raise ConfigError(message)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out.extend(action.choices.values())
    return out


def _as_arg(fn: Any, name: str) -> Any:
    """Wrap a parser so argparse shows our message (it hides other exceptions' text)."""

    def parse(text: str) -> Any:
        try:
            return fn(text, name)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name
    return parse


def _batch_sizes(text: str, name: str) -> Any:
    """One batch size, or a comma-separated list of them (at most 1000)."""
    if "," not in text:
        return number(text, name)
    parts = text.split(",")
    if len(parts) > 1000:
        raise ConfigError(f"{name} takes at most 1000 sizes, got {len(parts)}")
    return [number(x.strip(), name) for x in parts]


def _num_arg(name: str) -> Any:
    return _as_arg(number, name)


def _grid(text: str, name: str) -> Any:
    """``a``, ``a,b,c`` or ``start:stop:num``, as a lazy :class:`~stability.cli.sweep.Axis`."""

    if len(text) > 100_000:
        raise ConfigError(f"{name} list is longer than 100,000 characters")
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ConfigError(f"{name} range must be start:stop:num, got {describe(text)}")
        start, stop = (float(number(x, name)) for x in parts[:2])
        num = number(parts[2], f"{name} count")
        if num.denominator != 1 or not 1 <= num <= MAX_CONFIGS:
            raise ConfigError(
                f"{name} count must be an integer in [1, 1e9], got {describe(parts[2])}"
            )
        return Axis.linspace(name, start, stop, int(num))
    return Axis.of(name, [float(number(x, name)) for x in text.split(",")])


def _grid_arg(name: str) -> Any:
    return _as_arg(_grid, name)


def _curvature_args(
    p: argparse.ArgumentParser, noise_choices: list[str], default: Any, data: bool
) -> None:
    """The curvature and noise options shared by ``check`` and ``sweep`` (``data``: the
    command also takes ``--data``)."""
    g = p.add_argument_group("curvature (give exactly one)")
    g.add_argument(
        "--lambda-max",
        dest="lambda_max",
        type=_num_arg("lambda_max"),
        metavar="L",
        help="the largest Hessian eigenvalue (sharpness): every curvature in (0, L]",
    )
    g.add_argument(
        "--spectrum",
        metavar="FILE",
        help="Hessian eigenvalues (.npy, .txt or .csv), or a symmetric Hessian matrix",
    )
    g.add_argument(
        "--power-law",
        dest="power_law",
        metavar="SPEC",
        type=_as_arg(parse_power_law, "power_law"),
        help="a power-law spectrum lambda_k = Lambda k^-nu, e.g. nu=2,N=1e6 (keys nu, Lambda, "
        "zeta, N; N omitted: infinite)",
    )
    n = p.add_argument_group("mini-batch noise")
    n.add_argument(
        "--batch-size",
        dest="batch_size",
        metavar="B",
        type=_as_arg(_batch_sizes, "batch_size") if data else _num_arg("batch_size"),
        help="the batch size: adds the mini-batch noise verdict and the critical batch size "
        f"(needs a spectrum{', a power law or --data' if data else ' or a power law'})"
        + ("; a list such as 1,8,32,128 checks each and prints the table" if data else ""),
    )
    n.add_argument(
        "--noise",
        choices=noise_choices,
        default=default,
        help="the noise model on a spectrum (default gaussian: exact for Gaussian features"
        + ("; with --data the data's own noise is used)" if data else ")"),
    )


def _check_parser(sub: Any) -> None:
    c = sub.add_parser(
        "check",
        help="the verdict of one optimizer configuration",
        description=textwrap.fill(
            "Check one optimizer configuration against what is known about the "
            "curvature: the exact noiseless verdict with margins, the mini-batch noise verdict "
            "with --batch-size, and the largest stable learning rate at these settings.",
            88,
        ),
        epilog=_CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument(
        "--config",
        metavar="FILE",
        help="TOML or JSON file with the same keys as the flags (flags given beside it "
        "override its values; paths in it are read relative to it)",
    )
    o = c.add_argument_group("optimizer")
    o.add_argument(
        "--optimizer",
        choices=sorted({*KINDS, *(a for a in ALIASES if "." not in a or a in KINDS)}),
        metavar="NAME",
        help="sgd (torch, the default), optax.sgd, keras.sgd, adam, adamw, optax.adam, "
        "optax.adamw (Adam is read with a frozen preconditioner: give the spectrum of P^-1 H)",
    )
    o.add_argument(
        "--lr",
        "--learning-rate",
        dest="lr",
        type=_num_arg("lr"),
        help="the learning rate (torch's lr; optax's and keras' learning_rate)",
    )
    o.add_argument(
        "--momentum",
        type=_num_arg("momentum"),
        help="momentum in [0, 1) (heavy ball's beta)",
    )
    o.add_argument(
        "--dampening", type=_num_arg("dampening"), help="torch SGD's dampening in [0, 1)"
    )
    o.add_argument(
        "--weight-decay",
        dest="weight_decay",
        type=_num_arg("weight_decay"),
        help="weight decay (coupled L2 for SGD and Adam, decoupled for AdamW)",
    )
    o.add_argument("--nesterov", action="store_true", help="Nesterov momentum (torch's nesterov)")
    o.add_argument("--beta1", type=_num_arg("beta1"), help="Adam's first-moment decay")
    o.add_argument("--beta2", type=_num_arg("beta2"), help="Adam's second-moment decay")
    o.add_argument("--eps", type=_num_arg("eps"), help="Adam's epsilon")
    _curvature_args(c, ["gaussian", "translation_invariant", "se0"], None, data=True)
    _data_args(c)
    out = c.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the report as JSON")
    out.add_argument(
        "--progress",
        action="store_true",
        help="progress lines on stderr for long sums (default: when stderr is a terminal)",
    )


def _data_args(c: argparse.ArgumentParser) -> None:
    """``check --data``: a linear model's features, targets and loss, and the sampling."""
    d = c.add_argument_group("data (the mini-batch verdict from the data itself)")
    d.add_argument(
        "--data",
        metavar="FILE",
        help="per-sample features of a linear model (.npy, .txt or .csv; one row per "
        "sample): its curvature and mini-batch noise come from the data",
    )
    d.add_argument("--targets", metavar="FILE", help="targets of --data (a value or row each)")
    d.add_argument(
        "--loss",
        choices=["mse", "half_mse"],
        help="the loss on --data (default mse: torch's MSELoss(), the mean over samples and "
        "outputs; half_mse is half of it)",
    )
    d.add_argument(
        "--no-bias",
        dest="bias",
        action="store_const",
        const=False,
        help="the linear model on --data has no bias (default: it has one, like nn.Linear)",
    )
    d.add_argument(
        "--sampling",
        choices=["with_replacement", "without_replacement"],
        help="how batches of --data are drawn: with_replacement (default; B independent "
        "samples) or without_replacement (each batch an independent random subset of B "
        "distinct samples); neither is a shuffled epoch of disjoint batches",
    )


def _derive_parser(sub: Any) -> None:
    d = sub.add_parser(
        "derive",
        help="the exact stability conditions of a method, in LaTeX",
        description=textwrap.fill(
            "Derive the update matrix, characteristic polynomial, effective learning "
            "rate, strict-stability conditions and the mini-batch noise term of a method, "
            "typeset in LaTeX.",
            88,
        ),
        epilog=_DERIVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument(
        "method",
        choices=["gd", "heavy_ball", "nesterov", "memory1", "momentum_kick", "sgd", "adam"],
        help="gd, heavy_ball, nesterov, memory1 (the general memory-1 method), momentum_kick, "
        "sgd (torch SGD with dampening) or adam (frozen preconditioner)",
    )
    d.add_argument("--latex", metavar="FILE", help="write a standalone .tex document here")
    d.add_argument("--pdf", action="store_true", help="also run pdflatex (when installed)")


def _sweep_parser(sub: Any) -> None:
    w = sub.add_parser(
        "sweep",
        help="certified verdicts for a grid of torch SGD configurations",
        description=textwrap.fill(
            "Certified verdicts and margins for every torch SGD configuration on a "
            "grid of learning rates, momenta, dampenings and weight decays, streamed to a CSV or "
            "NPZ file (up to 1e9 configurations).",
            88,
        ),
        epilog=_SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = w.add_argument_group("grid axes")
    g.add_argument("--lr", required=True, type=_grid_arg("lr"), help="learning rates (required)")
    g.add_argument("--momentum", type=_grid_arg("momentum"), help="momenta in [0, 1)")
    g.add_argument("--dampening", type=_grid_arg("dampening"), help="dampenings in [0, 1)")
    g.add_argument(
        "--weight-decay", dest="weight_decay", type=_grid_arg("weight_decay"), help="decays"
    )
    g.add_argument("--nesterov", action="store_true", help="Nesterov momentum for every point")
    _curvature_args(w, ["gaussian", "se0"], "gaussian", data=False)
    o = w.add_argument_group("output")
    o.add_argument("--out", required=True, metavar="FILE", help="output file: .csv or .npz")
    o.add_argument(
        "--progress",
        action="store_true",
        help="progress line and run-time estimate on stderr (default: for large grids)",
    )


def build_parser() -> _Parser:
    """The ``stability`` command line."""
    parser = _Parser(
        prog="stability",
        description=textwrap.fill(
            "Stability analysis of SGD-type optimizers: exact verdicts for a learning "
            "rate, momentum and batch size before you train.",
            88,
        ),
        epilog=_TOP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"stability {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND"
    )
    _check_parser(sub)
    _derive_parser(sub)
    _sweep_parser(sub)
    return parser
