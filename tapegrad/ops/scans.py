"""Scans and moments: cumsum, cumprod (primitives), var and std (compositions).

``cumsum`` is linear; its VJP is the cumulative sum of the cotangent taken from the other
end (the primitive's ``reverse`` flag). ``cumprod``'s derivatives are computed without
division, so they are exact where elements are zero (like ``prod``'s): both its VJP and
its JVP are first-order linear recurrences, evaluated by a log-step scan made of slices,
products and sums (so they are differentiable to any order):

* VJP: ``grad_i = E_i * S_i`` with ``E_i = x_0 ... x_(i-1)`` (the exclusive product) and
  ``S_i = g_i + x_(i+1) S_(i+1)``;
* JVP: ``u_j = t_j E_j + x_j u_(j-1)``.

``var`` and ``std`` follow NumPy (``ddof``, ``keepdims``); the ``ddof`` correction reads the
reduced count at run time, so a compiled Function stays valid for other batch sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpTypeError
from ._axis import axis_index, axis_tuple
from ._compose import along, array_operand, dtype_of, result, shape_of
from .constant import cast
from .elementwise import sqrt_p
from .reduction import inverse_count_p, reduce_mean_p
from .shape import concat_p, getitem_p, reshape_p

ArrayLike = Any


# -- cumsum -------------------------------------------------------------------------------
def _cumsum_impl(x: Any, axis: int, reverse: bool) -> Any:
    if not reverse:
        return np.cumsum(x, axis=axis)
    return np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)


cumsum_p = Primitive("cumsum", _cumsum_impl)
cumsum_p.defvjp(lambda g, out, x, axis, reverse: cumsum_p(g, axis=axis, reverse=not reverse))
cumsum_p.defjvp_linear()


# -- cumprod ------------------------------------------------------------------------------
def _linear_scan(a: Any, b: Any, axis: int, reverse: bool) -> Any:
    """s with s_j = b_j + a_j s_(j-1) (from the front) or s_j = b_j + a_j s_(j+1) (reverse),
    along ``axis``: log2(n) doubling steps of slices, products and sums."""
    ndim, n = len(shape_of(b)), shape_of(b)[axis]
    step = 1
    while step < n:
        def part(v: Any, start: int | None, stop: int | None) -> Any:
            return getitem_p(v, index=along(ndim, axis, start, stop))

        if reverse:  # s_j = (b_j + a_j b_(j+step)) + a_j a_(j+step) s_(j+2 step)
            b_next = concat_p(part(b, 0, n - step) + part(a, 0, n - step) * part(b, step, n),
                              part(b, n - step, n), axis=axis)
            if step * 2 < n:
                a = concat_p(part(a, 0, n - step) * part(a, step, n), part(a, n - step, n), axis=axis)
        else:
            b_next = concat_p(part(b, 0, step), part(b, step, n) + part(a, step, n) * part(b, 0, n - step),
                              axis=axis)
            if step * 2 < n:
                a = concat_p(part(a, 0, step), part(a, step, n) * part(a, 0, n - step), axis=axis)
        b = b_next
        step *= 2
    return b


def _block(like: Any, axis: int, fill: float) -> np.ndarray:
    """A constant slab of ``like``'s shape with length 1 along ``axis``."""
    shape = list(shape_of(like))
    shape[axis] = 1
    return np.full(shape, fill, dtype=dtype_of(like))


def _exclusive_products(out: Any, axis: int) -> Any:
    """E_i = x_0 ... x_(i-1), from the cumulative products themselves (no division)."""
    ndim, n = len(shape_of(out)), shape_of(out)[axis]
    return concat_p(_block(out, axis, 1.0), getitem_p(out, index=along(ndim, axis, 0, n - 1)), axis=axis)


def _cumprod_vjp(g: Any, out: Any, x: Any, axis: int) -> Any:
    ndim, n = len(shape_of(x)), shape_of(x)[axis]
    if n < 2:
        return g
    following = concat_p(getitem_p(x, index=along(ndim, axis, 1, n)), _block(x, axis, 0.0), axis=axis)
    return _exclusive_products(out, axis) * _linear_scan(following, g, axis, reverse=True)


def _cumprod_jvp(t: Any, out: Any, x: Any, axis: int) -> Any:
    if shape_of(x)[axis] < 2:
        return t
    return _linear_scan(x, t * _exclusive_products(out, axis), axis, reverse=False)


cumprod_p = Primitive("cumprod", lambda x, axis: np.cumprod(x, axis=axis))
cumprod_p.defvjp(_cumprod_vjp)
cumprod_p.defjvp(_cumprod_jvp)


def _scan(prim: Primitive, op: str, x: ArrayLike, axis: Any, dtype: Any, **params: Any) -> Variable:
    x = array_operand(x, op)
    if dtype is not None:
        x = cast(x, dtype)
    if axis is None:  # NumPy's: over the flattened array
        x = reshape_p(x, shape=(-1,))
        axis = 0
    shape = shape_of(x)
    return result(prim(x, axis=axis_index(axis, len(shape), op, shape=shape), **params))


def cumsum(x: ArrayLike, axis: Any = None, dtype: Any = None) -> Variable:
    """Cumulative sum along ``axis`` (None: of the flattened array), NumPy's cumsum."""
    return _scan(cumsum_p, "cumsum", x, axis, dtype, reverse=False)


def cumprod(x: ArrayLike, axis: Any = None, dtype: Any = None) -> Variable:
    """Cumulative product along ``axis`` (None: of the flattened array), NumPy's cumprod. The
    derivatives are exact also where x has zeros, to any order."""
    return _scan(cumprod_p, "cumprod", x, axis, dtype)


# -- moments --------------------------------------------------------------------------------
def _variance(op: str, x: ArrayLike, axis: Any, ddof: Any, keepdims: bool) -> Any:
    x = array_operand(x, op)
    shape = shape_of(x)
    axes = axis_tuple(axis, len(shape), op, shape=shape)
    if isinstance(ddof, (bool, np.bool_)) or not isinstance(ddof, (int, float, np.integer, np.floating)):
        raise OpTypeError(f"{op}: argument ddof must be a number, got {type(ddof).__name__} {ddof!r}")
    ddof = float(ddof)
    mean = reduce_mean_p(x, axis=axes, keepdims=True)
    deviation = x - mean
    variance = reduce_mean_p(deviation * deviation, axis=axes, keepdims=bool(keepdims))
    if ddof:  # n / (n - ddof), with n read at run time
        variance = variance / (1 - ddof * inverse_count_p(x, axis=axes))
    return variance


def var(x: ArrayLike, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Variable:
    """Variance over ``axis`` (None: all), dividing by n - ddof (NumPy's var)."""
    return result(_variance("var", x, axis, ddof, keepdims))


def std(x: ArrayLike, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Variable:
    """Standard deviation over ``axis`` (None: all), dividing by n - ddof (NumPy's std). Where the
    values are all equal its gradient is NaN (the derivative of sqrt at 0), as in PyTorch."""
    return result(sqrt_p(_variance("std", x, axis, ddof, keepdims)))
