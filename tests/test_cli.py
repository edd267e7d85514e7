"""check() reports and the command line: verdicts, JSON, exit codes and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import ClassVar

import numpy as np
import pytest

import stability as stb
from stability import check
from stability.cli import main


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_report_contents():
    r = check({"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}, lambda_max=30.0)
    assert r.verdict == "stable" and r.effective_lr == pytest.approx(1.0)
    assert r.strict["lambda_crit"] == pytest.approx(38.0)
    assert r.max_stable_lr == pytest.approx(0.1 * 38 / 30, rel=1e-5)
    assert "Linearised" in r.caveats[0]
    json.dumps(r.to_dict())
    assert "<pre>" in r._repr_html_() and r._repr_latex_().startswith("$")


def test_check_noise_and_schedule():
    from stability import ltv
    from stability import noise as nz

    r = check(
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9},
        spectrum=nz.power_law(2.0, Lambda=10, N=10_000),
        batch_size=32,
        schedule=ltv.schedule("linear_warmup", 200, warmup=20),
    )
    assert r.noise is not None and r.noise["bounded"] and r.noise["critical_batch_size"] <= 32
    assert r.schedule["ues"] and r.schedule["bibo"]
    small = check(
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9},
        spectrum=nz.power_law(2.0, Lambda=10, N=10_000),
        batch_size=2,
    )
    assert small.verdict == "unstable" and not small.noise["bounded"]


def test_check_weight_decay_shift_is_exact():
    # heavy-ball-type torch SGD: stable iff lr (lambda + wd) < 2 (1 + mu)
    cfg = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 2.0}
    assert check(cfg, lambda_max=35.9).stable
    assert not check(cfg, lambda_max=36.1).stable


def test_check_param_groups_worst_verdict():
    class SGD:
        param_groups: ClassVar[list] = [
            {
                "params": [],
                "lr": 0.01,
                "momentum": 0.9,
                "dampening": 0,
                "weight_decay": 0,
                "nesterov": False,
            },
            {
                "params": [],
                "lr": 1.0,
                "momentum": 0.9,
                "dampening": 0,
                "weight_decay": 0,
                "nesterov": False,
            },
        ]

    r = check(SGD(), lambda_max=10.0)
    assert r.verdict == "unstable" and len(r.groups) == 2 and r.groups[0].stable
    assert "group 1" in str(r)


def test_cli_json_is_report_to_dict(capsys):
    code, out, _ = run(
        [
            "check",
            "--optimizer",
            "sgd",
            "--lr",
            "0.1",
            "--momentum",
            "0.9",
            "--lambda-max",
            "30",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    expected = check(
        {"optimizer": "torch.sgd", "lr": stb._values.to_sympy(0.1, "lr"), "momentum": 0.9},
        lambda_max=30,
    ).to_dict()
    got = json.loads(out)
    assert got["verdict"] == expected["verdict"] == "stable"
    assert got["strict"]["lambda_crit"] == pytest.approx(38.0)
    assert set(got) == set(expected)


def test_cli_unstable_exit_code(capsys):
    code, out, _ = run(["check", "--lr", "0.1", "--momentum", "0.9", "--lambda-max", "50"], capsys)
    assert code == 1 and "UNSTABLE" in out


def test_cli_spectrum_files_and_config(tmp_path, capsys):
    np.save(tmp_path / "eigs.npy", np.array([1.0, 5.0, 10.0]))
    np.savetxt(tmp_path / "eigs.txt", np.array([1.0, 5.0, 10.0]))
    for f in ("eigs.npy", "eigs.txt"):
        code, out, _ = run(
            [
                "check",
                "--lr",
                "0.1",
                "--momentum",
                "0.9",
                "--spectrum",
                str(tmp_path / f),
                "--batch-size",
                "64",
            ],
            capsys,
        )
        assert code == 0, out
    (tmp_path / "run.toml").write_text(
        'optimizer = "sgd"\nlr = 0.1\nmomentum = 0.9\nnesterov = true\n'
        "[power_law]\nnu = 2.0\nN = 1000\n"
    )
    code, out, err = run(["check", "--config", str(tmp_path / "run.toml")], capsys)
    assert code == 0, err
    (tmp_path / "run.json").write_text(
        json.dumps({"optimizer": "sgd", "lr": 0.5, "lambda_max": 100})
    )
    code, _, _ = run(["check", "--config", str(tmp_path / "run.json")], capsys)
    assert code == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--lr", "nan", "--lambda-max", "1"], "lr"),
        (["check", "--lr", "inf", "--lambda-max", "1"], "lr"),
        (["check", "--lr", "-0.1", "--lambda-max", "1"], "lr must be in (0, inf)"),
        (
            ["check", "--lr", "0.1", "--momentum", "1", "--lambda-max", "1"],
            "momentum must be in [0, 1)",
        ),
        (
            [
                "check",
                "--lr",
                "0.1",
                "--momentum",
                "0.9",
                "--dampening",
                "0.5",
                "--nesterov",
                "--lambda-max",
                "1",
            ],
            "nesterov=True requires",
        ),
        (["check", "--lr", "0.1", "--lambda-max", "-3"], "lambda_max must be in (0, inf)"),
        (["check", "--lr", "abc", "--lambda-max", "1"], "lr"),
        (
            ["check", "--lr", "__import__('pathlib').Path('PWNED').touch()", "--lambda-max", "1"],
            "lr must be a finite number",
        ),
        (["check", "--lr", "0.1"], "exactly one of"),
        (["check", "--lr", "0.1", "--lambda-max", "1", "--batch-size", "8"], "needs --spectrum"),
        (["check", "--lr", "0.1", "--power-law", "nu=2,foo=3"], "unknown power-law key"),
        (["check", "--lr", "0.1", "--power-law", "nu=0.3"], "nu must be in"),
        (["check", "--lr", "0.1", "--spectrum", "missing.npy"], "not found"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_cli_bad_input_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "PWNED").exists()  # nothing was evaluated


def test_cli_bad_config_files(tmp_path, capsys):
    bad = {
        "unknown.toml": "lr = 0.1\nmomentun = 0.9\nlambda_max = 1\n",
        "malformed.toml": "lr = = 0.1\n",
        "string.toml": 'lr = "0.1"\nlambda_max = 1\n',
        "expr.json": json.dumps({"lr": "__import__('os')", "lambda_max": 1}),
        "empty_spec.json": json.dumps({"lr": 0.1, "spectrum": []}),
        "neg_spec.json": json.dumps({"lr": 0.1, "spectrum": [1.0, -2.0]}),
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        code, _, err = run(["check", "--config", str(tmp_path / name)], capsys)
        assert code == 2 and err.startswith("error: "), (name, err)


def test_cli_entry_point_subprocess():
    out = subprocess.run(
        [sys.executable, "-m", "stability.cli", "check", "--lr", "x", "--lambda-max", "1"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and out.stderr.startswith("error:")


@pytest.mark.parametrize(
    ("n_configs", "steps", "band"),
    [(8, 1000, 0.15), pytest.param(40, 3000, 0.03, marks=pytest.mark.slow)],
)
def test_real_torch_sgd_follows_the_report(n_configs, steps, band):
    """Configs the report calls stable converge under real torch.optim.SGD; unstable ones
    diverge (points within ``band`` of the boundary skipped: they move slowly)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    eig = np.linspace(1.0, 10.0, 12)
    H = torch.tensor(np.diag(eig))
    checked = {"stable": 0, "unstable": 0}
    for _ in range(n_configs):
        mu = float(rng.uniform(0, 0.95))
        nesterov = bool(rng.random() < 0.3) and mu > 0
        damp = 0.0 if nesterov else float(rng.choice([0.0, 0.3]))
        wd = float(rng.choice([0.0, 0.5]))
        lr = float(np.exp(rng.uniform(np.log(0.01), np.log(1.0))))
        cfg = {
            "optimizer": "sgd",
            "lr": lr,
            "momentum": mu,
            "dampening": damp,
            "weight_decay": wd,
            "nesterov": nesterov,
        }
        rep = check(cfg, spectrum=list(eig))
        if abs(rep.strict["headroom"] - 1) < band:
            continue
        p = torch.nn.Parameter(torch.ones(eig.size, dtype=torch.float64))
        opt = torch.optim.SGD(
            [p], lr=lr, momentum=mu, dampening=damp, weight_decay=wd, nesterov=nesterov
        )
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * p @ H @ p).backward()
            opt.step()
        final = float(p.detach().abs().max())
        if rep.verdict == "stable":
            assert final < 1e-3, (cfg, final)
        else:
            assert not final < 1e3, (cfg, final)
        checked[rep.verdict] += 1
    assert min(checked.values()) >= n_configs // 8


