"""find_lr (issue 26): the largest stable learning rate of a real network, against real torch
training runs, with no side effects and clear refusals."""

from __future__ import annotations

import json
import math
import random
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from stability.errors import ConfigError  # noqa: E402
from stability.training import LRFinderResult, ProbeRun, find_lr  # noqa: E402
from stability.training.lr_probe import _DIVERGENCE, _classify  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def _problem(n=96, d=4, k=2, seed=0, hidden=16, act=torch.nn.Tanh):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    W = torch.randn(d, k, generator=g) / 2
    Y = torch.tanh(X @ W) + 0.1 * torch.randn(n, k, generator=g)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(d, hidden), act(), torch.nn.Linear(hidden, k))
    return net, X, Y


def _train(net, X, Y, lr, mu, B, steps, seed=0, loss_fn=None):
    """A plain torch SGD run on a copy: True when it survives (the issue's divergence rule)."""
    import copy

    net = copy.deepcopy(net)
    loss_fn = loss_fn or torch.nn.MSELoss()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=mu)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        start = float(loss_fn(net(X), Y))
    done = 0
    while done < steps:
        for idx in torch.randperm(len(X), generator=g).split(B):
            opt.zero_grad()
            loss = loss_fn(net(X[idx]), Y[idx])
            loss.backward()
            opt.step()
            done += 1
            v = float(loss.detach())
            if not math.isfinite(v) or v > _DIVERGENCE * start:
                return False
            if done >= steps:
                break
    return True


# ----------------------------------------------------------------- the answer against torch


def test_full_batch_linear_model_matches_the_known_edge():
    """A linear model trained full-batch is a quadratic: GD diverges above 2/lambda_max of its
    Hessian (computed here by torch.autograd.functional.hessian), so the probe's bracket must
    straddle it and the answer sit below it."""
    torch.manual_seed(0)
    X, Y = torch.randn(32, 3), torch.randn(32, 1)  # 32: the edge uses every sample
    net = torch.nn.Linear(3, 1, bias=False)
    w0 = net.weight.detach().clone()

    def loss_of(w):
        return torch.nn.functional.mse_loss(X @ w.reshape(3, 1), Y)

    H = torch.autograd.functional.hessian(loss_of, w0.reshape(-1))
    edge = 2.0 / float(torch.linalg.eigvalsh(H).max())
    res = find_lr(net, torch.nn.MSELoss(), (X, Y), {"optimizer": "sgd"}, 32, steps=200)
    assert res.edge == pytest.approx(edge, rel=0.02)
    lo, hi = res.bracket
    assert lo <= edge * 1.2 and hi >= edge * 0.99  # divergence within 200 steps just above
    assert 0.5 * edge <= res.largest_stable_lr <= edge
    assert _train(net, X, Y, res.largest_stable_lr, 0.0, 32, 200)
    assert not _train(net, X, Y, 1.5 * edge, 0.0, 32, 200)


@pytest.mark.parametrize("mu,B", [(0.0, 16), (0.9, 16), (0.0, 96)])
def test_answer_survives_and_the_first_divergent_probe_diverges_in_torch(mu, B):
    """The answer is a learning rate real torch training survives over the horizon on three
    shuffles; the smallest probe lr that diverged also diverges in a real run."""
    net, X, Y = _problem()
    res = find_lr(net, torch.nn.MSELoss(), (X, Y), {"optimizer": "sgd", "momentum": mu}, B,
                  epochs=10)  # fmt: skip
    H = res.horizon_steps
    assert H == 10 * math.ceil(96 / B)
    assert all(_train(net, X, Y, res.largest_stable_lr, mu, B, H, seed=s) for s in range(3))
    hi = res.bracket[1]
    assert hi is not None
    assert not _train(net, X, Y, 2 * hi, mu, B, H, seed=0)
    assert res.recommended_lr <= res.largest_stable_lr


def test_tanh_cross_entropy_saturates_rather_than_diverges():
    """tanh + cross-entropy: far above the quadratic edge the runs make no progress but stay
    bounded; the result says so instead of calling those lrs stable progress."""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(80, 2, generator=g)
    y = (X[:, 0] * X[:, 1] > 0).long()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    res = find_lr(net, torch.nn.CrossEntropyLoss(), (X, y), {"optimizer": "sgd"}, 16)
    assert "saturates" in res.regime
    assert "made progress" in res.rule
    assert any(p.verdict == "saturated" for p in res.probes)
    assert res.edge is not None and res.bracket[0] > 5 * res.edge
    assert res.recommended_lr < res.largest_stable_lr


