"""torch lr_scheduler objects read into schedules: the learning rates and momenta equal a real
run of an identical scheduler (from the scheduler's current position, its last value included),
the user's scheduler is never stepped, and check() decides every scheduled step, with a live
optimizer and with a mapping, against the eigenvalues of each step's update matrix."""

from __future__ import annotations

import time

import mpmath
import numpy as np
import pytest
import sympy as sp

import stability as stb

torch = pytest.importorskip("torch")
S = torch.optim.lr_scheduler


def _opt(cls: str = "sgd", lr: float = 0.1):
    p = torch.nn.Parameter(torch.zeros(3))
    if cls == "adam":
        return torch.optim.Adam([p], lr=lr, betas=(0.9, 0.999))
    return torch.optim.SGD([p], lr=lr, momentum=0.9)


FACTORIES = {
    "LambdaLR": lambda o: S.LambdaLR(o, lambda t: min((t + 1) / 10, 1.0)),
    "MultiplicativeLR": lambda o: S.MultiplicativeLR(o, lambda t: 0.95),
    "StepLR": lambda o: S.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda o: S.MultiStepLR(o, milestones=[5, 12], gamma=0.3),
    "ExponentialLR": lambda o: S.ExponentialLR(o, gamma=0.93),
    "ConstantLR": lambda o: S.ConstantLR(o, factor=0.5, total_iters=6),
    "PolynomialLR": lambda o: S.PolynomialLR(o, total_iters=20, power=2.0),
    "CosineAnnealingLR": lambda o: S.CosineAnnealingLR(o, T_max=25, eta_min=0.001),
    "CosineAnnealingWarmRestarts": lambda o: S.CosineAnnealingWarmRestarts(o, T_0=6, T_mult=2),
    "LinearLR": lambda o: S.LinearLR(o, start_factor=0.2, total_iters=8),
    "OneCycleLR": lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=30),
    "CyclicLR": lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.2, step_size_up=7),
    "SequentialLR": lambda o: S.SequentialLR(
        o,
        [S.LinearLR(o, start_factor=0.1, total_iters=5), S.CosineAnnealingLR(o, T_max=20)],
        milestones=[5],
    ),
    "ChainedScheduler": lambda o: S.ChainedScheduler(
        [S.ExponentialLR(o, gamma=0.97), S.StepLR(o, step_size=4, gamma=0.8)]
    ),
}


def _momentum(group) -> float:
    return float(group["betas"][0]) if "betas" in group else float(group["momentum"])


def _real_run(factory, steps: int, cls: str = "sgd") -> tuple[np.ndarray, np.ndarray]:
    """The learning rate and momentum torch uses at each of ``steps`` steps."""
    opt = _opt(cls)
    sched = factory(opt)
    lrs, moms = [], []
    for t in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(_momentum(opt.param_groups[0]))
        opt.step()
        if t < steps - 1:
            sched.step()
    return np.array(lrs), np.array(moms)


@pytest.mark.parametrize("cls", ["sgd", "adam"])
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_schedule_equals_a_real_run_and_leaves_the_scheduler_alone(name, cls):
    from stability.training.schedulers import horizon_of, schedule_from_torch

    opt = _opt(cls)
    sched = FACTORIES[name](opt)
    before_state = {k: v for k, v in sched.state_dict().items() if k != "_schedulers"}
    before_lr = opt.param_groups[0]["lr"]
    s = schedule_from_torch(sched)
    found = horizon_of(sched)
    steps = found[0] if found else 1000
    assert s.values.size == steps
    lrs, moms = _real_run(FACTORIES[name], steps, cls)
    np.testing.assert_allclose(s.base_lr * s.values, lrs, rtol=1e-12)
    if s.momentum is not None:
        np.testing.assert_allclose(s.momentum, moms, rtol=1e-12)
    else:
        assert np.ptp(moms) == 0
    assert opt.param_groups[0]["lr"] == before_lr
    after_state = {k: v for k, v in sched.state_dict().items() if k != "_schedulers"}
    assert str(after_state) == str(before_state)  # not stepped


def test_linear_lr_reads_its_final_value():
    """LinearLR's last value is at step total_iters: the horizon holds total_iters + 1 steps
    (it stopped one short, so a crossing at the last step went unseen)."""
    from stability.training.schedulers import schedule_from_torch

    s = schedule_from_torch(S.LinearLR(_opt(), start_factor=0.2, total_iters=8))
    assert s.values.size == 9 and s.values[-1] == pytest.approx(1.0)


