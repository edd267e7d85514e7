"""Regression tests for the wrong answers of issue 19, each named after its defect and
reproducing it first (the reproducer is the test's first line)."""

from __future__ import annotations

from fractions import Fraction

import pytest

import stability as stb
from stability.noise import Spectrum


def _exact_gd_U(lr: float, lam: float, B: float) -> Fraction:
    """U of GD on one eigenvalue, Gaussian noise model: (u/B)/(1 - u/B), u = a l/(2 - a l)."""
    a, l_, b = Fraction(lr), Fraction(lam), Fraction(B)
    u = a * l_ / (2 - a * l_)
    return (u / b) / (1 - u / b)


def test_uncertified_noise_sum_called_bounded_at_U_above_one():
    r = stb.stability_sum(stb.gd(0.5983570298976998), [3.342486007629746], 88879618046365.86)
    exact = _exact_gd_U(0.5983570298976998, 3.342486007629746, 88879618046365.86)
    assert exact > 1  # 1.00043...: the float sum said 0.9969
    assert not r.bounded
    assert abs(r.U - float(exact)) <= r.tolerance + 1e-15
    # the CLI printed "critical batch size: inf": it is finite, the smallest B with U < 1
    crit = stb.critical_batch_size(stb.gd(0.5983570298976998), [3.342486007629746])
    assert _exact_gd_U(0.5983570298976998, 3.342486007629746, crit) < 1
    assert _exact_gd_U(0.5983570298976998, 3.342486007629746, crit - 1) >= 1


def test_memory0_check_called_stable_at_U_above_one():
    rep = stb.check(
        {"optimizer": "sgd", "lr": 0.22605268572304793},
        spectrum=Spectrum.from_arrays([4.497801826017849], [9.096056331156458e-13]),
        batch_size=1.034050374735043,
    )
    assert not rep.noise["bounded"] and rep.verdict == "unstable"


def _cli(*argv: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from stability.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_exact_momentum_within_rounding_of_one_crashed_the_lr_search():
    code, out, err = _cli(
        "check", "--lambda-max", "10", "--lr", "0.1", "--momentum", "0.99999999999999999999999999"
    )
    assert code == 0 and "Traceback" not in err, err
    assert "largest stable lr at these settings: 0.4 " in out  # 2 (1 + mu) / 10, mu = 1 - 1e-26


def test_exact_adam_beta1_within_rounding_of_one_crashed_the_lr_search():
    code, out, err = _cli(
        "check", "--optimizer", "adam", "--beta1", "0.99999999999999999999",
        "--lambda-max", "10", "--lr", "0.1",
    )  # fmt: skip
    assert code == 0 and "Traceback" not in err, err
    assert "largest stable lr at these settings: 4e+19" in out  # (2 + 2 b1) / ((1 - b1) 10)


def test_power_law_with_a_huge_N_crashed_the_bins():
    code, _out, err = _cli(
        "check", "--power-law", "nu=2,N=1e300", "--batch-size", "8", "--lr", "0.1"
    )
    assert code == 0 and "Traceback" not in err, err
    r = stb.check({"optimizer": "sgd", "lr": 0.1}, spectrum=stb.power_law(2, N=1e300), batch_size=8)
    exact = stb.stability_sum(stb.gd(0.1), stb.power_law(2), 8)  # the infinite law
    assert r.noise["U"] == pytest.approx(exact.U, rel=1e-9)


def test_stale_cache_gave_an_unsound_certificate():
    import numpy as np

    from stability.checkers import memory1_noise_bounds

    x = np.linspace(0.01, 1, 1000)
    s = Spectrum.from_arrays(x)
    first = memory1_noise_bounds(beta=0.9, q0=0, q1=-0.1, spectrum=s, batch_size=1e4)
    with pytest.raises(ValueError, match="read-only"):
        s.lam[:] *= 100  # a Spectrum is immutable once built
    x *= 100  # changing the caller's array does not change the spectrum either
    again = memory1_noise_bounds(beta=0.9, q0=0, q1=-0.1, spectrum=s, batch_size=1e4)
    assert bool(first.bounded) and bool(again.bounded) and s.lambda_max == 1.0
    fresh = Spectrum.from_arrays(x)  # the changed values, as a new spectrum: not bounded
    assert not memory1_noise_bounds(beta=0.9, q0=0, q1=-0.1, spectrum=fresh, batch_size=1e4).bounded


# ---------------------------------------------------------------------------------------
# Inputs that must be refused, each by name, fast, without a traceback
# ---------------------------------------------------------------------------------------
def _refused(call, name: str) -> None:
    import time

    start = time.perf_counter()
    with pytest.raises(stb.ConfigError) as info:
        call()
    assert time.perf_counter() - start < 5
    assert name in str(info.value), (name, str(info.value))


def _monitor(**kw):
    torch = pytest.importorskip("torch")
    from stability.training import StabilityMonitor

    m = torch.nn.Linear(2, 1)
    data = (torch.zeros(4, 2), torch.zeros(4, 1))
    return StabilityMonitor(
        m, torch.nn.functional.mse_loss, torch.optim.SGD(m.parameters(), lr=0.1), data, **kw
    )


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"iters": 0}, "iters"),
        ({"iters": -5}, "iters"),
        ({"iters": 2.7}, "iters"),
        ({"iters": float("nan")}, "iters"),
        ({"iters": "abc"}, "iters"),
        ({"lookahead": -1}, "lookahead"),
        ({"lookahead": float("inf")}, "lookahead"),
        ({"scheduler": "x"}, "scheduler"),
    ],
)
def test_monitor_accepted_invalid_settings(kw, name):
    _refused(lambda: _monitor(**kw), name)