# ----------------------------------------------------------------- no side effects


def test_nothing_of_the_callers_changes():
    net, X, Y = _problem()
    net.register_buffer("counter", torch.arange(3.0))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, Y), batch_size=16, shuffle=True,
        generator=torch.Generator().manual_seed(5),
    )  # fmt: skip
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.5)
    for x, y in loader:  # a run in progress: momentum buffers exist
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
        sched.step()
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(6)
    params = {k: v.clone() for k, v in net.state_dict().items()}
    opt_state = opt.state_dict()
    moments = {k: v["momentum_buffer"].clone() for k, v in opt_state["state"].items()}
    sched_state = dict(sched.state_dict())
    rng = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone())
    gen = loader.generator.get_state().clone()
    res = find_lr(net, torch.nn.MSELoss(), loader, opt, scheduler=sched)
    assert isinstance(res, LRFinderResult) and res.probes
    for k, v in net.state_dict().items():
        assert torch.equal(v, params[k]), k
    after = opt.state_dict()
    assert after["param_groups"] == opt_state["param_groups"]
    for k, v in after["state"].items():
        assert torch.equal(v["momentum_buffer"], moments[k])
    assert sched.state_dict() == sched_state
    assert random.getstate() == rng[0]
    assert np.array_equal(np.random.get_state()[1], rng[1])
    assert torch.equal(torch.get_rng_state(), rng[2])
    assert torch.equal(loader.generator.get_state(), gen)
    assert "peak" in " ".join(res.caveats)


def test_parameter_groups_are_scaled_together():
    net, X, Y = _problem()
    opt = torch.optim.SGD(
        [{"params": net[0].parameters(), "lr": 0.1}, {"params": net[2].parameters(), "lr": 0.01}]
    )
    from stability.training.lr_probe import _Trainer

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=8)
    t = _Trainer(net, torch.nn.MSELoss(), loader, loader, opt, torch, 0, False)
    _, twin = t._copies(0.5)
    assert [g["lr"] for g in twin.param_groups] == pytest.approx([0.5, 0.05])
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]


# ----------------------------------------------------------------- bad input


def _refused(match, *args, **kw):
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=match):
        find_lr(*args, **kw)
    assert time.perf_counter() - t0 < 1.0


def test_bad_input_is_refused_quickly_naming_the_argument():
    net, X, Y = _problem()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    mse, sgd = torch.nn.MSELoss(), {"optimizer": "sgd", "momentum": 0.9}
    frozen = torch.nn.Linear(4, 2)
    frozen.requires_grad_(False)
    _refused("no trainable parameters", frozen, mse, (X, Y), sgd, 8)
    bad = torch.nn.Linear(4, 2)
    with torch.no_grad():
        bad.weight.fill_(float("nan"))
    _refused("loss at the start is nan", bad, mse, (X, Y), sgd, 8)
    _refused("at least 2 samples", net, mse, (X[:1], Y[:1]), sgd, 1)
    _refused("batch_size must be at most", net, mse, (X, Y), sgd, 97)
    adam = torch.optim.Adam(net.parameters())
    _refused("optimizer: .*got Adam", net, mse, (X, Y), adam, 8)
    _refused("optimizer: .*adam", net, mse, (X, Y), {"optimizer": "adam"}, 8)
    _refused("unknown key", net, mse, (X, Y), {"optimizer": "sgd", "momentun": 0.9}, 8)
    _refused(r"momentum must be in \[0, 1\)", net, mse, (X, Y), {"momentum": 1.0}, 8)
    _refused("batch_size is needed", net, mse, (X, Y), sgd)
    _refused("batch_size must be a positive integer", net, mse, (X, Y), sgd, 0)
    _refused("data must be", net, mse, [1, 2, 3], sgd, 8)
    _refused("one row per sample", net, mse, (X, Y[:5]), sgd, 8)
    _refused("epochs or steps", net, mse, (X, Y), sgd, 8, epochs=1, steps=3)
    _refused("budget must be", net, mse, (X, Y), sgd, 8, budget=-1)
    _refused("model must be", "net", mse, (X, Y), sgd, 8)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


