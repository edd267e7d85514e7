"""Mini-batch stability from the data itself: the exact mean-square condition built from the
per-sample curvature (docs §4.4).

The Gaussian (SE) noise model describes Gaussian features; real data is heavy-tailed, and a
few rare samples with large curvature set the limit. Near a minimum the per-sample losses are
quadratic with Hessians ``H_i`` (``H = E_i H_i``), and a batch of ``B`` samples has
``E[(H_B - H) W (H_B - H)] = kappa_B (E_i[H_i W H_i] - H W H)`` for any ``W``, with
``kappa_B = 1/B`` (batches drawn with replacement) or ``(n - B)/(B (n - 1))`` (without).

A memory-M algorithm feeds the gradient into its state through ``v`` and reads it at ``r``
(``S_mu = S_0 + mu v r^T`` at the curvature ``mu = lambda + shift`` its dynamics see). The
batch fluctuation ``(H_B - H) y_t`` is a white input; at a curvature pair ``(lambda_k,
lambda_l)`` of the eigenbasis of ``H`` its effect on the gradient point ``y`` is summed by the
*response matrix* ``R_kl = sum_{s >= 1} phi_s(k) phi_s(l)``, ``phi_s(k) = r^T S_k^(s-1) v``,
here the solution of a small Stein equation per pair (from the algorithm's own update matrix;
no formula typed per method). The stationary second moment of ``y`` is ``R o Q`` (Hadamard
product) for an input covariance ``Q``, which in turn produces the input covariance

    N(Q) = kappa_B ( E_i[H_i (R o Q) H_i] - H (R o Q) H ).

The second moments stay bounded iff the noiseless dynamics are strictly stable and the
spectral radius ``rho`` of ``N`` is below 1 (the renewal argument of docs §4). ``N`` maps
positive semi-definite matrices to positive semi-definite ones, so ``rho`` is an eigenvalue
with a PSD eigenmatrix (Krein-Rutman), and every PD matrix ``Q`` certifies
``lambda_min(Q^-1/2 N(Q) Q^-1/2) <= rho <= lambda_max(Q^-1/2 N(Q) Q^-1/2)`` (Collatz-Wielandt).
The estimate comes from a restarted Arnoldi iteration on the symmetric matrices, and the
bounds from its Ritz matrix made PD (in Jacobi-scaled coordinates); the iteration stops when the
bounds meet the tolerance or, for a verdict, as soon as they are both on one side of 1. The
per-sample curvature itself is :class:`~stability.noise.persample.PerSampleCurvature`.

For Gaussian features ``N`` reduces to the rank-one-plus-diagonal map whose threshold is the
package's ``U < 1`` (the values differ away from 1: ``rho`` and ``U`` are different functions
with the same level set). Cost: one application of ``N`` is ``O(n k r^2 + n k^2 r)`` for ``n``
samples whose per-sample Hessians ``H_i = F_i^T F_i`` have ``k``-row factors in an
``r``-dimensional space (``k = 1`` for a linear model, ``O(r^2)`` memory), plus the response
matrix once per algorithm (``r^2`` Stein equations of size ``(M+1)^2``); nothing of size
``r^4`` is ever formed. Written here rather than with scipy's ARPACK (an optional extra):
the certificate needs the cone structure and the Ritz matrix, and the iteration is a few
dozen lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._threads import limited
from .._values import real_array
from ..algorithms import MemoryAlgorithm, update_matrices
from ..errors import ConfigError, StabilityError, describe
from ..regions.verdicts import is_strictly_stable
from .persample import SAMPLING, PerSampleCurvature, batch_factor
from .sums import _check_shift

__all__ = [
    "CHECK_APPLICATIONS",
    "WORK_LIMIT",
    "DataNoise",
    "DataNoiseResult",
    "NumericAlgorithm",
    "application_flops",
    "check_work",
    "gaussian_radius",
    "mean_square_radius",
    "response_matrix",
]


WORK_LIMIT = 1e12
"""Floating-point operations :func:`stability.check` may spend on the data model (estimated
before it starts, :func:`application_flops` times :data:`CHECK_APPLICATIONS`); larger problems
are refused with what to do (truncate to the top directions, or raise this limit)."""

CHECK_APPLICATIONS = 100
"""Applications of the noise operator a check is budgeted for (the verdict, the largest stable
learning rate, the critical batch size and the Gaussian comparison)."""


def application_flops(data: PerSampleCurvature) -> float:
    """Floating-point operations of one application of ``N``: ``4 n k r^2 + 4 n k^2 r`` (the
    products ``F_i W`` and their sum ``F_i^T G_i F_i`` over the ``n`` samples)."""
    n, k, r = data.factors.shape
    return 4.0 * n * k * r * r + 4.0 * n * k * k * r


def check_work(data: PerSampleCurvature) -> None:
    """Refuse, before any work, a data model whose check would exceed :data:`WORK_LIMIT`."""
    work = application_flops(data) * CHECK_APPLICATIONS
    if work <= WORK_LIMIT:
        return
    r = data.dim
    fit = int(math.sqrt(WORK_LIMIT / CHECK_APPLICATIONS / (4.0 * data.n * data.factors.shape[1])))
    fit = max(1, min(r - 1, fit))
    raise ConfigError(
        f"data: the exact mean-square check on {r} directions x {data.n} samples costs about "
        f"{work:.1g} floating-point operations ({CHECK_APPLICATIONS} applications of "
        f"{application_flops(data):.2g}), more than stability.noise.data.WORK_LIMIT = "
        f"{WORK_LIMIT:.0e}: pass data=curvature.truncated({fit}) with curvature = "
        "PerSampleCurvature.from_features(X, Y) or per_sample_ggn(...) "
        "(the top directions of H; the verdict then concerns them), or raise the limit"
    )


_CERT_RTOL = 1e-9
"""Least float rounding allowance of the certified bounds (relative); it grows with the
dimension and the conditioning of the certificate (``32 eps r cond``)."""


@dataclass(frozen=True)
class DataNoise:
    """The data noise model: per-sample curvature and how batches are drawn. Where a noise
    model is asked for (searches, :func:`stability.check`), this one replaces the Gaussian
    (SE) model with the exact mean-square condition."""

    data: PerSampleCurvature
    sampling: str = "with_replacement"
    name: str = "data"
    _memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.data, PerSampleCurvature):
            raise ConfigError(f"data must be a PerSampleCurvature, got {describe(self.data)}")
        if self.sampling not in SAMPLING:
            raise ConfigError(
                f"sampling must be one of {list(SAMPLING)}, got {describe(self.sampling)}"
            )

    def radius(
        self,
        alg: MemoryAlgorithm,
        batch_size: Any,
        *,
        shift: Any = 0,
        rtol: float = 1e-6,
        decide: bool = False,
        **kw: Any,
    ) -> DataNoiseResult:
        """:func:`mean_square_radius` of this data, remembered per algorithm and shift: ``N``
        scales with the batch factor, ``rho(B) = kappa_B rho_1``, so the bounds found at one
        batch size answer every other one (scaled) when they decide it or are tight enough,
        and the response matrix is computed once per algorithm. Each iteration starts from the
        eigenmatrix of the previous one (a search moves the learning rate a little at a time)."""
        kappa = batch_factor(batch_size, self.data.n, self.sampling)
        key = (alg, float(_check_shift(shift)[0]))
        unit, R = self._memo.get(key, (None, None))
        if unit is not None and kappa > 0:
            scaled = _scaled(unit, kappa, float(batch_size), self.sampling)
            tight = scaled.upper - scaled.lower <= rtol * scaled.upper
            if not scaled.strict or tight or (decide and scaled.decided):
                return scaled
        warm = ("warm", self.sampling)
        kw.setdefault("start", self._memo.get(warm))
        res = mean_square_radius(
            alg, self.data, batch_size, sampling=self.sampling, shift=shift, rtol=rtol,
            decide=decide, response=R, **kw,
        )  # fmt: skip
        if res._eigenmatrix is not None:
            self._memo[warm] = res._eigenmatrix  # the start at the next learning rate
        if res.kappa > 0:
            if len(self._memo) > 512:
                self._memo.clear()
            old = unit
            if (
                old is None
                or res.upper / res.kappa - res.lower / res.kappa <= old.upper - old.lower
            ):
                old = _scaled(res, 1.0 / res.kappa, 1.0, res.sampling, unit=True)
            self._memo[key] = (old, R if R is not None else res._response)
        return res

    def critical_batch_size(self, alg: MemoryAlgorithm, shift: Any = 0) -> float:
        """Smallest integer batch size with a certified ``rho < 1``: ``N`` scales with
        ``kappa_B``, so ``rho(B) = kappa_B rho_1`` and one certified ``rho_1`` (at
        ``kappa = 1``) decides every ``B`` (``inf`` if the noiseless dynamics are unstable,
        or no batch smaller than the data set suffices)."""
        for rtol in (1e-4, 1e-7, 1e-10):  # tighter only while the bounds straddle an integer
            one = mean_square_radius(alg, self.data, 1, shift=shift, rtol=rtol)
            if not one.strict:
                return math.inf
            if not math.isfinite(one.upper):
                return math.inf  # the response could not be computed in floats: undecided
            found = self._smallest(one.upper)
            if found == self._smallest(max(one.lower, 1e-300)):
                break
        return found

    def _smallest(self, u: float) -> float:
        """The smallest integer batch with ``kappa_B u < 1``."""
        n = self.data.n
        if u < 1:
            return 1.0
        if self.sampling == "with_replacement":
            return float(math.floor(u) + 1)
        b = math.floor(n * u / (n - 1 + u)) + 1  # (n - B)/(B (n - 1)) u < 1
        return float(b) if b <= n else math.inf


# ---------------------------------------------------------------------------------------
# The response matrix
# ---------------------------------------------------------------------------------------
_PAIRS = 1 << 16  # curvature pairs per batched solve


def response_matrix(alg: MemoryAlgorithm, lam: Any, shift: float = 0.0) -> np.ndarray:
    """``R_kl = sum_{s >= 1} (r^T S_k^(s-1) v)(r^T S_l^(s-1) v) = r^T X_kl r`` with
    ``X_kl = S_k X_kl S_l^T + v v^T`` (``S_k`` the update matrix at ``lam[k] + shift``), one
    ``(M+1)^2`` Stein equation per pair, batched. Every ``S_k`` must be strictly stable.

    >>> from stability import gd
    >>> float(response_matrix(gd(0.5), [1.0])[0, 0])     # 0.25 (1 + 0.25 + ...) = 1/3
    0.3333333333333333
    """
    mu = real_array(lam, "lam", low=0).ravel() + shift
    n = alg.M + 1
    _, v, r = alg.numeric_system()
    mats = alg.update_matrices(mu)
    d = mu.size
    out = np.empty((d, d))
    rhs = np.outer(v, v).reshape(n * n)
    rr = np.outer(r, r).reshape(n * n)
    eye = np.eye(n * n)
    rows = max(1, _PAIRS // max(d, 1))
    for k0 in range(0, d, rows):
        Sk = mats[k0 : k0 + rows]
        # (I - S_k (x) S_l) vec X = vec(v v^T), vec in C order: X[a, b] at a n + b
        K = np.einsum("kab,lcd->klacbd", Sk, mats).reshape(Sk.shape[0], d, n * n, n * n)
        with np.errstate(invalid="ignore", over="ignore"):  # singular pairs: inf, said so
            out[k0 : k0 + rows] = _stein(eye - K, rhs) @ rr
    return (out + out.T) / 2


def _stein(A: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``A x = rhs`` for a batch of ``(I - S_k (x) S_l)``; a pair that is singular in
    floats (a curvature at the noiseless edge to rounding) gets ``inf``."""
    b = np.broadcast_to(rhs, (*A.shape[:-2], rhs.size))[..., None]
    try:
        return np.linalg.solve(A, b)[..., 0]
    except np.linalg.LinAlgError:
        out = np.empty(A.shape[:-1])
        for idx in np.ndindex(*A.shape[:-2]):
            try:
                out[idx] = np.linalg.solve(A[idx], rhs)
            except np.linalg.LinAlgError:
                out[idx] = np.inf
        return out


