"""Shape and indexing primitives: reshape, transpose, repeat, concat, indexing, gather.

Indexing (``v[...]``) and ``gather`` are paired with ``scatter_add``: each one's VJP
is the other, so both are differentiable to any order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff.broadcast import broadcast_to_p
from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError

ArrayLike = Any


def _value(x: Any) -> Any:
    return x._value if isinstance(x, Variable) else x


# -- reshape / transpose ----------------------------------------------------------------
def _reshape_check(vals: list, params: dict) -> str:
    return f"cannot reshape x of shape {np.shape(vals[0])} (size {np.size(vals[0])}) into shape {params['shape']}"


reshape_p = Primitive("reshape", lambda x, shape: np.reshape(x, shape), check=_reshape_check)
reshape_p.defvjp(lambda g, out, x, shape: reshape_p(g, shape=np.shape(x)))


def _inverse_perm(perm: tuple[int, ...] | None) -> tuple[int, ...] | None:
    return None if perm is None else tuple(int(i) for i in np.argsort(perm))


transpose_p = Primitive("transpose", lambda x, perm: np.transpose(x, perm))
transpose_p.defvjp(lambda g, out, x, perm: transpose_p(g, perm=_inverse_perm(perm)))


def reshape(x: ArrayLike, shape: Any) -> Variable:
    """A Variable of the same data with a new shape (one dimension may be -1)."""
    if isinstance(shape, Variable):
        shape = shape._value
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
    return reshape_p.apply(x, shape=shape)


def transpose(x: ArrayLike, perm: Any = None) -> Variable:
    """Permute the axes (default: reverse them)."""
    if perm is not None:
        ndim = np.ndim(_value(x))
        perm = tuple(int(p) for p in perm)
        if sorted(p % ndim if ndim else p for p in perm) != list(range(ndim)):
            raise OpValueError(f"transpose: perm {perm} is not a permutation of the {ndim} axes of x "
                               f"(shape {np.shape(_value(x))})")
        perm = tuple(p % ndim for p in perm)
    return transpose_p.apply(x, perm=perm)


# Inserting and removing axes of length 1, by axis number (not by shape), so that graphs
# of them stay valid when another dimension changes size.
def _expand_dims_impl(x: Any, axes: tuple[int, ...]) -> Any:
    shape = list(np.shape(x))
    for a in axes:  # sorted, in the result's numbering
        shape.insert(a, 1)
    return np.reshape(x, shape)  # a view, and faster than np.expand_dims


def _squeeze_impl(x: Any, axes: tuple[int, ...]) -> Any:
    return np.reshape(x, [n for i, n in enumerate(np.shape(x)) if i not in axes])


expand_dims_p = Primitive("expand_dims", _expand_dims_impl)
squeeze_p = Primitive("squeeze", _squeeze_impl)
expand_dims_p.defvjp(lambda g, out, x, axes: squeeze_p(g, axes=axes))
squeeze_p.defvjp(lambda g, out, x, axes: expand_dims_p(g, axes=axes))


def expand_dims(x: ArrayLike, axis: int) -> Variable:
    """Insert an axis of length 1 at ``axis``."""
    ndim = np.ndim(_value(x))
    if not isinstance(axis, (int, np.integer)) or not -ndim - 1 <= axis <= ndim:
        raise OpValueError(f"expand_dims: axis {axis!r} is invalid for x of shape {np.shape(_value(x))}")
    return expand_dims_p.apply(x, axes=(int(axis) % (ndim + 1),))


def squeeze(x: ArrayLike, axis: Any = None) -> Variable:
    """Remove axes of length 1 (all of them, or those in ``axis``)."""
    shape = np.shape(_value(x))
    items = [i for i, n in enumerate(shape) if n == 1] if axis is None else (
        list(axis) if isinstance(axis, (tuple, list)) else [axis])
    try:
        axes = tuple(sorted(int(a) % len(shape) for a in items)) if shape else ()
        if any(shape[a] != 1 for a in axes) or (not shape and items):
            raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        raise OpValueError(f"squeeze: cannot squeeze axis {axis!r} of x with shape {shape}: {exc}") from None
    return squeeze_p.apply(x, axes=axes)


def broadcast_to(x: ArrayLike, shape: Any) -> Variable:
    """Broadcast x to ``shape``; the gradient is summed back."""
    return broadcast_to_p.apply(x, shape=tuple(int(n) for n in shape))


# -- indexing --------------------------------------------------------------------------
def _is_basic(index: Any) -> bool:
    """True for an index of ints, slices, None and Ellipsis only (no repeated elements)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


