"""Per-sample Gauss-Newton curvature of a torch network (issue 20) against an independent
construction: each sample's Jacobian from ``torch.autograd.functional.jacobian`` and the
Hessian of its loss in the outputs from ``torch.autograd.functional.hessian`` (autograd, not
the closed forms the module uses), multiplied out and factored per sample."""

from __future__ import annotations

import numpy as np
import pytest

import stability as stb
from stability.noise.data import mean_square_radius

torch = pytest.importorskip("torch")
from stability.training import per_sample_ggn  # noqa: E402


def _model(k: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, k)
    ).double()


def _inputs(n: int = 40, seed: int = 1):
    return torch.randn(n, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _brute_factors(model, loss: str, x) -> np.ndarray:
    """``F_i = A_i^(1/2) J_i`` per sample, from autograd's Jacobian and output Hessian."""
    loss_fn = torch.nn.MSELoss() if loss == "mse" else torch.nn.CrossEntropyLoss()
    params = [p for p in model.parameters()]
    out = []
    for i in range(x.shape[0]):
        xi = x[i : i + 1]

        def f(*ps, xi=xi):
            return torch.func.functional_call(
                model, {n: p for (n, _), p in zip(model.named_parameters(), ps, strict=True)}, (xi,)
            ).reshape(-1)

        J = torch.autograd.functional.jacobian(f, tuple(params))
        J = torch.cat([j.reshape(j.shape[0], -1) for j in J], dim=1).numpy()
        o = model(xi).detach().reshape(-1)
        target = torch.zeros_like(o)[None] if loss == "mse" else torch.tensor([0])
        A = torch.autograd.functional.hessian(lambda z, t=target: loss_fn(z[None], t), o).numpy()
        w, Q = np.linalg.eigh(A)
        out.append((Q * np.sqrt(np.maximum(w, 0))).T @ J)
    return np.array(out)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_the_exact_subspace_matches_autograd_per_sample(loss):
    model, x = _model(), _inputs()
    ours = per_sample_ggn(model, loss, x, subspace="jacobian")
    brute = stb.PerSampleCurvature.from_factors(_brute_factors(model, loss, x))
    np.testing.assert_allclose(ours.eigenvalues, brute.eigenvalues, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        np.sort(ours.sample_curvatures()), np.sort(brute.sample_curvatures()), rtol=1e-9
    )
    alg = stb.heavy_ball(0.5 / ours.eigenvalues[-1], 0.5)
    a = mean_square_radius(alg, ours, 2, rtol=1e-12).rho
    b = mean_square_radius(alg, brute, 2, rtol=1e-12).rho
    assert a == pytest.approx(b, rel=1e-9)
    assert "exact" in ours.subspace


@pytest.mark.parametrize("loss", ["mse", torch.nn.CrossEntropyLoss()])
def test_the_top_subspace_is_the_exact_one_truncated(loss):
    model, x = _model(), _inputs()
    exact = per_sample_ggn(model, loss, x, subspace="jacobian")
    top = per_sample_ggn(model, loss, x, subspace="top", rank=20)
    np.testing.assert_allclose(top.eigenvalues, exact.eigenvalues[-20:], rtol=1e-8)
    alg = stb.heavy_ball(0.5 / exact.eigenvalues[-1], 0.5)
    a = mean_square_radius(alg, top, 2, rtol=1e-12).rho
    b = mean_square_radius(alg, exact.truncated(20), 2, rtol=1e-12).rho
    assert a == pytest.approx(b, rel=1e-7)
    assert "top 20" in top.subspace


def test_the_mean_curvature_is_the_models_gauss_newton_matrix():
    """H = E_i H_i against the package's GGN products over the whole batch (a different
    construction: jvp, the loss Hessian by double grad, vjp)."""
    model, x = _model(k=4), _inputs(n=30)
    y = torch.randint(0, 4, (30,), generator=torch.Generator().manual_seed(3))
    data = per_sample_ggn(model, "cross_entropy", x, subspace="jacobian")
    matvec, n = stb.training.ggn_matvec(model, torch.nn.CrossEntropyLoss(), (x, y))
    G = np.column_stack([matvec(e) for e in np.eye(n)])
    ev = np.linalg.eigvalsh((G + G.T) / 2)
    np.testing.assert_allclose(data.eigenvalues[-10:], ev[-10:], rtol=1e-8)
    assert data.eigenvalues.sum() == pytest.approx(ev.sum(), rel=1e-8)


def test_check_takes_a_network_and_reports_its_subspace():
    model, x = _model(), _inputs(n=60)
    data = per_sample_ggn(model, "mse", x, subspace="top", rank=16)
    rep = stb.check({"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}, data=data, batch_size=4)
    text = str(rep)
    assert rep.noise["kind"] == "data" and rep.noise["subspace"]["dimension"] == 16
    assert "rho" in text and "with 8 directions" in text and "Gauss-Newton" in text
    assert "edge of stability" in text


def test_the_model_is_left_as_it_was():
    model, x = _model(), _inputs()
    before = [p.detach().clone() for p in model.parameters()]
    per_sample_ggn(model, "mse", x, subspace="top", rank=5)
    per_sample_ggn(model, "mse", x)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())


def test_float32_models_work():
    model, x = _model().float(), _inputs().float()
    data = per_sample_ggn(model, "cross_entropy", x, subspace="top", rank=8)
    exact = per_sample_ggn(model.double(), "cross_entropy", x.double(), subspace="jacobian")
    np.testing.assert_allclose(data.eigenvalues, exact.eigenvalues[-8:], rtol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "hinge"}, "loss must be one of"),
        ({"loss": torch.nn.L1Loss()}, "loss must be 'mse'"),
        ({"loss": torch.nn.MSELoss(reduction="sum")}, "reduction must be 'mean'"),
        ({"loss": torch.nn.CrossEntropyLoss(weight=torch.ones(3))}, "class weights"),
        ({"subspace": "random"}, "subspace must be"),
        ({"subspace": "top", "rank": 1}, "rank must be an integer"),
        ({"subspace": "top", "rank": 10**6}, "rank must be an integer"),
        ({"inputs": np.zeros((4, 5))}, "inputs must be a torch tensor"),
        ({"inputs": torch.zeros(1, 5, dtype=torch.float64)}, "at least 2 samples"),
        ({"inputs": torch.full((4, 5), float("nan"), dtype=torch.float64)}, "not finite"),
        ({"model": "net"}, "model must be a torch.nn.Module"),
    ],
)
def test_bad_input_is_refused_by_name(kwargs, match):
    args = {"model": _model(), "loss": "mse", "inputs": _inputs(n=10), **kwargs}
    with pytest.raises(stb.ConfigError, match=match):
        per_sample_ggn(args.pop("model"), args.pop("loss"), args.pop("inputs"), **args)


def test_batchnorm_in_training_mode_is_refused():
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4)).double()
    with pytest.raises(stb.ConfigError, match=r"model\.eval"):
        per_sample_ggn(model, "mse", _inputs())
    model.eval()
    assert per_sample_ggn(model, "mse", _inputs()).dim > 0


def test_cross_entropy_needs_two_logits():
    model = torch.nn.Linear(5, 1).double()
    with pytest.raises(stb.ConfigError, match="at least 2 logits"):
        per_sample_ggn(model, "cross_entropy", _inputs())
