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
