"""``python -m stability.cli`` runs the command line (as ``python -m stability`` does)."""

from __future__ import annotations

from .main import main

raise SystemExit(main())
