"""Regression tests for the wrong answers of issue 19, each named after its defect and
reproducing it first (the reproducer is the test's first line)."""

from __future__ import annotations

from fractions import Fraction

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
