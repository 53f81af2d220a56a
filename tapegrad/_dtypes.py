"""Dtype policy: which values become which NumPy dtype.

* Python numbers and nested lists become the default float dtype (float32 unless a
  ``NeuralNetworks(dtype=...)`` or the ``dtype`` argument says otherwise).
* NumPy float arrays keep their dtype; integer and bool values stay integer/bool.
* Strings, None, objects and complex numbers are rejected with a message that names
  the op and the argument.
"""

from __future__ import annotations

import numpy as np

from .errors import OpTypeError

DEFAULT_FLOAT = np.dtype(np.float32)

_ACCEPTED_KINDS = "biuf"  # bool, signed int, unsigned int, float


def as_dtype(dtype: object, where: str = "dtype") -> np.dtype:
    """Normalise a dtype given as a NumPy dtype, a type or its name."""
    try:
        dt = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError as exc:
        raise OpTypeError(f"{where}: {dtype!r} is not a NumPy dtype") from exc
    if dt.kind not in _ACCEPTED_KINDS:
        raise OpTypeError(f"{where}: dtype {dt} is not supported (use a float, int or bool dtype)")
    return dt


def to_array(value: object, dtype: np.dtype | None, default_float: np.dtype, op: str, arg: str) -> np.ndarray:
    """Convert a Python number, nested list or NumPy array into an ndarray.

    Python numbers and lists take ``default_float`` (bool stays bool); NumPy values keep
    their dtype. ``dtype`` overrides both. The result may share memory with ``value``;
    callers that must own their data copy it.
    """
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, np.generic):  # before float: np.float64 is a subclass of float, and keeps its dtype
        arr = np.asarray(value)
    elif isinstance(value, bool):
        arr = np.asarray(value)
    elif isinstance(value, (int, float)):
        arr = np.asarray(value, dtype=default_float if dtype is None else dtype)
    elif isinstance(value, (list, tuple)):
        try:
            arr = np.asarray(value)
        except ValueError as exc:  # ragged nested lists
            raise OpTypeError(f"{op}: argument {arg} is a ragged nested list: {exc}") from None
        if arr.dtype.kind in "iuf" and dtype is None:
            arr = arr.astype(default_float)
        elif arr.dtype.kind == "b" and len(arr.shape) and arr.size == 0:
            arr = arr.astype(default_float)
        elif arr.size == 0 and dtype is None:
            arr = arr.astype(default_float)
    else:
        raise OpTypeError(
            f"{op}: argument {arg} must be a Variable, NumPy array, number or nested list, "
            f"got {type(value).__name__}"
        )
    if arr.dtype.kind not in _ACCEPTED_KINDS:
        raise OpTypeError(
            f"{op}: argument {arg} has dtype {arr.dtype}, which is not a number dtype "
            f"(expected float, int or bool)"
        )
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr


def is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f"