# ---------------------------------------------------------------------------------------
# The spectral radius of N
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataNoiseResult:
    """The mean-square verdict from the data: ``rho`` of the noise operator ``N`` with
    certified bounds ``lower <= rho <= upper`` (widened by a float rounding allowance, at least
    1e-9 relative),
    at batch size ``batch_size`` drawn ``sampling`` (``kappa`` the batch factor).
    ``stable``: the noiseless dynamics are strictly stable and ``upper < 1``; ``decided``:
    the bounds are on one side of 1 (otherwise the verdict is not stable, and says so)."""

    rho: float
    lower: float
    upper: float
    batch_size: float
    sampling: str
    kappa: float
    strict: bool
    decided: bool
    matvecs: int
    reason: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    _response: Any = field(default=None, compare=False, repr=False)
    _eigenmatrix: Any = field(default=None, compare=False, repr=False)

    @property
    def stable(self) -> bool:
        return self.strict and self.upper < 1

    def __bool__(self) -> bool:
        return self.stable

    def __str__(self) -> str:
        state = "bounded" if self.stable else ("UNDECIDED" if not self.decided else "DIVERGES")
        return (
            f"rho = {self.rho:.6g} (certified {self.lower:.6g} <= rho <= {self.upper:.6g}) at "
            f"B = {self.batch_size:g} ({self.sampling.replace('_', ' ')}): {state} — "
            f"{self.reason}"
        )

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | str:
            return x if math.isfinite(x) else "inf"

        return {
            "rho": num(self.rho),
            "lower": num(self.lower),
            "upper": num(self.upper),
            "stable": self.stable,
            "decided": self.decided,
            "batch_size": self.batch_size,
            "sampling": self.sampling,
            "kappa": self.kappa,
            "matvecs": self.matvecs,
            "reason": self.reason,
            "notes": list(self.notes),
        }


