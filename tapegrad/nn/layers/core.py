"""Core layers: Input, Dense, Activation."""

from __future__ import annotations

from typing import Any

from ...autodiff.variable import Variable
from ...errors import OpValueError
from ...ops.elementwise import add_p
from ...ops.linalg import matmul_p
from ...ops.shape import reshape_p
from .. import activations, hyperparams, initializers
from ._util import autocast, owner, single_shape, value_of
from .base import Layer


class Input(Layer):
    """The input of a model: declares the shape of one sample (batch axis excluded) and
    passes its input through unchanged (Rindow's ``Input(shape=[...])``).

    ``Input(shape=(784,))``; ``dtype`` may be an integer dtype for index inputs.
    """

    def __init__(self, shape: Any = None, **kwargs: Any) -> None:
        if shape is not None:
            if kwargs.get("input_shape") is not None:
                raise OpValueError("Input: give either shape or input_shape, not both")
            kwargs["input_shape"] = shape
        super().__init__(**kwargs)
        if self.input_shape is not None:
            self.output_shape = self.input_shape

    @property
    def shape(self) -> Any:
        """The declared sample shape (batch axis excluded), or None."""
        return self.input_shape

    def build(self, input_shape: Any) -> None:
        self.output_shape = input_shape

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["shape"] = config.pop("input_shape", None)
        return config


class Dense(Layer):
    """A densely connected layer: ``activation(inputs @ kernel + bias)``.

    ``kernel`` has shape ``(input_features, units)``. Inputs of rank > 2 are multiplied
    along their last axis: ``(batch, ..., features) -> (batch, ..., units)``.
    The computation is one matmul, one bias add and one activation op (none for
    ``activation=None`` / ``"linear"``).
    """

    supports_masking = True

    def __init__(
        self,
        units: int,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = hyperparams.integer(owner(self), "units", units, low=1)
        self.activation = activations.get(activation)
        # None for the identity: no op at all.
        self._act = None if self.activation is activations.linear else self.activation
        self.use_bias = hyperparams.flag(owner(self), "use_bias", use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._kernel_init_config = initializers.serialize(kernel_initializer)
        self._bias_init_config = initializers.serialize(bias_initializer)
        self.kernel: Variable | None = None
        self.bias: Variable | None = None

    def build(self, input_shape: Any) -> None:
        shape = single_shape(self, input_shape)
        if len(shape) == 0:
            raise OpValueError(f"{self.name}: Dense needs inputs of rank >= 2 (batch, ..., features), "
                               f"got one value per sample (input shape {shape}, batch axis excluded)")
        if shape[-1] is None:
            raise OpValueError(f"{self.name}: the last dimension of the inputs must be known, got {shape}")
        self.kernel = self.add_weight("kernel", (shape[-1], self.units), self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer)
        self.output_shape = self.compute_output_shape(shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = autocast(inputs, self.dtype)
        ndim = value_of(x).ndim
        if ndim == 2:
            y = matmul_p.apply2(x, self.kernel)
        else:
            # (batch, ..., features): one 2-D matmul on a reshaped view (a batched matmul
            # would make the kernel gradient a (batch, features, units) temporary).
            shape = value_of(x).shape
            x2 = reshape_p.apply(x, shape=(-1, shape[-1]))
            y = matmul_p.apply2(x2, self.kernel)
            y = reshape_p.apply(y, shape=(-1,) + shape[1:-1] + (self.units,))
        if self.bias is not None:
            y = add_p.apply2(y, self.bias)
        if self._act is not None:
            y = self._act(y)
        return y

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            units=self.units,
            activation=activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=self._kernel_init_config,
            bias_initializer=self._bias_init_config,
        )
        return config


class Activation(Layer):
    """Applies an activation function: ``Activation("relu")``, a callable or None (linear)."""

    supports_masking = True

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def build(self, input_shape: Any) -> None:
        self.output_shape = single_shape(self, input_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.activation(inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config
