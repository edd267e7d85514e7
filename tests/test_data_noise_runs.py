"""The data noise model against real torch training (issue 20; slow: several minutes).

``examples/minibatch_from_data.py --full`` trains linear models with ``torch.optim.SGD`` and
``MSELoss()`` on sklearn data (batches drawn with replacement, B in {1, 4, 16, 64}, momentum 0
and 0.9, five seeds, a grid of learning rates 6 % apart around the prediction), and a tanh MLP
linearised at initialisation. Per seed it records the smallest learning rate at which the loss
exceeds 1000x its initial value (the blow-up) and 10x (an earlier alarm).

* The prediction is never above 1.1x the first seed's blow-up (the smallest over seeds), and
  at least 0.6x the last seed's 10x learning rate (the largest over seeds), on digits (pixels
  in [0, 1]), diabetes and digits with ten one-hot outputs.
* On standardised digits, the extreme case of heavy tails (one sample's curvature 300x
  ``lambda_max(H)``), the prediction is still below the blow-up, but finite runs survive up to
  twice above the mean-square threshold: the rare sample that drives the second moment is
  drawn only a few times in five epochs. The Gaussian model there is ~30x too permissive.
* The linearised MLP: within [0.6, 1.1] of the measured blow-up (median over seeds).
"""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "minibatch_from_data.py"


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("fig") / "minibatch_from_data.png"
    module = runpy.run_path(str(EXAMPLE))
    got = module["main"](str(out), full=True)
    assert out.stat().st_size > 20_000
    return got


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_linear_models_on_real_data(rows):
    checked = 0
    for r in rows:
        if r["data"] not in ("digits", "diabetes", "digits (10 outputs)"):
            continue
        first_blow, last_ten = np.min(r["blow"]), np.max(r["ten"])
        where = (r["data"], r["B"], r["momentum"])
        assert r["predicted"] <= 1.1 * first_blow, where
        assert r["predicted"] >= 0.6 * last_ten, where
        checked += 1
    assert checked == 3 * 4 * 2


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_standardised_digits_are_heavy_tailed_and_still_safe(rows):
    rs = [r for r in rows if r["data"] == "digits (standardised)"]
    assert len(rs) == 8
    for r in rs:
        assert r["predicted"] <= 1.1 * np.min(r["blow"]), (r["B"], r["momentum"])
        assert r["predicted"] >= 0.4 * np.median(r["blow"]), (r["B"], r["momentum"])
        assert r["gaussian"] > 3 * np.median(r["blow"])  # the Gaussian model blows up


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_linearised_mlp(rows):
    rs = [r for r in rows if r["data"] == "linearised MLP"]
    assert len(rs) == 8
    for r in rs:
        ratio = r["predicted"] / np.median(r["blow"])
        assert 0.6 <= ratio <= 1.1, (r["B"], r["momentum"], ratio)
