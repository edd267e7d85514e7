"""Coercion of user-supplied numbers into exact sympy values, with validation.

Numbers given exactly (``int``, :class:`fractions.Fraction`) stay exact; floats become sympy
``Float`` carrying the exact binary value of the double; sympy expressions pass through.
Strings are refused: nothing the user supplies is ever parsed or evaluated.
"""

from __future__ import annotations

import math
import numbers
import re
import sys
import warnings
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from .errors import ConfigError, describe, interval_text

__all__ = [
    "FLOAT_MAX",
    "UserNumber",
    "check_range",
    "float_array",
    "real_array",
    "square_matrix",
    "to_exact",
    "to_float",
    "to_sympy",
]

FLOAT_MAX = sys.float_info.max
"""Largest finite float: numbers beyond it are refused (they would become ``inf``)."""
_FLOAT_MAX_EXACT = Fraction(FLOAT_MAX)
_FLOAT_MIN_EXACT = Fraction(math.ulp(0.0))
_FLOAT_MAX_TEXT = "1.8e308"
_MAX_TEXT = 100  # characters of a number typed by a user


class UserNumber(Fraction):
    """An exact number parsed from text the user typed, printed as the user wrote it.

    >>> x = UserNumber.parse("1e-3", "lr")
    >>> x == Fraction(1, 1000), str(x)
    (True, '1e-3')
    >>> UserNumber.parse("1e400", "batch_size")
    Traceback (most recent call last):
    ...
    stability.errors.ConfigError: batch_size must be finite (|x| <= 1.8e308), got 1e400
    """

    __slots__ = ("text",)
    text: str

    @classmethod
    def parse(cls, text: str, name: str) -> UserNumber:
        """Exact value of a decimal literal (``0.1`` is 1/10), refusing what no float holds.

        The magnitude is checked from the float reading of the text before the exact value is
        built, so ``1e9999999`` is refused at once instead of building a huge integer.
        """
        if not isinstance(text, str):
            raise ConfigError(f"{name} must be a number, got {describe(text)}")
        raw = text.strip()
        if not raw or len(raw) > _MAX_TEXT or not _DECIMAL.fullmatch(raw):
            shown = raw if len(raw) <= 40 else raw[:37] + "..."
            raise ConfigError(
                f"{name} must be a finite number (a decimal such as 0.1 or 1e-3), got {shown!r}"
            )
        approx = float(raw)  # never raises on a matched literal; inf/0 on over/underflow
        if math.isinf(approx):
            raise ConfigError(f"{name} must be finite (|x| <= {_FLOAT_MAX_TEXT}), got {raw}")
        if approx == 0 and _NONZERO.search(raw.split("e")[0].split("E")[0]):
            raise ConfigError(
                f"{name} must be 0 or at least {math.ulp(0.0):.2g} in magnitude "
                f"(it is read as a float by the optimizers), got {raw}"
            )
        self = super().__new__(cls, raw)
        self.text = raw
        return self

    def __repr__(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text


_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_NONZERO = re.compile(r"[1-9]")


def _is_tensor(value: Any) -> bool:
    """A torch tensor, duck-typed (the core never imports torch)."""
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _tensor_to_numpy(value: Any, name: str) -> np.ndarray:
    """A tensor's values on the host: detached (a tensor that requires grad is read, not
    differentiated), complex and meta tensors refused by name."""
    if str(getattr(value, "device", "")) == "meta":
        raise ConfigError(f"{name} is a tensor on the meta device (it has no values)")
    t = value.detach()
    if t.is_complex():
        raise ConfigError(f"{name} must be real numbers, got complex values (dtype {t.dtype})")
    if t.dtype.is_floating_point and t.dtype.itemsize < 4:
        t = t.float()  # bfloat16/float16 have no numpy twin
    return np.asarray(t.cpu().numpy())


def float_array(value: Any, name: str) -> np.ndarray:
    """A float64 array of ``value`` with its type checked (not its values: see
    :func:`real_array`). For callers that range-check in their own pass over the data.

    Refuses strings, ``None``, mappings, ragged sequences, booleans, complex and non-numeric
    dtypes; object arrays are read element by element through :func:`to_float`.
    """
    if isinstance(value, str | bytes):
        raise ConfigError(f"{name} must be numeric, got a string {describe(value)}")
    if value is None or isinstance(value, Mapping):
        raise ConfigError(f"{name} must be numeric (an array of numbers), got {describe(value)}")
    if isinstance(value, np.ndarray):
        arr = value
    elif _is_tensor(value):
        arr = _tensor_to_numpy(value, name)
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                arr = np.asarray(value)
        except (ValueError, TypeError, OverflowError, Warning) as exc:
            raise ConfigError(
                f"{name} must be a rectangular array of numbers, got {describe(value)}"
            ) from exc
    kind = arr.dtype.kind
    if kind == "c":
        raise ConfigError(f"{name} must be real numbers, got complex values (dtype {arr.dtype})")
    if kind == "b":
        raise ConfigError(f"{name} must be numbers, got booleans")
    if kind == "O":
        if arr.size > 1_000_000:
            raise ConfigError(
                f"{name}: object arrays are limited to 1e6 entries, got "
                f"{arr.size}; pass a float array"
            )
        try:
            items = [to_float(x, name) for x in arr.ravel()]
        except ConfigError as exc:
            raise ConfigError(f"{name} must be numeric: {exc}") from None
        return np.array(items, dtype=float).reshape(arr.shape)
    if kind not in "fiu":
        raise ConfigError(f"{name} must be numbers, got an array of dtype {arr.dtype}")
    with np.errstate(over="ignore"):
        return arr.astype(float, copy=False)


def real_array(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    ndim: int | None = None,
    empty: bool = False,
) -> np.ndarray:
    """The one gate for numeric arrays: a finite, real float64 array in a range.

    Refuses strings, ``None``, mappings, ragged sequences, complex and object dtypes, NaN and
    infinities, values outside ``[low, high]`` (ends open or closed), a wrong number of
    dimensions and (unless ``empty``) empty input. Messages name ``name``, the allowed range
    and the value received.

    >>> real_array([1, 2.5], "eigenvalues", low=0)
    array([1. , 2.5])
    >>> real_array([1.5 + 100j], "eigenvalues")
    Traceback (most recent call last):
    ...
    stability.errors.ConfigError: eigenvalues must be real numbers, got complex values ...
    """
    out = float_array(value, name)
    if ndim is not None and out.ndim != ndim:
        raise ConfigError(f"{name} must be a {ndim}-D array, got shape {out.shape}")
    if out.size == 0 and not empty:
        raise ConfigError(f"{name} must not be empty")
    if out.size:
        lo, hi = out.min(), out.max()
        if not (math.isfinite(lo) and math.isfinite(hi)):
            bad = np.flatnonzero(~np.isfinite(out.ravel()))[0]
            raise ConfigError(
                f"{name} must be finite, got {describe(out.ravel()[bad])} "
                f"(at flat index {int(bad)})"
            )
        ok_lo = low is None or (lo > low if low_open else lo >= low)
        ok_hi = high is None or (hi < high if high_open else hi <= high)
        if not (ok_lo and ok_hi):
            flat = out.ravel()
            bad_mask = np.zeros(flat.shape, dtype=bool)
            if low is not None:
                bad_mask |= flat <= low if low_open else flat < low
            if high is not None:
                bad_mask |= flat >= high if high_open else flat > high
            i = int(np.flatnonzero(bad_mask)[0])
            raise ConfigError(
                f"{name} must be in {interval_text(low, high, low_open, high_open)}, "
                f"got {describe(flat[i])} (at flat index {i})"
            )
    return out


def square_matrix(
    value: Any,
    name: str,
    dim: int | None = None,
    *,
    symmetric: bool = False,
    psd: bool = False,
    positive_definite: bool = False,
) -> np.ndarray:
    """A finite real ``dim x dim`` matrix; a scalar means that multiple of the identity (needs
    ``dim``), a 1-D array a diagonal. Optionally symmetric, positive semi-definite or
    positive definite (checked with a relative tolerance of 1e-12).

    >>> square_matrix([1.0, 2.0], "H")
    array([[1., 0.],
           [0., 2.]])
    >>> square_matrix([[1.0, 2.0], [0.0, 1.0]], "C", symmetric=True)
    Traceback (most recent call last):
    ...
    stability.errors.ConfigError: C must be symmetric
    """
    arr = real_array(value, name)
    if arr.ndim == 0:
        if dim is None:
            raise ConfigError(f"{name} given as a scalar needs the dimension from H")
        arr = arr * np.eye(dim)
    elif arr.ndim == 1:
        arr = np.diag(arr)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or (dim is not None and arr.shape[0] != dim):
        want = f"square {dim}x{dim}" if dim is not None else "square"
        raise ConfigError(f"{name} must be a {want} matrix, got shape {arr.shape}")
    scale = 1e-12 * max(1.0, float(np.abs(arr).max()))
    if (symmetric or psd or positive_definite) and not np.allclose(arr, arr.T, atol=scale):
        raise ConfigError(f"{name} must be symmetric")
    if psd or positive_definite:
        low = float(np.linalg.eigvalsh((arr + arr.T) / 2).min())
        if positive_definite and not low > scale:
            raise ConfigError(
                f"{name} must be positive definite, got smallest eigenvalue {low:.3g}"
            )
        if low < -scale:
            raise ConfigError(
                f"{name} must be positive semi-definite, got smallest eigenvalue {low:.3g}"
            )
    return arr


def to_sympy(value: Any, name: str) -> sp.Expr:
    """Convert ``value`` to a sympy expression without parsing anything.

    Accepts Python/numpy integers and reals, :class:`~fractions.Fraction`, 0-d arrays, objects
    with ``.item()`` (e.g. a torch scalar tensor) and sympy expressions. Numeric values must be
    finite and real.

    >>> to_sympy(Fraction(1, 3), "lr")
    1/3
    >>> to_sympy("0.1", "lr")
    Traceback (most recent call last):
    ...
    stability.errors.ConfigError: lr must be a number, got a string '0.1'
    """
    if isinstance(value, str | bytes):
        raise ConfigError(f"{name} must be a number, got a string {describe(value)}")
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number, got a bool {value!r}")
    if isinstance(value, sp.Basic):
        if not isinstance(value, sp.Expr):
            raise ConfigError(f"{name} must be a scalar expression, got {describe(value)}")
        if value.is_number:
            if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or value.is_finite is False:
                raise ConfigError(f"{name} must be finite, got {value}")
            if value.is_real is False:
                raise ConfigError(f"{name} must be real, got {value}")
            if isinstance(value, sp.Rational):
                _check_magnitude(Fraction(int(value.p), int(value.q)), name, value)
        return value
    if isinstance(value, Fraction):
        _check_magnitude(value, name, value)
        return sp.Rational(value.numerator, value.denominator)
    if isinstance(value, numbers.Integral):
        _check_magnitude(Fraction(int(value)), name, value)
        return sp.Integer(int(value))
    if isinstance(value, numbers.Real):
        try:
            x = float(value)
        except OverflowError:
            raise ConfigError(
                f"{name} must be finite (|x| <= {_FLOAT_MAX_TEXT}), got {describe(value)}"
            ) from None
        if not math.isfinite(x):
            raise ConfigError(f"{name} must be finite, got {x}")
        return sp.Float(x)
    if isinstance(value, numbers.Complex) or (
        isinstance(value, np.generic) and np.iscomplexobj(value)
    ):
        raise ConfigError(f"{name} must be real, got {describe(value)}")
    if hasattr(value, "shape") and getattr(value, "shape", None) == () and hasattr(value, "item"):
        if (
            getattr(getattr(value, "dtype", None), "kind", "") == "c"
            or getattr(value, "is_complex", lambda: False)() is True
        ):
            raise ConfigError(f"{name} must be real, got {describe(value)}")
        return to_sympy(value.item(), name)
    if hasattr(value, "item") and callable(value.item):
        try:
            return to_sympy(value.item(), name)
        except (TypeError, ValueError, RuntimeError) as exc:  # e.g. multi-element tensors
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{name} must be a scalar number, got {describe(value)}") from exc
    raise ConfigError(f"{name} must be a number, got {describe(value)}")


def _check_magnitude(x: Fraction, name: str, shown: Any) -> None:
    """Refuse exact values no float can hold (the optimizers compute in floats)."""
    if abs(x) > _FLOAT_MAX_EXACT:
        raise ConfigError(
            f"{name} must be finite (|x| <= {_FLOAT_MAX_TEXT}), got {describe(shown)}"
        )


def to_exact(value: sp.Expr) -> sp.Expr:
    """Replace every ``Float`` in ``value`` by the exact rational of its binary value."""
    if isinstance(value, sp.Float):
        return sp.Rational(value)
    if isinstance(value, sp.Basic) and value.has(sp.Float):
        return value.xreplace({f: sp.Rational(f) for f in value.atoms(sp.Float)})
    return value


def to_float(value: Any, name: str) -> float:
    """A finite Python float from a numeric user value (refusing strings and symbols)."""
    expr = to_sympy(value, name)
    if expr.free_symbols:
        raise ConfigError(f"{name} must be numeric, got the expression {expr}")
    try:
        x = float(expr)
    except (TypeError, OverflowError):
        raise ConfigError(f"{name} must be a finite real number, got {describe(value)}") from None
    if not math.isfinite(x):
        raise ConfigError(
            f"{name} must be finite (|x| <= {_FLOAT_MAX_TEXT}), got {describe(value)}"
        )
    if x == 0 and not expr.is_zero:
        raise ConfigError(
            f"{name} must be 0 or at least {math.ulp(0.0):.2g} in magnitude "
            f"(it is used as a float), got {describe(value)}"
        )
    return x


def check_range(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> sp.Expr:
    """Coerce ``value`` with :func:`to_sympy` and, when it is numeric, check the interval.

    Symbolic values are returned unchecked (their range is the caller's business).

    >>> check_range(0.9, "momentum", 0, 1, high_open=True)
    0.900000000000000
    >>> check_range(1.2, "momentum", 0, 1, high_open=True)
    Traceback (most recent call last):
    ...
    stability.errors.ConfigError: momentum must be in [0, 1), got 1.2
    """
    expr = to_sympy(value, name)
    if expr.free_symbols:
        return expr
    x = to_exact(expr)
    bad = (low is not None and (x < low if not low_open else x <= low)) or (
        high is not None and (x > high if not high_open else x >= high)
    )
    if bad:
        raise ConfigError(
            f"{name} must be in {interval_text(low, high, low_open, high_open)}, "
            f"got {describe(value)}"
        )
    return expr
