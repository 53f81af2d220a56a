"""Repetition: ``repeat`` (NumPy's), by a count or per element.

A single count is its own primitive, whose VJP sums the copies back; per-element counts
are an index gather (differentiable through scatter_add).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff import state as _state
from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError, TracingError
from ._arguments import operand
from ._axis import axis_index
from .indexing import gather_p
from .reduction import reduce_sum_p
from .shape import reshape_p

ArrayLike = Any


def _value(x: Any) -> Any:
    return x._value if x.__class__ is Variable else x


def _repeat_rule(g: Any, out: Any, x: Any, repeats: int, axis: int | None) -> Any:
    shape = np.shape(x)
    if axis is None:
        g = reshape_p(g, shape=(int(np.prod(shape, dtype=np.int64)), repeats))
        return reshape_p(reduce_sum_p(g, axis=(1,), keepdims=False), shape=shape)
    g = reshape_p(g, shape=shape[: axis + 1] + (repeats,) + shape[axis + 1:])
    return reduce_sum_p(g, axis=(axis + 1,), keepdims=False)


repeat_p = Primitive("repeat", lambda x, repeats, axis: np.repeat(x, repeats, axis=axis))
repeat_p.defvjp(_repeat_rule)
repeat_p.defjvp_linear()


def repeat(x: ArrayLike, repeats: Any, axis: int | None = None) -> Variable:
    """Repeat each element ``repeats`` times along ``axis`` (None: of the flattened array)."""
    x = operand(x, "repeat")
    shape = np.shape(_value(x))
    if axis is not None:
        axis = axis_index(axis, len(shape), "repeat", shape=shape)
    if isinstance(repeats, (int, np.integer)) and not isinstance(repeats, (bool, np.bool_)):
        if repeats < 0:
            raise OpValueError(f"repeat: repeats must be >= 0, got {repeats}")
        return repeat_p.apply(x, repeats=int(repeats), axis=axis)
    # Per-element repeat counts: an index gather, differentiable through scatter_add. The
    # counts decide the result's shape, so they must be known when a graph is built.
    if isinstance(repeats, Variable) and _state.tracing():
        raise TracingError("repeat: per-element repeats given as a Variable inside a compiled Function: they decide "
                           "the shape of the result, which must be known when the graph is built. Pass them as a "
                           "constant (a NumPy array or list that is not an argument of the Function)")
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
    return gather_p.apply(x, index, axis=axis)
