"""Array manipulation with NumPy's names and signatures: sort, argsort, take_along_axis, flip,
roll, tril, triu, diagonal, trace, diag, pad, tile, diff, moveaxis, swapaxes.

``take_along_axis`` is a primitive paired with its transpose ``put_along_axis_add`` (each
one's VJP is the other, as for getitem and scatter_add); ``argsort`` is a non-differentiable
primitive, and ``sort`` is ``take_along_axis`` of x at its argsort, so the gradient of each
sorted element goes to the element it came from (ties: to the one argsort put there).
Everything else is composed of primitives that already have every rule (slices, index
gathers, transposes, reshapes, broadcasts, concatenations, ``where``), so their
derivatives, tangents and batching come from those.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff.broadcast import broadcast_to_p
from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError
from ._arguments import integer
from ._axis import axis_index, axis_tuple
from ._compose import along, array_operand, dtype_of, result, shape_of
from .elementwise import nop_p, where_p
from .indexing import ARRAY, gather_p, getitem_p, scatter_add_p
from .reduction import reduce_sum_p
from .shape import concat_p, reshape_p, transpose_p

ArrayLike = Any


# -- take_along_axis and sorting ---------------------------------------------------------------
def _along_axis_index(indices: Any, axis: int, shape: tuple[int, ...]) -> tuple:
    """The NumPy index that take_along_axis uses: indices along ``axis``, aranges elsewhere."""
    ndim = len(shape)
    return tuple(indices if d == axis else np.arange(shape[d]).reshape([-1 if e == d else 1 for e in range(ndim)])
                 for d in range(ndim))


def _put_along_axis_add_impl(g: Any, indices: Any, axis: int, shape: tuple[int, ...]) -> np.ndarray:
    z = np.zeros(shape, dtype=np.result_type(g))
    np.add.at(z, _along_axis_index(indices, axis, shape), g)  # repeated indices accumulate
    return z


take_along_axis_p = Primitive("take_along_axis", lambda x, indices, axis: np.take_along_axis(x, indices, axis=axis),
                              ("arr", "indices"))
put_along_axis_add_p = Primitive("put_along_axis_add", _put_along_axis_add_impl, ("g", "indices"))
take_along_axis_p.defvjp(
    lambda g, out, x, indices, axis: put_along_axis_add_p(g, indices, axis=axis, shape=shape_of(x)),
    lambda g, out, x, indices, axis: None)
put_along_axis_add_p.defvjp(
    lambda g, out, x, indices, axis, shape: take_along_axis_p(g, indices, axis=axis),
    lambda g, out, x, indices, axis, shape: None)
take_along_axis_p.defjvp_linear()
put_along_axis_add_p.defjvp_linear()

argsort_p = Primitive("argsort", lambda x, axis, kind: np.argsort(x, axis=axis, kind=kind), differentiable=False)


def _indices(indices: Any, op: str) -> Any:
    if isinstance(indices, (list, tuple)):
        indices = np.asarray(indices)
    dtype = np.result_type(indices._value if isinstance(indices, Variable) else indices)
    if dtype.kind not in "iu":
        raise OpTypeError(f"{op}: indices must be integers, got dtype {dtype}")
    return indices


def take_along_axis(arr: ArrayLike, indices: ArrayLike, axis: int | None = -1) -> Variable:
    """NumPy's take_along_axis: the elements of ``arr`` at ``indices`` along ``axis`` (the other
    axes broadcast; None: of the flattened array). Differentiable in ``arr``."""
    arr, indices = array_operand(arr, "take_along_axis", "arr"), _indices(indices, "take_along_axis")
    if axis is None:
        arr = reshape_p(arr, shape=(-1,))
        axis = 0
    shape, index_shape = shape_of(arr), shape_of(indices)
    axis = axis_index(axis, len(shape), "take_along_axis", shape=shape)
    if len(index_shape) != len(shape):
        raise OpValueError(f"take_along_axis: indices of shape {index_shape} must have as many axes as arr "
                           f"(shape {shape})")
    return result(take_along_axis_p(arr, indices, axis=axis))


def _sort_kind(kind: Any, stable: Any, op: str) -> Any:
    if stable:
        if kind not in (None, "stable", "mergesort"):
            raise OpValueError(f"{op}: stable=True and kind={kind!r} contradict each other")
        return "stable"
    if kind not in (None, "quicksort", "mergesort", "heapsort", "stable"):
        raise OpValueError(f"{op}: kind must be 'quicksort', 'mergesort', 'heapsort' or 'stable', got {kind!r}")
    return kind


def _no_order(order: Any, op: str) -> None:
    if order is not None:
        raise OpValueError(f"{op}: order={order!r} sorts structured arrays by field, which Variables are not")


def _flat_axis(x: Any, axis: Any, op: str) -> tuple[Any, int]:
    if axis is None:
        return reshape_p(x, shape=(-1,)), 0
    shape = shape_of(x)
    return x, axis_index(axis, len(shape), op, shape=shape)


def argsort(x: ArrayLike, axis: int | None = -1, kind: str | None = None, order: None = None, *,
            stable: bool | None = None) -> Variable:
    """The indices that sort x along ``axis`` (None: the flattened array). Not differentiable."""
    _no_order(order, "argsort")
    x, axis = _flat_axis(array_operand(x, "argsort"), axis, "argsort")
    return result(argsort_p(x, axis=axis, kind=_sort_kind(kind, stable, "argsort")))


def sort(x: ArrayLike, axis: int | None = -1, kind: str | None = None, order: None = None, *,
         stable: bool | None = None) -> Variable:
    """x sorted along ``axis`` (None: the flattened array); the gradient of each sorted element
    goes back to the element it came from."""
    _no_order(order, "sort")
    x, axis = _flat_axis(array_operand(x, "sort"), axis, "sort")
    order = argsort_p(x, axis=axis, kind=_sort_kind(kind, stable, "sort"))
    return result(take_along_axis_p(x, order, axis=axis))


# -- axes ----------------------------------------------------------------------------------------
def _axis_list(value: Any, ndim: int, op: str, arg: str, shape: tuple[int, ...]) -> list[int]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    axes = [axis_index(a, ndim, op, arg, shape) for a in items]
    if len(set(axes)) != len(axes):
        raise OpValueError(f"{op}: argument {arg}={value!r} repeats an axis")
    return axes


def moveaxis(x: ArrayLike, source: Any, destination: Any) -> Variable:
    """Move axes to new positions; the others keep their order (NumPy's moveaxis)."""
    x = array_operand(x, "moveaxis")
    shape = shape_of(x)
    sources = _axis_list(source, len(shape), "moveaxis", "source", shape)
    targets = _axis_list(destination, len(shape), "moveaxis", "destination", shape)
    if len(sources) != len(targets):
        raise OpValueError(f"moveaxis: source {source!r} and destination {destination!r} must have the same "
                           f"number of elements")
    order = [a for a in range(len(shape)) if a not in sources]
    for target, src in sorted(zip(targets, sources)):
        order.insert(target, src)
    return result(transpose_p(x, perm=tuple(order)))


def swapaxes(x: ArrayLike, axis1: int, axis2: int) -> Variable:
    """Exchange two axes (NumPy's swapaxes)."""
    x = array_operand(x, "swapaxes")
    shape = shape_of(x)
    a = axis_index(axis1, len(shape), "swapaxes", "axis1", shape)
    b = axis_index(axis2, len(shape), "swapaxes", "axis2", shape)
    perm = list(range(len(shape)))
    perm[a], perm[b] = perm[b], perm[a]
    return result(transpose_p(x, perm=tuple(perm)))


def flip(x: ArrayLike, axis: Any = None) -> Variable:
    """Reverse the order of the elements along ``axis`` (None: all axes)."""
    x = array_operand(x, "flip")
    shape = shape_of(x)
    axes = axis_tuple(axis, len(shape), "flip", shape=shape)
    axes = tuple(range(len(shape))) if axes is None else axes
    index = tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(len(shape)))
    return result(getitem_p(x, index=index))


