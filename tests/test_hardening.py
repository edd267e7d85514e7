"""Regression tests for every defect class of the adversarial review (issue 11).

Each class has its reproducer plus a test of the class: exact arithmetic for the verdicts,
direct simulation or real torch for the LTV claims, and bad input at every entry point.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import stability as stb
from stability import check, ltv
from stability import checkers as ck
from stability import noise as nz
from stability.cli import main


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------------
# 1. silent wrong answers
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--lr", "0.1", "--power-law", "nu=2", "--batch-size", "1e400"],
        ["check", "--lr", "0.1", "--power-law", "nu=1e400"],
        ["check", "--lr", "0.1", "--power-law", "nu=2,N=1e400"],
        ["check", "--lr", "0.1", "--weight-decay", "1e400", "--lambda-max", "1"],
        ["sweep", "--lr", "0.1:1e400:10", "--lambda-max", "1", "--out", "x.csv"],
    ],
)
def test_overflowing_values_are_refused(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(argv, capsys)
    assert code == 2 and out == "" and err.startswith("error: ") and "1e400" in err
    assert "finite" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_api_refuses_huge_exact_values():
    with pytest.raises(stb.ConfigError, match="batch_size must be finite"):
        nz.stability_sum(stb.gd(0.1), [1.0], batch_size=10**400)
    with pytest.raises(stb.ConfigError, match="batch_size must be finite"):
        check({"optimizer": "sgd", "lr": 0.1}, spectrum=[1.0], batch_size=10**400)
    with pytest.raises(stb.ConfigError, match="lr"):
        stb.from_torch_sgd(Fraction(10**400, 3))


def test_complex_input_is_refused_everywhere():
    z = np.array([1.5 + 100j])
    with pytest.raises(stb.ConfigError, match="complex"):
        stb.is_strictly_stable(stb.gd(1.0), z)
    with pytest.raises(stb.ConfigError, match="lr must be real numbers, got complex"):
        ck.torch_sgd_margins(lr=np.array([0.1 + 50j]), lambda_max=10.0)
    with pytest.raises(stb.ConfigError, match="complex"):
        nz.stability_sum(stb.gd(0.1), z, batch_size=8)
    with pytest.raises(stb.ConfigError, match="complex"):
        check({"optimizer": "sgd", "lr": 0.1}, spectrum=z)
    with pytest.raises(stb.ConfigError, match="real"):
        check({"optimizer": "sgd", "lr": np.complex128(0.1 + 1j)}, lambda_max=1.0)
    with pytest.raises(stb.ConfigError, match="complex"):
        ck.memory1_noise_sum(beta=0.5, q0=0.0, q1=-0.1, spectrum=z, batch_size=8)
    with pytest.raises(stb.ConfigError, match="lambda_max must be real"):
        ck.memory1_margins(beta=0.5, q0=0.0, q1=-0.1, lambda_max=np.array([1j]))


def test_exact_weight_decay_reproducer(tmp_path, capsys):
    spec = tmp_path / "s.txt"
    spec.write_text("3.2812836733300803\n")
    lr = "0.60950310588011957779741578633547760546207427978515625"
    wd = "0.00007778439704580024914061520124874959947192110121250152587890625"
    exact = Fraction(lr) * (Fraction(3.2812836733300803) + Fraction(wd)) - 2
    assert 0 < exact < 1e-16  # exactly unstable by 6.7e-17
    for curvature in (["--spectrum", str(spec)], ["--lambda-max", "3.2812836733300803"]):
        code, out, _ = run(["check", "--lr", lr, "--weight-decay", wd, *curvature], capsys)
        assert code == 1 and "noiseless (exact): UNSTABLE" in out, out


@settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    lam=st.floats(0.01, 100.0),
    wd=st.floats(1e-6, 1.0),
    mu=st.sampled_from([0.0, 0.5, 0.9]),
    ulps=st.integers(-3, 3),
)
def test_property_weight_decay_on_spectra_matches_rationals(lam, wd, mu, ulps):
    """Configs within a few ulps of lr (lam + wd) = 2 (1 + mu): the verdict on an eigenvalue
    list equals exact rational arithmetic on the floats' binary values (margins ~1e-17)."""
    boundary = 2 * (1 + mu) / (lam + wd)
    lr = boundary
    for _ in range(abs(ulps)):
        lr = math.nextafter(lr, math.inf if ulps > 0 else 0.0)
    truth = Fraction(lr) * (Fraction(lam) + Fraction(wd)) < 2 * (1 + Fraction(mu))
    cfg = {"optimizer": "sgd", "lr": lr, "momentum": mu, "weight_decay": wd}
    rep = check(cfg, spectrum=[lam, lam / 3])
    assert rep.strict["stable"] == truth


