"""The command line: ``stability check``, ``stability sweep``, ``stability derive``."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