def roll(x: ArrayLike, shift: Any, axis: Any = None) -> Variable:
    """Shift the elements along ``axis`` cyclically by ``shift`` (None: of the flattened array,
    keeping the shape); ``shift`` and ``axis`` may be tuples (NumPy's roll)."""
    x = array_operand(x, "roll")
    shape = shape_of(x)
    if axis is None:
        return result(reshape_p(_roll(reshape_p(x, shape=(-1,)), shift, 0), shape=shape))
    return result(_roll(x, shift, axis))


def _roll(x: Any, shift: Any, axis: Any) -> Any:
    shape = shape_of(x)
    shifts = np.atleast_1d(np.asarray(shift))
    axes = np.atleast_1d(np.asarray(axis))
    if shifts.dtype.kind not in "iu" or axes.dtype.kind not in "iu":
        raise OpTypeError(f"roll: shift and axis must be ints, got shift={shift!r}, axis={axis!r}")
    try:
        pairs = np.broadcast(shifts, axes)
    except ValueError:
        raise OpValueError(f"roll: shift {shift!r} and axis {axis!r} cannot be broadcast together") from None
    total: dict[int, int] = {}
    for s, a in pairs:
        a = axis_index(int(a), len(shape), "roll", shape=shape)
        total[a] = total.get(a, 0) + int(s)
    for a, s in total.items():
        n = shape[a]
        s = s % n if n else 0
        if s:
            x = concat_p(getitem_p(x, index=along(len(shape), a, n - s, n)),
                         getitem_p(x, index=along(len(shape), a, 0, n - s)), axis=a)
    return x


