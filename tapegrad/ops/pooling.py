"""Max and average pooling over 1, 2 or 3 spatial axes.

Primitives (channels_last) and their VJP partners:

* ``max_pool(x)``; its VJP ``max_pool_grad(g, x, out)`` gives each window's cotangent
  to the cells equal to the window's maximum, split evenly between ties (as
  ``reduce_max``); ``max_pool_gather(h, x, out)`` is the transpose of that in ``g``.
  The two are each other's VJP in their first argument; the choice of the maxima is
  piecewise constant, so there is no derivative through ``x`` or ``out``.
* ``avg_pool(x)`` divides each window sum by the number of cells that are not
  padding (Keras' ``same``); ``avg_pool_grad(g)`` is its transpose, and each is the
  VJP of the other.

The work loops over the window taps (a few), each tap one strided slice of every
window at once, never over output positions; the max-pool gradient runs in C where the
native library is available (``window_kernels``). When the stride equals the window
(the usual ``pool_size=2``), average pooling reshapes the input into its tiles,
``(batch, out_1, window_1, ..., channels)`` without a copy, and reduces once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpValueError
from . import window_kernels as kernels
from . import windows as win
from .windows import Pads

ArrayLike = Any


def _tiled(window: tuple, strides: tuple) -> bool:
    return window == strides


def _blocks(xp: np.ndarray, out: tuple, window: tuple) -> np.ndarray:
    """The tiling windows of ``xp`` as a view ``(batch, out_1, window_1, ..., channels)``."""
    region = xp[(slice(None),) + tuple(slice(0, o * k) for o, k in zip(out, window))]
    shape = (xp.shape[0],) + tuple(v for pair in zip(out, window) for v in pair) + (xp.shape[-1],)
    return region.reshape(shape)


def _window_axes(rank: int) -> tuple[int, ...]:
    return tuple(2 + 2 * i for i in range(rank))


def _expand(y: np.ndarray, rank: int) -> np.ndarray:
    """``(batch, *out, channels)`` -> the blocks layout, length 1 on the window axes."""
    return np.expand_dims(y, _window_axes(rank))


def _lowest(dtype: np.dtype) -> Any:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _sizes(x: np.ndarray) -> tuple:
    return x.shape[1:-1]


def _out(sizes: tuple, window: tuple, strides: tuple, pads: Pads) -> tuple:
    return win.output_sizes(sizes, window, strides, pads)


_ONES = (1, 1, 1)


# -- max pooling ------------------------------------------------------------------------------
def _max_pool_impl(x: Any, window: tuple, strides: tuple, pads: Pads) -> np.ndarray:
    x = np.asarray(x)
    out = _out(_sizes(x), window, strides, pads)
    xp = win.pad_or_crop(x, pads, _lowest(x.dtype))
    result = None
    for tap in win.taps(window):
        cells = xp[win.tap_slices(tap, out, strides, _ONES)]
        result = cells.copy() if result is None else np.maximum(result, cells, out=result)
    return result


def _tie_counts(xp: np.ndarray, out: np.ndarray, window: tuple, strides: tuple, dtype: np.dtype) -> np.ndarray:
    counts = np.zeros(out.shape, dtype=dtype)
    for tap in win.taps(window):
        counts += xp[win.tap_slices(tap, out.shape[1:-1], strides, _ONES)] == out
    return counts


def _max_pool_grad_impl(g: Any, x: Any, out: Any, window: tuple, strides: tuple, pads: Pads) -> np.ndarray:
    g, x, out = np.asarray(g), np.asarray(x), np.asarray(out)
    xp = win.pad_or_crop(x, pads, _lowest(x.dtype))
    dxp = kernels.max_pool_grad(g, xp, out, window, strides)
    return win.pad_or_crop(dxp, tuple((-lo, -hi) for lo, hi in pads))


def _max_pool_gather_impl(h: Any, x: Any, out: Any, window: tuple, strides: tuple, pads: Pads) -> np.ndarray:
    h, x, out = np.asarray(h), np.asarray(x), np.asarray(out)
    osz = out.shape[1:-1]
    xp = win.pad_or_crop(x, pads, _lowest(x.dtype))
    hp = win.pad_or_crop(h, pads)
    total = np.zeros(out.shape, dtype=h.dtype)
    for tap in win.taps(window):
        index = win.tap_slices(tap, osz, strides, _ONES)
        total += np.where(xp[index] == out, hp[index], 0)
    return total / _tie_counts(xp, out, window, strides, h.dtype)


max_pool_p = Primitive("max_pool", _max_pool_impl)
max_pool_grad_p = Primitive("max_pool_grad", _max_pool_grad_impl, ("g", "x", "out"))
max_pool_gather_p = Primitive("max_pool_gather", _max_pool_gather_impl, ("h", "x", "out"))


def _no_gradient(*args: Any, **params: Any) -> None:
    return None  # the choice of the maxima is piecewise constant in x


max_pool_p.defvjp(
    lambda g, out, x, window, strides, pads: max_pool_grad_p(g, x, out, window=window, strides=strides, pads=pads))
max_pool_grad_p.defvjp(
    lambda h, dx, g, x, out, window, strides, pads: max_pool_gather_p(
        h, x, out, window=window, strides=strides, pads=pads),
    _no_gradient, _no_gradient)
max_pool_gather_p.defvjp(
    lambda k, y, h, x, out, window, strides, pads: max_pool_grad_p(
        k, x, out, window=window, strides=strides, pads=pads),
    _no_gradient, _no_gradient)
# Forward mode: a maximum moves with the tangent of the cells it takes (ties share it), which is
# max_pool_gather; the gradient and the gather are linear in their first input.
max_pool_p.defjvp(lambda t, out, x, window, strides, pads: max_pool_gather_p(
    t, x, out, window=window, strides=strides, pads=pads))
max_pool_grad_p.defjvp_linear()
max_pool_gather_p.defjvp_linear()


# -- average pooling ---------------------------------------------------------------------------
def _cell_counts(sizes: tuple, window: tuple, strides: tuple, pads: Pads, out: tuple, dtype: np.dtype) -> Any:
    """How many cells of each window are not padding, shaped to broadcast against
    ``(batch, *out, channels)``; a Python float when it is the same for every window."""
    rank = len(sizes)
    counts: Any = 1.0
    uniform = True
    for axis, (n, k, s, (lo, _), o) in enumerate(zip(sizes, window, strides, pads, out)):
        start = np.arange(o) * s - lo
        per_axis = np.minimum(start + k, n) - np.maximum(start, 0)
        if (per_axis == k).all():
            counts = counts * k
            continue
        uniform = False
        shape = [1] * (rank + 2)
        shape[axis + 1] = o
        counts = counts * per_axis.astype(dtype).reshape(shape)
    return float(counts) if uniform else np.asarray(counts, dtype=dtype)


def _avg_pool_impl(x: Any, window: tuple, strides: tuple, pads: Pads) -> np.ndarray:
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    out = _out(_sizes(x), window, strides, pads)
    xp = win.pad_or_crop(x, pads)
    if _tiled(window, strides):
        total = np.add.reduce(_blocks(xp, out, window), axis=_window_axes(len(window)), dtype=dtype)
    else:
        total = np.zeros((x.shape[0],) + out + (x.shape[-1],), dtype=dtype)
        for tap in win.taps(window):
            total += xp[win.tap_slices(tap, out, strides, _ONES)]
    counts = _cell_counts(_sizes(x), window, strides, pads, out, dtype)
    if counts.__class__ is float:
        total *= dtype.type(1.0 / counts)
        return total
    return total / counts


def _avg_pool_grad_impl(g: Any, in_sizes: tuple, window: tuple, strides: tuple, pads: Pads) -> np.ndarray:
    g = np.asarray(g)
    rank = len(window)
    osz = g.shape[1:-1]
    counts = _cell_counts(in_sizes, window, strides, pads, osz, g.dtype)
    share = g * g.dtype.type(1.0 / counts) if counts.__class__ is float else g / counts
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(in_sizes, pads))
    full = (g.shape[0],) + padded + (g.shape[-1],)
    if _tiled(window, strides):
        blocks = (g.shape[0],) + tuple(v for pair in zip(osz, window) for v in pair) + (g.shape[-1],)
        spread = np.broadcast_to(_expand(share, rank), blocks)
        if padded == tuple(o * k for o, k in zip(osz, window)) and not any(lo or hi for lo, hi in pads):
            return spread.reshape(full)
        dxp = np.zeros(full, dtype=share.dtype)
        _blocks(dxp, osz, window)[...] = spread
    else:
        dxp = np.zeros(full, dtype=share.dtype)
        for tap in win.taps(window):
            dxp[win.tap_slices(tap, osz, strides, _ONES)] += share
    return win.pad_or_crop(dxp, tuple((-lo, -hi) for lo, hi in pads))


avg_pool_p = Primitive("avg_pool", _avg_pool_impl)
avg_pool_grad_p = Primitive("avg_pool_grad", _avg_pool_grad_impl, ("g",))
avg_pool_p.defvjp(
    lambda g, out, x, window, strides, pads: avg_pool_grad_p(
        g, in_sizes=np.shape(x)[1:-1], window=window, strides=strides, pads=pads))
avg_pool_grad_p.defvjp(
    lambda h, dx, g, in_sizes, window, strides, pads: avg_pool_p(h, window=window, strides=strides, pads=pads))
avg_pool_p.defjvp_linear()
avg_pool_grad_p.defjvp_linear()


# -- public ops ---------------------------------------------------------------------------------
def _pool(prim: Primitive, op: str, x: ArrayLike, pool_size: Any, strides: Any, padding: str,
          data_format: Any) -> Variable:
    x_shape = win.shape_of(x)
    rank = len(x_shape) - 2
    if rank not in (1, 2, 3):
        raise OpValueError(f"{op}: x must have rank 3, 4 or 5 (batch, 1 to 3 spatial axes, channels), "
                           f"got x of shape {x_shape}")
    window = win.spatial_tuple(pool_size, rank, op, "pool_size")
    strides = window if strides is None else win.spatial_tuple(strides, rank, op, "strides")
    mode = win.padding_mode(padding, op, ("valid", "same"))
    fmt = win.data_format_of(data_format, op)
    if fmt == "channels_first":
        x = win.to_channels_last(x, rank)
    sizes = win.shape_of(x)[1:-1]
    pads = win.resolve_pads(mode, sizes, window, strides)
    win.check_fits(op, x_shape, sizes, window, pads, "pool window")
    y = prim.apply(x, window=window, strides=strides, pads=pads)
    return win.to_channels_first(y, rank) if fmt == "channels_first" else y


def max_pool(x: ArrayLike, pool_size: Any, strides: Any = None, padding: str = "valid",
             data_format: str = "channels_last") -> Variable:
    """Maximum over windows of ``pool_size`` moved by ``strides`` (default: ``pool_size``)
    along the 1, 2 or 3 spatial axes of ``x``. ``same`` padding never selects a padded
    cell. Tied maxima share the gradient evenly, as in ``reduce_max``."""
    return _pool(max_pool_p, "max_pool", x, pool_size, strides, padding, data_format)


def avg_pool(x: ArrayLike, pool_size: Any, strides: Any = None, padding: str = "valid",
             data_format: str = "channels_last") -> Variable:
    """Mean over windows of ``pool_size`` moved by ``strides`` (default: ``pool_size``);
    with ``same`` padding, the padded cells are not counted (Keras)."""
    return _pool(avg_pool_p, "avg_pool", x, pool_size, strides, padding, data_format)
