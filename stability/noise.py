"""Mini-batch noise (docs §4): SE noise models, the per-eigenvalue Lyapunov term, the
stability sum ``U`` and the exact second-moment recursion of the loss.

The noise is the *spectrally expressible* (SE) model ``Sigma(X) = tau1 Tr(HX) H - tau2 HXH``;
it is exact for Gaussian features with ``(tau1, tau2) = (1, -1)`` (the default preset) and an
approximation otherwise: results say so in their ``notes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from . import symbols as S
from ._values import describe, real_array, to_exact, to_float, to_sympy
from .algorithms import MemoryAlgorithm
from .errors import ConfigError

__all__ = [
    "NOISE_MODELS",
    "MemorySchedule",
    "NoiseModel",
    "NoiseResult",
    "PowerLawSpectrum",
    "Spectrum",
    "critical_batch_size",
    "get_noise_model",
    "loss_trajectory",
    "max_stable_lr",
    "noise_term",
    "power_law",
    "power_law_asymptotics",
    "propagators",
    "stability_sum",
    "ubar",
]

SE_NOTE = (
    "SE noise model: exact for Gaussian features with (tau1, tau2) = (1, -1); an "
    "approximation for other data; quadratic (linearised) loss"
)


# ---------------------------------------------------------------------------------------
# Noise models
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoiseModel:
    """SE noise ``Sigma(X) = tau1 Tr(HX) H - tau2 HXH`` (docs §4; Yarotsky & Velikanov eq. 15)."""

    tau1: float
    tau2: float
    name: str = "custom"

    def __post_init__(self) -> None:
        for label in ("tau1", "tau2"):
            value = getattr(self, label)
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                raise ConfigError(f"{label} must be a finite number, got {describe(value)}")
        if self.tau1 < 0:
            raise ConfigError(f"tau1 must be in [0, inf), got {describe(self.tau1)}")
        if self.tau2 > self.tau1:
            raise ConfigError(
                f"tau2 must be <= tau1 = {describe(self.tau1)}, got {describe(self.tau2)}"
            )

    @property
    def exact_for_gaussian(self) -> bool:
        return (self.tau1, self.tau2) == (1.0, -1.0)


NOISE_MODELS = {
    "gaussian": NoiseModel(1.0, -1.0, "gaussian"),
    "translation_invariant": NoiseModel(1.0, 1.0, "translation_invariant"),
    "se0": NoiseModel(1.0, 0.0, "se0"),
}


def get_noise_model(noise: Any = "gaussian") -> NoiseModel:
    """A preset name (``gaussian``, ``translation_invariant``, ``se0``), a :class:`NoiseModel`
    or an explicit ``(tau1, tau2)`` pair.

    >>> get_noise_model("se0")
    NoiseModel(tau1=1.0, tau2=0.0, name='se0')
    >>> get_noise_model((1, 2))
    Traceback (most recent call last):
    ...
    stability.errors.ConfigError: tau2 must be <= tau1 = 1.0, got 2.0
    """
    if isinstance(noise, NoiseModel):
        return noise
    if isinstance(noise, str):
        key = noise.strip().lower().replace("-", "_")
        if key not in NOISE_MODELS:
            raise ConfigError(
                f"noise must be one of {sorted(NOISE_MODELS)} or (tau1, tau2), "
                f"got {describe(noise)}"
            )
        return NOISE_MODELS[key]
    if isinstance(noise, tuple | list) and len(noise) == 2:
        return NoiseModel(to_float(noise[0], "tau1"), to_float(noise[1], "tau2"))
    raise ConfigError(f"noise must be a preset name or (tau1, tau2), got {describe(noise)}")


# ---------------------------------------------------------------------------------------
# Spectra
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spectrum:
    """A finite spectrum: eigenvalues ``lam`` with multiplicities/weights ``weights`` and
    optional target coefficients ``c2`` (``c_k^2 = <e_k, w*>^2``)."""

    lam: np.ndarray
    weights: np.ndarray
    c2: np.ndarray | None = None

    @classmethod
    def from_arrays(cls, lam: Any, weights: Any = None, c2: Any = None) -> Spectrum:
        lam_a = _positive_array(lam, "eigenvalues")
        # unit weights as a zero-stride view: no second array as long as the spectrum
        w = (
            np.broadcast_to(1.0, lam_a.shape)
            if weights is None
            else _array(weights, "weights", lam_a.shape)
        )
        if np.any(w < 0):
            raise ConfigError(f"weights must be >= 0, got min {w.min()!r}")
        c = None if c2 is None else _array(c2, "c2", lam_a.shape)
        if c is not None and np.any(c < 0):
            raise ConfigError(f"c2 must be >= 0 (squared coefficients), got min {c.min()!r}")
        return cls(lam_a, w, c)

    @property
    def lambda_max(self) -> float:
        return float(self.lam.max())


def _array(x: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    a = real_array(x, name, empty=True).ravel()
    if a.shape != shape:
        raise ConfigError(f"{name} must have shape {shape} (one per eigenvalue), got {a.shape}")
    return a


def _positive_array(x: Any, name: str) -> np.ndarray:
    return real_array(x, name, low=0, low_open=True).ravel()


MAX_EIGENVALUES = 10**8
"""Longest eigenvalue array a power law is expanded into (800 MB of float64)."""


@dataclass(frozen=True)
class PowerLawSpectrum:
    """``lambda_k = Lambda k^-nu`` (k = 1..N, or to infinity when ``N is None``) with target
    ``lambda_k c_k^2 = Q k^(-zeta nu - 1)`` (docs §4.2)."""

    nu: float
    Lambda: float = 1.0
    zeta: float | None = None
    Q: float = 1.0
    N: int | None = None
    Lambda_exact: Any = field(default=None, compare=False, repr=False)
    """``Lambda`` as given (exact rational), for exact verdicts; ``None`` means ``Lambda``."""

    @property
    def top(self) -> sp.Expr:
        """The exact largest eigenvalue ``Lambda`` (the binary value of the float if no exact
        value was given)."""
        return self.Lambda_exact if self.Lambda_exact is not None else sp.Rational(self.Lambda)

    @property
    def lambda_max(self) -> float:
        return self.Lambda

    def eigenvalues(self, n: int | None = None) -> np.ndarray:
        count = self.N if n is None else n
        if count is None:
            raise ConfigError("an infinite power law has no finite eigenvalue array; pass n")
        if count > MAX_EIGENVALUES:
            raise ConfigError(
                f"a power law with N = {count:,} has too many eigenvalues to list "
                f"(at most {MAX_EIGENVALUES:.0e}); stability_sum and check() sum "
                "it with a zeta-function tail, trajectories take .binned()"
            )
        return self.Lambda * np.arange(1, count + 1, dtype=float) ** (-self.nu)

    def binned(self, exact: int = 200, k_max: float = 1e9, bins: int = 400) -> Spectrum:
        """A weighted finite spectrum approximating the (long) power law by quadrature.

        The first ``exact`` eigenvalues are kept one by one; indices ``exact+1 .. k_max`` (or
        ``N``) are grouped into geometric bins, each represented by its geometric-mean index
        with weight = number of indices, and target weight matching the bin's exact sum of
        ``lambda_k c_k^2``. For trajectories over times ``t << 1/lambda(k_max)``; an
        approximation, unlike :func:`stability_sum` of an infinite power law.
        """
        top = float(self.N) if self.N is not None else float(k_max)
        if exact >= top:
            return self.truncated(int(top))
        head = self.truncated(exact)
        edges = np.unique(np.round(np.geomspace(exact + 1, top + 1, bins + 1)))
        lo, hi = edges[:-1], edges[1:]
        count = hi - lo
        k_rep = np.sqrt(lo * (hi - 1).clip(min=lo))
        lam = self.Lambda * k_rep ** (-self.nu)
        c2 = None
        if self.zeta is not None:
            s = self.zeta * self.nu + 1  # sum_{k=lo}^{hi-1} Q k^-s via Hurwitz zeta
            zs = np.array(
                [float(mpmath.zeta(s, a) - mpmath.zeta(s, b)) for a, b in zip(lo, hi, strict=True)]
            )
            c2 = np.concatenate([head.c2, self.Q * zs / (count * lam)])
        return Spectrum(np.concatenate([head.lam, lam]), np.concatenate([head.weights, count]), c2)

    def truncated(self, n: int) -> Spectrum:
        lam = self.eigenvalues(n)
        c2 = None
        if self.zeta is not None:
            k = np.arange(1, n + 1, dtype=float)
            c2 = self.Q * k ** (-self.zeta * self.nu - 1) / lam
        return Spectrum(lam, np.ones(n), c2)


def power_law(
    nu: Any, Lambda: Any = 1.0, zeta: Any = None, Q: Any = 1.0, N: Any = None
) -> PowerLawSpectrum:
    """A power-law spectrum; infinite when ``N is None`` (sums then need ``nu > 1``)."""
    nu_f = to_float(nu, "nu")
    if nu_f > 1e6:
        raise ConfigError(f"nu must be in (0.5, 1e6], got {describe(nu)}")
    if nu_f <= 0.5:
        raise ConfigError(f"nu must be in (0.5, inf) (sum of lambda^2 finite), got {describe(nu)}")
    lam_f = to_float(Lambda, "Lambda")
    if lam_f <= 0:
        raise ConfigError(f"Lambda must be in (0, inf), got {describe(Lambda)}")
    lam_x = to_exact(to_sympy(Lambda, "Lambda"))
    zeta_f = None if zeta is None else to_float(zeta, "zeta")
    if zeta_f is not None and zeta_f <= 0:
        raise ConfigError(f"zeta must be in (0, inf), got {describe(zeta)}")
    q_f = to_float(Q, "Q")
    n_i = None
    if N is not None:
        n_f = to_float(N, "N")
        if n_f < 1 or n_f != int(n_f):
            raise ConfigError(f"N must be a positive integer, got {describe(N)}")
        n_i = int(n_f)
    return PowerLawSpectrum(nu_f, lam_f, zeta_f, q_f, n_i, lam_x)


def as_spectrum(spectrum: Any) -> Spectrum | PowerLawSpectrum:
    if isinstance(spectrum, Spectrum | PowerLawSpectrum):
        return spectrum
    if isinstance(spectrum, int | float) and not isinstance(spectrum, bool):
        return Spectrum.from_arrays([spectrum])
    return Spectrum.from_arrays(spectrum)


# ---------------------------------------------------------------------------------------
# Per-eigenvalue term
# ---------------------------------------------------------------------------------------
def noise_term(alg: MemoryAlgorithm, lam: Any = S.lam) -> sp.Expr:
    """``Ubar_lambda = lambda^2 r^T X r`` with ``X = S X S^T + v v^T`` (exact, symbolic).

    Memory 0 and 1 use the closed form (docs §4; Yarotsky & Velikanov eq. 25, written with
    the triplet); larger memories solve the Lyapunov system symbolically (small M only).

    >>> from stability import gd, heavy_ball
    >>> noise_term(gd(S.alpha))
    -alpha*lambda/(alpha*lambda - 2)
    >>> noise_term(heavy_ball(sp.Rational(1, 2), sp.Rational(1, 2)), 1)
    3/5
    """
    lam_e = to_sympy(lam, "lam")
    if alg.M == 0:
        return sp.factor(alg.alpha * lam_e / (2 - alg.alpha * lam_e))
    if alg.M == 1:
        beta, q0, q1 = alg.triplet()
        num = lam_e * (-(1 + beta) * (q0 + q1) + lam_e * q0 * (q0 - q1))
        den = (1 - beta + lam_e * q0) * (2 * (1 + beta) - lam_e * (q0 - q1))
        return sp.factor(sp.cancel(num / den))
    n = alg.M + 1
    Smat = alg.update_matrix(lam_e)
    Xs = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"x_{min(i, j)}{max(i, j)}"))
    eqs = Xs - Smat * Xs * Smat.T - alg.v * alg.v.T
    unknowns = sorted(Xs.free_symbols, key=str)
    sol = sp.solve(list(eqs), unknowns, dict=True)
    if len(sol) != 1:
        raise ConfigError("the Lyapunov system has no unique solution (S_lambda not stable?)")
    X = Xs.subs(sol[0])
    return sp.factor(sp.cancel(lam_e**2 * (alg.r.T * X * alg.r)[0, 0]))


def ubar(alg: MemoryAlgorithm, lam: Any, method: str = "auto") -> np.ndarray:
    """Numeric ``Ubar_lambda`` for an array of curvatures (float64, any memory).

    ``method="lyapunov"`` solves the Lyapunov equation as a batched linear system
    ``(I - S (x) S) vec X = vec vv^T``; ``"closed"`` (memory <= 1, the default there via
    ``"auto"``) evaluates eq. 25 through the triplet. Meaningful only where ``S_lambda`` is
    strictly stable.
    """
    if method not in ("auto", "closed", "lyapunov"):
        raise ConfigError(f"method must be 'auto', 'closed' or 'lyapunov', got {describe(method)}")
    p = alg.numeric_arrays()
    lam_a = np.asarray(lam, dtype=float)
    if alg.M == 1 and method in ("auto", "closed"):
        t = alg.triplet()
        beta, q0, q1 = float(t.beta), float(t.q0), float(t.q1)
        num = lam_a * (-(1 + beta) * (q0 + q1) + lam_a * q0 * (q0 - q1))
        den = (1 - beta + lam_a * q0) * (2 * (1 + beta) - lam_a * (q0 - q1))
        return num / den
    if method == "closed" and alg.M > 1:
        raise ConfigError("the closed form is for memory <= 1; use method='lyapunov'")
    n = alg.M + 1
    S0, v, r = alg.numeric_system()
    flat = lam_a.reshape(-1)
    if n == 1:
        s = 1 - p["alpha"] * flat
        out = flat**2 * p["alpha"] ** 2 / (1 - s**2)
        return out.reshape(lam_a.shape)
    mats = S0 + flat[:, None, None] * np.outer(v, r)
    kron = np.einsum("kij,kab->kiajb", mats, mats).reshape(-1, n * n, n * n)
    rhs = np.broadcast_to(np.outer(v, v).reshape(n * n), (flat.size, n * n))
    X = np.linalg.solve(np.eye(n * n) - kron, rhs[..., None])[..., 0].reshape(-1, n, n)
    out = flat**2 * np.einsum("i,kij,j->k", r, X, r)
    return out.reshape(lam_a.shape)


def _second_moment_radius(alg: MemoryAlgorithm, lam: np.ndarray, kappa: float) -> np.ndarray:
    """Spectral radius of ``A_lambda(X) = S X S^T - kappa lambda^2 (r^T X r) v v^T``."""
    n = alg.M + 1
    S0, v, r = alg.numeric_system()
    mats = S0 + lam[:, None, None] * np.outer(v, r)
    kron = np.einsum("kij,kab->kiajb", mats, mats).reshape(-1, n * n, n * n)
    rank1 = np.outer(np.outer(v, v).ravel(), np.outer(r, r).ravel())
    ops = kron - kappa * lam[:, None, None] ** 2 * rank1
    return np.abs(np.linalg.eigvals(ops)).max(axis=-1)


# ---------------------------------------------------------------------------------------
# Stability sum
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoiseResult:
    """The stability sum ``U`` (``inf`` when a second-moment map is not strictly stable).

    ``bounded`` is ``U < 1`` with every ``A_lambda`` strictly stable (Theorem 3); ``margin`` is
    ``1 - U``. ``tail`` and ``tolerance`` describe infinite sums.
    """

    U: float
    bounded: bool
    reason: str
    batch_size: float
    noise: NoiseModel
    tolerance: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def margin(self) -> float:
        return 1.0 - self.U

    def __bool__(self) -> bool:
        return self.bounded

    def to_dict(self) -> dict[str, Any]:
        return {
            "U": self.U if math.isfinite(self.U) else "inf",
            "bounded": self.bounded,
            "margin": self.margin if math.isfinite(self.U) else "-inf",
            "reason": self.reason,
            "batch_size": self.batch_size,
            "noise": {"name": self.noise.name, "tau1": self.noise.tau1, "tau2": self.noise.tau2},
            "tolerance": self.tolerance,
            "notes": list(self.notes),
        }


def _check_batch(batch_size: Any) -> float:
    b = to_float(batch_size, "batch_size")
    if b < 1:
        raise ConfigError(f"batch_size must be in [1, inf), got {describe(batch_size)}")
    return b


def _terms(
    alg: MemoryAlgorithm, lam: np.ndarray, B: float, model: NoiseModel
) -> tuple[np.ndarray | None, str]:
    """Per-eigenvalue ``U_lambda`` or ``None`` with the reason of instability."""
    from .regions import is_strictly_stable

    res = is_strictly_stable(alg, np.unique(lam) if lam.size <= _CHUNK else lam)
    if not res.stable:
        return None, f"noiseless S_lambda is not strictly stable ({res.reason})"
    return _noise_terms(alg, lam, B, model)


def _noise_terms(
    alg: MemoryAlgorithm, lam: np.ndarray, B: float, model: NoiseModel
) -> tuple[np.ndarray | None, str]:
    """``U_lambda`` where ``S_lambda`` is known to be strictly stable (``None`` and the reason
    when ``A_lambda`` is not)."""
    u = ubar(alg, lam)
    kappa = model.tau2 / B
    if kappa < 0:
        # A_lambda is a positive map: rho(A) < 1  iff  1 + kappa Ubar > 0 (rho(S) < 1 given)
        bad = 1 + kappa * u <= 0
        if np.any(bad):
            return None, (
                f"second-moment map A_lambda is not strictly stable at lambda = "
                f"{lam[bad].max():.6g} (1 + (tau2/B) Ubar <= 0)"
            )
    elif kappa > 0:
        rho = _second_moment_radius(alg, np.unique(lam), kappa)
        if np.any(rho >= 1):
            return None, "second-moment map A_lambda is not strictly stable"
    return model.tau1 / B * u / (1 + kappa * u), ""


def stability_sum(
    alg: MemoryAlgorithm,
    spectrum: Any,
    batch_size: Any,
    noise: Any = "gaussian",
    *,
    tol: float = 1e-10,
) -> NoiseResult:
    """``U = sum_k w_k U_{lambda_k}``, ``U_lambda = (tau1/B) Ubar/(1 + (tau2/B) Ubar)``.

    Every ``A_lambda`` is checked first (noiseless ``S_lambda`` exactly, then the noise
    correction); otherwise ``U = inf`` with the reason (never a negative or meaningless sum).
    Infinite power laws are summed as an explicit head plus an mpmath Euler–Maclaurin tail
    whose error estimate is reported as ``tolerance``.

    >>> from stability import gd
    >>> r = stability_sum(gd(1), [1, 0.5, 0.25, 0.125], batch_size=10, noise="se0")
    >>> round(r.U, 14)
    0.15428571428571
    >>> stability_sum(gd(1.5), [0.8], batch_size=1).reason[:36]
    'second-moment map A_lambda is not st'
    """
    model = get_noise_model(noise)
    B = _check_batch(batch_size)
    spec = as_spectrum(spectrum)
    notes = (
        [SE_NOTE]
        if not model.exact_for_gaussian
        else ["exact for Gaussian features (SE with tau1 = 1, tau2 = -1); quadratic loss"]
    )
    if isinstance(spec, PowerLawSpectrum) and (spec.N is None or spec.N > _HEAD):
        return _power_law_sum(alg, spec, B, model, tol, notes)
    if isinstance(spec, PowerLawSpectrum):
        spec = spec.truncated(spec.N)
    U, reason = _finite_sum(alg, spec.lam, spec.weights, B, model)
    if U is None:
        return NoiseResult(math.inf, False, reason, B, model, notes=tuple(notes))
    return NoiseResult(U, U < 1, _reason(U), B, model, notes=tuple(notes))


_CHUNK = 1 << 20
"""Eigenvalues per chunk of a long spectrum (memory stays bounded)."""


def _finite_sum(
    alg: MemoryAlgorithm, lam: np.ndarray, w: np.ndarray, B: float, model: NoiseModel
) -> tuple[float | None, str]:
    """``sum_k w_k U_{lambda_k}`` in chunks, or ``None`` and the reason of instability."""
    from .regions import is_strictly_stable

    res = is_strictly_stable(alg, np.unique(lam) if lam.size <= _CHUNK else lam)
    if not res.stable:
        return None, f"noiseless S_lambda is not strictly stable ({res.reason})"
    parts = []
    for start in range(0, lam.size, _CHUNK):
        terms, reason = _noise_terms(alg, lam[start : start + _CHUNK], B, model)
        if terms is None:
            return None, reason
        parts.append(float(np.sum(w[start : start + _CHUNK] * terms)))
    return math.fsum(parts), ""


def _reason(U: float) -> str:
    return (
        "U < 1: mean loss stays bounded (Theorem 3)"
        if U < 1
        else "U >= 1: mean loss diverges under mini-batch noise (Theorem 3)"
    )


_HEAD = 1_000_000
"""Power laws longer than this are summed as an explicit head plus a zeta-function tail."""


def _power_law_sum(
    alg: MemoryAlgorithm,
    spec: PowerLawSpectrum,
    B: float,
    model: NoiseModel,
    tol: float,
    notes: list[str],
) -> NoiseResult:
    if spec.nu <= 1 and spec.N is None:
        return NoiseResult(
            math.inf,
            False,
            "sum of lambda_k diverges for nu <= 1 (U = inf)",
            B,
            model,
            notes=tuple(notes),
        )
    head_n = 100_000
    lam_head = spec.eigenvalues(head_n)
    terms, reason = _terms(alg, lam_head, B, model)
    if terms is None:
        return NoiseResult(math.inf, False, reason, B, model, notes=tuple(notes))
    head = math.fsum(terms)
    tail, tolerance, order = _power_law_tail(alg, spec, B, model, head_n, tol)
    U = head + tail
    tolerance += 1e-15 * abs(U)
    kind = "infinite power law" if spec.N is None else f"power law with N = {spec.N:,}"
    notes = [
        *notes,
        f"{kind}: {head_n} terms summed directly; tail {tail:.6e} "
        f"from the Taylor series of U_lambda at 0 (order {order}) with Hurwitz zeta "
        f"sums; truncation error estimate {tolerance:.1e}",
    ]
    bounded = U + tolerance < 1
    return NoiseResult(U, bounded, _reason(U), B, model, tolerance, tuple(notes))


def _power_law_tail(
    alg: MemoryAlgorithm,
    spec: PowerLawSpectrum,
    B: float,
    model: NoiseModel,
    head_n: int,
    tol: float,
) -> tuple[float, float, int]:
    """``sum_{head_n < k <= N} U(Lambda k^-nu)`` as
    ``sum_j c_j Lambda^j (zeta(j nu, head_n + 1) - zeta(j nu, N + 1))`` (``N = inf``: no
    second zeta).

    ``U_lambda`` is a rational function of ``lambda`` (exact coefficients from the binary values
    of the parameters), so its Taylor coefficients at 0 are exact; terms decrease like
    ``(lambda_head / radius)^j`` and the first omitted term estimates the truncation error.
    """
    lam = S.lam
    ub = noise_term(alg.to_exact(), lam)
    k1 = sp.Rational(model.tau1) / sp.Rational(B)
    k2 = sp.Rational(model.tau2) / sp.Rational(B)
    u_expr = sp.cancel(k1 * ub / (1 + k2 * ub))
    max_order = 12
    series = sp.series(u_expr, lam, 0, max_order + 2).removeO()
    coeffs = [series.coeff(lam, j) for j in range(max_order + 2)]
    with mpmath.workdps(30):
        total = mpmath.mpf(0)
        last = mpmath.inf
        order = 0
        for j in range(1, max_order + 2):
            c = mpmath.mpf(sp.Rational(coeffs[j]).p) / sp.Rational(coeffs[j]).q
            if spec.N is None:
                zs = mpmath.zeta(j * spec.nu, head_n + 1)
            elif j * spec.nu == 1:  # harmonic sum: digamma difference
                zs = mpmath.digamma(spec.N + 1) - mpmath.digamma(head_n + 1)
            else:
                zs = mpmath.zeta(j * spec.nu, head_n + 1) - mpmath.zeta(j * spec.nu, spec.N + 1)
            term = c * mpmath.mpf(spec.Lambda) ** j * zs
            if j == max_order + 1 or (abs(term) < tol * 1e-3 * max(abs(total), 1e-300) and j > 2):
                last = abs(term)
                break
            total += term
            order = j
        return float(total), float(last) * 2, order


def critical_batch_size(
    alg: MemoryAlgorithm, spectrum: Any, noise: Any = "gaussian", *, max_batch: float = 2**40
) -> float:
    """Smallest integer batch size ``B >= 1`` with ``U < 1`` (``inf`` if none up to
    ``max_batch``; ``inf`` also when the noiseless dynamics are unstable).

    ``U(B) = sum_k w_k (tau1/B) Ubar_k / (1 + (tau2/B) Ubar_k)`` decreases in ``B``; ``Ubar`` is
    computed once and ``B`` found by bisection (each candidate re-checks ``A_lambda``).
    """
    from .regions import is_strictly_stable

    model = get_noise_model(noise)
    spec = as_spectrum(spectrum)
    if isinstance(spec, PowerLawSpectrum) and (spec.N is None or spec.N > _HEAD):

        def ok(B: float) -> bool:
            return stability_sum(alg, spec, B, model).bounded
    else:
        if isinstance(spec, PowerLawSpectrum):
            spec = spec.truncated(spec.N)
        lam = spec.lam
        res = is_strictly_stable(alg, np.unique(lam) if lam.size <= _CHUNK else lam)
        if not res.stable:
            return math.inf
        w = spec.weights
        ub = np.empty(lam.shape)  # Ubar, computed once, chunk by chunk
        for start in range(0, lam.size, _CHUNK):
            ub[start : start + _CHUNK] = ubar(alg, lam[start : start + _CHUNK])
        ub_max = float(ub.max())

        def ok(B: float) -> bool:
            k2 = model.tau2 / B
            if model.tau2 > 0:
                return stability_sum(alg, spec, B, model).bounded
            if 1 + k2 * ub_max <= 0:  # tau2 <= 0: the largest Ubar decides A_lambda
                return False
            total = math.fsum(
                float(
                    np.sum(w[i : i + _CHUNK] * ub[i : i + _CHUNK] / (1 + k2 * ub[i : i + _CHUNK]))
                )
                for i in range(0, lam.size, _CHUNK)
            )
            return model.tau1 / B * total < 1

    if ok(1.0):
        return 1.0
    if not ok(max_batch):
        return math.inf
    lo, hi = 1.0, max_batch
    while hi - lo > 0.5:
        mid = math.sqrt(lo * hi) if hi / lo > 4 else (lo + hi) / 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    B = float(math.ceil(hi))
    while B > 1 and ok(B - 1):
        B -= 1
    return B


# ---------------------------------------------------------------------------------------
# Exact second-moment recursion (loss trajectory)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemorySchedule:
    """Per-step parameters of a memory-M algorithm: arrays with a leading time axis.

    ``alpha[t]`` (T,), ``a/b/c[t]`` (T, M), ``D[t]`` (T, M, M). Step ``t`` maps state ``t`` to
    ``t + 1``. Build with :meth:`constant`, :meth:`from_algorithms` or
    :func:`stability.acceleration.am1_schedule`.
    """

    alpha: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    D: np.ndarray

    def __post_init__(self) -> None:
        T = self.alpha.shape[0]
        M = self.b.shape[1] if self.b.ndim == 2 else -1
        shapes = {"alpha": (T,), "a": (T, M), "b": (T, M), "c": (T, M), "D": (T, M, M)}
        for name, shape in shapes.items():
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ConfigError(f"{name} must have shape {shape}, got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ConfigError(f"{name} must be finite")

    @property
    def steps(self) -> int:
        return self.alpha.shape[0]

    @property
    def M(self) -> int:
        return self.b.shape[1]

    @classmethod
    def constant(cls, alg: MemoryAlgorithm, steps: int) -> MemorySchedule:
        p = alg.numeric_arrays()
        return cls(
            np.full(steps, p["alpha"]),
            np.tile(p["a"], (steps, 1)),
            np.tile(p["b"], (steps, 1)),
            np.tile(p["c"], (steps, 1)),
            np.tile(p["D"], (steps, 1, 1)),
        )

    @classmethod
    def from_algorithms(cls, algs: list[MemoryAlgorithm]) -> MemorySchedule:
        if not algs:
            raise ConfigError("algorithms must not be empty")
        Ms = {alg.M for alg in algs}
        if len(Ms) != 1:
            raise ConfigError(f"every step must have the same memory size, got {sorted(Ms)}")
        ps = [alg.numeric_arrays() for alg in algs]
        return cls(*(np.array([p[k] for p in ps]) for k in ("alpha", "a", "b", "c", "D")))

    def step(self, t: int, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(S_lambda for each lambda, v v^T, r)`` of step ``t``."""
        n = self.M + 1
        v = np.concatenate([[-self.alpha[t]], self.c[t]])
        r = np.concatenate([[1.0], self.a[t]])
        S0 = np.zeros((n, n))
        S0[0, 0] = 1
        S0[0, 1:] = self.b[t]
        S0[1:, 1:] = self.D[t]
        return S0 + lam[:, None, None] * np.outer(v, r), np.outer(v, v), r