def test_sweep_csv_matches_classical_region(tmp_path, capsys):
    out = tmp_path / "grid.csv"
    code, text, _ = run(
        [
            "sweep",
            "--lr",
            "0.01:1:60",
            "--momentum",
            "0:0.99:40",
            "--lambda-max",
            "10",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0 and "2,400 configs" in text
    data = np.genfromtxt(out, delimiter=",", names=True)
    classical = data["lr"] * 10 < 2 * (1 + data["momentum"])  # heavy-ball region
    assert np.array_equal(data["stable"].astype(bool), classical)


def test_sweep_npz_noise_column(tmp_path, capsys):
    out = tmp_path / "grid.npz"
    code, _, _ = run(
        [
            "sweep",
            "--lr",
            "0.01,0.1,0.5",
            "--momentum",
            "0.9",
            "--power-law",
            "nu=2,Lambda=10,N=500",
            "--batch-size",
            "16",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0
    z = np.load(out)
    assert z["U"].shape == z["stable"].shape == (3, 1, 1, 1)  # lr x momentum x damp. x wd
    lams = 10 * np.arange(1, 501, dtype=float) ** -2.0
    for i, lr in enumerate(z["lr"]):
        ref, got = nz_sum(lr, lams), z["U"][i, 0, 0, 0]
        assert (np.isinf(ref) and np.isinf(got)) or got == pytest.approx(ref)
        assert z["stable"][i, 0, 0, 0] == (z["strict_stable"][i, 0, 0, 0] and got < 1)


def nz_sum(lr, lams):
    from stability import noise as nz

    return nz.stability_sum(stb.from_torch_sgd(lr, 0.9).algorithm, lams, 16).U


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep", "--lr", "0.1:1", "--lambda-max", "1", "--out", "x.csv"], "start:stop:num"),
        (["sweep", "--lr", "0.1:1:2.5", "--lambda-max", "1", "--out", "x.csv"], "integer"),
        (["sweep", "--lr", "0.1", "--out", "x.csv"], "give --lambda-max"),
        (["sweep", "--lr", "0.1", "--lambda-max", "1", "--out", "x.json"], ".csv or .npz"),
        (
            ["sweep", "--lr=-0.1,0.1", "--lambda-max", "1", "--out", "x.csv"],
            "lr must be in (0, inf)",
        ),
        (
            ["sweep", "--lr", "0.1", "--momentum", "1.2", "--lambda-max", "1", "--out", "x.csv"],
            "momentum must be in [0, 1)",
        ),
    ],
)
def test_sweep_bad_input(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert code == 2 and err.startswith("error: ") and message in err


def test_sweep_streams_slabs_and_matches_the_checker(tmp_path, capsys, monkeypatch):
    from stability import checkers as ck
    from stability.cli import sweep as sweep_mod

    monkeypatch.setattr(sweep_mod, "SWEEP_CHUNK", 7)  # many slabs of learning rates
    out_csv, out_npz = tmp_path / "g.csv", tmp_path / "g.npz"
    argv = [
        "sweep",
        "--lr",
        "0.01:0.9:9",
        "--momentum",
        "0,0.5,0.9",
        "--dampening",
        "0,0.3",
        "--weight-decay",
        "0,0.05",
        "--lambda-max",
        "12",
    ]
    assert run([*argv, "--out", str(out_csv)], capsys)[0] == 0
    assert run([*argv, "--out", str(out_npz)], capsys)[0] == 0
    data = np.genfromtxt(out_csv, delimiter=",", names=True)
    z = np.load(out_npz)
    assert data.size == 9 * 3 * 2 * 2 and z["stable"].shape == (9, 3, 2, 2)
    assert "U" not in z.files  # no noise information requested
    LR, MU, TAU, WD = np.meshgrid(
        z["lr"], z["momentum"], z["dampening"], z["weight_decay"], indexing="ij"
    )
    ref = ck.torch_sgd_margins(lr=LR, momentum=MU, dampening=TAU, weight_decay=WD, lambda_max=12.0)
    np.testing.assert_array_equal(z["stable"], ref.stable)
    np.testing.assert_array_equal(data["stable"].astype(bool), ref.stable.ravel())
    np.testing.assert_allclose(data["margin"], ref.margin.ravel(), rtol=0, atol=0)
    np.testing.assert_array_equal(data["lr"], LR.ravel())
    assert 0 < ref.stable.mean() < 1


def test_sweep_nesterov_noise_matches_stability_sum(tmp_path, capsys, monkeypatch):
    from stability import noise as nz
    from stability.cli import sweep as sweep_mod

    monkeypatch.setattr(sweep_mod, "SWEEP_CHUNK", 300)  # noise slabs of 3 configs
    out = tmp_path / "n.npz"
    code, _, _ = run(
        [
            "sweep",
            "--lr",
            "0.02,0.2,0.6",
            "--momentum",
            "0.5,0.9",
            "--nesterov",
            "--power-law",
            "nu=2,Lambda=5,N=200",
            "--batch-size",
            "8",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0
    z = np.load(out)
    lams = 5 * np.arange(1, 201, dtype=float) ** -2.0
    for i, lr in enumerate(z["lr"]):
        for j, mu in enumerate(z["momentum"]):
            alg = stb.from_torch_sgd(lr, mu, nesterov=True).algorithm
            ref, got = nz.stability_sum(alg, lams, 8).U, z["U"][i, j, 0, 0]
            assert (np.isinf(ref) and np.isinf(got)) or got == pytest.approx(ref, rel=1e-9)


def test_sweep_progress_line_estimates_the_time_left(tmp_path, monkeypatch, capsys):
    from stability.cli import sweep as sweep_mod

    monkeypatch.setattr(sweep_mod, "SWEEP_CHUNK", 50)
    axes = {
        "lr": sweep_mod.Axis.linspace("lr", 0.01, 1.0, 40),
        "momentum": sweep_mod.Axis.linspace("momentum", 0.0, 0.9, 10),
    }
    summary = sweep_mod.sweep(axes, out=tmp_path / "g.csv", lambda_max=10.0, progress=True)
    err = capsys.readouterr().err
    assert summary.n == 400 and "100.0% (400/400 configs)" in err and "s left" in err
    assert err.count("\r") == 8  # one update per slab of 5 learning rates
