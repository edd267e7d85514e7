"""torch lr_scheduler objects read into schedules: the values equal a real run of an identical
scheduler, the user's scheduler is never stepped, and check() reports the first crossing."""

from __future__ import annotations

import math

import numpy as np
import pytest

import stability as stb

torch = pytest.importorskip("torch")
S = torch.optim.lr_scheduler


def _opt(lr=0.1, cls=None):
    p = torch.nn.Parameter(torch.zeros(3))
    return (cls or torch.optim.SGD)([p], lr=lr, **({"momentum": 0.9} if cls is None else {}))


FACTORIES = {
    "LambdaLR": lambda o: S.LambdaLR(o, lambda t: min((t + 1) / 10, 1.0)),
    "StepLR": lambda o: S.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda o: S.MultiStepLR(o, milestones=[5, 12], gamma=0.3),
    "ExponentialLR": lambda o: S.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda o: S.CosineAnnealingLR(o, T_max=25, eta_min=0.001),
    "CosineAnnealingWarmRestarts": lambda o: S.CosineAnnealingWarmRestarts(o, T_0=6, T_mult=2),
    "LinearLR": lambda o: S.LinearLR(o, start_factor=0.2, total_iters=8),
    "OneCycleLR": lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=30),
    "SequentialLR": lambda o: S.SequentialLR(
        o,
        [S.LinearLR(o, start_factor=0.1, total_iters=5), S.CosineAnnealingLR(o, T_max=20)],
        milestones=[5],
    ),
    "ChainedScheduler": lambda o: S.ChainedScheduler(
        [S.ExponentialLR(o, gamma=0.97), S.StepLR(o, step_size=4, gamma=0.8)]
    ),
}


def _real_run(factory, steps, cls=None):
    opt = _opt(cls=cls)
    sched = factory(opt)
    base = opt.param_groups[0].get("initial_lr", opt.param_groups[0]["lr"])
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(lrs) / base


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_schedule_equals_a_real_run_and_leaves_the_scheduler_alone(name):
    from stability.training.schedulers import schedule_from_torch

    steps = 30
    opt = _opt()
    sched = FACTORIES[name](opt)
    before_state = {k: v for k, v in sched.state_dict().items() if k != "_schedulers"}
    before_lr = opt.param_groups[0]["lr"]
    s = schedule_from_torch(sched, steps)
    np.testing.assert_allclose(s.values, _real_run(FACTORIES[name], steps), rtol=1e-12)
    assert opt.param_groups[0]["lr"] == before_lr
    after_state = {k: v for k, v in sched.state_dict().items() if k != "_schedulers"}
    assert str(after_state) == str(before_state)  # not stepped


def test_adam_schedulers_and_defaults():
    from stability.training.schedulers import horizon_of, schedule_from_torch

    f = FACTORIES["OneCycleLR"]
    s = schedule_from_torch(f(_opt(cls=torch.optim.Adam)))  # cycles Adam's beta1 too
    assert s.values.size == 30 == horizon_of(f(_opt()))
    np.testing.assert_allclose(s.values, _real_run(f, 30, cls=torch.optim.Adam), rtol=1e-12)
    assert schedule_from_torch(FACTORIES["StepLR"](_opt())).values.size == 1000
    with pytest.raises(stb.ConfigError, match="steps must be an integer"):
        schedule_from_torch(FACTORIES["StepLR"](_opt()), 0)
    with pytest.raises(stb.ConfigError, match="lr_scheduler"):
        schedule_from_torch(object(), 10)


def test_check_reports_the_first_step_over_the_limit():
    opt = _opt(lr=0.1)
    warm = S.LambdaLR(opt, lambda t: min((t + 1) / 10, 1.0) * 4)  # up to 4 x 0.1
    cfg = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}
    rep = stb.check(cfg, lambda_max=50.0, schedule=warm)
    limit = rep.max_stable_lr  # 2 (1 + 0.9) / 50 = 0.076
    assert limit == pytest.approx(0.076, rel=1e-6)
    lrs = 0.1 * _real_run(lambda o: S.LambdaLR(o, lambda t: min((t + 1) / 10, 1.0) * 4), 1000)
    first = int(np.flatnonzero(lrs > limit)[0])
    assert rep.schedule["first_unstable_step"] == first == 1
    assert rep.schedule["peak_lr"] == pytest.approx(0.4) and rep.verdict == "unstable"
    assert "crosses the limit" in str(rep)
    calm = stb.check(cfg, lambda_max=1.0, schedule=warm)  # limit 3.8: never crossed
    assert calm.schedule["first_unstable_step"] is None and calm.verdict == "stable"
    assert math.isclose(calm.schedule["limit_lr"], 3.8, rel_tol=1e-6)
