"""Reading what the command line is given: numbers typed by the user, power-law specs, spectrum
files (eigenvalues, or a symmetric Hessian) and config files (TOML, JSON).

Numbers are parsed exactly from their decimal text after their magnitude is checked; files are
read as data (``allow_pickle=False``, UTF-8 text); nothing is ever evaluated.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from .._values import UserNumber, real_array
from ..configs import KINDS
from ..errors import ConfigError, close_matches, describe, listing

__all__ = [
    "ANALYSIS_KEYS",
    "CONFIG_KEYS",
    "CURVATURE_KEYS",
    "DATA_KEYS",
    "PATH_KEYS",
    "MAX_MATRIX",
    "MAX_SPECTRUM",
    "MAX_DATA",
    "MAX_TEXT_BYTES",
    "POWER_LAW_KEYS",
    "load_config",
    "load_data",
    "load_spectrum",
    "number",
    "parse_power_law",
    "short",
]


ANALYSIS_KEYS = (
    "optimizer",
    "lambda_max",
    "spectrum",
    "power_law",
    "data",
    "targets",
    "loss",
    "bias",
    "sampling",
    "batch_size",
    "noise",
)
CONFIG_KEYS = (
    tuple(
        dict.fromkeys([*ANALYSIS_KEYS[:1], *sorted(set().union(*(k.keys for k in KINDS.values())))])
    )
    + ANALYSIS_KEYS[1:]
)
"""Keys a config file may hold: every hyperparameter of every optimizer kind (each kind
refuses the keys it does not take) and the analysis keys."""

_BOOL_KEYS = ("nesterov", "amsgrad", "maximize", "bias")
_TEXT_KEYS = ("optimizer", "noise", "spectrum", "power_law", "data", "targets", "loss", "sampling")
PATH_KEYS = ("spectrum", "data", "targets")
"""Config keys holding a file path (read relative to the config file)."""

CURVATURE_KEYS = ("lambda_max", "spectrum", "power_law", "data")
DATA_KEYS = ("targets", "loss", "bias", "sampling")
"""Keys that describe the data (``--data``) and mean nothing without it."""


POWER_LAW_KEYS = ("nu", "Lambda", "zeta", "N")


MAX_SPECTRUM = 10**8
"""Eigenvalues read from a file (800 MB as float64); a longer spectrum is refused."""

MAX_MATRIX = 4096
"""Largest symmetric matrix read as a Hessian (``numpy.linalg.eigvalsh``: about 3 s here);
give the eigenvalues of a larger one."""

MAX_DATA = 2 * 10**8
"""Numbers read from a data file (1.6 GB as float64): a larger data set is refused."""

MAX_TEXT_BYTES = 10**8
"""Largest text spectrum file (about 4 million numbers, a few seconds to parse); larger ones
belong in ``.npy``."""


def number(text: str, name: str = "value") -> UserNumber:
    """Parse a decimal number exactly (``'0.1'`` -> 1/10); refuse anything else, and any
    magnitude a float cannot hold, before the exact value is built."""
    return UserNumber.parse(text, name)


def parse_power_law(text: str, name: str = "power_law") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in text.split(","):
        if "=" not in part:
            raise ConfigError(
                f"--power-law expects key=value pairs (nu=2,N=1e6), got {describe(part)}"
            )
        key, value = (s.strip() for s in part.split("=", 1))
        if key not in POWER_LAW_KEYS:
            raise ConfigError(
                f"unknown power-law key {describe(key)}; allowed: {listing(POWER_LAW_KEYS)}"
            )
        out[key] = number(value, f"power-law {key}")
    return out


def load_spectrum(path: str | Path) -> tuple[Any, str | None]:
    """Eigenvalues from a ``.npy``/``.txt``/``.csv`` file, and a note when a symmetric matrix
    (a Hessian) was read and its eigenvalues computed."""
    import numpy as np

    p = Path(path)
    _check_file(p, "spectrum", 2 * MAX_SPECTRUM)  # a matrix of them is refused below
    arr = _read_numbers(p, "spectrum", ndmin=1)
    note = None
    if getattr(arr, "ndim", 1) == 2 and arr.shape[0] == arr.shape[1] and arr.shape[0] > 1:
        if arr.shape[0] > MAX_MATRIX:
            raise ConfigError(
                f"spectrum file {path} holds a {arr.shape[0]}x{arr.shape[1]} matrix; at most "
                f"{MAX_MATRIX}x{MAX_MATRIX} are diagonalised here (about 3 s; the cost grows "
                "as n^3): give its eigenvalues (numpy.linalg.eigvalsh), or its top eigenvalues "
                "and density (stability.training.top_eigenvalues, slq_density)"
            )
        H = real_array(np.asarray(arr), f"matrix in {path}")
        if not np.allclose(H, H.T, rtol=1e-12, atol=0):
            raise ConfigError(
                f"spectrum file {path} holds a {H.shape[0]}x{H.shape[1]} matrix "
                "that is not symmetric; give eigenvalues (a 1-D array) or a "
                "symmetric Hessian"
            )
        arr = np.linalg.eigvalsh((H + H.T) / 2)
        note = (
            f"{path} holds a symmetric {H.shape[0]}x{H.shape[1]} matrix, read as a "
            "Hessian: its eigenvalues (numpy.linalg.eigvalsh, float64) were checked"
        )
    elif getattr(arr, "ndim", 1) > 1 and max(arr.shape) != arr.size:
        raise ConfigError(
            f"spectrum file {path} must hold a 1-D list of eigenvalues or a "
            f"square symmetric matrix, got shape {arr.shape}"
        )
    eig = real_array(np.asarray(arr), f"spectrum in {path}").ravel()
    if eig.size > MAX_SPECTRUM:
        raise ConfigError(
            f"spectrum file {path} holds {eig.size:,} eigenvalues; at most {MAX_SPECTRUM:.0e}"
        )
    return eig, note


def _check_file(p: Path, what: str, most: int) -> None:
    """A readable ``.npy``/``.txt``/``.csv``/``.dat`` file of at most ``most`` float64 numbers,
    and a text file small enough to parse in seconds."""
    if not p.is_file():
        raise ConfigError(f"{what} file not found: {p}")
    if p.suffix not in (".npy", ".txt", ".csv", ".dat"):
        raise ConfigError(f"{what} file must be .npy, .txt, .csv or .dat, got {describe(p.suffix)}")
    if p.stat().st_size > 8 * most + 4096:
        raise ConfigError(f"{what} file {p} holds more than {most:.0e} numbers")
    if p.suffix != ".npy" and p.stat().st_size > MAX_TEXT_BYTES:
        raise ConfigError(
            f"text {what} file {p} is larger than {MAX_TEXT_BYTES / 1e6:.0f} MB (slow to "
            "parse); save it with numpy.save and pass the .npy file"
        )


def _read_numbers(p: Path, what: str, ndmin: int) -> Any:
    """The array in a ``.npy`` file (never a pickle) or a text file (commas in ``.csv``)."""
    import numpy as np

    try:
        if p.suffix == ".npy":
            return np.load(p, allow_pickle=False, mmap_mode="r")
        return np.loadtxt(p, delimiter="," if p.suffix == ".csv" else None, ndmin=ndmin)
    except UnicodeDecodeError:
        raise ConfigError(f"{what} file {p} is not UTF-8 text") from None
    except (ValueError, OSError, EOFError) as exc:
        raise ConfigError(f"could not read {what} file {p}: {short(exc)}") from None


def load_data(path: str | Path, what: str = "data") -> Any:
    """Per-sample features (``what="data"``: rows are samples, a 2-D array) or targets (one
    value or one row per sample) from a ``.npy``/``.txt``/``.csv`` file."""
    import numpy as np

    p = Path(path)
    _check_file(p, what, MAX_DATA)
    arr = _read_numbers(p, what, ndmin=2 if what == "data" else 1)
    if what == "data" and getattr(arr, "ndim", 0) != 2:
        raise ConfigError(
            f"data file {path} must hold a 2-D array (one row of features per sample), got "
            f"shape {getattr(arr, 'shape', '?')}"
        )
    if getattr(arr, "ndim", 0) > 2:
        raise ConfigError(f"{what} file {path} must hold a 1-D or 2-D array, got {arr.shape}")
    return real_array(np.asarray(arr), f"{what} in {path}")


def short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


def _check_config_value(key: str, value: Any) -> None:
    """The type a config file's value must have (its range is checked by the analysis)."""
    if key in ("data", "targets", "loss", "sampling"):
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be text (a file path or a name), got {describe(value)}")
        return
    if key in _TEXT_KEYS:
        return
    if key in _BOOL_KEYS:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {describe(value)}")
        return
    if key == "betas":
        if not (isinstance(value, list) and len(value) == 2):
            raise ConfigError(f"betas must be a pair [beta1, beta2], got {describe(value)}")
        for i, x in enumerate(value):
            if isinstance(x, bool) or not isinstance(x, int | float):
                raise ConfigError(f"betas[{i}] must be a number, got {describe(x)}")
        return
    if key == "batch_size" and isinstance(value, list):
        if not value or len(value) > 1000:
            raise ConfigError(f"batch_size must list 1 to 1000 sizes, got {len(value)}")
        for i, x in enumerate(value):
            if isinstance(x, bool) or not isinstance(x, int | float):
                raise ConfigError(f"batch_size[{i}] must be a number, got {describe(x)}")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} must be a number, got {describe(value)}")


