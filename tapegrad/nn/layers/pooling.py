"""Pooling layers: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D and their Global variants
(Keras 3 arguments). No weights."""

from __future__ import annotations

from typing import Any

from ...errors import OpValueError
from ...ops import windows as win
from ...ops.pooling import avg_pool, max_pool
from ...ops.reduction import reduce_max_p, reduce_mean_p
from ._util import owner
from .base import Layer
from .conv import check_rank, conv_output_size, join_channels, split_channels


class _Pooling(Layer):
    rank = 2
    _op = staticmethod(max_pool)

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size = win.spatial_tuple(pool_size, self.rank, owner(self), "pool_size")
        self.strides = self.pool_size if strides is None else win.spatial_tuple(
            strides, self.rank, owner(self), "strides")
        self.padding = win.padding_mode(padding, owner(self), ("valid", "same"))
        self.data_format = win.data_format_of(data_format, owner(self))

    def build(self, input_shape: Any) -> None:
        self.output_shape = self.compute_output_shape(input_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self._op(inputs, self.pool_size, self.strides, self.padding, self.data_format)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = check_rank(self, self.rank, self.data_format, input_shape)
        spatial, channels = split_channels(shape, self.data_format)
        out = tuple(conv_output_size(n, k, s, self.padding) for n, k, s in zip(spatial, self.pool_size, self.strides))
        if any(n is not None and n < 1 for n in out):
            raise OpValueError(f"{self.name}: the pool window {self.pool_size} does not fit into inputs of shape "
                               f"{(None,) + tuple(shape)} with padding {self.padding!r}: output size {out}")
        return join_channels(out, channels, self.data_format)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(pool_size=list(self.pool_size), strides=list(self.strides), padding=self.padding,
                      data_format=self.data_format)
        return config


class MaxPooling1D(_Pooling):
    """Maximum over windows of ``pool_size`` steps: ``(batch, steps, channels)``."""

    rank = 1


class MaxPooling2D(_Pooling):
    """Maximum over ``pool_size`` windows (default 2x2, stride = pool_size)."""

    rank = 2


class MaxPooling3D(_Pooling):
    rank = 3


class AveragePooling1D(_Pooling):
    """Mean over windows; with ``same`` padding the padded cells are not counted."""

    rank = 1
    _op = staticmethod(avg_pool)


class AveragePooling2D(_Pooling):
    rank = 2
    _op = staticmethod(avg_pool)


class AveragePooling3D(_Pooling):
    rank = 3
    _op = staticmethod(avg_pool)


class _GlobalPooling(Layer):
    rank = 2
    _prim = reduce_max_p

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = win.data_format_of(data_format, owner(self))
        self.keepdims = bool(keepdims)
        first = 1 if self.data_format == "channels_last" else 2
        self._axes = tuple(range(first, first + self.rank))

    def build(self, input_shape: Any) -> None:
        self.output_shape = self.compute_output_shape(input_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self._prim.apply(inputs, axis=self._axes, keepdims=self.keepdims)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = check_rank(self, self.rank, self.data_format, input_shape)
        _, channels = split_channels(shape, self.data_format)
        if not self.keepdims:
            return (channels,)
        return join_channels((1,) * self.rank, channels, self.data_format)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(data_format=self.data_format, keepdims=self.keepdims)
        return config


class GlobalMaxPooling1D(_GlobalPooling):
    """Maximum over all steps: ``(batch, steps, channels) -> (batch, channels)``."""

    rank = 1


class GlobalMaxPooling2D(_GlobalPooling):
    """Maximum over height and width: ``(batch, h, w, channels) -> (batch, channels)``."""

    rank = 2


class GlobalMaxPooling3D(_GlobalPooling):
    rank = 3


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over all steps: ``(batch, steps, channels) -> (batch, channels)``."""

    rank = 1
    _prim = reduce_mean_p


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over height and width: ``(batch, h, w, channels) -> (batch, channels)``."""

    rank = 2
    _prim = reduce_mean_p


class GlobalAveragePooling3D(_GlobalPooling):
    rank = 3
    _prim = reduce_mean_p