# ----------------------------------------------------------------- the probes' verdicts


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.01, 100.0), min_size=12, max_size=60),
    st.floats(0.5, 5.0),
    st.booleans(),
)
def test_classify_follows_the_divergence_rule(losses, start, ce):
    arr = np.asarray(losses)
    end = float(arr[-max(1, arr.size // 4) :].mean())
    v = _classify(arr, start, end, ce)
    assert v != "divergent"  # every loss is below 1000x a start of at least 0.5 here
    if end >= start:
        assert v == ("saturated" if ce else "stalled")
    elif arr.max() > 2 * start:
        assert v == "catapult"
    else:
        assert v == "stable"
    spiked = arr.copy()
    spiked[len(arr) // 2] = _DIVERGENCE * start * 1.01
    assert _classify(spiked, start, end, ce) == "divergent"
    spiked[len(arr) // 2] = math.nan
    assert _classify(spiked, start, end, ce) == "divergent"
    assert _classify(arr, start, None, ce) == "divergent"


def test_classify_rising_is_a_rise_after_the_transient():
    up = np.concatenate([np.full(20, 0.3), np.linspace(0.3, 0.9, 20)])
    assert _classify(up, 1.0, float(up[-10:].mean()), False, rise=1.5) == "rising"
    assert _classify(up, 1.0, float(up[-10:].mean()), False) == "stable"
    spike = np.concatenate([np.linspace(1.0, 8.0, 5), np.linspace(8.0, 0.3, 10), np.full(30, 0.3)])
    assert _classify(spike, 1.0, 0.3, False) == "catapult"
    assert _classify(spike, 1.0, 0.3, False, rise=1.5) == "catapult"  # falls after its spike
    flat = 0.5 + 0.05 * np.random.default_rng(0).standard_normal(60)
    assert _classify(flat, 1.0, 0.5, False, rise=1.5) == "stable"  # noise is not a rise
    rng = np.random.default_rng(1)  # a small loss with large relative noise: not a rise either
    small = np.abs(0.02 + 0.02 * rng.standard_normal(40))
    assert _classify(small, 1.0, float(small[-10:].mean()), False, rise=1.5) == "stable"


# ----------------------------------------------------------------- presentation


def test_result_reports_text_html_dict_and_plot(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    net, X, Y = _problem()
    res = find_lr(net, torch.nn.MSELoss(), (X, Y), {"optimizer": "sgd", "momentum": 0.9}, 32)
    text = str(res)
    for word in ("largest stable lr", "recommended lr", "quadratic edge", "regime", "cost",
                 "probes:", "caveats:"):  # fmt: skip
        assert word in text
    assert "<table>" in res._repr_html_()
    d = json.loads(json.dumps(res.to_dict()))
    assert d["largest_stable_lr"] == res.largest_stable_lr and len(d["probes"]) == len(res.probes)
    assert all(isinstance(p, ProbeRun) for p in res.probes)
    assert {p.role for p in res.probes} == {"search", "confirm"}
    assert res.cost_steps == pytest.approx(res.cost_epochs * 96 / 32)
    assert res.cost_steps >= sum(p.steps for p in res.probes)
    artists = res.plot(truth=0.5)
    assert artists
    labels = [a.get_label() for a in artists if not a.get_label().startswith("_")]
    assert any("measured limit" in s for s in labels) and any("largest stable" in s for s in labels)
    artists[0].figure.savefig(tmp_path / "find_lr.png")


def test_nesterov_weight_decay_and_a_batchnorm_model():
    """Nesterov with weight decay: the probes are torch's own SGD with those settings and the
    answer survives a real run; a BatchNorm model in training mode has no per-sample curvature,
    so there is no edge (said in the caveats) and the search starts from the optimizer's lr."""
    net, X, Y = _problem()
    cfg = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True,
           "weight_decay": 1e-3}  # fmt: skip
    res = find_lr(net, torch.nn.MSELoss(), (X, Y), cfg, 16)
    assert res.edge is not None and res.edge > 0
    import copy

    twin = copy.deepcopy(net)
    opt = torch.optim.SGD(twin.parameters(), lr=res.largest_stable_lr, momentum=0.9,
                          nesterov=True, weight_decay=1e-3)  # fmt: skip
    g = torch.Generator().manual_seed(1)
    for _ in range(res.horizon_steps // 6):
        for idx in torch.randperm(96, generator=g).split(16):
            opt.zero_grad()
            torch.nn.functional.mse_loss(twin(X[idx]), Y[idx]).backward()
            opt.step()
    assert torch.isfinite(torch.nn.functional.mse_loss(twin(X), Y))

    torch.manual_seed(0)
    bn = torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.BatchNorm1d(16), torch.nn.Tanh(), torch.nn.Linear(16, 2)
    )
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    res = find_lr(bn, torch.nn.MSELoss(), (X, Y), {"optimizer": "sgd", "lr": 0.05}, 16)
    assert res.edge is None and any("no quadratic edge" in c for c in res.caveats)
    assert res.largest_stable_lr > 0
    for k, v in bn.state_dict().items():  # running statistics untouched
        assert torch.equal(v, before[k]), k


def test_momentum_at_small_batches_is_flagged_as_an_upper_bound():
    net, X, Y = _problem()
    small = find_lr(net, torch.nn.MSELoss(), (X, Y), {"optimizer": "sgd", "momentum": 0.9}, 8)
    assert any("upper bound" in c for c in small.caveats)
    large = find_lr(net, torch.nn.MSELoss(), (X, Y), {"optimizer": "sgd", "momentum": 0.9}, 32)
    assert not any("upper bound" in c for c in large.caveats)


def test_a_confirmation_run_whose_velocity_grows_is_rising():
    """The velocity a confirmation run watches is the norm of torch's own momentum buffers
    (of the gradients without momentum), and the rise test flags its geometric growth (the
    mean-square instability of momentum) but not a steady level."""
    from stability.training import lr_probe
    from stability.training.lr_probe import _speed

    net, X, Y = _problem()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    torch.nn.functional.mse_loss(net(X), Y).backward()
    opt.step()
    bufs = [opt.state[p]["momentum_buffer"] for p in net.parameters()]
    want = math.sqrt(sum(float((b**2).sum()) for b in bufs))
    assert _speed(opt, torch) == pytest.approx(want, rel=1e-6)
    plain = torch.optim.SGD(net.parameters(), lr=0.1)  # no buffers: the gradients
    grads = math.sqrt(sum(float((p.grad**2).sum()) for p in net.parameters()))
    assert _speed(plain, torch) == pytest.approx(grads, rel=1e-6)
    assert lr_probe._rising(np.geomspace(1.0, 4.0, 40), 1.5)
    assert not lr_probe._rising(np.full(40, 2.0) + 0.01 * np.sin(np.arange(40)), 1.5)


def _benchmark_cell(name, kind, loss):
    """A cell of benchmarks/lr_truth.py: its data (standardised) and network, rebuilt here."""
    from sklearn import datasets as d

    if name == "moons":
        X, y = d.make_moons(400, noise=0.2, random_state=0)
    elif name == "classification":
        X, y = d.make_classification(600, 20, n_informative=8, n_classes=3, random_state=0)
    elif name == "iris":
        X, y = d.load_iris(return_X_y=True)
    else:
        X, y = d.load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    x = torch.tensor(X, dtype=torch.float32)
    if name == "diabetes":
        t = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32).reshape(-1, 1)
    elif loss == "ce":
        t = torch.tensor(y)
    else:
        t = torch.nn.functional.one_hot(torch.tensor(y), int(y.max()) + 1).float()
    k = 1 if name == "diabetes" else int(y.max()) + 1
    torch.manual_seed(0)
    if kind == "tanh":
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 32), torch.nn.Tanh(),
                                  torch.nn.Linear(32, k))  # fmt: skip
    else:
        net = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], 32), torch.nn.ReLU(), torch.nn.Linear(32, 32),
            torch.nn.ReLU(), torch.nn.Linear(32, k),
        )  # fmt: skip
    return net, x, t


