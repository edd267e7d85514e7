"""Lanczos and stochastic Lanczos quadrature for any symmetric operator given as a numpy
``matvec`` (docs §6.6): the framework-agnostic core under the torch helpers.

:func:`top_eigenvalues` is scipy's Lanczos (``scipy.sparse.linalg.eigsh``, ``which="LA"``: the
largest *algebraic* eigenvalues) and reports each residual ``||H v - theta v||``.
:func:`slq_density` is stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017; Ghorbani,
Krishnan & Xiao 2019): ``m`` Lanczos steps with full reorthogonalisation from random unit probes
give nodes and weights whose weighted sum over the nodes matches ``tr f(H)/n``; scaled by the
dimension it is a :class:`~stability.noise.Spectrum` that :func:`stability.check` and
:func:`stability.stability_sum` accept. That loop is written here because scipy exposes Lanczos
only through ARPACK's eigenpairs, not its tridiagonal matrix. A model on a GPU, or trained
data-parallel, goes through :mod:`stability.training.lanczos` instead (no host vectors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._values import real_array
from ..errors import ConfigError, StabilityError, describe
from ..noise.spectra import Spectrum

__all__ = [
    "SLQ_MEMORY",
    "SYMMETRY_RTOL",
    "Density",
    "TopEigen",
    "preconditioned",
    "slq_density",
    "top_eigenvalues",
]


_MatVec = Callable[[np.ndarray], np.ndarray]


class _Counted:
    """A matvec that checks its output and counts its calls (the cost of an estimate)."""

    def __init__(self, matvec: _MatVec, n: int) -> None:
        if not callable(matvec):
            raise ConfigError(f"matvec must be callable (vector -> vector), got {matvec!r}")
        self.matvec, self.n, self.calls = matvec, n, 0

    def __call__(self, v: np.ndarray) -> np.ndarray:
        self.calls += 1
        raw = np.asarray(self.matvec(np.asarray(v, dtype=float).reshape(self.n)))
        if raw.dtype.kind == "c":
            raise ConfigError(
                "matvec must return real numbers, got complex values: the analysis needs a "
                "real symmetric operator (a Hessian or Gauss-Newton matrix)"
            )
        if raw.dtype.kind not in "fiu":
            raise ConfigError(f"matvec must return numbers, got an array of dtype {raw.dtype}")
        out = raw.astype(float, copy=False)
        if out.shape != (self.n,):
            raise ConfigError(f"matvec must return a vector of length {self.n}, got {out.shape}")
        if not np.all(np.isfinite(out)):
            raise StabilityError("matvec returned NaN or inf (is the loss finite here?)")
        return out


SYMMETRY_RTOL = 1e-5
"""Relative asymmetry ``|x.Ay - y.Ax| / (|x||Ay| + |y||Ax|)`` above which an operator is
refused (float32 Hessian-vector products stay near 1e-7)."""


def _check_symmetric(op: _Counted, seed: int) -> None:
    """Three probe vectors, three pairs: a symmetric operator has ``x.Ay == y.Ax`` up to
    rounding. Lanczos on a non-symmetric one returns numbers that are no eigenvalues at all.
    One pair misses an asymmetry when ``x.(A - A^T)y`` happens to be tiny (a property test
    found a 15 x 15 matrix where it was 1e-5 of the size); the largest of three pairs does not."""
    rng = np.random.default_rng(seed + 7919)
    probes = [rng.standard_normal(op.n) for _ in range(3)]
    images = [op(v) for v in probes]
    worst, where = 0.0, 0.0
    for i, j in ((0, 1), (0, 2), (1, 2)):
        x, y, ax, ay = probes[i], probes[j], images[i], images[j]
        scale = np.linalg.norm(x) * np.linalg.norm(ay) + np.linalg.norm(y) * np.linalg.norm(ax)
        gap = abs(float(x @ ay - y @ ax))
        if scale > 0 and gap / scale > where:
            worst, where = gap, gap / scale
    if where > SYMMETRY_RTOL:
        raise ConfigError(
            f"matvec must be symmetric (a Hessian or Gauss-Newton matrix): x.Ay - y.Ax = "
            f"{worst:.3g} on random probes, {where:.2g} of their size"
        )


def _positive_int(value: Any, name: str, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {describe(value)}")
    if high is not None and value > high:
        raise ConfigError(f"{name} must be at most {high:,}, got {describe(value)}")
    return int(value)


def _tolerance(tol: Any) -> float:
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not (0 <= tol < 1):
        raise ConfigError(
            f"tol must be a number in [0, 1) (relative accuracy), got {describe(tol)}"
        )
    return float(tol)


def _dimension(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= 10**13:
        raise ConfigError(
            f"n must be a positive integer up to 1e13 (the number of parameters), got {describe(n)}"
        )
    return int(n)


@dataclass(frozen=True)
class TopEigen:
    """The largest eigenvalues (descending), their unit eigenvectors (columns: a numpy array
    here, a tensor on the model's device from :func:`stability.training.sharpness`), the
    residuals ``||H v - theta v||`` (Lanczos estimates on the torch path), the number of
    matrix-vector products used, and notes on the precision of the estimate."""

    values: np.ndarray
    vectors: Any
    residuals: np.ndarray
    matvecs: int
    notes: tuple[str, ...] = ()
    converged: bool = True
    stop: str = "scipy eigsh (ARPACK) converged to tol"

    @property
    def sharpness(self) -> float:
        """``lambda_max``: the largest eigenvalue."""
        return float(self.values[0])

    def __repr__(self) -> str:
        vals = ", ".join(f"{v:.6g}" for v in self.values[:5])
        more = f", ... ({self.values.size} in all)" if self.values.size > 5 else ""
        state = "converged" if self.converged else "NOT CONVERGED"
        return (
            f"TopEigen([{vals}{more}], {state}: {self.stop}; {self.matvecs} products, "
            f"largest residual {float(np.max(self.residuals)):.3g})"
        )


def top_eigenvalues(
    matvec: _MatVec,
    n: int,
    k: int = 1,
    *,
    tol: float = 1e-10,
    seed: int = 0,
    v0: Any = None,
    maxiter: int | None = None,
    check_symmetry: bool = True,
    residuals: bool = True,
) -> TopEigen:
    """The ``k`` largest (algebraic) eigenvalues of a symmetric operator by Lanczos.

    ``v0`` warm-starts the iteration (e.g. the previous top eigenvector during training).
    ``check_symmetry`` probes the operator with two products first (a non-symmetric one gives
    numbers that are no eigenvalues); a caller that has probed the same operator may skip it.
    ``residuals=False`` reports ARPACK's bound ``tol |value|`` instead of measuring each
    residual (``k`` products fewer).

    >>> H = np.diag([3.0, 1.0, -5.0, 0.5])
    >>> top = top_eigenvalues(lambda v: H @ v, 4, k=2)
    >>> np.round(top.values, 10).tolist(), bool(top.residuals.max() < 1e-8)
    ([3.0, 1.0], True)
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    n = _dimension(n)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < n:
        raise ConfigError(f"k must be an integer in [1, n - 1] = [1, {n - 1}], got {k!r}")
    tol = _tolerance(tol)
    if maxiter is not None:
        maxiter = _positive_int(maxiter, "maxiter", 10**7)
    op = _Counted(matvec, n)
    if check_symmetry:
        _check_symmetric(op, seed)
    if v0 is None:
        start = np.random.default_rng(seed).standard_normal(n)
    else:
        start = real_array(v0, "v0")
        if start.size != n:
            raise ConfigError(f"v0 must have n = {n} entries, got shape {start.shape}")
        start = start.reshape(n)
        if not np.any(start):
            raise ConfigError("v0 must not be the zero vector (Lanczos starts from its direction)")
    A = LinearOperator((n, n), matvec=op, dtype=float)
    try:
        vals, vecs = eigsh(A, k=k, which="LA", tol=tol, v0=start, maxiter=maxiter)
    except ArpackNoConvergence as exc:
        raise StabilityError(f"Lanczos did not converge: {exc}") from None
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    if not residuals:  # ARPACK's own stop: each residual at most tol |value| (k products saved)
        bound = np.maximum(tol, np.finfo(float).eps) * np.abs(vals)
        return TopEigen(vals, vecs, bound, op.calls, stop="ARPACK: residual <= tol |value|")
    res = np.array([np.linalg.norm(op(vecs[:, i]) - vals[i] * vecs[:, i]) for i in range(k)])
    return TopEigen(vals, vecs, res, op.calls)


@dataclass(frozen=True)
class Density:
    """A spectral density from stochastic Lanczos quadrature: ``nodes`` and ``weights``
    (summing to the dimension ``n``), the weight on negative curvature, and the cost."""

    nodes: np.ndarray
    weights: np.ndarray
    n: int
    probes: int
    steps: int
    matvecs: int

    def __repr__(self) -> str:
        if not self.nodes.size:
            return f"Density(no nodes, n={self.n})"
        neg, flat, pos = self.split()
        return (
            f"Density({self.nodes.size} nodes in [{self.nodes.min():.4g}, "
            f"{self.nodes.max():.4g}], n={self.n:,}, {self.probes} probes x {self.steps} steps, "
            f"{self.matvecs} products; {neg:.1%} clearly negative, {flat:.1%} flat, "
            f"{pos:.1%} positive)"
        )

    @property
    def negative_mass(self) -> float:
        """The fraction of the spectrum below zero, however close to it (nodes near 0 of
        either sign are mostly SLQ's resolution of a flat bulk: see :meth:`split`)."""
        return float(self.weights[self.nodes < 0].sum() / self.n)

    def split(self, rel: float = 1e-3) -> tuple[float, float, float]:
        """Fractions of the spectrum that are clearly negative (below ``-rel * top``), near
        zero (``|lambda| <= rel * top``, where SLQ cannot tell the sign of a flat bulk) and
        clearly positive, with ``top`` the largest ``|node|``."""
        top = float(np.abs(self.nodes).max()) if self.nodes.size else 0.0
        w = self.weights / self.n
        neg = float(w[self.nodes < -rel * top].sum())
        pos = float(w[self.nodes > rel * top].sum())
        return neg, float(w.sum()) - neg - pos, pos

    @property
    def spectrum(self) -> Spectrum:
        """The positive part as a weighted :class:`~stability.noise.Spectrum` (the linear
        analysis covers curvatures > 0; :attr:`negative_mass` says what is left out)."""
        keep = self.nodes > 0
        if not np.any(keep):
            raise StabilityError("the density has no positive curvature")
        neg, flat, _ = self.split()
        note = (
            f"spectrum estimated by stochastic Lanczos quadrature ({self.probes} probes x "
            f"{self.steps} steps): nodes and weights approximate the density; {neg:.1%} of it "
            f"is clearly negative curvature (outside the linear analysis), {flat:.1%} is within "
            "1e-3 of the top of zero (flat directions, either sign)"
        )
        return Spectrum.from_arrays(self.nodes[keep], self.weights[keep], notes=(note,))


SLQ_MEMORY = 2 * 2**30
"""Memory allowed for the Lanczos basis of :func:`slq_density` (bytes), checked before any
allocation."""


def slq_density(
    matvec: _MatVec, n: int, *, probes: int = 8, steps: int = 64, seed: int = 0
) -> Density:
    """Stochastic Lanczos quadrature with ``probes`` Rademacher probes and ``steps`` Lanczos
    steps each (full reorthogonalisation). The extreme nodes converge to the extreme
    eigenvalues; sums ``sum_j w_j f(theta_j)`` estimate ``tr f(H)``.

    >>> H = np.diag(np.linspace(1.0, 2.0, 200))
    >>> d = slq_density(lambda v: H @ v, 200, probes=4, steps=30)
    >>> round(float(d.weights.sum()), 6), round(float(d.nodes.max()), 3)
    (200.0, 2.0)
    """
    n = _dimension(n)
    probes = _positive_int(probes, "probes", 10_000)
    steps = _positive_int(steps, "steps")
    m = min(steps, n)
    need = 8 * m * n  # the Lanczos basis kept for full reorthogonalisation
    if need > SLQ_MEMORY:
        raise ConfigError(
            f"steps must be at most {SLQ_MEMORY // (8 * n):,} here: {m:,} Lanczos vectors "
            f"of {n:,} entries need {need / 2**30:.3g} GiB, more than the "
            f"{SLQ_MEMORY / 2**30:.0f} GiB allowed (SLQ_MEMORY)"
        )
    op = _Counted(matvec, n)
    _check_symmetric(op, seed)
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    for _ in range(probes):
        q = rng.choice([-1.0, 1.0], size=n) / np.sqrt(n)
        Q = np.zeros((m, n))
        alpha, beta = np.zeros(m), np.zeros(m)
        size = m
        for j in range(m):
            Q[j] = q
            w = op(q)
            alpha[j] = q @ w
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)  # full reorthogonalisation (twice is enough)
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
            b = np.linalg.norm(w)
            if j + 1 < m:
                if b < 1e-12 * max(1.0, abs(alpha[j])):  # an invariant subspace: exact
                    size = j + 1
                    break
                beta[j] = b
                q = w / b
        T = np.diag(alpha[:size]) + np.diag(beta[: size - 1], 1) + np.diag(beta[: size - 1], -1)
        theta, Y = np.linalg.eigh(T)
        nodes.append(theta)
        weights.append(Y[0] ** 2)
    node_arr = np.concatenate(nodes)
    weight_arr = np.concatenate(weights) * n / probes
    return Density(node_arr, weight_arr, n, probes, m, op.calls)


def preconditioned(matvec: _MatVec, P: Any) -> _MatVec:
    """``v -> P^-1/2 H P^-1/2 v`` for a positive diagonal preconditioner ``P`` (a vector):
    symmetric, with the eigenvalues of ``P^-1 H`` (the curvature Adam sees)."""
    p = real_array(P, "P", low=0, low_open=True).ravel()
    scale = 1 / np.sqrt(p)

    def op(v: np.ndarray) -> np.ndarray:
        return scale * matvec(scale * v)

    return op


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised without the extra
        raise ConfigError(
            "the torch helpers need torch: pip install 'sgd-stability[torch]'"
        ) from None
    return torch


def _quiet_jvp_import() -> None:
    """torch 2.13 registers its forward-mode (``jvp``) decompositions through the deprecated
    ``torch.jit.script`` the first time ``torch.func.jvp`` runs, and warns about its own call
    once per process. Import that module here under a filter for exactly that message, so
    users of the GGN products do not see torch's internal deprecation."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning
        )
        try:
            import torch._decomp.decompositions_for_jvp  # noqa: F401
        except ImportError:  # other torch versions: nothing to quiet
            pass
