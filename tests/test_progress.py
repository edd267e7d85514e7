"""Progress lines: silent unless switched on, shown for the long loops (noise sums, exact
verdicts on eigenvalue lists, the largest-lr search, sweeps with a run-time estimate)."""

from __future__ import annotations

import functools
import io

import numpy as np

import stability as stb
from stability import progress
from stability.cli import main
from stability.cli import sweep as sweep_mod
from stability.noise import sums as noisesum


def test_nothing_is_printed_unless_switched_on(capsys):
    progress.update("noise sum U", 1, 2)
    with progress.reporting(False):
        progress.update("noise sum U", 1, 2)
    out = io.StringIO()
    with progress.reporting(stream=out):  # a task shorter than a second prints nothing
        progress.update("quick", 1, 2)
        progress.update("quick", 2, 2)
    assert capsys.readouterr().err == "" and out.getvalue() == ""


def test_long_noise_sums_and_the_largest_lr_search_report(monkeypatch):
    monkeypatch.setattr(noisesum, "CHUNK", 1000)
    out = io.StringIO()
    lam = np.geomspace(1e-4, 1.0, 5000)
    with progress.reporting(stream=out, after=0.0, every=0.0):
        r = stb.check({"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}, spectrum=lam, batch_size=8)
    text = out.getvalue()
    assert "noise sum U: 100.0% done" in text
    assert "largest stable lr:" in text and "s left" in text
    assert r.noise["U"] > 0  # the report itself is unchanged by reporting


def test_per_eigenvalue_test_reports():
    M = 14
    alg = stb.MemoryAlgorithm(0.5, [0] * M, [0] * M, np.zeros((M, M)).tolist())
    out = io.StringIO()
    with progress.reporting(stream=out, after=0.0, every=0.0):
        assert stb.is_strictly_stable(alg, np.linspace(0.1, 3.9, 20)).stable
    assert "Schur-Cohn test per eigenvalue" in out.getvalue()


def test_sweep_announces_its_run_time_before_the_rest(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep_mod, "SWEEP_CHUNK", 1000)
    code = main(
        ["sweep", "--lr", "0.01:1:50", "--momentum", "0:0.9:100", "--lambda-max", "10",
         "--out", str(tmp_path / "g.csv"), "--progress"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0
    first = err.index("estimated run time")
    assert "sweep: 5,000 configs; estimated run time ~" in err
    assert first < err.index("100.0%")


def test_cli_check_progress_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        progress, "reporting", functools.partial(progress.reporting, after=0.0, every=0.0)
    )
    monkeypatch.setattr(noisesum, "CHUNK", 500)
    spec = tmp_path / "eig.npy"
    np.save(spec, np.geomspace(1e-4, 1.0, 3000))
    args = ["check", "--lr", "0.001", "--momentum", "0.9", "--spectrum", str(spec)]
    assert main([*args, "--batch-size", "8", "--progress"]) == 0
    captured = capsys.readouterr()
    assert "noise sum U:" in captured.err and "STABLE" in captured.out.upper()