def loss_trajectory(
    alg: MemoryAlgorithm | MemorySchedule,
    spectrum: Any,
    batch_size: Any,
    steps: int | None = None,
    noise: Any = "gaussian",
) -> np.ndarray:
    """Mean loss ``L_0 .. L_steps`` from the exact SE second-moment recursion (docs §4).

    ``C_{k,t+1} = A_k(C_{k,t}) + (tau1/B) lambda_k (sum_j w_j lambda_j r^T C_{j,t} r) v v^T``,
    ``C_{k,0} = c_k^2 E11``, ``L_t = 1/2 sum_k w_k lambda_k (C_{k,t})_11``; vectorised over
    eigenvalues. ``alg`` may be a :class:`MemorySchedule` (non-stationary parameters; then
    ``steps`` defaults to its length). The spectrum must carry target coefficients ``c2``.
    """
    model = get_noise_model(noise)
    B = _check_batch(batch_size)
    if isinstance(alg, MemorySchedule):
        sched = alg
        steps = sched.steps if steps is None else steps
        if steps > sched.steps:
            raise ConfigError(f"steps must be <= the schedule length {sched.steps}, got {steps}")
    if not isinstance(steps, int | np.integer) or isinstance(steps, bool) or steps < 0:
        raise ConfigError(f"steps must be an integer >= 0, got {describe(steps)}")
    if not isinstance(alg, MemorySchedule):
        sched = MemorySchedule.constant(alg, max(steps, 1))
    spec = _finite_with_targets(spectrum)
    lam, w = spec.lam, spec.weights
    n = sched.M + 1
    C = np.zeros((lam.size, n, n))
    C[:, 0, 0] = spec.c2
    out = np.empty(steps + 1)
    k1, k2 = model.tau1 / B, model.tau2 / B
    stationary = not isinstance(alg, MemorySchedule)
    mats = vv = r = None
    for t in range(steps + 1):
        out[t] = 0.5 * np.sum(w * lam * C[:, 0, 0])
        if t == steps:
            break
        if mats is None or not stationary:
            mats, vv, r = sched.step(0 if stationary else t, lam)
        rCr = np.einsum("i,kij,j->k", r, C, r)
        feedback = np.sum(w * lam * rCr)
        coef = k1 * lam * feedback - k2 * lam**2 * rCr
        C = mats @ C @ mats.transpose(0, 2, 1) + coef[:, None, None] * vv
    return out


