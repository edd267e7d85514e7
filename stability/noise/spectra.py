"""Curvature spectra: finite eigenvalue lists with weights, and power laws (docs §4.2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from .._values import real_array, to_exact, to_float, to_sympy
from ..errors import ConfigError, describe, show

__all__ = ["MAX_EIGENVALUES", "PowerLawSpectrum", "Spectrum", "as_spectrum", "power_law"]


@dataclass(frozen=True)
class Spectrum:
    """A finite spectrum: eigenvalues ``lam`` with multiplicities/weights ``weights``,
    optional target coefficients ``c2`` (``c_k^2 = <e_k, w*>^2``) and ``notes`` on where it
    came from (an estimate says so: the reports carry the notes as caveats).

    Immutable once built: its arrays are read-only, and an array someone else could still
    change (a writeable array, or a view of one) is copied first. So results remembered per
    spectrum (the compressed bins of the certified bounds) can never go stale. A read-only
    array that nothing can change (``numpy.load(..., mmap_mode="r")``) is used as it is, and
    unit weights stay a zero-stride view: no second array as long as the spectrum.
    """

    lam: np.ndarray
    weights: np.ndarray
    c2: np.ndarray | None = None
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        lam = self.lam
        unit = bool(np.all(self.weights == 1))
        span = f" in [{show(lam.min())}, {show(lam.max())}]" if lam.size else ""
        parts = [
            f"{lam.size:,} eigenvalue{'s' if lam.size != 1 else ''}{span}",
            "unit weights" if unit else f"weights summing to {show(self.weights.sum())}",
        ]
        if self.c2 is not None:
            parts.append("with target coefficients")
        parts += [f"note: {n}" for n in self.notes]
        return f"Spectrum({'; '.join(parts)})"

    def __post_init__(self) -> None:
        for name in ("lam", "weights", "c2"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _frozen(value))

    @classmethod
    def from_arrays(
        cls, lam: Any, weights: Any = None, c2: Any = None, notes: tuple[str, ...] = ()
    ) -> Spectrum:
        lam_a = _positive_array(lam, "eigenvalues")
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
        arrays = [
            a if a is None or _shares(a, given) else _owned(a)
            for a, given in ((lam_a, lam), (w, weights), (c, c2))
        ]  # arrays made here from the input are ours: no copy needed
        return cls._of_own(*arrays, tuple(notes))

    @classmethod
    def _of_own(
        cls, lam: np.ndarray, weights: np.ndarray, c2: np.ndarray | None = None, notes: Any = ()
    ) -> Spectrum:
        """A spectrum of arrays that are read-only or nobody else holds (made inside the
        package): frozen in place (the arrays shared with a caller are copied)."""
        self = object.__new__(cls)
        for name, value in (("lam", lam), ("weights", weights), ("c2", c2)):
            if value is not None and value.flags.writeable:
                value = _frozen(value)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "notes", tuple(notes))
        return self

    @property
    def lambda_max(self) -> float:
        return float(self.lam.max())


def _shares(a: np.ndarray, given: Any) -> bool:
    return isinstance(given, np.ndarray) and np.shares_memory(a, given)


def _owned(a: np.ndarray) -> np.ndarray:
    """Freeze an array only the package holds, in place (no copy)."""
    if a.flags.writeable:
        a.flags.writeable = False
    return a


def _frozen(a: Any) -> np.ndarray:
    """``a`` as an array nobody can change: itself when it is read-only all the way down to
    its memory (a read-only memory map), a read-only zero-stride view for a constant, else a
    read-only copy."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 1 and a.size > 1 and a.strides[0] == 0:  # a constant (unit weights)
        return np.broadcast_to(float(a[0]), a.shape)
    safe, base = not a.flags.writeable, a
    while safe and isinstance(base.base, np.ndarray):
        base = base.base
        safe = not base.flags.writeable
    if safe:  # an array owning its memory can be made writeable again: only a read-only
        try:  # buffer underneath (a memory map opened for reading) cannot change
            safe = base.base is not None and memoryview(base.base).readonly
        except TypeError:
            safe = False
    if not safe:
        a = a.copy()
        a.flags.writeable = False
    return a


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
        return Spectrum._of_own(
            _owned(np.concatenate([head.lam, lam])),
            _owned(np.concatenate([head.weights, count])),
            None if c2 is None else _owned(c2),
        )

    def truncated(self, n: int) -> Spectrum:
        lam = self.eigenvalues(n)
        c2 = None
        if self.zeta is not None:
            k = np.arange(1, n + 1, dtype=float)
            c2 = self.Q * k ** (-self.zeta * self.nu - 1) / lam
        return Spectrum._of_own(
            _owned(lam), np.broadcast_to(1.0, (n,)), None if c2 is None else _owned(c2)
        )


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
