"""Certified verdicts on a grid of torch SGD configs, streamed to a file (``stability sweep``).

The grid ``lr x momentum x dampening x weight_decay`` is never materialised: the learning-rate
axis is cut into slabs, each slab is checked by broadcasting against the other three axes, and
its rows are appended to the output. Memory therefore stays bounded (a few slabs of about
``SWEEP_CHUNK`` configs) whatever the grid size; the output is written to a temporary file in
the destination folder and renamed at the end, so a failed or refused sweep never touches an
existing file.

Everything that can be refused is refused before the first byte is written: the axis ranges
(checked on the axes' extremes by the same checker that runs the sweep), the grid size, the
output suffix and the free disk space.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..checkers.bounds import memory1_noise_bounds
from ..checkers.families import family_triplet, torch_sgd_margins
from ..errors import ConfigError, describe
from ..noise.models import get_noise_model
from ..noise.spectra import PowerLawSpectrum, Spectrum, as_spectrum

__all__ = [
    "Axis",
    "MAX_AXIS",
    "MAX_CONFIGS",
    "NAMES",
    "SWEEP_CHUNK",
    "SweepSummary",
    "publish",
    "sweep",
]

SWEEP_CHUNK = 2_000_000
"""Configs per slab (a slab is a range of learning rates)."""
MAX_CONFIGS = 10**9
"""Largest grid a sweep accepts (about 10 GB of NPZ output)."""
MAX_AXIS = 10**6
"""Largest momentum / dampening / weight-decay axis (the long axis belongs on ``lr``)."""
NAMES = ("lr", "momentum", "dampening", "weight_decay")
_CSV_BYTES = 120  # a CSV row of 8 numbers printed with 17 significant digits, at most


@dataclass(frozen=True)
class Axis:
    """Values of one grid axis: an explicit list, or ``num`` points from ``start`` to ``stop``
    (:func:`numpy.linspace`), generated slab by slab and never held whole unless asked."""

    name: str
    values: tuple[float, ...] | None = None
    start: float = 0.0
    stop: float = 0.0
    num: int = 0

    @classmethod
    def linspace(cls, name: str, start: float, stop: float, num: int) -> Axis:
        if not 1 <= num <= MAX_CONFIGS:
            raise ConfigError(f"{name} count must be an integer in [1, 1e9], got {num}")
        return cls(name, None, float(start), float(stop), int(num))

    @classmethod
    def of(cls, name: str, values: Any) -> Axis:
        vals = tuple(float(v) for v in values)
        if not vals:
            raise ConfigError(f"{name} must have at least one value")
        return cls(name, vals)

    @property
    def size(self) -> int:
        return len(self.values) if self.values is not None else self.num

    def extremes(self) -> np.ndarray:
        """The smallest and largest value (the range checks need nothing else)."""
        if self.values is not None:
            return np.array([min(self.values), max(self.values)])
        return np.array([min(self.start, self.stop), max(self.start, self.stop)])

    def slab(self, i0: int, i1: int) -> np.ndarray:
        """Values ``i0 .. i1-1``, equal to ``numpy.linspace(...)[i0:i1]``."""
        if self.values is not None:
            return np.array(self.values[i0:i1], dtype=float)
        if self.num == 1:
            return np.full(i1 - i0, self.start)[: max(0, min(i1, 1) - i0)]
        step = (self.stop - self.start) / (self.num - 1)
        out = np.arange(i0, min(i1, self.num), dtype=float) * step + self.start
        if i1 >= self.num and out.size:
            out[-1] = self.stop
        return out

    def array(self) -> np.ndarray:
        return self.slab(0, self.size)


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep wrote: grid shape, number of configs and of stable ones, the file."""

    shape: tuple[int, ...]
    n: int
    n_stable: int
    out: Path

    def __str__(self) -> str:
        pct = 100 * self.n_stable / self.n
        return f"{self.n:,} configs, {self.n_stable:,} stable ({pct:.1f}%), written to {self.out}"