def _finite_with_targets(spectrum: Any) -> Spectrum:
    spec = as_spectrum(spectrum)
    if isinstance(spec, PowerLawSpectrum):
        if spec.N is None:
            raise ConfigError("a finite spectrum is needed here: power_law(..., N=...)")
        spec = spec.truncated(spec.N)
    if spec.c2 is None:
        raise ConfigError("spectrum needs target coefficients c2 (e.g. power_law(..., zeta=...))")
    return spec


def propagators(
    alg: MemoryAlgorithm, spectrum: Any, batch_size: Any, steps: int, noise: Any = "gaussian"
) -> tuple[np.ndarray, np.ndarray]:
    """Signal and noise propagators ``V_1..V_steps`` and ``U_1..U_steps`` (Theorem 2, a = 0).

    ``V_t = sum_k w_k lambda_k c_k^2 <E11, A_k^{t-1} E11>``,
    ``U_t = (tau1/B) sum_k w_k lambda_k^2 <E11, A_k^{t-1} v v^T>``; the loss satisfies the
    renewal equation ``L_t = V_{t+1}/2 + sum_{s<t} U_{t-s} L_s``.
    """
    if alg.has_lookahead:
        raise ConfigError(
            "propagators are defined for a = 0 realisations (use the canonical "
            "memory-1 realisation or from_multistep(alg.to_multistep()))"
        )
    model = get_noise_model(noise)
    B = _check_batch(batch_size)
    spec = _finite_with_targets(spectrum)
    lam, w = spec.lam, spec.weights
    n = alg.M + 1
    S0, v, r = alg.numeric_system()
    mats = S0 + lam[:, None, None] * np.outer(v, r)  # r = e1 (no lookahead)
    vv = np.outer(v, v)
    k2 = model.tau2 / B
    X_sig = np.zeros((lam.size, n, n))
    X_sig[:, 0, 0] = 1.0
    X_noise = np.broadcast_to(vv, (lam.size, n, n)).copy()
    V, U = np.empty(steps), np.empty(steps)
    for t in range(steps):
        V[t] = np.sum(w * lam * spec.c2 * X_sig[:, 0, 0])
        U[t] = model.tau1 / B * np.sum(w * lam**2 * X_noise[:, 0, 0])
        X_sig = (
            mats @ X_sig @ mats.transpose(0, 2, 1)
            - (k2 * lam**2 * X_sig[:, 0, 0])[:, None, None] * vv
        )
        X_noise = (
            mats @ X_noise @ mats.transpose(0, 2, 1)
            - (k2 * lam**2 * X_noise[:, 0, 0])[:, None, None] * vv
        )
    return V, U