def normalize_index(index: Any, op: str = "getitem") -> Any:
    """Variables and lists inside an index become ndarrays; anything else is rejected."""
    if isinstance(index, tuple):
        return tuple(normalize_index(i, op) for i in index)
    if isinstance(index, Variable):
        index = index._value
    if isinstance(index, list):
        index = np.asarray(index)
        if index.size == 0:
            index = index.astype(np.intp)
    if isinstance(index, np.ndarray):
        if index.dtype.kind not in "biu":
            raise OpTypeError(f"{op}: an index array must have an integer or bool dtype, got {index.dtype}")
        return index
    if isinstance(index, (bool, np.bool_)):
        return index
    if isinstance(index, (int, np.integer, slice)) or index is None or index is Ellipsis:
        return index
    raise OpTypeError(f"{op}: cannot index with {type(index).__name__} {index!r}")


def _scatter_add_impl(g: Any, index: Any, shape: tuple[int, ...]) -> np.ndarray:
    z = np.zeros(shape, dtype=np.result_type(g))
    if _is_basic(index):
        z[index] = g
    else:
        np.add.at(z, index, g)  # repeated indices accumulate
    return z


getitem_p = Primitive("getitem", lambda x, index: np.asarray(x)[index], ("x",))
scatter_add_p = Primitive("scatter_add", _scatter_add_impl, ("g",))
getitem_p.defvjp(lambda g, out, x, index: scatter_add_p(g, index=index, shape=np.shape(x)))
scatter_add_p.defvjp(lambda g, out, x, index, shape: getitem_p(g, index=index))


def getitem(x: ArrayLike, index: Any) -> Variable:
    """x[index] with NumPy semantics (slices, ints, None, Ellipsis, int and bool arrays)."""
    return getitem_p.apply(x, index=normalize_index(index))


def _gather_index(axis: int, indices: np.ndarray) -> tuple:
    return (slice(None),) * axis + (indices,)


gather_p = Primitive("gather", lambda x, indices, axis: np.take(x, indices, axis=axis))
gather_p.defvjp(
    lambda g, out, x, indices, axis: scatter_add_p(g, index=_gather_index(axis, indices), shape=np.shape(x))
)


def gather(x: ArrayLike, indices: ArrayLike, axis: int = 0) -> Variable:
    """Take the slices of x at ``indices`` along ``axis`` (NumPy's take)."""
    idx = np.asarray(_value(indices))
    if idx.dtype.kind not in "iu":
        raise OpTypeError(f"gather: indices must be integers, got dtype {idx.dtype}")
    ndim = np.ndim(_value(x))
    if not -ndim <= axis < ndim:
        raise OpValueError(f"gather: axis {axis} is out of range for x of shape {np.shape(_value(x))}")
    size = np.shape(_value(x))[axis]
    if idx.size and (idx.max() >= size or idx.min() < -size):
        bad = idx.max() if idx.max() >= size else idx.min()
        raise OpValueError(f"gather: index {bad} is out of range for axis {axis} of x with shape "
                           f"{np.shape(_value(x))}")
    return gather_p.apply(x, indices=idx, axis=axis % ndim)


# -- joining and splitting -------------------------------------------------------------
def _concat_rule(g: Any, out: Any, needs: tuple, inputs: tuple, params: dict) -> list:
    axis = params["axis"]
    grads = []
    start = 0
    for need, x in zip(needs, inputs):
        stop = start + np.shape(x)[axis]
        grads.append(getitem_p(g, index=(slice(None),) * axis + (slice(start, stop),)) if need else None)
        start = stop
    return grads


def _concat_check(vals: list, params: dict) -> str:
    shapes = ", ".join(str(np.shape(v)) for v in vals)
    return f"cannot concatenate along axis {params['axis']}: shapes {shapes} differ in another axis"


concat_p = Primitive("concat", lambda *xs, axis: np.concatenate(xs, axis=axis), ("xs",), check=_concat_check)
concat_p.defvjp_joint(_concat_rule)


