"""Shape layers: Flatten, Reshape, ExpandDims, RepeatVector.

Each is one ``reshape`` (a view, no copy) or one ``repeat``; the batch axis is
written as -1, so the op does not depend on the batch size.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...errors import OpValueError
from ...ops.shape import reshape_p
from ...ops.tiling import repeat_p
from .. import hyperparams
from ._util import known_size, owner, single_shape, value_of
from .base import Layer


class Flatten(Layer):
    """``(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)``; ``(batch,) -> (batch, 1)``."""

    def build(self, input_shape: Any) -> None:
        self.output_shape = self.compute_output_shape(single_shape(self, input_shape))

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        shape = np.shape(value_of(inputs))
        size = math.prod(shape[1:])
        target = (-1, size) if size else (shape[0], 0)
        return reshape_p.apply(inputs, shape=target)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (known_size(tuple(input_shape)),)


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (batch axis excluded; one entry may be -1)."""

    def __init__(self, target_shape: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        target = hyperparams.shape(owner(self), "target_shape", target_shape, free=False, minus_one=True)
        if sum(n == -1 for n in target) > 1:
            raise OpValueError(f"{owner(self)}: target_shape {target} may have one -1 and no other negative entry")
        self.target_shape = target
        self._resolved: tuple[int, ...] | None = None

    def build(self, input_shape: Any) -> None:
        shape = single_shape(self, input_shape)
        self._resolved = self._resolve(known_size(shape), shape)
        self.output_shape = self._resolved if self._resolved is not None else self.target_shape

    def _resolve(self, size: int | None, shape: tuple) -> tuple[int, ...] | None:
        if size is None:
            return None
        target = self.target_shape
        known = math.prod(n for n in target if n != -1)
        if -1 in target:
            if known == 0 or size % known:
                raise OpValueError(f"{self.name}: cannot reshape samples of shape {shape} (size {size}) "
                                   f"into {target}")
            return tuple(size // known if n == -1 else n for n in target)
        if known != size:
            raise OpValueError(f"{self.name}: cannot reshape samples of shape {shape} (size {size}) into "
                               f"{target} (size {known})")
        return target

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if self._resolved is not None:
            return reshape_p.apply(inputs, shape=(-1,) + self._resolved)
        shape = np.shape(value_of(inputs))
        resolved = self._resolve(math.prod(shape[1:]), shape[1:])
        return reshape_p.apply(inputs, shape=(shape[0],) + resolved)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = tuple(input_shape)
        resolved = self._resolve(known_size(shape), shape)
        return resolved if resolved is not None else tuple(None if n == -1 else n for n in self.target_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["target_shape"] = list(self.target_shape)
        return config


class ExpandDims(Layer):
    """Insert an axis of length 1 into each sample, at ``axis`` of the sample shape (Rindow's
    semantics: the batch axis is not counted; -1 appends a last axis).

    ``ExpandDims(0)`` maps ``(batch, 3) -> (batch, 1, 3)``; ``ExpandDims(-1)`` maps
    ``(batch, 3) -> (batch, 3, 1)``.
    """

    def __init__(self, axis: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = hyperparams.axis(owner(self), "axis", axis)

    def _insert_at(self, rank: int) -> int:
        axis = self.axis + rank + 1 if self.axis < 0 else self.axis
        if not 0 <= axis <= rank:
            raise OpValueError(f"{self.name}: axis {self.axis} is out of range for samples of rank {rank}")
        return axis

    def build(self, input_shape: Any) -> None:
        self.output_shape = self.compute_output_shape(single_shape(self, input_shape))

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        shape = np.shape(value_of(inputs))[1:]
        return reshape_p.apply(inputs, shape=(-1,) + self.compute_output_shape(shape))

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = tuple(input_shape)
        at = self._insert_at(len(shape))
        return shape[:at] + (1,) + shape[at:]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["axis"] = self.axis
        return config


class RepeatVector(Layer):
    """Repeat each sample vector ``n`` times: ``(batch, features) -> (batch, n, features)``.

    ``n`` is Rindow's ``repeats`` (also accepted as a keyword).
    """

    def __init__(self, n: int | None = None, *, repeats: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if n is None:
            n = repeats
        elif repeats is not None and repeats != n:
            raise OpValueError(f"{self.name}: give n or repeats, not both")
        self.n = hyperparams.integer(owner(self), "n", n, low=1)

    def build(self, input_shape: Any) -> None:
        self.output_shape = self.compute_output_shape(single_shape(self, input_shape))

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        features = np.shape(value_of(inputs))[1]
        x = reshape_p.apply(inputs, shape=(-1, 1, features))
        return repeat_p.apply(x, repeats=self.n, axis=1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = tuple(input_shape)
        if len(shape) != 1:
            raise OpValueError(f"{self.name}: RepeatVector takes inputs of shape (batch, features), got samples "
                               f"of shape {shape}")
        return (self.n,) + shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["n"] = self.n
        return config
