"""The loops of convolution and pooling: patches (im2col), their transpose (col2im) and
the max-pool gradient. The last two are many small strided passes in NumPy.

Those two have a NumPy twin (a loop over the window taps, each tap one strided pass over
every output position) and a C twin in ``tapegrad/native/window_kernels.c`` (one pass
over the output positions), which gives the same bits: the sums add the same terms in
the same order (a cell is reached by later output positions through earlier taps, so
the NumPy twins loop over the taps in reverse). The C twin
runs for C-contiguous float32/float64 arrays of at least ``NATIVE_MIN`` elements when
the native library is available (see ``tapegrad.native``); otherwise the NumPy twin runs.

Arrays are channels_last, ``(batch, *spatial, channels)``, already padded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import native
from ..native import memory
from . import windows as win

NATIVE_MIN = 4096  # below this, NumPy (and no ctypes import for small models)
RETAIN_MIN = 1 << 18  # elements: from this size on, keep freed memory mapped (see native.memory)
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_ONES = (1, 1, 1)


def _native_fn(name: str, *arrays: np.ndarray) -> Any:
    """The C function for these arrays, or None (small, not contiguous, other dtype, no library)."""
    first = arrays[0]
    suffix = _SUFFIX.get(first.dtype)
    if suffix is None or first.size < NATIVE_MIN:
        return None
    retain_for(first)
    for a in arrays:
        if a.dtype != first.dtype or not a.flags.c_contiguous:
            return None
    lib = native.library()
    return None if lib is None else getattr(lib, f"tg_{name}_{suffix}")


def retain_for(array: np.ndarray) -> None:
    """Keep freed memory mapped once arrays this large come through (see native.memory)."""
    if array.size >= RETAIN_MIN:
        memory.retain_freed_memory()


def _geometry(n: int, c: int, in_sizes: tuple, out: tuple, window: tuple, strides: tuple,
              dilation: tuple) -> np.ndarray:
    lead = (1,) * (3 - len(in_sizes))
    return np.array([n, c, *lead, *in_sizes, *lead, *out, *lead, *window, *lead, *strides, *lead, *dilation],
                    dtype=np.int64)


# -- patches -------------------------------------------------------------------------------------------
def patches(xp: np.ndarray, out: tuple, window: tuple, strides: tuple, dilation: tuple) -> np.ndarray:
    """``(batch, *out, taps, channels)``: ``cols[b, o, t, c] = xp[b, o * s + t * d, c]``
    (a copy, as fast in NumPy as in C: no C twin)."""
    retain_for(xp)
    n, c = xp.shape[0], xp.shape[-1]
    if c >= 8:
        # one copy of the window view: inner runs of ``channels`` elements
        view = win.window_view(xp, out, window, strides, dilation)
        return np.ascontiguousarray(view).reshape((n,) + out + (win.size(window), c))
    # few channels: the view's inner runs would be tiny; copy one tap at a time instead
    cols = np.empty((n,) + out + (win.size(window), c), dtype=xp.dtype)
    for i, tap in enumerate(win.taps(window)):
        cols[..., i, :] = xp[win.tap_slices(tap, out, strides, dilation)]
    return cols


# -- scatter_patches -------------------------------------------------------------------------------------
def scatter_patches_numpy(dcols: np.ndarray, padded: tuple, window: tuple, strides: tuple,
                          dilation: tuple) -> np.ndarray:
    n, c = dcols.shape[0], dcols.shape[-1]
    out = dcols.shape[1:-2]
    buf = np.zeros((n,) + padded + (c,), dtype=dcols.dtype)
    taps = win.taps(window)
    for i in reversed(range(len(taps))):  # the C twin's order of the terms of each sum
        buf[win.tap_slices(taps[i], out, strides, dilation)] += dcols[..., i, :]
    return buf


def scatter_patches(dcols: np.ndarray, padded: tuple, window: tuple, strides: tuple, dilation: tuple) -> np.ndarray:
    """The transpose of :func:`patches`: ``(batch, *padded, channels)`` where each cell is the
    sum of the patch entries that read it. ``dcols``: ``(batch, *out, taps, channels)``."""
    fn = _native_fn("scatter_patches", dcols)
    if fn is None:
        return scatter_patches_numpy(dcols, padded, window, strides, dilation)
    n, c = dcols.shape[0], dcols.shape[-1]
    x = np.empty((n,) + padded + (c,), dtype=dcols.dtype)
    geometry = _geometry(n, c, padded, dcols.shape[1:-2], window, strides, dilation)
    fn(dcols.ctypes.data, x.ctypes.data, geometry.ctypes.data)
    return x


# -- max-pool gradient -------------------------------------------------------------------------------------
def max_pool_grad_numpy(g: np.ndarray, xp: np.ndarray, out: np.ndarray, window: tuple, strides: tuple) -> np.ndarray:
    osz = out.shape[1:-1]
    index = [win.tap_slices(tap, osz, strides, _ONES) for tap in win.taps(window)]
    counts = (xp[index[0]] == out).astype(g.dtype)
    for i in index[1:]:
        counts += xp[i] == out
    share = np.divide(g, counts, out=counts)
    dxp = np.zeros(xp.shape, dtype=share.dtype)
    for i in reversed(index):  # the C twin's order of the terms of each sum
        dxp[i] += (xp[i] == out) * share
    return dxp


def max_pool_grad(g: np.ndarray, xp: np.ndarray, out: np.ndarray, window: tuple, strides: tuple) -> np.ndarray:
    """The gradient of a max pool with respect to its (padded) input ``xp``: each window's
    cotangent goes in equal shares to the cells equal to the window's maximum."""
    g = np.ascontiguousarray(g)
    fn = _native_fn("max_pool_grad", xp, out, g)
    if fn is None:
        return max_pool_grad_numpy(g, xp, out, window, strides)
    n, c = xp.shape[0], xp.shape[-1]
    share = np.empty(c, dtype=g.dtype)  # one window's shares
    dxp = np.empty(xp.shape, dtype=g.dtype)
    geometry = _geometry(n, c, xp.shape[1:-1], out.shape[1:-1], window, strides, (1,) * len(window))
    fn(xp.ctypes.data, out.ctypes.data, g.ctypes.data, share.ctypes.data, dxp.ctypes.data, geometry.ctypes.data)
    return dxp
