"""Curvature from a torch model: Hessian-vector products, the top of the Hessian spectrum and
its density (docs §6.6: Lanczos and stochastic Lanczos quadrature), and Adam's preconditioner.

:func:`sharpness` and :func:`hessian_density` run on the model's device and dtype, across
data-parallel ranks when ``torch.distributed`` is initialised
(:mod:`stability.training.lanczos`: plain Lanczos with a residual stop, SLQ with bounded
memory). :func:`hessian_matvec` and :func:`ggn_matvec` give the same operators as float64 numpy
matvecs for the framework-agnostic core (:mod:`stability.training.estimators`:
:func:`top_eigenvalues`, :func:`slq_density`, :func:`preconditioned`, re-exported here).

Everything here needs ``pip install sgd-stability[torch]`` (the rest of the package never
imports torch). Gradients are taken with ``torch.autograd.grad`` (Pearlmutter's trick) and
``torch.func``: ``.grad`` fields, optimizer state and the RNG are left alone.
``adam_preconditioner`` reads ``P = sqrt(v_hat) + eps`` from a live ``torch.optim.Adam``/
``AdamW``, so that the operator ``P^-1/2 H P^-1/2`` (the eigenvalues of ``P^-1 H``) the Adam
verdicts need can be formed. ``curvlinops-for-pytorch`` offers the same operators as scipy
``LinearOperator``s and can be passed in through the numpy ``matvec`` API, but is not needed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ConfigError, EstimateWarning, StabilityError
from .estimators import (
    SLQ_MEMORY,
    SYMMETRY_RTOL,
    Density,
    TopEigen,
    _MatVec,
    _quiet_jvp_import,
    _torch,
    preconditioned,
    slq_density,
    top_eigenvalues,
)
from .lanczos import HessianOperator, lanczos_top, slq

__all__ = [
    "SLQ_MEMORY",
    "SYMMETRY_RTOL",
    "Density",
    "EstimateWarning",
    "TopEigen",
    "adam_preconditioner",
    "ggn_matvec",
    "hessian_density",
    "hessian_matvec",
    "preconditioned",
    "sharpness",
    "slq_density",
    "top_eigenvalues",
]


def hessian_matvec(model: Any, loss_fn: Callable[..., Any], data: Any) -> tuple[_MatVec, int]:
    """``(matvec, n)``: the Hessian of ``loss_fn(model(x), y)`` over the model's trainable
    parameters, at their current values, as a numpy matvec (float64 in and out) for the
    framework-agnostic core. ``data`` is a batch ``(x, y)`` or an iterable of batches (the
    loss is then the mean over all samples). The products are those of
    :class:`~stability.training.lanczos.HessianOperator` (one graph per batch, all-reduced over
    data-parallel ranks); :func:`sharpness` avoids the host copies altogether."""
    torch = _torch()
    op = HessianOperator(model, loss_fn, data)

    def matvec(v: np.ndarray) -> np.ndarray:
        return op(torch.as_tensor(v, device=op.device).to(op.work)).double().cpu().numpy()

    return matvec, op.n


def ggn_matvec(model: Any, loss_fn: Callable[..., Any], data: Any) -> tuple[_MatVec, int]:
    """``(matvec, n)``: the generalised Gauss-Newton matrix ``J^T H_out J`` of
    ``loss_fn(model(x), y)`` (``J`` the Jacobian of the outputs in the parameters, ``H_out``
    the Hessian of the loss in the outputs), positive semi-definite for convex losses. Built
    with ``torch.func`` (``jvp``, ``vjp``, ``grad``); nothing of the model is modified.
    """
    torch = _torch()
    _quiet_jvp_import()
    from torch.func import functional_call, grad, jvp, vjp

    names = [k for k, p in model.named_parameters() if p.requires_grad]
    if not names:
        raise ConfigError("model has no trainable parameters")
    values = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
    sizes = [values[k].numel() for k in names]
    n = sum(sizes)
    batches = [data] if isinstance(data, tuple | list) and len(data) == 2 else list(data)
    if not batches:
        raise ConfigError("data must be a batch (x, y) or a non-empty iterable of batches")
    total = sum(len(b[0]) for b in batches)
    first = values[names[0]]

    def matvec(v: np.ndarray) -> np.ndarray:
        vec = torch.as_tensor(v, dtype=first.dtype, device=first.device)
        tangent, start = {}, 0
        for k, size in zip(names, sizes, strict=True):
            tangent[k] = vec[start : start + size].view_as(values[k])
            start += size
        out = torch.zeros(n, dtype=first.dtype, device=first.device)
        for x, y in batches:
            weight = len(x) / total

            def f(p, x=x):
                return functional_call(model, p, (x,))

            def loss_grad(o, y=y, w=weight):
                return grad(lambda oo: loss_fn(oo, y) * w)(o)

            outputs, jv = jvp(f, (values,), (tangent,))
            _, hjv = jvp(loss_grad, (outputs,), (jv,))
            _, pullback = vjp(f, values)
            (g,) = pullback(hjv)
            out += torch.cat([g[k].reshape(-1) for k in names])
        return out.double().cpu().numpy()

    return matvec, n


def sharpness(
    model: Any,
    loss_fn: Callable[..., Any],
    data: Any,
    k: int = 1,
    *,
    tol: float = 1e-6,
    maxiter: int | None = None,
    v0: Any = None,
    seed: int = 0,
    preconditioner: Any = None,
) -> TopEigen:
    """The top ``k`` Hessian eigenvalues of a torch model by Lanczos on the model's device
    (:func:`~stability.training.lanczos.lanczos_top`: stopped when each eigenvalue's estimated
    error is at most ``tol`` times its value). ``v0``
    warm-starts it; ``preconditioner`` (``P``, e.g. :func:`adam_preconditioner`) gives the
    eigenvalues of ``P^-1 H``. ``.vectors`` is a tensor ``(P, k)`` on the model's device."""
    op = HessianOperator(model, loss_fn, data, preconditioner=preconditioner)
    if not math.isfinite(op.loss()):
        raise StabilityError(
            "the loss is not finite at these parameters: the curvature is not defined"
        )
    top = lanczos_top(op, k, tol=tol, maxiter=maxiter, v0=v0, seed=seed)
    if not top.converged:
        warnings.warn(
            f"sharpness: {top.stop}; the value may be below the top eigenvalue",
            EstimateWarning,
            stacklevel=2,
        )
    return top