def test_largest_lr_honours_the_noise_sum():
    cfg = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}
    pl = stb.power_law(2, 10, N=10**6)
    rep = check(cfg, spectrum=pl, batch_size=32)
    lr_star = rep.max_stable_lr
    assert 0.15 < lr_star < 0.17 and "noise" in rep.max_lr_binding
    for factor, bounded in ((0.999, True), (1.001, False)):  # the independent per-lambda sum
        alg = stb.from_torch_sgd(lr_star * factor, 0.9).algorithm
        assert nz.stability_sum(alg, pl, 32).bounded == bounded
    assert check({**cfg, "lr": 0.3}, spectrum=pl, batch_size=32).verdict == "unstable"
    # without a batch size the noiseless limit 2(1 + mu)/Lambda binds
    assert check(cfg, spectrum=pl).max_stable_lr == pytest.approx(0.38, rel=1e-6)


@pytest.mark.parametrize(
    "cfg",
    [
        {"optimizer": "sgd", "lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1},
        {"optimizer": "sgd", "lr": 0.05, "momentum": 0.8, "nesterov": True},
        {"optimizer": "optax.sgd", "learning_rate": 0.05, "momentum": 0.8},
        {"optimizer": "keras.sgd", "learning_rate": 0.05, "momentum": 0.8, "nesterov": True},
    ],
)
def test_largest_lr_for_every_source_and_spectrum(cfg):
    eig = np.linspace(0.5, 8.0, 40)
    rep = check(cfg, spectrum=eig, batch_size=4)
    key = "lr" if "lr" in cfg else "learning_rate"
    lr_star = rep.max_stable_lr
    assert lr_star is not None and lr_star > 0
    assert check({**cfg, key: lr_star * 0.999}, spectrum=eig, batch_size=4).verdict == "stable"
    assert check({**cfg, key: lr_star * 1.001}, spectrum=eig, batch_size=4).verdict == "unstable"


def test_noise_max_lr_for_torch_family():
    eig = np.linspace(0.5, 8.0, 40)
    lr = stb.max_stable_lr("torch_sgd", eig, 4, momentum=0.8, dampening=0.3, weight_decay=0.1)
    rep = check(
        {"optimizer": "sgd", "lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1},
        spectrum=eig,
        batch_size=4,
    )
    assert lr == pytest.approx(rep.max_stable_lr, rel=1e-5)


def test_bool_of_report_follows_the_verdict():
    good = check({"optimizer": "sgd", "lr": 0.1}, lambda_max=10.0)
    bad = check({"optimizer": "sgd", "lr": 0.3}, lambda_max=10.0)
    assert good.verdict == "stable" and bool(good)
    assert bad.verdict == "unstable" and not bad


def test_hessian_file_is_read_as_a_matrix(tmp_path, capsys):
    H = np.array([[30.0, 1.0], [1.0, 2.0]])
    np.save(tmp_path / "h.npy", H)
    code, out, _ = run(
        ["check", "--lr", "0.01", "--spectrum", str(tmp_path / "h.npy"), "--json"], capsys
    )
    rep = json.loads(out)
    top = float(np.linalg.eigvalsh(H).max())
    assert code == 0 and rep["spectrum"].startswith("2 eigenvalues")
    assert rep["strict"]["lambda_max"] == pytest.approx(top)
    assert any("Hessian" in c for c in rep["caveats"])
    np.save(tmp_path / "ns.npy", np.array([[30.0, 1.0], [0.0, 2.0]]))
    np.save(tmp_path / "rect.npy", np.ones((2, 3)))
    for name, msg in (("ns.npy", "not symmetric"), ("rect.npy", "1-D list")):
        code, _, err = run(["check", "--lr", "0.01", "--spectrum", str(tmp_path / name)], capsys)
        assert code == 2 and msg in err


# ---------------------------------------------------------------------------------------
# 2. LTV verdicts
# ---------------------------------------------------------------------------------------
def _simulated_gain(beta: float, eta: float, alpha: np.ndarray) -> float:
    """sup_t |x[t]| of x[t] = beta r[t] x[t-1] + eta alpha[t] u[t] with the worst input u = 1."""
    x, G = 0.0, 0.0
    for t, a in enumerate(alpha):
        x = beta * x * (a / alpha[t - 1] if t else 1.0) + eta * a
        G = max(G, abs(x))
    return G


def test_growing_schedules_are_judged_by_their_values():
    filt = ltv.filter_from_config({"optimizer": "sgd", "momentum": 0.9})
    v = ltv.ltv_verdict(filt, 0.01, ltv.schedule("exponential", 200, gamma=1.2))
    assert v.ues is False and v.bibo is False  # |Phi(t, s)| = 1.08^(t - s)
    slow = ltv.ltv_verdict(filt, 0.01, ltv.schedule("exponential", 200, gamma=1.05))
    assert slow.ues is True and slow.ues_rate == pytest.approx(0.945, rel=1e-6)
    up = ltv.schedule("step", 200, milestones=[50, 100], gamma=2.0)
    v = ltv.ltv_verdict(filt, 0.001, up)
    assert v.bibo is True and v.ues is True and v.ues_constant == pytest.approx(4.0)
    long = np.concatenate([0.001 * up.values, np.full(3000, 0.001 * up.values[-1])])
    assert v.bibo_gain == pytest.approx(_simulated_gain(0.9, 1.0, long), rel=1e-6)
    assert v.bibo_gain == pytest.approx(0.04, rel=1e-3)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "kw",
    [
        {"period": 0},
        {"period": 10, "mult": 0},
        {"period": 2.5},
        {"period": -3},
        {"period": 10, "mult": 1e300},
    ],
)
def test_warm_restarts_refuses_what_torch_refuses(kw):
    with pytest.raises(stb.ConfigError, match="must be an integer in"):
        ltv.schedule("warm_restarts", 30, **kw)


def test_replay_warmup_from_zero_lr_matches_torch():
    torch = pytest.importorskip("torch")
    H = np.diag([4.0, 1.0, 0.25])
    w0 = np.array([1.0, -2.0, 0.5])
    lr, mu, steps = 0.3, 0.9, 40
    factors = np.minimum(np.arange(steps) / 10, 1.0)  # LambdaLR(t / 10): starts at lr = 0
    p = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.SGD([p], lr=lr, momentum=mu)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min(t / 10, 1.0))
    ref = [w0.copy()]
    Ht = torch.tensor(H)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * p @ Ht @ p).backward()
        opt.step()
        sched.step()
        ref.append(p.detach().numpy().copy())
    filt = ltv.filter_from_config({"optimizer": "sgd", "momentum": mu})
    got = ltv.ltv_replay(filt, lambda w: H @ w, w0, steps, lr * factors)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, np.array(ref), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------