def _progress(enabled: bool) -> Callable[[int, int], None]:
    """A stderr line updated after each slab: share done, time spent, time left (estimated
    from the rate so far); after the first slab, the estimated run time on its own line."""
    start = time.perf_counter()
    first = [True]

    def show(done: int, n: int) -> None:
        if enabled:
            spent = time.perf_counter() - start
            if first[0] and 0 < done < n:
                sys.stderr.write(
                    f"sweep: {n:,} configs; estimated run time ~{spent * n / done:.0f} s "
                    f"(from the first {done:,})\n"
                )
            first[0] = False
            left = spent * (n - done) / done if done else float("nan")
            sys.stderr.write(
                f"\rsweep: {100 * done / n:5.1f}% ({done:,}/{n:,} configs), {spent:.0f} s spent, "
                f"~{left:.0f} s left "
            )
            if done == n:
                sys.stderr.write("\n")

    return show


def sweep(
    axes: dict[str, Axis],
    *,
    out: str | os.PathLike[str],
    lambda_max: float,
    nesterov: bool = False,
    eigenvalues: np.ndarray | None = None,
    spectrum: Spectrum | PowerLawSpectrum | None = None,
    batch_size: float | None = None,
    noise: str = "gaussian",
    progress: bool | None = None,
) -> SweepSummary:
    """Certified verdicts (and ``U`` with ``batch_size``) for every config of the grid.

    ``axes`` maps ``lr``, ``momentum``, ``dampening``, ``weight_decay`` to :class:`Axis`
    objects (missing ones are ``[0]``). CSV rows are ``lr, momentum, dampening,
    weight_decay, strict_stable, margin, U, stable, U_error``; NPZ holds the four axes and
    arrays of the grid's shape (``strict_stable``, ``margin``, ``stable``, and ``U`` with
    ``U_error`` when computed) plus ``nesterov`` and ``lambda_max``.

    With ``batch_size``, ``U`` is certified on a compressed spectrum
    (:func:`stability.noisebounds.memory1_noise_bounds`): the true sum lies within
    ``U_error`` of ``U`` and ``stable`` is decided by the bounds. ``spectrum`` (an eigenvalue
    array, a :class:`~stability.noise.Spectrum` or a finite power law) replaces
    ``eigenvalues``.
    """
    if spectrum is None and eigenvalues is not None:
        spectrum = Spectrum.from_arrays(eigenvalues)
    ax = [axes.get(n) or Axis.of(n, [0.0]) for n in NAMES]
    shape = tuple(a.size for a in ax)
    n = math.prod(shape)  # Python ints: no overflow, no materialised axis
    path = _check_grid(ax, n, out)
    _check_ranges(ax, nesterov, lambda_max)
    noisy = batch_size is not None
    noise_setup = _noise_setup(ax, spectrum, noise, nesterov) if noisy else None
    per_config = _CSV_BYTES if path.suffix == ".csv" else 2 * (10 + 16 * noisy)
    folder = path.parent if str(path.parent) else Path(".")
    free = shutil.disk_usage(folder).free
    if n * per_config > free:
        raise ConfigError(
            f"the sweep needs about {n * per_config / 1e9:.1f} GB in {folder}, only "
            f"{free / 1e9:.1f} GB are free"
        )
    show = _progress(
        progress if progress is not None else (n > 4_000_000 or (noisy and n > 200_000))
    )
    writer = _CsvWriter(path, NAMES) if path.suffix == ".csv" else _NpzWriter(path, shape, noisy)
    try:
        n_stable = _run_slabs(ax, writer, show, nesterov, lambda_max, noise_setup, batch_size)
        writer.finish({a.name: a for a in ax}, nesterov, lambda_max)
    except BaseException:
        writer.abort()
        raise
    return SweepSummary(shape, n, n_stable, path)


