"""The in-place numpy code generator against sympy's lambdify on every checker kernel."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from stability.checkers import _engine, _kernels
from stability.checkers import families as ck
from stability.checkers import triplets as tc
from stability.checkers._codegen import inplace_numpy


def all_kernels():
    out = [tc._theorem61_kernel(True), tc._theorem61_kernel(False), tc._interval_kernel()]
    for nest in (False, True):
        for zero in (
            frozenset(),
            frozenset({"dampening"}),
            frozenset({"weight_decay"}),
            frozenset({"dampening", "weight_decay"}),
        ):
            out += [ck._torch_kernel(nest, zero, True), ck._torch_kernel(nest, zero, False)]
    for name in ("gd", "heavy_ball", "nesterov", "memory1", "momentum_kick"):
        out += [ck._method_kernel(name, True)[0], ck._method_kernel(name, False)[0]]
    return out


def test_generated_kernels_equal_lambdify():
    rng = np.random.default_rng(0)
    kernels = all_kernels()
    assert len(kernels) == 29
    for k in kernels:
        params = [s for s in sorted(set().union(*(o.free_symbols for o in k.outputs)), key=str)]
        order = {p.name: p for p in params}
        syms = [order.get(name, sp.Symbol(name)) for name in k.params]
        ref = sp.lambdify(syms, list(k.outputs), modules="numpy")
        args = [rng.uniform(-3, 3, 5000) for _ in k.params]
        got, want = k.numeric(*args), ref(*args)
        for g, w in zip(got, want, strict=True):
            g, w = np.broadcast_to(g, (5000,)), np.broadcast_to(w, (5000,))
            np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-13 * np.abs(w).max())
        assert "np." in k.numeric.source  # generated, not the lambdify fallback


def test_powers_constants_and_shared_subexpressions():
    x, y = sp.symbols("x y", real=True)
    exprs = [
        x**3 - 2 * x * y + sp.Rational(1, 2),
        sp.Abs(x - y) * (x - y),
        sp.Integer(7),
        -(x + y),
        (x - y) ** 2 + x**3,
    ]
    f = inplace_numpy((x, y), exprs)
    xs, ys = np.linspace(-2, 2, 11), np.linspace(3, -1, 11)
    got = f(xs, ys)
    np.testing.assert_allclose(got[0], xs**3 - 2 * xs * ys + 0.5)
    np.testing.assert_allclose(got[1], np.abs(xs - ys) * (xs - ys))
    assert got[2] == 7.0
    np.testing.assert_allclose(got[3], -(xs + ys))
    np.testing.assert_allclose(got[4], (xs - ys) ** 2 + xs**3)
    # buffers are reused between calls but the inputs are never written
    before = xs.copy()
    f(xs, ys)
    np.testing.assert_array_equal(xs, before)


def test_results_are_per_thread_and_sized_per_call():
    x = sp.Symbol("x")
    f = inplace_numpy((x,), [2 * x + 1])
    assert f(np.arange(3.0))[0].tolist() == [1.0, 3.0, 5.0]
    assert f(np.arange(5.0))[0].tolist() == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert f(np.arange(2.0))[0].tolist() == [1.0, 3.0]


def test_expressions_without_operations():
    x = sp.Symbol("x")
    f = inplace_numpy((x,), [x, sp.Integer(3)])
    xs = np.arange(3.0)
    got = f(xs)
    assert got[0] is xs and got[1] == 3.0


def test_unsupported_operations_are_refused():
    x = sp.Symbol("x")
    with pytest.raises(NotImplementedError, match="sin"):
        inplace_numpy((x,), [sp.sin(x)])


def test_compile_falls_back_to_lambdify():
    from stability import symbols as S

    k = _kernels.compile_kernel([("c", 1 - 2 / (1 + S.beta**2))], (S.beta,))  # no rule for 1/x
    assert not hasattr(k.numeric, "source")  # lambdify's function
    v = _engine.run_kernel(k, {"beta": np.array([2.0, 0.5, 1.0])}, {})
    assert v.stable.tolist() == [True, False, False] and v.n_certified == 1