def max_stable_lr(
    family: str,
    spectrum: Any,
    batch_size: Any,
    noise: Any = "gaussian",
    *,
    rtol: float = 1e-9,
    **fixed: Any,
) -> float:
    """Largest learning rate of a named family (``gd``, ``heavy_ball``, ``nesterov``,
    ``momentum_kick``; other parameters fixed by keyword) that is strictly stable on the
    spectrum and has ``U < 1``, to relative precision ``rtol``.

    The admissible set is assumed to be an interval ``(0, lr*)`` (it is for these families: U
    grows with the learning rate); it is scanned on a geometric grid first, and a
    non-admissible point below the answer raises.

    ``family="torch_sgd"`` is ``torch.optim.SGD`` with ``momentum``, ``dampening``,
    ``weight_decay`` and ``nesterov`` fixed by keyword (weight decay shifts a finite spectrum).

    >>> round(max_stable_lr("gd", [1.0], batch_size=1e12), 6)   # noiseless limit: 2/lambda
    2.0
    >>> round(max_stable_lr("torch_sgd", [1.0], batch_size=1e12, momentum=0.5), 6)
    3.0
    """
    from .algorithms import get_method

    spec = as_spectrum(spectrum)
    if family == "torch_sgd":
        from .algorithms import torch_sgd

        unknown = sorted(set(fixed) - {"momentum", "dampening", "weight_decay", "nesterov"})
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {unknown} for family 'torch_sgd'; allowed: "
                "momentum, dampening, weight_decay, nesterov"
            )
        shift = to_float(fixed.pop("weight_decay", 0.0), "weight_decay")
        if shift < 0:
            raise ConfigError(f"weight_decay must be in [0, inf), got {describe(shift)}")
        torch_sgd(1.0, **fixed)  # validates the fixed settings once
        if shift != 0:
            if not isinstance(spec, Spectrum):
                raise ConfigError(
                    "weight decay with a power law: pass its eigenvalues "
                    "(power_law(...).truncated(N)) to shift them"
                )
            spec = Spectrum(spec.lam + float(shift), spec.weights, spec.c2)

        def build(lr: float) -> MemoryAlgorithm:
            return torch_sgd(lr, **fixed)
    else:
        method = get_method(family)
        if "lr" not in method.parameters:
            raise ConfigError(f"family {family!r} has no lr parameter")
        missing = set(method.parameters) - {"lr"} - set(fixed)
        if missing:
            raise ConfigError(f"family {family!r} needs {sorted(missing)} fixed by keyword")

        def build(lr: float) -> MemoryAlgorithm:
            return method.numeric(lr=lr, **fixed)

    def ok(lr: float) -> bool:
        return stability_sum(build(lr), spec, batch_size, noise).bounded

    scale = 1.0 / spec.lambda_max
    grid = scale * np.geomspace(1e-8, 1e3, 45)
    flags = [ok(float(x)) for x in grid]
    if not flags[0]:
        return 0.0
    first_bad = next((i for i, f in enumerate(flags) if not f), None)
    if first_bad is None:
        return math.inf
    if any(flags[first_bad:]):
        raise ConfigError(f"the stable learning rates of {family!r} are not an interval here")
    lo, hi = float(grid[first_bad - 1]), float(grid[first_bad])
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