class _Operator:
    """``Q -> N(Q)`` per unit batch factor (``kappa = 1``), counting its applications."""

    def __init__(self, data: PerSampleCurvature, R: np.ndarray) -> None:
        self.data, self.R, self.lam, self.calls = data, R, data.eigenvalues, 0

    def __call__(self, Q: np.ndarray) -> np.ndarray:
        self.calls += 1
        W = self.R * Q
        out = self.data.fourth_moment(W) - self.lam[:, None] * W * self.lam[None, :]
        return (out + out.T) / 2


def _bounds(op: _Operator, Q: np.ndarray) -> tuple[float, float, float]:
    """Collatz-Wielandt bounds on ``rho`` (per unit kappa) from a symmetric ``Q`` made PD.

    The eigenmatrix spans many orders of magnitude (its entries scale with the curvatures), so
    the bounds are computed in Jacobi-scaled coordinates ``Q = D Qs D`` (``Qs`` has a unit
    diagonal): ``Qs`` is made PD there, and ``Qs^-1/2 D^-1 N(Q) D^-1 Qs^-1/2`` keeps the
    rounding of ``N(Q)`` at the size of its entries. Also returns the condition number of the
    PD ``Qs``, which scales the rounding allowance."""
    Q = (Q + Q.T) / 2
    if np.trace(Q) < 0:
        Q = -Q
    diag = np.diag(Q)
    dg = np.sqrt(np.maximum(diag, 1e-12 * max(float(diag.max()), 1e-300)))
    w, V = np.linalg.eigh(Q / dg[:, None] / dg[None, :])
    w = np.maximum(w, 1e-8 * w.max())  # PD: both bounds then hold
    Qs = (V * w) @ V.T
    NQ = op(Qs * dg[:, None] * dg[None, :])
    half = V / np.sqrt(w)  # Qs^-1/2 = V diag(w^-1/2) V^T
    M = half.T @ (NQ / dg[:, None] / dg[None, :]) @ half
    ev = np.linalg.eigvalsh((M + M.T) / 2)
    return max(float(ev[0]), 0.0), float(ev[-1]), float(w.max() / w.min())