def _sym(v):
    return 2.0 * v


def test_curvature_helpers_answered_silently_wrong():
    import numpy as np

    from stability.training import slq_density, top_eigenvalues

    A = np.array([[2.0, 1, 0, 0], [0, 1, 3, 0], [0, 0, 0.5, 0], [0, 0, 0, 0.1]])
    _refused(lambda: top_eigenvalues(lambda v: A @ v, 4), "symmetric")  # was 3.02
    _refused(lambda: slq_density(lambda v: A @ v, 4), "symmetric")  # nodes of +-48
    _refused(lambda: top_eigenvalues(lambda v: (1 + 1j) * v, 4), "complex")
    _refused(lambda: top_eigenvalues(_sym, 4, tol=-1), "tol")
    _refused(lambda: top_eigenvalues(_sym, 4, tol=float("nan")), "tol")
    _refused(lambda: top_eigenvalues(_sym, 4, v0=np.zeros(4)), "v0")
    _refused(lambda: top_eigenvalues(_sym, 4, maxiter=0), "maxiter")
    _refused(lambda: slq_density(_sym, 10**6, probes=1, steps=10**9), "steps")  # 7 TiB


def test_long_scheduler_horizons_named_a_parameter_the_user_never_passed():
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10**9)
    _refused(lambda: stb.check({"optimizer": "sgd", "lr": 0.1}, lambda_max=1.0, schedule=cosine),
             "T_max")  # fmt: skip


def test_config_keys_were_checked_differently_by_the_api_and_the_cli(tmp_path):
    toml = tmp_path / "adam.toml"
    toml.write_text('optimizer = "adam"\nlr = 0.01\namsgrad = true\nlambda_max = 100\n')
    code, out, err = _cli("check", "--config", str(toml))
    api = stb.check({"optimizer": "adam", "lr": 0.01, "amsgrad": True}, lambda_max=100)
    assert code == 0 and out.startswith(api.verdict.upper()), err
    bad = tmp_path / "bad.toml"
    bad.write_text('optimizer = "adam"\nlr = 0.01\namsgrad = "yes"\nlambda_max = 100\n')
    code, _, err = _cli("check", "--config", str(bad))
    assert code == 2 and "amsgrad must be true or false" in err
    _refused(lambda: stb.from_optimizer({"optimizer": "sgd", "lr": 0.1, "foreach": "yes"}),
             "foreach")  # fmt: skip
    _refused(lambda: stb.from_optimizer({"optimizer": "sgd", "lr": 0.1, "initial_lr": "x"}),
             "initial_lr")  # fmt: skip
    _refused(lambda: stb.from_optimizer({"optimizer": "adam", "lr": 0.1, "betas": {0.9, 0.99}}),
             "betas")  # fmt: skip


def _cli_in(tmp_path, monkeypatch, env: dict, *argv: str) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, _, err = _cli(*argv)
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize(
    ("env", "name"),
    [({"STABILITY_BACKEND": "bogus"}, "STABILITY_BACKEND"),
     ({"STABILITY_CACHE_DIR": ""}, "STABILITY_CACHE_DIR"),
     ({"STABILITY_CACHE_DIR": "relative/cache"}, "STABILITY_CACHE_DIR")],
)  # fmt: skip
def test_environment_variables_were_not_checked(env, name, tmp_path, monkeypatch):
    code, err = _cli_in(tmp_path, monkeypatch, env, "check", "--lr", "0.1", "--lambda-max", "1")
    assert code == 2 and err.startswith("error: ") and name in err
    assert list(tmp_path.iterdir()) == []  # no numba-* folder in the working directory