@dataclass(frozen=True)
class PowerLawAsymptotics:
    """Large-``t`` behaviour of a stationary algorithm on a power law (Theorems 3 and 5).

    ``V_t ~ C_V t^-zeta``, ``U_t ~ C_U t^-xi_U`` with ``xi_U = 2 - 1/nu``. When ``U < 1`` the loss
    decays like ``t^-min(zeta, xi_U)`` — the exponent of plain GD/SGD whatever the memory
    (Theorem 5) — with the signal-dominated constant ``C_V / (2 (1 - U))`` when
    ``zeta < xi_U``. Leading-order asymptotics: prefactors hold as ``t -> inf``.
    """

    C_V: float
    zeta: float
    C_U: float
    xi_U: float
    U: float
    regime: str

    @property
    def exponent(self) -> float:
        return min(self.zeta, self.xi_U)

    def signal_loss(self, t: Any) -> np.ndarray:
        """``C_V t^-zeta / (2 (1 - U))`` (signal-dominated regime)."""
        return self.C_V * np.asarray(t, dtype=float) ** (-self.zeta) / (2 * (1 - self.U))


def power_law_asymptotics(
    alg: MemoryAlgorithm, spectrum: PowerLawSpectrum, batch_size: Any, noise: Any = "gaussian"
) -> PowerLawAsymptotics:
    """Theorem 3 constants and the Theorem 5 exponent for an infinite power law with targets.

    Small curvatures dominate: the leading eigenvalue of ``A_lambda`` is
    ``1 - 2 alpha_eff lambda + O(lambda^2)`` (Theorem 4) and the iterate's response to a
    gradient impulse has residue ``-alpha_eff``, so
    ``C_V = Q Gamma(zeta)/nu (2 alpha_eff Lambda)^-zeta`` and
    ``C_U = (tau1/B) alpha_eff^2 Lambda^(1/nu) Gamma(2 - 1/nu) (2 alpha_eff)^(1/nu - 2) / nu``.
    """
    if not isinstance(spectrum, PowerLawSpectrum) or spectrum.zeta is None:
        raise ConfigError("spectrum must be power_law(nu, zeta=..., ...) with target exponent")
    model = get_noise_model(noise)
    B = _check_batch(batch_size)
    a_eff = float(alg.effective_lr())
    if a_eff <= 0:
        raise ConfigError(f"effective learning rate must be > 0, got {a_eff}")
    nu, zeta, Lam, Q = spectrum.nu, spectrum.zeta, spectrum.Lambda, spectrum.Q
    C_V = Q * math.gamma(zeta) / nu * (2 * a_eff * Lam) ** (-zeta)
    xi_U = 2 - 1 / nu
    C_U = (
        model.tau1
        / B
        * a_eff**2
        * Lam ** (1 / nu)
        * math.gamma(xi_U)
        * (2 * a_eff) ** (1 / nu - 2)
        / nu
    )
    U = stability_sum(alg, PowerLawSpectrum(nu, Lam, zeta, Q, None), B, model).U
    regime = "signal" if zeta < xi_U else "noise"
    return PowerLawAsymptotics(C_V, zeta, C_U, xi_U, U, regime)
