"""Coercion of user-supplied numbers into exact sympy values, with validation.

Numbers given exactly (``int``, :class:`fractions.Fraction`) stay exact; floats become sympy
``Float`` carrying the exact binary value of the double; sympy expressions pass through.
Strings are refused: nothing the user supplies is ever parsed or evaluated.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import Any

import sympy as sp

from .errors import ConfigError

__all__ = ["check_range", "to_exact", "to_float", "to_sympy"]


def _describe(value: Any) -> str:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float | numbers.Real) and not isinstance(value, Fraction | bool):
        try:
            return repr(float(value))
        except (TypeError, ValueError):
            pass
    if isinstance(value, Fraction):
        return str(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
        raise ConfigError(f"{name} must be a number, got a string {_describe(value)}")
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number, got a bool {value!r}")
    if isinstance(value, sp.Basic):
        if not isinstance(value, sp.Expr):
            raise ConfigError(f"{name} must be a scalar expression, got {_describe(value)}")
        if value.is_number:
            if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or value.is_finite is False:
                raise ConfigError(f"{name} must be finite, got {value}")
            if value.is_real is False:
                raise ConfigError(f"{name} must be real, got {value}")
        return value
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    if isinstance(value, numbers.Integral):
        return sp.Integer(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            raise ConfigError(f"{name} must be finite, got {x}")
        return sp.Float(x)
    if hasattr(value, "shape") and getattr(value, "shape", None) == () and hasattr(value, "item"):
        return to_sympy(value.item(), name)
    if hasattr(value, "item") and callable(value.item):
        try:
            return to_sympy(value.item(), name)
        except (TypeError, ValueError) as exc:  # e.g. multi-element tensors
            raise ConfigError(f"{name} must be a scalar number, got {_describe(value)}") from exc
    if isinstance(value, numbers.Complex):
        raise ConfigError(f"{name} must be real, got {value!r}")
    raise ConfigError(f"{name} must be a number, got {type(value).__name__} {_describe(value)}")


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
    return float(expr)


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
    bad = (
        (low is not None and (x < low if not low_open else x <= low))
        or (high is not None and (x > high if not high_open else x >= high))
    )
    if bad:
        raise ConfigError(f"{name} must be in {_interval(low, high, low_open, high_open)}, "
                          f"got {_describe(value)}")
    return expr


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(-inf" if low is None else ("(" if low_open else "[") + _fmt(low)
    right = "inf)" if high is None else _fmt(high) + (")" if high_open else "]")
    return f"{left}, {right}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)