def _eig_stable(opt_cfg: dict, lr: float, mom: float, lam_max: float) -> bool:
    """Independent: the eigenvalues of the step's exact update matrix in 60-digit arithmetic
    (mpmath) on a curvature grid (chosen well away from the boundaries); a float radius
    would read 1 - 1e-36 as 1 at the tiny rates of long exponential decays."""
    if lr == 0:
        return True  # no step is taken
    cfg = dict(opt_cfg)
    cfg["lr"] = lr
    if cfg["optimizer"] in ("adam", "adamw"):
        cfg["betas"] = (mom, 0.999)
    else:
        cfg["momentum"] = mom
    alg = stb.from_optimizer(cfg)[0].algorithm
    grid = np.linspace(lam_max / 40, lam_max, 40)
    rho = np.abs(np.linalg.eigvals(alg.update_matrices(grid))).max(axis=-1)
    if np.all(rho < 1 - 1e-9) or np.any(rho > 1 + 1e-9):
        return bool(np.all(rho < 1))  # floats are reliable away from |xi| = 1
    alg = alg.to_exact()
    with mpmath.workdps(60):
        for lam in grid:
            S_ = alg.update_matrix(sp.Rational(float(lam)))
            m = mpmath.matrix([[mpmath.mpf(sp.Rational(x).p) / sp.Rational(x).q for x in row]
                               for row in S_.tolist()])  # fmt: skip
            if max(abs(e) for e in mpmath.eig(m)[0]) >= 1:
                return False
    return True


@pytest.mark.parametrize("way", ["live", "mapping"])
@pytest.mark.parametrize(
    "name", ["LinearLR", "OneCycleLR", "CyclicLR", "SequentialLR", "ChainedScheduler"]
)
def test_check_decides_every_step_with_a_live_optimizer_and_a_mapping(name, way):
    opt = _opt()
    sched = FACTORIES[name](opt)
    cfg = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}
    steps = min(150, stb.training.schedule_from_torch(sched).values.size)
    read = stb.training.schedule_from_torch(sched, steps) if steps == 150 else sched
    lrs, moms = _real_run(FACTORIES[name], steps)
    for lam_max in (3.0, 30.0, 300.0):
        rep = stb.check(opt if way == "live" else cfg, lambda_max=lam_max, schedule=read)
        memo: dict = {}
        want = [
            memo.setdefault((lr, m), _eig_stable(cfg, lr, m, lam_max))
            for lr, m in zip(lrs, moms, strict=True)
        ]
        first = next((t for t, ok in enumerate(want) if not ok), None)
        assert rep.schedule["first_unstable_step"] == first, (name, lam_max)
        assert rep.schedule["peak_lr"] == pytest.approx(lrs.max(), rel=1e-12)
        if first is not None:
            assert rep.verdict == "unstable"


def test_crossing_at_the_first_and_at_the_last_step():
    cfg = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}  # limit at lambda_max 50: 0.076
    down = S.LinearLR(_opt(), start_factor=1.0, end_factor=0.5, total_iters=10)
    rep = stb.check(cfg, lambda_max=50.0, schedule=down)  # 0.1 at step 0 only above? all
    assert rep.schedule["first_unstable_step"] == 0
    up = S.LinearLR(_opt(lr=0.1), start_factor=0.5, end_factor=0.78, total_iters=10)
    rep = stb.check(cfg, lambda_max=50.0, schedule=up)  # 0.078 at the last step only
    assert rep.schedule["first_unstable_step"] == 10
    assert rep.verdict == "unstable" and "UNSTABLE from step 10" in str(rep)
    calm = S.LinearLR(_opt(lr=0.1), start_factor=0.5, end_factor=0.75, total_iters=10)
    assert stb.check(cfg, lambda_max=50.0, schedule=calm).verdict == "stable"


def test_reduce_on_plateau_is_refused_with_a_reason():
    plateau = S.ReduceLROnPlateau(_opt())
    with pytest.raises(stb.ConfigError, match=r"ReduceLROnPlateau .* cannot be predicted"):
        stb.check({"optimizer": "sgd", "lr": 0.1}, lambda_max=1.0, schedule=plateau)


def test_long_horizons_are_fast_or_refused_by_name():
    from stability.training.schedulers import schedule_from_torch

    start = time.perf_counter()
    s = schedule_from_torch(S.CosineAnnealingLR(_opt(), T_max=2_000_000))
    assert time.perf_counter() - start < 2 and s.values.size == 2_000_001  # a closed form
    head = schedule_from_torch(S.CosineAnnealingLR(_opt(), T_max=2_000_000), steps=50)
    np.testing.assert_allclose(s.values[:50], head.values, rtol=1e-12)  # = torch's stepping
    with pytest.raises(stb.ConfigError, match="T_max gives a horizon of 1,000,000,001 steps"):
        schedule_from_torch(S.CosineAnnealingLR(_opt(), T_max=10**9))
    with pytest.raises(stb.ConfigError, match="no closed form"):
        schedule_from_torch(S.LambdaLR(_opt(), lambda t: 1.0), steps=2_000_000)
