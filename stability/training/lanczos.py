"""Torch-native curvature at the scale people train at: Hessian-vector products and Lanczos on
the parameters' own device and dtype, across data-parallel ranks (docs §6.6).

* :class:`HessianOperator` is ``v -> H v`` for a model's trainable parameters, as a flat tensor
  on their device. For one batch the gradient's graph is built once and every product is one
  backward pass through it (Pearlmutter's trick); a list of batches or a ``DataLoader`` is
  accumulated batch by batch, with one batch's graph in memory. Half-precision models (bf16,
  fp16) take their products in their own dtype and accumulate in float32. When
  ``torch.distributed`` is initialised, each rank holds its share of the data and every
  product is all-reduced (weighted by the ranks' sample counts), so every rank holds the same
  operator and gets the same eigenvalues. A ``DistributedDataParallel`` model is read through
  its ``module``; sharded parameters (FSDP, DTensor) are refused.
* :func:`lanczos_top`: plain Lanczos with full re-orthogonalisation and a residual-based stop
  (the error estimate ``min(rho, rho^2/gap) <= tol |theta|`` from each wanted Ritz pair's
  residual ``rho = |beta_m y_m|``), warm-startable. The basis lives
  on the device; only the tridiagonal coefficients (float64 scalars) reach the host. Its memory,
  ``(maxiter + 1) P`` numbers, is checked against :data:`LANCZOS_MEMORY` before anything is
  allocated.
* :func:`slq`: stochastic Lanczos quadrature with full re-orthogonalisation when
  ``(steps + 6) P`` numbers fit :data:`LANCZOS_MEMORY`, else against a window of the last ``k``
  vectors (memory ``(k + 6) P``, stated up front; local re-orthogonalisation keeps the density's
  nodes and weights, at the cost of occasional duplicate nodes that share a weight).

Written here rather than with scipy's ARPACK (which needs float64 numpy vectors on the host
and restarts: 82 products where plain Lanczos needs 20-30) or a curvature library (none ties
the operator to data-parallel ranks); the products themselves are torch's own autograd.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ConfigError, StabilityError, describe
from .estimators import Density, TopEigen, _positive_int, _tolerance, _torch

__all__ = [
    "LANCZOS_MEMORY",
    "MIN_KRYLOV",
    "WARM_MIX",
    "HessianOperator",
    "distributed_world",
    "lanczos_top",
    "slq",
]

LANCZOS_MEMORY = 4 * 2**30
"""Bytes the Lanczos basis may take on the device (checked before any allocation)."""

_SLQ_WORK = 6  # vectors besides the window: q, the previous q, w, a product, two temporaries

_UNIT_ROUNDOFF = {"float64": 1.1e-16, "float32": 6.0e-8, "bfloat16": 3.9e-3, "float16": 4.9e-4}


def distributed_world() -> Any:
    """``torch.distributed`` when it is initialised with more than one rank, else ``None``."""
    torch = _torch()
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist
    return None


def _unwrap(model: Any, torch: Any) -> Any:
    """The module behind a ``DistributedDataParallel`` wrapper; FSDP and DTensor refused."""
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {describe(model)}")
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = model.module
    sharded = type(model).__name__ in ("FullyShardedDataParallel", "FSDPModule") or any(
        type(p).__name__ == "DTensor" or type(getattr(p, "data", None)).__name__ == "DTensor"
        for p in model.parameters()
    )
    if sharded:
        raise ConfigError(
            "sharded parameters (FSDP or DTensor) are not supported: every rank must hold the "
            "whole model (plain or DistributedDataParallel); gather the model first"
        )
    return model


class HessianOperator:
    """``v -> H v`` of ``loss_fn(model(x), y)`` over the trainable parameters, on their device.

    ``data`` is a batch ``(x, y)`` or an iterable of batches (the loss is then the mean over all
    samples, on every rank when ``torch.distributed`` is initialised). ``preconditioner`` (a
    positive vector ``P`` on the device) gives ``P^-1/2 H P^-1/2`` instead, whose eigenvalues are
    those of ``P^-1 H`` (Adam). ``.calls`` and ``.seconds`` count the products and their time.
    """

    def __init__(
        self, model: Any, loss_fn: Callable[..., Any], data: Any, preconditioner: Any = None
    ) -> None:
        torch = _torch()
        self.torch = torch
        self.model = _unwrap(model, torch)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise ConfigError("model has no trainable parameters")
        if any(p.device.type == "meta" for p in self.params):
            raise ConfigError(
                "model: its parameters are on the meta device (shapes without values); "
                "materialise it first (model.to_empty(device=...) and load the weights)"
            )
        dtypes = {p.dtype for p in self.params}
        if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
            raise ConfigError(
                f"parameters must share one floating dtype, got {sorted(map(str, dtypes))}"
            )
        self.dtype = next(iter(dtypes))
        self.work = torch.float32 if self.dtype in (torch.float16, torch.bfloat16) else self.dtype
        self.device = self.params[0].device
        self.sizes = [p.numel() for p in self.params]
        self.n = sum(self.sizes)
        self.loss_fn = loss_fn
        self.single = isinstance(data, tuple | list) and len(data) == 2
        self.batches = [data] if self.single else list(data)
        if not self.batches:
            raise ConfigError("data must be a batch (x, y) or a non-empty iterable of batches")
        self.world = distributed_world()
        count = sum(len(b[0]) for b in self.batches)
        self.total = self._sum(float(count))
        self.scale = None
        if preconditioner is not None:
            P = torch.as_tensor(preconditioner, device=self.device).to(self.work).reshape(-1)
            if P.numel() != self.n or not bool((P > 0).all()):
                raise ConfigError(f"preconditioner must be {self.n} positive numbers")
            self.scale = P.rsqrt()
        self._kept: list[Any] = []
        self._loss: float | None = None
        self.calls, self.seconds = 0, 0.0

    def _sum(self, x: float) -> float:
        """A number summed over the ranks (itself without ``torch.distributed``)."""
        if self.world is None:
            return x
        t = self.torch.tensor([x], dtype=self.torch.float64, device=self.device)
        self.world.all_reduce(t)
        return float(t.item())

    def _grads(self, x: Any, y: Any) -> Any:
        """The gradient with its graph; a parameter the loss does not use (a frozen branch,
        an unused head) gets ``None``, and so does every parameter of a loss that does not
        depend on them (a constant or zero loss): its Hessian rows are zero."""
        torch = self.torch
        with torch.enable_grad(), _differentiable_attention(torch):
            loss = _scalar_loss(self.loss_fn(self.model(x), y), torch) * (len(x) / self.total)
            if self.single:
                self._loss = float(loss.detach())
            if not loss.requires_grad:
                return [None] * len(self.params)
            return torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)

    def loss(self) -> float:
        """The loss on all the data (every rank's share), from the forward pass the products
        use (one batch: no second forward pass; several: one pass without a graph)."""
        torch = self.torch
        if self.single:
            if not self._kept:
                start = time.perf_counter()
                self._kept.append(self._grads(*self.batches[0]))
                self.seconds += time.perf_counter() - start
            value = self._loss
        else:
            with torch.no_grad():
                value = sum(
                    float(_scalar_loss(self.loss_fn(self.model(x), y), torch)) * len(x) / self.total
                    for x, y in self.batches
                )
        return self._sum(float(value))

    def __call__(self, v: Any) -> Any:
        torch = self.torch
        start = time.perf_counter()
        if self.scale is not None:
            v = v * self.scale
        parts = v.to(self.dtype).split(self.sizes)
        chunks = [c.view_as(p) for c, p in zip(parts, self.params, strict=True)]
        out = None
        for x, y in self.batches:
            if self.single and not self._kept:
                self._kept.append(self._grads(x, y))
            grads = self._kept[0] if self.single else self._grads(x, y)
            used = [
                (g, c, p)
                for g, c, p in zip(grads, chunks, self.params, strict=True)
                if g is not None and g.requires_grad
            ]
            hv: list[Any] = [None] * len(self.params)
            if used:
                with torch.enable_grad():
                    dot = sum((g * c).sum() for g, c, _ in used)
                    found = torch.autograd.grad(
                        dot, [p for *_, p in used], retain_graph=self.single, allow_unused=True
                    )
                where = {id(p): h for (*_, p), h in zip(used, found, strict=True)}
                hv = [where.get(id(p)) for p in self.params]
            flat = torch.cat(
                [
                    (h if h is not None else torch.zeros_like(p)).reshape(-1)
                    for h, p in zip(hv, self.params, strict=True)
                ]
            ).to(self.work)
            out = flat if out is None else out + flat
        if self.world is not None:
            self.world.all_reduce(out)
        if self.scale is not None:
            out = out * self.scale
        self.calls += 1
        self.seconds += time.perf_counter() - start
        return out

    def precision(self) -> str:
        """What the arithmetic allows: the products' dtype and the work dtype."""
        if self.dtype == self.work:
            return f"Hessian-vector products and Lanczos in {str(self.dtype).split('.')[-1]}"
        name = str(self.dtype).split(".")[-1]
        return (
            f"Hessian-vector products in {name} (unit roundoff "
            f"{_UNIT_ROUNDOFF.get(name, float('nan')):.1g}), accumulated and iterated in float32: "
            "eigenvalues carry a relative error of that order"
        )


def _differentiable_attention(torch: Any) -> Any:
    """A context in which ``scaled_dot_product_attention`` takes its plain (math) kernel: the
    fused CPU and GPU kernels have no double backward (``derivative for
    aten::_scaled_dot_product_flash_attention_for_cpu_backward is not implemented``) and no
    forward-mode derivative, which Hessian-vector and Jacobian-vector products need. The same
    numbers up to rounding; a no-op on torch without ``torch.nn.attention``."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3
        return contextlib.nullcontext()
    return sdpa_kernel(SDPBackend.MATH)


def _scalar_loss(loss: Any, torch: Any) -> Any:
    """The loss as a scalar tensor, or a refusal that names what is wrong (a loss built with
    ``reduction='none'`` returns one value per sample)."""
    if not isinstance(loss, torch.Tensor):
        raise ConfigError(f"loss_fn must return a torch tensor, got {describe(loss)}")
    if loss.numel() != 1:
        raise ConfigError(
            f"loss_fn must return a scalar (the mean loss over the batch), got a tensor of "
            f"shape {tuple(loss.shape)}: use reduction='mean' (torch's default), not "
            "reduction='none'"
        )
    if not loss.dtype.is_floating_point:
        raise ConfigError(f"loss_fn must return a floating-point scalar, got {loss.dtype}")
    return loss.reshape(())


def _start(op: HessianOperator, v0: Any, seed: int, rademacher: bool = False) -> Any:
    """A unit start vector on the device: ``v0``, or a seeded draw (the same on every rank)."""
    torch = op.torch
    if v0 is not None:
        q = torch.as_tensor(v0, device=op.device).to(op.work).reshape(-1).clone()  # ours
        if q.numel() != op.n:
            raise ConfigError(f"v0 must have n = {op.n} entries, got {q.numel()}")
        if not bool(torch.isfinite(q).all()) or float(torch.linalg.vector_norm(q)) == 0:
            raise ConfigError("v0 must be a finite, non-zero vector")
    else:
        gen = torch.Generator(device=op.device).manual_seed(int(seed))
        q = torch.empty(op.n, dtype=op.work, device=op.device)
        if rademacher:  # in place: one vector of memory
            q.bernoulli_(0.5, generator=gen).mul_(2).sub_(1)
        else:
            q.normal_(generator=gen)
    return q.div_(torch.linalg.vector_norm(q))


def _check_memory(vectors: int, op: HessianOperator, what: str) -> None:
    need = vectors * op.n * op.torch.finfo(op.work).bits // 8
    if need > LANCZOS_MEMORY:
        raise ConfigError(
            f"{what} needs {vectors} vectors of {op.n:,} parameters ({need / 2**30:.1f} GiB), "
            f"more than LANCZOS_MEMORY = {LANCZOS_MEMORY / 2**30:.0f} GiB: lower it"
        )


def _tridiagonal_eigh(alphas: list[float], betas: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of the Lanczos tridiagonal matrix (float64)."""
    m = len(alphas)
    T = np.zeros((m, m))
    T[np.arange(m), np.arange(m)] = alphas
    if m > 1:
        T[np.arange(m - 1), np.arange(1, m)] = betas
        T[np.arange(1, m), np.arange(m - 1)] = betas
    return np.linalg.eigh(T)


def _error_estimate(theta: np.ndarray, idx: np.ndarray, res: np.ndarray) -> np.ndarray:
    """A posteriori error of each wanted Ritz value: ``min(rho, rho^2 / gap)`` with ``rho`` the
    residual and ``gap`` the distance to the nearest other Ritz value (Kato-Temple; the
    residual alone bounds it, its square over the gap estimates it once converging)."""
    out = res.astype(float).copy()
    if theta.size < 2:
        return out  # no gap known: the residual alone
    for i, t in enumerate(idx):
        left = theta[t] - theta[t - 1] if t > 0 else np.inf
        right = theta[t + 1] - theta[t] if t + 1 < theta.size else np.inf
        gap = min(left, right)
        if gap > 0:
            out[i] = min(res[i], res[i] ** 2 / gap)
    return out


def _extrapolated(history: list[np.ndarray], k: int) -> np.ndarray:
    """The distance still to go of each wanted Ritz value, by geometric extrapolation of its
    last three steps (the extreme Ritz values of Lanczos rise monotonically and, once
    converging, geometrically: ``e_j ~ c r^j`` gives ``e_j ~ d_j r / (1 - r)`` from the steps
    ``d``); ``inf`` until three steps agree on a rate ``r < 0.9``."""
    out = np.full(k, np.inf)
    if len(history) < 4 or history[-4].size < k:
        return out[: history[-1].size]
    last = np.array([h[:k] for h in history[-4:]])
    d = np.diff(last, axis=0)  # three steps
    with np.errstate(divide="ignore", invalid="ignore"):
        r1, r2 = d[1] / d[0], d[2] / d[1]
        ok = (d > 0).all(axis=0) & (r1 > 0) & (r2 > 0) & (r2 < 0.9) & (np.abs(r2 - r1) < 0.3)
        est = d[2] * r2 / (1 - r2)
    out[ok] = est[ok]
    return out


WARM_MIX = 0.1
"""Weight of the fresh random direction mixed into a warm start (``v0 + WARM_MIX r``, ``r``
a seeded unit vector): a warm start alone has no component along an eigenvector that was
orthogonal to the previous one, and Lanczos cannot find what its start vector lacks."""

MIN_KRYLOV = 8
"""Least Krylov dimension before a stop on the error estimate (a warm start converges to
the old eigenvector in 2-3 products; the random component needs a few more to show a new,
larger one)."""


def lanczos_top(
    op: HessianOperator,
    k: int = 1,
    *,
    tol: float = 1e-6,
    maxiter: int | None = None,
    v0: Any = None,
    seed: int = 0,
) -> TopEigen:
    """The ``k`` largest eigenvalues of ``op`` by plain Lanczos, stopped when the estimated
    error of every wanted Ritz value, ``min(rho, rho^2 / gap)`` from its residual
    ``rho = |beta_m y_m|``, is at most ``tol`` times the value (relative accuracy of the
    eigenvalues), after at least :data:`MIN_KRYLOV` products. ``v0`` warm-starts it (a flat
    tensor, e.g. the previous top eigenvector), mixed with a seeded random direction
    (:data:`WARM_MIX`). An invariant subspace (the start vector lies in a few eigenvectors)
    does not end the iteration: it goes on from a random vector orthogonal to the basis, until
    the space is exhausted. ``.converged`` and ``.stop`` say which stop was used: a residual
    certifies that an eigenvalue lies within it of each value; that the values are the largest
    is what Lanczos from a random component finds with probability one, not a certificate.
    The vectors come back as a tensor ``(P, k)`` on the device; ``residuals`` are the Lanczos
    estimates ``rho``."""
    torch = op.torch
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < op.n:
        raise ConfigError(f"k must be an integer in [1, n - 1] = [1, {op.n - 1}], got {k!r}")
    tol = _tolerance(tol)
    if maxiter is not None:
        maxiter = _positive_int(maxiter, "maxiter", 10**5)
    m_max = min(op.n, maxiter if maxiter is not None else max(60, 20 * k))
    _check_memory(m_max + 1, op, "Lanczos")
    basis = torch.empty((m_max, op.n), dtype=op.work, device=op.device)
    q = _start(op, v0, seed)
    if v0 is not None:
        q.add_(_start(op, None, seed + 104729), alpha=WARM_MIX)
        q.div_(torch.linalg.vector_norm(q))
    alphas: list[float] = []
    betas: list[float] = []
    history: list[np.ndarray] = []  # the wanted Ritz values after each step
    theta = Y = idx = None
    b, err = 0.0, np.array([np.inf])
    stop, restarts, since = "", 0, 0
    min_steps = min(op.n, MIN_KRYLOV, m_max)
    for j in range(m_max):
        basis[j] = q
        w = op(q)
        a = float(torch.dot(w, q))
        alphas.append(a)
        V = basis[: j + 1]
        for _ in range(2):  # full re-orthogonalisation, twice (classical Gram-Schmidt)
            w.sub_(V.T @ (V @ w))
        b = float(torch.linalg.vector_norm(w))
        if not math.isfinite(b) or not math.isfinite(a):
            raise StabilityError("Hessian-vector products returned NaN or inf")
        theta, Y = _tridiagonal_eigh(alphas, betas)
        idx = np.arange(j, max(j - k, -1), -1)  # eigh sorts ascending: the largest last
        res = b * np.abs(Y[-1, idx])
        scale = max(np.abs(theta).max(), 1e-300)
        history.append(theta[idx])
        since += 1
        err = np.minimum(_error_estimate(theta, idx, res), _extrapolated(history, k))
        if j + 1 == op.n:
            stop = f"the Krylov space is the whole space ({op.n} products): exact"
            err = np.zeros_like(err)
            break
        small = err <= tol * np.maximum(np.abs(theta[idx]), 1e-12 * scale)
        if j + 1 >= max(k, min_steps) and since >= 2 and np.all(small):
            stop = f"estimated relative error <= tol = {tol:g} after {j + 1} products"
            break
        if b <= 1e-12 * scale:  # an invariant subspace: go on in its complement
            fresh = _start(op, None, seed + 7919 * (restarts + 1))
            for _ in range(2):
                fresh.sub_(V.T @ (V @ fresh))
            norm = float(torch.linalg.vector_norm(fresh))
            if norm <= 1e-6:
                stop = f"the Krylov space is exhausted after {j + 1} products: exact"
                err = np.zeros_like(err)
                break
            restarts, since = restarts + 1, 0
            betas.append(0.0)
            q = fresh.div_(norm)
            continue
        betas.append(b)
        q = w.div_(b)
    m = len(alphas)
    converged = bool(stop)
    notes = [op.precision()]
    if not converged:
        stop = (
            f"maxiter = {m_max} products reached with an estimated relative error of "
            f"{float(np.max(err / np.maximum(np.abs(theta[idx]), 1e-300))):.2g} (tol {tol:g})"
        )
        notes.append(f"NOT converged: {stop}; raise maxiter for an eigenvalue to trust")
    if restarts:
        notes.append(
            f"the start vector lay in an invariant subspace {restarts} time(s): the iteration "
            "went on from random vectors orthogonal to it"
        )
    Yk = torch.as_tensor(np.ascontiguousarray(Y[:, idx]), dtype=op.work, device=op.device)
    vectors = basis[:m].T @ Yk
    return TopEigen(
        np.asarray(theta[idx], dtype=float),
        vectors,
        np.asarray(b * np.abs(Y[-1, idx]), dtype=float),
        op.calls,
        tuple(notes),
        converged,
        stop,
    )


def slq(
    op: HessianOperator,
    *,
    probes: int = 8,
    steps: int = 64,
    seed: int = 0,
    window: int | None = None,
) -> Density:
    """Stochastic Lanczos quadrature on the device: ``probes`` Rademacher probes of ``steps``
    Lanczos steps. Full re-orthogonalisation when ``(steps + 6) P`` numbers fit
    :data:`LANCZOS_MEMORY` (or ``window=None``), else against the last ``window`` vectors
    (memory ``(window + 6) P`` numbers: the window, the current and previous vectors, the
    product and two temporaries; checked before allocating)."""
    torch = op.torch
    probes = _positive_int(probes, "probes", 10**4)
    steps = min(_positive_int(steps, "steps", 10**5), op.n)
    bytes_per = op.torch.finfo(op.work).bits // 8
    if window is None:
        fits = (steps + _SLQ_WORK) * op.n * bytes_per <= LANCZOS_MEMORY
        window = steps if fits else max(1, LANCZOS_MEMORY // (op.n * bytes_per) - _SLQ_WORK)
    window = min(_positive_int(window, "window", 10**5), steps)
    _check_memory(window + _SLQ_WORK, op, "SLQ")
    ring = torch.empty((window, op.n), dtype=op.work, device=op.device)
    nodes, weights = [], []
    for p in range(probes):
        q = _start(op, None, seed * 1_000_003 + p, rademacher=True)
        alphas: list[float] = []
        betas: list[float] = []
        prev, b_prev = None, 0.0
        for j in range(steps):
            ring[j % window] = q
            w = op(q)
            a = float(torch.dot(w, q))
            alphas.append(a)
            w.sub_(q, alpha=a)
            if prev is not None:
                w.sub_(prev, alpha=b_prev)
            kept = ring[: min(j + 1, window)]
            for _ in range(2):
                w.sub_(kept.T @ (kept @ w))
            b = float(torch.linalg.vector_norm(w))
            if j == steps - 1 or b <= 1e-12 * max(abs(a), 1e-300):
                break
            betas.append(b)
            prev, b_prev, q = q, b, w.div_(b)
        T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        theta, Y = np.linalg.eigh(T)
        nodes.append(theta)
        weights.append(Y[0] ** 2)
    w_all = np.concatenate(weights) * (op.n / probes)
    return Density(np.concatenate(nodes), w_all, op.n, probes, steps, op.calls)
