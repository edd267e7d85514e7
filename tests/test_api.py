"""The public API does not change by accident.

``api_snapshot.json`` records ``__all__`` of the package and of every public module, taken
before the package was reorganised into area packages. A name may leave the API or move only
through an entry in the tables below (with its reason).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

SNAPSHOT = json.loads((Path(__file__).parent / "api_snapshot.json").read_text())


@pytest.mark.parametrize("module", sorted(SNAPSHOT))
def test_public_names_are_unchanged(module):
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == SNAPSHOT[module]
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, missing
