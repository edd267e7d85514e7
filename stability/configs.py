"""One reader for optimizer configurations written with a framework's own names.

Every face that takes a mapping — :func:`stability.check`, :func:`stability.from_optimizer`,
the LTV view's :func:`stability.ltv.filter_from_config` and the command line — reads it here:
the optimizer name and its aliases, the hyperparameter keys each framework accepts (unknown
keys are refused and listed, a misspelled ``momentun`` is never ignored), the name of the
learning rate (``lr`` for torch, ``learning_rate`` for optax and Keras), and the bookkeeping
keys of a torch param group that carry no hyperparameter. Values are checked by the analyses
that use them (:func:`stability._values.check_range`); nothing here evaluates anything.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, close_matches, describe, listing

__all__ = ["ALIASES", "KINDS", "Kind", "kind_of", "read_config"]

# keys of a torch param group (or optimizer defaults) that carry no hyperparameter
_TORCH_INERT = frozenset(
    {
        "params",
        "foreach",
        "differentiable",
        "fused",
        "initial_lr",
        "param_names",
        "name",
        "capturable",
        "decoupled_weight_decay",
        # written into the groups by OneCycleLR and CyclicLR (the schedule reads them)
        "base_momentum",
        "max_momentum",
        "max_lr",
        "min_lr",
    }
)


_FLAGS = ("capturable", "differentiable", "decoupled_weight_decay")
_OPTIONAL_FLAGS = ("foreach", "fused")
_NUMBERS = ("initial_lr", "base_momentum", "max_momentum", "max_lr", "min_lr")


def _check_inert(key: str, value: Any) -> None:
    """The bookkeeping keys carry no hyperparameter, but a wrong type is still a typo."""
    if key in _FLAGS and not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {describe(value)}")
    if key in _OPTIONAL_FLAGS and not (value is None or isinstance(value, bool)):
        raise ConfigError(f"{key} must be true, false or None, got {describe(value)}")
    if key in _NUMBERS and (
        isinstance(value, bool | str)
        or not (isinstance(value, numbers.Real) or hasattr(value, "item"))
    ):
        raise ConfigError(f"{key} must be a number, got {describe(value)}")
    if key == "name" and not isinstance(value, str):
        raise ConfigError(f"name must be text, got {describe(value)}")


@dataclass(frozen=True)
class Kind:
    """A framework optimizer: its canonical name, family, learning-rate key and keys, the name
    reports give its update rule (``source``), whether its weight decay is decoupled (AdamW)
    and the class name of the live torch optimizer it reads (``None``: not a torch class)."""

    name: str
    family: str  # "sgd" (time-invariant, memory form) or "adam" (adaptive, LTV view)
    lr_key: str
    keys: frozenset[str]
    source: str
    inert: frozenset[str] = frozenset()
    decoupled: bool = False
    torch_class: str | None = None


_SGD_KEYS = ("momentum", "dampening", "weight_decay", "nesterov", "maximize")
_ADAM_KEYS = ("betas", "eps", "weight_decay", "amsgrad", "maximize")
_OPTAX_ADAM_KEYS = ("b1", "b2", "eps", "eps_root")

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("torch.sgd", "sgd", "lr", frozenset({"lr", *_SGD_KEYS}), "torch.optim.SGD",
             _TORCH_INERT, torch_class="SGD"),
        Kind("optax.sgd", "sgd", "learning_rate",
             frozenset({"learning_rate", "momentum", "nesterov"}), "optax.sgd"),
        Kind("keras.sgd", "sgd", "learning_rate",
             frozenset({"learning_rate", "momentum", "nesterov"}), "keras.optimizers.SGD"),
        Kind("torch.adam", "adam", "lr", frozenset({"lr", *_ADAM_KEYS}), "torch.optim.Adam",
             _TORCH_INERT, torch_class="Adam"),
        Kind("torch.adamw", "adam", "lr", frozenset({"lr", *_ADAM_KEYS}), "torch.optim.AdamW",
             _TORCH_INERT, decoupled=True, torch_class="AdamW"),
        Kind("optax.adam", "adam", "learning_rate",
             frozenset({"learning_rate", *_OPTAX_ADAM_KEYS}), "optax.adam"),
        Kind("optax.adamw", "adam", "learning_rate",
             frozenset({"learning_rate", *_OPTAX_ADAM_KEYS, "weight_decay"}), "optax.adamw",
             decoupled=True),
    )
}  # fmt: skip
ALIASES = {
    "sgd": "torch.sgd",
    "torch": "torch.sgd",
    "torch.optim.sgd": "torch.sgd",
    "optax": "optax.sgd",
    "keras": "keras.sgd",
    "keras.optimizers.sgd": "keras.sgd",
    "adam": "torch.adam",
    "adamw": "torch.adamw",
    "torch.optim.adam": "torch.adam",
    "torch.optim.adamw": "torch.adamw",
}


def kind_of(name: Any, families: Iterable[str] | None = None) -> Kind:
    """The :class:`Kind` of an optimizer name (case-insensitive, aliases allowed).

    >>> kind_of("SGD").name, kind_of("optax.sgd").lr_key
    ('torch.sgd', 'learning_rate')
    >>> kind_of("rmsprop")
    Traceback (most recent call last):
    ...
    stability.errors.ConfigError: optimizer must be one of ['keras.sgd', 'optax.adam', ...
    """
    allowed = [k for k, v in KINDS.items() if families is None or v.family in families]
    if not isinstance(name, str):
        raise ConfigError(f"optimizer must be a name, one of {allowed}, got {describe(name)}")
    key = name.strip().lower()
    kind = KINDS.get(ALIASES.get(key, key))
    if kind is None:
        raise ConfigError(
            f"optimizer must be one of {sorted(allowed)} (aliases: "
            f"{', '.join(sorted(ALIASES))}), got {describe(name)}"
            + close_matches([key], [*allowed, *ALIASES])
        )
    if families is not None and kind.family not in families:
        why = (
            " (Adam adapts its step: not time-invariant; see stability.ltv)"
            if kind.family == "adam"
            else ""
        )
        raise ConfigError(
            f"optimizer must be one of {sorted(allowed)} for this analysis, got "
            f"{describe(name)}{why}"
        )
    return kind


def read_config(
    config: Any,
    *,
    families: Iterable[str] | None = None,
    default: str | None = None,
    need_lr: bool = True,
) -> tuple[Kind, dict[str, Any]]:
    """``(kind, hyperparameters)`` of a mapping ``{"optimizer": name, key: value, ...}``.

    Unknown keys are refused with the allowed ones listed; torch's bookkeeping keys are
    dropped; the learning rate must be present unless ``need_lr`` is false. ``default`` is the
    optimizer when the mapping names none (otherwise a name is required).

    >>> kind, values = read_config({"optimizer": "sgd", "lr": 0.1, "momentum": 0.9})
    >>> kind.name, values
    ('torch.sgd', {'lr': 0.1, 'momentum': 0.9})
    >>> read_config({"optimizer": "sgd", "lr": 0.1, "momentun": 0.9})
    Traceback (most recent call last):
    ...
    stability.errors.ConfigError: unknown key(s) ['momentun'] for optimizer 'torch.sgd'; ...
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"config must be a mapping of hyperparameters, got {describe(config)}")
    values = dict(config)
    name = values.pop("optimizer", default)
    if name is None:
        raise ConfigError(
            "optimizer is required: one of 'torch.sgd', 'optax.sgd', 'keras.sgd' ('sgd')"
        )
    kind = kind_of(name, families)
    for key in kind.inert & set(values):
        _check_inert(key, values[key])
    values = {k: v for k, v in values.items() if k not in kind.inert}
    unknown = sorted(set(values) - kind.keys, key=str)
    if unknown:
        raise ConfigError(
            f"unknown key(s) {listing(unknown)} for optimizer {kind.name!r}; "
            f"allowed keys: {sorted(kind.keys)}" + close_matches(unknown, kind.keys)
        )
    if need_lr and kind.lr_key not in values:
        raise ConfigError(f"{kind.lr_key} is required for optimizer {kind.name!r}")
    return kind, values