def _arnoldi(
    op: _Operator, start: np.ndarray, steps: int, tol: float = 0.0, least: int = 4
) -> tuple[float, np.ndarray, bool]:
    """A Krylov space of at most ``steps`` applications from ``start``: the Ritz value of
    largest real part (the Perron root of a positive map), its Ritz matrix, and whether it
    converged: stops early, after at least ``least`` applications, when the Ritz residual
    ``|h_{j+1,j} y_j|`` is below ``tol`` times the Ritz value (or the space is invariant)."""
    d = start.shape[0]
    basis = [start / np.linalg.norm(start)]
    Hm = np.zeros((steps + 1, steps))
    m, converged = steps, False
    for j in range(steps):
        w = op(basis[j])
        for _ in range(2):  # twice: enough for orthogonality in floats
            for i, b in enumerate(basis):
                c = float(np.vdot(b, w))
                Hm[i, j] += c
                w = w - c * b
        h = float(np.linalg.norm(w))
        Hm[j + 1, j] = h
        if h < 1e-14 * max(1.0, abs(Hm[j, j])):
            m, converged = j + 1, True
            break
        basis.append(w / h)
        if tol > 0 and j + 1 >= least:
            theta, Y = np.linalg.eig(Hm[: j + 1, : j + 1])
            i = int(np.argmax(theta.real))
            y = Y[:, i] / np.linalg.norm(Y[:, i])
            if abs(h * y[-1]) <= tol * abs(theta[i].real):
                m, converged = j + 1, True
                break
    theta, Y = np.linalg.eig(Hm[:m, :m])
    i = int(np.argmax(theta.real))
    y = Y[:, i].real
    Q = sum(c * b for c, b in zip(y, basis[:m], strict=False))
    Q = (Q + Q.T) / 2
    if np.trace(Q) < 0:
        Q = -Q
    return float(theta[i].real), Q.reshape(d, d), converged


