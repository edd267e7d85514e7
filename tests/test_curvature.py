"""Curvature estimates against exact dense eigenvalues (``torch.autograd.functional.hessian``
on a small model), and the noise sum of an SLQ density against the exact spectrum's."""

from __future__ import annotations

import numpy as np
import pytest

import stability as stb
from stability.training import curvature as cv


def test_matvec_core_against_numpy():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((60, 60))
    H = A @ A.T / 60 - 0.3 * np.eye(60)  # some negative curvature
    exact = np.linalg.eigvalsh(H)
    top = cv.top_eigenvalues(lambda v: H @ v, 60, k=3)
    np.testing.assert_allclose(top.values, exact[::-1][:3], rtol=1e-9)
    assert top.residuals.max() < 1e-7 and top.matvecs > 3
    d = cv.slq_density(lambda v: H @ v, 60, probes=200, steps=60)  # steps = n: exact nodes
    assert d.weights.sum() == pytest.approx(60)
    assert d.negative_mass == pytest.approx(np.mean(exact < 0), abs=0.05)
    # quadrature: sum w f(theta) estimates tr f(H) (Hutchinson error only, ~1/sqrt(probes))
    assert (d.weights * d.nodes**2).sum() == pytest.approx((exact**2).sum(), rel=0.03)
    assert (d.weights * d.nodes).sum() == pytest.approx(exact.sum(), rel=0.03)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cv.top_eigenvalues(lambda v: v, 0), "n must be a positive integer"),
        (lambda: cv.top_eigenvalues(lambda v: v, 5, k=5), "k must be an integer in"),
        (lambda: cv.top_eigenvalues(lambda v: v[:2], 5), "length 5"),
        (lambda: cv.top_eigenvalues("H", 5), "matvec must be callable"),
        (lambda: cv.slq_density(lambda v: v, 5, probes=0), "probes must be a positive"),
        (lambda: cv.preconditioned(lambda v: v, [1.0, -1.0]), "P must be in (0, inf)"),
    ],
)
def test_bad_inputs(call, message):
    with pytest.raises(stb.ConfigError) as info:
        call()
    assert message in str(info.value)


def _model_and_data(torch, hidden: int = 40):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(12, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 10)
    ).double()  # 930 parameters at hidden = 40, 2,530 at 110
    x = torch.randn(256, 12, dtype=torch.float64)
    y = torch.randint(0, 10, (256,))
    return model, torch.nn.functional.cross_entropy, (x, y)


def _dense_hessian(torch, model, loss_fn, data):
    params = list(model.parameters())
    shapes = [p.shape for p in params]
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    x, y = data

    def loss_of(theta):
        out, start = x, 0
        chunks = []
        for s in shapes:
            n = int(np.prod(s))
            chunks.append(theta[start : start + n].reshape(s))
            start += n
        h = torch.tanh(out @ chunks[0].T + chunks[1])
        return loss_fn(h @ chunks[2].T + chunks[3], y)

    return torch.autograd.functional.hessian(loss_of, flat).numpy()


@pytest.mark.parametrize("hidden", [40, pytest.param(110, marks=pytest.mark.slow)])
def test_lanczos_and_slq_on_a_torch_model_against_the_dense_hessian(hidden):
    torch = pytest.importorskip("torch")
    model, loss_fn, data = _model_and_data(torch, hidden)
    H = _dense_hessian(torch, model, loss_fn, data)
    exact = np.linalg.eigvalsh((H + H.T) / 2)
    grads_before = [p.grad for p in model.parameters()]
    rng_before = torch.get_rng_state()

    top = cv.sharpness(model, loss_fn, data, k=3, tol=1e-12)
    np.testing.assert_allclose(top.values, exact[::-1][:3], rtol=1e-6)
    assert top.residuals.max() < 1e-6 * exact[-1]
    # the estimate leaves the model alone: no .grad written, RNG untouched
    assert [p.grad for p in model.parameters()] == grads_before
    assert torch.equal(torch.get_rng_state(), rng_before)

    dens = cv.hessian_density(model, loss_fn, data, probes=10, steps=80)
    assert dens.weights.sum() == pytest.approx(H.shape[0])
    assert dens.negative_mass == pytest.approx(np.mean(exact < 0), abs=0.1)
    # the noise sum from the SLQ density against the exact spectrum (positive part)
    alg = stb.from_torch_sgd(0.5, 0.9).algorithm
    u_exact = stb.stability_sum(alg, exact[exact > 1e-10], batch_size=32).U
    u_slq = stb.stability_sum(alg, dens.spectrum, batch_size=32).U
    assert u_slq == pytest.approx(u_exact, rel=0.05)
    # and check() takes the density directly
    rep = stb.check(
        {"optimizer": "sgd", "lr": 0.5, "momentum": 0.9}, spectrum=dens.spectrum, batch_size=32
    )
    assert rep.noise["U"] == pytest.approx(u_slq)
    assert any(
        "stochastic Lanczos quadrature" in c and "negative curvature" in c for c in rep.caveats
    )  # the estimate says it is one, and what it leaves out


def test_adam_preconditioned_sharpness_matches_the_dense_operator():
    torch = pytest.importorskip("torch")
    model, loss_fn, data = _model_and_data(torch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(5):
        opt.zero_grad()
        loss_fn(model(data[0]), data[1]).backward()
        opt.step()
    state_before = {k: v.clone() for k, v in opt.state[next(model.parameters())].items()}
    P = cv.adam_preconditioner(opt)
    H = _dense_hessian(torch, model, loss_fn, data)
    exact = np.max(np.linalg.eigvals(np.linalg.solve(np.diag(P), H)).real)
    matvec, n = cv.hessian_matvec(model, loss_fn, data)
    top = cv.top_eigenvalues(cv.preconditioned(matvec, P), n, tol=1e-12)
    assert top.sharpness == pytest.approx(exact, rel=1e-6)
    after = opt.state[next(model.parameters())]
    assert all(torch.equal(after[k], v) for k, v in state_before.items())


def test_ggn_matvec_equals_the_dense_gauss_newton_matrix():
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    ).double()
    x = torch.randn(40, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (40,))
    loss_fn = torch.nn.functional.cross_entropy
    params = list(model.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    shapes = [p.shape for p in params]

    def outputs(theta):
        chunks, start = [], 0
        for s in shapes:
            k = int(np.prod(s))
            chunks.append(theta[start : start + k].reshape(s))
            start += k
        return torch.tanh(x @ chunks[0].T + chunks[1]) @ chunks[2].T + chunks[3]

    J = torch.autograd.functional.jacobian(outputs, flat).reshape(40 * 3, -1)
    out = outputs(flat).detach()
    H_out = torch.autograd.functional.hessian(
        lambda o: loss_fn(o.reshape(40, 3), y), out.reshape(-1)
    )
    G = (J.T @ H_out @ J).numpy()
    matvec, n = cv.ggn_matvec(model, loss_fn, (x, y))
    v = np.random.default_rng(0).standard_normal(n)
    np.testing.assert_allclose(matvec(v), G @ v, rtol=1e-9, atol=1e-12)
    assert np.linalg.eigvalsh((G + G.T) / 2).min() > -1e-12  # PSD for a convex loss
    top = cv.top_eigenvalues(matvec, n, tol=1e-12)
    assert top.sharpness == pytest.approx(np.linalg.eigvalsh((G + G.T) / 2).max(), rel=1e-8)
