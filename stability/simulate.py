"""Run an algorithm on a gradient oracle (numeric trajectories, float64).

These are the plain iterations of docs §1 and Theorem 1, used to validate derived objects
against actual runs and to replay optimizer configurations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._values import real_array
from .algorithms import MemoryAlgorithm
from .charpoly import Multistep
from .errors import ConfigError, describe

__all__ = ["simulate", "simulate_multistep"]

_Grad = Callable[[np.ndarray], np.ndarray]


def _as_vector(x: Any, name: str) -> np.ndarray:
    arr = real_array(x, name)
    if arr.ndim != 1 or arr.size == 0:
        raise ConfigError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} must be finite")
    return arr


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int | np.integer) or isinstance(steps, bool) or steps < 0:
        raise ConfigError(f"steps must be an integer >= 0, got {describe(steps)}")


def simulate(alg: MemoryAlgorithm, grad: _Grad, w0: Any, steps: int, u0: Any = None) -> np.ndarray:
    """Iterates ``w_0 .. w_steps`` of ``alg`` from ``(w0, u0)`` (``u0 = 0`` by default).

    Returns an array of shape ``(steps + 1, d)``.

    >>> import numpy as np
    >>> from stability import gd
    >>> simulate(gd(0.5), lambda w: 2 * w, [1.0], 2)[:, 0]
    array([1., 0., 0.])
    """
    _check_steps(steps)
    p = alg.numeric_arrays()
    w = _as_vector(w0, "w0").copy()
    M, d = alg.M, w.size
    u = np.zeros((M, d)) if u0 is None else np.asarray(u0, dtype=float).reshape(M, d).copy()
    out = np.empty((steps + 1, d))
    out[0] = w
    for t in range(steps):
        g = np.asarray(grad(w + p["a"] @ u), dtype=float)
        w, u = w - p["alpha"] * g + p["b"] @ u, np.outer(p["c"], g) + p["D"] @ u
        out[t + 1] = w
    return out


def simulate_multistep(ms: Multistep, grad: _Grad, history: Any, steps: int) -> np.ndarray:
    """Continue the Theorem 1 recurrence from ``history = [w_{-M}, ..., w_0]``.

    Returns the iterates ``w_{-M} .. w_steps`` (shape ``(M + 1 + steps, d)``).
    """
    _check_steps(steps)
    p = np.array([float(x) for x in ms.p])
    q = np.array([float(x) for x in ms.q])
    M = ms.M
    hist = np.asarray(history, dtype=float)
    if hist.ndim != 2 or hist.shape[0] != M + 1:
        raise ConfigError(f"history must have shape (M + 1, d) = ({M + 1}, d), got {hist.shape}")
    out = np.empty((M + 1 + steps, hist.shape[1]))
    out[: M + 1] = hist
    grads = [np.asarray(grad(x), dtype=float) for x in hist]
    for t in range(M, M + steps):
        window = out[t - M : t + 1]
        nxt = p @ window + q @ np.array(grads[-(M + 1) :])
        out[t + 1] = nxt
        grads.append(np.asarray(grad(nxt), dtype=float))
    return out