def mean_square_radius(
    alg: MemoryAlgorithm,
    data: PerSampleCurvature,
    batch_size: Any,
    *,
    sampling: str = "with_replacement",
    shift: Any = 0,
    rtol: float = 1e-6,
    decide: bool = False,
    max_matvecs: int = 400,
    response: np.ndarray | None = None,
    start: np.ndarray | None = None,
    value: bool = False,
) -> DataNoiseResult:
    """``rho`` of the data noise operator ``N`` (module docstring) with certified bounds.

    ``shift`` is a curvature shift of the dynamics (weight decay), the noise keeps the data's
    curvature. The iteration stops when the bounds are within ``rtol`` of each other, or with
    ``decide=True`` as soon as they are both on one side of 1. ``response`` passes a response
    matrix already computed for this algorithm, data and shift.

    >>> from stability import gd
    >>> data = PerSampleCurvature.from_features([[1.0], [3.0]], bias=False)
    >>> r = mean_square_radius(gd(0.1), data, 1)
    >>> round(r.rho, 6), r.stable
    (0.64, True)
    """
    if not isinstance(data, PerSampleCurvature):
        raise ConfigError(
            f"data must be a PerSampleCurvature (from_features, or per_sample_ggn), got "
            f"{describe(data)}"
        )
    kappa = batch_factor(batch_size, data.n, sampling)
    B = float(batch_size)
    omega, omega_x = _check_shift(shift)
    lam = data.eigenvalues
    strict = _strict(alg, lam, omega, omega_x)
    notes = list(data.notes)
    if not strict.stable:
        reason = f"noiseless S_lambda is not strictly stable ({strict.reason})"
        return DataNoiseResult(
            math.inf, math.inf, math.inf, B, sampling, kappa, False, True, 0, reason, tuple(notes)
        )
    if kappa == 0:
        reason = "every batch is the whole data set: no mini-batch noise"
        return DataNoiseResult(0.0, 0.0, 0.0, B, sampling, 0.0, True, True, 0, reason, tuple(notes))
    R = response if response is not None else response_matrix(alg, lam, omega)
    if not np.all(np.isfinite(R)):
        reason = (
            "a curvature sits at the noiseless stability edge to float precision: its response "
            "to noise cannot be computed; reported as not stable"
        )
        return DataNoiseResult(
            math.inf, 0.0, math.inf, B, sampling, kappa, True, False, 0, reason, tuple(notes)
        )
    op = _Operator(data, R)
    try:
        with np.errstate(all="ignore"), limited(application_flops(data)):
            rho, lower, upper, eigenmatrix = _iterate(
                op, kappa, rtol, decide, max_matvecs, _start(start, lam.size), value
            )
    except np.linalg.LinAlgError:
        rho = lower = upper = math.nan
        eigenmatrix = None
    if not (math.isfinite(lower) and math.isfinite(rho)) or math.isnan(upper):
        reason = (
            "the noise operator overflowed in float64 (a curvature at the noiseless stability "
            "edge to float precision, e.g. momentum within 1e-16 of 1): reported as not stable"
        )
        return DataNoiseResult(
            math.inf, 0.0, math.inf, B, sampling, kappa, True, False, op.calls, reason,
            tuple(notes),
        )  # fmt: skip
    # N is a positive map, so rho >= 0; rounding of an operator that is zero up to the last
    # bits (every sample's curvature the same: no noise) gives a tiny negative Ritz value. The
    # upper bound is then the size of that rounding, never below zero.
    floor = _rounding_floor(data, R, kappa)
    rho, lower, upper = max(rho, 0.0), max(lower, 0.0), max(upper, floor)
    decided, reason = _decision(lower, upper)
    if op.calls >= max_matvecs and not (upper - lower <= 2 * rtol * upper or decided):
        notes.append(f"the iteration stopped after {op.calls} applications of N")
    return DataNoiseResult(
        rho, lower, upper, B, sampling, kappa, True, decided, op.calls, reason, tuple(notes), R,
        eigenmatrix,
    )  # fmt: skip


