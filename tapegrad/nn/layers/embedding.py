"""Embedding: integer indices to dense vectors."""

from __future__ import annotations

from typing import Any

from ...autodiff.variable import Variable
from ...errors import OpValueError
from ...ops.elementwise import not_equal_p
from ...ops.nn_ops import gatherb_p
from .. import hyperparams, initializers
from ._util import integer_indices, owner, single_shape, value_of
from .base import Layer


class Embedding(Layer):
    """Map integer indices in ``[0, input_dim)`` to rows of an ``(input_dim, output_dim)``
    table: ``(batch, ...) -> (batch, ..., output_dim)``.

    ``embeddings_initializer`` defaults to ``"uniform"`` (U(-0.05, 0.05)), as in Keras and
    Rindow. With ``mask_zero=True`` index 0 is padding: the output carries the mask
    ``inputs != 0`` (``out.mask``, also :meth:`compute_mask`) for later layers (then
    ``input_dim`` must count index 0).
    ``input_length`` (Rindow) fixes the sample shape to ``(input_length,)``.
    """

    _expected_input = "an integer array of indices"

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        mask_zero: bool = False,
        input_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        who = owner(self)
        self.input_dim = hyperparams.integer(who, "input_dim", input_dim, low=1)
        self.output_dim = hyperparams.integer(who, "output_dim", output_dim, low=1)
        self.mask_zero = hyperparams.flag(who, "mask_zero", mask_zero)
        self.input_length = None if input_length is None else hyperparams.integer(who, "input_length", input_length,
                                                                                  low=1)
        if self.input_length is not None and self.input_shape is None:
            self.input_shape = (self.input_length,)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self._init_config = initializers.serialize(embeddings_initializer)
        self.embeddings: Variable | None = None

    def build(self, input_shape: Any) -> None:
        shape = single_shape(self, input_shape)
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer)
        self.output_shape = self.compute_output_shape(shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        indices = integer_indices(self, inputs)
        idx = value_of(indices)
        if idx.size:
            lo, hi = idx.min(), idx.max()
            if lo < 0 or hi >= self.input_dim:
                bad = lo if lo < 0 else hi
                raise OpValueError(f"{self.name}: index {bad} is out of range [0, {self.input_dim}) "
                                   f"(input_dim={self.input_dim})")
        out = gatherb_p.apply(self.embeddings, indices, batch=0, outer=0, inner=0)
        if self.mask_zero:
            out.mask = self.compute_mask(indices)
        return out

    def compute_mask(self, inputs: Any, mask: Any = None) -> Variable | None:
        """``inputs != 0`` as a bool Variable with ``mask_zero`` (an op: a compiled Function
        computes it from each call's indices), else None. The output of the layer carries it
        as ``out.mask``."""
        if not self.mask_zero:
            return None
        return not_equal_p.apply2(inputs, 0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(input_dim=self.input_dim, output_dim=self.output_dim,
                      embeddings_initializer=self._init_config, mask_zero=self.mask_zero)
        if self.input_length is not None:
            config["input_length"] = self.input_length
        return config