def _check_grid(ax: list[Axis], n: int, out: str | os.PathLike[str]) -> Path:
    """The grid size and the output path (suffix, folder, writable) before anything runs."""
    if n > MAX_CONFIGS:
        raise ConfigError(f"the grid has {n:,} configs; a sweep takes at most {MAX_CONFIGS:,}")
    for a in ax[1:]:
        if a.size > MAX_AXIS:
            raise ConfigError(
                f"{a.name} has {a.size:,} values; at most {MAX_AXIS:,} (sweeps "
                "stream over lr: put the long axis on --lr)"
            )
    if str(out).endswith(("/", os.sep)):  # Path() would drop the slash: "g.csv/" -> "g.csv"
        raise ConfigError(f"--out names a directory (it ends in a slash): {out}")
    path = Path(out)
    if path.suffix not in (".csv", ".npz"):
        raise ConfigError(f"--out must end in .csv or .npz, got {describe(path.suffix)}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"--out folder does not exist: {folder}")
    if path.is_dir():
        raise ConfigError(f"--out names a directory: {path}")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"--out folder is not writable: {folder}")
    return path


def _check_ranges(ax: list[Axis], nesterov: bool, lambda_max: float) -> None:
    """The axis ranges, checked on the extremes of each axis by the checker itself."""
    probe = [
        a.extremes().reshape([-1 if i == j else 1 for j in range(4)]) for i, a in enumerate(ax)
    ]
    try:
        torch_sgd_margins(
            lr=probe[0],
            momentum=probe[1],
            dampening=probe[2],
            weight_decay=probe[3],
            nesterov=nesterov,
            lambda_max=lambda_max,
        )
    except ConfigError as exc:  # the probe's positions mean nothing to the user
        raise ConfigError(
            re.sub(r" \(\d+ config\(s\), first at flat index \d+\)", "", str(exc))
        ) from None


def _noise_setup(ax: list[Axis], spectrum: Any, noise: str, nesterov: bool) -> tuple[Any, ...]:
    """``(spectrum, noise model, triplet of the family)`` of a noise sweep."""
    if spectrum is None:
        raise ConfigError("--batch-size needs --spectrum or --power-law")
    if ax[3].size > 1:
        raise ConfigError("the noise sweep needs a single weight decay value")
    spectrum = as_spectrum(spectrum)
    if isinstance(spectrum, PowerLawSpectrum) and spectrum.N is None:
        raise ConfigError(
            "the noise sweep needs a finite power law (give N; any size works, the sum "
            "is certified on a compressed spectrum)"
        )
    _, triplet = family_triplet("torch_nesterov" if nesterov else "torch_sgd")
    return spectrum, get_noise_model(noise), triplet


