"""Adam and AdamW with a frozen preconditioner: the package's verdicts against the eigenvalues
of the full frozen iteration and against real torch.optim.Adam/AdamW runs (docs §6.4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import stability as stb
from stability.cli import main
from stability.methods import adam_frozen
from stability.regions import is_strictly_stable, stable_curvature_intervals


def frozen_matrix(h: float, lr: float, beta1: float, wd: float) -> np.ndarray:
    """Adam/AdamW on one eigen-direction of P^-1 H, state (w, m), written from torch's rule:
    m <- beta1 m + (1 - beta1) h w ;  w <- w (1 - lr wd) - lr m  (wd = 0: Adam)."""
    d = lr * wd
    return np.array(
        [[1 - d - lr * (1 - beta1) * h, -lr * beta1], [(1 - beta1) * h, beta1]], dtype=float
    )


def threshold(lr: float, beta1: float, wd: float = 0.0) -> float:
    """The largest stable preconditioned curvature, from the package (exact verdicts)."""
    rep = stb.check(
        {
            "optimizer": "adamw" if wd else "adam",
            "lr": lr,
            "betas": (beta1, 0.999),
            "weight_decay": wd,
        },
        lambda_max=1.0,
    )
    return rep.adam["threshold"]


def test_literature_values():
    assert threshold(0.01, 0.9) == pytest.approx(3800.0, rel=1e-12)  # (2 + 2 b1)/((1 - b1) lr)
    assert threshold(0.01, 0.5, 1.0) == pytest.approx(597.0, rel=1e-12)  # AdamW check value
    assert threshold(0.1, 0.0) == pytest.approx(20.0, rel=1e-12)  # b1 = 0: GD, 2/lr


@given(
    lr=st.floats(1e-4, 0.5),
    beta1=st.floats(0.0, 0.99),
    wd=st.sampled_from([0.0, 0.01, 0.5, 2.0]),
)
def test_property_threshold_is_where_the_frozen_iteration_loses_stability(lr, beta1, wd):
    if lr * wd >= 1.5:
        return
    alg = adam_frozen(lr, beta1, wd)
    (first, *_) = stable_curvature_intervals(alg.to_exact())
    assert first[0] == 0
    h_star = float(first[1]) - wd  # the curvature is seen shifted by wd (AdamW)
    rho = [
        np.abs(np.linalg.eigvals(frozen_matrix(f * h_star, lr, beta1, wd))).max()
        for f in (0.999, 1.001)
    ]
    assert rho[0] < 1 < rho[1]
    # every curvature below the threshold is stable: the exact verdict on (0, h*] agrees
    grid = np.linspace(1e-6, 0.999, 50) * h_star
    brute = [np.abs(np.linalg.eigvals(frozen_matrix(h, lr, beta1, wd))).max() < 1 for h in grid]
    assert all(brute)
    assert is_strictly_stable(alg, (wd, 0.999 * h_star + wd) if wd else 0.999 * h_star).stable


def _torch_run(
    torch,
    kind: str,
    lr: float,
    beta1: float,
    wd: float,
    h: np.ndarray,
    P: np.ndarray,
    eps: float,
    steps: int = 3000,
) -> float:
    """Real torch Adam/AdamW on 0.5 w^T diag(h P) w with its state frozen at P (exp_avg_sq
    pre-filled, beta2 = 1 - 2^-52, step 1e20 so both bias corrections are 1)."""
    H = torch.tensor(h * P, dtype=torch.float64)  # P^-1 (diag h P) = diag h: known spectrum
    w = torch.nn.Parameter(torch.ones(h.size, dtype=torch.float64))
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    beta2 = 1 - 2.0**-52  # (1 - beta2) g^2 leaves v frozen over the run
    opt = cls([w], lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=wd)
    opt.zero_grad()
    (0.5 * (w * H * w).sum()).backward()
    opt.step()  # creates the state
    with torch.no_grad():
        w.copy_(torch.ones(h.size, dtype=torch.float64))
    state = opt.state[w]
    state["exp_avg"].zero_()
    state["exp_avg_sq"].copy_(torch.tensor((P - eps) ** 2, dtype=torch.float64))
    state["step"].fill_(1e20)  # beta2^t = exp(-22000): both bias corrections are 1
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (w * H * w).sum()).backward()
        opt.step()
        if not torch.isfinite(w).all() or w.abs().max() > 1e3:  # before v can adapt
            return math.inf
    return float(w.detach().abs().max())


@pytest.mark.parametrize("kind", ["adam", "adamw"])
@pytest.mark.parametrize("beta1", [0.0, 0.5, 0.9])
def test_real_torch_adam_follows_the_frozen_threshold(kind, beta1):
    torch = pytest.importorskip("torch")
    lr, eps = 0.5, 1e-3  # moderate curvatures: (1 - beta2) g^2 leaves v frozen
    wd = 0.5 if kind == "adamw" else 0.0
    P = np.array([0.5, 1.0, 2.0, 4.0])  # the frozen preconditioner sqrt(v_hat) + eps
    h_star = threshold(lr, beta1, wd)
    for factor, stable in ((0.97, True), (1.03, False)):
        h = np.array([0.1, 0.3, 0.6, factor]) * h_star  # preconditioned curvatures
        final = _torch_run(torch, kind, lr, beta1, wd, h, P, eps)
        rep = stb.check(
            {"optimizer": kind, "lr": lr, "betas": (beta1, 0.999), "eps": eps, "weight_decay": wd},
            spectrum=list(h),
        )
        assert rep.stable == stable
        if stable:
            assert final < 1e-3, (kind, beta1, factor, final)
        else:
            assert not final < 1e3, (kind, beta1, factor, final)


def test_adam_report_explains_the_adaptive_edge(capsys):
    code = main(["check", "--optimizer", "adam", "--lr", "0.01", "--lambda-max", "5000"])
    out = capsys.readouterr().out
    assert code == 1 and "ABOVE the threshold" in out and "adaptive edge of stability" in out
    assert "P^-1 H" in out and "bias corrections" in out
    code = main(
        [
            "check",
            "--optimizer",
            "optax.adam",
            "--lr",
            "0.01",
            "--beta1",
            "0.5",
            "--lambda-max",
            "100",
            "--json",
        ]
    )
    assert code == 0
    rep = capsys.readouterr().out
    assert '"threshold": 600.0' in rep  # (2 + 1)/(0.5 * 0.01)


def test_adam_objects_and_state_dicts():
    torch = pytest.importorskip("torch")
    p = [torch.nn.Parameter(torch.zeros(3))]
    for cls, source in (
        (torch.optim.Adam, "torch.optim.Adam"),
        (torch.optim.AdamW, "torch.optim.AdamW"),
    ):
        (opt,) = stb.from_optimizer(cls(p, lr=0.01))
        assert opt.source == source
    (opt,) = stb.from_optimizer(
        torch.optim.Adam(p, lr=0.01, decoupled_weight_decay=True, weight_decay=0.1)
    )
    assert opt.source == "torch.optim.AdamW" and float(opt.curvature_shift) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"optimizer": "adam", "lr": 0.01, "betas": (1.0, 0.999)}, "beta1 must be in [0, 1)"),
        ({"optimizer": "adam", "lr": 0.01, "betas": 0.9}, "betas must be a pair"),
        ({"optimizer": "adamw", "lr": 1.0, "weight_decay": 3.0}, "lr * weight_decay"),
        ({"optimizer": "adam", "lr": 0.01, "momentum": 0.9}, "unknown key(s) ['momentum']"),
        ({"optimizer": "adam", "lr": -0.01}, "lr must be in (0, inf)"),
    ],
)
def test_adam_bad_configs(cfg, message):
    with pytest.raises(stb.ConfigError) as info:
        stb.check(cfg, lambda_max=1.0)
    assert message in str(info.value)


# ---------------------------------------------------------------------------------------
# AdamW read four ways: a mapping, a TOML file, CLI flags and a live torch.optim.AdamW
# (issue 19: the mapping and TOML paths gave a false MARGINAL with "critical curvature 0")
# ---------------------------------------------------------------------------------------
def _radius(h: float, lr: float, beta1: float, wd: float) -> float:
    return float(np.abs(np.linalg.eigvals(frozen_matrix(h, lr, beta1, wd))).max())


def _bisect(ok, lo: float, hi: float, rel: float = 1e-13) -> float:
    """The boundary between ``ok(lo)`` and not ``ok(hi)``."""
    while hi - lo > rel * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def _truth(lr: float, beta1: float, wd: float, lam: float) -> tuple[float, float]:
    """(largest stable preconditioned curvature, largest stable lr at ``lam``) from the
    spectral radius of the frozen 2x2 iteration, by bisection (the radius is monotone in h
    and in lr along these rays)."""
    h_star = _bisect(lambda h: _radius(h, lr, beta1, wd) < 1, 0.0, 1e9 / lr)
    lr_star = _bisect(
        lambda x: x * wd < 2 and _radius(lam, x, beta1, wd) < 1,
        0.0,
        min(1e9, 2 / wd if wd else 1e9),
    )
    return h_star, lr_star


def _adamw_four_ways(lr: float, beta1: float, wd: float, lam: float, tmp_path) -> list[dict]:
    import contextlib
    import io
    import json

    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(2))
    live = torch.optim.AdamW([p], lr=lr, betas=(beta1, 0.999), weight_decay=wd)
    mapping = {"optimizer": "adamw", "lr": lr, "betas": (beta1, 0.999), "weight_decay": wd}
    reports = [
        stb.check(mapping, lambda_max=lam).to_dict(),
        stb.check(live, lambda_max=lam).to_dict(),
    ]
    toml = tmp_path / "adamw.toml"
    toml.write_text(
        f'optimizer = "adamw"\nlr = {lr!r}\nbetas = [{beta1!r}, 0.999]\n'
        f"weight_decay = {wd!r}\nlambda_max = {lam!r}\n"
    )
    flags = ["--optimizer", "adamw", "--lr", repr(lr), "--beta1", repr(beta1)]
    flags += ["--weight-decay", repr(wd), "--lambda-max", repr(lam)]
    for argv in (["check", "--config", str(toml), "--json"], ["check", *flags, "--json"]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(argv)
        reports.append(json.loads(out.getvalue()))
    return reports


def _adamw_points(n: int) -> list[tuple[float, float, float, float]]:
    rng = np.random.default_rng(19)
    points = []
    while len(points) < n:
        lr = float(10 ** rng.uniform(-4, -1))
        beta1 = float(rng.choice([0.0, 0.5, 0.9, 0.99]))
        wd = float(rng.choice([0.0, 1e-4, 1e-2, 0.1, 1.0, 5.0]))
        side = float(rng.choice([1 - 1e-3, 1 + 1e-3]))
        if lr * wd < 1.5:
            points.append((lr, beta1, wd, side))
    return points


def _check_adamw_point(lr, beta1, wd, side, tmp_path):
    h_star, _ = _truth(lr, beta1, wd, 1.0)
    lam = h_star * side
    _, lr_star = _truth(lr, beta1, wd, lam)
    reports = _adamw_four_ways(lr, beta1, wd, lam, tmp_path)
    want = "stable" if side < 1 else "unstable"
    for rep in reports:
        assert rep["verdict"] == want, (lr, beta1, wd, side, rep["verdict"])
        assert rep["adam"]["threshold"] == pytest.approx(h_star, rel=1e-9)
        assert rep["max_stable_lr"] == pytest.approx(lr_star, rel=2e-6)
    first = reports[0]
    for rep in reports[1:]:
        assert rep["verdict"] == first["verdict"]
        assert rep["adam"]["threshold"] == pytest.approx(first["adam"]["threshold"], rel=1e-12)
        assert rep["max_stable_lr"] == pytest.approx(first["max_stable_lr"], rel=2e-6)


@pytest.mark.parametrize("point", _adamw_points(16), ids=lambda p: f"lr{p[0]:.2g}-b{p[1]}-wd{p[2]}")
def test_adamw_mapping_toml_flags_and_live_object_agree(point, tmp_path):
    _check_adamw_point(*point, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_adamw_four_ways_over_200_points(tmp_path):
    for point in _adamw_points(200):
        _check_adamw_point(*point, tmp_path)


@given(
    lr=st.floats(1e-4, 0.1),
    beta1=st.floats(0.0, 0.99),
    wd=st.floats(0.0, 5.0),
)
def test_property_adamw_mapping_threshold_and_max_lr(lr, beta1, wd):
    """check() of an AdamW mapping: the threshold and the largest stable lr are where the
    frozen 2x2 iteration loses stability (the mapping path once reported 'critical
    curvature 0')."""
    if lr * wd >= 1.5:
        return
    h_star, _ = _truth(lr, beta1, wd, 1.0)
    lam = h_star * 0.5
    _, lr_star = _truth(lr, beta1, wd, lam)
    rep = stb.check(
        {"optimizer": "adamw", "lr": lr, "betas": (beta1, 0.999), "weight_decay": wd},
        lambda_max=lam,
    )
    assert rep.verdict == "stable"
    assert rep.adam["threshold"] == pytest.approx(h_star, rel=1e-9)
    assert rep.max_stable_lr == pytest.approx(lr_star, rel=2e-6)