@pytest.mark.parametrize(
    "cell",
    [
        ("moons", "tanh", "ce", 0.0, 32),
        ("classification", "tanh", "mse", 0.9, 32),
        ("diabetes", "relu", "mse", 0.9, 128),
        ("iris", "relu", "ce", 0.9, 32),
        ("moons", "relu", "mse", 0.9, 128),
    ],
    ids=lambda c: "-".join(map(str, c)),
)
def test_answer_against_the_measured_truth_of_benchmark_cells(cell):
    """The largest lr that 10-epoch torch runs survived (median of 3 shuffles, measured by
    benchmarks/lr_truth.py and stored with the benchmark): find_lr's answer is within
    [0.5, 1.1] of it on cells of the regimes where it is reliable (B >= 32)."""
    pytest.importorskip("sklearn")
    from pathlib import Path

    rows = (Path(__file__).resolve().parents[1] / "benchmarks/results/lr_truth.jsonl").read_text()
    truth = {tuple(r["cell"]): r["truth"] for r in map(json.loads, rows.splitlines())}[cell]
    name, kind, loss, mu, B = cell
    net, x, t = _benchmark_cell(name, kind, loss)
    loss_fn = torch.nn.CrossEntropyLoss() if loss == "ce" else torch.nn.MSELoss()
    res = find_lr(net, loss_fn, (x, t), {"optimizer": "sgd", "momentum": mu}, B)
    assert 0.5 <= res.largest_stable_lr / truth <= 1.1