# -- triangles and diagonals ----------------------------------------------------------------------
def _triangle(x: ArrayLike, k: Any, op: str, lower: bool) -> Variable:
    x = array_operand(x, op)
    shape = shape_of(x)
    if not shape:
        raise OpValueError(f"{op}: x must have at least 1 dimension, got a 0-d value")
    k = integer(k, op, "k")
    rows, cols = shape[-2:] if len(shape) >= 2 else (shape[0], shape[0])
    keep = np.tri(rows, cols, k, dtype=bool) if lower else ~np.tri(rows, cols, k - 1, dtype=bool)
    return result(where_p(keep, x, 0))


def tril(x: ArrayLike, k: int = 0) -> Variable:
    """The lower triangle of each matrix (last two axes): zero above the k-th diagonal."""
    return _triangle(x, k, "tril", lower=True)


def triu(x: ArrayLike, k: int = 0) -> Variable:
    """The upper triangle of each matrix (last two axes): zero below the k-th diagonal."""
    return _triangle(x, k, "triu", lower=False)


def _diagonal(x: Any, offset: int, axis1: int, axis2: int, op: str) -> Any:
    shape = shape_of(x)
    if len(shape) < 2:
        raise OpValueError(f"{op}: x must have at least 2 dimensions, got shape {shape}")
    a = axis_index(axis1, len(shape), op, "axis1", shape)
    b = axis_index(axis2, len(shape), op, "axis2", shape)
    if a == b:
        raise OpValueError(f"{op}: axis1 and axis2 are the same axis ({a}) of shape {shape}")
    offset = integer(offset, op, "offset")
    perm = tuple(d for d in range(len(shape)) if d not in (a, b)) + (a, b)
    if perm != tuple(range(len(shape))):
        x = transpose_p(x, perm=perm)
    start_row, start_col = max(-offset, 0), max(offset, 0)
    length = max(min(shape[a] - start_row, shape[b] - start_col), 0)
    rows = np.arange(start_row, start_row + length)
    cols = np.arange(start_col, start_col + length)
    return getitem_p(x, rows, cols, index=(slice(None),) * (len(shape) - 2) + (ARRAY, ARRAY))


