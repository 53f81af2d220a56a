"""Resizing layers: UpSampling1D/2D/3D (nearest neighbour) and ZeroPadding1D/2D/3D
(Keras 3 arguments). No weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import OpTypeError, OpValueError
from ...ops import repeat
from ...ops import windows as win
from ._util import owner
from .base import Layer
from .conv import check_rank, join_channels, split_channels


class _UpSampling(Layer):
    rank = 2

    def __init__(self, size: Any = 2, data_format: str | None = None, interpolation: str = "nearest",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = win.spatial_tuple(size, self.rank, owner(self), "size")
        self.data_format = win.data_format_of(data_format, owner(self))
        if interpolation != "nearest":
            raise OpValueError(f"{owner(self)}: interpolation must be 'nearest' (the only one implemented), "
                               f"got {interpolation!r}")
        self.interpolation = interpolation
        first = 1 if self.data_format == "channels_last" else 2
        self._axes = tuple(range(first, first + self.rank))

    def build(self, input_shape: Any) -> None:
        self.output_shape = self.compute_output_shape(input_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        y = inputs
        for axis, n in zip(self._axes, self.size):
            if n != 1:
                y = repeat(y, n, axis=axis)
        return y

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = check_rank(self, self.rank, self.data_format, input_shape)
        spatial, channels = split_channels(shape, self.data_format)
        out = tuple(None if n is None else n * k for n, k in zip(spatial, self.size))
        return join_channels(out, channels, self.data_format)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(size=list(self.size), data_format=self.data_format)
        if self.rank == 2:
            config["interpolation"] = self.interpolation
        return config


class UpSampling1D(_UpSampling):
    """Repeat each step ``size`` times: ``(batch, steps, features) -> (batch, steps * size, features)``."""

    rank = 1

    def __init__(self, size: int = 2, **kwargs: Any) -> None:
        super().__init__(size, **kwargs)


class UpSampling2D(_UpSampling):
    """Repeat rows and columns ``size`` times (nearest neighbour): ``UpSampling2D(size=2)``."""

    rank = 2


class UpSampling3D(_UpSampling):
    rank = 3

    def __init__(self, size: Any = 2, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(size, data_format, **kwargs)


def _pairs(layer: Layer, padding: Any, rank: int) -> tuple[tuple[int, int], ...]:
    """An int, ``rank`` ints (symmetric) or ``rank`` pairs (before, after), each >= 0."""
    def count(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise OpTypeError(f"{owner(layer)}: padding must be an int, {rank} ints or {rank} pairs of ints, "
                              f"got {padding!r}")
        if not 0 <= v <= win.MAX_WINDOW:
            raise OpValueError(f"{owner(layer)}: padding must be in [0, {win.MAX_WINDOW}], got {padding!r}")
        return int(v)

    if not isinstance(padding, (tuple, list)):
        n = count(padding)
        return ((n, n),) * rank
    if rank == 1 and len(padding) == 2 and not isinstance(padding[0], (tuple, list)):
        return ((count(padding[0]), count(padding[1])),)
    if len(padding) != rank:
        raise OpValueError(f"{owner(layer)}: padding must be an int, {rank} ints or {rank} pairs of ints, "
                           f"got {padding!r}")
    pairs = []
    for p in padding:
        if isinstance(p, (tuple, list)):
            if len(p) != 2:
                raise OpValueError(f"{owner(layer)}: each padding pair must be (before, after), got {padding!r}")
            pairs.append((count(p[0]), count(p[1])))
        else:
            pairs.append((count(p), count(p)))
    return tuple(pairs)


class _ZeroPadding(Layer):
    rank = 2

    def __init__(self, padding: Any = 1, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.padding = _pairs(self, padding, self.rank)
        self.data_format = win.data_format_of(data_format, owner(self))

    def build(self, input_shape: Any) -> None:
        self.output_shape = self.compute_output_shape(input_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        start = 1 if self.data_format == "channels_last" else 2
        return win.pad_p.apply(inputs, pads=self.padding, start=start)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = check_rank(self, self.rank, self.data_format, input_shape)
        spatial, channels = split_channels(shape, self.data_format)
        out = tuple(None if n is None else n + lo + hi for n, (lo, hi) in zip(spatial, self.padding))
        return join_channels(out, channels, self.data_format)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(padding=[list(p) for p in self.padding], data_format=self.data_format)
        return config


class ZeroPadding1D(_ZeroPadding):
    """Zeros before and after the steps: ``ZeroPadding1D(padding=1)`` or ``(before, after)``."""

    rank = 1

    def __init__(self, padding: Any = 1, **kwargs: Any) -> None:
        super().__init__(padding, **kwargs)


class ZeroPadding2D(_ZeroPadding):
    """Rows and columns of zeros around each image: ``ZeroPadding2D(1)``, ``((1, 2), (0, 1))``."""

    rank = 2


class ZeroPadding3D(_ZeroPadding):
    rank = 3
