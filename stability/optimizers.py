"""Adapters from real optimizer configurations to memory-M algorithms (docs §1).

Each adapter returns a :class:`ConfiguredOptimizer`: the :class:`MemoryAlgorithm` that
reproduces the library's update rule, plus the *curvature shift* caused by coupled weight decay
(every Hessian eigenvalue ``lambda`` is seen as ``lambda + weight_decay``) and notes on
conventions. No deep-learning framework is imported: torch optimizers are read through their
``param_groups`` attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ._values import check_range, real_array
from .algorithms import MemoryAlgorithm
from .configs import KINDS, Kind, kind_of, read_config
from .errors import ConfigError, describe, listing, show
from .methods import adam_frozen, gd, keeps_exact_floats, torch_sgd
from .simulate import simulate

__all__ = [
    "ADAM_NOTES",
    "ConfiguredOptimizer",
    "from_keras_sgd",
    "from_optax_adam",
    "from_optax_sgd",
    "from_optimizer",
    "from_torch_adam",
    "from_torch_sgd",
]


@dataclass(frozen=True)
class ConfiguredOptimizer:
    """A framework optimizer configuration read as a memory-M algorithm.

    Attributes
    ----------
    algorithm : MemoryAlgorithm
        Reproduces the framework's update on the loss ``L``.
    curvature_shift : sympy expression
        Coupled (L2) weight decay ``omega``: the algorithm sees curvatures ``lambda + omega``.
    source : str
        The framework rule that was read, e.g. ``"torch.optim.SGD"``.
    config : dict
        The validated hyperparameters.
    notes : tuple of str
        Conventions and caveats worth showing to a user.
    undamped_first_step : bool
        torch fills its momentum buffer with the raw gradient on the first step (``m <- g``,
        no dampening). With dampening this differs from the memory form started at ``u = 0``;
        :meth:`simulate` replays it. It changes the transient only, never stability.
    kind : Kind or None
        The framework optimizer read (:data:`stability.configs.KINDS`); ``None`` for a bare
        :class:`MemoryAlgorithm`.
    """

    algorithm: MemoryAlgorithm
    curvature_shift: sp.Expr
    source: str
    config: Mapping[str, Any]
    notes: tuple[str, ...] = ()
    undamped_first_step: bool = False
    kind: Kind | None = None

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={_shown(v)}" for k, v in self.config.items())
        shift = f", curvature shift {show(self.curvature_shift)}" if self.curvature_shift else ""
        return (
            f"ConfiguredOptimizer({self.source}({cfg}): {self.algorithm.name}, memory "
            f"{self.algorithm.M}, effective lr {show(self.algorithm.effective_lr())}{shift})"
        )

    def _repr_markdown_(self) -> str:
        from .symbols import latex

        rows = [
            ("read as", f"`{self.source}`"),
            ("configuration", ", ".join(f"`{k}={_shown(v)}`" for k, v in self.config.items())),
            ("update matrix", f"$S_\\lambda = {latex(self.algorithm.update_matrix())}$"),
            ("effective learning rate", f"${latex(self.algorithm.effective_lr())}$"),
        ]
        if self.curvature_shift:
            rows.append(("curvature shift", f"${latex(self.curvature_shift)}$ (weight decay)"))
        rows += [("note", n) for n in self.notes]
        table = "\n".join(f"| {a} | {b} |" for a, b in rows)
        return f"**{self.algorithm.name}** (memory {self.algorithm.M})\n\n| | |\n|---|---|\n{table}"

    def curvature(self, lam: Any) -> Any:
        """The curvature the algorithm actually sees for a loss eigenvalue ``lam``."""
        return lam + self.curvature_shift

    def simulate(self, grad: Callable[[np.ndarray], np.ndarray], w0: Any, steps: int) -> np.ndarray:
        """Replay the framework's update rule on ``grad`` (weight decay included).

        Returns iterates ``w_0 .. w_steps`` as an array of shape ``(steps + 1, d)``.
        """

        omega = float(self.curvature_shift)

        def full_grad(w: np.ndarray) -> np.ndarray:
            return np.asarray(grad(w), dtype=float) + omega * w

        w0 = real_array(w0, "w0")
        if not (self.undamped_first_step and steps > 0):
            return simulate(self.algorithm, full_grad, w0, steps)
        g0 = full_grad(w0)  # torch's first step: m <- g, theta <- theta - lr m
        w1 = w0 - float(self.config["lr"]) * g0
        rest = simulate(self.algorithm, full_grad, w1, steps - 1, u0=g0[None, :])
        return np.vstack([w0[None, :], rest])


def _shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_shown(v) for v in value) + ")"
    return show(value) if not isinstance(value, str) else value


def _configured(
    alg: MemoryAlgorithm,
    shift: Any,
    kind: str,
    config: Mapping[str, Any],
    notes: Any = (),
    undamped: bool = False,
) -> ConfiguredOptimizer:
    k = KINDS[kind]
    return ConfiguredOptimizer(alg, shift, k.source, config, tuple(notes), undamped, k)


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise ConfigError(f"{name} must be true or false, got {describe(value)}")


@keeps_exact_floats
def from_torch_sgd(
    lr: Any,
    momentum: Any = 0,
    dampening: Any = 0,
    weight_decay: Any = 0,
    nesterov: Any = False,
    *,
    maximize: Any = False,
) -> ConfiguredOptimizer:
    """``torch.optim.SGD`` as a memory-1 algorithm (memory 0 when ``momentum == 0``).

    torch: ``g <- grad + wd*theta``; ``m <- mu m + (1 - tau) g`` (first step ``m <- g``);
    ``g <- g + mu m`` if nesterov else ``m``; ``theta <- theta - lr g``. With ``u = m``:
    non-Nesterov ``alpha = lr(1-tau), b = -lr mu, c = 1-tau, D = mu``; Nesterov
    ``alpha = lr(1+mu), b = -lr mu^2, c = 1, D = mu``.

    >>> opt = from_torch_sgd(lr=0.1, momentum=0.9)
    >>> opt.algorithm.effective_lr()
    1.00000000000000
    >>> from_torch_sgd(lr=0.1, momentum=1.0)
    Traceback (most recent call last):
    ...
    stability.errors.ConfigError: momentum must be in [0, 1), got 1.0
    """
    lr = check_range(lr, "lr", 0, None, low_open=True)
    mu = check_range(momentum, "momentum", 0, 1, high_open=True)
    tau = check_range(dampening, "dampening", 0, 1, high_open=True)
    omega = check_range(weight_decay, "weight_decay", 0, None)
    nest = _flag(nesterov, "nesterov")
    if _flag(maximize, "maximize"):
        raise ConfigError("maximize must be false (gradient ascent is not analysed), got True")
    alg = torch_sgd(lr, mu, tau, nest)
    config = {"lr": lr, "momentum": mu, "dampening": tau, "weight_decay": omega, "nesterov": nest}
    notes = []
    if not omega.is_zero:
        w = show(omega)
        notes.append(f"weight_decay={w} shifts every curvature: lambda -> lambda + {w}")
    if mu.is_zero:
        if not tau.is_zero:
            notes.append("dampening has no effect when momentum = 0 (torch keeps no buffer)")
        return _configured(alg, omega, "torch.sgd", config, notes)
    undamped = not tau.is_zero
    if undamped:
        notes.append("torch's first momentum step is undamped (m = g); transient only")
    return _configured(alg, omega, "torch.sgd", config, notes, undamped)


def from_optax_sgd(
    learning_rate: Any, momentum: Any = None, nesterov: Any = False
) -> ConfiguredOptimizer:
    """``optax.sgd``: trace ``m <- g + mu m`` then ``-lr * (g + mu m if nesterov else m)``.

    Identical to ``torch.optim.SGD`` with zero dampening; ``momentum=None`` (or 0) is plain GD.
    A learning-rate schedule (a callable) is refused: it is not time-invariant.

    >>> from_optax_sgd(0.1, momentum=0.9).algorithm == from_torch_sgd(0.1, 0.9).algorithm
    True
    """
    if callable(learning_rate):
        raise ConfigError(
            "learning_rate must be a number (a schedule is time-varying; use the LTV view), "
            f"got {describe(learning_rate)}"
        )
    check_range(learning_rate, "learning_rate", 0, None, low_open=True)
    nest = _flag(nesterov, "nesterov")
    mu = check_range(0 if momentum is None else momentum, "momentum", 0, 1, high_open=True)
    notes: tuple[str, ...] = ()
    if nest and mu.is_zero:  # optax accepts it: the trace is the gradient itself
        notes = ("nesterov has no effect without momentum",)
        nest = False
    base = from_torch_sgd(learning_rate, mu, 0, 0, nest)
    cfg = {"learning_rate": base.config["lr"], "momentum": momentum, "nesterov": nest}
    return _configured(base.algorithm, base.curvature_shift, "optax.sgd", cfg, notes + base.notes)


@keeps_exact_floats
def from_keras_sgd(
    learning_rate: Any, momentum: Any = 0, nesterov: Any = False
) -> ConfiguredOptimizer:
    """Keras ``SGD``: ``v <- mu v - lr g``; ``w <- w + v`` (Nesterov: ``w <- w + mu v - lr g``).

    Non-Nesterov is heavy ball with ``u = v = w_t - w_{t-1}``; Nesterov has
    ``alpha = lr(1+mu), b = mu^2, c = -lr, D = mu``, whose triplet is Nesterov's.

    >>> from stability import heavy_ball
    >>> from_keras_sgd(0.1, 0.9).algorithm.triplet() == heavy_ball(0.1, 0.9).triplet()
    True
    """
    lr = check_range(learning_rate, "learning_rate", 0, None, low_open=True)
    mu = check_range(momentum, "momentum", 0, 1, high_open=True)
    nest = _flag(nesterov, "nesterov")
    cfg = {"learning_rate": lr, "momentum": mu, "nesterov": nest}
    if mu.is_zero:
        return _configured(gd(lr), sp.Integer(0), "keras.sgd", cfg)
    if nest:
        alg = MemoryAlgorithm(lr * (1 + mu), [mu**2], [-lr], [[mu]], name="keras_sgd_nesterov")
    else:
        alg = MemoryAlgorithm(lr, [mu], [-lr], [[mu]], name="keras_sgd")
    return _configured(alg, sp.Integer(0), "keras.sgd", cfg)


# ---------------------------------------------------------------------------------------
# from_optimizer: mappings and duck-typed torch optimizer objects
# ---------------------------------------------------------------------------------------
ADAM_NOTES = (
    "frozen-preconditioner model of Adam: P = diag(sqrt(v_hat) + eps) held fixed (steady "
    "state; bias corrections settled); the curvatures must be those of P^-1 H (the "
    "preconditioned Hessian), not of H",
    "real Adam (beta2 < 1) adapts P: above the threshold v grows until the preconditioned "
    "sharpness is back at it (the adaptive edge of stability) instead of diverging",
)


def _adam(
    kind: str,
    lr: Any,
    beta1: Any,
    beta2: Any,
    eps: Any,
    weight_decay: Any,
    decoupled: bool,
    config: dict[str, Any],
) -> ConfiguredOptimizer:
    lr_x = check_range(lr, "lr", 0, None, low_open=True)
    b1 = check_range(beta1, "beta1", 0, 1, high_open=True)
    check_range(beta2, "beta2", 0, 1, high_open=True)
    check_range(eps, "eps", 0, None)
    wd = check_range(weight_decay, "weight_decay", 0, None)
    notes = list(ADAM_NOTES)
    if decoupled:
        alg = adam_frozen(lr_x, b1, wd)
        shift = wd
        if not wd.is_zero:
            notes.append(
                f"decoupled weight decay {describe(wd)}: w <- w (1 - lr wd) is the memory-1 "
                "triplet (beta1 (1 - lr wd), 0, -lr (1 - beta1)) at the curvature h + wd"
            )
    else:
        alg = adam_frozen(lr_x, b1)
        shift = sp.Integer(0)
        if not wd.is_zero:
            notes.append(
                f"coupled (L2) weight decay {describe(wd)} enters as P^-1 (H + wd I): give the "
                "spectrum of that operator; no further shift is applied"
            )
    return _configured(alg, shift, kind, config, notes)


@keeps_exact_floats
def from_torch_adam(
    lr: Any = 1e-3,
    betas: Any = (0.9, 0.999),
    eps: Any = 1e-8,
    weight_decay: Any = 0,
    amsgrad: Any = False,
    *,
    maximize: Any = False,
    decoupled: bool = False,
) -> ConfiguredOptimizer:
    """``torch.optim.Adam`` (``decoupled=True``: ``AdamW``) under the frozen-preconditioner
    model (docs §6.4): per eigen-direction of ``P^-1 H`` it is torch SGD with
    ``momentum = dampening = beta1``; AdamW's decay is a curvature shift of a memory-1 triplet.

    >>> opt = from_torch_adam(lr=0.01, betas=(0.9, 0.999))
    >>> from stability.regions import is_strictly_stable
    >>> is_strictly_stable(opt.algorithm, 3801).stable      # 38/lr = 3800
    False
    """
    if not isinstance(betas, tuple | list | np.ndarray) or len(betas) != 2:
        raise ConfigError(f"betas must be a pair (beta1, beta2), got {describe(betas)}")
    if _flag(maximize, "maximize"):
        raise ConfigError("maximize must be false (gradient ascent is not analysed), got True")
    amsgrad = _flag(amsgrad, "amsgrad")
    config = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
    kind = "torch.adamw" if decoupled else "torch.adam"
    out = _adam(kind, lr, betas[0], betas[1], eps, weight_decay, decoupled, config)
    if amsgrad:
        notes = (*out.notes, "amsgrad keeps the largest v: P only grows, the model still holds")
        out = _configured(out.algorithm, out.curvature_shift, kind, config, notes)
    return out


@keeps_exact_floats
def from_optax_adam(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    weight_decay: Any = None,
) -> ConfiguredOptimizer:
    """``optax.adam`` (``weight_decay`` given: ``optax.adamw``, decoupled like torch AdamW)
    under the frozen-preconditioner model."""
    decoupled = weight_decay is not None
    wd = 0 if weight_decay is None else weight_decay
    check_range(eps_root, "eps_root", 0, None)
    config = {"learning_rate": learning_rate, "b1": b1, "b2": b2, "eps": eps}
    if decoupled:
        config["weight_decay"] = weight_decay
    kind = "optax.adamw" if decoupled else "optax.adam"
    return _adam(kind, learning_rate, b1, b2, eps, wd, decoupled, config)


_ADAPTERS: dict[str, Callable[..., ConfiguredOptimizer]] = {
    "torch.sgd": from_torch_sgd,
    "optax.sgd": from_optax_sgd,
    "keras.sgd": from_keras_sgd,
    "torch.adam": from_torch_adam,
    "torch.adamw": lambda **kw: from_torch_adam(**kw, decoupled=True),
    "optax.adam": from_optax_adam,
    "optax.adamw": lambda **kw: from_optax_adam(**{"weight_decay": 1e-4, **kw}),
}


def _adapt(config: Mapping[str, Any], default: str | None = None) -> ConfiguredOptimizer:
    kind, values = read_config(config, default=default)
    return _ADAPTERS[kind.name](**values)


def _group(group: Mapping[str, Any], index: int, kind: str = "torch.sgd") -> ConfiguredOptimizer:
    if not isinstance(group, Mapping):
        raise ConfigError(f"param group {index} must be a mapping, got {describe(group)}")
    if kind == "torch.adam" and group.get("decoupled_weight_decay"):
        kind = "torch.adamw"  # torch.optim.Adam(decoupled_weight_decay=True) is AdamW
    try:
        return _adapt({**group, "optimizer": kind})
    except ConfigError as exc:
        raise ConfigError(f"param group {index}: {exc}") from None


def from_optimizer(obj: Any) -> list[ConfiguredOptimizer]:
    """Read an optimizer configuration; returns one :class:`ConfiguredOptimizer` per group.

    ``obj`` is either

    * a mapping ``{"optimizer": "torch.sgd" | "optax.sgd" | "keras.sgd" | "sgd", ...}`` with
      the framework's own keyword names (``"sgd"`` means torch); unknown keys are rejected;
    * a torch optimizer state dict or any mapping with ``"param_groups"`` (read as torch SGD);
    * a ``torch.optim.SGD`` object (duck-typed through ``param_groups``; torch is never
      imported). Other optimizer classes are refused with a reason.

    >>> [o.algorithm.name for o in from_optimizer({"optimizer": "sgd", "lr": 0.1,
    ...                                             "momentum": 0.9})]
    ['torch_sgd']
    >>> from_optimizer({"optimizer": "sgd", "lr": 0.1, "momentun": 0.9})
    Traceback (most recent call last):
    ...
    stability.errors.ConfigError: unknown key(s) ['momentun'] for optimizer 'torch.sgd'; ...
    """
    if isinstance(obj, Mapping):
        if "param_groups" in obj:
            extra = sorted(set(obj) - {"param_groups", "state", "optimizer"}, key=str)
            if extra:
                raise ConfigError(f"unknown key(s) {listing(extra)} beside param_groups")
            kind = kind_of(obj.get("optimizer", "torch.sgd"))
            if kind.name != "torch.sgd":
                raise ConfigError(
                    f"param_groups are read as torch SGD, got optimizer {describe(kind.name)}"
                )
            return [_group(g, i) for i, g in enumerate(_groups(obj["param_groups"]))]
        return [_adapt(obj)]
    if hasattr(obj, "param_groups"):
        cls = type(obj).__name__
        kind = next((k.name for k in KINDS.values() if k.torch_class == cls), None)
        if kind is None:
            raise ConfigError(
                "optimizer object must be torch.optim.SGD, Adam or AdamW (SGD is linear on "
                f"quadratics; Adam is read with a frozen preconditioner), got {cls}"
            )
        return [_group(g, i, kind) for i, g in enumerate(_groups(obj.param_groups))]
    raise ConfigError(f"expected a mapping or a torch optimizer object, got {type(obj).__name__}")


def _groups(groups: Any) -> list[Mapping[str, Any]]:
    if isinstance(groups, Mapping) or isinstance(groups, str) or not hasattr(groups, "__iter__"):
        raise ConfigError(f"param_groups must be a list of mappings, got {describe(groups)}")
    out = list(groups)
    if not out:
        raise ConfigError("param_groups must not be empty")
    for i, g in enumerate(out):
        if not isinstance(g, Mapping):
            raise ConfigError(f"param group {i} must be a mapping, got {type(g).__name__}")
    return out
