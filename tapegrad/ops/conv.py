"""Convolution (1, 2 or 3 spatial axes) and transposed convolution.

A convolution is one matrix product over a patch matrix (im2col):

* ``patch_matrix(x)``: the windows of the padded, channels_last input, one row per
  output position, ``(positions, taps * channels)`` (with groups, one such matrix per
  group); built by one copy of a strided window view (or one copy per window tap when
  there are few channels);
* ``conv(x, w) = patch_matrix(x) @ w.reshape(taps * channels, filters)``;
* ``patch_matrix_transpose(cols)`` adds each row's patches back into an input-sized
  array (col2im, a loop over the window taps, never over output positions).

The two primitives are each other's VJP, and the rest is ``matmul``, ``reshape`` and
``transpose``, so every derivative of a convolution, to any order, is made of the same
pieces: the input gradient is ``patch_matrix_transpose(g @ w^T)`` (a transposed
convolution), the kernel gradient ``patch_matrix(x)^T @ g`` (with the patch matrix the
forward pass made). A layer adds its bias to the ``(positions, filters)`` matrix before
the reshape, so that a compiler sees matmul + bias + activation, and the bias gradient
is a column sum.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpValueError
from . import window_kernels as kernels
from . import windows as win
from .elementwise import add_p
from .linalg import matmul_p
from .shape import reshape_p, transpose_p
from .windows import Pads

ArrayLike = Any


# -- patch matrices -------------------------------------------------------------------------
def _patch_matrix_impl(x: Any, window: tuple, strides: tuple, pads: Pads, dilation: tuple,
                       groups: int) -> np.ndarray:
    """``(positions, taps * channels)``; with groups, ``(groups, positions, taps * channels_per_group)``."""
    x = np.asarray(x)
    out = win.output_sizes(x.shape[1:-1], win.effective(window, dilation), strides, pads)
    m, taps, c = x.shape[0] * win.size(out), win.size(window), x.shape[-1]
    if taps == 1 and not any(lo or hi for lo, hi in pads) and all(s == 1 for s in strides):
        cols = x.reshape(m, c)  # a 1x1 convolution: the input itself (a view when it can be)
    else:
        cols = kernels.patches(win.pad_or_crop(x, pads), out, window, strides, dilation).reshape(m, taps * c)
    if groups == 1:
        return cols
    return cols.reshape(m, taps, groups, c // groups).transpose(2, 0, 1, 3).reshape(groups, m, -1)


def _patch_matrix_transpose_impl(cols: Any, in_sizes: tuple, window: tuple, strides: tuple, pads: Pads,
                                 dilation: tuple, groups: int) -> np.ndarray:
    cols = np.asarray(cols)
    taps = win.size(window)
    out = win.output_sizes(in_sizes, win.effective(window, dilation), strides, pads)
    if groups != 1:
        g, m, tcg = cols.shape
        cols = cols.reshape(g, m, taps, tcg // taps).transpose(1, 2, 0, 3).reshape(m, taps * g * (tcg // taps))
    m, tc = cols.shape
    dcols = np.ascontiguousarray(cols).reshape((m // win.size(out),) + out + (taps, tc // taps))
    padded = tuple(size + lo + hi for size, (lo, hi) in zip(in_sizes, pads))
    xp = kernels.scatter_patches(dcols, padded, window, strides, dilation)
    return win.pad_or_crop(xp, tuple((-lo, -hi) for lo, hi in pads))


# The patch matrix of x and its transpose (which adds patches back into an input of in_sizes):
# each is the VJP of the other. A convolution is a matmul of the patch matrix with the kernel.
patch_matrix_p = Primitive("patch_matrix", _patch_matrix_impl)
patch_matrix_transpose_p = Primitive("patch_matrix_transpose", _patch_matrix_transpose_impl, ("cols",))
patch_matrix_p.defvjp(
    lambda g, out, x, window, strides, pads, dilation, groups: patch_matrix_transpose_p(
        g, in_sizes=np.shape(x)[1:-1], window=window, strides=strides, pads=pads, dilation=dilation, groups=groups))
patch_matrix_transpose_p.defvjp(
    lambda g, out, cols, in_sizes, window, strides, pads, dilation, groups: patch_matrix_p(
        g, window=window, strides=strides, pads=pads, dilation=dilation, groups=groups))
patch_matrix_p.defjvp_linear()  # both are linear: a tangent goes through them as it is
patch_matrix_transpose_p.defjvp_linear()


def _kernel_matrix(kernel: Any, groups: int) -> Any:
    """``(*window, c_per_group, filters)`` -> ``(taps * c_per_group, filters)``, or with
    groups ``(groups, taps * c_per_group, filters_per_group)`` (differentiable)."""
    shape = win.shape_of(kernel)
    cg, f = shape[-2:]
    if groups == 1:
        return reshape_p.apply(kernel, shape=(-1, f))
    k = reshape_p.apply(kernel, shape=(-1, cg, groups, f // groups))
    k = transpose_p.apply(k, perm=(2, 0, 1, 3))
    return reshape_p.apply(k, shape=(groups, -1, f // groups))


def conv_matrix(x: ArrayLike, kernel: ArrayLike, strides: tuple, pads: Pads, dilation: tuple,
                groups: int) -> Variable:
    """The convolution of channels_last ``x`` (checked arguments) as a ``(positions, filters)``
    matrix: a matmul of the patch matrix with the kernel. A layer adds its bias to this
    matrix (its gradient is then a column sum) before reshaping it."""
    window = win.shape_of(kernel)[:-2]
    cols = patch_matrix_p.apply(x, window=window, strides=strides, pads=pads, dilation=dilation, groups=groups)
    y = matmul_p.apply2(cols, _kernel_matrix(kernel, groups))
    if groups == 1:
        return y
    y = transpose_p.apply(y, perm=(1, 0, 2))
    return reshape_p.apply(y, shape=(-1, win.shape_of(kernel)[-1]))


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


def _finish(y: Any, out_sizes: tuple, bias: Any, activation: Callable | None, channels_first: bool) -> Variable:
    """``(positions, filters)`` -> bias, activation, ``(batch, *out_sizes, filters)``, channels_first
    if asked. The bias is added to the matrix, so that its gradient is a column sum."""
    if bias is not None:
        y = add_p.apply2(y, bias)
    if activation is not None:
        y = activation(y)
    y = reshape_p.apply(y, shape=(-1,) + tuple(out_sizes) + win.shape_of(y)[-1:])
    return win.to_channels_first(y, len(out_sizes)) if channels_first else y


def convolve(op: str, x: ArrayLike, kernel: ArrayLike, strides: Any, padding: str, dilation_rate: Any,
             groups: Any, data_format: Any, bias: Any = None, activation: Callable | None = None) -> Variable:
    """``conv`` with an optional bias (``(filters,)``) and activation: what the layers call."""
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
    fmt = win.data_format_of(data_format, op)
    if fmt == "channels_first":
        x = win.to_channels_last(x, rank)
    cl_shape = win.shape_of(x)
    channels, (cg, filters) = cl_shape[-1], k_shape[-2:]
    if channels % groups or filters % groups:
        raise OpValueError(f"{op}: groups={groups} must divide the input channels ({channels}) and the filters "
                           f"({filters}); x of shape {x_shape}, kernel of shape {k_shape}")
    if cg * groups != channels:
        raise OpValueError(f"{op}: x has {channels} channels, but the kernel of shape {k_shape} expects "
                           f"{cg} * groups={groups} = {cg * groups} (x of shape {x_shape}, data_format {fmt!r})")
    extents = win.effective(k_shape[:rank], dilation)
    sizes = cl_shape[1:-1]
    pads = win.resolve_pads(mode, sizes, extents, strides)
    win.check_fits(op, x_shape, sizes, extents, pads, "dilated kernel" if max(dilation) > 1 else "kernel")
    y = conv_matrix(x, kernel, strides, pads, dilation, groups)
    return _finish(y, win.output_sizes(sizes, extents, strides, pads), bias, activation, fmt == "channels_first")


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
    return convolve("conv", x, kernel, strides, padding, dilation_rate, groups, data_format)


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


def convolve_transpose(op: str, x: ArrayLike, kernel: ArrayLike, strides: Any, padding: str, output_padding: Any,
                       dilation_rate: Any, data_format: Any, bias: Any = None,
                       activation: Callable | None = None) -> Variable:
    """``conv_transpose`` with an optional bias and activation: what the layers call."""
    x_shape, k_shape = win.shape_of(x), win.shape_of(kernel)
    rank = _rank_of_kernel(op, x_shape, k_shape, transpose=True)
    strides = win.spatial_tuple(strides, rank, op, "strides")
    dilation = win.spatial_tuple(dilation_rate, rank, op, "dilation_rate")
    mode = win.padding_mode(padding, op, ("valid", "same"))
    if output_padding is not None:
        output_padding = win.spatial_tuple(output_padding, rank, op, "output_padding", minimum=0)
        if any(p >= s for p, s in zip(output_padding, strides)):
            raise OpValueError(f"{op}: output_padding {output_padding} must be smaller than strides {strides}")
    fmt = win.data_format_of(data_format, op)
    if fmt == "channels_first":
        x = win.to_channels_last(x, rank)
    cl_shape = win.shape_of(x)
    if cl_shape[-1] != k_shape[-1]:
        raise OpValueError(f"{op}: x has {cl_shape[-1]} channels, but the kernel of shape {k_shape} expects "
                           f"{k_shape[-1]} (its last axis; x of shape {x_shape}, data_format {fmt!r})")
    extents = win.effective(k_shape[:rank], dilation)
    out_sizes, pads = transpose_pads(mode, cl_shape[1:-1], extents, strides, output_padding)
    if min(out_sizes) < 1:
        raise OpValueError(f"{op}: the output would be empty (spatial sizes {out_sizes}) for x of shape {x_shape}, "
                           f"kernel {k_shape}, strides {strides}, padding {mode!r}, output_padding {output_padding}")
    # the input gradient of the convolution with this kernel: (g @ kernel^T), patches added back
    g = reshape_p.apply(x, shape=(-1, k_shape[-1]))
    cols = matmul_p.apply(g, reshape_p.apply(kernel, shape=(-1, k_shape[-1])), transpose_a=False, transpose_b=True)
    y = patch_matrix_transpose_p.apply(cols, in_sizes=out_sizes, window=k_shape[:rank], strides=strides, pads=pads,
                                       dilation=dilation, groups=1)
    if bias is None and activation is None:
        return win.to_channels_first(y, rank) if fmt == "channels_first" else y
    return _finish(reshape_p.apply(y, shape=(-1, k_shape[-2])), out_sizes, bias, activation, fmt == "channels_first")


def conv_transpose(x: ArrayLike, kernel: ArrayLike, strides: Any = 1, padding: str = "valid",
                   output_padding: Any = None, dilation_rate: Any = 1,
                   data_format: str = "channels_last") -> Variable:
    """Transposed convolution (the gradient of ``conv`` with respect to its input).

    ``kernel``: ``(*window, filters, in_channels)`` (Keras' layout). Output size along
    each axis (k the dilated window): ``valid``: ``(n - 1) * s + k + output_padding``
    (default ``output_padding = max(k, s) - k``); ``same``: ``n * s``, or
    ``(n - 1) * s + k % 2 + output_padding`` when it is given.
    """
    return convolve_transpose("conv_transpose", x, kernel, strides, padding, output_padding, dilation_rate,
                              data_format)
