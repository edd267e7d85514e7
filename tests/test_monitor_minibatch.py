"""Issue 25: the monitor on real training. The mean-square edge at the run's batch size (checked
against the data model on the dense Gauss-Newton matrix, and against real torch runs that blow
up), the full-batch case unchanged, Adam's live preconditioner and the drift of ``v_t``
(against the dense ``P^-1 H`` and a real Adam run), every torch scheduler in the look-ahead,
the collapse rule, and refusals of bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sklearn = pytest.importorskip("sklearn.datasets")

from stability.checkers import largest_stable_lr  # noqa: E402
from stability.errors import ConfigError  # noqa: E402
from stability.noise import DataNoise, PerSampleCurvature, mean_square_radius  # noqa: E402
from stability.optimizers import from_optimizer  # noqa: E402
from stability.training import StabilityMonitor, per_sample_ggn  # noqa: E402
from stability.training.ggn import tracked_ggn  # noqa: E402
from stability.training.minibatch_edge import batching  # noqa: E402


def _wine():
    X, y = sklearn.load_wine(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float64)
    return X, torch.tensor(y)


def _net(width=16, out=3, act=torch.nn.Tanh, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(13, width), act(), torch.nn.Linear(width, out)
    ).double()


def _dense_ggn(net, x):
    """The mean Gauss-Newton matrix of MSELoss (A = 2/k I) from the dense Jacobian."""
    params = [p for p in net.parameters()]
    out = net(x)
    n, k = out.shape
    rows = []
    for i in range(n):
        for j in range(k):
            g = torch.autograd.grad(out[i, j], params, retain_graph=True)
            rows.append(torch.cat([t.reshape(-1) for t in g]))
    J = torch.stack(rows).reshape(n, k, -1).numpy()
    return J, np.einsum("nkp,nkq->pq", J, J) * (2 / k) / n


# ---------------------------------------------------------------------------------------
# the mean-square edge
# ---------------------------------------------------------------------------------------


def test_the_mean_square_limit_is_the_data_models_on_the_dense_top_subspace():
    """At a fixed point, repeated checks track the top-8 Gauss-Newton subspace (one
    block-Krylov step each); the limit then equals the data model's on the top-8
    eigenvectors of the dense Gauss-Newton matrix, and rho the exact radius there."""
    X, y = _wine()
    Y = torch.nn.functional.one_hot(y, 3).double()
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    mon = StabilityMonitor(
        net, torch.nn.MSELoss(), opt, (X, Y), batch_size=4, every=1, on_unstable=lambda r: None
    )
    for _ in range(6):
        rec = mon.check()
    J, G = _dense_ggn(net, X)
    _, U = np.linalg.eigh(G)
    V = U[:, ::-1][:, :8]
    F = np.einsum("nkp,pr->nkr", J, V) * math.sqrt(2 / 3)  # C_i^T J_i V, C = sqrt(2/k) I
    oracle = DataNoise(PerSampleCurvature.from_factors(F))
    opt_cfg = from_optimizer(opt)[0]
    want, _ = largest_stable_lr(opt_cfg, batch_size=4, noise=oracle, rtol=1e-6)
    assert rec.noise_lr_limit == pytest.approx(want, rel=1.1e-2)  # the monitor's search: 1 %
    rho = mean_square_radius(opt_cfg.algorithm, oracle.data, 4, rtol=1e-8)
    assert rec.rho == pytest.approx(rho.rho, rel=1e-3)
    assert rec.noise_ratio == pytest.approx(0.05 / rec.noise_lr_limit)
    assert rec.ratio == max(rec.noise_ratio, rec.sharpness_ratio)
    assert "at B = 4" in str(rec) and "mean-square limit" in str(rec)


def test_tracked_directions_converge_to_the_dense_top_eigenvalues():
    X, _ = _wine()
    net = _net(seed=3)
    _, G = _dense_ggn(net, X)
    top = np.sort(np.linalg.eigvalsh(G))[::-1][:8]
    curv, V = tracked_ggn(net, "mse", X, rank=8)  # device Lanczos, to 1e-2
    for _ in range(12):
        curv, V = tracked_ggn(net, "mse", X, V, rank=8)
    got = np.sort(curv.eigenvalues)[::-1]  # one Rayleigh-Ritz step per call: the top ones
    assert np.allclose(got[:7], top[:7], rtol=1e-5) and got[7] == pytest.approx(top[7], rel=1e-3)
    assert torch.allclose(V.T @ V, torch.eye(8, dtype=V.dtype), atol=1e-10)


def test_a_full_batch_loader_gives_the_full_batch_numbers():
    """B = the whole data set: no noise (kappa_B = 0); every record equals the one without a
    batch size, to 1e-9."""
    X, y = _wine()
    Y = torch.nn.functional.one_hot(y, 3).double()

    def run(**kw):
        net = _net(seed=1)
        opt = torch.optim.SGD(net.parameters(), lr=0.2, momentum=0.5)
        mon = StabilityMonitor(net, torch.nn.MSELoss(), opt, (X, Y), every=5, **kw)
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(X), Y).backward()
            opt.step()
            mon.step()
        return mon.history

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=len(X))
    plain, full = run(), run(loader=loader)
    assert [r.step for r in plain] == [r.step for r in full]
    for a, b in zip(plain, full, strict=True):
        for f in ("sharpness", "threshold", "ratio", "lr_limit", "loss"):
            assert getattr(b, f) == pytest.approx(getattr(a, f), rel=1e-9, abs=1e-300)
        assert math.isnan(b.noise_ratio)
    assert batching(None, loader, None).full_batch


def _ramp(B, mu, gamma=1.03, steps=400, seed=0):
    """SGD on wine (MSE on one-hot targets) with the lr multiplied by ``gamma`` each step,
    from 0.01 until the loss passes 1000x its start; the monitor watches with the loader."""
    X, y = _wine()
    Y = torch.nn.functional.one_hot(y, 3).double()
    net = _net(seed=seed)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=mu)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, Y), batch_size=B, shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    events = []
    mon = StabilityMonitor(
        net, torch.nn.MSELoss(), opt, (X, Y), scheduler=sched, loader=loader,
        on_unstable=events.append,
    )  # fmt: skip
    with torch.no_grad():
        start = float(torch.nn.functional.mse_loss(net(X), Y))
    t = 0
    while t < steps:
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(xb), yb).backward()
            opt.step()
            sched.step()
            t += 1
            mon.step()
            with torch.no_grad():
                now = float(torch.nn.functional.mse_loss(net(X), Y))
            if not math.isfinite(now) or now > 1000 * start:
                return events, t, mon
    return events, None, mon


def _assert_warned_before_blowup(B, mu):
    events, blow, _ = _ramp(B, mu)
    assert blow is not None, "the ramp did not blow up"
    assert events and events[0].step < blow
    first = events[0]
    # a prediction, not hindsight: the crossing it names comes no later than the blow-up, and
    # at B < n the binding limit is the mean-square one (below the full-batch limit)
    assert first.crossing_step is not None and first.crossing_step <= blow
    assert first.noise_lr_limit is not None and first.lr_limit <= first.lr * first.threshold / (
        first.sharpness
    )


@pytest.mark.parametrize(("B", "mu"), [(1, 0.9), (32, 0.0)])
def test_a_ramp_past_the_mini_batch_edge_is_warned_of_before_it_blows_up(B, mu):
    _assert_warned_before_blowup(B, mu)


@pytest.mark.slow
@pytest.mark.parametrize(("B", "mu"), [(1, 0.0), (8, 0.0), (8, 0.9), (32, 0.9)])
def test_every_ramp_past_the_mini_batch_edge_is_warned_of(B, mu):
    _assert_warned_before_blowup(B, mu)


def test_a_healthy_cross_entropy_run_raises_no_warning():
    """A tanh MLP on wine at its best lr (0.113 on a sqrt(2) grid, 10 epochs, momentum 0.9,
    B = 32): cross-entropy's early mean-square ratios of 1.2-2 do not warn (the loss falls),
    and nothing collapses."""
    X, y = _wine()
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(13, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(),
        torch.nn.Linear(32, 3),
    ).double()  # fmt: skip
    opt = torch.optim.SGD(net.parameters(), lr=0.113, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, y), batch_size=32, shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mon = StabilityMonitor(net, loss_fn, opt, (X, y), loader=loader, every=6)
        for _ in range(10):
            for xb, yb in loader:
                opt.zero_grad()
                loss_fn(net(xb), yb).backward()
                opt.step()
                mon.step()
    assert not any(r.collapsed for r in mon.history)
    assert mon.history[-1].loss < 0.05 * mon.history[0].loss


# ---------------------------------------------------------------------------------------
# Adam
# ---------------------------------------------------------------------------------------


def test_per_sample_ggn_with_adams_preconditioner_is_the_dense_preconditioned_one():
    X, y = _wine()
    Y = torch.nn.functional.one_hot(y, 3).double()
    net = _net(width=4)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-6)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(X), Y).backward()
        opt.step()
    P = torch.cat([(opt.state[p]["exp_avg_sq"] / (1 - 0.999**3)).sqrt().reshape(-1) + 1e-6
                   for p in net.parameters()]).numpy()  # fmt: skip
    _, G = _dense_ggn(net, X)
    want = np.sort(np.linalg.eigvalsh(G / np.sqrt(np.outer(P, P))))[::-1]
    for pre in (opt, P):
        got = per_sample_ggn(net, "mse", X, subspace="jacobian", preconditioner=pre)
        top = np.sort(got.eigenvalues)[::-1]
        assert np.allclose(top, want[: top.size], rtol=1e-8, atol=1e-12 * want[0])
        assert "preconditioned" in got.notes[0]
    with pytest.raises(ConfigError, match="preconditioner must hold"):
        per_sample_ggn(net, "mse", X, preconditioner=-np.ones(P.size))


def test_check_of_adam_with_the_preconditioned_data_of_a_network():
    """``check(adam, data=per_sample_ggn(..., preconditioner=optimizer), batch_size=B)``: rho
    is the exact radius of the dense preconditioned per-sample curvature, and raw features are
    refused with a pointer to this route."""
    import stability as stb

    X, y = _wine()
    Y = torch.nn.functional.one_hot(y, 3).double()
    net = _net(width=4, seed=5)
    opt = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.9, 0.99), eps=1e-8)
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(X), Y).backward()
        opt.step()
    data = per_sample_ggn(net, "mse", X, subspace="jacobian", preconditioner=opt)
    rep = stb.check(opt, data=data, batch_size=8)
    J, _ = _dense_ggn(net, X)
    P = torch.cat([(opt.state[p]["exp_avg_sq"] / (1 - 0.99**20)).sqrt().reshape(-1) + 1e-8
                   for p in net.parameters()]).numpy()  # fmt: skip
    dense = PerSampleCurvature.from_factors(J / np.sqrt(P) * math.sqrt(2 / 3))
    want = mean_square_radius(from_optimizer(opt)[0].algorithm, dense, 8, rtol=1e-10)
    assert rep.noise["rho"] == pytest.approx(want.rho, rel=1e-6)
    with pytest.raises(ConfigError, match=r"per_sample_ggn\(model, loss, x, preconditioner"):
        stb.check(opt, data=(X.numpy(), Y.numpy()), batch_size=8)


def _adam_least_squares(monitor: bool, steps: int):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 20, generator=g, dtype=torch.float64) * torch.linspace(0.3, 2, 20)
    y = X @ torch.randn(20, 1, generator=g, dtype=torch.float64)
    torch.manual_seed(1)
    net = torch.nn.Linear(20, 1, bias=False).double()
    opt = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.9, 0.999))
    events = []
    mon = None
    if monitor:
        mon = StabilityMonitor(net, torch.nn.MSELoss(), opt, (X, y), on_unstable=events.append)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(X), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if mon is not None:
            mon.step()
    return X, net, opt, mon, events, np.array(losses)


def test_adams_v_decay_is_followed_between_checks_and_warned_of_before_the_spike():
    """Least squares trained by Adam to a loss of 1e-29: ``v_t`` then decays like
    ``beta2^t``, ``lambda_max(P^-1 H)`` climbs through the edge and the loss spikes (step 3123,
    10x its best; Bai et al. 2025). The monitor (``every="auto"``) is woken by the drift bound,
    warns of the crossing ahead of the spike, and each check's preconditioned sharpness is the
    dense ``lambda_max(P^-1 H)`` to 1e-3."""
    X, net, opt, mon, events, losses = _adam_least_squares(True, 3200)
    best = np.minimum.accumulate(losses)
    spike = next(t for t in range(1, losses.size) if losses[t] > 10 * best[t - 1] < 1e-2)
    assert events and events[0].step < spike - 50
    assert events[0].crossing_from == "preconditioner trend"
    assert events[0].crossing_step <= spike
    assert len(mon.history) < 40  # woken by the drift, not checking every step
    # the last check against the dense operator: H = 2 X^T X / n, P from the optimizer state
    H = 2 * (X.T @ X).numpy() / X.shape[0]
    state = opt.state[net.weight]
    P = ((state["exp_avg_sq"] / (1 - 0.999 ** float(state["step"]))).sqrt() + 1e-8).reshape(-1)
    d = 1 / np.sqrt(P.numpy())
    dense = np.linalg.eigvalsh(d[:, None] * H * d[None, :]).max()
    rec = mon.check()
    assert rec.sharpness == pytest.approx(dense, rel=1e-3)


# ---------------------------------------------------------------------------------------
# schedulers, collapse, bad input
# ---------------------------------------------------------------------------------------


def _schedulers(opt):
    S = torch.optim.lr_scheduler
    return {
        "OneCycleLR": (S.OneCycleLR(opt, max_lr=0.5, total_steps=30), 30),
        "CyclicLR": (S.CyclicLR(opt, 0.01, 0.5, step_size_up=10), None),
        "PolynomialLR": (S.PolynomialLR(opt, total_iters=20, power=2.0), 20),
        "SequentialLR": (
            S.SequentialLR(
                opt,
                [S.LinearLR(opt, 0.1, total_iters=5), S.ExponentialLR(opt, 1.05)],
                milestones=[5],
            ),
            None,
        ),
        "ChainedScheduler": (
            S.ChainedScheduler([S.LinearLR(opt, 0.2, total_iters=10), S.ExponentialLR(opt, 1.1)]),
            None,
        ),
    }


@pytest.mark.parametrize(
    "name", ["OneCycleLR", "CyclicLR", "PolynomialLR", "SequentialLR", "ChainedScheduler"]
)
def test_every_scheduler_in_the_look_ahead_through_and_past_its_end(name):
    """The monitor reads each scheduler ahead, stops at its last step (OneCycleLR refuses to be
    stepped past it), and its crossing is the first step a twin stepped by hand passes the
    limit."""
    X, y = _wine()
    Y = torch.nn.functional.one_hot(y, 3).double()
    net = _net(seed=2)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    sched, end = _schedulers(opt)[name]
    mon = StabilityMonitor(
        net, torch.nn.MSELoss(), opt, (X, Y), scheduler=sched, every=5, lookahead=40,
        on_unstable=lambda r: None,
    )  # fmt: skip
    for t in range(45):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(X), Y).backward()
        opt.step()
        if end is None or t < end - 1:
            sched.step()
        rec = mon.step()
        if rec is not None and rec.crossing_step is not None and rec.lr_limit is not None:
            assert rec.crossing_step > rec.step
    assert len(mon.history) >= 9
    assert all(math.isfinite(r.sharpness) for r in mon.history)


def test_a_scheduler_already_past_its_end_keeps_its_last_lr():
    X, y = _wine()
    Y = torch.nn.functional.one_hot(y, 3).double()
    net = _net(seed=2)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=50.0, total_steps=10)
    for _ in range(9):
        opt.step()
        sched.step()  # the 10th would be its last allowed; the monitor must not step it
    mon = StabilityMonitor(net, torch.nn.MSELoss(), opt, (X, Y), scheduler=sched, every=1)
    rec = mon.step()
    assert rec is not None and rec.crossing_step is None  # a constant last lr: no crossing
    assert len(mon.history) == 1


def test_the_collapse_mark_is_ten_times_the_first_loss_and_clears():
    X, y = _wine()
    Y = torch.nn.functional.one_hot(y, 3).double()
    net = _net(seed=4)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    events = []
    mon = StabilityMonitor(
        net, torch.nn.MSELoss(), opt, (X, Y), every=1, on_unstable=events.append, iters=8
    )
    first = mon.step()
    last = net[2].bias.detach().clone()
    with torch.no_grad():  # a bump: loss about 3x the first (an ordinary early bump)
        net[2].bias += 1.0
    bump = mon.step()
    assert 2 * first.loss < bump.loss < 10 * first.loss and not bump.collapsed
    with torch.no_grad():  # far off: more than 10x the first loss
        net[2].bias += 10.0
    far = mon.step()
    assert far.collapsed and sum(e.collapsed for e in events) == 1
    with torch.no_grad():
        net[2].bias.copy_(last)
    back = mon.step()
    assert not back.collapsed and "since recovered" in repr(mon.history)
    with torch.no_grad():
        net[2].bias += 11.0
    assert mon.step().collapsed and sum(e.collapsed for e in events) == 2  # reported again


def test_bad_input_is_refused_clearly():
    X, y = _wine()
    Y = torch.nn.functional.one_hot(y, 3).double()
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss = torch.nn.MSELoss()

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(zip(X, Y, strict=True))

    with pytest.raises(ConfigError, match=r"no len\(\).*batch_size=B"):
        StabilityMonitor(net, loss, opt, (X, Y), loader=torch.utils.data.DataLoader(Stream()))
    with pytest.raises(ConfigError, match="batch_size must be at most the data set size"):
        StabilityMonitor(net, loss, opt, (X, Y), batch_size=500, dataset_size=178)
    big = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=500)
    with pytest.raises(ConfigError, match=r"batch_size \(500\) is larger than its dataset"):
        StabilityMonitor(net, loss, opt, (X, Y), loader=big)
    sampler = torch.utils.data.BatchSampler(range(178), 8, False)
    custom = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, Y), batch_sampler=sampler
    )
    with pytest.raises(ConfigError, match="no batch_size"):
        StabilityMonitor(net, loss, opt, (X, Y), loader=custom)
    with pytest.raises(ConfigError, match=r"loss_fn must be torch\.nn\.MSELoss"):
        StabilityMonitor(net, lambda out, t: ((out - t) ** 2).mean(), opt, (X, Y), batch_size=8)
    with pytest.raises(ConfigError, match="batch_size or loader, not both"):
        StabilityMonitor(net, loss, opt, (X, Y), batch_size=8, loader=big)
    with pytest.raises(ConfigError, match=r"data = \(x, y\)"):
        StabilityMonitor(net, loss, opt, [(X, Y), (X, Y)], batch_size=8)
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        StabilityMonitor(net, loss, opt, (X, Y), batch_size=0)
    with pytest.raises(ConfigError, match=r"overhead must be in \(0, 1\]"):
        StabilityMonitor(net, loss, opt, (X, Y), overhead=0)
    with pytest.raises(ConfigError, match="every must be"):
        StabilityMonitor(net, loss, opt, (X, Y), every="sometimes")


def test_a_mini_batch_history_plots_its_two_ratios(tmp_path):
    import matplotlib.pyplot as plt

    from stability import plots

    _, _, mon = _ramp(32, 0.0, steps=60)
    fig, ax = plt.subplots()
    plots.plot_monitor(mon.history, ax=ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "lr / mean-square limit at B = 32" in labels
    assert "sharpness / full-batch threshold" in labels and "the edge (ratio 1)" in labels
    assert ax.get_xlabel() == "optimizer step" and "ratio" in ax.get_ylabel()
    fig.savefig(tmp_path / "ratios.png")
    plt.close(fig)


def test_batching_read_from_loaders():
    """The batch factor each loader implies: subsets of B of n (epoch-averaged with a partial
    last batch), B independent samples with a replacement sampler, B x ranks with a
    DistributedSampler (the averaged gradient sees every rank's batch)."""
    from stability.noise.persample import batch_factor

    X = torch.zeros(100, 2)
    ds = torch.utils.data.TensorDataset(X, X)
    DL = torch.utils.data.DataLoader
    dropped = batching(None, DL(ds, batch_size=8, drop_last=True), None)
    assert dropped.kappa == pytest.approx(batch_factor(8, 100, "without_replacement"))
    kept = batching(None, DL(ds, batch_size=8), None)  # 12 batches of 8 and one of 4
    want = (12 * batch_factor(8, 100, "without_replacement")
            + batch_factor(4, 100, "without_replacement")) / 13  # fmt: skip
    assert kept.kappa == pytest.approx(want) and kept.n == 100
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=100)
    assert batching(None, DL(ds, batch_size=8, sampler=sampler), None).kappa == 1 / 8
    dist = torch.utils.data.distributed.DistributedSampler(ds, num_replicas=4, rank=0)
    shared = batching(None, DL(ds, batch_size=8, sampler=dist), None)
    assert shared.batch_size == 32 and "4 ranks" in shared.describe()
    assert batching(8, None, None).kappa == 1 / 8 and batching(None, None, None) is None
    assert batching(100, None, 100).full_batch