# 3. tracebacks where the contract promises error: and exit 2
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "--lr", "0.1", "--lambda-max", "1", "--out", "/nonexistent/x.csv"],
        ["sweep", "--lr", "0.1", "--lambda-max", "1", "--out", "adir.csv"],
        ["derive", "gd", "--latex", "/nonexistent/x.tex"],
        ["derive", "gd", "--latex", "adir.csv"],
        ["check", "--lr", "0.1", "--power-law", "nu=2,N=1e400"],
    ],
)
def test_file_and_overflow_errors_exit_2(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir.csv").mkdir()
    code, _out, err = run(argv, capsys)
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err


@pytest.mark.timeout(60)
def test_huge_power_law_uses_the_tail_sum(capsys):
    code, out, _ = run(
        ["check", "--lr", "0.1", "--power-law", "nu=2,N=1e12", "--batch-size", "8"], capsys
    )
    assert code == 0 and "N = 1,000,000,000,000" in out
    # the head + zeta tail equals the infinite law minus the tail beyond N (~1e-12 here)
    alg = stb.from_torch_sgd(0.1).algorithm
    long = nz.stability_sum(alg, stb.power_law(2, N=10**12), 8).U
    inf = nz.stability_sum(alg, stb.power_law(2), 8).U
    direct = nz.stability_sum(alg, stb.power_law(2, N=10**6), 8).U
    assert direct < long < inf and long == pytest.approx(inf, rel=1e-9)
    mid = nz.stability_sum(alg, stb.power_law(2, N=1_200_000), 8).U  # tail vs direct
    ref = nz.stability_sum(alg, stb.power_law(2, N=1_200_000).truncated(1_200_000), 8).U
    assert mid == pytest.approx(ref, rel=1e-10)


def test_schedule_and_algorithm_types_are_checked():
    cfg = {"optimizer": "sgd", "lr": 0.1}
    for bad in ("cosine", [1.0, 0.5], object()):
        with pytest.raises(stb.ConfigError, match=r"schedule must be a stability\.ltv\.Schedule"):
            check(cfg, lambda_max=20.0, schedule=bad)
    with pytest.raises(stb.ConfigError, match="expected a mapping"):
        check(None, lambda_max=1.0)
    with pytest.raises(stb.ConfigError, match="alg must be a MemoryAlgorithm"):
        stb.is_strictly_stable(None, 1.0)
    for bad in ([[1.0, 2.0], [3.0]], {"a": 1.0}):
        with pytest.raises(stb.ConfigError, match=r"spectrum|eigenvalues"):
            check(cfg, spectrum=bad)
        with pytest.raises(stb.ConfigError, match=r"spectrum|eigenvalues"):
            stb.is_strictly_stable(stb.gd(0.1), bad)


# ---------------------------------------------------------------------------------------
# 4. unbounded time and memory
# ---------------------------------------------------------------------------------------
@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--lr", "1e9999999", "--lambda-max", "1"],
        ["check", "--lr", "0.1", "--batch-size", "1e9999999", "--power-law", "nu=2"],
        ["check", "--lr", "0.1", "--power-law", "nu=2,N=1e9999999"],
        ["sweep", "--lr", "0.1:1e9999999:10", "--lambda-max", "1", "--out", "x.csv"],
        [
            "sweep",
            "--lr",
            "0.001:1:1e8",
            "--momentum",
            "0:0.99:1e8",
            "--lambda-max",
            "1",
            "--out",
            "x.csv",
        ],
        [
            "sweep",
            "--lr",
            "0.001:1:10",
            "--momentum",
            "0:0.99:1e7",
            "--lambda-max",
            "1",
            "--out",
            "x.csv",
        ],
        ["check", "--lr", "0." + "1" * 5000, "--lambda-max", "1"],
    ],
)
def test_huge_inputs_are_refused_promptly(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    code, _, err = run(argv, capsys)
    assert code == 2 and err.startswith("error: ")
    assert time.perf_counter() - start < 5
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(20)
def test_large_memory_intervals_are_refused_with_the_alternatives():
    rng = np.random.default_rng(0)
    M = 30
    alg = stb.MemoryAlgorithm(
        0.1,
        rng.uniform(-0.1, 0.1, M).tolist(),
        rng.uniform(-0.1, 0.1, M).tolist(),
        (0.3 * np.eye(M)).tolist(),
    )
    with pytest.raises(stb.StabilityError, match=r"M <= 12.*list of eigenvalues.*spectral_radius"):
        stb.is_strictly_stable(alg, 1.0)
    with pytest.raises(stb.StabilityError, match="M <= 12"):
        stb.strict_stability_conditions(alg)


def test_unknown_key_messages_are_bounded():
    cfg = {"optimizer": "sgd", "lr": 0.1, **{f"k{i}": 1 for i in range(100_000)}}
    with pytest.raises(stb.ConfigError) as info:
        check(cfg, lambda_max=1.0)
    assert len(str(info.value)) < 500 and "and 99990 more" in str(info.value)


# ---------------------------------------------------------------------------------------
# 5. never destroy a user's file
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "--lr", "0", "--lambda-max", "10", "--out", "g.csv"],
        ["sweep", "--lr", "0.1", "--momentum", "1.5", "--lambda-max", "10", "--out", "g.csv"],
        ["sweep", "--lr", "0.1", "--nesterov", "--lambda-max", "10", "--out", "g.csv"],
        ["sweep", "--lr", "0.1", "--lambda-max", "10", "--batch-size", "8", "--out", "g.csv"],
    ],
)
def test_invalid_sweep_leaves_the_file_alone(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.csv").write_text("precious\n")
    code, _, err = run(argv, capsys)
    assert code == 2 and err.startswith("error: ")
    assert (tmp_path / "g.csv").read_text() == "precious\n"
    assert [p.name for p in tmp_path.iterdir()] == ["g.csv"]  # no temporary left behind


def test_failing_sweep_midway_leaves_the_file_alone(capsys, tmp_path, monkeypatch):
    from stability.cli import sweep as sweep_mod

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweep_mod, "SWEEP_CHUNK", 3)
    (tmp_path / "g.npz").write_text("precious\n")
    calls = {"n": 0}
    real = ck.torch_sgd_margins

    def flaky(**kw):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError(28, "No space left on device")
        return real(**kw)

    monkeypatch.setattr(sweep_mod, "torch_sgd_margins", flaky)
    code, _, err = run(
        ["sweep", "--lr", "0.1:1:20", "--lambda-max", "10", "--out", "g.npz"], capsys
    )
    assert code == 2 and "No space left" in err
    assert (tmp_path / "g.npz").read_text() == "precious\n"
    assert [p.name for p in tmp_path.iterdir()] == ["g.npz"]