def hessian_density(
    model: Any,
    loss_fn: Callable[..., Any],
    data: Any,
    *,
    probes: int = 8,
    steps: int = 64,
    seed: int = 0,
    window: int | None = None,
) -> Density:
    """The Hessian spectral density of a torch model by stochastic Lanczos quadrature on its
    device (:func:`~stability.training.lanczos.slq`; ``window`` bounds the re-orthogonalisation
    memory to ``window + 3`` vectors)."""
    op = HessianOperator(model, loss_fn, data)
    if not math.isfinite(op.loss()):
        raise StabilityError(
            "the loss is not finite at these parameters: the curvature is not defined"
        )
    return slq(op, probes=probes, steps=steps, seed=seed, window=window)


def adam_preconditioner(optimizer: Any) -> np.ndarray:
    """``P = sqrt(v_hat) + eps`` of a live ``torch.optim.Adam``/``AdamW`` (all parameters in
    order, as one float64 numpy vector), read from its state without changing it."""
    return _adam_preconditioner(optimizer).double().cpu().numpy()


def _adam_preconditioner(optimizer: Any) -> Any:
    """:func:`adam_preconditioner` as a flat tensor on the parameters' device, in the order of
    the optimizer's groups."""
    params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
    return _adam_preconditioner_for(optimizer, params)


def _adam_preconditioner_for(optimizer: Any, params: list[Any]) -> Any:
    """Adam's live ``sqrt(v_hat) + eps`` of each of ``params`` (in that order: a model's
    parameters are not always in its optimizer's group order), flat; a parameter the optimizer
    does not hold never moves and gets ``1e30`` (its preconditioned curvature is 0)."""
    torch = _torch()
    where = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    parts = []
    for p in params:
        group = where.get(id(p))
        if group is None:
            parts.append(torch.full((p.numel(),), 1e30, dtype=p.dtype, device=p.device))
            continue
        betas, eps = group.get("betas"), group.get("eps")
        if betas is None or eps is None:
            raise ConfigError("adam_preconditioner needs a torch Adam/AdamW optimizer")
        state = optimizer.state.get(p, {})
        if "exp_avg_sq" not in state:
            raise ConfigError("the optimizer has no state yet: take at least one step")
        step = float(state["step"])
        with torch.no_grad():
            v_hat = state["exp_avg_sq"] / (1 - betas[1] ** step)
            parts.append((v_hat.sqrt() + eps).reshape(-1))
    return torch.cat(parts)
