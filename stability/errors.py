"""Exceptions raised by :mod:`stability`.

They subclass builtins so callers can catch either the package error or the builtin one.
"""

from __future__ import annotations

__all__ = ["ConfigError", "StabilityError"]


class StabilityError(Exception):
    """Base class of every error raised on purpose by :mod:`stability`."""


class ConfigError(StabilityError, ValueError):
    """An optimizer configuration or numeric input is invalid.

    The message names the parameter, the allowed range and the value received,
    e.g. ``"momentum must be in [0, 1), got 1.2"``.
    """