def test_pdf_name_is_never_an_option(tmp_path, capsys, monkeypatch):
    """pdflatex runs on a fixed name in a scratch folder (a fake pdflatex records argv)."""
    fake = tmp_path / "bin" / "pdflatex"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "$@" > "$ARGS_LOG"\ncp derivation.tex derivation.pdf\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    monkeypatch.setenv("ARGS_LOG", str(tmp_path / "args.txt"))
    monkeypatch.chdir(tmp_path)
    code, _out, _ = run(["derive", "gd", "--latex", "./-jobname=x.tex", "--pdf"], capsys)
    assert code == 0
    args = (tmp_path / "args.txt").read_text().split()
    assert args[-1] == "derivation.tex" and not any("jobname" in a for a in args)
    assert (tmp_path / "-jobname=x.pdf").exists()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["-jobname=x.pdf", "-jobname=x.tex", "args.txt", "bin"]  # no .aux/.log


# ---------------------------------------------------------------------------------------
# 6. messages
# ---------------------------------------------------------------------------------------
def test_values_print_as_written(capsys, tmp_path):
    with pytest.raises(stb.ConfigError) as info:
        stb.from_torch_sgd(0.1, Fraction(6, 5))
    assert "got 1.2" in str(info.value) and "Fraction" not in str(info.value)
    with pytest.raises(stb.ConfigError) as info:
        check({"optimizer": "sgd", "lr": 0.1}, lambda_max=np.float64(-1.0))
    assert "got -1.0" in str(info.value) and "np.float64" not in str(info.value)
    code, _, err = run(["check", "--lr", "1e-400", "--lambda-max", "1"], capsys)
    assert code == 2 and "got 1e-400" in err and "0.0" not in err
    code, _, err = run(["check", "--lr", "0.1", "--momentum", "1.20", "--lambda-max", "1"], capsys)
    assert code == 2 and "got 1.20" in err
    code, _, err = run(
        ["check", "--lr", "0.1", "--weight-decay", "1e400", "--lambda-max", "1"], capsys
    )
    assert "weight_decay must be finite" in err and "lam" not in err
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00lr = 1")
    code, _, err = run(["check", "--config", str(tmp_path / "bin.toml")], capsys)
    assert code == 2 and "not UTF-8 text" in err


