"""Checks of constructor arguments (hyperparameters) shared by layers, losses, optimizers
and learning-rate schedules.

Each check returns the value as a plain Python ``float``, ``int`` or ``bool``, or raises
:class:`~tapegrad.errors.OpValueError` / :class:`~tapegrad.errors.OpTypeError` whose
message names the owner (class and name), the argument and the value. A loaded model
file goes through the same constructors, so a file cannot set a NaN, an infinite, a
negative or an absurdly large hyperparameter either.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import OpTypeError, OpValueError

#: The largest size of one dimension (units, vocabulary, shape entries): int32's range.
MAX_DIM = 2**31 - 1
#: The largest rank of a declared shape (NumPy's limit is 64; files allow 32).
MAX_RANK = 32
#: The largest magnitude of a real hyperparameter: float32's largest number, since the
#: kernels multiply float32 data by it (a larger one is infinite there).
MAX_REAL = float(np.finfo(np.float32).max)
#: The most inputs a multi-input layer may declare.
MAX_INPUTS = 1024

_NUMBER = (int, float, np.integer, np.floating)


def show(value: Any) -> str:
    """A value for an error message, cut short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low == 0.0 and low_open:
        return "positive (a finite number > 0)"
    if low is not None:
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a finite number {'<' if high_open else '<='} {high:g}"
    return "a finite number"


def real(
    owner: str,
    arg: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A real number, finite in float32 (see :data:`MAX_REAL`), optionally in a range
    (``low_open``/``high_open`` exclude the bound)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _NUMBER):
        raise OpTypeError(f"{owner}: {arg} must be a number, got {type(value).__name__} {show(value)}")
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x) or (low is not None and (x < low or (low_open and x == low))) or (
        high is not None and (x > high or (high_open and x == high))
    ):
        raise OpValueError(f"{owner}: {arg} must be {_range_text(low, high, low_open, high_open)}, "
                           f"got {show(value)}")
    if abs(x) > MAX_REAL:
        raise OpValueError(f"{owner}: {arg} must be at most {MAX_REAL:.4g} in magnitude (the largest float32; "
                           f"the kernels compute in float32), got {show(value)}")
    return x


def epsilon(owner: str, value: Any, dtype: Any = np.float32, arg: str = "epsilon") -> float:
    """A positive number that stays positive in ``dtype`` (at least its smallest normal
    number): an epsilon that rounds to 0 would let a denominator be 0."""
    x = real(owner, arg, value, low=0.0, low_open=True)
    tiny = float(np.finfo(dtype).tiny)
    if x < tiny:
        raise OpValueError(f"{owner}: {arg} must be at least {tiny:.3g} (the smallest normal {np.dtype(dtype).name}; "
                           f"a smaller one rounds to 0 or loses precision), got {show(value)}")
    return x


def integer(owner: str, arg: str, value: Any, *, low: int | None = None, high: int | None = MAX_DIM) -> int:
    """An int (integral floats are accepted) in ``[low, high]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _NUMBER):
        raise OpTypeError(f"{owner}: {arg} must be an int, got {type(value).__name__} {show(value)}")
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or not float(value).is_integer():
            raise OpValueError(f"{owner}: {arg} must be an int, got {show(value)}")
    n = int(value)
    if (low is not None and n < low) or (high is not None and n > high):
        if low == 1 and high == MAX_DIM:
            what = f"a positive int (at most {MAX_DIM})"
        elif low is not None and high is not None:
            what = f"an int in [{low}, {high}]"
        elif low is not None:
            what = f"an int >= {low}"
        else:
            what = f"an int <= {high}"
        raise OpValueError(f"{owner}: {arg} must be {what}, got {show(value)}")
    return n


def flag(owner: str, arg: str, value: Any) -> bool:
    """A bool (0 and 1 are accepted)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise OpTypeError(f"{owner}: {arg} must be True or False, got {type(value).__name__} {show(value)}")


def optional_str(owner: str, arg: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise OpTypeError(f"{owner}: {arg} must be a string or None, got {type(value).__name__} {show(value)}")


def shape(owner: str, arg: str, value: Any, *, free: bool = True, minus_one: bool = False) -> tuple:
    """A shape: a sequence of at most :data:`MAX_RANK` sizes in ``[0, MAX_DIM]``, with
    ``None`` (``free``) for an unknown size and ``-1`` (``minus_one``) for an inferred
    one; an int is a shape of rank 1."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = (value,)
    elif isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise OpTypeError(f"{owner}: {arg} must be a sequence of ints, got {type(value).__name__} {show(value)}")
    if len(value) > MAX_RANK:
        raise OpValueError(f"{owner}: {arg} has {len(value)} dimensions, more than {MAX_RANK}")
    out: list[int | None] = []
    for n in value:
        if n is None and free:
            out.append(None)
            continue
        if minus_one and isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_)) and n == -1:
            out.append(-1)
            continue
        if n is None or isinstance(n, (bool, np.bool_)) or not isinstance(n, _NUMBER):
            raise OpTypeError(f"{owner}: {arg} must be a sequence of ints, got {show(value)}")
        out.append(integer(owner, f"each entry of {arg}", n, low=0))
    return tuple(out)


def axis(owner: str, arg: str, value: Any) -> int:
    """An axis: an int in ``[-MAX_RANK - 1, MAX_RANK]`` (checked against the inputs' rank
    when the layer is built)."""
    return integer(owner, arg, value, low=-MAX_RANK - 1, high=MAX_RANK)
