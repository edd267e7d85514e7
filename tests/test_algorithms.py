"""MemoryAlgorithm construction, validation, named constructors and the registry."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

import stability as stb
from stability import symbols as S


def test_exact_inputs_stay_exact():
    alg = stb.MemoryAlgorithm(Fraction(1, 3), [2], [Fraction(-1, 7)], [[Fraction(1, 2)]])
    assert alg.alpha == sp.Rational(1, 3)
    assert alg.c[0] == sp.Rational(-1, 7)
    assert isinstance(alg.b[0], sp.Integer)


def test_floats_keep_their_binary_value():
    alg = stb.gd(0.1)
    assert sp.Rational(alg.alpha) == sp.Rational(0.1)  # exact double, not 1/10
    assert alg.to_exact().alpha == sp.Rational(3602879701896397, 36028797018963968)


def test_constructor_arithmetic_on_floats_is_exact_in_to_exact():
    """lr * momentum, 1 - dampening, q0 + beta q1: computed on the exact binary values."""
    lr, mu, tau = 0.1, 0.9, 0.3
    t = stb.from_torch_sgd(lr, mu, tau).algorithm.to_exact().triplet()
    assert t.q1 == -sp.Rational(lr) * (1 - sp.Rational(tau))
    assert t.beta == sp.Rational(mu)
    n = stb.nesterov(np.float64(lr), mu).to_exact().triplet()
    assert n.q0 == sp.Rational(lr) * sp.Rational(mu)
    assert stb.from_keras_sgd(lr, mu, True).algorithm.to_exact().triplet() == n
    # a beta far below the float resolution of 1 - beta still counts: chi(0) = beta - lambda
    # q0 = 1 + beta > 1 at lambda = 1, so (0, 1] is (barely) unstable
    tiny = stb.memory1(7.647299496705222e-260, -1.0, -2.0)
    assert tiny.to_exact().triplet().beta == sp.Rational(7.647299496705222e-260)
    assert not stb.is_strictly_stable(tiny, 1.0).stable
    assert stb.is_strictly_stable(stb.memory1(0.0, -1.0, -2.0), 1.0).stable is False
    # derived algorithms (subs) fall back to converting their stored floats
    assert stb.heavy_ball(S.alpha, 0.5).subs(S.alpha, 0.25).to_exact().alpha == sp.Rational(1, 4)


def test_numpy_inputs_and_shapes():
    alg = stb.MemoryAlgorithm(
        np.float64(0.5), np.array([0.1, 0.2]), np.array([[1.0], [2.0]]), np.eye(2) * 0.3
    )
    assert alg.M == 2
    assert float(alg.c[1]) == 2.0
    assert alg.S0.shape == (3, 3) and alg.v.shape == (3, 1) and alg.r.shape == (3, 1)


def test_memory_zero():
    alg = stb.gd(S.alpha)
    assert alg.M == 0
    assert alg.update_matrix() == sp.Matrix([[1 - S.alpha * S.lam]])


def test_memory1_scalar_D_accepted():
    assert stb.MemoryAlgorithm(1, [2], [3], 0.5).D == sp.Matrix([[0.5]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 1, "b": [1, 2], "c": [1], "D": np.eye(2)}, "c must have length M = 2"),
        ({"alpha": 1, "b": [1, 2], "c": [1, 2], "D": np.eye(3)}, "D must be a 2x2 matrix"),
        ({"alpha": 1, "b": [1, 2], "c": [1, 2], "D": [[1, 2], [3]]}, "D must be a 2x2 matrix"),
        ({"alpha": 1, "b": [1], "c": [1], "D": [[1]], "a": [1, 2]}, "a must have length M = 1"),
        ({"alpha": float("nan"), "b": [], "c": [], "D": []}, "alpha must be finite, got nan"),
        ({"alpha": 1, "b": [float("inf")], "c": [1], "D": [[0]]}, "b[0] must be finite"),
        ({"alpha": "0.1", "b": [], "c": [], "D": []}, "alpha must be a number, got a string"),
        ({"alpha": True, "b": [], "c": [], "D": []}, "alpha must be a number, got a bool"),
        ({"alpha": 1j, "b": [], "c": [], "D": []}, "alpha must be real"),
        ({"alpha": sp.zoo, "b": [], "c": [], "D": []}, "alpha must be finite"),
        ({"alpha": 1, "b": "12", "c": [], "D": []}, "b must be a sequence of numbers"),
        ({"alpha": 1, "b": np.ones((2, 2)), "c": [1, 1], "D": np.eye(2)}, "b must be a vector"),
    ],
)
def test_invalid_inputs_name_the_parameter(kwargs, message):
    with pytest.raises(stb.ConfigError) as info:
        stb.MemoryAlgorithm(**kwargs)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)  # catchable as the builtin too


def test_strings_are_never_parsed():
    # sympify would eval this; we must refuse it before anything is evaluated
    with pytest.raises(stb.ConfigError, match="got a string"):
        stb.heavy_ball("__import__('os').system('true')", 0.5)


@pytest.mark.parametrize(
    ("ctor", "args", "message"),
    [
        (stb.gd, (0,), "lr must be in (0, inf), got 0"),
        (stb.gd, (-0.1,), "lr must be in (0, inf), got -0.1"),
        (stb.heavy_ball, (0.1, 1.0), "momentum must be in (-1, 1), got 1.0"),
        (stb.heavy_ball, (0.1, -1), "momentum must be in (-1, 1), got -1"),
        (stb.nesterov, (0.1, 1.5), "momentum must be in (-1, 1), got 1.5"),
        (stb.momentum_kick, (0.1, -0.2, 0.5), "kick must be in [0, inf), got -0.2"),
        (stb.memory1, (float("nan"), 0, -1), "beta must be finite"),
    ],
)
def test_named_constructor_ranges(ctor, args, message):
    with pytest.raises(stb.ConfigError) as info:
        ctor(*args)
    assert str(info.value) == message or message in str(info.value)


def test_named_constructors_match_the_table():
    a, be = S.alpha, S.beta
    hb = stb.heavy_ball(a, be)
    assert (hb.alpha, list(hb.b), list(hb.c), hb.D[0, 0], list(hb.a)) == (a, [be], [-a], be, [0])
    ne = stb.nesterov(a, be)
    assert (ne.alpha, list(ne.b), list(ne.c), ne.D[0, 0], list(ne.a)) == (a, [be], [-a], be, [be])
    mk = stb.momentum_kick(S.eta, S.eta_kick, be)
    assert mk.alpha == S.eta + S.eta_kick and list(mk.b) == [-S.eta * be] and mk.D[0, 0] == be


def test_memory1_canonical_realisation_has_the_triplet():
    # independent check: q0 = alpha*beta + b*c and q1 = -alpha for a = 0 realisations
    alg = stb.memory1(S.beta, S.q0, S.q1)
    q0 = sp.expand(alg.alpha * alg.D[0, 0] + alg.b[0] * alg.c[0])
    assert q0 == S.q0 and -alg.alpha == S.q1


def test_registry_lookup_and_aliases():
    assert stb.get_method("HB").name == "heavy_ball"
    assert stb.get_method("momentum-kick").name == "momentum_kick"
    with pytest.raises(stb.ConfigError, match="method must be one of"):
        stb.get_method("adamw")
    with pytest.raises(stb.ConfigError, match="unknown parameter"):
        stb.METHODS["gd"].numeric(learning_rate=0.1)


def test_registry_entries_build(method):
    sym = method.symbolic()
    num = method.numeric()
    assert sym.free_symbols and num.is_numeric
    assert num.M == sym.M
    assert (
        sym.subs(
            dict(
                zip(method.symbols, [num_value(method, p) for p in method.parameters], strict=True)
            )
        )
        == num
    )


def num_value(method, param):
    return stb._values.to_sympy(method.example[param], param)


def test_subs_refuses_strings():
    with pytest.raises(stb.ConfigError):
        stb.heavy_ball(S.alpha, S.beta).subs({S.alpha: "1/0"})


def test_numeric_arrays_refuse_symbols():
    with pytest.raises(stb.ConfigError, match="free symbols"):
        stb.heavy_ball(S.alpha, 0.5).numeric_arrays()


def test_repr_and_latex():
    alg = stb.nesterov(Fraction(1, 10), Fraction(9, 10))
    assert "a=[9/10]" in repr(alg) and "nesterov" in repr(alg)
    assert alg._repr_latex_().startswith("$") and r"\lambda" in alg._repr_latex_()
    assert alg == stb.nesterov(Fraction(1, 10), Fraction(9, 10))
    assert len({alg, stb.nesterov(Fraction(1, 10), Fraction(9, 10))}) == 1


def test_float_zero_is_zero():
    # sympy's Float(0.0) == 0 is False; every zero test must be numeric
    assert not stb.MemoryAlgorithm(1, [0.5], [1], [[0.5]], a=[0.0]).has_lookahead
    assert stb.from_torch_sgd(0.1, 0.0, dampening=0.0).algorithm.M == 0
    assert stb.from_keras_sgd(0.1, 0.0).algorithm.M == 0
