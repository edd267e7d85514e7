"""Every example runs headless and writes a non-empty figure."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


HEAVY = {"am1_vs_sgd"}  # long loss trajectories: run by make test-slow
PARAMS = [
    pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in HEAVY else [])
    for p in EXAMPLES
]


@pytest.mark.parametrize("path", PARAMS)
def test_example_runs_and_writes_figure(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = runpy.run_path(str(path))
    module["main"](str(tmp_path / "figure.png"))
    out = tmp_path / "figure.png"
    assert out.exists() and out.stat().st_size > 20_000