def load_config(path: str) -> dict[str, Any]:
    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml"):
        raise ConfigError(f"config {path}: YAML is not supported; use a .toml or .json file")
    if p.suffix.lower() not in (".toml", ".json"):
        raise ConfigError(f"config {path} must be a .toml or .json file, got {describe(p.suffix)}")
    if not p.is_file():
        raise ConfigError(f"config file not found: {path}")
    if p.stat().st_size > 10**7:
        raise ConfigError(f"config {path} is larger than 10 MB")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config {path} is not UTF-8 text") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ConfigError(f"malformed config {path}: {short(exc)}") from None
    except ValueError as exc:  # an integer of more than 4,300 digits (int_max_str_digits)
        raise ConfigError(
            f"config {path}: a number is too long to read ({short(exc)}); numbers must be "
            "finite decimals such as 0.1 or 1e-3"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a table/object of keys")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {listing(unknown)}; allowed: {listing(CONFIG_KEYS, 40)}"
            + close_matches(unknown, CONFIG_KEYS)
        )
    for key, value in data.items():
        _check_config_value(key, value)
    for key in PATH_KEYS:
        if isinstance(data.get(key), str):
            path_in = Path(data[key])
            data[key] = str(path_in if path_in.is_absolute() else p.parent / path_in)
    return data
