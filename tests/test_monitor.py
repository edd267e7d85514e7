"""The stability monitor warns before a warm-up pushes SGD over the edge, stays quiet below it,
and leaves the training run unchanged."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import stability as stb

torch = pytest.importorskip("torch")

from stability.training.monitor import StabilityMonitor, StabilityWarning  # noqa: E402


def _problem():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 20, generator=g, dtype=torch.float64) * torch.linspace(0.2, 2, 20)
    y = X @ torch.randn(20, 1, generator=g, dtype=torch.float64)
    lam_max = float(torch.linalg.eigvalsh(X.T @ X / 200).max())  # Hessian of the loss below
    return X, y, lam_max


def _loss(out, y):
    return 0.5 * ((out - y) ** 2).mean()


def _train(peak: float, monitor_kw=None, steps=120):
    X, y, lam_max = _problem()
    torch.manual_seed(1)
    model = torch.nn.Linear(20, 1, bias=False).double()
    lr_limit = 2 * (1 + 0.5) / lam_max  # heavy-ball limit at momentum 0.5
    opt = torch.optim.SGD(model.parameters(), lr=lr_limit, momentum=0.5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.2 + (peak - 0.2) * min(t / 60, 1))
    mon = None
    if monitor_kw is not None:
        mon = StabilityMonitor(model, _loss, opt, (X, y), scheduler=sched, **monitor_kw)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = _loss(model(X), y)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if mon is not None:
            mon.step()
    return model, losses, mon, lam_max


def test_monitor_warns_before_divergence():
    events = []
    _, losses, mon, lam_max = _train(1.6, {"every": 5, "on_unstable": events.append})
    diverged = next(i for i, v in enumerate(losses) if not np.isfinite(v) or v > 1e6)
    assert events, "no warning"
    assert events[0].step < diverged
    first = events[0]
    # the look-ahead predicted the crossing: lr(t) = lr_limit (0.2 + 1.4 t/60) > limit at t > 34
    assert first.crossing_step is not None and first.crossing_step <= 40
    assert first.sharpness == pytest.approx(lam_max, rel=1e-3)  # a quadratic: exact curvature
    assert all(r.hvps > 0 for r in mon.history)


def test_monitor_quiet_below_the_limit_and_side_effect_free():
    with warnings.catch_warnings():
        warnings.simplefilter("error", StabilityWarning)
        watched, losses, mon, _ = _train(0.9, {"every": 5})
    assert losses[-1] < 1e-6 and mon.history
    assert max(r.ratio for r in mon.history) < 1
    plain, plain_losses, _, _ = _train(0.9, None)
    assert losses == plain_losses  # bit-for-bit: the monitor changed nothing
    assert torch.equal(watched.weight, plain.weight)


def test_monitor_raise_and_validation():
    with pytest.raises(stb.StabilityError, match=r"largest stable lr is"):
        _train(1.6, {"every": 5, "on_unstable": "raise"})
    X, y, _ = _problem()
    model = torch.nn.Linear(20, 1, bias=False).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(stb.ConfigError, match="every must be"):
        StabilityMonitor(model, _loss, opt, (X, y), every=0)
    with pytest.raises(stb.ConfigError, match="on_unstable"):
        StabilityMonitor(model, _loss, opt, (X, y), on_unstable="shout")


def test_monitor_history_plot(tmp_path):
    import matplotlib.pyplot as plt

    from stability import plots

    _, _, mon, _ = _train(0.9, {"every": 10})
    fig, ax = plt.subplots()
    assert plots.plot_monitor(mon.history, ax=ax)
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    fig.savefig(tmp_path / "monitor.png")
    plt.close(fig)


def test_monitor_steps_count_optimizer_steps_and_the_crossing_is_the_step_that_crosses():
    """``record.step`` is the number of optimizer steps taken; ``crossing_step`` the first
    optimizer step whose scheduled lr is above the limit (LambdaLR: step k uses the factor of
    epoch k - 1, 0.2 + 1.4 (k - 1)/60 > 1 from k = 36 on)."""
    _, _, mon, lam_max = _train(1.6, {"every": 5, "on_unstable": lambda r: None}, steps=20)
    steps = [r.step for r in mon.history]
    # every 5 steps, and early ones as the warm-up raises lr / lr_limit (checks come closer)
    assert {1, 5, 10, 15, 20} <= set(steps) and steps == sorted(set(steps))
    first = mon.history[0]
    assert first.crossing_step == 36
    lr_limit = 2 * (1 + 0.5) / lam_max
    assert first.lr == pytest.approx((0.2 + 1.4 / 60) * lr_limit)  # the next step's: epoch 1
    assert first.lr_limit == pytest.approx(lr_limit, rel=1e-3)  # 3/sharpness, exactly
    assert first.loss > 0 and not first.collapsed
    assert 0 < first.hvp_seconds <= first.seconds


def test_monitor_messages_say_what_to_change():
    messages = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _train(1.6, {"every": 5}, steps=60)
        messages = [str(w.message) for w in caught if w.category is StabilityWarning]
    crossing = messages[0]
    assert "largest stable lr is" in crossing and "passes it at step 36" in crossing
    assert "Cap the schedule at" in crossing and "end the warm-up at step 35" in crossing
    above = next(m for m in messages if "x the stability threshold" in m)
    assert "lower the lr below it" in above


def test_a_collapsed_run_is_reported_once():
    """A run that blows up: the monitor says it collapsed (the ratio alone would go quiet once
    the weights are huge or NaN), once, and keeps recording."""
    events = []
    _, losses, mon, _ = _train(3.0, {"every": 5, "on_unstable": events.append}, steps=120)
    assert not np.isfinite(losses[-1]) or losses[-1] > 1e6
    collapsed = [r for r in mon.history if r.collapsed]
    assert collapsed and sum(e.collapsed for e in events) == 1
    assert "COLLAPSED" in repr(mon.history)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _train(3.0, {"every": 5}, steps=120)
    said = [str(w.message) for w in caught if "has collapsed" in str(w.message)]
    assert len(said) == 1 and "Restart from a checkpoint" in said[0]


def test_history_reprs():
    _, _, mon, _ = _train(0.9, {"every": 10}, steps=30)
    text = repr(mon.history)
    n = len(mon.history)  # every 10 steps, and early ones as the warm-up nears the limit
    assert n >= 4 and text.startswith(f"MonitorHistory({n} checks, steps 1..30")
    html = mon.history._repr_html_()
    assert html.count("<tr") == n + 1 and "lr limit" in html
    assert str(mon.history[0]).startswith("step 1: loss")