def _start(start: Any, d: int) -> np.ndarray | None:
    """A usable warm start: a finite symmetric ``d x d`` matrix with a positive trace."""
    if start is None:
        return None
    Q = np.asarray(start, dtype=float)
    if Q.shape != (d, d) or not np.all(np.isfinite(Q)):
        return None
    Q = (Q + Q.T) / 2
    return Q if np.trace(Q) > 0 else None


class NumericAlgorithm:
    """A memory-M algorithm as its float system ``(S_0, v, r)`` only (``S_lambda = S_0 +
    lambda v r^T``): what the data model computes with, without the sympy construction of a
    :class:`~stability.MemoryAlgorithm` (a search builds one per learning rate). ``build()``
    gives the full algorithm when an exact verdict is needed."""

    def __init__(self, S0: np.ndarray, v: np.ndarray, r: np.ndarray, build: Any) -> None:
        self._sys = (np.asarray(S0, float), np.asarray(v, float), np.asarray(r, float))
        self.M = self._sys[0].shape[0] - 1
        self._build, self._full = build, None
        self._key = b"".join(a.tobytes() for a in self._sys)

    def numeric_system(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(a.copy() for a in self._sys)  # type: ignore[return-value]

    def update_matrices(self, lam: Any) -> np.ndarray:
        return update_matrices(*self._sys, lam)

    def build(self) -> MemoryAlgorithm:
        if self._full is None:
            self._full = self._build()
        return self._full

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NumericAlgorithm) and other._key == self._key


