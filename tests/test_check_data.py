"""``check(config, data=...)`` and ``stability check --data``: the data noise model in reports
and on the command line (issue 20)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import stability as stb
from stability.cli import main

CFG = {"optimizer": "sgd", "lr": 0.001, "momentum": 0.9}


@pytest.fixture(scope="module")
def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    return X, y.astype(float)


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_report_names_the_data_model_and_shows_the_gaussian_beside_it(digits):
    rep = stb.check(CFG, data=digits, batch_size=4)
    n = rep.noise
    assert n["kind"] == "data" and n["model"].startswith("data")
    assert n["lower"] <= n["rho"] <= n["upper"] and n["bounded"] == (n["upper"] < 1)
    assert rep.verdict == ("stable" if n["bounded"] else "unstable")
    per = n["per_sample"]
    assert per["samples"] == 1797 and per["sample_lambda_max"]["max"] > 50 * per["lambda_max_H"]
    assert per["noise_level_vs_gaussian"] > 2  # heavy-tailed pixels
    # one sample's curvature alone: 2 B (1 - mu) / max lambda_max(H_i)
    assert n["implied_lr_bound"] == pytest.approx(
        2 * 4 * 0.1 / per["sample_lambda_max"]["max"], rel=1e-12
    )
    g = n["gaussian"]
    assert g["max_stable_lr"] > 10 * rep.max_stable_lr  # the Gaussian model is far too permissive
    text = str(rep)
    assert "model: data, exact mean-square" in text and "Gaussian model on the same H" in text
    assert any("too permissive" in c for c in rep.caveats)
    assert any("edge of stability" in c and "StabilityMonitor" in c for c in rep.caveats)
    assert "MSELoss()" in text
    json.dumps(rep.to_dict())


def test_the_largest_stable_lr_from_the_data_is_the_rho_edge(digits):
    rep = stb.check(CFG, data=digits, batch_size=16)
    data = stb.PerSampleCurvature.from_features(*digits)
    edge = rep.max_stable_lr
    below = stb.noise.mean_square_radius(stb.from_torch_sgd(edge * 0.999, 0.9).algorithm, data, 16)
    above = stb.noise.mean_square_radius(stb.from_torch_sgd(edge * 1.001, 0.9).algorithm, data, 16)
    assert below.stable and not above.stable
    assert "from the data" in rep.max_lr_binding
    crit = rep.noise["critical_batch_size"]
    at = stb.noise.mean_square_radius(stb.from_torch_sgd(0.001, 0.9).algorithm, data, crit)
    before = stb.noise.mean_square_radius(stb.from_torch_sgd(0.001, 0.9).algorithm, data, crit - 1)
    assert at.stable and not before.stable


def test_the_gaussian_caveat_says_how_to_pass_data():
    rep = stb.check(CFG, spectrum=[1.0, 0.5, 0.1], batch_size=4)
    assert rep.noise["kind"] == "gaussian"
    assert any("off by an order of magnitude" in c and "data=" in c for c in rep.caveats)


def test_data_forms_and_sampling(digits):
    X, y = digits[0][:400], digits[1][:400]
    a = stb.check(CFG, data=(X, y), batch_size=8)
    b = stb.check(CFG, data=X, batch_size=8)
    c = stb.check(CFG, data=stb.PerSampleCurvature.from_features(X), batch_size=8)
    assert a.noise["rho"] == b.noise["rho"] == c.noise["rho"]
    w = stb.check(CFG, data=X, batch_size=8, sampling="without_replacement")
    assert w.noise["kappa"] == pytest.approx((400 - 8) / (8 * 399))
    assert w.noise["rho"] == pytest.approx(a.noise["rho"] * w.noise["kappa"] * 8, rel=1e-6)
    full = stb.check(CFG, data=X, batch_size=400, sampling="without_replacement")
    assert full.noise["rho"] == 0.0 and full.noise["bounded"]


def test_without_a_batch_size_data_gives_the_noiseless_verdict(digits):
    rep = stb.check(CFG, data=digits)
    assert rep.noise is None and rep.spectrum.startswith("the data's H")
    lam = stb.PerSampleCurvature.from_features(*digits).eigenvalues
    assert rep.strict == stb.check(CFG, spectrum=lam).strict


def test_a_schedule_is_checked_step_by_step_with_the_data_model(digits):
    edge = stb.check(CFG, data=digits, batch_size=16).max_stable_lr
    base = edge / 3  # steps at 1/3, 2/3, 4/3 and 8/3 of the data's edge
    sched = stb.ltv.Schedule(np.array([1.0, 2.0, 4.0, 8.0]), "ramp")
    rep = stb.check({**CFG, "lr": base}, data=digits, batch_size=16, schedule=sched)
    assert rep.schedule["first_unstable_step"] == 2 and rep.verdict == "unstable"
    data = stb.PerSampleCurvature.from_features(*digits)
    for f, want in ((2, True), (4, False)):
        alg = stb.from_torch_sgd(base * f, 0.9).algorithm
        assert stb.noise.mean_square_radius(alg, data, 16).stable == want


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"data": ([[1.0], [2.0]],), "spectrum": [1.0]}, "not both"),
        ({"data": ([[1.0], [2.0]],), "noise": "se0"}, "data's own noise"),
        ({"spectrum": [1.0], "sampling": "without_replacement"}, "needs data="),
        ({"data": ([[1.0], [2.0]],), "sampling": "shuffled"}, "sampling must be one of"),
        ({"data": "X.npy"}, "X"),
    ],
)
def test_check_refuses_bad_data_arguments(kwargs, match):
    with pytest.raises(stb.ConfigError, match=match):
        stb.check(CFG, batch_size=1, **kwargs)


def test_adam_needs_the_preconditioned_per_sample_curvature():
    X = np.random.default_rng(0).standard_t(3, size=(200, 4))
    adam = {"optimizer": "adam", "lr": 0.001}
    with pytest.raises(stb.ConfigError, match=r"P\^-1/2 H_i P\^-1/2"):
        stb.check(adam, data=X, batch_size=4)
    P = np.sqrt(np.mean(X**2, axis=0)) + 1e-8  # a frozen preconditioner for the features
    pre = stb.PerSampleCurvature.from_features(X / np.sqrt(P), bias=False)
    rep = stb.check(adam, data=pre, batch_size=4)
    assert rep.noise["kind"] == "data" and rep.adam is not None
    assert any("P^-1 H" in c for c in rep.caveats)


def test_cli_data_verdict_and_json(digits, tmp_path, capsys):
    X, y = digits
    np.save(tmp_path / "X.npy", X)
    np.savetxt(tmp_path / "y.csv", y, delimiter=",")
    argv = ["check", "--lr", "0.001", "--momentum", "0.9", "--data", str(tmp_path / "X.npy")]
    code, out, err = run([*argv, "--targets", str(tmp_path / "y.csv"), "--batch-size", "16",
                          "--json"], capsys)  # fmt: skip
    d = json.loads(out)
    api = stb.check(CFG, data=digits, batch_size=16)
    assert d["noise"]["rho"] == pytest.approx(api.noise["rho"], rel=1e-9)
    assert code == (0 if api.verdict == "stable" else 1) and not err
    code, out, _ = run([*argv, "--batch-size", "1", "--sampling", "without_replacement",
                        "--loss", "half_mse", "--no-bias"], capsys)  # fmt: skip
    assert code == 1 and "drawn without replacement" in out and "half_mse" in out
    assert "(with a bias)" not in out


def test_cli_data_in_a_config_file_is_read_relative_to_it(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.standard_normal((50, 3)))
    (tmp_path / "run.toml").write_text(
        'optimizer = "sgd"\nlr = 0.01\ndata = "X.npy"\nbatch_size = 4\n'
        'sampling = "without_replacement"\n'
    )
    code, out, err = run(["check", "--config", str(tmp_path / "run.toml")], capsys)
    assert code == 0 and "data's H" in out and not err


@pytest.mark.parametrize(
    ("files", "extra", "match"),
    [
        ({"X.npy": "pickle"}, [], "could not read data file"),
        ({"X.npy": "1d"}, [], "must hold a 2-D array"),
        ({"X.npy": "ok"}, ["--sampling", "x"], "invalid choice"),
        ({"X.npy": "ok", "y.npy": "short"}, ["--targets", "y.npy"], "Y must have n = 20 rows"),
        ({"X.npy": "ok"}, ["--noise", "se0"], "data's own"),
        ({"X.npy": "ok"}, ["--spectrum", "X.npy"], "exactly one of"),
        ({"X.pkl": "ok"}, [], "must be .npy, .txt, .csv or .dat"),
        ({}, [], "data file not found"),
        ({"X.npy": "nan"}, [], "finite"),
    ],
)
def test_cli_refuses_bad_data(files, extra, match, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for name, kind in files.items():
        if kind == "pickle":
            np.save(name, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        elif kind == "1d":
            np.save(name, rng.standard_normal(20))
        elif kind == "short":
            np.save(name, rng.standard_normal(5))
        elif kind == "nan":
            np.save(name, np.full((20, 2), np.nan))
        elif name.endswith(".npy"):
            np.save(name, rng.standard_normal((20, 2)))
        else:
            (tmp_path / name).write_bytes(b"\x80\x03junk")
    data = next(iter(files), "X.npy")
    code, _, err = run(["check", "--lr", "0.01", "--data", data, *extra], capsys)
    assert code == 2 and err.startswith("error: ") and match in err and "Traceback" not in err


def test_cli_data_with_adam_is_refused(tmp_path, capsys):
    np.save(tmp_path / "X.npy", np.random.default_rng(0).standard_normal((20, 2)))
    argv = ["check", "--optimizer", "adam", "--lr", "0.001", "--data", str(tmp_path / "X.npy")]
    code, _, err = run(argv, capsys)
    assert code == 2 and "preconditioned per-sample curvature" in err


@pytest.mark.parametrize("flag", [["--sampling", "without_replacement"], ["--no-bias"]])
def test_cli_data_flags_need_data(flag, capsys):
    code, _, err = run(["check", "--lr", "0.1", "--spectrum", "x.npy", *flag], capsys)
    assert code == 2 and "give --data too" in err


def test_cli_config_values_for_data_are_typed(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text('optimizer = "sgd"\nlr = 0.1\ndata = 3\n')
    code, _, err = run(["check", "--config", str(tmp_path / "bad.toml")], capsys)
    assert code == 2 and "data must be text" in err
