"""The stability sum ``U`` of mini-batch SGD with memory (docs §4, Theorem 3), certified.

``U = sum_k w_k U_{lambda_k}`` with the terms of :mod:`stability.noise.terms`. Every
second-moment map is checked first (an unstable one gives ``U = inf`` with the reason, never a
negative or meaningless sum). The sum is then *certified*: each float term carries a bound on
its error, and when ``|U - 1|`` is within the total bound, the terms with the largest errors are
re-evaluated in exact rational arithmetic until the verdict ``U < 1`` is decided. A sum that is
still undecided after that (``U`` within rounding of 1 on a very long spectrum) is reported as
not bounded, and says so: the package never calls a sum bounded without a proof.

Long and infinite power laws are summed as an explicit head plus a tail with a rigorous
remainder bound (:mod:`stability.noise.tails`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from .. import progress
from .._values import to_exact, to_float, to_sympy
from ..algorithms import MemoryAlgorithm
from ..errors import ConfigError, describe
from ..regions.verdicts import is_strictly_stable
from .models import SE_NOTE, NoiseModel, get_noise_model
from .spectra import PowerLawSpectrum, as_spectrum
from .tails import power_law_tail
from .terms import _EPS, exact_term, exact_triplet, float_terms

__all__ = ["CHUNK", "EXACT_TERMS", "HEAD_TERMS", "NoiseResult", "stability_sum"]

CHUNK = 1 << 20
"""Eigenvalues per chunk of a long spectrum (memory stays bounded)."""

HEAD_TERMS = 1_000_000
"""Power laws longer than this are summed as an explicit head plus a zeta-function tail."""

EXACT_TERMS = 20_000
"""Most terms re-evaluated exactly to decide a sum within its float error of 1."""

_FIXED_BITS = 256  # exact terms are summed as integers in units of 2^-256 (rounded outwards)


@dataclass(frozen=True)
class NoiseResult:
    """The stability sum ``U`` (``inf`` when a second-moment map is not strictly stable).

    ``bounded`` is the certified verdict ``U < 1`` with every ``A_lambda`` strictly stable
    (Theorem 3); ``margin`` is ``1 - U``; ``tolerance`` bounds ``|U - exact U|`` (float
    rounding and the truncation of infinite sums); ``undecided`` marks a ``U`` within that
    bound of 1, reported as not bounded.
    """

    U: float
    bounded: bool
    reason: str
    batch_size: float
    noise: NoiseModel
    tolerance: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    undecided: bool = False
    shift: float = 0.0

    @property
    def margin(self) -> float:
        return 1.0 - self.U

    @property
    def stable(self) -> bool:
        """The verdict: the mean loss stays bounded under the mini-batch noise."""
        return self.bounded

    def __bool__(self) -> bool:
        return self.bounded

    def __str__(self) -> str:
        state = "bounded" if self.bounded else ("UNDECIDED" if self.undecided else "DIVERGES")
        return (
            f"U = {self.U:.6g} (certified to +-{self.tolerance:.2g}) at B = {self.batch_size:g}, "
            f"noise model {self.noise.name}: {state} — {self.reason}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "U": self.U if math.isfinite(self.U) else "inf",
            "bounded": self.bounded,
            "margin": self.margin if math.isfinite(self.U) else "-inf",
            "reason": self.reason,
            "batch_size": self.batch_size,
            "noise": {"name": self.noise.name, "tau1": self.noise.tau1, "tau2": self.noise.tau2},
            "tolerance": self.tolerance,
            "undecided": self.undecided,
            "shift": self.shift,
            "notes": list(self.notes),
        }


def _check_batch(batch_size: Any) -> float:
    """A batch size: a finite number in ``[1, inf)``."""
    b = to_float(batch_size, "batch_size")
    if b < 1:
        raise ConfigError(f"batch_size must be in [1, inf), got {describe(batch_size)}")
    return b


def _check_shift(shift: Any) -> tuple[float, Fraction]:
    """A curvature shift (weight decay): a finite number ``>= 0``, as a float and exactly."""
    exact = to_exact(to_sympy(shift, "shift"))
    if exact.free_symbols or not exact >= 0:
        raise ConfigError(f"shift (weight decay) must be in [0, inf), got {describe(shift)}")
    value = Fraction(int(sp.Rational(exact).p), int(sp.Rational(exact).q))
    return float(value), value


def _shift_note(shift: float) -> str:
    """The caveat every report of a shifted noise sum carries."""
    return (
        f"weight decay {shift:g}: the dynamics see every curvature shifted by +{shift:g} "
        "(added exactly), the gradient noise keeps the data's curvature"
    )


def stability_sum(
    alg: MemoryAlgorithm,
    spectrum: Any,
    batch_size: Any,
    noise: Any = "gaussian",
    *,
    shift: Any = 0,
    tol: float = 1e-10,
) -> NoiseResult:
    """``U = sum_k w_k U_{lambda_k}``, ``U_lambda = (tau1/B) Ubar/(1 + (tau2/B) Ubar)``,
    certified (module docstring).

    ``shift`` is a curvature shift (weight decay): the dynamics run at ``lambda + shift``,
    the gradient noise keeps ``lambda``. ``tol`` is the accuracy asked of infinite sums.

    >>> from stability import gd
    >>> r = stability_sum(gd(1), [1, 0.5, 0.25, 0.125], batch_size=10, noise="se0")
    >>> round(r.U, 14)
    0.15428571428571
    >>> stability_sum(gd(1.5), [0.8], batch_size=1).reason[:36]
    'second-moment map A_lambda is not st'
    """
    model = get_noise_model(noise)
    B = _check_batch(batch_size)
    omega, omega_x = _check_shift(shift)
    spec = as_spectrum(spectrum)
    notes = [
        SE_NOTE
        if not model.exact_for_gaussian
        else "exact for Gaussian features (SE with tau1 = 1, tau2 = -1); quadratic loss"
    ]
    if omega:
        notes.append(_shift_note(omega))
    acc = _Sum(alg, B, model, omega, omega_x)
    if isinstance(spec, PowerLawSpectrum) and (spec.N is None or spec.N > HEAD_TERMS):
        head_n = 100_000
        if not acc.add(spec.eigenvalues(head_n), None):
            return acc.result(notes)
        tail, tail_err, order = power_law_tail(alg, spec, B, model, omega_x, head_n, tol)
        acc.extra(tail, tail_err)
        kind = "infinite power law" if spec.N is None else f"power law with N = {spec.N:,}"
        notes.append(
            f"{kind}: {head_n:,} terms summed directly; tail {tail:.6e} from the Taylor series "
            f"of U_lambda at 0 (order {order}) with Hurwitz zeta sums, remainder bounded by "
            f"interval arithmetic: {tail_err:.1e}"
        )
        return acc.result(notes)
    if isinstance(spec, PowerLawSpectrum):
        spec = spec.truncated(spec.N)
    acc.add(spec.lam, spec.weights)
    return acc.result(notes)


def _strict_on(alg: MemoryAlgorithm, lam: np.ndarray, shift: Fraction) -> Any:
    """The exact verdict on the eigenvalues ``lam`` (deduplicated while that is cheap)."""
    return is_strictly_stable(alg, np.unique(lam) if lam.size <= CHUNK else lam, shift=shift)


class _Sum:
    """A certified running sum: float terms with error bounds; when the verdict is within
    the bound of 1, a second pass re-evaluates the worst terms exactly."""

    def __init__(
        self, alg: MemoryAlgorithm, B: float, model: NoiseModel, omega: float, omega_x: Fraction
    ) -> None:
        self.alg, self.B, self.model, self.omega, self.omega_x = alg, B, model, omega, omega_x
        self.total, self.error, self.unsure = 0.0, 0.0, 0
        self.parts: list[tuple[np.ndarray, np.ndarray | None]] = []
        self.reason = ""

    def _chunks(self):
        for lam, weights in self.parts:
            for start in range(0, lam.size, CHUNK):
                x = lam[start : start + CHUNK]
                w = (
                    np.ones(x.size)
                    if weights is None
                    else np.asarray(weights[start : start + CHUNK])
                )
                u, err, den = float_terms(self.alg, x, self.B, self.model, self.omega)
                yield start + x.size, lam.size, x, w, u, err, den

    def add(self, lam: np.ndarray, weights: np.ndarray | None) -> bool:
        """Add the terms of ``lam`` (weights 1 when ``None``); False if ``U = inf``."""
        res = _strict_on(self.alg, lam, self.omega_x)
        if not res.stable:
            self.reason = f"noiseless S_lambda is not strictly stable ({res.reason})"
            return False
        if self.model.tau2 > 0 and not self._tau2_positive_ok(lam):
            return False
        self.parts.append((lam, weights))
        parts, errors = [], []
        for done, total, x, w, u, err, den in self._chunks_of(len(self.parts) - 1):
            bad = np.isfinite(err) & (den <= 0)
            if np.any(bad):
                self.reason = (
                    f"second-moment map A_lambda is not strictly stable at lambda = "
                    f"{x[bad].max():.6g} (1 + (tau2/B) Ubar <= 0)"
                )
                return False
            wu, werr = w * u, w * err
            sure = np.isfinite(werr)
            self.unsure += int(sure.size - np.count_nonzero(sure))
            parts.append(float(np.sum(wu[sure])))
            size = float(np.sum(np.abs(wu[sure])))
            errors.append(float(np.sum(werr[sure])) + (math.log2(x.size + 1) + 3) * _EPS * size)
            progress.update("noise sum U", done, total)
        self.total += math.fsum(parts)
        self.error += math.fsum(errors)
        return True

    def _chunks_of(self, i: int):
        saved, self.parts = self.parts, [self.parts[i]]
        try:
            yield from self._chunks()
        finally:
            self.parts = saved

    def _tau2_positive_ok(self, lam: np.ndarray) -> bool:
        """``tau2 > 0``: ``A_lambda`` is not a positive map; its spectral radius (floats)."""
        kappa = self.model.tau2 / self.B
        rho = _second_moment_radius(self.alg, np.unique(lam), kappa, self.omega)
        if np.any(rho >= 1 - 1e-9):
            self.reason = (
                "second-moment map A_lambda is not strictly stable"
                if np.any(rho >= 1)
                else "second-moment map A_lambda within 1e-9 of instability (floats): not bounded"
            )
            return False
        return True

    def extra(self, value: float, error: float) -> None:
        """Add a value known to within ``error`` (an infinite tail)."""
        self.total += value
        self.error += error

    def result(self, notes: list[str]) -> NoiseResult:
        if self.reason:
            return self._made(math.inf, False, self.reason, 0.0, notes)
        U, err = self.total, self.error
        if not math.isfinite(U):
            return self._made(math.inf, False, _reason(math.inf), 0.0, notes)
        if not self.unsure and math.isfinite(err) and U + err < 1:
            return self._made(U, True, _reason(U), err, notes)
        if not self.unsure and math.isfinite(err) and U - err >= 1:
            return self._made(U, False, _reason(U), err, notes)
        return self._refine(notes)

    def _worst(self) -> list[tuple[float, float, float, float]]:
        """The ``EXACT_TERMS`` terms with the largest weighted errors: ``(w err, lam, w, u)``."""
        keep: list[np.ndarray] = []
        for _, _, x, w, u, err, _ in self._chunks():
            werr = np.where(np.isnan(w * err), np.inf, w * err)
            k = min(EXACT_TERMS, x.size)
            idx = np.argpartition(-werr, k - 1)[:k]
            keep.append(np.stack([werr[idx], x[idx], w[idx], u[idx]], axis=1))
            both = np.concatenate(keep)
            if both.shape[0] > EXACT_TERMS:
                both = both[np.argpartition(-both[:, 0], EXACT_TERMS - 1)[:EXACT_TERMS]]
            keep = [both]
        rows = np.concatenate(keep) if keep else np.empty((0, 4))
        return [tuple(r) for r in rows[np.argsort(-rows[:, 0])]]

    def _refine(self, notes: list[str]) -> NoiseResult:
        """Re-evaluate the worst terms exactly and decide in rational arithmetic."""
        worst = self._worst()
        finite = [t for t in worst if math.isfinite(t[0])]
        if self.unsure > len(worst) - len(finite):
            reason = "too many terms of uncertain sign to decide: reported as not bounded"
            return self._made(self.total, False, reason, math.inf, notes, undecided=True)
        rest_total = Fraction(self.total) - sum(
            (Fraction(w) * Fraction(u) for _, _, w, u in finite), Fraction(0)
        )
        rest_error = Fraction(self.error) - sum((Fraction(e) for e, *_ in finite), Fraction(0))
        rest_error = max(rest_error, Fraction(0))
        # each exact term is rounded outwards to a multiple of 2^-256 and the integers are
        # added: a sum of fractions with unrelated denominators grows its denominator term by
        # term (7,177 terms took 8 s); the rounding, at most 2^-256 per term, is kept in the
        # bounds, so they stay rigorous
        low = high = 0
        trip = exact_triplet(self.alg) if self.alg.M <= 1 else None
        for _, lam, w, _ in worst:
            term = exact_term(self.alg, lam, self.B, self.model, self.omega_x, triplet=trip)
            if term is None:
                reason = (
                    f"second-moment map A_lambda is not strictly stable at lambda = {lam:.6g} "
                    "(decided in exact arithmetic)"
                )
                return self._made(math.inf, False, reason, 0.0, notes)
            t = term * type(term)(w)
            q, r = divmod(int(t.numerator) << _FIXED_BITS, int(t.denominator))
            low, high = low + q, high + q + (1 if r else 0)
        exact_lo, exact_hi = Fraction(low, 1 << _FIXED_BITS), Fraction(high, 1 << _FIXED_BITS)
        lo, hi = exact_lo + rest_total - rest_error, exact_hi + rest_total + rest_error
        U = float((exact_lo + exact_hi) / 2 + rest_total)
        notes = [*notes, f"{len(worst)} term(s) re-evaluated in exact rational arithmetic"]
        if hi < 1:
            return self._made(U, True, _reason(U), float(rest_error), notes)
        if lo >= 1:
            return self._made(U, False, _reason(U), float(rest_error), notes)
        notes.append("U is within rounding of 1 (the exact re-evaluation could not decide)")
        reason = "U within its certified error of 1: reported as not bounded"
        return self._made(U, False, reason, float(rest_error), notes, undecided=True)

    def _made(self, U, bounded, reason, err, notes, undecided=False) -> NoiseResult:
        return NoiseResult(
            U, bounded, reason, self.B, self.model, err, tuple(notes), undecided, self.omega
        )


def _second_moment_radius(
    alg: MemoryAlgorithm, lam: np.ndarray, kappa: float, shift: float = 0.0
) -> np.ndarray:
    """Spectral radius of ``A_lambda(X) = S X S^T - kappa lambda^2 (r^T X r) v v^T`` with
    ``S = S_{lambda + shift}``."""
    n = alg.M + 1
    _, v, r = alg.numeric_system()
    mats = alg.update_matrices(lam + shift)
    kron = np.einsum("kij,kab->kiajb", mats, mats).reshape(-1, n * n, n * n)
    rank1 = np.outer(np.outer(v, v).ravel(), np.outer(r, r).ravel())
    ops = kron - kappa * lam[:, None, None] ** 2 * rank1
    return np.abs(np.linalg.eigvals(ops)).max(axis=-1)


def _reason(U: float) -> str:
    return (
        "U < 1: mean loss stays bounded (Theorem 3)"
        if U < 1
        else "U >= 1: mean loss diverges under mini-batch noise (Theorem 3)"
    )
