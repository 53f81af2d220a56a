"""ndarray-like methods of Variable, installed on the class: reshape, T, transpose, ravel,
flatten, squeeze, astype, clip, and the reductions sum, mean, max, min, prod, any, all.

NumPy's functions call these methods on a Variable (``np.sum(v)`` is
``v.sum(axis=None, dtype=None, out=None)``, ``np.clip(v, 0, 1)`` is
``v.clip(0, 1, out=None)``), so they take NumPy's signatures:

* ``dtype=`` casts before reducing (differentiable between float dtypes, like ``cast``);
* ``out=`` must be None. A Variable is immutable and the result is a new Variable; writing
  it into an ndarray would silently cut the gradient, so it is refused with a message
  (``np.sum(v.value(), out=a)`` does that on purpose);
* NumPy-only arguments (``where=``, ``initial=``, ...) are refused with a message naming them.

The results are differentiable (except ``any``, ``all`` and casts to int or bool) and
traceable by a compiled Function, like the ops they call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _dtypes
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError, describe
from ._axis import axis_permutation, axis_tuple
from .constant import cast
from .elementwise import clip_by_value, nop
from .reduction import (
    reduce_all_p,
    reduce_any_p,
    reduce_max_p,
    reduce_mean_p,
    reduce_min_p,
    reduce_over,
    reduce_prod_p,
    reduce_sum_p,
)
from .shape import reshape, squeeze, transpose


def _numpy_only(method: str, out: Any, extra: dict[str, Any]) -> None:
    """Refuse ``out=`` (unless None) and NumPy-only keyword arguments of a method."""
    if out is not None:
        raise OpValueError(
            f"Variable.{method}: out= must be None, got {describe(out)}: a Variable is immutable and the "
            f"result is returned as a new Variable (for a NumPy result written into an array, "
            f"call np.{method}(v.value(), out=...))"
        )
    if extra:
        names = ", ".join(f"{name}={value!r}" for name, value in extra.items())
        hint = "; select the elements with tapegrad.where() first" if "where" in extra else ""
        raise OpTypeError(f"Variable.{method}: NumPy's argument {names} is not supported{hint}")


def _as(x: Variable, dtype: Any, method: str) -> Variable:
    if dtype is None:
        return x
    if isinstance(dtype, (bool, np.bool_)):  # v.sum(0, True): keepdims meant, in PyTorch's order
        raise OpTypeError(f"Variable.{method}: dtype={dtype!r} is not a dtype; the arguments are NumPy's "
                          f"(axis, dtype, out, keepdims): pass keepdims={dtype!r} by keyword")
    dtype = _dtypes.as_dtype(dtype, f"Variable.{method}")
    return x if dtype == x.dtype else cast(x, dtype)


def _reduction(prim: Any, method: str, takes_dtype: bool) -> Any:
    op = f"Variable.{method}"
    if takes_dtype:
        def reduce_with_dtype(self: Variable, axis: Any = None, dtype: Any = None, out: Any = None,
                              keepdims: bool = False, **numpy_only: Any) -> Variable:
            _numpy_only(method, out, numpy_only)
            return reduce_over(prim, _as(self, dtype, method), axis, keepdims, op)

        reduce_with_dtype.__name__ = method
        return reduce_with_dtype

    def reduce(self: Variable, axis: Any = None, out: Any = None, keepdims: bool = False,
               **numpy_only: Any) -> Variable:
        _numpy_only(method, out, numpy_only)
        return reduce_over(prim, self, axis, keepdims, op)

    reduce.__name__ = method
    return reduce


def _check_order(method: str, order: Any) -> None:
    if order != "C":
        raise OpValueError(f"Variable.{method}: only order='C' (row-major) is supported, got order={order!r}")


def _reshape(self: Variable, *shape: Any, order: str = "C") -> Variable:
    """A Variable of the same data with a new shape: ``v.reshape(2, 3)`` or ``v.reshape((2, 3))``."""
    _check_order("reshape", order)
    return reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)) else shape)


def _transpose(self: Variable, *axes: Any, perm: Any = None) -> Variable:
    """Permute the axes: ``v.transpose()``, ``v.transpose(1, 0)`` or ``v.transpose((1, 0))``."""
    if axes:
        perm = axes[0] if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)) else axes
    return transpose(self, axis_permutation(perm, self.ndim, "Variable.transpose", "axes", self.shape))


def _ravel(self: Variable, order: str = "C") -> Variable:
    """The elements as a 1-d Variable (differentiable)."""
    _check_order("ravel", order)
    return reshape(self, (-1,))


def _flatten(self: Variable, order: str = "C") -> Variable:
    """The elements as a 1-d Variable (differentiable)."""
    _check_order("flatten", order)
    return reshape(self, (-1,))


def _squeeze(self: Variable, axis: Any = None) -> Variable:
    """Remove axes of length 1 (all of them, or those in ``axis``)."""
    if axis is not None:
        axis = axis_tuple(axis, self.ndim, "Variable.squeeze", shape=self.shape)
    return squeeze(self, axis)


def _astype(self: Variable, dtype: Any) -> Variable:
    """``cast(v, dtype)``: differentiable between float dtypes."""
    return cast(self, dtype)


def _unbounded(x: Variable, low: bool) -> Any:
    """The bound that clips nothing, for a missing ``min`` or ``max``."""
    kind = x.dtype.kind
    if kind == "f":
        return -np.inf if low else np.inf
    if kind in "iu":
        info = np.iinfo(x.dtype)
        return int(info.min if low else info.max)
    return not low  # bool


def _clip(self: Variable, min: Any = None, max: Any = None, out: Any = None, **numpy_only: Any) -> Variable:
    """``clip_by_value(v, min, max)``; a bound of None does not clip (NumPy's ``clip``)."""
    _numpy_only("clip", out, numpy_only)
    if min is None and max is None:
        return nop(self)
    return clip_by_value(self, _unbounded(self, True) if min is None else min,
                         _unbounded(self, False) if max is None else max)


def install() -> None:
    cls = Variable
    cls.reshape = _reshape
    cls.T = property(lambda self: transpose(self))
    cls.transpose = _transpose
    cls.ravel = _ravel
    cls.flatten = _flatten
    cls.squeeze = _squeeze
    cls.astype = _astype
    cls.clip = _clip
    cls.sum = _reduction(reduce_sum_p, "sum", takes_dtype=True)
    cls.mean = _reduction(reduce_mean_p, "mean", takes_dtype=True)
    cls.prod = _reduction(reduce_prod_p, "prod", takes_dtype=True)
    cls.max = _reduction(reduce_max_p, "max", takes_dtype=False)
    cls.min = _reduction(reduce_min_p, "min", takes_dtype=False)
    cls.any = _reduction(reduce_any_p, "any", takes_dtype=False)
    cls.all = _reduction(reduce_all_p, "all", takes_dtype=False)


install()
