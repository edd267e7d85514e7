"""Every example runs headless and writes a non-empty figure."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


HEAVY = {
    "am1_vs_sgd",
    "model_to_verdict",
    "minibatch_from_data",
    "find_lr_mlp",
}  # long runs: make test-slow
OWN_TEST = {"edge_of_stability"}  # full-batch training: its own slow test below
PARAMS = [
    pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in HEAVY else [])
    for p in EXAMPLES
    if p.stem not in OWN_TEST
]


@pytest.mark.parametrize("path", PARAMS)
def test_example_runs_and_writes_figure(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = runpy.run_path(str(path))
    module["main"](str(tmp_path / "figure.png"))
    out = tmp_path / "figure.png"
    assert out.exists() and out.stat().st_size > 20_000


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_edge_of_stability_plateaus_at_the_derived_thresholds(tmp_path, monkeypatch):
    """Full-batch GD, heavy ball, Nesterov and Adam on sklearn digits: the (preconditioned)
    sharpness plateaus within 10% of the threshold the package derives."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    module = runpy.run_path(str(Path(EXAMPLES[0]).parent / "edge_of_stability.py"))
    plateaus = module["main"](str(tmp_path / "figure.png"))
    assert set(plateaus) == set(module["RUNS"])
    for name, ratio in plateaus.items():
        assert 0.9 <= ratio <= 1.1, (name, ratio)
    assert (tmp_path / "figure.png").stat().st_size > 20_000
