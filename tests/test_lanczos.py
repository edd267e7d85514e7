"""Torch-native curvature (issue 22): accuracy against the dense Hessian in float64, float32
and bfloat16; no host copy of the parameter vector on the hot path; memory checked before
allocating; and data-parallel ranks (two gloo processes, half the data each) that agree with a
single process holding all of it, for the sharpness, the SLQ density and the monitor, with a
plain and a DistributedDataParallel model."""

from __future__ import annotations

import socket

import numpy as np
import pytest

import stability as stb

torch = pytest.importorskip("torch")
from stability.training import HessianOperator, lanczos_top, sharpness, slq  # noqa: E402
from stability.training import lanczos as lz  # noqa: E402

from . import _distributed_worker as worker  # noqa: E402


def _mlp(dtype):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 40), torch.nn.Tanh(), torch.nn.Linear(40, 10))
    x = torch.randn(256, 12)
    y = torch.randint(0, 10, (256,))
    return model.to(dtype), torch.nn.functional.cross_entropy, (x.to(dtype), y)


def _dense(model, loss_fn, data):
    """The dense Hessian of a float64 copy (autograd's own hessian over the flat vector)."""
    m64 = _mlp(torch.float64)[0]
    m64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    x, y = data[0].double(), data[1]
    params = list(m64.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    shapes = [p.shape for p in params]

    def loss_of(theta):
        chunks, at = [], 0
        for s in shapes:
            n = int(np.prod(s))
            chunks.append(theta[at : at + n].reshape(s))
            at += n
        return loss_fn(torch.tanh(x @ chunks[0].T + chunks[1]) @ chunks[2].T + chunks[3], y)

    H = torch.autograd.functional.hessian(loss_of, flat).numpy()
    return np.sort(np.linalg.eigvalsh((H + H.T) / 2))[::-1]


@pytest.mark.parametrize(
    ("dtype", "rtol"),
    [(torch.float64, 1e-6), (torch.float32, 1e-4), (torch.bfloat16, 3e-2)],
)
def test_top_k_against_the_dense_hessian(dtype, rtol):
    model, loss_fn, data = _mlp(dtype)
    exact = _dense(model, loss_fn, data)
    top = sharpness(model, loss_fn, data, k=3, tol=1e-8 if dtype == torch.float64 else 1e-4)
    np.testing.assert_allclose(top.values, exact[:3], rtol=rtol)
    assert top.vectors.shape == (sum(p.numel() for p in model.parameters()), 3)
    assert top.vectors.dtype == (torch.float32 if dtype == torch.bfloat16 else dtype)
    note = top.notes[0]
    assert ("bfloat16" in note and "float32" in note) if dtype == torch.bfloat16 else True


def test_the_largest_eigenvalue_converges_in_few_products():
    model, loss_fn, data = _mlp(torch.float64)
    exact = _dense(model, loss_fn, data)[0]
    top = sharpness(model, loss_fn, data, tol=1e-3)
    assert abs(top.sharpness / exact - 1) < 1e-3 and top.matvecs <= 30


def test_no_host_copy_of_the_parameter_vector(monkeypatch):
    """Nothing of size P leaves the device on the hot path: every .cpu(), .numpy(),
    .tolist() and numpy conversion of a parameter-sized tensor is counted."""
    model, loss_fn, data = _mlp(torch.float32)
    op = HessianOperator(model, loss_fn, data)
    seen = []
    for name in ("cpu", "numpy", "tolist", "__array__"):
        original = getattr(torch.Tensor, name)

        def spy(self, *a, _original=original, _name=name, **kw):
            if self.numel() >= op.n:
                seen.append(_name)
            return _original(self, *a, **kw)

        monkeypatch.setattr(torch.Tensor, name, spy)
    lanczos_top(op, 2, tol=1e-4)
    slq(op, probes=2, steps=10)
    assert not seen, seen


def test_a_warm_start_is_not_modified():
    model, loss_fn, data = _mlp(torch.float64)
    first = sharpness(model, loss_fn, data, tol=1e-6)
    v0 = first.vectors[:, 0]
    saved = v0.clone()
    again = sharpness(model, loss_fn, data, tol=1e-6, v0=v0)
    assert torch.equal(v0, saved)
    assert again.matvecs < first.matvecs  # it starts next to the answer
    assert again.sharpness == pytest.approx(first.sharpness, rel=1e-6)


def test_memory_is_checked_before_allocating(monkeypatch):
    model, loss_fn, data = _mlp(torch.float32)
    op = HessianOperator(model, loss_fn, data)
    monkeypatch.setattr(lz, "LANCZOS_MEMORY", 10 * op.n * 4)
    with pytest.raises(stb.ConfigError, match="LANCZOS_MEMORY"):
        lanczos_top(op, 1, maxiter=50)
    dens = slq(op, probes=1, steps=30)  # falls back to a window of 4 vectors
    assert dens.weights.sum() == pytest.approx(op.n, rel=1e-6)


def test_preconditioned_operator_is_p_inverse_h():
    model, loss_fn, data = _mlp(torch.float64)
    rng = np.random.default_rng(0)
    P = rng.uniform(0.5, 2.0, sum(p.numel() for p in model.parameters()))
    dense = stb.training.hessian_matvec(model, loss_fn, data)[0]
    H = np.column_stack([dense(e) for e in np.eye(P.size)])
    exact = np.max(np.linalg.eigvals(np.linalg.solve(np.diag(P), H)).real)
    top = sharpness(model, loss_fn, data, tol=1e-10, preconditioner=torch.as_tensor(P))
    assert top.sharpness == pytest.approx(exact, rel=1e-8)


def test_sharded_models_are_refused():
    class FullyShardedDataParallel(torch.nn.Linear):  # stands in for FSDP's wrapper
        pass

    with pytest.raises(stb.ConfigError, match="FSDP"):
        HessianOperator(FullyShardedDataParallel(3, 1), torch.nn.functional.mse_loss,
                        (torch.zeros(2, 3), torch.zeros(2, 1)))  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(300)
def test_two_ranks_with_half_the_data_each_equal_one_process(tmp_path):
    mp = pytest.importorskip("torch.multiprocessing")
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    mp.spawn(worker.run, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    model, loss_fn, x, y = worker.problem()
    single = worker.curvature(model, loss_fn, (x, y))
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        for kind in ("plain", "ddp"):
            r = got[kind]
            np.testing.assert_allclose(r["values"], single["values"], rtol=1e-6)
            np.testing.assert_allclose(r["nodes"], single["nodes"], rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(r["weights"], single["weights"], rtol=1e-6, atol=1e-9)
            assert [s for s, *_ in r["records"]] == [s for s, *_ in single["records"]]
            np.testing.assert_allclose(
                [v for _, *v in r["records"]], [v for _, *v in single["records"]], rtol=1e-6
            )
    # every="auto": each rank's own time budget, the same checks on both ranks
    autos = [torch.load(tmp_path / f"rank{k}.pt", weights_only=False)["auto"] for k in (0, 1)]
    assert autos[0] == autos[1] and autos[0][0] == 1
