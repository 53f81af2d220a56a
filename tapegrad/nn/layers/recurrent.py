"""Recurrent layers: SimpleRNN, LSTM, GRU (Keras 3 semantics, Keras weight layouts).

Weights are ``[kernel (features, k*units), recurrent_kernel (units, k*units), bias]`` with
the gates in Keras's order (LSTM i, f, c, o; GRU z, r, h; k = 4, 3, 1); the GRU bias is
``(2, 3*units)`` (input bias, recurrent bias) with ``reset_after=True``, else
``(3*units,)``. How these map to PyTorch's ``nn.LSTM``/``nn.GRU``/``nn.RNN`` weights is in
``docs/sequences.md``.

Call: ``layer(x, training=None, initial_states=None, mask=None)`` with ``x`` of shape
``(batch, time, features)`` (any number of steps); ``initial_state`` is accepted as
Keras's spelling. The result is the last output ``(batch, units)``, or every step's
``(batch, time, units)`` with ``return_sequences``; with ``return_state`` it is
``[outputs, states]`` where ``states`` is ``[h]`` (``[h, c]`` for the LSTM), as in Rindow.

Masks (Keras): the mask is ``mask=`` if given, else ``x.mask``. Over masked steps the
states are held; with ``return_sequences`` a masked step outputs the held state (zeros
with ``zero_output_for_mask=True``, which Bidirectional uses) and the output carries the
mask on. ``go_backwards`` processes the sequence from its end and returns the outputs in
that (reversed) order.

Dropout (training only, Keras 3): one input mask and one recurrent mask per call, the
same at every step; with ``recurrent_dropout`` the LSTM and GRU draw one mask per gate for
each (Keras's ``implementation=1``). Masks come from ``tapegrad.nn.random.generator()``,
or from the layer's own generator with ``seed``.

The layers run a fused primitive (:mod:`tapegrad.ops.recurrent`: one op for the whole
loop, forward and backward) for the default activations (tanh, and sigmoid for the
gates); other activations run the same computation as ordinary ops, step by step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _dtypes
from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError
from ...ops import sequence_rules  # noqa: F401 - installs the vmap and forward-mode rules of the ops
from ...ops.elementwise import where_p
from ...ops.indexing import getitem_p
from ...ops.nn_ops import RandomSource, dropout_mask_p
from ...ops.recurrent import GATES, recurrent
from ...ops.recurrent_reference import reference_forward
from ...ops.shape import expand_dims_p, transpose_p
from .. import activations, hyperparams, initializers
from ._masks import checked_mask, mask_of
from ._util import autocast, owner, single_shape, value_of
from .base import Layer


def _flag(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise OpTypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return bool(value)


def _rate(owner: str, name: str, value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise OpTypeError(f"{owner}: {name} must be a float in [0, 1), got {value!r}") from None
    if isinstance(value, bool) or not 0.0 <= rate < 1.0:
        raise OpValueError(f"{owner}: {name} must be in [0, 1), got {value!r}")
    return rate


class RecurrentLayer(Layer):
    """The base of SimpleRNN, LSTM and GRU (see the module docstring)."""

    cell = "simple_rnn"

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        *,
        zero_output_for_mask: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(units, (float, np.floating)):
            raise OpValueError(f"{owner(self)}: units must be a positive int, got {units!r}")
        self.units = hyperparams.integer(owner(self), "units", units, low=1)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = _flag(owner(self), "use_bias", use_bias)
        self.return_sequences = _flag(owner(self), "return_sequences", return_sequences)
        self.return_state = _flag(owner(self), "return_state", return_state)
        self.go_backwards = _flag(owner(self), "go_backwards", go_backwards)
        self.zero_output_for_mask = _flag(owner(self), "zero_output_for_mask", zero_output_for_mask)
        self.dropout = _rate(owner(self), "dropout", dropout)
        self.recurrent_dropout = _rate(owner(self), "recurrent_dropout", recurrent_dropout)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._init_configs = {
            "kernel_initializer": initializers.serialize(kernel_initializer),
            "recurrent_initializer": initializers.serialize(recurrent_initializer),
            "bias_initializer": initializers.serialize(bias_initializer),
        }
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            raise OpTypeError(f"{owner(self)}: seed must be an int or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = None if seed is None else np.random.default_rng(self.seed)
        self.kernel: Variable | None = None
        self.recurrent_kernel: Variable | None = None
        self.bias: Variable | None = None
        # The fused primitive computes tanh (and sigmoid gates); other activations run as ops.
        self._fused = self.activation is activations.tanh and (
            self.cell == "simple_rnn" or self.recurrent_activation is activations.sigmoid)

    @property
    def gates(self) -> int:
        return GATES[self.cell]

    @property
    def state_count(self) -> int:
        return 2 if self.cell == "lstm" else 1

    # -- weights ------------------------------------------------------------------------
    def _bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    def _bias_initializer(self) -> Any:
        return self.bias_initializer

    def build(self, input_shape: Any) -> None:
        shape = single_shape(self, input_shape)
        if len(shape) != 2 or shape[1] is None:
            raise OpValueError(f"{self.name}: {type(self).__name__} takes inputs of shape (batch, time, features) "
                               f"with known features, got {('batch',) + tuple(shape)}")
        features = shape[1]
        k = self.gates * self.units
        self.kernel = self.add_weight("kernel", (features, k), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, k), self.recurrent_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", self._bias_shape(), self._bias_initializer())
        # any number of time steps: only the features are fixed
        self.input_shape = (None, features)
        self.output_shape = self.compute_output_shape(shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        time = tuple(input_shape)[0]
        out = (time, self.units) if self.return_sequences else (self.units,)
        if self.return_state:
            return [out] + [(self.units,)] * self.state_count
        return out

    # -- calling ------------------------------------------------------------------------
    def __call__(self, inputs: Any, training: bool | None = None, initial_states: Any = None, mask: Any = None,
                 *, initial_state: Any = None, **kwargs: Any) -> Any:
        if initial_states is None:
            initial_states = initial_state
        elif initial_state is not None:
            raise OpValueError(f"{self.name}: give initial_states or initial_state, not both")
        return super().__call__(inputs, training, initial_states=initial_states, mask=mask, **kwargs)

    forward = __call__

    def call(self, inputs: Any, training: bool | None = None, initial_states: Any = None,
             mask: Any = None) -> Any:
        x = autocast(inputs, self.dtype)
        batch, time = value_of(x).shape[:2]
        if time == 0:
            raise OpValueError(f"{self.name}: the input sequence has no time steps (shape {value_of(x).shape})")
        mask = checked_mask(self.name, mask, batch, time) if mask is not None else mask_of(inputs)
        states = self._initial_states(initial_states, batch)
        in_drop = rec_drop = None
        if training and (self.dropout or self.recurrent_dropout):
            # per-gate masks when the recurrent dropout is on (Keras 3's implementation 1)
            k = self.gates if self.recurrent_dropout and self.cell != "simple_rnn" else 1
            if self.dropout:
                in_drop = dropout_mask_p.apply(x, rate=self.dropout, noise_shape=(None, k, None),
                                               generator=RandomSource(self._rng))
            if self.recurrent_dropout:
                rec_drop = dropout_mask_p.apply(x, rate=self.recurrent_dropout, noise_shape=(None, k, self.units),
                                                generator=RandomSource(self._rng))
        lstm = self.cell == "lstm"
        # the final hidden state alone when nothing else is used: its gradient is then one
        # (batch, units) array, not a mostly zero one for every step
        only_last = not self.return_sequences and not (self.return_state and lstm)
        out = self._run(x, states, mask, in_drop, rec_drop, only_last)
        # one index per result (the gradient of each is one scatter), and -1 for the last
        # step: no sequence length in a compiled graph, so that other lengths replay it
        last = out if only_last else getitem_p.apply(out, index=(0, -1) if lstm else (-1,))
        if self.return_sequences:
            output = transpose_p.apply(out, perm=(1, 0, 2)) if not lstm else transpose_p.apply(
                getitem_p.apply(out, index=(0,)), perm=(1, 0, 2))
            if mask is not None:
                if self.zero_output_for_mask:
                    keep = mask if not self.go_backwards else getitem_p.apply(
                        mask, index=(slice(None), slice(None, None, -1)))
                    output = where_p.apply(expand_dims_p.apply(keep, axes=(2,)), output, 0.0)
                output.mask = mask
        else:
            output = last
        if not self.return_state:
            return output
        if self.cell == "lstm":
            return [output, [last, getitem_p.apply(out, index=(1, -1))]]
        return [output, [last]]

    def _run(self, x: Any, states: list[Any], mask: Any, in_drop: Any, rec_drop: Any, last: bool) -> Variable:
        h0 = states[0] if states else None
        c0 = states[1] if len(states) > 1 else None
        reset_after = getattr(self, "reset_after", True)
        if self._fused:
            return recurrent(self.cell, x, self.kernel, self.recurrent_kernel, b=self.bias, h0=h0, c0=c0,
                             mask=mask, in_drop=in_drop, rec_drop=rec_drop, go_backwards=self.go_backwards,
                             reset_after=reset_after, last=last)
        named = {"x": x, "W": self.kernel, "R": self.recurrent_kernel, "b": self.bias, "h0": h0, "c0": c0,
                 "mask": mask, "in_drop": in_drop, "rec_drop": rec_drop}
        return reference_forward(self.cell, named, self.go_backwards, reset_after, self.activation,
                                 self.recurrent_activation, last=last)

    def _initial_states(self, states: Any, batch: int) -> list[Any]:
        if states is None:
            return []
        if isinstance(states, (Variable, np.ndarray)):
            states = [states]
        if not isinstance(states, (list, tuple)) or len(states) != self.state_count:
            what = "[h, c]" if self.cell == "lstm" else "[h]"
            got = f"{len(states)} arrays" if isinstance(states, (list, tuple)) else type(states).__name__
            raise OpValueError(f"{self.name}: initial_states must be a list {what} of {self.state_count} "
                               f"array(s) of shape (batch, units) = ({batch}, {self.units}), got {got}")
        out = []
        for i, s in enumerate(states):
            if not isinstance(s, (Variable, np.ndarray)):
                s = _dtypes.to_array(s, None, self.dtype, self.name, f"initial_states[{i}]")
            shape = np.shape(value_of(s))
            if shape != (batch, self.units):
                raise OpValueError(f"{self.name}: initial_states[{i}] has shape {shape}, expected (batch, units) "
                                   f"= ({batch}, {self.units})")
            out.append(autocast(s, self.dtype))
        return out

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            units=self.units,
            activation=activations.serialize(self.activation),
            use_bias=self.use_bias,
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            go_backwards=self.go_backwards,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            **self._init_configs,
            zero_output_for_mask=self.zero_output_for_mask,
            seed=self.seed,
        )
        if self.cell != "simple_rnn":
            config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        return config


class SimpleRNN(RecurrentLayer):
    """Fully connected recurrence: ``h_t = activation(x_t W + h_{t-1} R + b)``."""

    cell = "simple_rnn"

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        use_bias: bool = True,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(units, activation, "sigmoid", use_bias, return_sequences, return_state, go_backwards,
                         dropout, recurrent_dropout, kernel_initializer, recurrent_initializer, bias_initializer,
                         **kwargs)


class LSTM(RecurrentLayer):
    """Long short-term memory: gates i, f, c, o; ``c_t = f c_{t-1} + i g``, ``h_t = o tanh(c_t)``.
    ``unit_forget_bias`` starts the forget gate's bias at 1 (Keras)."""

    cell = "lstm"

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(units, activation, recurrent_activation, use_bias, return_sequences, return_state,
                         go_backwards, dropout, recurrent_dropout, kernel_initializer, recurrent_initializer,
                         bias_initializer, **kwargs)
        self.unit_forget_bias = _flag(owner(self), "unit_forget_bias", unit_forget_bias)

    def _bias_initializer(self) -> Any:
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, base = self.units, self.bias_initializer

        def forget_bias_one(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
            return np.concatenate([base((units,), dtype), np.ones((units,), dtype), base((2 * units,), dtype)])

        return forget_bias_one

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config


class GRU(RecurrentLayer):
    """Gated recurrent unit (Keras): gates z, r, h; ``h_t = z h_{t-1} + (1 - z) hh``. With
    ``reset_after`` (default, as cuDNN and PyTorch) the reset gate multiplies ``h R_h + b``
    and the bias is ``(2, 3*units)``; otherwise it multiplies ``h`` before the product."""

    cell = "gru"

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        reset_after: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(units, activation, recurrent_activation, use_bias, return_sequences, return_state,
                         go_backwards, dropout, recurrent_dropout, kernel_initializer, recurrent_initializer,
                         bias_initializer, **kwargs)
        self.reset_after = _flag(owner(self), "reset_after", reset_after)

    def _bias_shape(self) -> tuple[int, ...]:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["reset_after"] = self.reset_after
        return config
