"""Convolution layers: Conv1D/2D/3D and Conv1D/2D/3DTranspose (Keras 3 arguments and
weight layouts).

``Conv2D(filters, kernel_size)`` holds ``kernel`` of shape ``kernel_size +
(in_channels // groups, filters)`` and ``bias`` of shape ``(filters,)``; the transposed
layers hold ``kernel_size + (filters, in_channels)``. A call is one ``conv`` (or
``conv_transpose``), its bias added to the ``(positions, filters)`` matrix of the
product, then one activation op.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError
from ...ops import windows as win
from ...ops.conv import convolve, convolve_transpose, transpose_pads
from .. import activations, hyperparams, initializers
from ._util import autocast, owner, single_shape
from .base import Layer

_AXES = {1: "steps", 2: "height, width", 3: "depth, height, width"}


def positive_int(layer: Layer, name: str, value: Any) -> int:
    if isinstance(value, (float, np.floating)):  # an integral float (4.0) is still not a count of filters
        raise OpValueError(f"{owner(layer)}: {name} must be a positive int, got {value!r}")
    return hyperparams.integer(owner(layer), name, value, low=1)


def layout(rank: int, data_format: str) -> str:
    """``(batch, height, width, channels)`` or the channels_first order."""
    if data_format == "channels_last":
        return f"(batch, {_AXES[rank]}, channels)"
    return f"(batch, channels, {_AXES[rank]})"


def check_rank(layer: Layer, rank: int, data_format: str, input_shape: Any) -> tuple:
    """The sample shape of a one-input layer of ``rank`` spatial axes; wrong rank: an error."""
    shape = single_shape(layer, input_shape)
    if len(shape) != rank + 1:
        raise OpValueError(
            f"{layer.name}: {type(layer).__name__} expects inputs of rank {rank + 2}, "
            f"{layout(rank, data_format)}, got inputs of shape {(None,) + tuple(shape)}")
    return shape


def split_channels(shape: tuple, data_format: str) -> tuple[tuple, Any]:
    """(spatial sizes, channels) of a sample shape."""
    if data_format == "channels_last":
        return tuple(shape[:-1]), shape[-1]
    return tuple(shape[1:]), shape[0]


def join_channels(spatial: tuple, channels: Any, data_format: str) -> tuple:
    return (*spatial, channels) if data_format == "channels_last" else (channels, *spatial)


def conv_output_size(n: int | None, k: int, s: int, mode: str) -> int | None:
    """Keras' output length of a convolution or pooling (k: the dilated window)."""
    if n is None:
        return None
    if mode == "valid":
        return (n - k) // s + 1
    return -(-n // s)  # same and causal


class _Conv(Layer):
    rank = 2
    transposed = False

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        *,
        output_padding: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        rank, name = self.rank, owner(self)
        self.filters = positive_int(self, "filters", filters)
        self.kernel_size = win.spatial_tuple(kernel_size, rank, name, "kernel_size")
        self.strides = win.spatial_tuple(strides, rank, name, "strides")
        self.dilation_rate = win.spatial_tuple(dilation_rate, rank, name, "dilation_rate")
        allowed = ("valid", "same") if self.transposed or rank != 1 else ("valid", "same", "causal")
        self.padding = win.padding_mode(padding, name, allowed)
        self.data_format = win.data_format_of(data_format, name)
        self.groups = positive_int(self, "groups", groups)
        if self.filters % self.groups:
            raise OpValueError(f"{name}: groups={self.groups} must divide filters={self.filters}")
        if output_padding is not None and not self.transposed:
            raise OpTypeError(f"{name}: output_padding is not an argument of {type(self).__name__} "
                              f"(a transposed convolution takes one)")
        self.output_padding = None if output_padding is None else win.spatial_tuple(
            output_padding, rank, name, "output_padding", minimum=0)
        self.activation = activations.get(activation)
        self._act = None if self.activation is activations.linear else self.activation
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._kernel_init_config = initializers.serialize(kernel_initializer)
        self._bias_init_config = initializers.serialize(bias_initializer)
        self.kernel: Variable | None = None
        self.bias: Variable | None = None

    def _extents(self) -> tuple[int, ...]:
        return win.effective(self.kernel_size, self.dilation_rate)

    def build(self, input_shape: Any) -> None:
        shape = check_rank(self, self.rank, self.data_format, input_shape)
        spatial, channels = split_channels(shape, self.data_format)
        if channels is None:
            raise OpValueError(f"{self.name}: the channel axis of the inputs must be known, got inputs of shape "
                               f"{(None,) + tuple(shape)} ({self.data_format})")
        if channels % self.groups:
            raise OpValueError(f"{self.name}: groups={self.groups} must divide the input channels, got inputs of "
                               f"shape {(None,) + tuple(shape)} with {channels} channels")
        if self.transposed:
            kernel_shape = self.kernel_size + (self.filters, channels)
        else:
            kernel_shape = self.kernel_size + (channels // self.groups, self.filters)
        self.output_shape = self.compute_output_shape(shape)
        self.kernel = self.add_weight("kernel", kernel_shape, self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = autocast(inputs, self.dtype)
        name = self.name
        if self.transposed:
            return convolve_transpose(name, x, self.kernel, self.strides, self.padding, self.output_padding,
                                      self.dilation_rate, self.data_format, self.bias, self._act)
        return convolve(name, x, self.kernel, self.strides, self.padding, self.dilation_rate, self.groups,
                        self.data_format, self.bias, self._act)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = check_rank(self, self.rank, self.data_format, input_shape)
        spatial, _ = split_channels(shape, self.data_format)
        extents = self._extents()
        if self.transposed:
            out = tuple(None if n is None else transpose_pads(
                self.padding, (n,), (k,), (s,), None if self.output_padding is None else (self.output_padding[i],)
            )[0][0] for i, (n, k, s) in enumerate(zip(spatial, extents, self.strides)))
        else:
            out = tuple(conv_output_size(n, k, s, self.padding) for n, k, s in zip(spatial, extents, self.strides))
        if any(n is not None and n < 1 for n in out):
            raise OpValueError(f"{self.name}: the kernel (extent {extents}) does not fit into inputs of shape "
                               f"{(None,) + tuple(shape)} with padding {self.padding!r}: output size {out}")
        return join_channels(out, self.filters, self.data_format)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=list(self.kernel_size),
            strides=list(self.strides),
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=list(self.dilation_rate),
            activation=activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=self._kernel_init_config,
            bias_initializer=self._bias_init_config,
        )
        if self.transposed:
            config["output_padding"] = None if self.output_padding is None else list(self.output_padding)
        else:
            config["groups"] = self.groups
        return config


class Conv1D(_Conv):
    """1-D convolution over ``(batch, steps, channels)``; ``padding="causal"`` pads the start only."""

    rank = 1


class Conv2D(_Conv):
    """2-D convolution over ``(batch, height, width, channels)``: ``Conv2D(32, 3, activation="relu")``."""

    rank = 2


class Conv3D(_Conv):
    """3-D convolution over ``(batch, depth, height, width, channels)``."""

    rank = 3


class _ConvTranspose(_Conv):
    transposed = True

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 output_padding: Any = None, data_format: str | None = None, dilation_rate: Any = 1,
                 activation: Any = None, use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         output_padding=output_padding, **kwargs)


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution; kernel ``(k, filters, in_channels)``."""

    rank = 1


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution (upsampling by ``strides``); kernel ``(kh, kw, filters, in_channels)``.
    Output size: ``same``: ``n * stride``; ``valid``: ``(n - 1) * stride + max(k, stride)``."""

    rank = 2


class Conv3DTranspose(_ConvTranspose):
    """Transposed 3-D convolution; kernel ``(kd, kh, kw, filters, in_channels)``."""

    rank = 3