@dataclass(frozen=True)
class _Strict:
    stable: bool
    reason: str


def _strict(alg: MemoryAlgorithm, lam: np.ndarray, omega: float, omega_x: Any) -> Any:
    """Strict stability of ``S_lambda`` at every eigenvalue, decided in floats where that is
    clear of rounding and exactly (:func:`~stability.regions.is_strictly_stable`, a sympy
    computation) at the eigenvalues where it is not. For 2 x 2 matrices (memory 1) the float
    test is Jury's, ``|det| < 1`` and ``|tr| < 1 + det``, whose margins are polynomials in the
    entries (rounding ``16 eps (1 + |S|)^2``): heavy ball at a curvature near 0 has a radius
    within ``lr lambda`` of 1 but a margin ``1 + det - tr = lr lambda`` far above rounding.
    Otherwise the spectral radius, clear of 1 by more than the eigenvalues' rounding
    (``10 (eps |S|)^(1/m)`` for ``m x m``: a defective eigenvalue moves by the m-th root of a
    perturbation)."""
    S = alg.update_matrices(lam + omega)
    m = S.shape[-1]
    if S.size == 0:
        return _Strict(True, "no curvature")
    eps = np.finfo(float).eps
    with np.errstate(all="ignore"):
        size = float(np.abs(S).max())
        if m == 2:
            det = S[:, 0, 0] * S[:, 1, 1] - S[:, 0, 1] * S[:, 1, 0]
            tr = S[:, 0, 0] + S[:, 1, 1]
            slack = 16 * eps * (1 + size) ** 2
            low = np.minimum(1 - np.abs(det), 1 + det - np.abs(tr))
            clear, above = low > slack, low < -slack
            what = f"Jury margins >= {float(np.min(low)):.3g}"
        else:
            radii = np.abs(np.linalg.eigvals(S)).max(axis=-1)
            margin = 10 * (eps * max(size, 1.0)) ** (1 / m)
            clear, above = radii < 1 - margin, radii > 1 + margin
            what = f"spectral radius {float(np.max(radii)):.6g} < 1"
    if clear.all():
        return _Strict(True, f"{what} (floats, clear of rounding)")
    if above.any():
        bad = float(lam[np.argmax(above)])
        return _Strict(False, f"not strictly stable at curvature {bad:.6g} (floats)")
    if isinstance(alg, NumericAlgorithm):
        alg = alg.build()
    return is_strictly_stable(alg, lam[~clear], shift=omega_x)


def _scaled(
    res: DataNoiseResult, factor: float, B: float, sampling: str, unit: bool = False
) -> DataNoiseResult:
    """``res`` with ``N`` scaled by ``factor`` (another batch factor): ``rho`` and its bounds
    scale exactly (``N`` is linear in ``kappa``), the verdict follows from them."""
    if not res.strict:
        return replace(res, batch_size=B, kappa=1.0 if unit else res.kappa * factor)
    rho, lower, upper = res.rho * factor, res.lower * factor, res.upper * factor
    kappa = 1.0 if unit else res.kappa * factor
    decided, reason = _decision(lower, upper)
    return DataNoiseResult(
        rho, lower, upper, B, sampling, kappa, True, decided, 0, reason, res.notes, res._response,
        res._eigenmatrix,
    )  # fmt: skip


def _decision(lower: float, upper: float) -> tuple[bool, str]:
    """Whether the certified bounds decide ``rho < 1``, and the verdict in words."""
    if upper < 1:
        return True, "rho < 1: the mini-batch noise stays bounded (exact mean-square condition)"
    if lower > 1:
        return True, "rho > 1: the second moments grow under mini-batch noise"
    return False, "rho within its certified bounds of 1: reported as not stable"


