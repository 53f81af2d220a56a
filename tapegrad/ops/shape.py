"""Shape primitives: reshape, transpose, expand_dims, squeeze, broadcast_to, concat, stack, split.

Indexing and gather are in indexing.py, repeat in tiling.py; ``getitem`` is re-exported
here for the modules that import it from this one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff import primitive as _primitive
from ..autodiff.broadcast import broadcast_to_p
from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError
from ._arguments import operand, shape_tuple
from ._axis import axis_index, axis_permutation, axis_tuple
from .indexing import getitem, getitem_p  # noqa: F401 - getitem re-exported

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
    x = operand(x, "reshape")
    return reshape_p.apply(x, shape=shape_tuple(shape, "reshape", allow_minus_one=True))


def transpose(x: ArrayLike, perm: Any = None) -> Variable:
    """Permute the axes (default: reverse them)."""
    x = operand(x, "transpose")
    if perm is not None:
        shape = np.shape(_value(x))
        perm = axis_permutation(perm, len(shape), "transpose", shape=shape)
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
for _prim in (reshape_p, transpose_p, expand_dims_p, squeeze_p):  # linear: tangents go through them
    _prim.defjvp_linear()


def expand_dims(x: ArrayLike, axis: int, op: str = "expand_dims") -> Variable:
    """Insert an axis of length 1 at ``axis``."""
    x = operand(x, op)
    shape = np.shape(_value(x))
    return expand_dims_p.apply(x, axes=(axis_index(axis, len(shape) + 1, op, shape=shape),))


def squeeze(x: ArrayLike, axis: Any = None) -> Variable:
    """Remove axes of length 1 (all of them, or those in ``axis``)."""
    x = operand(x, "squeeze")
    shape = np.shape(_value(x))
    if axis is None:
        axes = tuple(i for i, n in enumerate(shape) if n == 1)
    else:
        axes = axis_tuple(axis, len(shape), "squeeze", shape=shape)
        wide = [a for a in axes if shape[a] != 1]
        if wide:
            raise OpValueError(f"squeeze: cannot squeeze axis {wide[0]} of x with shape {shape}: its size is "
                               f"{shape[wide[0]]}, not 1")
    return squeeze_p.apply(x, axes=axes)


def broadcast_to(x: ArrayLike, shape: Any) -> Variable:
    """Broadcast x to ``shape``; the gradient is summed back."""
    x = operand(x, "broadcast_to")
    return broadcast_to_p.apply(x, shape=shape_tuple(shape, "broadcast_to"))


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
# Forward mode: the concatenation of the tangents (zeros for an input without one).
concat_p.defjvp_joint(lambda tangents, out, inputs, params: concat_p(
    *[np.zeros(np.shape(x), np.result_type(out)) if t is None else t for t, x in zip(tangents, inputs)],
    axis=params["axis"]))


def concat(xs: list[ArrayLike], axis: int = -1) -> Variable:
    """Join a list of arrays along an existing axis."""
    if not isinstance(xs, (list, tuple)) or not xs:
        raise OpTypeError(f"concat: xs must be a non-empty list of arrays, got {type(xs).__name__}")
    xs = [operand(x, "concat", f"xs[{i}]") for i, x in enumerate(xs)]
    shape = np.shape(_value(xs[0]))
    return concat_p.apply(*xs, axis=axis_index(axis, len(shape), "concat", shape=shape))


def stack(xs: list[ArrayLike], axis: int = 0) -> Variable:
    """Join a list of same-shaped arrays along a new axis."""
    if not isinstance(xs, (list, tuple)) or not xs:
        raise OpTypeError(f"stack: xs must be a non-empty list of arrays, got {type(xs).__name__}")
    shape = np.shape(_value(xs[0]))
    axis = axis_index(axis, len(shape) + 1, "stack", shape=shape)
    return concat([expand_dims(x, axis, "stack") for x in xs], axis=axis)


def split(x: ArrayLike, sizes: Any, axis: int = 0) -> list[Variable]:
    """Split x along ``axis`` into pieces of the given sizes (or into ``sizes`` equal pieces)."""
    x = operand(x, "split")
    shape = np.shape(_value(x))
    axis = axis_index(axis, len(shape), "split", shape=shape)
    length = shape[axis]
    if isinstance(sizes, (int, np.integer)) and not isinstance(sizes, (bool, np.bool_)):
        if sizes <= 0 or length % sizes:
            raise OpValueError(f"split: cannot split axis {axis} of length {length} into {sizes} equal pieces")
        sizes = [length // sizes] * int(sizes)
    sizes = list(shape_tuple(sizes, "split", "sizes"))
    if sum(sizes) != length or any(s < 0 for s in sizes):
        raise OpValueError(f"split: sizes {sizes} do not add up to the length {length} of axis {axis} "
                           f"(x has shape {shape})")
    pieces = []
    start = 0
    for s in sizes:
        pieces.append(getitem_p.apply(x, index=(slice(None),) * axis + (slice(start, start + s),)))
        start += s
    return pieces


def _holds_variable(value: Any) -> bool:
    return any(isinstance(v, Variable) or (isinstance(v, (list, tuple)) and _holds_variable(v)) for v in value)


def stack_nested(value: list | tuple, op: str, arg: str) -> Variable | None:
    """A (nested) list or tuple that holds Variables, given where an array is expected: its
    differentiable stack, as ``np.array`` would build it from arrays. The dtype is that of the
    Variables and arrays in it (NumPy's promotion); Python numbers take it. None when the list
    holds no Variable (it is then an ordinary constant)."""
    if not _holds_variable(value):
        return None
    items = [stack_nested(v, op, arg) if isinstance(v, (list, tuple)) and _holds_variable(v) else v for v in value]
    typed = [v.dtype for v in items if isinstance(v, (Variable, np.ndarray, np.generic))]
    dtype = np.result_type(*typed)
    parts = [v if isinstance(v, Variable) else np.asarray(v, dtype=None if isinstance(v, np.ndarray) else dtype)
             for v in items]
    shapes = {np.shape(p._value if isinstance(p, Variable) else p) for p in parts}
    if len(shapes) > 1:
        raise OpValueError(f"{op}: argument {arg} is a list whose elements have different shapes "
                           f"{sorted(shapes, key=len)}: it cannot be stacked into one array")
    return concat_p.apply(*[expand_dims_p.apply(p, axes=(0,)) for p in parts], axis=0)


# Primitive.constant stacks a list of Variables given as an argument with it (the autodiff
# core cannot import the ops it would need).
_primitive.stack_nested = stack_nested