# ---------------------------------------------------------------------------------------
# 7. conventions
# ---------------------------------------------------------------------------------------
def test_python_m_stability_and_version():
    out = subprocess.run(
        [sys.executable, "-m", "stability", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == f"stability {stb.__version__}"
    out = subprocess.run(
        [sys.executable, "-m", "stability", "check", "--lr", "0.1", "--lambda-max", "10"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.startswith("STABLE")


def test_config_paths_overrides_and_yaml(tmp_path, capsys, monkeypatch):
    (tmp_path / "cfg").mkdir()
    np.savetxt(tmp_path / "cfg" / "eigs.txt", [1.0, 4.0])
    (tmp_path / "cfg" / "run.toml").write_text(
        'optimizer = "sgd"\nlr = 0.1\nspectrum = "eigs.txt"\n'
    )
    monkeypatch.chdir(tmp_path)  # the spectrum path is relative to the config, not the cwd
    code, out, _ = run(["check", "--config", "cfg/run.toml"], capsys)
    assert code == 0 and "2 eigenvalues" in out
    code, out, _ = run(["check", "--config", "cfg/run.toml", "--lr", "0.6"], capsys)
    assert code == 1 and "lr=0.6" in out  # the flag overrides the file: 0.6 * 4 > 2
    code, out, _ = run(["check", "--config", "cfg/run.toml", "--lambda-max", "30"], capsys)
    assert code == 1 and "(0, 30]" in out  # a curvature flag replaces the file's
    (tmp_path / "run.yaml").write_text("lr: 0.1\n")
    code, _, err = run(["check", "--config", "run.yaml"], capsys)
    assert code == 2 and "YAML is not supported" in err


# ---------------------------------------------------------------------------------------
# property tests: random bad values at every public entry point
# ---------------------------------------------------------------------------------------
BAD_SCALARS = [
    math.nan,
    math.inf,
    -math.inf,
    10**400,
    Fraction(10**400, 7),
    1 + 2j,
    np.complex128(0.5 + 1j),
    "0.1",
    None,
    [0.1, 0.2],
    [[0.1]],
    object(),
    True,
    b"1",
]


def _entry_points():
    """(parameter name, call) pairs: each call passes the bad value as that parameter."""
    return [
        ("lr", lambda v: stb.from_torch_sgd(v)),
        ("momentum", lambda v: stb.from_torch_sgd(0.1, v)),
        ("dampening", lambda v: stb.from_torch_sgd(0.1, 0.9, v)),
        ("weight_decay", lambda v: stb.from_torch_sgd(0.1, 0.9, 0, v)),
        ("learning_rate", lambda v: stb.from_optax_sgd(v)),
        ("learning_rate", lambda v: stb.from_keras_sgd(v)),
        ("lr", lambda v: check({"optimizer": "sgd", "lr": v}, lambda_max=1.0)),
        ("lambda_max", lambda v: check({"optimizer": "sgd", "lr": 0.1}, lambda_max=v)),
        (
            "batch_size",
            lambda v: check({"optimizer": "sgd", "lr": 0.1}, spectrum=[1.0], batch_size=v),
        ),
        ("batch_size", lambda v: nz.stability_sum(stb.gd(0.1), [1.0], v)),
        ("nu", lambda v: stb.power_law(v)),
        ("Lambda", lambda v: stb.power_law(2, v)),
        ("N", lambda v: stb.power_law(2, 1, N=v)),
        ("lr", lambda v: ck.torch_sgd_margins(lr=v, lambda_max=1.0)),
        ("lambda_max", lambda v: ck.torch_sgd_margins(lr=0.1, lambda_max=v)),
        ("beta", lambda v: ck.memory1_margins(beta=v, q0=0.0, q1=-0.1, lambda_max=1.0)),
        (
            "batch_size",
            lambda v: ck.memory1_noise_sum(beta=0.5, q0=0.0, q1=-0.1, spectrum=[1.0], batch_size=v),
        ),
        ("spectrum|lambda_max", lambda v: stb.is_strictly_stable(stb.gd(0.1), v)),
        ("lr", lambda v: ltv.ltv_verdict(ltv.lowpass_filter(0.9), v)),
        ("gamma", lambda v: ltv.schedule("exponential", 10, gamma=v)),
        # Adam and AdamW configs
        ("lr", lambda v: check({"optimizer": "adamw", "lr": v}, lambda_max=1.0)),
        (
            "weight_decay",
            lambda v: check({"optimizer": "adamw", "lr": 0.01, "weight_decay": v}, lambda_max=1.0),
        ),
        (
            "beta1|betas",
            lambda v: check({"optimizer": "adam", "lr": 0.01, "betas": (v, 0.999)}, lambda_max=1.0),
        ),
        ("eps", lambda v: check({"optimizer": "adam", "lr": 0.01, "eps": v}, lambda_max=1.0)),
        # the curvature helpers
        ("tol", lambda v: _curv().top_eigenvalues(_twice, 4, tol=v)),
        ("maxiter", lambda v: _curv().top_eigenvalues(_twice, 4, maxiter=v)),
        ("v0", lambda v: _curv().top_eigenvalues(_twice, 4, v0=[v, 1.0, 1.0, 1.0])),
        ("n", lambda v: _curv().top_eigenvalues(_twice, v)),
        ("steps", lambda v: _curv().slq_density(_twice, 4, steps=v)),
        ("probes", lambda v: _curv().slq_density(_twice, 4, probes=v)),
        # the monitor and torch schedulers
        ("iters", lambda v: _monitor(iters=v)),
        ("every", lambda v: _monitor(every=v)),
        ("lookahead", lambda v: _monitor(lookahead=v)),
        ("tolerance", lambda v: _monitor(tolerance=v)),
        ("steps", lambda v: _torch_schedule(steps=v)),
    ]


def _twice(v):
    return 2.0 * v


def _curv():
    from stability.training import curvature

    return curvature


def _monitor(**kw):
    torch = pytest.importorskip("torch")
    from stability.training import StabilityMonitor

    m = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    data = (torch.zeros(4, 2), torch.zeros(4, 1))
    return StabilityMonitor(m, torch.nn.functional.mse_loss, opt, data, **kw)


def _torch_schedule(**kw):
    torch = pytest.importorskip("torch")
    from stability.training import schedule_from_torch

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    return schedule_from_torch(torch.optim.lr_scheduler.StepLR(opt, 5), **kw)


ENTRY_POINTS = _entry_points()
ARRAY_PARAMS = {call: (name,) for name, call in ENTRY_POINTS[13:18]}  # checkers, regions


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(point=st.sampled_from(ENTRY_POINTS), value=st.sampled_from(BAD_SCALARS))
def test_property_bad_scalars_raise_config_error_naming_the_parameter(point, value):
    name, call = point
    # None is a valid choice for some: no noise, an infinite law, default tol/v0/steps/eps
    assume(not (value is None and name in ("batch_size", "N", "maxiter", "steps", "eps")))
    assume(not (value is True and name in ("v0",)))  # True is 1.0 inside an array
    if isinstance(value, list) and name in ARRAY_PARAMS.get(call, ()):
        value = [[0.1], [0.1, 0.2]]  # arrays are welcome there: a ragged one is still bad
    start = time.perf_counter()
    with pytest.raises(stb.ConfigError) as info:
        call(value)
    assert re.search(name, str(info.value)), (name, value, str(info.value))
    assert time.perf_counter() - start < 5


BAD_ARRAYS = [
    [],
    [math.nan],
    [1.0, math.inf],
    [1.0, -1.0],
    [1 + 1j],
    np.array([1.5 + 100j]),
    [[1.0, 2.0], [3.0]],
    {"a": 1.0},
    "1,2",
    None,
    [object()],
    np.array(["1.0"]),
]


@settings(
    max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    value=st.sampled_from(BAD_ARRAYS),
    which=st.sampled_from(["check", "regions", "sum", "noise_kernel", "spectrum"]),
)
def test_property_bad_spectra_raise_config_error(value, which):
    calls = {
        "check": lambda v: check({"optimizer": "sgd", "lr": 0.1}, spectrum=v),
        "regions": lambda v: stb.is_strictly_stable(stb.gd(0.1), v),
        "sum": lambda v: nz.stability_sum(stb.gd(0.1), v, 8),
        "noise_kernel": lambda v: ck.memory1_noise_sum(
            beta=0.5, q0=0.0, q1=-0.1, spectrum=v, batch_size=8
        ),
        "spectrum": lambda v: nz.Spectrum.from_arrays(v),
    }
    with pytest.raises(stb.ConfigError, match=r"eigenvalues|spectrum|lambda"):
        calls[which](value)


# ---------------------------------------------------------------------------------------
# CLI fuzz: bad command lines exit 2 with error:, no traceback, no file touched
# ---------------------------------------------------------------------------------------
BAD_TOKENS = [
    "nan",
    "inf",
    "-inf",
    "1e400",
    "-1e400",
    "1e-400",
    "abc",
    "",
    "0x10",
    "1/0",
    "1/2",
    "1e9999999",
    "--",
    "√2",
    "1,,2",
    " ",
    "1e",
    ".",
    "+-1",
    "1_0",
    "__import__('os')",
    "-1",
    "1" * 200,
]
BASES = [
    ("check", ["--lr", "0.1", "--momentum", "0.9", "--lambda-max", "10"]),
    ("check", ["--lr", "0.1", "--power-law", "nu=2,N=100", "--batch-size", "8"]),
    ("sweep", ["--lr", "0.1,0.2", "--momentum", "0.5", "--lambda-max", "10", "--out", "o.csv"]),
]


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    base=st.sampled_from(BASES),
    slot=st.integers(0, 9),
    token=st.sampled_from(BAD_TOKENS),
    extra=st.sampled_from([[], ["--momentun", "0.9"], ["--lr"], ["--out"]]),
)
def test_cli_fuzz_bad_command_lines(base, slot, token, extra, tmp_path_factory, capsys):
    cmd, args = base
    args = list(args)
    values = [i for i, a in enumerate(args) if not a.startswith("--")]
    i = values[slot % len(values)]
    flag = args[i - 1]
    if flag == "--power-law":
        token = f"nu={token}"
    elif flag == "--out":
        token = f"/nonexistent/{token}.csv"
    args[i] = token
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "keep.csv").write_text("precious\n")
    argv = [cmd, *args, *extra]
    import os

    old = os.getcwd()
    os.chdir(folder)
    try:
        start = time.perf_counter()
        code = main(argv)
        elapsed = time.perf_counter() - start
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert err.startswith("error: ") and "Traceback" not in err, (argv, err)
    assert elapsed < 5
    assert sorted(p.name for p in folder.iterdir()) == ["keep.csv"]
    assert (folder / "keep.csv").read_text() == "precious\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--lr", "nan", "--lambda-max", "1"],
        ["sweep", "--lr", "1e400", "--lambda-max", "1", "--out", "x.csv"],
        ["derive", "gd", "--latex", "/nonexistent/x.tex"],
    ],
)
def test_cli_fuzz_through_the_real_entry_point(argv, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "stability", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 2 and out.stderr.startswith("error: ")
    assert "Traceback" not in out.stderr and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------
# memory: a 1e8-config sweep stays bounded (slow: writes ~1 GB)
# ---------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sweep_of_1e8_configs_stays_under_2_gb(tmp_path):
    code = (
        "import resource, sys; from stability.cli import main; "
        "rc = main(['sweep', '--lr', '0.001:1:10000', '--momentum', '0:0.99:10000', "
        f"'--lambda-max', '10', '--out', '{tmp_path / 'g.npz'}']); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    peak_kib = int(out.stdout.strip().splitlines()[-1])
    assert peak_kib < 2 * 1024**2
    z = np.load(tmp_path / "g.npz")
    assert z["stable"].shape == (10000, 10000, 1, 1)
    assert z["stable"][0, 0, 0, 0] and not z["stable"][-1, 0, 0, 0]


def test_readme_sample_config_runs(tmp_path, capsys):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "run.toml").write_text(block)
    np.save(tmp_path / "eigs.npy", np.linspace(0.1, 5.0, 50))
    code, out, err = run(["check", "--config", str(tmp_path / "run.toml")], capsys)
    assert code in (0, 1) and err == "" and "mini-batch noise" in out


def test_outputs_get_ordinary_permissions(tmp_path, capsys):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        for out in ("g.csv", "g.npz"):
            assert (
                run(
                    [
                        "sweep",
                        "--lr",
                        "0.1,0.2",
                        "--lambda-max",
                        "10",
                        "--out",
                        str(tmp_path / out),
                    ],
                    capsys,
                )[0]
                == 0
            )
            assert stat.S_IMODE((tmp_path / out).stat().st_mode) == 0o644
        assert run(["derive", "gd", "--latex", str(tmp_path / "d.tex")], capsys)[0] == 0
        assert stat.S_IMODE((tmp_path / "d.tex").stat().st_mode) == 0o644
    finally:
        os.umask(umask)


@given(value=st.text(max_size=12))
def test_property_backend_variable_is_checked(value):
    """Any STABILITY_BACKEND other than auto, numba or numpy is an error before anything runs."""
    import os

    from stability.checkers import _backend

    old = os.environ.get("STABILITY_BACKEND")
    try:
        if "\x00" in value:
            return  # an environment cannot hold it
        os.environ["STABILITY_BACKEND"] = value
        if value in ("auto", "numba", "numpy"):
            _backend.check_environment()
        else:
            with pytest.raises(stb.ConfigError, match="STABILITY_BACKEND"):
                _backend.check_environment()
    finally:
        if old is None:
            os.environ.pop("STABILITY_BACKEND", None)
        else:
            os.environ["STABILITY_BACKEND"] = old


@given(seed=st.integers(0, 10**6), n=st.integers(2, 30))
def test_property_top_eigenvalues_of_symmetric_matrices(seed, n):
    """Random symmetric matrices: the top eigenvalue equals numpy's; a random non-symmetric
    one is refused."""
    from stability.training import top_eigenvalues

    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    H = (A + A.T) / 2
    top = top_eigenvalues(lambda v: H @ v, n, 1, tol=1e-12)
    assert top.sharpness == pytest.approx(np.linalg.eigvalsh(H).max(), rel=1e-8, abs=1e-10)
    if np.abs(A - A.T).max() > 1e-3:
        with pytest.raises(stb.ConfigError, match="symmetric"):
            top_eigenvalues(lambda v: A @ v, n, 1)


@given(
    start=st.floats(0.01, 1.0),
    end=st.floats(0.01, 1.0),
    iters=st.integers(1, 40),
    step=st.integers(1, 9),
    gamma=st.floats(0.1, 1.0),
)
def test_property_torch_schedulers_read_as_they_run(start, end, iters, step, gamma):
    torch = pytest.importorskip("torch")
    from stability.training import schedule_from_torch

    S = torch.optim.lr_scheduler
    for make in (
        lambda o: S.LinearLR(o, start_factor=start, end_factor=end, total_iters=iters),
        lambda o: S.StepLR(o, step_size=step, gamma=gamma),
    ):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        sched = make(opt)
        s = schedule_from_torch(sched, steps=50)
        run = []
        for _ in range(50):
            run.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        np.testing.assert_allclose(s.base_lr * s.values, run, rtol=1e-12)
