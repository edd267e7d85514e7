"""Regression tests for issue 28 (no wrong answers, round two), each named after its defect,
reproducing it first and checking the answer against an independent oracle: the dense Hessian,
a scheduler stepped by hand, direct evaluation of every step, or the defining formula."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from fractions import Fraction

import numpy as np
import pytest

import stability as stb
from stability.errors import ConfigError, EstimateWarning, StabilityError
from stability.noise import PerSampleCurvature, mean_square_radius

torch = pytest.importorskip("torch")

from stability.training import StabilityMonitor, hessian_density, sharpness  # noqa: E402
from stability.training.lanczos import lanczos_top  # noqa: E402
from stability.training.schedulers import schedule_from_torch  # noqa: E402

LR_SCHED = torch.optim.lr_scheduler


def _two_groups(lr0=0.01, lr1=0.1, momentum=0.9):
    p1, p2 = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    return torch.optim.SGD(
        [{"params": [p1], "lr": lr0}, {"params": [p2], "lr": lr1}], lr=lr0, momentum=momentum
    )


# 1. parameter groups ------------------------------------------------------------------------
def test_parameter_groups_with_a_schedule_were_collapsed_to_group_0():
    o = _two_groups()
    rep = stb.check(o, lambda_max=100, schedule=LR_SCHED.ConstantLR(o, factor=1.0, total_iters=5))
    # oracle: heavy ball at lr l is stable on (0, 100] iff l * 100 < 2 (1 + 0.9)
    assert 0.1 * 100 > 3.8 and 0.01 * 100 < 3.8
    assert rep.verdict == "unstable"
    assert rep.limiting_group == 1
    assert "group 1 sets the limit" in str(rep) and "group 1 sets the limit" in repr(rep)
    assert rep.to_dict()["limiting_group"] == 1
    assert [g.verdict for g in rep.groups] == ["stable", "unstable"]
    assert rep.groups[1].schedule["first_unstable_step"] == 0


def test_parameter_groups_each_get_their_own_schedule():
    o = _two_groups(0.01, 0.03)
    sched = LR_SCHED.LambdaLR(o, [lambda t: 1.0, lambda t: 1.0 + t / 10])
    rep = stb.check(o, lambda_max=100, schedule=sched)
    # oracle: group 1's lr at step t is 0.03 (1 + t/10); unstable once 100 lr >= 3.8
    first = next(t for t in range(1000) if 100 * 0.03 * (1 + t / 10) >= 3.8)
    assert rep.groups[0].schedule["first_unstable_step"] is None
    assert rep.groups[1].schedule["first_unstable_step"] == first
    assert rep.limiting_group == 1 and rep.verdict == "unstable"
    lrs1 = schedule_from_torch(sched, 20, group=1)
    assert np.allclose(lrs1.base_lr * lrs1.values, 0.03 * (1 + np.arange(20) / 10))
    with pytest.raises(ConfigError, match="group must be an integer in \\[0, 1\\]"):
        schedule_from_torch(sched, 20, group=2)


def test_a_scheduler_with_other_groups_than_the_configuration_is_refused():
    o = _two_groups()
    with pytest.raises(ConfigError, match="2 param group"):
        stb.check({"optimizer": "sgd", "lr": 0.01}, lambda_max=1, schedule=LR_SCHED.StepLR(o, 5))


def _dense_hessian(model, loss_fn, X, y):
    params = [p for p in model.parameters() if p.requires_grad]
    flat = torch.cat([p.detach().reshape(-1) for p in params])

    def f(v):
        out, start = {}, 0
        for name, p in [(n, p) for n, p in model.named_parameters() if p.requires_grad]:
            out[name] = v[start : start + p.numel()].view_as(p)
            start += p.numel()
        return loss_fn(torch.func.functional_call(model, out, (X,)), y)

    return torch.autograd.functional.hessian(f, flat).numpy()


def test_monitor_compared_a_fast_head_with_group_0s_threshold():
    torch.manual_seed(0)
    X, y = torch.randn(64, 5, dtype=torch.float64), torch.randn(64, 1, dtype=torch.float64)
    body, head = torch.nn.Linear(5, 5).double(), torch.nn.Linear(5, 1).double()
    model = torch.nn.Sequential(body, torch.nn.Tanh(), head)
    loss = torch.nn.MSELoss()
    H = _dense_hessian(model, loss, X, y)
    sizes = [p.numel() for p in body.parameters()] + [p.numel() for p in head.parameters()]
    nb = sum(p.numel() for p in body.parameters())
    for lr_head in (0.1, 3.0):
        opt = torch.optim.SGD(
            [{"params": body.parameters(), "lr": 0.01}, {"params": head.parameters()}],
            lr=lr_head,
            momentum=0.9,
        )
        mon = StabilityMonitor(model, loss, opt, (X, y), on_unstable=lambda r: None, iters=60)
        rec = mon.check()
        # oracle: heavy ball with per-parameter lrs D and one momentum is stable iff
        # lambda_max(D^1/2 H D^1/2) < 2 (1 + mu)
        d = np.concatenate([np.full(nb, 0.01), np.full(sum(sizes) - nb, lr_head)])
        top = np.linalg.eigvalsh(np.sqrt(d)[:, None] * H * np.sqrt(d)[None, :]).max()
        assert rec.ratio == pytest.approx(top / 3.8, rel=1e-4)
        assert rec.group == 1 and rec.lr == lr_head
        assert "param group 1" in str(rec)
    assert rec.ratio > 1  # the fast head is over the edge; group 0 alone was far below


# 2. ChainedScheduler --------------------------------------------------------------------------
def test_chained_scheduler_was_read_only_for_its_shortest_parts_horizon():
    p = torch.nn.Parameter(torch.zeros(2))
    o = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    chain = LR_SCHED.ChainedScheduler(
        [LR_SCHED.ConstantLR(o, 0.5, total_iters=5), LR_SCHED.ExponentialLR(o, 1.02)]
    )
    rep = stb.check(o, lambda_max=30, schedule=chain)
    # oracle: a twin stepped by hand
    q = torch.nn.Parameter(torch.zeros(2))
    o2 = torch.optim.SGD([q], lr=0.1, momentum=0.9)
    twin = LR_SCHED.ChainedScheduler(
        [LR_SCHED.ConstantLR(o2, 0.5, total_iters=5), LR_SCHED.ExponentialLR(o2, 1.02)]
    )
    lrs = []
    for _ in range(60):
        lrs.append(o2.param_groups[0]["lr"])
        o2.step()
        twin.step()
    first = next(t for t, lr in enumerate(lrs) if lr * 30 >= 3.8)
    assert rep.verdict == "unstable"
    assert rep.schedule["first_unstable_step"] == first == 12
    assert any("declares no last step" in c for c in rep.caveats)


def test_lambda_lr_reads_its_default_horizon_once_and_says_so():
    calls = []
    o = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.05)
    sched = LR_SCHED.LambdaLR(o, lambda t: calls.append(t) or 1.0)
    calls.clear()
    rep = stb.check(o, lambda_max=3, schedule=sched)
    assert len(calls) == 999  # one call per step read after the first: the default 1000 steps
    assert any("LambdaLR calls its function once per step" in c for c in rep.caveats)


def test_one_cycle_lr_past_its_last_step_keeps_its_last_lr():
    o = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01, momentum=0.9)
    sched = LR_SCHED.OneCycleLR(o, 0.1, total_steps=50)
    s = schedule_from_torch(sched, 200)  # torch itself raises "Tried to step 51 times"
    lrs = s.base_lr * s.values
    assert np.all(lrs[50:] == lrs[49])


# 4. Lanczos -----------------------------------------------------------------------------------
class _Diag(torch.nn.Module):
    """Loss 1/2 sum_i d_i w_i^2: Hessian diag(d)."""

    def __init__(self, n, unused=False):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))
        if unused:
            self.head = torch.nn.Linear(3, 2).double()  # never used by the loss

    def forward(self, x):
        return self.w * x


def _diag_loss(d):
    d = torch.as_tensor(d, dtype=torch.float64)
    return (lambda out, y: 0.5 * (d * out**2).sum()), (
        torch.ones(len(d), dtype=torch.float64),
        None,
    )


def test_sharpness_from_an_eigenvector_returned_a_lower_eigenvalue():
    loss, data = _diag_loss([10.0, 100.0, 1.0])
    top = sharpness(_Diag(3), loss, data, v0=torch.tensor([1.0, 0, 0], dtype=torch.float64))
    assert top.sharpness == pytest.approx(100.0, rel=1e-10)  # dense: max(diag)
    assert top.converged


def test_sharpness_stopped_at_maxiter_without_a_note():
    torch.manual_seed(0)
    d = np.linspace(0.1, 2.0, 50)
    loss, data = _diag_loss(d)
    with pytest.warns(EstimateWarning, match="maxiter = 2"):
        top = sharpness(_Diag(50), loss, data, maxiter=2)
    assert not top.converged and "NOT converged" in " ".join(top.notes)
    assert "NOT CONVERGED" in repr(top)
    with pytest.raises(ConfigError, match="maxiter must be a positive integer, got 0"):
        sharpness(_Diag(50), loss, data, maxiter=0)


def test_unused_parameters_and_zero_losses_crashed_the_curvature():
    loss, data = _diag_loss([3.0, 2.0])
    model = _Diag(2, unused=True)
    assert sharpness(model, loss, data).sharpness == pytest.approx(3.0, rel=1e-8)
    dens = hessian_density(model, loss, data, steps=4)
    assert dens.weights.sum() == pytest.approx(model.w.numel() + 8)  # all 10 parameters
    zero = sharpness(model, lambda out, y: (out * 0).sum(), data)
    assert zero.sharpness == 0.0
    X, y = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    twin = torch.nn.ModuleDict({"a": torch.nn.Linear(3, 2), "b": torch.nn.Linear(3, 2)}).double()

    class Branch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = twin

        def forward(self, x):
            return self.m["a"](x)  # b is trainable and unused (a frozen branch by omission)

    net = Branch()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    mon = StabilityMonitor(net, torch.nn.MSELoss(), opt, (X, y), on_unstable=lambda r: None)
    mon.step()  # used to raise "appears to not have been used in the graph"
    H = _dense_hessian(net, torch.nn.MSELoss(), X, y)
    assert mon.history[-1].sharpness == pytest.approx(np.linalg.eigvalsh(H).max(), rel=1e-4)


def test_losses_and_models_that_cannot_give_a_curvature_are_refused_by_name():
    X, y = torch.randn(6, 3), torch.randn(6, 1)
    net = torch.nn.Linear(3, 1)
    with pytest.raises(ConfigError, match="reduction='none'"):
        sharpness(net, torch.nn.MSELoss(reduction="none"), (X, y))
    with pytest.raises(ConfigError, match="meta device"):
        sharpness(torch.nn.Linear(3, 1, device="meta"), torch.nn.MSELoss(), (X, y))
    with pytest.raises(StabilityError, match="not finite"):
        hessian_density(net, lambda o, t: (o * float("nan")).sum(), (X, y))
    drop = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.2), torch.nn.Linear(4, 1))
    from stability.training import per_sample_ggn

    with pytest.raises(ConfigError, match=r"Dropout.*training mode.*model\.eval"):
        per_sample_ggn(drop, "mse", X)
    drop.eval()
    assert per_sample_ggn(drop, "mse", X).n == 6
    with pytest.raises(ConfigError, match="data must be the batch"):
        StabilityMonitor(net, torch.nn.MSELoss(), torch.optim.SGD(net.parameters(), lr=0.1), None)
    with pytest.raises(ConfigError, match=r"model must be a torch\.nn\.Module"):
        StabilityMonitor(
            lambda x: x, torch.nn.MSELoss(), torch.optim.SGD(net.parameters(), lr=0.1), (X, y)
        )


class _FakeOp:
    """A symmetric matrix as the operator Lanczos sees (float64 on the CPU)."""

    def __init__(self, A):
        self.torch, self.A = torch, torch.as_tensor(A)
        self.n, self.work, self.device, self.calls = A.shape[0], torch.float64, "cpu", 0

    def __call__(self, v):
        self.calls += 1
        return self.A @ v

    def precision(self):
        return "float64"


@pytest.mark.hypothesis
@pytest.mark.parametrize("seed", range(8))
def test_a_warm_start_finds_a_top_eigenvector_that_turned(seed):
    """Between two checks the top eigenvector turns to a direction orthogonal to the old one
    with twice its eigenvalue (the AdamW case of issue 25: 200 reported where 403 was)."""
    rng = np.random.default_rng(seed)
    n = 60
    Qm, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.sort(rng.uniform(0, 1, n))
    lam[-1] = 200.0
    old = Qm @ np.diag(lam) @ Qm.T
    first = lanczos_top(_FakeOp(old), 1, tol=1e-4, seed=seed)
    assert first.sharpness == pytest.approx(200.0, rel=1e-6)
    lam2 = lam.copy()
    lam2[0] = 402.8  # the new top is orthogonal to the old top
    new = Qm @ np.diag(lam2) @ Qm.T
    again = lanczos_top(_FakeOp(new), 1, tol=1e-4, v0=first.vectors[:, 0], seed=seed + 1)
    assert again.sharpness == pytest.approx(402.8, rel=1e-3)  # dense top
    assert again.converged


# 5. data inputs -------------------------------------------------------------------------------
def test_data_as_a_tensor_that_requires_grad_crashed():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(50, 3, generator=g, dtype=torch.float64, requires_grad=True)
    Y = torch.randn(50, generator=g, dtype=torch.float64)
    cfg = {"optimizer": "sgd", "lr": 0.1}
    a = stb.check(cfg, data=(X, Y), batch_size=4)
    b = stb.check(cfg, data=(X.detach().numpy(), Y.numpy()), batch_size=4)
    assert a.to_dict() == b.to_dict()
    assert X.grad is None


def test_huge_features_raised_linalg_errors_or_returned_zero():
    X = np.random.default_rng(0).standard_normal((50, 3))
    for scale in (1e150, 1e200):
        with pytest.raises(ConfigError, match="data: the largest entry"):
            stb.check({"optimizer": "sgd", "lr": 0.1}, data=(X * scale, None))


def test_momentum_within_1e_20_of_one_overflowed():
    X = np.random.default_rng(3).standard_normal((50, 3))
    rep = stb.check(
        {"optimizer": "sgd", "lr": 0.1, "momentum": 1 - Fraction(1, 10**20)},
        data=(X, None),
        batch_size=4,
    )
    assert rep.verdict == "unstable"
    assert rep.noise["undecided"]  # not stable, and said to be undecided


def test_wide_data_formed_a_dense_feature_square():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 20000))
    data = PerSampleCurvature.from_features(X)  # a 100 x 100 Gram problem, not 20,001^2
    # oracle: the non-zero eigenvalues of H = 2 X_b^T X_b / n are those of the Gram matrix
    Xb = np.hstack([X, np.ones((100, 1))])
    gram = np.linalg.eigvalsh(2 * Xb @ Xb.T / 100)
    assert np.allclose(data.eigenvalues, gram[gram > 1e-10 * gram.max()], rtol=1e-10)
    # a basis-free quantity: tr E[H_i^2] = E (2 |x_i|^2)^2
    want = np.mean((2 * (Xb**2).sum(axis=1)) ** 2)
    assert np.trace(data.fourth_moment(np.eye(data.dim))) == pytest.approx(want, rel=1e-10)


def test_the_data_checks_cost_is_bounded_before_it_starts():
    X = np.random.default_rng(0).standard_normal((3000, 1500))
    with pytest.raises(ConfigError, match=r"WORK_LIMIT.*truncated\(\d+\)"):
        stb.check({"optimizer": "sgd", "lr": 0.01}, data=(X, None), batch_size=8)


def test_zero_data_printed_a_negative_rho():
    rep = stb.check({"optimizer": "sgd", "lr": 0.1}, data=(np.zeros((50, 3)), None), batch_size=4)
    assert rep.noise["rho"] >= 0 and rep.noise["lower"] >= 0 and rep.noise["upper"] >= 0
    assert "-" not in str(rep).split("rho = ")[1].split()[0]


def test_a_long_schedule_with_data_was_unstable_at_step_0():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    cfg = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9}
    lrs = 0.01 * np.linspace(0.5, 60, 100)
    rep = stb.check(
        cfg,
        data=(X, None),
        batch_size=4,
        schedule=stb.ltv.schedule("array", 100, values=lrs / 0.01),
    )
    data = PerSampleCurvature.from_features(X)
    # oracle: every step decided on its own
    direct = [
        mean_square_radius(stb.from_optimizer({**cfg, "lr": lr})[0].algorithm, data, 4).stable
        for lr in lrs
    ]
    first = direct.index(False)
    assert direct[:first] == [True] * first and not any(direct[first:])
    assert rep.schedule["first_unstable_step"] == first > 0
    assert rep.schedule["noise_decided"]


def test_reprs_printed_every_array():
    data = PerSampleCurvature.from_features(np.random.default_rng(0).standard_normal((500, 30)))
    assert len(repr(data)) < 300 and "\n" not in repr(data)
    loss, d = _diag_loss(np.linspace(1, 2, 300))
    assert len(repr(sharpness(_Diag(300), loss, d))) < 300
    assert len(repr(hessian_density(_Diag(300), loss, d, steps=8))) < 300


# the CLI ----------------------------------------------------------------------------------
def test_cli_config_with_a_4301_digit_integer_was_a_traceback(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"optimizer": "sgd"})[:-1] + ', "lr": ' + "1" * 4301 + "}")
    run = subprocess.run(
        [sys.executable, "-m", "stability", "check", "--config", str(cfg), "--lambda-max", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("error: ") and "Traceback" not in run.stderr


def test_no_warning_leaks_from_the_curvature_paths():
    loss, data = _diag_loss([3.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sharpness(_Diag(2), loss, data)


def test_critical_batch_size_was_the_first_batch_the_float_bounds_certify():
    """momentum 1 - 3e-6: the float bounds are 1e-8 wide, U falls 3e-9 per unit of B, so the
    first batch they certified was 14 above the smallest bounded one (and check() called a
    batch below the reported critical one stable); each exact sum took 8 s."""
    rng = np.random.default_rng(0)
    lam = np.sort(rng.uniform(0.01, 1, 800))
    alg = stb.from_optimizer({"optimizer": "sgd", "lr": 0.5, "momentum": 1 - 3e-6})[0].algorithm
    crit = stb.critical_batch_size(alg, lam)
    # oracle: the certified sums (exact re-evaluation near 1) on both sides
    assert stb.stability_sum(alg, lam, crit).bounded
    below = stb.stability_sum(alg, lam, crit - 1)
    assert not below.bounded and not below.undecided
    rep = stb.check(
        {"optimizer": "sgd", "lr": 0.5, "momentum": 1 - 3e-6}, spectrum=lam, batch_size=crit
    )
    assert rep.noise["critical_batch_size"] == crit and rep.noise["bounded"]


def test_a_spectrum_of_1e8_eigenvalues_with_a_batch_ran_for_minutes():
    lam = np.ones(10**8 // 4 * 4)
    with pytest.raises(ConfigError, match="spectrum: 100,000,000 eigenvalues with a batch_size"):
        stb.check({"optimizer": "sgd", "lr": 0.01}, spectrum=lam, batch_size=8)
    assert stb.check({"optimizer": "sgd", "lr": 0.01}, spectrum=lam[:1000], batch_size=8)


def _epoch_radius(X, B, lr, mu):
    """Oracle: the mean-square radius per step of a shuffled epoch (every ordering of the
    samples, disjoint batches), heavy ball on H_i = 2 x_i x_i^T."""
    import itertools

    n, d = X.shape
    Hs = [2 * np.outer(x, x) for x in X]
    eye, zero = np.eye(d), np.zeros((d, d))
    acc, count = 0.0, 0
    for perm in itertools.permutations(range(n)):
        A = np.eye(2 * d)
        for k in range(n // B):
            HB = sum(Hs[i] for i in perm[k * B : (k + 1) * B]) / B
            A = np.block([[(1 + mu) * eye - lr * HB, -mu * eye], [eye, zero]]) @ A
        acc, count = acc + np.kron(A, A), count + 1
    return max(abs(np.linalg.eigvals(acc / count))) ** (1 / (n // B))


def test_without_replacement_was_offered_as_a_shuffled_epoch():
    """The i.i.d.-subset model is not the epoch: here its threshold is 1.25x the exact epoch's
    (n = 6, B = 3, momentum 0.9), and the report says the model and that the epoch differs."""
    from stability.checkers import largest_stable_lr

    X = np.random.default_rng(4).standard_normal((6, 2)) * np.array([1, 0.3])
    cfg = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}
    data = PerSampleCurvature.from_features(X, bias=False)
    model = stb.DataNoise(data, "without_replacement")
    iid = largest_stable_lr(stb.from_optimizer(cfg)[0], batch_size=3, noise=model)[0]
    lo, hi = 0.0, 2 * iid
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _epoch_radius(X, 3, mid, 0.9) < 1 else (lo, mid)
    assert iid / lo == pytest.approx(1.25, abs=0.01)  # the model is not the epoch
    rep = stb.check(cfg, data=data, batch_size=3, sampling="without_replacement")
    text = " ".join(rep.caveats)
    assert "each an independent random subset of B distinct samples" in text
    assert "shuffled DataLoader's epoch of 2 disjoint batches" in text
    big = stb.check(
        cfg, data=(np.random.default_rng(0).standard_normal((400, 2)), None), batch_size=4
    )
    assert not any("disjoint batches" in c for c in big.caveats)  # 100 batches per epoch