def _rounding_floor(data: PerSampleCurvature, R: np.ndarray, kappa: float) -> float:
    """An absolute rounding allowance of ``rho``: ``64 eps r`` times the size of ``kappa N``
    (``kappa max|R| max_i lambda_max(H_i)^2``), below which a computed radius is zero."""
    size = kappa * float(np.max(np.abs(R))) * float(data.sample_curvatures().max()) ** 2
    return 64 * np.finfo(float).eps * data.dim * size


def _iterate(
    op: _Operator,
    kappa: float,
    rtol: float,
    decide: bool,
    max_matvecs: int,
    start: np.ndarray | None = None,
    value: bool = False,
) -> tuple[float, float, float, np.ndarray]:
    """``(rho, lower, upper, Q)`` of ``kappa N`` and its eigenmatrix ``Q``: restarted Arnoldi
    from ``start`` or the diagonal closure, certified bounds after each restart, widened at the
    end by the rounding allowance. A warm start lets the first Krylov space stop on its Ritz
    residual after one application instead of four. With ``decide`` and ``value``, a decided
    verdict also waits for the Ritz value to converge (to ``rtol/10`` residual)."""
    if start is not None:
        found = _iterate_from(op, kappa, rtol, decide, max_matvecs, start, value)
        _, lower, upper, _ = found
        if upper - lower <= 2 * rtol * upper or upper < 1 or lower > 1:
            return found
        # a warm start that leaves the bounds apart and undecided (a degenerate top eigenvalue:
        # the previous eigenmatrix can sit in an indefinite combination) starts again cold
        max_matvecs += op.calls
    return _iterate_from(op, kappa, rtol, decide, max_matvecs, None, value)


def _iterate_from(
    op: _Operator,
    kappa: float,
    rtol: float,
    decide: bool,
    max_matvecs: int,
    start: np.ndarray | None,
    value: bool,
) -> tuple[float, float, float, np.ndarray]:
    """:func:`_iterate` from one start (``None``: the diagonal closure)."""
    R, d = op.R, op.lam.size
    warm = start is not None
    Q = start if warm else np.diag(1.0 / np.maximum(np.diag(R), 1e-300))  # near the closure
    lower, upper, rho, allowance = 0.0, math.inf, math.nan, _CERT_RTOL
    steps = min(24, d * (d + 1) // 2)
    stalled = 0
    while op.calls < max_matvecs:
        before = op.calls
        theta, Q, converged = _arnoldi(op, Q, steps, tol=rtol / 10, least=1 if warm else 4)
        warm = False
        lo, hi, cond = _bounds(op, Q)
        allowance = max(allowance, 32 * np.finfo(float).eps * d * cond)
        lower, upper = max(lower, kappa * lo), min(upper, kappa * hi)
        rho = min(max(kappa * theta, lower), upper)
        if upper - lower <= rtol * upper:
            break
        decided = upper * (1 + allowance) < 1 or lower * (1 - allowance) > 1
        if decide and decided and (converged or not value):
            break
        stalled = stalled + 1 if op.calls - before <= 2 else 0  # the Krylov space is exhausted
        if stalled >= 2:
            break
    return rho, lower * (1 - allowance), upper * (1 + allowance), Q


def gaussian_radius(lam: np.ndarray, R_diag: np.ndarray, kappa: float) -> float:
    """``rho`` of the Gaussian-feature operator, the rank-one-plus-diagonal map
    ``q -> kappa (lambda (lambda o s)^T q + diag(lambda^2 s) q)`` (``s`` the diagonal of the
    response matrix): the data model's value for Gaussian data with the same ``H``."""
    A = kappa * (np.outer(lam, lam * R_diag) + np.diag(lam**2 * R_diag))
    if A.shape[0] > 4000:
        raise StabilityError("the Gaussian radius is computed densely up to 4000 eigenvalues")
    return float(np.max(np.abs(np.linalg.eigvals(A))))
