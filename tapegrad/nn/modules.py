"""Modules: a list of layers and models that a model owns (Rindow's ``$g->modules()``).

A model finds the layers held in its attributes, lists included, so a ``Modules`` is
an ordinary list with Rindow's ``add`` and the per-module methods a model has:
``variables()``, ``trainable_variables()`` and ``set_shape_inspection()``.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..errors import OpTypeError
from .layers.base import Layer


class Modules(list):
    """A list of layers (and models): ``modules.add(layer)``, ``modules[i]``, ``len``,
    iteration. A model holding it as an attribute owns its layers' weights."""

    def __init__(self, modules: Iterable[Any] | None = None, name: str | None = None) -> None:
        items = list(modules or [])
        for i, m in enumerate(items):
            _check(m, f"modules[{i}]")
        super().__init__(items)
        self.name = name

    def add(self, module: Any) -> None:
        """Append a layer or model."""
        _check(module, "module")
        self.append(module)

    def submodules(self) -> list[Any]:
        return list(self)

    def variables(self) -> list[Any]:
        return [v for m in self for v in m.variables()]

    def trainable_variables(self) -> list[Any]:
        return [v for m in self for v in m.trainable_variables()]

    def set_shape_inspection(self, enable: bool) -> None:
        for m in self:
            m.set_shape_inspection(enable)


def _check(module: Any, arg: str) -> None:
    if not isinstance(module, Layer):
        raise OpTypeError(f"Modules: {arg} must be a layer or a model, got {type(module).__name__}")