def diagonal(x: ArrayLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Variable:
    """The diagonal at ``offset`` of the matrices on axes (axis1, axis2), along a new last axis
    (NumPy's diagonal)."""
    return result(_diagonal(array_operand(x, "diagonal"), offset, axis1, axis2, "diagonal"))


def trace(x: ArrayLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Variable:
    """The sum of the diagonal at ``offset`` of the matrices on axes (axis1, axis2)."""
    d = _diagonal(array_operand(x, "trace"), offset, axis1, axis2, "trace")
    return result(reduce_sum_p(d, axis=(len(shape_of(d)) - 1,), keepdims=False))


def diag(v: ArrayLike, k: int = 0) -> Variable:
    """NumPy's diag: of a 1-d v, the square matrix with v on its k-th diagonal; of a 2-d v, its
    k-th diagonal."""
    v = array_operand(v, "diag", "v")
    shape = shape_of(v)
    k = integer(k, "diag", "k")
    if len(shape) == 2:
        return result(_diagonal(v, k, 0, 1, "diag"))
    if len(shape) != 1:
        raise OpValueError(f"diag: v must be 1-d or 2-d, got shape {shape}")
    n = shape[0] + abs(k)
    rows = np.arange(shape[0]) + max(-k, 0)
    cols = np.arange(shape[0]) + max(k, 0)
    return result(scatter_add_p(v, rows, cols, index=(ARRAY, ARRAY), shape=(n, n)))


# -- padding, tiling, differences -----------------------------------------------------------------
_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _pairs(value: Any, ndim: int, op: str, arg: str, integral: bool) -> np.ndarray:
    array = np.asarray(value._value if isinstance(value, Variable) else value)
    if integral and array.dtype.kind not in "iu":
        raise OpTypeError(f"{op}: argument {arg} must be ints, got {value!r}")
    try:
        return np.broadcast_to(array, (ndim, 2))
    except ValueError:
        raise OpValueError(f"{op}: argument {arg}={value!r} does not fit an input of rank {ndim}: give one "
                           f"number, a (before, after) pair, or one pair per axis") from None


def pad(x: ArrayLike, pad_width: Any, mode: str = "constant", constant_values: Any = 0,
        reflect_type: str = "even") -> Variable:
    """NumPy's pad with ``mode`` 'constant' (``constant_values``), 'edge', 'reflect',
    'symmetric' or 'wrap'. Differentiable in x."""
    x = array_operand(x, "pad")
    shape = shape_of(x)
    widths = _pairs(pad_width, len(shape), "pad", "pad_width", integral=True)
    if (widths < 0).any():
        raise OpValueError(f"pad: pad_width {pad_width!r} has a negative width")
    if mode not in _PAD_MODES:
        raise OpValueError(f"pad: mode {mode!r} is not supported; use one of {', '.join(_PAD_MODES)}")
    if reflect_type != "even":
        raise OpValueError(f"pad: only reflect_type='even' is supported, got {reflect_type!r}")
    if mode == "constant":
        values = _pairs(constant_values, len(shape), "pad", "constant_values", integral=False)
        dtype = dtype_of(x)
        for axis, (before, after) in enumerate(widths.tolist()):
            if before or after:
                current = list(shape_of(x))
                blocks = []
                for width, value in ((before, values[axis][0]), (after, values[axis][1])):
                    current[axis] = width
                    blocks.append(np.full(current, value, dtype=dtype) if width else None)
                x = concat_p(*[b for b in (blocks[0], x, blocks[1]) if b is not None], axis=axis)
        return result(x)
    for axis, (before, after) in enumerate(widths.tolist()):
        if before or after:
            if shape[axis] == 0:
                raise OpValueError(f"pad: cannot pad axis {axis} of length 0 (shape {shape}) in mode {mode!r}")
            index = np.pad(np.arange(shape[axis]), (before, after), mode=mode)
            x = gather_p(x, index, axis=axis)
    return result(x)


def tile(x: ArrayLike, reps: Any) -> Variable:
    """x repeated ``reps`` times along each axis (NumPy's tile)."""
    x = array_operand(x, "tile")
    counts = [reps] if isinstance(reps, (int, np.integer)) else list(np.asarray(reps).reshape(-1).tolist())
    counts = [integer(r, "tile", "reps") for r in counts]
    if any(r < 0 for r in counts):
        raise OpValueError(f"tile: reps {reps!r} has a negative count")
    shape = shape_of(x)
    rank = max(len(counts), len(shape))
    shape = (1,) * (rank - len(shape)) + shape
    counts = [1] * (rank - len(counts)) + counts
    if all(r == 1 for r in counts):
        return result(reshape_p(x, shape=shape) if rank != len(shape_of(x)) else nop_p(x))
    spread = reshape_p(x, shape=tuple(n for m in shape for n in (1, m)))
    copies = broadcast_to_p(spread, shape=tuple(n for r, m in zip(counts, shape) for n in (r, m)))
    return result(reshape_p(copies, shape=tuple(r * m for r, m in zip(counts, shape))))


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


_NO_VALUE: Any = _NoValue()


def diff(x: ArrayLike, n: int = 1, axis: int = -1, prepend: Any = _NO_VALUE, append: Any = _NO_VALUE) -> Variable:
    """The n-th differences along ``axis``, after adding ``prepend``/``append`` (NumPy's diff)."""
    x = array_operand(x, "diff")
    shape = shape_of(x)
    n = integer(n, "diff", "n")
    if n < 0:
        raise OpValueError(f"diff: order n must be >= 0, got {n}")
    if not shape:
        raise OpValueError("diff: x must have at least 1 dimension, got a 0-d value")
    axis = axis_index(axis, len(shape), "diff", shape=shape)
    if n == 0:
        return result(nop_p(x))
    parts = []
    for name, extra in (("prepend", prepend), (None, x), ("append", append)):
        if extra is _NO_VALUE:
            continue
        if name is not None:
            extra = array_operand(extra, "diff", name)
            if not shape_of(extra):
                edge = list(shape)
                edge[axis] = 1
                extra = broadcast_to_p(extra, shape=tuple(edge))
        parts.append(extra)
    if len(parts) > 1:
        x = concat_p(*parts, axis=axis)
    ndim = len(shape)
    for _ in range(n):
        length = shape_of(x)[axis]
        if length == 0:
            break
        x = getitem_p(x, index=along(ndim, axis, 1, length)) - getitem_p(x, index=along(ndim, axis, 0, length - 1))
    return result(x)
