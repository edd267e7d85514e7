"""Memory-M algorithms (docs §1): the one representation every analysis starts from.

A memory-M algorithm keeps the iterate ``w`` and ``M`` auxiliary vectors ``u`` and updates

    w_{t+1} = w_t - alpha * grad L(w_t + a^T u_t) + b^T u_t
    u_{t+1} =       c     * grad L(w_t + a^T u_t) + D u_t

The class stores ``(alpha, a, b, c, D)`` as exact sympy objects; all derived objects (update
matrix, characteristic polynomial, multistep form, effective learning rate) live in
:mod:`stability.charpoly` and are exposed here as thin methods; the named constructors and
the registry of methods live in :mod:`stability.methods`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sympy as sp

from . import symbols as S
from ._values import to_exact, to_sympy
from .charpoly import (
    charpoly,
    effective_lr,
    leading_eigenvalue_series,
    to_multistep,
    triplet,
    update_matrix,
)
from .errors import ConfigError, describe, show

__all__ = ["MemoryAlgorithm", "update_matrices"]


def _vector(value: Any, name: str, length: int | None) -> sp.ImmutableMatrix:
    """Column vector of sympy scalars from a sequence, array, sympy Matrix or (M=1) scalar."""
    if value is None:
        raise ConfigError(f"{name} is required")
    if isinstance(value, sp.MatrixBase):
        if value.cols != 1 and value.rows != 1 and len(value) != 0:
            raise ConfigError(f"{name} must be a vector, got a {value.rows}x{value.cols} matrix")
        items = list(value)
    elif isinstance(value, str | bytes):
        raise ConfigError(f"{name} must be a sequence of numbers, got a string {value!r}")
    elif hasattr(value, "shape") and getattr(value, "ndim", 1) == 0:
        items = [value]
    elif isinstance(value, Iterable):
        items = list(value)
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape) > 1 and not (len(shape) == 2 and 1 in shape):
            raise ConfigError(f"{name} must be a vector, got an array of shape {tuple(shape)}")
        if shape is not None and len(shape) == 2:
            items = list(value.ravel())
    else:
        items = [value]
    entries = [to_sympy(x, f"{name}[{i}]") for i, x in enumerate(items)]
    if length is not None and len(entries) != length:
        raise ConfigError(
            f"{name} must have length M = {length} (the length of b), got {len(entries)}"
        )
    return sp.ImmutableMatrix(len(entries), 1, entries)


def _matrix(value: Any, name: str, size: int) -> sp.ImmutableMatrix:
    """Square ``size x size`` matrix of sympy scalars (a scalar is accepted when size == 1)."""
    if isinstance(value, str | bytes):
        raise ConfigError(f"{name} must be a matrix of numbers, got a string {value!r}")
    if isinstance(value, sp.MatrixBase):
        rows = [list(value.row(i)) for i in range(value.rows)]
    elif isinstance(value, Iterable) and getattr(value, "ndim", 1) != 0:
        rows = [
            list(r) if isinstance(r, Iterable) and getattr(r, "ndim", 1) != 0 else [r]
            for r in value
        ]
    elif size == 1:
        rows = [[value]]
    else:
        raise ConfigError(f"{name} must be a {size}x{size} matrix, got {describe(value)}")
    if len(rows) != size or any(len(r) != size for r in rows):
        widths = {len(r) for r in rows}
        got = (
            f"{len(rows)}x{widths.pop() if len(widths) == 1 else 0}"
            if len(widths) <= 1
            else "ragged rows"
        )
        raise ConfigError(f"{name} must be a {size}x{size} matrix (M = {size}), got {got}")
    entries = [to_sympy(x, f"{name}[{i},{j}]") for i, r in enumerate(rows) for j, x in enumerate(r)]
    return sp.ImmutableMatrix(size, size, entries)


class MemoryAlgorithm:
    r"""A first-order algorithm with ``M`` auxiliary vectors (docs §1, paper eq. 3).

    Parameters
    ----------
    alpha : number or sympy expression
        Gradient step on the iterate.
    b, c : sequences of length M
        How memory enters the iterate update, and how the gradient enters the memory.
    D : M x M matrix
        Memory transition (a scalar is accepted when M = 1).
    a : sequence of length M, optional
        Gradient evaluated at ``w + a^T u`` (Nesterov-style look-ahead); zero by default.
    name : str, optional
        Label used in reprs and reports.

    Notes
    -----
    Entries may be ints, floats, :class:`fractions.Fraction` (kept exact), numpy scalars or
    sympy expressions (symbols allowed). Strings are rejected: nothing is ever parsed.

    Examples
    --------
    >>> from stability import MemoryAlgorithm, symbols as S
    >>> hb = MemoryAlgorithm(S.alpha, [S.beta], [-S.alpha], [[S.beta]])
    >>> hb.M
    1
    >>> hb.charpoly().P.as_expr()
    beta + xi**2 + xi*(-beta - 1)
    >>> hb.effective_lr()
    -alpha/(beta - 1)
    """

    __slots__ = ("_D", "_a", "_alpha", "_b", "_c", "_cache", "name")

    def __init__(
        self,
        alpha: Any,
        b: Any = (),
        c: Any = (),
        D: Any = (),
        a: Any = None,
        *,
        name: str | None = None,
    ) -> None:
        self._alpha = to_sympy(alpha, "alpha")
        self._b = _vector(b, "b", None)
        M = self._b.rows
        self._c = _vector(c, "c", M)
        self._D = _matrix(D, "D", M)
        self._a = sp.ImmutableMatrix.zeros(M, 1) if a is None else _vector(a, "a", M)
        self.name = name or f"memory-{M}"
        self._cache: dict[Any, Any] = {}

    # -- the parameters ----------------------------------------------------------------
    @property
    def alpha(self) -> sp.Expr:
        return self._alpha

    @property
    def a(self) -> sp.ImmutableMatrix:
        return self._a

    @property
    def b(self) -> sp.ImmutableMatrix:
        return self._b

    @property
    def c(self) -> sp.ImmutableMatrix:
        return self._c

    @property
    def D(self) -> sp.ImmutableMatrix:
        return self._D

    @property
    def M(self) -> int:
        """Memory size (number of auxiliary vectors)."""
        return self._b.rows

    @property
    def S0(self) -> sp.ImmutableMatrix:
        """``S_0 = [[1, b^T], [0, D]]``, the update matrix at zero curvature."""
        M = self.M
        top = sp.Matrix([[1]]).row_join(self._b.T) if M else sp.Matrix([[1]])
        if not M:
            return sp.ImmutableMatrix(top)
        bottom = sp.zeros(M, 1).row_join(self._D)
        return sp.ImmutableMatrix(top.col_join(bottom))

    @property
    def v(self) -> sp.ImmutableMatrix:
        """Injection vector ``v = (-alpha, c)``: where the gradient (and its noise) enters."""
        return sp.ImmutableMatrix([-self._alpha, *self._c])

    @property
    def r(self) -> sp.ImmutableMatrix:
        """Read-out vector ``r = (1, a)``: the point where the gradient is evaluated."""
        return sp.ImmutableMatrix([1, *self._a])

    @property
    def free_symbols(self) -> set[sp.Symbol]:
        return set().union(
            *(m.free_symbols for m in (self._a, self._b, self._c, self._D)),
            self._alpha.free_symbols,
        )

    @property
    def is_numeric(self) -> bool:
        """True when no entry contains a free symbol."""
        return not self.free_symbols

    @property
    def has_lookahead(self) -> bool:
        """True when ``a != 0`` (gradient evaluated at a shifted point)."""
        return any(not x.is_zero for x in self._a)

    # -- derived objects (mathematics in stability.charpoly) ------------------------------
    def update_matrix(self, lam: Any = S.lam) -> sp.ImmutableMatrix:
        """``S_lambda = S_0 + lambda v r^T`` (see :func:`stability.charpoly.update_matrix`)."""

        return update_matrix(self, lam)

    def charpoly(self):  # -> CharPoly
        """``chi_lambda = P - lambda Q`` (see :func:`stability.charpoly.charpoly`)."""
        if "charpoly" not in self._cache:
            self._cache["charpoly"] = charpoly(self)
        return self._cache["charpoly"]

    def to_multistep(self):  # -> Multistep
        """Multistep coefficients of Theorem 1 (see :func:`stability.charpoly.to_multistep`)."""

        return to_multistep(self)

    def effective_lr(self, method: str = "charpoly") -> sp.Expr:
        """Effective learning rate, eq. 22 (see :func:`stability.charpoly.effective_lr`)."""

        return effective_lr(self, method=method)

    def triplet(self):  # -> Triplet
        """Memory-1 triplet ``(beta, q0, q1)`` (see :func:`stability.charpoly.triplet`)."""

        return triplet(self)

    def leading_eigenvalue_series(self, order: int = 1) -> sp.Expr:
        """Theorem 4 expansion (see :func:`stability.charpoly.leading_eigenvalue_series`)."""

        return leading_eigenvalue_series(self, order)

    # -- conveniences -----------------------------------------------------------------
    def subs(self, *args: Any, **kwargs: Any) -> MemoryAlgorithm:
        """Substitute values for symbols in every entry (sympy ``subs`` semantics).

        Values are validated like constructor arguments (strings are refused).
        """
        if args and isinstance(args[0], Mapping):
            for key, value in args[0].items():
                to_sympy(value, str(key))

        def sub(x: Any) -> Any:
            return x.subs(*args, **kwargs)

        return MemoryAlgorithm(
            sub(self._alpha),
            sub(self._b),
            sub(self._c),
            sub(self._D),
            sub(self._a),
            name=self.name,
        )

    def to_exact(self) -> MemoryAlgorithm:
        """The same algorithm with every float replaced by the exact rational of its value.

        For algorithms made by a named constructor from floats, this is the constructor
        applied to the exact binary values of its arguments (so ``lr * momentum`` is the exact
        product, not the float one); otherwise every stored float is converted.
        """

        if "exact" in self._cache:
            return self._cache["exact"]
        return MemoryAlgorithm(
            to_exact(self._alpha),
            self._b.applyfunc(to_exact),
            self._c.applyfunc(to_exact),
            self._D.applyfunc(to_exact),
            self._a.applyfunc(to_exact),
            name=self.name,
        )

    def numeric_arrays(self) -> dict[str, Any]:
        """Float numpy arrays ``alpha, a, b, c, D`` (raises if a symbol is left)."""
        import numpy as np

        if not self.is_numeric:
            names = ", ".join(sorted(str(s) for s in self.free_symbols))
            raise ConfigError(f"algorithm has free symbols ({names}); substitute numbers first")
        M = self.M
        return {
            "alpha": float(self._alpha),
            "a": np.array([float(x) for x in self._a], dtype=float),
            "b": np.array([float(x) for x in self._b], dtype=float),
            "c": np.array([float(x) for x in self._c], dtype=float),
            "D": np.array(
                [[float(self._D[i, j]) for j in range(M)] for i in range(M)], dtype=float
            ).reshape(M, M),
        }

    def numeric_system(self) -> tuple[Any, Any, Any]:
        """Float arrays ``(S_0, v, r)`` so that ``S_lambda = S_0 + lambda v r^T``."""
        import numpy as np

        if "system" not in self._cache:
            p = self.numeric_arrays()
            S0 = np.array(self.S0.evalf(), dtype=float).reshape(self.M + 1, self.M + 1)
            self._cache["system"] = (S0, np.array([-p["alpha"], *p["c"]]), np.array([1.0, *p["a"]]))
        S0, v, r = self._cache["system"]
        return S0.copy(), v.copy(), r.copy()

    def update_matrices(self, lam: Any) -> Any:
        """Float ``S_lambda`` for an array of curvatures: shape ``lam.shape + (M+1, M+1)``
        (see :func:`update_matrices`).

        >>> from stability import heavy_ball
        >>> heavy_ball(0.5, 0.5).update_matrices([0.0, 2.0])[1]
        array([[ 0. ,  0.5],
               [-1. ,  0.5]])
        """
        return update_matrices(*self.numeric_system(), lam)

    def _key(self) -> tuple:
        return (self._alpha, self._a, self._b, self._c, self._D)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MemoryAlgorithm):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        def vec(m: sp.MatrixBase) -> str:
            return "[" + ", ".join(show(x) for x in m) + "]"

        D = "[" + ", ".join(vec(self._D.row(i)) for i in range(self.M)) + "]"
        parts = [f"alpha={show(self._alpha)}", f"b={vec(self._b)}", f"c={vec(self._c)}", f"D={D}"]
        if self.has_lookahead:
            parts.append(f"a={vec(self._a)}")
        return f"MemoryAlgorithm({', '.join(parts)}, name={self.name!r})"

    def _repr_latex_(self) -> str:
        from .symbols import latex

        name = self.name.replace("_", r"\_")
        return (
            rf"$\text{{{name} (memory {self.M})}}:\quad S_\lambda = {latex(self.update_matrix())}"
            rf",\quad \alpha_{{\mathrm{{eff}}}} = {latex(self.effective_lr())}$"
        )


def update_matrices(S0: Any, v: Any, r: Any, lam: Any) -> Any:
    """The one batched construction of ``S_lambda = S_0 + lambda v r^T`` (float64): one
    ``(n, n)`` matrix per curvature in ``lam``, shape ``lam.shape + (n, n)``.

    >>> import numpy as np
    >>> update_matrices(np.eye(1), np.array([-0.5]), np.array([1.0]), [1.0, 2.0])[:, 0, 0]
    array([0.5, 0. ])
    """
    import numpy as np

    lam_a = np.asarray(lam, dtype=float)
    return S0 + lam_a[..., None, None] * np.outer(v, r)
