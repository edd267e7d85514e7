"""Per-sample Gauss-Newton curvature of a torch model on a data set, for the data noise model
(docs §4.4): ``H_i = J_i^T A_i J_i = F_i^T F_i`` with ``J_i`` the Jacobian of sample ``i``'s
outputs in the parameters and ``A_i = C_i C_i^T`` the Hessian of its loss in the outputs.

* ``mse`` (torch's ``MSELoss()``, the mean over samples and ``k`` outputs): ``A_i = (2/k) I``,
  ``C_i = sqrt(2/k) I``.
* ``cross_entropy`` (``CrossEntropyLoss()`` on logits): ``A_i = diag(p_i) - p_i p_i^T``,
  ``C_i = diag(sqrt p_i) - p_i sqrt(p_i)^T`` (``C C^T = A`` because ``sum p = 1``).

Neither depends on the targets, so only the inputs are needed. Parameter space is too large
for the mean-square operator, which acts on ``r x r`` matrices; the curvature is represented
in a subspace:

* ``"jacobian"``: the span of every sample's Jacobian rows, the whole range of ``H``, exact.
  The ``n k`` rows are formed (``torch.func.jacrev`` under ``vmap``) and their Gram matrix
  diagonalised; affordable when ``n k`` is at most :data:`EXACT_ROWS`.
* ``"top"``: the top-``r`` eigenvectors ``V`` of the mean GGN (Lanczos on Gauss-Newton
  products ``(1/n) sum_i J_i^T A_i J_i v``, one ``jvp`` and one ``vjp`` over the data each),
  and ``J_i V`` by ``r`` forward-mode passes over the data (``torch.func.jvp`` under
  ``vmap``, a chunk of directions at a time).
  The dynamics outside ``V`` are left out: the report compares ``rho`` at ``r/2`` and ``r``.

The GGN, not the Hessian, is the curvature here: it is positive semi-definite, and it is the
Hessian of the linearised network. The model is evaluated as it is and never modified;
BatchNorm in training mode couples the samples of a batch and is refused.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .._threads import limited
from ..errors import ConfigError, describe
from ..noise.persample import PerSampleCurvature
from .curvature import _adam_preconditioner_for
from .estimators import _quiet_jvp_import, _torch, top_eigenvalues
from .lanczos import _differentiable_attention

__all__ = [
    "EXACT_ROWS",
    "GGN_LOSSES",
    "SUBSPACE_SAMPLES",
    "per_sample_ggn",
    "tracked_ggn",
]

GGN_LOSSES = ("mse", "cross_entropy")
SUBSPACE_SAMPLES = 512
"""Samples whose Gauss-Newton matrix gives the top subspace (a seeded subset when there are
more): every Lanczos product is a pass over them; the per-sample curvature is then taken on all
the samples in that subspace, and the report compares ``rho`` at ``r/2`` and ``r``."""

EXACT_ROWS = 1024
"""Most Jacobian rows ``n k`` for which ``subspace="auto"`` takes the exact range of ``H``."""

_EXACT_NUMBERS = 10**8  # entries of the n x k x P Jacobian the exact subspace may form
_CHUNK = 16  # directions per vmapped forward-mode pass


def _loss_name(loss: Any, torch: Any) -> str:
    """``mse`` or ``cross_entropy`` from a name or a torch loss module (mean reduction)."""
    if isinstance(loss, str):
        if loss not in GGN_LOSSES:
            raise ConfigError(f"loss must be one of {list(GGN_LOSSES)}, got {describe(loss)}")
        return loss
    kinds = {torch.nn.MSELoss: "mse", torch.nn.CrossEntropyLoss: "cross_entropy"}
    name = kinds.get(type(loss))
    if name is None:
        raise ConfigError(
            f"loss must be 'mse', 'cross_entropy', torch.nn.MSELoss() or "
            f"torch.nn.CrossEntropyLoss(), got {describe(loss)}"
        )
    if loss.reduction != "mean":
        raise ConfigError(
            f"loss reduction must be 'mean' (torch's default), got {loss.reduction!r}"
        )
    if name == "cross_entropy" and loss.weight is not None:
        raise ConfigError("CrossEntropyLoss with class weights is not supported (weight=None)")
    return name


def _check_model(model: Any, torch: Any) -> None:
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {describe(model)}")
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training:
            raise ConfigError(
                "model has BatchNorm in training mode, which couples the samples of a batch: "
                "call model.eval() first (per-sample curvature needs per-sample outputs)"
            )
        dropout = isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0
        if m.training and (dropout or isinstance(m, torch.nn.AlphaDropout)):
            raise ConfigError(
                f"model has {type(m).__name__}(p={m.p}) in training mode: its outputs are "
                "random, so the per-sample curvature is not defined; call model.eval() first "
                "(the curvature of the network without dropout, which is what the verdict "
                "concerns) and model.train() after"
            )
    if any(p.device.type == "meta" for p in model.parameters()):
        raise ConfigError(
            "model: its parameters are on the meta device (shapes without values); "
            "materialise it first (model.to_empty(device=...) and load the weights)"
        )


def _out_factor(logits: Any, loss: str, torch: Any) -> Any:
    """``C_i^T`` per sample, shape ``(n, k, k)``, with ``A_i = C_i C_i^T``."""
    n, k = logits.shape
    if loss == "mse":
        eye = torch.eye(k, dtype=logits.dtype, device=logits.device)
        return (math.sqrt(2.0 / k) * eye).expand(n, k, k)
    p = torch.softmax(logits, dim=1)
    s = p.sqrt()
    C = torch.diag_embed(s) - p[:, :, None] * s[:, None, :]
    return C.transpose(1, 2)


def per_sample_ggn(
    model: Any,
    loss: Any,
    inputs: Any,
    *,
    subspace: str = "auto",
    rank: int = 64,
    seed: int = 0,
    tol: float | None = None,
    preconditioner: Any = None,
) -> PerSampleCurvature:
    """The per-sample Gauss-Newton curvature of ``model`` on ``inputs`` (a tensor with one
    sample per row), for ``stability.check(config, data=..., batch_size=B)``.

    ``preconditioner`` gives the curvature of the preconditioned problem,
    ``P^-1/2 H_i P^-1/2``, which Adam's verdict concerns (its preconditioner frozen): a torch
    Adam or AdamW optimizer that has taken a step (its live ``sqrt(v_hat) + eps``, read in the
    order of ``model.parameters()``), or ``P`` itself, one positive number per trainable
    parameter in that order.

    ``loss`` is ``"mse"`` (``torch.nn.MSELoss()``), ``"cross_entropy"``
    (``torch.nn.CrossEntropyLoss()`` on the model's logits) or one of those modules.
    ``subspace`` is ``"jacobian"`` (exact: the span of the Jacobian rows), ``"top"`` (the top
    ``rank`` GGN eigenvectors) or ``"auto"`` (by cost: exact when the span of the Jacobian
    rows has at most ``2 rank`` directions, ``min(n k, P) <= 2 rank``, since the verdict costs
    ``n k r^2`` per application; else the top ``rank``). ``tol`` is
    Lanczos' relative accuracy (default 1e-10 for float64 models, 1e-5 for float32).
    """
    torch = _torch()
    _quiet_jvp_import()
    _check_model(model, torch)
    name = _loss_name(loss, torch)
    if subspace not in ("auto", "jacobian", "top"):
        raise ConfigError(f"subspace must be 'auto', 'jacobian' or 'top', got {describe(subspace)}")
    net = _Network(model, name, inputs, torch)
    net.set_preconditioner(preconditioner)
    rows = net.n * net.k
    # by cost: the verdict costs n k r^2 per application, so the exact subspace (r = min(n k,
    # P) directions) is chosen when it is at most twice the rank asked for
    cheap = min(rows, net.P) <= 2 * rank if isinstance(rank, int) else rows <= EXACT_ROWS
    exact = subspace == "jacobian" or (subspace == "auto" and cheap and rows <= EXACT_ROWS)
    if exact and rows * net.P > _EXACT_NUMBERS:
        if subspace == "jacobian":
            raise ConfigError(
                f"the exact subspace forms all {net.n} x {net.k} x {net.P:,} Jacobian entries, "
                f"more than {_EXACT_NUMBERS:.0e}: use subspace='top' (rank={rank})"
            )
        exact = False
    if exact:
        with limited(2.0 * rows * net.P):
            return net.exact()
    if isinstance(rank, bool) or not isinstance(rank, int) or not 2 <= rank < net.P:
        raise ConfigError(f"rank must be an integer in [2, {net.P - 1}], got {describe(rank)}")
    if tol is None:
        tol = 1e-10 if net.dtype == torch.float64 else 1e-5
    # the Lanczos vectors live on the host (small BLAS work: one thread); each product is a
    # pass of the network over the samples (torch keeps its threads when that is large)
    with limited(10.0 * net.P, 4.0 * min(net.n, SUBSPACE_SAMPLES) * net.k * net.P):
        return net.top(rank, tol, seed)


class _Network:
    """A model's parameters and outputs on the inputs, with the loss factors ``C_i^T``."""

    def __init__(self, model: Any, loss: str, inputs: Any, torch: Any) -> None:
        if not isinstance(inputs, torch.Tensor):
            raise ConfigError(
                f"inputs must be a torch tensor (one sample per row), got {describe(inputs)}"
            )
        if inputs.ndim < 1 or inputs.shape[0] < 2:
            raise ConfigError(
                f"inputs must hold at least 2 samples (rows), got shape {tuple(inputs.shape)}"
            )
        self.names = [k for k, p in model.named_parameters() if p.requires_grad]
        if not self.names:
            raise ConfigError("model has no trainable parameters")
        self.params = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
        self.sizes = [self.params[k].numel() for k in self.names]
        self.P = sum(self.sizes)
        self.dtype = self.params[self.names[0]].dtype
        with torch.no_grad():
            logits = model(inputs)
        if logits.ndim == 1:
            logits = logits[:, None]
        if logits.ndim != 2 or logits.shape[0] != inputs.shape[0]:
            raise ConfigError(
                f"model outputs must have shape (n,) or (n, k) for n = {inputs.shape[0]} "
                f"inputs, got {tuple(logits.shape)}"
            )
        if not torch.isfinite(logits).all():
            raise ConfigError("model outputs are not finite on these inputs")
        self.n, self.k = logits.shape
        if loss == "cross_entropy" and self.k < 2:
            raise ConfigError(f"cross_entropy needs at least 2 logits per sample, got {self.k}")
        self.model, self.inputs, self.torch, self.device = model, inputs, torch, logits.device
        self.Ct = _out_factor(logits, loss, torch)
        loss_text = (
            "MSELoss() (mean over samples and outputs), A_i = (2/k) I"
            if loss == "mse"
            else "CrossEntropyLoss(), A_i = diag(p_i) - p_i p_i^T"
        )
        self.note = (
            f"per-sample Gauss-Newton curvature J_i^T A_i J_i of a network with {self.P:,} "
            f"parameters on {self.n} samples x {self.k} output(s); loss {loss_text}"
        )

    scale: Any = None  # P^-1/2 per parameter, or None (no preconditioner)

    def set_preconditioner(self, preconditioner: Any) -> None:
        """``self.scale = P^-1/2`` from an Adam optimizer or the numbers ``P`` (see
        :func:`per_sample_ggn`)."""
        torch = self.torch
        if preconditioner is None:
            return
        if isinstance(preconditioner, torch.optim.Optimizer):
            params = [p for p in self.model.parameters() if p.requires_grad]
            P = _adam_preconditioner_for(preconditioner, params)
        elif isinstance(preconditioner, torch.Tensor):  # on any device
            P = preconditioner.detach()
        else:
            try:
                P = torch.as_tensor(np.asarray(preconditioner, dtype=float))
            except (TypeError, ValueError) as err:
                raise ConfigError(
                    f"preconditioner must be a torch Adam/AdamW optimizer or {self.P:,} positive "
                    f"numbers, got {describe(preconditioner)}"
                ) from err
        P = P.reshape(-1).to(device=self.device, dtype=self.dtype)
        if P.numel() != self.P or not bool(torch.all(torch.isfinite(P) & (P > 0))):
            raise ConfigError(
                f"preconditioner must hold {self.P:,} finite positive numbers (one per trainable "
                f"parameter), got {P.numel():,} with min {float(P.min()) if P.numel() else 0:.3g}"
            )
        self.scale = P.rsqrt()
        self.note += "; preconditioned: P^-1/2 H_i P^-1/2 (Adam's P frozen at its current value)"

    def outputs(self, p: dict[str, Any]) -> Any:
        from torch.func import functional_call

        with _differentiable_attention(self.torch):
            return functional_call(self.model, p, (self.inputs,)).reshape(self.n, self.k)

    def directions(self, cols: Any) -> dict[str, Any]:
        """Columns of parameter-space vectors as a dict of per-parameter batches."""
        out, start = {}, 0
        for name, size in zip(self.names, self.sizes, strict=True):
            out[name] = cols[start : start + size].T.reshape(-1, *self.params[name].shape)
            start += size
        return out

    def exact(self) -> PerSampleCurvature:
        """Every sample's Jacobian rows (``jacrev`` under ``vmap``), factored through their
        Gram matrix: the eigenbasis of ``H`` on its range, without a ``P x P`` matrix."""
        from torch.func import functional_call, jacrev, vmap

        torch, n, k = self.torch, self.n, self.k

        def f_single(p: dict[str, Any], x: Any) -> Any:
            with _differentiable_attention(torch):
                return functional_call(self.model, p, (x[None],)).reshape(-1)

        J = vmap(jacrev(f_single), in_dims=(None, 0))(self.params, self.inputs)
        Jflat = torch.cat([J[name].reshape(n, k, -1) for name in self.names], dim=2)
        if self.scale is not None:
            Jflat = Jflat * self.scale
        F = (self.Ct @ Jflat).reshape(n * k, self.P).double()
        G = (F @ F.T / n).cpu().numpy()  # F F^T / n has the nonzero eigenvalues of H
        lam, U = np.linalg.eigh((G + G.T) / 2)
        keep = lam > 1e-10 * lam[-1] if lam[-1] > 0 else np.zeros(lam.size, bool)
        if not keep.any():
            raise ConfigError("the per-sample curvature is zero: nothing to analyse")
        lam, U = lam[keep], U[:, keep]
        # the rotated factors F V with V = F^T U diag(lam)^-1/2 / sqrt(n): sqrt(n) U diag(lam)^1/2
        factors = (math.sqrt(n) * U * np.sqrt(lam)).reshape(n, k, lam.size)
        subspace = f"the span of the per-sample Jacobians ({lam.size} directions, exact)"
        return PerSampleCurvature(lam, factors, 1, (self.note,), subspace)

    def top(self, rank: int, tol: float, seed: int) -> PerSampleCurvature:
        """The top ``rank`` Gauss-Newton eigenvectors by Lanczos (of the Gauss-Newton matrix of
        a seeded subset of at most :data:`SUBSPACE_SAMPLES` samples), then ``J_i V`` of every
        sample by forward-mode passes, a chunk of directions at a time."""
        from torch.func import functional_call, jvp, vjp

        torch, n = self.torch, self.n
        m = min(n, SUBSPACE_SAMPLES)
        rows = torch.arange(n, device=self.device)
        if m < n:
            gen = torch.Generator().manual_seed(int(seed))
            rows = torch.randperm(n, generator=gen)[:m].sort().values.to(self.device)
        inputs = self.inputs[rows]
        A = (self.Ct.transpose(1, 2) @ self.Ct)[rows]  # A_i = C_i C_i^T, (m, k, k)

        def outputs(p: dict[str, Any]) -> Any:
            with _differentiable_attention(torch):
                return functional_call(self.model, p, (inputs,)).reshape(m, self.k)

        _, pullback = vjp(outputs, self.params)

        def matvec(v: np.ndarray) -> np.ndarray:  # (1/m) sum_i S J_i^T A_i J_i S v, S = P^-1/2
            x = torch.as_tensor(v, dtype=self.dtype, device=self.device)
            x = x * self.scale if self.scale is not None else x
            t = self.directions(x[:, None])
            u = jvp(outputs, (self.params,), ({k: t[k][0] for k in self.names},))[1]
            (g,) = pullback((A @ u[:, :, None])[:, :, 0] / m)
            out = torch.cat([g[k].reshape(-1) for k in self.names])
            out = out * self.scale if self.scale is not None else out
            return out.double().cpu().numpy()

        # symmetric by construction (J^T A J); ARPACK's residual bound is enough here
        top = top_eigenvalues(
            matvec, self.P, rank, tol=tol, seed=seed, check_symmetry=False, residuals=False
        )
        V = torch.as_tensor(top.vectors, dtype=self.dtype, device=self.device)
        found = PerSampleCurvature.from_factors(
            self.factors(V),
            notes=(
                self.note,
                f"subspace: the top {rank} Gauss-Newton eigenvectors (Lanczos, {top.matvecs} "
                f"products, residuals at most {top.residuals.max():.2g}"
                + (
                    f"; found on a seeded subset of {m} of the {n} samples, every sample's "
                    "curvature then taken in it)"
                    if m < n
                    else ")"
                ),
            ),
            subspace=f"the top {rank} Gauss-Newton eigenvectors",
        )
        return dataclasses.replace(found, products=int(top.matvecs))

    def tracked(self, V: Any) -> tuple[PerSampleCurvature, Any]:
        """One block-Krylov step from the orthonormal directions ``V`` (``P x r``, the top
        Gauss-Newton directions of a nearby point): the basis ``[V, G V]`` orthonormalised,
        the per-sample curvature in it (``2r`` forward-mode passes and ``r`` reverse ones over
        the data, for ``G V`` and the factors), and its top ``r`` Ritz directions (a
        Rayleigh-Ritz step): the curvature in them and the new ``V``."""
        from torch.func import vjp, vmap

        torch = self.torch
        V = V.to(device=self.device, dtype=self.dtype)
        r = V.shape[1]
        FV = torch.as_tensor(self.factors(V), dtype=self.dtype, device=self.device)  # (n,k,r)
        _, pullback = vjp(self.outputs, self.params)
        cot = (self.Ct.transpose(1, 2) @ FV).permute(2, 0, 1) / self.n  # A J S V, (r, n, k)
        (grads,) = vmap(pullback)(cot)
        GV = torch.cat([grads[k].reshape(r, -1) for k in self.names], dim=1).T  # (P, r)
        if self.scale is not None:
            GV = GV * self.scale[:, None]
        W = GV - V @ (V.T @ GV)
        W = W - V @ (V.T @ W)  # twice: orthogonal to V in floats
        Q, R = torch.linalg.qr(W)
        # a direction of G V already in span(V) (converged) leaves little but rounding in W:
        # dropped; what is kept is orthogonalised against V once more (block Gram-Schmidt)
        size = max(float(torch.linalg.matrix_norm(GV, ord=2)), 1e-300)
        Q = Q[:, torch.abs(torch.diagonal(R)) > 1e-10 * size]
        Q = Q - V @ (V.T @ Q)
        Q, _ = torch.linalg.qr(Q)
        F = FV.double()  # (n, k, r + q) in the basis [V, Q]
        if Q.shape[1]:
            FQ = torch.as_tensor(self.factors(Q), dtype=self.dtype, device=self.device)
            F = torch.cat([FV, FQ], dim=2).double()
        M = torch.einsum("nki,nkj->ij", F, F) / self.n
        lam, U = torch.linalg.eigh((M + M.T) / 2)
        U = U[:, torch.argsort(lam, descending=True)[:r]]
        basis = torch.cat([V, Q], dim=1)
        V_new = basis @ U.to(basis.dtype)
        curvature = PerSampleCurvature.from_factors(
            (F @ U).cpu().numpy(),
            notes=(
                self.note,
                f"subspace: the top {r} Gauss-Newton directions, tracked from the previous "
                "check by one block-Krylov (Rayleigh-Ritz) step",
            ),
            subspace=f"the top {r} Gauss-Newton directions (tracked)",
        )
        return curvature, V_new

    def factors(self, V: Any) -> np.ndarray:
        """``C_i^T J_i S V`` of every sample (``S = P^-1/2``, or 1), ``(n, k, r)``, for the
        orthonormal columns ``V`` (``P x r``, in the preconditioned coordinates): ``r``
        forward-mode passes over the data, a chunk of directions at a time."""
        from torch.func import jvp, vmap

        torch = self.torch
        V = V.to(device=self.device, dtype=self.dtype)
        if self.scale is not None:
            V = V * self.scale[:, None]

        def push(t: dict[str, Any]) -> Any:
            return jvp(self.outputs, (self.params,), (t,))[1]

        r = V.shape[1]
        JV = [vmap(push)(self.directions(V[:, c : c + _CHUNK])) for c in range(0, r, _CHUNK)]
        return (self.Ct @ torch.cat(JV, dim=0).permute(1, 2, 0)).double().cpu().numpy()


def tracked_ggn(
    model: Any,
    loss: Any,
    inputs: Any,
    directions: Any = None,
    *,
    rank: int = 8,
    preconditioner: Any = None,
    seed: int = 0,
) -> tuple[PerSampleCurvature, Any]:
    """The per-sample Gauss-Newton curvature in the top ``rank`` directions, followed along a
    training run: from ``directions`` (the ``P x rank`` tensor this returned at the previous
    point) one block-Krylov step and a Rayleigh-Ritz projection (``3 rank`` passes over the
    data), else Lanczos on Gauss-Newton products on the device (to 1e-2, at most
    ``max(3 rank, 24)`` products: the tracking refines it). Returns the
    curvature and the directions to pass next time. The stability monitor calls it at each
    check; a slowly moving top subspace stays tracked, one step per check."""
    torch = _torch()
    _quiet_jvp_import()
    _check_model(model, torch)
    net = _Network(model, _loss_name(loss, torch), inputs, torch)
    net.set_preconditioner(preconditioner)
    rank = min(int(rank), net.P - 1)
    if directions is None or tuple(directions.shape) != (net.P, rank):
        from .lanczos import lanczos_top

        with limited(10.0 * net.P, 4.0 * net.n * net.k * net.P):
            op = _GGNOperator(net)
            top = lanczos_top(op, rank, tol=1e-2, maxiter=max(3 * rank, 24), seed=seed)
            V = top.vectors.to(net.dtype)
            curvature = PerSampleCurvature.from_factors(
                net.factors(V),
                notes=(
                    net.note,
                    f"subspace: the top {rank} Gauss-Newton directions (Lanczos on the device, "
                    f"{top.matvecs} products, {top.stop})",
                ),
                subspace=f"the top {rank} Gauss-Newton directions",
            )
        return curvature, V
    with limited(10.0 * net.P, 4.0 * net.n * net.k * net.P):
        return net.tracked(directions)


class _GGNOperator:
    """``v -> S J^T A J S v / n`` on the device (``S = P^-1/2``, or 1): the mean Gauss-Newton
    matrix of a network's samples, one forward-mode and one reverse pass per product, in the
    interface :func:`~stability.training.lanczos.lanczos_top` iterates on."""

    def __init__(self, net: _Network) -> None:
        from torch.func import vjp

        self.net, self.torch = net, net.torch
        self.n, self.dtype, self.device = net.P, net.dtype, net.device
        self.work = net.torch.float64 if net.dtype == net.torch.float64 else net.torch.float32
        self.calls = 0
        _, self.pullback = vjp(net.outputs, net.params)
        self.A = net.Ct.transpose(1, 2) @ net.Ct

    def __call__(self, q: Any) -> Any:
        from torch.func import jvp

        net, torch = self.net, self.torch
        self.calls += 1
        x = q.to(net.dtype)
        if net.scale is not None:
            x = x * net.scale
        t = net.directions(x[:, None])
        u = jvp(net.outputs, (net.params,), ({k: t[k][0] for k in net.names},))[1]
        (g,) = self.pullback((self.A @ u[:, :, None])[:, :, 0] / net.n)
        out = torch.cat([g[k].reshape(-1) for k in net.names])
        if net.scale is not None:
            out = out * net.scale
        return out.to(self.work)

    def precision(self) -> str:
        return f"Gauss-Newton products in {str(self.dtype).split('.')[-1]}"
