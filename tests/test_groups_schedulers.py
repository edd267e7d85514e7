"""Property tests that drive :func:`stability.check` and the monitor with every torch scheduler
class, several parameter groups (different learning rates, momenta and weight decays) and
models with unused, frozen and shared parameters (issue 28). The oracles are independent of
the package: twins of the scheduler stepped by hand, the exact heavy-ball condition
``lr (lambda + wd) < 2 (1 + momentum)``, and dense Hessians from ``torch.autograd``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stability as stb

torch = pytest.importorskip("torch")

from stability.training import StabilityMonitor  # noqa: E402

S = torch.optim.lr_scheduler

SCHEDULERS = {
    "StepLR": lambda o: S.StepLR(o, step_size=7, gamma=1.5),
    "MultiStepLR": lambda o: S.MultiStepLR(o, [5, 20], gamma=2.0),
    "ExponentialLR": lambda o: S.ExponentialLR(o, 1.01),
    "CosineAnnealingLR": lambda o: S.CosineAnnealingLR(o, T_max=30),
    "CosineAnnealingWarmRestarts": lambda o: S.CosineAnnealingWarmRestarts(o, T_0=10),
    "LinearLR": lambda o: S.LinearLR(o, start_factor=0.1, total_iters=20),
    "ConstantLR": lambda o: S.ConstantLR(o, factor=0.5, total_iters=10),
    "PolynomialLR": lambda o: S.PolynomialLR(o, total_iters=30, power=2.0),
    "LambdaLR": lambda o: S.LambdaLR(o, lambda t: 1 + t / 50),
    "MultiplicativeLR": lambda o: S.MultiplicativeLR(o, lambda t: 1.01),
    "OneCycleLR": lambda o: S.OneCycleLR(
        o, max_lr=[3 * g["lr"] for g in o.param_groups], total_steps=60
    ),
    "CyclicLR": lambda o: S.CyclicLR(
        o,
        base_lr=[g["lr"] / 4 for g in o.param_groups],
        max_lr=[2 * g["lr"] for g in o.param_groups],
        step_size_up=10,
    ),
    "SequentialLR": lambda o: S.SequentialLR(
        o, [S.LinearLR(o, 0.1, total_iters=5), S.ExponentialLR(o, 1.02)], milestones=[5]
    ),
    "SequentialLR3": lambda o: S.SequentialLR(
        o,
        [
            S.LinearLR(o, 0.2, total_iters=5),
            S.ConstantLR(o, factor=1.0, total_iters=10),
            S.CosineAnnealingLR(o, T_max=20),
        ],
        milestones=[5, 15],
    ),
    "ChainedScheduler": lambda o: S.ChainedScheduler(
        [S.ConstantLR(o, 0.5, total_iters=5), S.ExponentialLR(o, 1.02)]
    ),
    "ChainedScheduler3": lambda o: S.ChainedScheduler(
        [
            S.LinearLR(o, 0.5, total_iters=8),
            S.StepLR(o, step_size=10, gamma=1.3),
            S.ConstantLR(o, factor=0.8, total_iters=4),
        ]
    ),
}

GROUP = st.fixed_dictionaries(
    {
        "lr": st.floats(1e-3, 0.2),
        "momentum": st.sampled_from([0.0, 0.5, 0.9]),
        "weight_decay": st.sampled_from([0.0, 1e-3, 0.1]),
    }
)


def _optimizer(groups):
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in groups]
    return torch.optim.SGD(
        [{"params": [p], **g} for p, g in zip(params, groups, strict=True)],
        lr=groups[0]["lr"],
    )


def _stepped_by_hand(name, groups, steps):
    """Oracle: a twin optimizer and scheduler, stepped as a training loop steps them; each
    group's (lr, momentum) at every step, and the last one repeated once the scheduler ends."""
    opt = _optimizer(groups)
    sched = SCHEDULERS[name](opt)
    out = []
    for t in range(steps):
        out.append([(g["lr"], g["momentum"]) for g in opt.param_groups])
        if t == steps - 1:
            break
        opt.step()
        try:
            sched.step()
        except ValueError:  # OneCycleLR past total_steps: the run must stop stepping it
            out.extend([out[-1]] * (steps - 1 - t))
            break
    return out