def _run_slabs(
    ax: list[Axis],
    writer: Any,
    show: Callable[[int, int], None],
    nesterov: bool,
    lambda_max: float,
    noise_setup: tuple[Any, ...] | None,
    batch_size: float | None,
) -> int:
    """Check the grid slab by slab of learning rates, write each slab; the stable count."""
    shape = tuple(a.size for a in ax)
    n = math.prod(shape)
    other = [
        a.array().reshape([-1 if i == j else 1 for j in range(4)])
        for i, a in enumerate(ax)
        if i > 0
    ]
    per_row = n // shape[0]
    chunk = SWEEP_CHUNK if noise_setup is None else max(1, SWEEP_CHUNK // 100)
    rows = max(1, chunk // max(per_row, 1))
    n_stable = 0
    for i0 in range(0, shape[0], rows):
        lr = ax[0].slab(i0, i0 + rows).reshape(-1, 1, 1, 1)
        v = torch_sgd_margins(
            lr=lr,
            momentum=other[0],
            dampening=other[1],
            weight_decay=other[2],
            nesterov=nesterov,
            lambda_max=lambda_max,
        )
        U = None
        ok = v.stable
        if noise_setup is not None:
            spectrum, model, triplet = noise_setup
            mu, tau = other[0], other[1]
            trip = (
                triplet(lr, mu) if nesterov else triplet(lr, mu, np.where(mu == 0, 0.0, tau))
            )  # no buffer at mu = 0
            nb = memory1_noise_bounds(
                beta=trip[0],
                q0=trip[1],
                q1=trip[2],
                spectrum=spectrum,
                shift=float(ax[3].slab(0, 1)[0]),
                batch_size=float(batch_size),
                tau1=model.tau1,
                tau2=model.tau2,
            )
            U = (
                np.broadcast_to(nb.U, v.stable.shape),
                np.broadcast_to(nb.error, v.stable.shape),
            )
            ok = v.stable & np.broadcast_to(nb.bounded, v.stable.shape)
        n_stable += int(np.count_nonzero(ok))
        writer.write(lr, other, v.stable, v.margin, U, ok)
        show(min(shape[0], i0 + rows) * per_row, n)
    return n_stable


def publish(tmp: str | Path, path: Path) -> None:
    """Give the temporary file the permissions a new file gets (``mkstemp`` makes it 0600)
    and rename it onto ``path``."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


class _CsvWriter:
    """Rows appended slab by slab to a temporary file, renamed onto ``path`` at the end."""

    def __init__(self, path: Path, names: tuple[str, ...]) -> None:
        self.path = path
        fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".part")
        self.tmp = Path(tmp)
        self.handle: IO[str] = os.fdopen(fd, "w")
        self.handle.write(
            ",".join([*names, "strict_stable", "margin", "U", "stable", "U_error"]) + "\n"
        )

    def write(
        self,
        lr: np.ndarray,
        other: list[np.ndarray],
        stable: np.ndarray,
        margin: np.ndarray,
        U: tuple[np.ndarray, np.ndarray] | None,
        ok: np.ndarray,
    ) -> None:
        u, err = (np.nan, np.nan) if U is None else U
        part = np.broadcast_arrays(lr, *other, stable, margin, u, ok, err)
        np.savetxt(
            self.handle,
            np.column_stack([np.asarray(c, dtype=float).ravel() for c in part]),
            delimiter=",",
            fmt="%.17g",
        )

    def finish(self, axes: dict[str, Axis], nesterov: bool, lambda_max: float) -> None:
        self.handle.close()
        publish(self.tmp, self.path)

    def abort(self) -> None:
        self.handle.close()
        self.tmp.unlink(missing_ok=True)


class _NpzWriter:
    """Each grid array streamed into its own ``.npy`` file, then stored (uncompressed) in a
    zip that :func:`numpy.load` reads as an NPZ; slabs along the first axis are contiguous in
    C order, so appending them yields the whole array."""

    def __init__(self, path: Path, shape: tuple[int, ...], noisy: bool) -> None:
        self.path, self.shape = path, shape
        self.dir = Path(tempfile.mkdtemp(dir=path.parent or ".", prefix=f".{path.name}."))
        names = {"strict_stable": "|b1", "margin": "<f8", "stable": "|b1"}
        if noisy:
            names["U"] = "<f8"
            names["U_error"] = "<f8"
        self.files: dict[str, IO[bytes]] = {}
        for name, descr in names.items():
            fh = open(self.dir / f"{name}.npy", "wb")
            np.lib.format.write_array_header_2_0(
                fh, {"descr": descr, "fortran_order": False, "shape": shape}
            )
            self.files[name] = fh

    def write(
        self,
        lr: np.ndarray,
        other: list[np.ndarray],
        stable: np.ndarray,
        margin: np.ndarray,
        U: tuple[np.ndarray, np.ndarray] | None,
        ok: np.ndarray,
    ) -> None:
        u, err = (None, None) if U is None else U
        arrays = {"strict_stable": stable, "margin": margin, "stable": ok, "U": u, "U_error": err}
        for name, fh in self.files.items():
            dtype = bool if name in ("strict_stable", "stable") else "<f8"
            fh.write(np.ascontiguousarray(arrays[name], dtype=dtype).tobytes())

    def finish(self, axes: dict[str, Axis], nesterov: bool, lambda_max: float) -> None:
        for fh in self.files.values():
            fh.close()
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent or ".", prefix=f".{self.path.name}.", suffix=".part"
        )
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                small = {
                    **{n: a.array() for n, a in axes.items()},
                    "nesterov": np.array(nesterov),
                    "lambda_max": np.array(lambda_max),
                }
                for name, arr in small.items():
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, arr, allow_pickle=False)
                for name in self.files:
                    zf.write(self.dir / f"{name}.npy", f"{name}.npy")
            publish(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def abort(self) -> None:
        for fh in self.files.values():
            fh.close()
        shutil.rmtree(self.dir, ignore_errors=True)
