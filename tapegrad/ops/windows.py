"""What convolution and pooling share: argument checks, padding arithmetic, window views.

Arrays here are channels_last, ``(batch, *spatial, channels)``; the public ops move
channels_first inputs to that layout with ``transpose`` (differentiable) and back.

Padding is resolved once, by the public op, into one ``(lo, hi)`` pair per spatial axis
(Keras' rules: ``same`` puts the extra cell at the end). The primitives take those pairs;
a negative entry crops instead of padding, which the transposed convolution needs.

``pad_p`` pads (or crops) consecutive axes with zeros; its VJP is the opposite crop (or pad).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError
from .shape import transpose_p

Pads = tuple  # ((lo, hi), ...) per spatial axis
#: The largest window, stride, dilation or padding: int32's range (a size no array can have).
MAX_WINDOW = 2**31 - 1


# -- argument checks ---------------------------------------------------------------------
def spatial_tuple(value: Any, rank: int, op: str, arg: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or a sequence of ``rank`` ints, each >= ``minimum``, as a tuple."""
    items = value if isinstance(value, (tuple, list)) else (value,) * rank
    if len(items) != rank:
        raise OpValueError(f"{op}: {arg} must be an int or {rank} ints (one per spatial axis), got {value!r}")
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise OpTypeError(f"{op}: {arg} must be an int or a tuple of ints, got {value!r}")
        if v < minimum:
            raise OpValueError(f"{op}: {arg} must be >= {minimum}, got {value!r}")
        if v > MAX_WINDOW:
            raise OpValueError(f"{op}: {arg} must be at most {MAX_WINDOW} (int32's range), got {value!r}")
        out.append(int(v))
    return tuple(out)


def padding_mode(padding: Any, op: str, allowed: tuple[str, ...]) -> str:
    mode = padding.lower() if isinstance(padding, str) else padding
    if mode not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise OpValueError(f"{op}: padding must be one of {choices}, got {padding!r}")
    return mode


def data_format_of(data_format: Any, op: str) -> str:
    fmt = "channels_last" if data_format is None else data_format
    if fmt not in ("channels_last", "channels_first"):
        raise OpValueError(f"{op}: data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
    return fmt


def effective(window: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, ...]:
    """The extent of a dilated window."""
    return tuple((k - 1) * d + 1 for k, d in zip(window, dilation))


def resolve_pads(mode: str, sizes: tuple[int, ...], window: tuple[int, ...], strides: tuple[int, ...]) -> Pads:
    """``(lo, hi)`` per axis for ``valid``, ``same`` (extra cell at the end) or ``causal``
    (everything before the start), given the input sizes and the (effective) window."""
    if mode == "valid":
        return tuple((0, 0) for _ in sizes)
    if mode == "causal":
        return tuple((k - 1, 0) for k in window)
    pads = []
    for n, k, s in zip(sizes, window, strides):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def output_sizes(sizes: tuple[int, ...], window: tuple[int, ...], strides: tuple[int, ...], pads: Pads) -> tuple:
    """Number of window positions along each axis (window = effective extent)."""
    return tuple((n + lo + hi - k) // s + 1 for n, k, s, (lo, hi) in zip(sizes, window, strides, pads))


def check_fits(op: str, x_shape: tuple, sizes: tuple, window: tuple, pads: Pads, what: str = "window") -> None:
    for axis, (n, k, (lo, hi)) in enumerate(zip(sizes, window, pads)):
        if n + lo + hi < k:
            raise OpValueError(
                f"{op}: the {what} (extent {k} along spatial axis {axis}) does not fit into the input of "
                f"shape {x_shape}: spatial size {n} with padding ({lo}, {hi})")


# -- array helpers (NumPy) ---------------------------------------------------------------------
def pad_or_crop(x: np.ndarray, pads: Pads, value: Any = 0, start: int = 1) -> np.ndarray:
    """``x`` with axes ``start, start + 1, ...`` (one per pair of ``pads``) padded with
    ``value`` (positive entries) or cropped (negative entries). Returns ``x`` itself when
    every entry is 0."""
    if not any(lo or hi for lo, hi in pads):
        return x
    axes = range(start, start + len(pads))
    keep = [slice(None)] * x.ndim
    for a, (lo, hi) in zip(axes, pads):
        keep[a] = slice(max(-lo, 0), x.shape[a] - max(-hi, 0))
    x = x[tuple(keep)]
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
    if not any(lo or hi for lo, hi in grow):
        return x
    shape = list(x.shape)
    place = [slice(None)] * x.ndim
    for a, (lo, hi) in zip(axes, grow):
        shape[a] += lo + hi
        place[a] = slice(lo, lo + x.shape[a])
    out = np.full(shape, value, dtype=x.dtype)
    out[tuple(place)] = x
    return out


def window_view(xp: np.ndarray, out: tuple[int, ...], window: tuple[int, ...], strides: tuple[int, ...],
                dilation: tuple[int, ...]) -> np.ndarray:
    """A read-only view ``(batch, *out, *window, channels)`` of the windows of ``xp``
    (``(batch, *spatial, channels)``): ``view[b, o, t, c] = xp[b, o * s + t * d, c]``."""
    st = xp.strides
    sp = st[1:-1]
    shape = (xp.shape[0],) + tuple(out) + tuple(window) + (xp.shape[-1],)
    strides = (st[0],) + tuple(a * s for a, s in zip(sp, strides)) + tuple(a * d for a, d in zip(sp, dilation)) \
        + (st[-1],)
    return as_strided(xp, shape, strides, writeable=False)


def tap_slices(tap: tuple[int, ...], out: tuple[int, ...], strides: tuple[int, ...],
               dilation: tuple[int, ...]) -> tuple:
    """The index of the cells that window tap ``tap`` reads for every output position."""
    return (slice(None),) + tuple(
        slice(t * d, t * d + (o - 1) * s + 1, s) for t, o, s, d in zip(tap, out, strides, dilation)
    ) + (slice(None),)


def taps(window: tuple[int, ...]) -> list[tuple[int, ...]]:
    return list(np.ndindex(*window))


def size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


# -- pad_p --------------------------------------------------------------------------------------
pad_p = Primitive("spatial_pad", lambda x, pads, start: pad_or_crop(np.asarray(x), pads, 0, start), ("x",))
pad_p.defvjp(lambda g, out, x, pads, start: pad_p(g, pads=tuple((-lo, -hi) for lo, hi in pads), start=start))
pad_p.defjvp_linear()


# -- channels_first -------------------------------------------------------------------------
def to_channels_last(x: Any, rank: int) -> Any:
    """``(batch, channels, *spatial)`` -> ``(batch, *spatial, channels)`` (a transpose op)."""
    return transpose_p.apply(x, perm=(0,) + tuple(range(2, rank + 2)) + (1,))


def to_channels_first(x: Any, rank: int) -> Any:
    return transpose_p.apply(x, perm=(0, rank + 1) + tuple(range(1, rank + 1)))


def shape_of(x: Any) -> tuple[int, ...]:
    return np.shape(x._value if isinstance(x, Variable) else x)
