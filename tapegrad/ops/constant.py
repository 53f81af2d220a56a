"""Ops whose results are constants: creation, cast, one_hot, bandpart, shape, stop_gradient.

None of them is recorded on a tape: their results have no gradient, except ``cast`` from a
float dtype to a float dtype, which passes the gradient back in the source's dtype (as
TensorFlow, PyTorch and JAX do). Those whose result depends on the values of a Variable
(cast, one_hot, bandpart, stop_gradient) apply primitives to it, so that a compiled Function
computes them from each call's inputs instead of keeping the values seen while tracing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _dtypes
from ..autodiff.broadcast import astype_p
from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable, wrap
from ..errors import OpTypeError, OpValueError
from ._arguments import integer, operand
from .elementwise import nop_p

ArrayLike = Any


def _value(x: Any, op: str, arg: str = "x") -> np.ndarray:
    x = operand(x, op, arg)
    if isinstance(x, Variable):
        return x._value
    return _dtypes.to_array(x, None, _dtypes.DEFAULT_FLOAT, op, arg)


def _shape(shape: Any, op: str) -> tuple[int, ...]:
    if isinstance(shape, Variable):
        shape = shape._value.tolist()
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        out = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise OpTypeError(f"{op}: shape must be a sequence of ints, got {shape!r}") from None
    if any(n < 0 for n in out):
        raise OpValueError(f"{op}: shape {out} has a negative dimension")
    return out


def _float(dtype: Any, op: str) -> np.dtype:
    return _dtypes.DEFAULT_FLOAT if dtype is None else _dtypes.as_dtype(dtype, op)


def zeros(shape: Any, dtype: Any = None) -> Variable:
    """A constant Variable of zeros (default dtype: float32)."""
    return wrap(np.zeros(_shape(shape, "zeros"), dtype=_float(dtype, "zeros")))


def ones(shape: Any, dtype: Any = None) -> Variable:
    """A constant Variable of ones (default dtype: float32)."""
    return wrap(np.ones(_shape(shape, "ones"), dtype=_float(dtype, "ones")))


def zeros_like(x: ArrayLike, dtype: Any = None) -> Variable:
    """Zeros of x's shape (and dtype, unless given)."""
    v = _value(x, "zeros_like")
    return wrap(np.zeros(v.shape, dtype=v.dtype if dtype is None else _dtypes.as_dtype(dtype, "zeros_like")))


def ones_like(x: ArrayLike, dtype: Any = None) -> Variable:
    """Ones of x's shape (and dtype, unless given)."""
    v = _value(x, "ones_like")
    return wrap(np.ones(v.shape, dtype=v.dtype if dtype is None else _dtypes.as_dtype(dtype, "ones_like")))


cast_p = Primitive("cast", lambda x, dtype: np.asarray(x).astype(dtype), differentiable=False)
stop_gradient_p = Primitive("stop_gradient", lambda x: x, differentiable=False)


def cast(x: ArrayLike, dtype: Any) -> Variable:
    """x converted to ``dtype``.

    Between float dtypes the cast is differentiable: the gradient comes back converted to
    x's dtype, to any order. A cast to an int or bool dtype (or from one) is a constant."""
    dtype = _dtypes.as_dtype(dtype, "cast")
    x = operand(x, "cast")
    if isinstance(x, Variable):
        if dtype.kind == "f" and x._value.dtype.kind == "f":
            if dtype == x._value.dtype:
                return nop_p.apply1(x)
            return astype_p.apply(x, dtype=dtype)  # its VJP casts the cotangent back: astype_p again
        return cast_p.apply(x, dtype=dtype)
    return wrap(_value(x, "cast").astype(dtype))


def stop_gradient(x: ArrayLike) -> Variable:
    """The value of x as a constant: no gradient flows through it."""
    x = operand(x, "stop_gradient")
    if isinstance(x, Variable):
        return stop_gradient_p.apply(x)
    return wrap(_value(x, "stop_gradient"))


def shape(x: ArrayLike) -> Variable:
    """The shape of x as an int64 Variable (not differentiable)."""
    return wrap(np.asarray(_value(x, "shape").shape, dtype=np.int64))


def one_hot(indices: ArrayLike, depth: int, dtype: Any = None, on_value: float = 1, off_value: float = 0) -> Variable:
    """One-hot vectors of length ``depth`` for integer ``indices`` (a new last axis)."""
    idx = _value(indices, "one_hot", "indices")
    if idx.dtype.kind not in "iu":
        raise OpTypeError(f"one_hot: indices must be integers, got dtype {idx.dtype}")
    depth = integer(depth, "one_hot", "depth")
    if depth < 0:
        raise OpValueError(f"one_hot: argument depth must be >= 0, got {depth}")
    if idx.size and (idx.min() < 0 or idx.max() >= depth):
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise OpValueError(f"one_hot: index {bad} is out of range for depth {depth}")
    params = {"depth": depth, "dtype": _float(dtype, "one_hot"), "on_value": on_value, "off_value": off_value}
    if isinstance(indices, Variable):
        return one_hot_p.apply(indices, **params)
    return wrap(_one_hot_impl(idx, **params))


def _one_hot_impl(idx: Any, depth: int, dtype: np.dtype, on_value: float, off_value: float) -> np.ndarray:
    idx = np.asarray(idx)
    out = np.full(idx.shape + (depth,), off_value, dtype=dtype)
    np.put_along_axis(out, idx[..., None], on_value, axis=-1)
    return out


one_hot_p = Primitive("one_hot", _one_hot_impl, ("indices",), differentiable=False)


def bandpart(x: ArrayLike, lower: int, upper: int) -> Variable:
    """Keep the band of each matrix (last two axes): ``lower`` diagonals below and ``upper``
    above the main one (negative: keep the whole triangle); zero the rest. Not differentiable."""
    x = operand(x, "bandpart")
    v = _value(x, "bandpart")
    lower, upper = integer(lower, "bandpart", "lower"), integer(upper, "bandpart", "upper")
    if v.ndim < 2:
        raise OpValueError(f"bandpart: x must have at least 2 dimensions, got shape {v.shape}")
    if isinstance(x, Variable):
        return bandpart_p.apply(x, lower=lower, upper=upper)
    return wrap(_bandpart_impl(v, lower, upper))


def _bandpart_impl(v: Any, lower: int, upper: int) -> np.ndarray:
    v = np.asarray(v)
    rows, cols = v.shape[-2:]
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    keep = np.ones((rows, cols), dtype=bool)
    if lower >= 0:
        keep &= (i - j) <= lower
    if upper >= 0:
        keep &= (j - i) <= upper
    return np.where(keep, v, np.zeros((), dtype=v.dtype))


bandpart_p = Primitive("bandpart", _bandpart_impl, differentiable=False)