@settings()
@given(
    name=st.sampled_from(sorted(SCHEDULERS)),
    groups=st.lists(GROUP, min_size=1, max_size=3),
    lam=st.floats(1.0, 100.0),
)
def test_check_reads_every_scheduler_for_every_group(name, groups, lam):
    opt = _optimizer(groups)
    rep = stb.check(opt, lambda_max=lam, schedule=SCHEDULERS[name](opt))
    reports = rep.groups or [rep]
    horizon = reports[0].schedule["horizon"]
    hand = _stepped_by_hand(name, groups, horizon)
    worst, first_any = None, []
    for g, (r, spec) in enumerate(zip(reports, groups, strict=True)):
        margins = [
            2 * (1 + m) - lr * (lam + spec["weight_decay"]) for lr, m in (s[g] for s in hand)
        ]
        if min(abs(x) for x in margins) < 1e-9:
            return  # a step on the boundary to rounding: nothing to compare
        first = next((t for t, x in enumerate(margins) if x <= 0), None)
        assert r.schedule["first_unstable_step"] == first, (g, first)
        peak = max(s[g][0] for s in hand)
        assert r.schedule["peak_lr"] == pytest.approx(peak, rel=1e-9)
        first_any.append(first)
        if first is not None:
            worst = g if worst is None else worst
    unstable = any(f is not None for f in first_any)
    assert (rep.verdict == "unstable") == unstable
    if len(groups) > 1 and unstable:
        assert first_any[rep.limiting_group] is not None  # the named group is an unstable one


class _Net(torch.nn.Module):
    """Least squares with a shared layer used twice, a frozen layer and an unused head."""

    def __init__(self, d):
        super().__init__()
        self.shared = torch.nn.Linear(d, 1).double()
        self.body = torch.nn.Linear(d, 1).double()
        self.frozen = torch.nn.Linear(d, 1).double().requires_grad_(False)
        self.unused = torch.nn.Linear(d, 3).double()

    def forward(self, x):
        return self.shared(x) + 0.5 * self.shared(x) + self.body(x) + self.frozen(x)


def _dense_hessian(model, X, y):
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    flat = torch.cat([p.detach().reshape(-1) for _, p in named])

    def f(v):
        out, start = {}, 0
        for n, p in named:
            out[n] = v[start : start + p.numel()].view_as(p)
            start += p.numel()
        return torch.nn.functional.mse_loss(torch.func.functional_call(model, out, (X,)), y)

    return torch.autograd.functional.hessian(f, flat).numpy(), named


@settings(max_examples=max(4, settings.default.max_examples // 3))  # 5 by default, 166 thorough
@given(
    name=st.sampled_from(sorted(SCHEDULERS)),
    lrs=st.lists(st.floats(1e-3, 0.3), min_size=2, max_size=2),
    momenta=st.sampled_from([(0.9, 0.9), (0.0, 0.0), (0.5, 0.9)]),
    seed=st.integers(0, 2**16),
)
def test_the_monitor_follows_every_scheduler_and_group(name, lrs, momenta, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = torch.randn(40, 1, generator=g, dtype=torch.float64)
    torch.manual_seed(seed)
    net = _Net(3)
    H, named = _dense_hessian(net, X, y)  # constant: the loss is quadratic
    opt = torch.optim.SGD(
        [
            {"params": [net.shared.weight, net.shared.bias, net.unused.weight],
             "lr": lrs[0], "momentum": momenta[0]},
            {"params": [net.body.weight, net.body.bias, net.unused.bias],
             "lr": lrs[1], "momentum": momenta[1]},
        ],
        lr=lrs[0],
    )  # fmt: skip
    sched = SCHEDULERS[name](opt)
    mon = StabilityMonitor(net, torch.nn.MSELoss(), opt, (X, y), scheduler=sched, every=9,
                           on_unstable=lambda r: None, iters=30)  # fmt: skip
    owner = {id(p): i for i, grp in enumerate(opt.param_groups) for p in grp["params"]}
    members = np.concatenate([np.full(p.numel(), owner[id(p)]) for _, p in named])
    lam_max = float(np.linalg.eigvalsh(H).max())
    for _ in range(66):  # past OneCycleLR's 60 steps: stepping stops there, as a run's would
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(X), y).backward()
        opt.step()
        if not (name == "OneCycleLR" and sched.last_epoch >= 59):
            sched.step()
        rec = mon.step()
        if rec is None or not math.isfinite(rec.ratio):
            continue
        lr_now = np.array([grp["lr"] for grp in opt.param_groups])
        mom_now = np.array([grp["momentum"] for grp in opt.param_groups])
        if np.ptp(mom_now) == 0:  # one momentum: the joint dynamics on D^1/2 H D^1/2
            d = np.sqrt(lr_now[members])
            want = np.linalg.eigvalsh(d[:, None] * H * d[None, :]).max() / (2 * (1 + mom_now[0]))
        else:  # each group against the whole curvature
            want = max(lam_max * lr_now[i] / (2 * (1 + mom_now[i])) for i in range(2))
        assert rec.ratio == pytest.approx(want, rel=1e-3), (rec, want)