def test_a_cache_folder_others_can_write_to_was_trusted(tmp_path, monkeypatch):
    import os
    import warnings

    from stability.checkers import _backend

    if not _backend.available():
        pytest.skip("numba is not installed")
    root = tmp_path / "shared"
    root.mkdir()
    os.chmod(root, 0o777)
    monkeypatch.setenv("STABILITY_CACHE_DIR", str(root))
    monkeypatch.setattr(_backend, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _backend.cache_dir() is None
    assert any("writable by" in str(w.message) or "not yours" in str(w.message) for w in caught)
    os.chmod(root, 0o700)
    assert _backend.cache_dir() is not None


def test_out_with_a_trailing_slash_wrote_the_file(tmp_path, monkeypatch):
    code, err = _cli_in(
        tmp_path, monkeypatch, {}, "sweep", "--lr", "0.1", "--lambda-max", "1", "--out", "g.csv/"
    )
    assert code == 2 and "--out names a directory" in err
    assert list(tmp_path.iterdir()) == []


def test_a_huge_matrix_spectrum_took_minutes(tmp_path, monkeypatch):
    import numpy as np

    big = np.lib.format.open_memmap(tmp_path / "h.npy", mode="w+", shape=(5000, 5000))
    del big  # a sparse file: nothing is written
    code, err = _cli_in(tmp_path, monkeypatch, {}, "check", "--lr", "0.1", "--spectrum", "h.npy")
    assert code == 2 and "5000x5000 matrix" in err and "eigvalsh" in err


# ---------------------------------------------------------------------------------------
# Wrong verdicts: AdamW from a mapping, schedulers
# ---------------------------------------------------------------------------------------
def test_adamw_from_a_mapping_gave_a_false_marginal():
    rep = stb.check({"optimizer": "adamw", "lr": 3e-3, "weight_decay": 0.01}, lambda_max=1152.15)
    assert rep.verdict == "stable"  # was MARGINAL with "critical curvature 0"
    threshold = (2 - 3e-3 * 0.01) * 1.9 / (3e-3 * 0.1)  # (2 - lr wd)(1 + b1)/(lr (1 - b1))
    assert rep.adam["threshold"] == pytest.approx(threshold, rel=1e-12)  # 12666.5
    assert rep.max_stable_lr == pytest.approx(3.8 / (115.215 + 0.019), rel=1e-5)
    assert not any("shifts every curvature" in c for c in rep.caveats)  # coupled wording


def _torch_sgd(lr=0.1, momentum=0.9):
    torch = pytest.importorskip("torch")
    return torch, torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr, momentum=momentum)


def test_scheduler_rescaling_at_construction_gave_a_false_stable():
    torch, o = _torch_sgd()
    s = torch.optim.lr_scheduler.LinearLR(o, start_factor=0.02, total_iters=200)
    rep = stb.check(o, lambda_max=60, schedule=s)
    assert rep.verdict == "unstable"  # said stable, peak lr 0.00199
    assert rep.schedule["peak_lr"] == pytest.approx(0.1)
    assert rep.schedule["first_unstable_step"] == 126


def test_linear_lr_final_value_was_never_read():
    torch, o = _torch_sgd()
    # 0.1 x (0.5 .. 0.78): only the last value 0.078 exceeds 2 (1 + 0.9) / 50 = 0.076
    s = torch.optim.lr_scheduler.LinearLR(o, start_factor=0.5, end_factor=0.78, total_iters=10)
    rep = stb.check(o, lambda_max=50, schedule=s)
    assert rep.schedule["first_unstable_step"] == 10 and rep.verdict == "unstable"


def test_one_cycle_lr_was_refused_and_its_peak_came_out_25_times_too_high():
    torch, o = _torch_sgd()
    s = torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=100)
    live = stb.check(o, lambda_max=30, schedule=s)  # refused: unknown key(s) max_lr ...
    mapping = stb.check({"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}, lambda_max=30,
                        schedule=s)  # fmt: skip
    for rep in (live, mapping):
        assert rep.schedule["peak_lr"] == pytest.approx(0.1, rel=1e-12)  # was 2.5
        assert rep.schedule["momentum_range"] == pytest.approx([0.85, 0.95])


def test_reduce_on_plateau_raised_a_raw_type_error():
    torch, o = _torch_sgd()
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(o)
    _refused(lambda: stb.check(o, lambda_max=1.0, schedule=plateau), "ReduceLROnPlateau")
    mon = _monitor(scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau(
        torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)))  # fmt: skip
    assert mon.check().crossing_step is None  # watched live, no look-ahead
