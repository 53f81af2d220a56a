"""Bidirectional: run a recurrent layer forwards and a copy of it backwards, and merge."""

from __future__ import annotations

from typing import Any

from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError
from ...ops.elementwise import add_p, mul_p
from ...ops.indexing import getitem_p
from ...ops.shape import concat_p
from ._masks import checked_mask, mask_of
from ._util import value_of
from .base import Layer
from .recurrent import RecurrentLayer

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """``Bidirectional(layer, merge_mode="concat", backward_layer=None)`` (Keras 3).

    The forward layer is a fresh copy of ``layer`` named ``forward_<name>``; the backward
    one a copy with ``go_backwards=True`` named ``backward_<name>`` (or ``backward_layer``).
    Their weights are new (as in Keras): ``get_weights()`` lists the forward layer's, then
    the backward layer's; a ``dtype`` given to the wrapper is also the copies'. With
    ``return_sequences`` the backward outputs are put back in time order and masked steps
    output zeros, then the two are merged: ``"concat"`` on the
    last axis, ``"sum"``, ``"mul"``, ``"ave"``, or None for the list ``[forward, backward]``.
    ``initial_states`` is the forward layer's states followed by the backward layer's; with
    ``return_state`` the result is ``[outputs, states]`` with the states in that order.
    """

    def __init__(self, layer: Any, merge_mode: str | None = "concat", backward_layer: Any = None,
                 **kwargs: Any) -> None:
        from . import deserialize, serialize

        super().__init__(**kwargs)
        if not isinstance(layer, RecurrentLayer):
            raise OpTypeError(f"{self.name}: layer must be a SimpleRNN, LSTM or GRU layer, got "
                              f"{type(layer).__name__}")
        if merge_mode not in MERGE_MODES:
            raise OpValueError(f"{self.name}: merge_mode must be one of 'concat', 'sum', 'mul', 'ave' or None, "
                               f"got {merge_mode!r}")
        self.merge_mode = merge_mode

        def copy(**changes: Any) -> RecurrentLayer:
            config = serialize(layer)
            config["config"].pop("input_shape", None)
            config["config"].update(changes)
            if kwargs.get("dtype") is not None:  # a dtype given to the wrapper is its layers'
                config["config"]["dtype"] = str(self.dtype)
            return deserialize(config)  # type: ignore[return-value]

        self.forward_layer: RecurrentLayer = copy(name="forward_" + layer.name.removeprefix("forward_"))
        if backward_layer is None:
            backward_layer = copy(go_backwards=True, name="backward_" + layer.name.removeprefix("backward_"))
        elif not isinstance(backward_layer, RecurrentLayer):
            raise OpTypeError(f"{self.name}: backward_layer must be a SimpleRNN, LSTM or GRU layer, got "
                              f"{type(backward_layer).__name__}")
        self.backward_layer: RecurrentLayer = backward_layer
        forward = self.forward_layer
        if forward.go_backwards == backward_layer.go_backwards:
            raise OpValueError(f"{self.name}: the forward and backward layers must have different go_backwards, "
                               f"both have {forward.go_backwards}")
        for attr in ("return_sequences", "return_state"):
            if getattr(forward, attr) != getattr(backward_layer, attr):
                raise OpValueError(f"{self.name}: the forward and backward layers must have the same {attr}, got "
                                   f"{getattr(forward, attr)} and {getattr(backward_layer, attr)}")
        self.return_sequences = forward.return_sequences
        self.return_state = forward.return_state
        for sub in (forward, backward_layer):
            sub.zero_output_for_mask = sub.return_sequences

    # -- weights: the sublayers' ----------------------------------------------------------
    def variables(self) -> list[Variable]:
        return self.forward_layer.variables() + self.backward_layer.variables()

    def trainable_variables(self) -> list[Variable]:
        if not self.trainable:
            return []
        return self.forward_layer.trainable_variables() + self.backward_layer.trainable_variables()

    def build(self, input_shape: Any) -> None:
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                sub.build(input_shape)
                sub.built = True
        self.input_shape = self.forward_layer.input_shape

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = self.forward_layer.compute_output_shape(input_shape)
        states: list = []
        if self.return_state:
            shape, states = shape[0], shape[1:]
        if self.merge_mode == "concat":
            shape = tuple(shape[:-1]) + (2 * shape[-1],)
        elif self.merge_mode is None:
            shape = [shape, shape]
        return [shape] + states + states if self.return_state else shape

    # -- calling ------------------------------------------------------------------------
    def __call__(self, inputs: Any, training: bool | None = None, initial_states: Any = None, mask: Any = None,
                 *, initial_state: Any = None, **kwargs: Any) -> Any:
        if initial_states is None:
            initial_states = initial_state
        return super().__call__(inputs, training, initial_states=initial_states, mask=mask, **kwargs)

    forward = __call__

    def call(self, inputs: Any, training: bool | None = None, initial_states: Any = None,
             mask: Any = None) -> Any:
        if mask is None:
            mask = mask_of(inputs)
        else:
            batch, time = value_of(inputs).shape[:2]
            mask = checked_mask(self.name, mask, batch, time)
        forward_states = backward_states = None
        if initial_states is not None:
            count = self.forward_layer.state_count
            if not isinstance(initial_states, (list, tuple)) or len(initial_states) != 2 * count:
                raise OpValueError(f"{self.name}: initial_states must be a list of {2 * count} arrays (the forward "
                                   f"layer's states, then the backward layer's)")
            forward_states, backward_states = list(initial_states[:count]), list(initial_states[count:])
        y = self.forward_layer(inputs, training, initial_states=forward_states, mask=mask)
        y_rev = self.backward_layer(inputs, training, initial_states=backward_states, mask=mask)
        states: list = []
        if self.return_state:
            states = list(y[1]) + list(y_rev[1])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = getitem_p.apply(y_rev, index=(slice(None), slice(None, None, -1)))
        if self.merge_mode == "concat":
            output: Any = concat_p.apply(y, y_rev, axis=value_of(y).ndim - 1)
        elif self.merge_mode == "sum":
            output = add_p.apply2(y, y_rev)
        elif self.merge_mode == "ave":
            output = mul_p.apply2(add_p.apply2(y, y_rev), 0.5)
        elif self.merge_mode == "mul":
            output = mul_p.apply2(y, y_rev)
        else:
            output = [y, y_rev]
        if self.return_sequences and mask is not None:
            for out in output if isinstance(output, list) else [output]:
                out.mask = mask
        if self.return_state:
            return [output, states]
        return output

    def get_config(self) -> dict[str, Any]:
        from . import serialize

        config = super().get_config()
        config.update(layer=serialize(self.forward_layer), merge_mode=self.merge_mode,
                      backward_layer=serialize(self.backward_layer))
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Bidirectional:
        from . import deserialize

        config = dict(config)
        config["layer"] = deserialize(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize(config["backward_layer"])
        return cls(**config)
