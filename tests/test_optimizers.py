"""Adapters reproduce the frameworks' own update rules.

Each framework's documented step is re-implemented here in plain numpy (independently of the
adapter formulas) and compared with the adapter's memory-1 replay on a quadratic. Real
``torch.optim.SGD`` is an optional witness.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import stability as stb
from stability.simulate import simulate


def quadratic(seed: int, d: int = 6):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, d))
    H = A @ A.T / d
    H /= np.linalg.eigvalsh(H).max()
    w_star = rng.normal(size=d)
    return H, w_star, rng.normal(size=d)


def torch_sgd_reference(
    grad, w0, steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False
):
    """torch.optim.SGD, transcribed from its documentation (including the first step)."""
    w, buf, out = np.array(w0, dtype=float), None, [np.array(w0, dtype=float)]
    for _ in range(steps):
        g = grad(w) + weight_decay * w
        if momentum != 0:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        w = w - lr * g
        out.append(w)
    return np.array(out)


def optax_sgd_reference(grad, w0, steps, learning_rate, momentum=None, nesterov=False):
    """optax.sgd = trace(decay=momentum, nesterov) then scale(-learning_rate)."""
    w, trace, out = np.array(w0, dtype=float), np.zeros_like(w0), [np.array(w0, dtype=float)]
    for _ in range(steps):
        g = grad(w)
        if momentum is not None:
            trace = g + momentum * trace
            g = g + momentum * trace if nesterov else trace
        w = w - learning_rate * g
        out.append(w)
    return np.array(out)


def keras_sgd_reference(grad, w0, steps, learning_rate, momentum=0.0, nesterov=False):
    """keras.optimizers.SGD: m = mu m - lr g; w += m  (nesterov: w += mu m - lr g)."""
    w, m, out = np.array(w0, dtype=float), np.zeros_like(w0), [np.array(w0, dtype=float)]
    for _ in range(steps):
        g = grad(w)
        if momentum:
            m = momentum * m - learning_rate * g
            w = w + momentum * m - learning_rate * g if nesterov else w + m
        else:
            w = w - learning_rate * g
        out.append(w)
    return np.array(out)


def assert_same_trajectory(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(b).max()))


lrs = st.floats(0.01, 1.5)
moms = st.floats(0.0, 0.98)
damps = st.floats(0.0, 0.9)
wds = st.floats(0.0, 0.3)


@given(
    lr=lrs,
    momentum=moms,
    dampening=damps,
    weight_decay=wds,
    nesterov=st.booleans(),
    seed=st.integers(0, 5),
)
def test_torch_adapter_replays_torch_rule(lr, momentum, dampening, weight_decay, nesterov, seed):
    if nesterov:
        dampening = 0.0
        momentum = max(momentum, 0.05)
    H, w_star, w0 = quadratic(seed)

    def grad(w):
        return H @ (w - w_star)

    cfg = dict(
        lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov
    )
    ref = torch_sgd_reference(grad, w0, 25, **cfg)
    opt = stb.from_torch_sgd(**cfg)
    assert_same_trajectory(opt.simulate(grad, w0, 25), ref)


@given(lr=lrs, momentum=st.one_of(st.none(), moms), nesterov=st.booleans(), seed=st.integers(0, 5))
def test_optax_adapter_replays_optax_rule(lr, momentum, nesterov, seed):
    H, w_star, w0 = quadratic(seed)

    def grad(w):
        return H @ (w - w_star)

    ref = optax_sgd_reference(grad, w0, 25, lr, momentum, nesterov)
    assert_same_trajectory(stb.from_optax_sgd(lr, momentum, nesterov).simulate(grad, w0, 25), ref)


@given(lr=lrs, momentum=moms, nesterov=st.booleans(), seed=st.integers(0, 5))
def test_keras_adapter_replays_keras_rule(lr, momentum, nesterov, seed):
    H, w_star, w0 = quadratic(seed)

    def grad(w):
        return H @ (w - w_star)

    ref = keras_sgd_reference(grad, w0, 25, lr, momentum, nesterov)
    assert_same_trajectory(stb.from_keras_sgd(lr, momentum, nesterov).simulate(grad, w0, 25), ref)


def test_first_step_changes_transient_only():
    # same algorithm (hence same stability), different initial memory
    a = stb.from_torch_sgd(0.1, 0.9, dampening=0.5)
    assert a.undamped_first_step and not stb.from_torch_sgd(0.1, 0.9).undamped_first_step
    H, w_star, w0 = np.diag(np.linspace(0.2, 1.0, 6)), np.arange(6.0), np.zeros(6)

    def grad(w):
        return H @ (w - w_star)

    replay = a.simulate(grad, w0, 400)
    plain = simulate(a.algorithm, lambda w: grad(w), w0, 400)  # u0 = 0 start
    assert np.abs(replay[1] - plain[1]).max() > 1e-3  # the first step differs ...
    assert np.abs(replay[-1] - w_star).max() < 1e-6  # ... both converge to the same point
    assert np.abs(plain[-1] - w_star).max() < 1e-6


def test_weight_decay_is_a_curvature_shift():
    opt = stb.from_torch_sgd(0.1, 0.9, weight_decay=0.01)
    assert float(opt.curvature(2.0)) == pytest.approx(2.01)
    assert any("lambda + 0.01" in n for n in opt.notes)


def test_momentum_zero_is_gd_even_with_dampening():
    opt = stb.from_torch_sgd(0.1, 0, dampening=0.5)
    assert opt.algorithm.M == 0 and float(opt.algorithm.alpha) == 0.1
    assert any("no effect" in n for n in opt.notes)


def test_effective_lr_of_adapters():
    F = Fraction
    assert stb.from_torch_sgd(F(1, 10), F(9, 10), F(1, 2)).algorithm.effective_lr() == sp.Rational(
        1, 2
    )
    assert stb.from_torch_sgd(F(1, 10), F(9, 10), nesterov=True).algorithm.effective_lr() == 1
    assert stb.from_keras_sgd(F(1, 10), F(9, 10), True).algorithm.effective_lr() == 1


def test_keras_nesterov_has_nesterov_triplet():
    F = Fraction
    assert (
        stb.from_keras_sgd(F(1, 10), F(9, 10), True).algorithm.triplet()
        == stb.nesterov(F(1, 10), F(9, 10)).triplet()
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0}, "lr must be in (0, inf), got 0"),
        ({"lr": -0.1}, "lr must be in (0, inf), got -0.1"),
        ({"lr": float("nan")}, "lr must be finite, got nan"),
        ({"lr": 0.1, "momentum": 1.0}, "momentum must be in [0, 1), got 1.0"),
        ({"lr": 0.1, "momentum": -0.5}, "momentum must be in [0, 1), got -0.5"),
        ({"lr": 0.1, "momentum": 0.9, "dampening": 1.0}, "dampening must be in [0, 1), got 1.0"),
        ({"lr": 0.1, "weight_decay": -1e-4}, "weight_decay must be in [0, inf), got -0.0001"),
        (
            {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True},
            "nesterov=True requires momentum > 0 and dampening = 0",
        ),
        ({"lr": 0.1, "nesterov": True}, "nesterov=True requires momentum > 0"),
        ({"lr": 0.1, "nesterov": "yes"}, "nesterov must be true or false, got 'yes'"),
        ({"lr": "0.1"}, "lr must be a number, got a string '0.1'"),
        ({"lr": 0.1, "maximize": True}, "maximize must be false"),
    ],
)
def test_torch_invalid_configs(kwargs, message):
    with pytest.raises(stb.ConfigError) as info:
        stb.from_torch_sgd(**kwargs)
    assert message in str(info.value)


def test_optax_and_keras_invalid_configs():
    with pytest.raises(stb.ConfigError, match="schedule"):
        stb.from_optax_sgd(lambda step: 0.1)
    with pytest.raises(stb.ConfigError, match=r"learning_rate must be in \(0, inf\)"):
        stb.from_keras_sgd(-1.0)
    with pytest.raises(stb.ConfigError, match=r"momentum must be in \[0, 1\), got 1.5"):
        stb.from_optax_sgd(0.1, 1.5)
    notes = stb.from_optax_sgd(0.1, None, True).notes
    assert any("no effect" in n for n in notes)


# -- from_optimizer ----------------------------------------------------------------------
def test_from_optimizer_mappings():
    (a,) = stb.from_optimizer({"optimizer": "optax.sgd", "learning_rate": 0.1, "momentum": 0.9})
    assert a.source == "optax.sgd"
    (b,) = stb.from_optimizer({"optimizer": "Keras", "learning_rate": 0.1})
    assert b.algorithm.M == 0
    with pytest.raises(stb.ConfigError, match="unknown key"):
        stb.from_optimizer({"optimizer": "keras.sgd", "lr": 0.1})
    with pytest.raises(stb.ConfigError, match="optimizer is required"):
        stb.from_optimizer({"lr": 0.1})
    with pytest.raises(stb.ConfigError, match="optimizer must be one of"):
        stb.from_optimizer({"optimizer": "rmsprop", "lr": 0.1})
    (adam,) = stb.from_optimizer({"optimizer": "adam", "lr": 0.1})  # frozen-preconditioner model
    assert adam.source == "torch.optim.Adam" and any("frozen" in n for n in adam.notes)
    with pytest.raises(stb.ConfigError, match="lr is required"):
        stb.from_optimizer({"optimizer": "sgd", "momentum": 0.9})
    with pytest.raises(stb.ConfigError, match="expected a mapping"):
        stb.from_optimizer(42)


class SGD:  # duck-typed stand-in with torch's param_groups layout
    def __init__(self, *groups):
        self.param_groups = list(groups)


class RMSprop(SGD):
    pass


def torch_group(**hyper):
    base = {
        "params": [object()],
        "lr": 0.1,
        "momentum": 0,
        "dampening": 0,
        "weight_decay": 0,
        "nesterov": False,
        "maximize": False,
        "foreach": None,
        "differentiable": False,
        "fused": None,
    }
    return {**base, **hyper}


def test_from_optimizer_duck_typed_torch_object():
    opt = SGD(
        torch_group(momentum=0.9),
        torch_group(lr=0.01, weight_decay=1e-4, nesterov=True, momentum=0.5),
    )
    first, second = stb.from_optimizer(opt)
    assert first.algorithm.name == "torch_sgd"
    assert second.algorithm.name == "torch_sgd_nesterov"
    assert float(second.curvature_shift) == 1e-4
    with pytest.raises(stb.ConfigError, match="param group 1: momentum must be in"):
        stb.from_optimizer(SGD(torch_group(), torch_group(momentum=1.0)))
    with pytest.raises(stb.ConfigError, match="unknown key"):
        stb.from_optimizer(SGD(torch_group(momentun=0.9)))
    with pytest.raises(stb.ConfigError, match="got RMSprop"):
        stb.from_optimizer(RMSprop(torch_group()))
    with pytest.raises(stb.ConfigError, match="must not be empty"):
        stb.from_optimizer(SGD())


def test_from_optimizer_state_dict():
    sd = {"state": {}, "param_groups": [torch_group(momentum=0.9) | {"params": [0, 1]}]}
    (a,) = stb.from_optimizer(sd)
    assert a.algorithm.M == 1


# -- optional: real torch --------------------------------------------------------------
@pytest.mark.parametrize(
    "cfg",
    [
        {"lr": 0.3, "momentum": 0.0},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.1, "momentum": 0.8, "dampening": 0.3},
        {"lr": 0.1, "momentum": 0.9, "nesterov": True},
        {"lr": 0.05, "momentum": 0.7, "weight_decay": 0.1},
    ],
)
def test_real_torch_sgd(cfg):
    torch = pytest.importorskip("torch")
    H, w_star, w0 = quadratic(3)
    Ht, wst = torch.tensor(H, dtype=torch.float64), torch.tensor(w_star, dtype=torch.float64)
    p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    opt = torch.optim.SGD([p], **cfg)
    traj = [w0.copy()]
    for _ in range(30):
        opt.zero_grad()
        loss = 0.5 * (p - wst) @ Ht @ (p - wst)
        loss.backward()
        opt.step()
        traj.append(p.detach().numpy().copy())
    (configured,) = stb.from_optimizer(opt)  # the real object, duck-typed
    replay = configured.simulate(lambda w: H @ (w - w_star), w0, 30)
    np.testing.assert_allclose(replay, np.array(traj), rtol=1e-10, atol=1e-12)
    assert math.isfinite(float(configured.algorithm.effective_lr()))


def test_one_config_reader_for_every_face(capsys):
    """check(), from_optimizer, the LTV view and the CLI refuse the same misspelled key with
    the same message (one reader: stability.configs)."""
    from stability import ltv
    from stability.cli import main

    bad = {"optimizer": "sgd", "lr": 0.1, "momentun": 0.9}
    messages = []
    for call in (
        lambda: stb.from_optimizer(bad),
        lambda: stb.check(bad, lambda_max=1.0),
        lambda: ltv.filter_from_config(bad),
    ):
        with pytest.raises(stb.ConfigError) as info:
            call()
        messages.append(str(info.value))
    assert len(set(messages)) == 1 and "unknown key(s) ['momentun']" in messages[0]
    # aliases agree too: 'SGD', 'torch', 'torch.optim.SGD' all read as torch SGD
    for name in ("SGD", "torch", "torch.optim.SGD"):
        assert stb.from_optimizer({"optimizer": name, "lr": 0.1})[0].source == "torch.optim.SGD"
        assert float(ltv.filter_from_config({"optimizer": name}).eta) == 1.0
    assert main(["check", "--optimizer", "keras.sgd", "--lr", "0.1", "--lambda-max", "1"]) == 0
    assert "learning_rate=0.1" in capsys.readouterr().out