def concat(xs: list[ArrayLike], axis: int = -1) -> Variable:
    """Join a list of arrays along an existing axis."""
    if not isinstance(xs, (list, tuple)) or not xs:
        raise OpTypeError(f"concat: xs must be a non-empty list of arrays, got {type(xs).__name__}")
    ndim = np.ndim(_value(xs[0]))
    if not -ndim <= axis < ndim:
        raise OpValueError(f"concat: axis {axis} is out of range for inputs of rank {ndim}")
    return concat_p.apply(*xs, axis=axis % ndim)


def stack(xs: list[ArrayLike], axis: int = 0) -> Variable:
    """Join a list of same-shaped arrays along a new axis."""
    if not isinstance(xs, (list, tuple)) or not xs:
        raise OpTypeError(f"stack: xs must be a non-empty list of arrays, got {type(xs).__name__}")
    return concat([expand_dims(x, axis) for x in xs], axis=axis)


def split(x: ArrayLike, sizes: Any, axis: int = 0) -> list[Variable]:
    """Split x along ``axis`` into pieces of the given sizes (or into ``sizes`` equal pieces)."""
    shape = np.shape(_value(x))
    ndim = len(shape)
    if not -ndim <= axis < ndim:
        raise OpValueError(f"split: axis {axis} is out of range for x of shape {shape}")
    axis %= ndim
    length = shape[axis]
    if isinstance(sizes, (int, np.integer)):
        if sizes <= 0 or length % sizes:
            raise OpValueError(f"split: cannot split axis {axis} of length {length} into {sizes} equal pieces")
        sizes = [length // sizes] * int(sizes)
    sizes = [int(s) for s in sizes]
    if sum(sizes) != length or any(s < 0 for s in sizes):
        raise OpValueError(f"split: sizes {sizes} do not add up to the length {length} of axis {axis} "
                           f"(x has shape {shape})")
    pieces = []
    start = 0
    for s in sizes:
        pieces.append(getitem_p.apply(x, index=(slice(None),) * axis + (slice(start, start + s),)))
        start += s
    return pieces


def _repeat_rule(g: Any, out: Any, x: Any, repeats: int, axis: int | None) -> Any:
    from .reduction import reduce_sum_p

    shape = np.shape(x)
    if axis is None:
        g = reshape_p(g, shape=(int(np.prod(shape, dtype=np.int64)), repeats))
        return reshape_p(reduce_sum_p(g, axis=(1,), keepdims=False), shape=shape)
    g = reshape_p(g, shape=shape[: axis + 1] + (repeats,) + shape[axis + 1:])
    return reduce_sum_p(g, axis=(axis + 1,), keepdims=False)


repeat_p = Primitive("repeat", lambda x, repeats, axis: np.repeat(x, repeats, axis=axis))
repeat_p.defvjp(_repeat_rule)


def repeat(x: ArrayLike, repeats: Any, axis: int | None = None) -> Variable:
    """Repeat each element ``repeats`` times along ``axis`` (None: of the flattened array)."""
    shape = np.shape(_value(x))
    if axis is not None:
        if not -len(shape) <= axis < len(shape):
            raise OpValueError(f"repeat: axis {axis} is out of range for x of shape {shape}")
        axis %= len(shape)
    if isinstance(repeats, (int, np.integer)):
        if repeats < 0:
            raise OpValueError(f"repeat: repeats must be >= 0, got {repeats}")
        return repeat_p.apply(x, repeats=int(repeats), axis=axis)
    # Per-element repeat counts: an index gather, differentiable through scatter_add.
    counts = np.asarray(_value(repeats))
    if counts.dtype.kind not in "iu":
        raise OpTypeError(f"repeat: repeats must be integers, got dtype {counts.dtype}")
    if axis is None:
        x = reshape_p.apply(x, shape=(-1,))
        axis = 0
        shape = (int(np.prod(shape, dtype=np.int64)),)
    try:
        index = np.repeat(np.arange(shape[axis]), counts)
    except ValueError as exc:
        raise OpValueError(f"repeat: repeats of shape {counts.shape} do not fit axis {axis} of length "
                           f"{shape[axis]}: {exc}") from None
    return gather_p.apply(x, indices=index, axis=axis)
