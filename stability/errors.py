"""Exceptions raised by :mod:`stability`, and the wording of their messages.

The exceptions subclass builtins so callers can catch either the package error or the builtin
one. Messages say what, expected, found: :func:`describe` writes a received value the way the
user wrote it, :func:`listing` a list of allowed keys, :func:`interval_text` an allowed range.
"""

from __future__ import annotations

import itertools
import math
import numbers
import sys
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

__all__ = [
    "METHOD_VOCABULARY",
    "ConfigError",
    "EstimateWarning",
    "StabilityError",
    "close_matches",
    "describe",
    "interval_text",
    "listing",
    "show",
]

METHOD_VOCABULARY = (
    "heavy ball with step alpha and momentum beta is torch SGD with lr = alpha and momentum = "
    "beta; Nesterov is the same with nesterov = true; plain gradient descent has momentum 0"
)
"""The hint for the textbook names (heavy ball, Nesterov, alpha, beta) where a framework's
vocabulary is expected."""

_TEXTBOOK = {"heavy_ball", "heavyball", "heavy-ball", "nesterov", "gd", "alpha", "beta", "hb"}

_FLOAT_MAX_EXACT = Fraction(sys.float_info.max)
_FLOAT_MIN_EXACT = Fraction(math.ulp(0.0))


class StabilityError(Exception):
    """Base class of every error raised on purpose by :mod:`stability`."""


class EstimateWarning(UserWarning):
    """An estimate came back without the accuracy asked of it (an iteration stopped at its
    limit): the value is returned, with what it certifies, and this warning says so."""


class ConfigError(StabilityError, ValueError):
    """An optimizer configuration or numeric input is invalid.

    The message names the parameter, the allowed range and the value received,
    e.g. ``"momentum must be in [0, 1), got 1.2"``.
    """


def describe(value: Any) -> str:
    """A value as the user wrote it, or as a decimal: never ``Fraction(9, 10)`` or
    ``np.float64(...)``; long values are cut.

    >>> describe(Fraction(9, 10)), describe(np.float64(-1.0)), describe(10**400)
    ('0.9', '-1.0', '1e+400')
    """
    if isinstance(value, Fraction) and isinstance(getattr(value, "text", None), str):
        return value.text  # a number as the user typed it (stability._values.UserNumber)
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        v = int(value)
        return str(v) if abs(v) < 10**15 else _sci(Fraction(v))
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return describe(value.numerator)
        return _sci(value)
    if isinstance(value, numbers.Real):
        try:
            return repr(float(value))
        except (TypeError, ValueError, OverflowError):
            pass
    if isinstance(value, numbers.Complex):
        return repr(complex(value))
    if isinstance(value, sp.Basic) and getattr(value, "is_number", False):
        if isinstance(value, sp.Rational):
            return describe(Fraction(int(value.p), int(value.q)))
        text = str(value)
    elif isinstance(value, str | bytes):
        text = repr(value)
    elif isinstance(value, np.ndarray):
        text = f"array of shape {value.shape} and dtype {value.dtype}"
    else:
        text = (
            f"{type(value).__name__} {value!r}"
            if not isinstance(value, numbers.Number)
            else repr(value)
        )
    return text if len(text) <= 60 else text[:57] + "..."


def show(value: Any) -> str:
    """The one rule for numbers shown to people (reports, reprs, LaTeX): exact values as
    integers or ``p/q``, floats with six significant digits (``%.6g``), expressions with their
    floats shortened the same way.

    >>> show(Fraction(1, 10)), show(0.1 / (1 - 0.9)), show(np.float32(0.3)), show(2)
    ('1/10', '1', '0.3', '2')
    >>> import sympy as sp
    >>> show(sp.Float(0.1) * sp.Symbol("lam")), show(sp.Rational(-3, 4))
    ('0.1*lam', '-3/4')
    """
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, Fraction):
        return (
            str(value.numerator)
            if value.denominator == 1
            else f"{value.numerator}/{value.denominator}"
        )
    if isinstance(value, sp.Rational):
        return str(value)
    if isinstance(value, float | np.floating | sp.Float):
        return f"{float(value):.6g}"
    if isinstance(value, sp.Basic):
        floats = {f: sp.Float(f"{float(f):.6g}") for f in value.atoms(sp.Float)}
        return sp.sstr(value.xreplace(floats), full_prec=False)
    return str(value)


def _sci(x: Fraction) -> str:
    """A decimal for an exact rational, without converting huge values to float."""
    if x == 0:
        return "0"
    if _FLOAT_MIN_EXACT <= abs(x) <= _FLOAT_MAX_EXACT:
        return repr(float(x))
    sign = "-" if x < 0 else ""
    x = abs(x)
    exp = (x.numerator.bit_length() - x.denominator.bit_length()) * 0.30102999566398
    e = math.floor(exp)
    mant = float(x / Fraction(10) ** e) if abs(e) < 5000 else 10 ** (exp - e)
    while mant >= 10:
        mant, e = mant / 10, e + 1
    while mant < 1:
        mant, e = mant * 10, e - 1
    return f"{sign}{mant:.6g}e{e:+d}"


def close_matches(words: Any, choices: Any) -> str:
    """A hint for mistyped names: `` (did you mean X?)`` per word with a close match among
    ``choices`` (the standard library's ``difflib``), and the heavy-ball vocabulary where a
    textbook name was used.

    >>> close_matches(["momentun"], ["lr", "momentum", "nesterov"])
    " (did you mean 'momentum'?)"
    >>> close_matches(["momentun", "nesterv"], ["momentum", "nesterov"])
    " (did you mean 'momentum' for 'momentun', 'nesterov' for 'nesterv'?)"
    >>> close_matches(["--lamda-max"], ["--lambda-max"])
    " (did you mean '--lambda-max'?)"
    """
    import difflib

    words = [str(w) for w in words]
    found = []
    for w in words:
        if w.strip("-").lower() in _TEXTBOOK:
            continue  # the vocabulary below says what to write instead
        hit = difflib.get_close_matches(w, [str(c) for c in choices], n=1, cutoff=0.6)
        if hit and hit[0] != w:
            found.append(f"{hit[0]!r}" + (f" for {w!r}" if len(words) > 1 else ""))
    text = f" (did you mean {', '.join(found)}?)" if found else ""
    if any(w.strip("-").lower() in _TEXTBOOK for w in words):
        text += f"; {METHOD_VOCABULARY}"
    return text


def listing(items: Any, limit: int = 10) -> str:
    """``[a, b, ...]`` with at most ``limit`` entries (and how many were left out).

    >>> listing(range(3)), listing(range(30), 2)
    ('[0, 1, 2]', '[0, 1, ... and 28 more]')
    """
    seq = list(itertools.islice(iter(items), limit + 1))
    total = len(items) if hasattr(items, "__len__") else None
    shown = ", ".join(repr(x) if isinstance(x, str) else describe(x) for x in seq[:limit])
    if len(seq) > limit:
        more = f"{total - limit}" if total is not None else "more"
        return f"[{shown}, ... and {more} more]"
    return f"[{shown}]"


def interval_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    """``[0, 1)``-style text of an interval (``None`` ends are infinite)."""
    left = "(-inf" if low is None else ("(" if low_open else "[") + _fmt(low)
    right = "inf)" if high is None else _fmt(high) + (")" if high_open else "]")
    return f"{left}, {right}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)
