"""Optimizers: ``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad`` (Keras 3 semantics
and defaults), learning-rate schedules, and ``get(identifier)``.

    opt = tapegrad.optimizers.Adam()            # lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7
    opt.update(params, grads)                   # in place; None gradients are skipped
    opt.apply_gradients(zip(grads, params))     # the Keras spelling

See :mod:`.base` for the Optimizer API (learning rate, update, state, config),
:mod:`.flat_engine` and :mod:`.flat_layout` for the flat parameter buffers the updates
run on, and :mod:`.kernels` for the numerical cores.
"""

from __future__ import annotations

from typing import Any

from ...errors import OpTypeError, OpValueError
from .. import hyperparams
from . import kernels, schedules
from ._parallel import get_num_threads, set_num_threads
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .base import Optimizer
from .rmsprop import RMSprop
from .schedules import (
    CosineDecay,
    ExponentialDecay,
    InverseTimeDecay,
    LearningRateSchedule,
    PiecewiseConstantDecay,
)
from .sgd import SGD

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "Optimizer",
    "PiecewiseConstantDecay",
    "RMSprop",
    "deserialize",
    "get",
    "get_num_threads",
    "kernels",
    "schedules",
    "serialize",
    "set_num_threads",
]

_BY_NAME: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` (JSON values)."""
    if not isinstance(optimizer, Optimizer):
        raise OpTypeError(f"serialize: expects an Optimizer, got {type(optimizer).__name__}")
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Optimizer:
    """Rebuild an optimizer (without its state) from :func:`serialize`'s output.
    Subclasses of :class:`Optimizer` are found by class name once imported, or
    through ``custom_objects``."""
    from .base import _REGISTRY

    if not isinstance(config, dict) or "class_name" not in config:
        raise OpValueError(f"an optimizer config must be a dict with 'class_name' and 'config', got {config!r}")
    name = config["class_name"]
    if not isinstance(name, str):
        raise OpValueError(f"an optimizer's class_name must be a string, got {hyperparams.show(name)}")
    cls = (custom_objects or {}).get(name) or _REGISTRY.get(name) or _BY_NAME.get(name.lower())
    if cls is None:
        raise OpValueError(
            f"unknown optimizer {name!r}; known: {sorted(_BY_NAME)} (pass custom classes through custom_objects)"
        )
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise OpTypeError(f"custom_objects[{name!r}] is used as the optimizer but is not an Optimizer subclass "
                          f"(got {hyperparams.show(cls)})")
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise OpValueError(f"the config of optimizer {name!r} must be a dict, got {hyperparams.show(inner)}")
    return cls.from_config(dict(inner), custom_objects=custom_objects)


def get(identifier: Any) -> Optimizer:
    """An optimizer from a name (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``,
    ``"adagrad"``, case-insensitive; Keras defaults), a config dict, an Optimizer
    subclass, or an Optimizer (returned as is)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise OpValueError(f"unknown optimizer {identifier!r}; known: {sorted(_BY_NAME)}")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    raise OpTypeError(
        f"cannot interpret {identifier!r} as an optimizer: pass a name such as 'adam', a config dict "
        "or an Optimizer"
    )
