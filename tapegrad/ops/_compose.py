"""Helpers for public ops written as compositions of primitives (products, manipulation,
scans, norms, linear algebra).

A composite op converts its array arguments once (:func:`array_operand`: a Variable stays a
Variable, anything else becomes an ndarray by the package's dtype policy), then calls
primitives polymorphically (``prim(x, ...)``): on ndarrays they run NumPy, on Variables they
record. :func:`result` makes the final value a Variable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _dtypes
from ..autodiff.primitive import as_value
from ..autodiff.variable import Variable, wrap
from ..errors import OpTypeError
from ._arguments import operand


def array_operand(x: Any, op: str, arg: str = "x") -> Any:
    """An array argument of ``op``: a Variable, or its value as an ndarray (Python numbers and
    lists in the default float dtype)."""
    x = operand(x, op, arg)
    if x.__class__ is Variable:
        return x
    return _dtypes.to_array(x, None, _dtypes.DEFAULT_FLOAT, op, arg)


def float_operand(x: Any, op: str, arg: str = "x") -> Any:
    """An array argument that must hold floats (linear algebra): integers become float64, as
    in numpy.linalg; a Variable of integers is refused (it could not have a gradient)."""
    x = array_operand(x, op, arg)
    dtype = dtype_of(x)
    if dtype.kind == "f":
        return x
    if x.__class__ is Variable:
        raise OpTypeError(f"{op}: argument {arg} is a Variable of dtype {dtype}; it must hold floats "
                          f"(cast it first)")
    return x.astype(np.float64)


def value_of(x: Any) -> Any:
    return x._value if x.__class__ is Variable else x


def shape_of(x: Any) -> tuple[int, ...]:
    return np.shape(x._value if x.__class__ is Variable else x)


def dtype_of(x: Any) -> np.dtype:
    return np.result_type(x._value if x.__class__ is Variable else x)


def result(y: Any) -> Variable:
    """The result of a composite op as a Variable."""
    return y if y.__class__ is Variable else wrap(as_value(y))


def along(ndim: int, axis: int, start: int | None, stop: int | None, step: int | None = None) -> tuple:
    """The index that slices ``start:stop:step`` along ``axis`` of an ``ndim``-d array."""
    return (slice(None),) * axis + (slice(start, stop, step),) + (slice(None),) * (ndim - axis - 1)


def matrix_transpose_perm(ndim: int) -> tuple[int, ...]:
    """The permutation that swaps the last two axes."""
    return tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)
