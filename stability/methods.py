"""Named methods: the constructors of docs §1 (gradient descent, heavy ball, Nesterov, memory-1
triplets, momentum with a kick, torch SGD), the multistep realisation (Theorem 1, converse) and
the registry of methods by name with their parameters and allowed ranges.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, TypeVar

import sympy as sp

from . import symbols as S
from ._values import check_range, to_exact, to_sympy
from .algorithms import MemoryAlgorithm
from .charpoly import Multistep
from .errors import ConfigError, describe, listing

__all__ = [
    "METHODS",
    "Method",
    "adam_frozen",
    "from_multistep",
    "gd",
    "get_method",
    "heavy_ball",
    "keeps_exact_floats",
    "memory1",
    "momentum_kick",
    "nesterov",
    "torch_sgd",
]


_F = TypeVar("_F", bound=Callable[..., Any])


def _exact_value(value: Any) -> tuple[Any, bool]:
    """``(exact value, changed)``: floats become the Fraction of their binary value."""

    if isinstance(value, bool | numbers.Integral | Fraction):
        return value, False
    if isinstance(value, sp.Basic):
        exact = to_exact(value)
        return exact, exact is not value
    if isinstance(value, numbers.Real):
        x = float(value)
        return (Fraction(x), True) if math.isfinite(x) else (value, False)
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        return _exact_value(value.item())
    if isinstance(value, tuple | list) and len(value) <= 16:  # e.g. Adam's betas
        parts = [_exact_value(v) for v in value]
        if any(changed for _, changed in parts):
            return type(value)(v for v, _ in parts), True
    return value, False


def keeps_exact_floats(constructor: _F) -> _F:
    """Decorate a constructor so that, when float arguments are given, the result also
    remembers the algorithm built from their exact binary values (``to_exact()`` returns
    it). Without this, float arithmetic inside the constructor (``lr * momentum``,
    ``1 - beta``) would round before any exact analysis sees the numbers.
    """

    signature = inspect.signature(constructor)

    @functools.wraps(constructor)
    def build(*args: Any, **kwargs: Any) -> Any:
        out = constructor(*args, **kwargs)
        try:  # the defaults too: a float default (Adam's betas) must not stay rounded
            bound = signature.bind(*args, **kwargs)
        except TypeError:  # the constructor itself reported the bad call
            return out
        bound.apply_defaults()
        values = {k: _exact_value(v) for k, v in bound.arguments.items()}
        if any(changed for _, changed in values.values()):
            twin = constructor(**{k: v for k, (v, _) in values.items()})
            exact = getattr(twin, "algorithm", twin).to_exact()  # inner constructors' twins
            getattr(out, "algorithm", out)._cache["exact"] = exact
        return out

    return build  # type: ignore[return-value]


@keeps_exact_floats
def torch_sgd(
    lr: Any, momentum: Any = 0, dampening: Any = 0, nesterov: bool = False
) -> MemoryAlgorithm:
    """``torch.optim.SGD``'s update as a memory-1 algorithm (memory 0 without momentum); the
    one home of the torch rule (coupled weight decay is a curvature shift, kept apart).

    With the buffer ``u = m`` (``m <- mu m + (1 - tau) g``): ``alpha = lr(1 - tau)``,
    ``b = -lr mu``, ``c = 1 - tau``, ``D = mu``; Nesterov (``g + mu m``, needs ``mu > 0`` and
    ``tau = 0``): ``alpha = lr(1 + mu)``, ``b = -lr mu^2``, ``c = 1``, ``D = mu``.

    >>> torch_sgd(0.1, 0.9).effective_lr()
    1.00000000000000
    """
    lr = check_range(lr, "lr", 0, None, low_open=True)
    mu = check_range(momentum, "momentum", 0, 1, high_open=True)
    tau = check_range(dampening, "dampening", 0, 1, high_open=True)
    if not isinstance(nesterov, bool | int) or nesterov not in (0, 1):
        raise ConfigError(f"nesterov must be true or false, got {describe(nesterov)}")
    if nesterov and (mu.is_zero or not tau.is_zero):
        raise ConfigError(
            "nesterov=True requires momentum > 0 and dampening = 0 "
            f"(as torch does), got momentum={describe(momentum)}, "
            f"dampening={describe(dampening)}"
        )
    if mu.is_zero:  # torch keeps no buffer: plain gradient descent
        return gd(lr)
    if nesterov:
        return MemoryAlgorithm(lr * (1 + mu), [-lr * mu**2], [1], [[mu]], name="torch_sgd_nesterov")
    return MemoryAlgorithm(lr * (1 - tau), [-lr * mu], [1 - tau], [[mu]], name="torch_sgd")


@keeps_exact_floats
def adam_frozen(lr: Any, beta1: Any, decoupled_weight_decay: Any = 0) -> MemoryAlgorithm:
    """Adam/AdamW with a frozen preconditioner ``P = diag(sqrt(v_hat) + eps)``, per
    eigen-direction of ``P^-1 H`` (docs §6.4): a model of the steady state, not of Adam's
    adaptation.

    Adam's momentum ``m <- beta1 m + (1 - beta1) g`` with the step ``lr m`` is torch SGD with
    ``momentum = dampening = beta1``. AdamW first shrinks the weights, ``w <- w (1 - lr wd)``;
    its characteristic polynomial ``xi^2 - (1 - d + beta1 - lr (1 - beta1) h) xi +
    beta1 (1 - d)`` (``d = lr wd``) is the memory-1 triplet ``(beta1 (1 - d), 0,
    -lr (1 - beta1))`` seen at the shifted curvature ``h + wd``: pass ``wd`` as the curvature
    shift (:func:`stability.optimizers.from_torch_adam` does).

    >>> from stability.regions import is_strictly_stable
    >>> is_strictly_stable(adam_frozen(0.01, 0.9), 3799).stable   # threshold 38/lr = 3800
    True
    """
    lr = check_range(lr, "lr", 0, None, low_open=True)
    b1 = check_range(beta1, "beta1", 0, 1, high_open=True)
    wd = check_range(decoupled_weight_decay, "weight_decay", 0, None)
    d = lr * wd
    if d.is_number and not d < 2:
        raise ConfigError(
            f"lr * weight_decay must be in [0, 2) (the decay alone would flip the weights), "
            f"got {describe(d)}"
        )
    if wd.is_zero:
        if b1.is_zero:
            return gd(lr)
        return torch_sgd(lr, b1, b1)
    return memory1(b1 * (1 - d), 0, -lr * (1 - b1))


@keeps_exact_floats
def gd(lr: Any) -> MemoryAlgorithm:
    """Gradient descent ``w <- w - lr * grad`` (memory 0).

    >>> gd(0.5).update_matrix()
    Matrix([[1 - 0.5*lambda]])
    """
    lr = check_range(lr, "lr", 0, None, low_open=True)
    return MemoryAlgorithm(lr, [], [], [], name="gd")


@keeps_exact_floats
def heavy_ball(lr: Any, momentum: Any) -> MemoryAlgorithm:
    """Polyak heavy ball with ``u_t = w_t - w_{t-1}``: ``(alpha, b, c, D) = (lr, beta, -lr, beta)``.

    ``momentum`` must lie in (-1, 1) when numeric.

    >>> heavy_ball(S.alpha, S.beta).triplet()
    Triplet(beta=beta, q0=0, q1=-alpha)
    """
    lr = check_range(lr, "lr", 0, None, low_open=True)
    beta = check_range(momentum, "momentum", -1, 1, low_open=True, high_open=True)
    return MemoryAlgorithm(lr, [beta], [-lr], [[beta]], name="heavy_ball")


@keeps_exact_floats
def nesterov(lr: Any, momentum: Any) -> MemoryAlgorithm:
    """Nesterov's method with ``u_t = w_t - w_{t-1}``: ``a = b = D = beta, c = -lr``.

    >>> nesterov(S.alpha, S.beta).triplet()
    Triplet(beta=beta, q0=alpha*beta, q1=-alpha*beta - alpha)
    """
    lr = check_range(lr, "lr", 0, None, low_open=True)
    beta = check_range(momentum, "momentum", -1, 1, low_open=True, high_open=True)
    return MemoryAlgorithm(lr, [beta], [-lr], [[beta]], a=[beta], name="nesterov")


@keeps_exact_floats
def memory1(beta: Any, q0: Any, q1: Any) -> MemoryAlgorithm:
    """Canonical realisation of the memory-1 triplet ``(beta, q0, q1)`` (docs §3.2).

    ``chi_lambda = xi^2 - (1 + beta + lambda q1) xi + (beta - lambda q0)``, realised with
    ``alpha = -q1, b = 1, c = q0 + beta q1, D = beta``. Any finite real triplet is accepted
    (``|beta| >= 1`` is a valid, certainly unstable, algorithm).

    >>> memory1(S.beta, S.q0, S.q1).charpoly().chi.as_expr()
    beta - lambda*q0 + xi**2 + xi*(-beta - lambda*q1 - 1)
    """
    beta = to_sympy(beta, "beta")
    q0 = to_sympy(q0, "q0")
    q1 = to_sympy(q1, "q1")
    return MemoryAlgorithm(-q1, [1], [q0 + beta * q1], [[beta]], name="memory1")


@keeps_exact_floats
def momentum_kick(lr: Any, kick: Any, momentum: Any) -> MemoryAlgorithm:
    """Momentum plus a gradient "kick" (paper App. M, eq. 250).

    ``v <- momentum v + grad``, ``w <- w - lr v - kick grad``; memory-1 with
    ``alpha = lr + kick, b = -lr momentum, c = 1, D = momentum``.

    >>> momentum_kick(S.eta, S.eta_kick, S.beta).triplet()
    Triplet(beta=beta, q0=beta*eta', q1=-eta - eta')
    """
    lr = check_range(lr, "lr", 0, None, low_open=True)
    kick = check_range(kick, "kick", 0, None)
    beta = check_range(momentum, "momentum", -1, 1, low_open=True, high_open=True)
    return MemoryAlgorithm(lr + kick, [-lr * beta], [1], [[beta]], name="momentum_kick")


# ---------------------------------------------------------------------------------------
# Registry of named methods
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """A named family of algorithms: its constructor, parameters and a stable example."""

    name: str
    constructor: Callable[..., MemoryAlgorithm]
    parameters: tuple[str, ...]
    symbols: tuple[sp.Symbol, ...]
    example: Mapping[str, float] = field(default_factory=dict)
    description: str = ""
    ranges: Mapping[str, tuple[float | None, float | None, bool, bool]] = field(
        default_factory=dict
    )
    """Allowed values per parameter as ``(low, high, low_open, high_open)`` (``None``: no
    bound), the ranges the constructor enforces."""

    def __call__(self, *args: Any, **kwargs: Any) -> MemoryAlgorithm:
        return self.constructor(*args, **kwargs)

    def symbolic(self) -> MemoryAlgorithm:
        """The family with every parameter a sympy Symbol."""
        return self.constructor(*self.symbols)

    def numeric(self, **values: Any) -> MemoryAlgorithm:
        """An instance at ``values`` (missing parameters taken from ``example``)."""
        unknown = set(values) - set(self.parameters)
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {listing(sorted(unknown, key=str))} for method "
                f"{self.name!r}; "
                f"expected {list(self.parameters)}"
            )
        merged = {**self.example, **values}
        return self.constructor(**{p: merged[p] for p in self.parameters})


_LR = (0, None, True, True)


_MOMENTUM = (-1, 1, True, True)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("gd", gd, ("lr",), (S.alpha,), {"lr": 0.5}, "gradient descent", {"lr": _LR}),
        Method(
            "heavy_ball",
            heavy_ball,
            ("lr", "momentum"),
            (S.alpha, S.beta),
            {"lr": 0.1, "momentum": 0.9},
            "Polyak heavy ball",
            {"lr": _LR, "momentum": _MOMENTUM},
        ),
        Method(
            "nesterov",
            nesterov,
            ("lr", "momentum"),
            (S.alpha, S.beta),
            {"lr": 0.1, "momentum": 0.9},
            "Nesterov accelerated gradient",
            {"lr": _LR, "momentum": _MOMENTUM},
        ),
        Method(
            "memory1",
            memory1,
            ("beta", "q0", "q1"),
            (S.beta, S.q0, S.q1),
            {"beta": 0.9, "q0": 0.05, "q1": -0.6},
            "general memory-1 triplet",
        ),
        Method(
            "momentum_kick",
            momentum_kick,
            ("lr", "kick", "momentum"),
            (S.eta, S.eta_kick, S.beta),
            {"lr": 0.1, "kick": 0.05, "momentum": 0.9},
            "momentum plus gradient kick (paper eq. 250)",
            {"lr": _LR, "kick": (0, None, False, True), "momentum": _MOMENTUM},
        ),
    )
}


def get_method(name: str) -> Method:
    """Look a method up by name (case-insensitive; ``-`` and spaces read as ``_``).

    >>> get_method("Heavy-Ball").name
    'heavy_ball'
    """
    if not isinstance(name, str):
        raise ConfigError(f"method name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    aliases = {"sgd": "gd", "hb": "heavy_ball", "polyak": "heavy_ball", "nag": "nesterov"}
    key = aliases.get(key, key)
    if key not in METHODS:
        raise ConfigError(f"method must be one of {sorted(METHODS)}, got {describe(name)}")
    return METHODS[key]


def from_multistep(
    p: Sequence[Any] | Multistep, q: Sequence[Any] | None = None, *, name: str | None = None
) -> MemoryAlgorithm:
    """Realise a multistep recurrence as a memory-M algorithm (Theorem 1, converse).

    ``P = xi^{M+1} - sum_j p_j xi^j`` must vanish at 1 (``sum(p) == 1``; floats within 1e-12).
    Writing ``P = (xi - 1) R``, the realisation has ``a = 0``, ``D`` the companion matrix of
    ``R``, ``c = e_M``, ``alpha = -[xi^M] Q`` and ``b`` the coefficients of ``Q + alpha R``.

    >>> alg = from_multistep([-S.beta, 1 + S.beta], [0, -S.alpha])
    >>> alg.charpoly().Q.as_expr()
    -alpha*xi
    """
    if isinstance(p, Multistep):
        p, q = p.p, p.q
    if q is None:
        raise ConfigError("q is required: the gradient coefficients q_0..q_M")
    if isinstance(p, str) or isinstance(q, str):
        raise ConfigError("p and q must be sequences of numbers, not strings")
    p_ = [to_sympy(x, f"p[{j}]") for j, x in enumerate(p)]
    q_ = [to_sympy(x, f"q[{j}]") for j, x in enumerate(q)]
    if not p_:
        raise ConfigError("p must have length M + 1 >= 1, got an empty sequence")
    if len(q_) != len(p_):
        raise ConfigError(f"q must have length M + 1 = {len(p_)} (the length of p), got {len(q_)}")
    M, xi = len(p_) - 1, S.xi
    total = sp.expand(sum(p_) - 1)
    if not total.is_zero:
        numeric = not total.free_symbols
        if (
            not numeric
            or not total.has(sp.Float)
            or abs(float(total)) > 1e-12 * max(1.0, *(abs(float(x)) for x in p_))
        ):
            raise ConfigError(
                f"p must sum to 1 (so that P(1) = 0 and constants are fixed points), "
                f"got sum(p) = {sp.expand(sum(p_))}"
            )
    P = sp.Poly(xi ** (M + 1) - sum(p_[j] * xi**j for j in range(M + 1)), xi)
    R, _remainder = sp.div(P, sp.Poly(xi - 1, xi))  # remainder is P(1): zero, or float dust
    Rc = [R.coeff_monomial(xi**j) for j in range(M)]  # r_0..r_{M-1}; R is monic
    D = sp.zeros(M, M)
    for i in range(M - 1):
        D[i, i + 1] = 1
    if M:
        D[M - 1, :] = sp.Matrix([[-x for x in Rc]])
    alpha = -q_[M]
    Qpoly = sp.Poly(sum(q_[j] * xi**j for j in range(M + 1)), xi)
    rest = Qpoly + alpha * R if M else sp.Poly(0, xi)
    b = [sp.expand(rest.coeff_monomial(xi**j)) for j in range(M)]
    c = [0] * (M - 1) + [1] if M else []
    return MemoryAlgorithm(alpha, b, c, D, name=name or f"multistep-{M}")
