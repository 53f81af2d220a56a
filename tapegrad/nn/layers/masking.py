"""InheritMask (Rindow): its first input, carrying the second input's mask."""

from __future__ import annotations

from typing import Any

from ...ops.elementwise import nop_p
from ._masks import mask_of
from ._util import shape_list
from .base import Layer


class InheritMask(Layer):
    """``InheritMask()([x, source])`` returns ``x`` (the same values; the gradient flows to
    ``x`` only) with ``source``'s mask, or with no mask if ``source`` has none. Rindow's
    samples use it after ops that drop the mask, e.g. adding a positional encoding to an
    ``Embedding(mask_zero=True)`` output."""

    def build(self, input_shape: Any) -> None:
        shapes = shape_list(self, input_shape, exactly=2)
        self.output_shape = shapes[0]

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x, source = inputs
        out = nop_p.apply1(x)  # a new Variable: the caller's x keeps its own mask
        mask = mask_of(source)
        if mask is not None:
            out.mask = mask
        return out

    def compute_output_shape(self, input_shape: Any) -> Any:
        return shape_list(self, input_shape, exactly=2)[0]
