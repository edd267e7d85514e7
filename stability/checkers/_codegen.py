"""Compile sympy expressions into numpy code that writes into reusable buffers.

``lambdify`` evaluates ``a*b + c`` as two numpy calls that each allocate a fresh array; on
the cache-sized blocks of :mod:`stability.checkers` those allocations (and the page faults of
memory handed back to the system) cost about as much as the arithmetic. :func:`inplace_numpy`
runs the same common-subexpression elimination (``sympy.cse``) and then emits every operation
as a ufunc call with ``out=`` into a per-thread buffer, reusing a buffer as soon as the value
in it is dead. The generated source comes only from our own expressions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

__all__ = ["inplace_numpy", "scalar_lines"]


@dataclass(frozen=True)
class _Value:
    code: str  # a Python expression: a number, an input or a buffer name
    buf: int | None = None  # buffer index when the value lives in a buffer
    owned: bool = False  # a temporary the consumer may overwrite or free
    number: float | None = None


class _Emitter:
    def __init__(self, params: Sequence[sp.Symbol]) -> None:
        self.inputs = {p: f"a{i}" for i, p in enumerate(params)}
        self.cse: dict[sp.Symbol, _Value] = {}
        self.lines: list[str] = []
        self.free: list[int] = []
        self.count = 0

    # -- buffers ------------------------------------------------------------------------
    def new(self) -> int:
        if self.free:
            return self.free.pop()
        self.count += 1
        return self.count - 1

    def release(self, v: _Value) -> None:
        if v.owned and v.buf is not None:
            self.free.append(v.buf)

    def target(self, *vals: _Value) -> int:
        """A buffer for a result: an owned operand's (elementwise ufuncs allow it) or new."""
        for v in vals:
            if v.owned:
                return v.buf  # type: ignore[return-value]
        return self.new()

    def op(self, ufunc: str, a: _Value, b: _Value | None = None) -> _Value:
        args = [a] if b is None else [a, b]
        out = self.target(*args)
        for v in args:
            if v.owned and v.buf != out:
                self.release(v)
        self.line(ufunc, [v.code for v in args], out)
        return _Value(f"b{out}", out, True)

    def line(self, ufunc: str, operands: list[str], out: int) -> None:
        """Emit ``b<out> = ufunc(*operands)``."""
        self.lines.append(f"    np.{ufunc}({', '.join(operands)}, out=b{out})")

    # -- expressions --------------------------------------------------------------------
    def emit(self, e: sp.Expr) -> _Value:
        if e in self.inputs:
            return _Value(self.inputs[e])
        if e in self.cse:
            return self.cse[e]
        if e.is_Number:
            x = float(e)
            return _Value(repr(x), number=x)
        if isinstance(e, sp.Add):
            return self._add(e)
        if isinstance(e, sp.Mul):
            return self._mul(e)
        if isinstance(e, sp.Abs):
            v = self.emit(e.args[0])
            return (
                _Value(repr(abs(v.number)), number=abs(v.number))
                if v.number is not None
                else self.op("absolute", v)
            )
        if isinstance(e, sp.Pow) and e.exp.is_Integer and e.exp >= 2:
            base = self.emit(e.base)
            if base.number is not None:
                return _Value(repr(base.number ** int(e.exp)), number=base.number ** int(e.exp))
            out = self.new()  # base is read on every step, so the product needs its own
            self.line("multiply", [base.code, base.code], out)
            for _ in range(int(e.exp) - 2):
                self.line("multiply", [f"b{out}", base.code], out)
            self.release(base)
            return _Value(f"b{out}", out, True)
        raise NotImplementedError(f"no in-place rule for {type(e).__name__}")

    def _add(self, e: sp.Expr) -> _Value:
        terms = []
        for t in e.args:
            c, _ = t.as_coeff_Mul()
            terms.append((-1, self.emit(-t)) if c < 0 else (1, self.emit(t)))
        terms.sort(key=lambda st: st[0] < 0)  # start from a positive term when there is one
        sign, acc = terms[0]
        if sign < 0:
            acc = self._combine("subtract", _Value("0.0", number=0.0), acc)
        for sign, v in terms[1:]:
            acc = self._combine("add" if sign > 0 else "subtract", acc, v)
        return acc

    def _mul(self, e: sp.Expr) -> _Value:
        c, factors = e.as_coeff_mul()
        acc: _Value | None = None
        for f in factors:
            v = self.emit(f)
            acc = v if acc is None else self._combine("multiply", acc, v)
        if acc is None:
            return _Value(repr(float(c)), number=float(c))
        if c != 1:
            acc = self._combine("multiply", acc, _Value(repr(float(c)), number=float(c)))
        return acc

    def _combine(self, ufunc: str, a: _Value, b: _Value) -> _Value:
        if a.number is not None and b.number is not None:
            x = {
                "add": a.number + b.number,
                "subtract": a.number - b.number,
                "multiply": a.number * b.number,
            }[ufunc]
            return _Value(repr(x), number=x)
        return self.op(ufunc, a, b)


