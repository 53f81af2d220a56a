"""Layers that merge a list of inputs: Concatenate, Add.

Multi-input layers take a list of inputs and build from the list of their shapes;
``input_shape`` (or Rindow's ``input_shapes``) is then a list of shapes.
"""

from __future__ import annotations

from typing import Any

from ...errors import OpTypeError, OpValueError
from ...ops.elementwise import add_p
from ...ops.shape import concat_p
from .. import hyperparams
from ._masks import time_concatenated_mask
from ._util import full_axes, owner, shape_list
from .base import Layer


def _multi_input_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    shapes = kwargs.pop("input_shapes", None)
    if shapes is not None:
        if kwargs.get("input_shape") is not None:
            raise OpValueError("give either input_shape or input_shapes, not both")
        if not isinstance(shapes, (list, tuple)):
            raise OpTypeError(f"input_shapes must be a list of shapes, got {hyperparams.show(shapes)}")
        kwargs["input_shape"] = [list(s) if isinstance(s, (list, tuple)) else s for s in shapes]
    return kwargs


class Concatenate(Layer):
    """Join a list of inputs along ``axis`` (of the full shape, batch axis 0; default -1).
    All other dimensions must agree."""

    supports_masking = True

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**_multi_input_kwargs(kwargs))
        self.axis = hyperparams.axis(owner(self), "axis", axis)
        self._axis: int | None = None

    def build(self, input_shape: Any) -> None:
        shapes = shape_list(self, input_shape)
        self.output_shape = self.compute_output_shape(shapes)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shapes = shape_list(self, input_shape)
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise OpValueError(f"{self.name}: all inputs must have the same rank, got shapes "
                               f"{', '.join(str(s) for s in shapes)} (batch axis excluded)")
        rank = ranks.pop() + 1
        (axis,) = full_axes(self, self.axis, rank)
        self._axis = axis
        out = list(shapes[0])
        total: int | None = 0
        for s in shapes:
            for i, (a, b) in enumerate(zip(out, s)):
                if i == axis - 1:
                    continue
                if a is not None and b is not None and a != b:
                    raise OpValueError(
                        f"{self.name}: cannot concatenate along axis {self.axis}: shapes "
                        f"{', '.join(str(t) for t in shapes)} (batch axis excluded) differ in axis {i + 1}"
                    )
                if a is None:
                    out[i] = b
            n = s[axis - 1]
            total = None if total is None or n is None else total + n
        out[axis - 1] = total
        return tuple(out)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        out = concat_p.apply(*inputs, axis=self._axis)
        if self._axis == 1:  # joined in time: so are the masks (the others' masks are merged)
            out.mask = time_concatenated_mask(inputs)
        return out

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["axis"] = self.axis
        return config


class Add(Layer):
    """The elementwise sum of a list of inputs (at least two; shapes must agree or
    broadcast, as in Keras 3)."""

    supports_masking = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_multi_input_kwargs(kwargs))

    def build(self, input_shape: Any) -> None:
        self.output_shape = self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shapes = shape_list(self, input_shape)
        rank = max(len(s) for s in shapes)
        out: list[Any] = [1] * rank
        for s in shapes:
            padded = (1,) * (rank - len(s)) + tuple(s)
            for i, n in enumerate(padded):
                m = out[i]
                if n == 1 or n == m:
                    continue
                if m == 1:
                    out[i] = n
                elif n is None or m is None:
                    out[i] = m if n is None else n
                else:
                    raise OpValueError(f"{self.name}: inputs of shapes {', '.join(str(t) for t in shapes)} "
                                       f"(batch axis excluded) cannot be added")
        return tuple(out)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        out = add_p.apply2(inputs[0], inputs[1])
        for x in inputs[2:]:
            out = add_p.apply2(out, x)
        return out
