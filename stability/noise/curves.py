"""The stability sum ``U`` along one parameter: the data behind the noise plots.

Compute first, draw second: these functions return :class:`SumCurve` objects (plain arrays and
labels) that tests and users can read directly; :mod:`stability.plots` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._values import real_array
from ..algorithms import MemoryAlgorithm
from ..methods import get_method, heavy_ball, memory1
from .sums import stability_sum

__all__ = ["SumCurve", "heavy_ball_vs_memory1", "stability_sum_vs_batch", "stability_sum_vs_lr"]


@dataclass(frozen=True)
class SumCurve:
    """``U`` at each ``x`` (``inf`` where a second-moment map is not strictly stable)."""

    x: np.ndarray
    U: np.ndarray
    label: str
    xlabel: str

    @property
    def finite(self) -> np.ndarray:
        """Where ``U`` is finite (the others are unstable second-moment maps)."""
        return np.isfinite(self.U)


def stability_sum_vs_batch(
    alg: MemoryAlgorithm, spectrum: Any, batch_sizes: Any, noise: Any = "gaussian"
) -> SumCurve:
    """``U`` against the batch size.

    >>> c = stability_sum_vs_batch(heavy_ball(0.5, 0.9), [1.0, 0.1], [1, 100])
    >>> bool(c.U[0] > c.U[1])
    True
    """
    bs = real_array(batch_sizes, "batch_sizes", low=1).ravel()
    U = np.array([stability_sum(alg, spectrum, b, noise).U for b in bs])
    return SumCurve(bs, U, alg.name, "batch size B")


def stability_sum_vs_lr(
    family: str, spectrum: Any, batch_size: float, lrs: Any, noise: Any = "gaussian", **fixed: Any
) -> SumCurve:
    """``U`` against the learning rate of a named family (other parameters fixed)."""
    method = get_method(family)
    lr = real_array(lrs, "lrs", low=0, low_open=True).ravel()
    U = np.array(
        [stability_sum(method.numeric(lr=x, **fixed), spectrum, batch_size, noise).U for x in lr]
    )
    return SumCurve(lr, U, f"{family} {fixed}", "learning rate")


def heavy_ball_vs_memory1(
    spectrum: Any,
    batch_size: float,
    alpha_effs: Any,
    q0: float,
    kappa: float = 1.0,
    noise: Any = "se0",
) -> tuple[SumCurve, SumCurve]:
    """Theorem 7: ``U`` at equal effective learning rate for heavy ball (``q0 = 0``) and a
    memory-1 method with ``q0 > 0``, both with ``1 - beta = alpha_eff^-kappa``."""
    a = real_array(alpha_effs, "alpha_effs", low=0, low_open=True).ravel()
    U_hb, U_m1 = [], []
    for x in a:
        delta = x ** (-kappa)
        U_hb.append(stability_sum(heavy_ball(x * delta, 1 - delta), spectrum, batch_size, noise).U)
        U_m1.append(
            stability_sum(memory1(1 - delta, q0, -q0 - delta * x), spectrum, batch_size, noise).U
        )
    xlabel = "effective learning rate alpha_eff"
    return (
        SumCurve(a, np.array(U_hb), "heavy ball (q0 = 0)", xlabel),
        SumCurve(a, np.array(U_m1), f"memory-1, q0 = {q0:g}, kappa = {kappa:g}", xlabel),
    )