class ScalarEmitter(_Emitter):
    """The same operations, in the same order, as scalar assignments (for compiled loops):
    a compiled loop built from it rounds exactly as the numpy code does."""

    def line(self, ufunc: str, operands: list[str], out: int) -> None:
        if ufunc == "absolute":
            self.lines.append(f"    b{out} = abs({operands[0]})")
        else:
            a, b = operands
            symbol = {"add": "+", "subtract": "-", "multiply": "*"}[ufunc]
            self.lines.append(f"    b{out} = {a} {symbol} {b}")


def scalar_lines(
    params: Sequence[sp.Symbol], exprs: Sequence[sp.Expr], names: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Scalar statements evaluating ``exprs`` (inputs named ``names``) in the operation order
    of :func:`inplace_numpy`; returns ``(lines, output expressions)``. Lines are indented by
    four spaces; temporaries are ``b0, b1, ...``."""
    replacements, reduced = sp.cse(list(exprs))
    em = ScalarEmitter(params)
    em.inputs = dict(zip(params, names, strict=True))
    for sym, e in replacements:
        v = em.emit(e)
        if v.owned:  # a scalar temporary: copy it out, buffers are reused
            em.count += 1
            em.lines.append(f"    b{em.count - 1} = {v.code}")
            em.release(v)
            v = _Value(f"b{em.count - 1}")
        em.cse[sym] = _Value(v.code, None, False, v.number)
    outs = [em.emit(e).code for e in reduced]
    return em.lines, outs


class _Compiled:
    """The generated function with per-thread buffers; call it like the lambdified one."""

    def __init__(self, fn: Callable[..., list[Any]], nbuf: int, source: str) -> None:
        self._fn, self._nbuf, self.source = fn, nbuf, source
        self._local = threading.local()

    def __call__(self, *arrays: np.ndarray) -> list[Any]:
        shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
        size = int(np.prod(shape, dtype=np.int64))
        if not self._nbuf:
            return self._fn(*arrays)
        bufs = getattr(self._local, "bufs", None)
        if bufs is None or bufs[0].size < size:
            bufs = self._local.bufs = [np.empty(max(size, 1)) for _ in range(self._nbuf)]
        views = [b[:size].reshape(shape) for b in bufs]
        return self._fn(*arrays, *views)


def inplace_numpy(params: Sequence[sp.Symbol], exprs: Sequence[sp.Expr]) -> _Compiled:
    """A function ``f(*arrays) -> [values]`` evaluating ``exprs`` with buffer reuse.

    The returned arrays live in per-thread buffers: they are valid until the next call from
    the same thread. Raises :class:`NotImplementedError` for operations it has no rule for
    (the caller then keeps ``lambdify``).
    """
    replacements, reduced = sp.cse(list(exprs))
    em = _Emitter(params)
    last: dict[sp.Symbol, int] = {}
    for i, (_, e) in enumerate(replacements):
        for s in e.free_symbols:
            last[s] = i
    in_outputs = set().union(*(e.free_symbols for e in reduced)) if reduced else set()
    owner: set[sp.Symbol] = set()  # cse symbols that own their buffer (not aliases)
    for i, (sym, e) in enumerate(replacements):
        v = em.emit(e)
        em.cse[sym] = _Value(v.code, v.buf, False, v.number)
        if v.owned:
            owner.add(sym)
        for s, j in last.items():
            if j == i and s in owner and s not in in_outputs:
                em.release(_Value("", em.cse[s].buf, True))
    outs = [em.emit(e) for e in reduced]
    args = ", ".join([*em.inputs.values(), *(f"b{i}" for i in range(em.count))])
    body = "\n".join(em.lines) or "    pass"
    source = f"def _inplace({args}):\n{body}\n    return [{', '.join(v.code for v in outs)}]\n"
    namespace: dict[str, Any] = {"np": np}
    exec(compile(source, "<stability._codegen>", "exec"), namespace)  # our expressions only
    return _Compiled(namespace["_inplace"], em.count, source)
