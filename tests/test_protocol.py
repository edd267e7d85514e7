"""Every verdict-bearing result speaks the same small protocol: ``.stable`` (a bool, or a bool
array for vectorised results), ``to_dict()`` that ``json`` can write, and a ``str()`` a person
can read (no object addresses, no dataclass dump)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import stability as stb
from stability import ltv
from stability.checkers import memory1_noise_bounds, torch_sgd_margins


def _results():
    hb = stb.heavy_ball(0.1, 0.9)
    return {
        "StabilityResult": stb.is_strictly_stable(hb, 30.0),
        "NoiseResult": stb.stability_sum(hb, [1.0, 0.1, 0.01], 8),
        "Report": stb.check({"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}, lambda_max=30.0),
        "Verdicts": torch_sgd_margins(lr=[0.1, 0.2], momentum=0.9, lambda_max=30.0),
        "NoiseBounds": memory1_noise_bounds(
            beta=0.9, q0=0.0, q1=[-0.1, -2.0], spectrum=[1.0, 0.1], batch_size=8
        ),
        "LTVVerdict": ltv.ltv_verdict(ltv.lowpass_filter(0.9), 0.1, ltv.schedule("cosine", 100)),
    }


@pytest.mark.parametrize("name", sorted(_results()))
def test_results_share_the_protocol(name):
    res = _results()[name]
    stable = np.asarray(res.stable)
    assert stable.dtype == bool
    text = json.dumps(res.to_dict())
    assert len(text) > 10
    shown = str(res)
    assert shown and "object at 0x" not in shown and not shown.startswith(type(res).__name__ + "(")
    if stable.ndim == 0:
        assert bool(res) is bool(stable)
