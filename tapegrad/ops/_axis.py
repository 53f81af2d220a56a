"""Validation of ``axis`` arguments, shared by every op that takes one.

An axis is a Python or NumPy integer (or a 0-d integer array or Variable); bools are
rejected (``True`` is not an axis) and so are floats, which are never truncated:
``reduce_sum(x, axis=1.7)`` must not silently sum over axis 1. An axis lies in
``[-ndim, ndim)``, and a tuple (or list) of axes names each axis once. Errors name the op,
the argument, its value and the rank (and shape, when given) it was checked against.

* :func:`axis_index` checks one axis and returns it in ``range(ndim)``;
* :func:`axis_tuple` checks None, one axis or a tuple of them and returns None or a
  sorted tuple of axes in ``range(ndim)``;
* :func:`axis_permutation` checks a ``perm`` argument (transpose).

An op that inserts an axis (``expand_dims``, ``stack``) checks against ``ndim + 1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import OpTypeError, OpValueError


def _integer(item: Any) -> int | None:
    """``item`` as an int if it is an integer (not a bool), else None."""
    if isinstance(item, int):
        return None if isinstance(item, bool) else int(item)
    if isinstance(item, np.integer):
        return int(item)
    dtype = getattr(item, "dtype", None)  # a 0-d integer ndarray or Variable
    if dtype is not None and dtype.kind in "iu" and np.ndim(item) == 0:
        return int(item)
    return None


def _type_error(axis: Any, op: str, arg: str, what: str) -> OpTypeError:
    if isinstance(axis, np.ndarray):
        shown = f"ndarray {axis.tolist()!r} of dtype {axis.dtype}"
    else:  # (a NumPy scalar as "float64 0.5", not "float64 np.float64(0.5)")
        shown = f"{type(axis).__name__} {axis if isinstance(axis, np.generic) else repr(axis)}"
    return OpTypeError(f"{op}: argument {arg} must be {what}, got {shown}")


def _where(ndim: int, shape: Any) -> str:
    return f"an input of rank {ndim}" + ("" if shape is None else f" (shape {tuple(shape)})")


def axis_index(axis: Any, ndim: int, op: str, arg: str = "axis", shape: Any = None) -> int:
    """Check one axis of an input of rank ``ndim`` and return it in ``range(ndim)``.

    ``shape`` (optional) is the input's shape, quoted in the error message."""
    if axis.__class__ is int and -ndim <= axis < ndim:  # the common case
        return axis + ndim if axis < 0 else axis
    a = _integer(axis)
    if a is None:
        raise _type_error(axis, op, arg, "an int")
    if not -ndim <= a < ndim:
        raise OpValueError(f"{op}: argument {arg}={axis!r}: axis {a} is out of range for {_where(ndim, shape)}")
    return a + ndim if a < 0 else a


def axis_tuple(axis: Any, ndim: int, op: str, arg: str = "axis", shape: Any = None) -> tuple[int, ...] | None:
    """Check None, one axis or a tuple (or list) of axes of an input of rank ``ndim``.

    Returns None for None, else a sorted tuple of distinct axes in ``range(ndim)``."""
    if axis is None:
        return None
    if axis.__class__ is int and -ndim <= axis < ndim:  # the common case
        return (axis + ndim if axis < 0 else axis,)
    items = axis
    if not isinstance(axis, (tuple, list)):
        if np.ndim(axis) == 1:  # a 1-d integer array (or Variable) of axes
            value = getattr(axis, "_value", axis)
            if not (isinstance(value, np.ndarray) and value.dtype.kind in "iu"):
                raise _type_error(axis, op, arg, "an int or a tuple of ints")
            items = value.tolist()
        else:
            items = (axis,)
    out = []
    for item in items:
        a = _integer(item)
        if a is None:
            raise _type_error(axis, op, arg, "an int or a tuple of ints")
        if not -ndim <= a < ndim:
            raise OpValueError(f"{op}: argument {arg}={axis!r}: axis {a} is out of range for "
                               f"{_where(ndim, shape)}")
        out.append(a + ndim if a < 0 else a)
    if len(set(out)) != len(out):
        repeated = next(a for a in out if out.count(a) > 1)
        raise OpValueError(f"{op}: argument {arg}={axis!r} names axis {repeated} more than once "
                           f"(axes of {_where(ndim, shape)})")
    return tuple(sorted(out))


def axis_permutation(perm: Any, ndim: int, op: str, arg: str = "perm", shape: Any = None) -> tuple[int, ...] | None:
    """Check a permutation of the ``ndim`` axes (None: reversed, returned as None); return it
    with negative axes counted from the end."""
    if perm is None:
        return None
    items = list(perm) if isinstance(perm, (tuple, list)) or np.ndim(perm) == 1 else [perm]
    out = []
    for item in items:
        a = _integer(item)
        if a is None:
            raise _type_error(perm, op, arg, "a tuple of ints")
        out.append(a + ndim if -ndim <= a < 0 else a)
    if sorted(out) != list(range(ndim)):
        raise OpValueError(f"{op}: argument {arg}={perm!r} is not a permutation of the axes of "
                           f"{_where(ndim, shape)}")
    return tuple(out)
