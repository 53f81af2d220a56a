"""Convolution (1, 2 or 3 spatial axes) and transposed convolution.

Three primitives, channels_last, each the VJP partner of the others, so that every
derivative of a convolution is again a convolution of some kind (any order, and
traceable by the compiler):

* ``conv(x, w)``: ``y[b, o, f] = sum_{t, c} xpad[b, o*s + t*d, c] * w[t, c, f]``
  (with groups: each group of filters sees its own slice of the channels);
* ``conv_input_grad(g, w)``: the transpose of ``conv`` in ``x`` (what a transposed
  convolution computes);
* ``conv_kernel_grad(x, g)``: the transpose of ``conv`` in ``w``.

All three are bilinear: ``<conv(x, w), g> = <x, conv_input_grad(g, w)> =
<w, conv_kernel_grad(x, g)>``, from which each VJP follows.

Each is one matrix product over a patch matrix (im2col): the windows of the padded
input are a strided view ``(batch, *out, *window, channels)``, copied once into a
``(positions, window * channels)`` matrix. The input gradient multiplies first and
then adds each window tap's slice back into the padded input (a loop over the taps,
never over output positions).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpValueError
from . import windows as win
from .windows import Pads

ArrayLike = Any


# -- patch matrices -------------------------------------------------------------------------
def _patches(x: np.ndarray, window: tuple, out: tuple, strides: tuple, pads: Pads, dilation: tuple) -> np.ndarray:
    """The patch matrix ``(batch, *out, taps, channels)`` of ``x``, contiguous."""
    xp = win.pad_or_crop(x, pads)
    n, c = x.shape[0], x.shape[-1]
    taps = win.size(window)
    if c >= 8:
        # one copy of the window view: inner runs of ``channels`` elements
        view = win.window_view(xp, out, window, strides, dilation)
        return np.ascontiguousarray(view).reshape((n,) + out + (taps, c))
    # few channels: the view's inner runs would be tiny; copy one tap at a time instead
    cols = np.empty((n,) + out + (taps, c), dtype=xp.dtype)
    for i, tap in enumerate(win.taps(window)):
        cols[..., i, :] = xp[win.tap_slices(tap, out, strides, dilation)]
    return cols


def _scatter_patches(dcols: np.ndarray, in_sizes: tuple, window: tuple, strides: tuple, pads: Pads,
                     dilation: tuple) -> np.ndarray:
    """The transpose of :func:`_patches`: add every tap's slice back into the padded
    input, then remove the padding. ``dcols``: ``(batch, *out, taps, channels)``."""
    n, c = dcols.shape[0], dcols.shape[-1]
    out = dcols.shape[1:-2]
    padded = tuple(size + lo + hi for size, (lo, hi) in zip(in_sizes, pads))
    buf = np.zeros((n,) + padded + (c,), dtype=dcols.dtype)
    for i, tap in enumerate(win.taps(window)):
        buf[win.tap_slices(tap, out, strides, dilation)] += dcols[..., i, :]
    return win.pad_or_crop(buf, tuple((-lo, -hi) for lo, hi in pads))


# -- the three products, with groups -------------------------------------------------------------
def _grouped_cols(cols: np.ndarray, groups: int) -> np.ndarray:
    """``(m, taps, channels)`` -> ``(groups, m, taps * channels_per_group)``."""
    m, taps, c = cols.shape
    return cols.reshape(m, taps, groups, c // groups).transpose(2, 0, 1, 3).reshape(groups, m, -1)


def _grouped_kernel(w: np.ndarray, groups: int) -> np.ndarray:
    """``(*window, c_per_group, filters)`` -> ``(groups, taps * c_per_group, filters_per_group)``."""
    cg, f = w.shape[-2:]
    return w.reshape(-1, cg, groups, f // groups).transpose(2, 0, 1, 3).reshape(groups, -1, f // groups)


def _grouped_filters(g: np.ndarray, groups: int) -> np.ndarray:
    """``(m, filters)`` -> ``(groups, m, filters_per_group)``."""
    m, f = g.shape
    return g.reshape(m, groups, f // groups).transpose(1, 0, 2)


def _conv_impl(x: np.ndarray, w: np.ndarray, strides: tuple, pads: Pads, dilation: tuple, groups: int) -> np.ndarray:
    x, w = np.asarray(x), np.asarray(w)
    rank = w.ndim - 2
    window, f = w.shape[:rank], w.shape[-1]
    out = win.output_sizes(x.shape[1:-1], win.effective(window, dilation), strides, pads)
    cols = _patches(x, window, out, strides, pads, dilation)
    m = x.shape[0] * win.size(out)
    if groups == 1:
        y = cols.reshape(m, -1) @ w.reshape(-1, f)
    else:
        y = np.matmul(_grouped_cols(cols.reshape(m, win.size(window), -1), groups), _grouped_kernel(w, groups))
        y = y.transpose(1, 0, 2).reshape(m, f)
    return y.reshape((x.shape[0],) + out + (f,))


def _conv_input_grad_impl(g: np.ndarray, w: np.ndarray, in_sizes: tuple, strides: tuple, pads: Pads,
                          dilation: tuple, groups: int) -> np.ndarray:
    g, w = np.asarray(g), np.asarray(w)
    rank = w.ndim - 2
    window, (cg, f) = w.shape[:rank], w.shape[-2:]
    out = g.shape[1:-1]
    m, taps, c = g.shape[0] * win.size(out), win.size(window), cg * groups
    if groups == 1:
        dcols = g.reshape(m, f) @ w.reshape(-1, f).T
    else:
        d = np.matmul(_grouped_filters(g.reshape(m, f), groups), _grouped_kernel(w, groups).transpose(0, 2, 1))
        dcols = d.reshape(groups, m, taps, cg).transpose(1, 2, 0, 3)
    dcols = dcols.reshape(g.shape[:-1] + (taps, c))
    return _scatter_patches(dcols, in_sizes, window, strides, pads, dilation)


def _conv_kernel_grad_impl(x: np.ndarray, g: np.ndarray, kernel_shape: tuple, strides: tuple, pads: Pads,
                           dilation: tuple, groups: int) -> np.ndarray:
    x, g = np.asarray(x), np.asarray(g)
    rank = len(kernel_shape) - 2
    window, f = kernel_shape[:rank], kernel_shape[-1]
    out = g.shape[1:-1]
    cols = _patches(x, window, out, strides, pads, dilation)
    m = x.shape[0] * win.size(out)
    if groups == 1:
        dw = cols.reshape(m, -1).T @ g.reshape(m, f)
    else:
        gc = _grouped_cols(cols.reshape(m, win.size(window), -1), groups)
        dw = np.matmul(gc.transpose(0, 2, 1), _grouped_filters(g.reshape(m, f), groups))
        cg = kernel_shape[-2]
        dw = dw.reshape(groups, -1, cg, f // groups).transpose(1, 2, 0, 3)
    return dw.reshape(kernel_shape)


conv_p = Primitive("conv", _conv_impl, ("x", "kernel"))
conv_input_grad_p = Primitive("conv_input_grad", _conv_input_grad_impl, ("g", "kernel"))
conv_kernel_grad_p = Primitive("conv_kernel_grad", _conv_kernel_grad_impl, ("x", "g"))

conv_p.defvjp(
    lambda g, out, x, w, strides, pads, dilation, groups: conv_input_grad_p(
        g, w, in_sizes=np.shape(x)[1:-1], strides=strides, pads=pads, dilation=dilation, groups=groups),
    lambda g, out, x, w, strides, pads, dilation, groups: conv_kernel_grad_p(
        x, g, kernel_shape=np.shape(w), strides=strides, pads=pads, dilation=dilation, groups=groups),
)
conv_input_grad_p.defvjp(
    lambda h, out, g, w, in_sizes, strides, pads, dilation, groups: conv_p(
        h, w, strides=strides, pads=pads, dilation=dilation, groups=groups),
    lambda h, out, g, w, in_sizes, strides, pads, dilation, groups: conv_kernel_grad_p(
        h, g, kernel_shape=np.shape(w), strides=strides, pads=pads, dilation=dilation, groups=groups),
)
conv_kernel_grad_p.defvjp(
    lambda h, out, x, g, kernel_shape, strides, pads, dilation, groups: conv_input_grad_p(
        g, h, in_sizes=np.shape(x)[1:-1], strides=strides, pads=pads, dilation=dilation, groups=groups),
    lambda h, out, x, g, kernel_shape, strides, pads, dilation, groups: conv_p(
        x, h, strides=strides, pads=pads, dilation=dilation, groups=groups),
)


# -- public ops -------------------------------------------------------------------------------------
def _rank_of_kernel(op: str, x_shape: tuple, k_shape: tuple, transpose: bool) -> int:
    rank = len(k_shape) - 2
    layout = "(*window, filters, in_channels)" if transpose else "(*window, in_channels // groups, filters)"
    if rank not in (1, 2, 3):
        raise OpValueError(f"{op}: kernel must have rank 3, 4 or 5 {layout} for 1, 2 or 3 spatial axes, "
                           f"got shape {k_shape}")
    if len(x_shape) != rank + 2:
        raise OpValueError(f"{op}: a kernel of shape {k_shape} has {rank} spatial axes, so x must have rank "
                           f"{rank + 2} (batch, {rank} spatial axes, channels), got x of shape {x_shape}")
    if 0 in k_shape:
        raise OpValueError(f"{op}: kernel has an empty axis: shape {k_shape}")
    return rank


def _channels_last(op: str, x: ArrayLike, rank: int, data_format: Any) -> tuple[Any, bool]:
    fmt = win.data_format_of(data_format, op)
    if fmt == "channels_first":
        return win.to_channels_last(x, rank), True
    return x, False


def conv(x: ArrayLike, kernel: ArrayLike, strides: Any = 1, padding: str = "valid", dilation_rate: Any = 1,
         groups: int = 1, data_format: str = "channels_last") -> Variable:
    """N-D convolution (cross-correlation, as in Keras, TensorFlow and PyTorch).

    ``x``: ``(batch, *spatial, channels)`` (``(batch, channels, *spatial)`` with
    ``data_format="channels_first"``); ``kernel``: ``(*window, channels // groups, filters)``,
    whose rank (3, 4 or 5) gives the number of spatial axes. ``padding``: ``"valid"``,
    ``"same"`` (output size ``ceil(size / stride)``, the extra padded cell at the end) or,
    for 1-D, ``"causal"`` (all padding before the start). ``strides`` and ``dilation_rate``
    are an int or one int per spatial axis; ``groups`` splits channels and filters into
    that many independent convolutions.
    """
    op = "conv"
    x_shape, k_shape = win.shape_of(x), win.shape_of(kernel)
    rank = _rank_of_kernel(op, x_shape, k_shape, transpose=False)
    strides = win.spatial_tuple(strides, rank, op, "strides")
    dilation = win.spatial_tuple(dilation_rate, rank, op, "dilation_rate")
    mode = win.padding_mode(padding, op, ("valid", "same", "causal"))
    if mode == "causal" and rank != 1:
        raise OpValueError(f"{op}: padding 'causal' is only for 1-D convolutions, got a kernel of shape {k_shape} "
                           f"({rank} spatial axes)")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise OpValueError(f"{op}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    x, moved = _channels_last(op, x, rank, data_format)
    cl_shape = win.shape_of(x)
    channels, (cg, filters) = cl_shape[-1], k_shape[-2:]
    if channels % groups or filters % groups:
        raise OpValueError(f"{op}: groups={groups} must divide the input channels ({channels}) and the filters "
                           f"({filters}); x of shape {x_shape}, kernel of shape {k_shape}")
    if cg * groups != channels:
        raise OpValueError(f"{op}: x has {channels} channels, but the kernel of shape {k_shape} expects "
                           f"{cg} * groups={groups} = {cg * groups} (x of shape {x_shape}, data_format "
                           f"{win.data_format_of(data_format, op)!r})")
    window = win.effective(k_shape[:rank], dilation)
    sizes = cl_shape[1:-1]
    pads = win.resolve_pads(mode, sizes, window, strides)
    win.check_fits(op, x_shape, sizes, window, pads, "dilated kernel" if max(dilation) > 1 else "kernel")
    y = conv_p.apply(x, kernel, strides=strides, pads=pads, dilation=dilation, groups=groups)
    return win.to_channels_first(y, rank) if moved else y


def transpose_pads(mode: str, in_sizes: tuple, window: tuple, strides: tuple,
                   output_padding: tuple | None) -> tuple[tuple, Pads]:
    """Output sizes and the pads of the forward convolution whose input gradient is this
    transposed convolution (Keras' rules; ``window`` is the dilated extent)."""
    out_sizes, pads = [], []
    for i, (n, k, s) in enumerate(zip(in_sizes, window, strides)):
        extra = None if output_padding is None else output_padding[i]
        if mode == "valid":
            extra = max(k, s) - k if extra is None else extra
            size, lo = (n - 1) * s + k + extra, 0
        else:
            total = s + k - 2 if extra is None else k + k % 2 - 2 + extra
            left = min(total // 2 + total % 2, k - 1)
            size = (n - 1) * s + 1 + total - k + 1
            lo = k - 1 - left
        # the forward convolution of an input of ``size`` must produce exactly n positions
        hi = (n - 1) * s + k - lo - size
        out_sizes.append(size)
        pads.append((lo, hi))
    return tuple(out_sizes), tuple(pads)


def conv_transpose(x: ArrayLike, kernel: ArrayLike, strides: Any = 1, padding: str = "valid",
                   output_padding: Any = None, dilation_rate: Any = 1,
                   data_format: str = "channels_last") -> Variable:
    """Transposed convolution (the gradient of ``conv`` with respect to its input).

    ``kernel``: ``(*window, filters, in_channels)`` (Keras' layout). Output size along
    each axis (k the dilated window): ``valid``: ``(n - 1) * s + k + output_padding``
    (default ``output_padding = max(k, s) - k``); ``same``: ``n * s``, or
    ``(n - 1) * s + k % 2 + output_padding`` when it is given.
    """
    op = "conv_transpose"
    x_shape, k_shape = win.shape_of(x), win.shape_of(kernel)
    rank = _rank_of_kernel(op, x_shape, k_shape, transpose=True)
    strides = win.spatial_tuple(strides, rank, op, "strides")
    dilation = win.spatial_tuple(dilation_rate, rank, op, "dilation_rate")
    mode = win.padding_mode(padding, op, ("valid", "same"))
    if output_padding is not None:
        output_padding = win.spatial_tuple(output_padding, rank, op, "output_padding", minimum=0)
    if output_padding is not None and any(p >= s for p, s in zip(output_padding, strides)):
        raise OpValueError(f"{op}: output_padding {output_padding} must be smaller than strides {strides}")
    x, moved = _channels_last(op, x, rank, data_format)
    cl_shape = win.shape_of(x)
    if cl_shape[-1] != k_shape[-1]:
        raise OpValueError(f"{op}: x has {cl_shape[-1]} channels, but the kernel of shape {k_shape} expects "
                           f"{k_shape[-1]} (its last axis; x of shape {x_shape}, data_format "
                           f"{win.data_format_of(data_format, op)!r})")
    window = win.effective(k_shape[:rank], dilation)
    out_sizes, pads = transpose_pads(mode, cl_shape[1:-1], window, strides, output_padding)
    if min(out_sizes) < 1:
        raise OpValueError(f"{op}: the output would be empty (spatial sizes {out_sizes}) for x of shape {x_shape}, "
                           f"kernel {k_shape}, strides {strides}, padding {mode!r}, output_padding {output_padding}")
    y = conv_input_grad_p.apply(x, kernel, in_sizes=out_sizes, strides=strides, pads=pads, dilation=dilation,
                                groups=1)
    return win.to_channels_first(y, rank) if moved else y
