"""Helpers shared by the layers: input casting, shape checks, axis normalisation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...autodiff.broadcast import astype_p
from ...autodiff.variable import Variable, wrap
from ...errors import OpTypeError, OpValueError
from .. import hyperparams


def value_of(x: Any) -> Any:
    """The array behind a Variable, or the input itself."""
    return x._value if x.__class__ is Variable else x


def autocast(x: Any, dtype: np.dtype) -> Any:
    """Cast an input to a layer's dtype (Keras' autocast). Float Variables are cast with a
    differentiable op; arrays, lists and integer values become constants. Inputs already of
    ``dtype`` are returned as they are, so the common path costs one comparison."""
    if x.__class__ is Variable:
        if x._value.dtype == dtype:
            return x
        if x._value.dtype.kind == "f":
            return astype_p.apply(x, dtype=dtype)
        return wrap(np.asarray(x._value).astype(dtype))
    if x.__class__ is np.ndarray and x.dtype == dtype:
        return x
    return np.asarray(x, dtype=dtype)


def single_shape(layer: Any, input_shape: Any) -> tuple:
    """The input shape of a one-input layer; a list of shapes is an error."""
    if isinstance(input_shape, list):
        raise OpTypeError(f"{layer.name}: {type(layer).__name__} takes one input, got a list of "
                          f"{len(input_shape)} inputs")
    return tuple(input_shape)


def shape_list(layer: Any, input_shape: Any, minimum: int = 2, exactly: int | None = None) -> list[tuple]:
    """The input shapes of a multi-input layer; a single input is an error."""
    if not isinstance(input_shape, list):
        raise OpTypeError(f"{layer.name}: {type(layer).__name__} takes a list of inputs, got a single input "
                          f"of shape {tuple(input_shape)} (batch axis excluded)")
    if exactly is not None and len(input_shape) != exactly:
        raise OpValueError(f"{layer.name}: {type(layer).__name__} takes {exactly} inputs, got {len(input_shape)}")
    if len(input_shape) < minimum:
        raise OpValueError(f"{layer.name}: {type(layer).__name__} takes at least {minimum} inputs, "
                           f"got {len(input_shape)}")
    return [tuple(s) for s in input_shape]


def full_axes(layer: Any, axis: Any, rank: int, what: str = "axis") -> tuple[int, ...]:
    """Axes of a full shape (batch axis 0 included) of ``rank``, normalised and checked;
    the batch axis itself is not allowed."""
    items = axis if isinstance(axis, (list, tuple)) else [axis]
    out = []
    for a in items:
        if not isinstance(a, (int, np.integer)):
            raise OpTypeError(f"{layer.name}: {what} must be an int or a list of ints, got {axis!r}")
        a = int(a)
        if not -rank <= a < rank:
            raise OpValueError(f"{layer.name}: {what} {a} is out of range for inputs of rank {rank} "
                               f"(batch axis included)")
        a %= rank
        if a == 0:
            raise OpValueError(f"{layer.name}: {what} {axis!r} includes the batch axis 0")
        out.append(a)
    if len(set(out)) != len(out):
        raise OpValueError(f"{layer.name}: {what} {axis!r} repeats an axis")
    return tuple(sorted(out))


def known_size(shape: tuple) -> int | None:
    """The number of elements of a shape, or None if a dimension is unknown."""
    if any(n is None for n in shape):
        return None
    return math.prod(shape)


def owner(layer: Any) -> str:
    """How constructor errors name a layer: its class and name."""
    return f"{type(layer).__name__} {layer.name!r}"


def json_axis(layer: Any, axis: Any, arg: str = "axis") -> Any:
    """An axis argument (an int or a list of ints), checked for type and a sane range
    (against the inputs' rank when the layer is built)."""
    if isinstance(axis, (list, tuple)):
        if not axis or len(axis) > hyperparams.MAX_RANK:
            raise OpValueError(f"{owner(layer)}: {arg} must be an int or a list of 1 to {hyperparams.MAX_RANK} "
                               f"ints, got {hyperparams.show(axis)}")
        return [hyperparams.axis(owner(layer), arg, a) for a in axis]
    return hyperparams.axis(owner(layer), arg, axis)


def integer_indices(layer: Any, indices: Any) -> Any:
    """Indices as an integer Variable or array; integral float values are cast (with an op,
    so that a compiled graph casts the indices of every run)."""
    value = np.asarray(value_of(indices))
    if value.dtype.kind in "iu":
        return indices if isinstance(indices, Variable) else value
    if value.dtype.kind != "f":
        raise OpTypeError(f"{layer.name}: indices must be integers, got dtype {value.dtype}")
    if not np.array_equal(np.trunc(value), value):
        raise OpTypeError(f"{layer.name}: indices must be integers, got non-integral {value.dtype} values")
    return astype_p.apply(indices, dtype=np.dtype(np.int64))
