"""Checks of public ops' arguments, with errors that name the public op and its argument.

:func:`number` converts a scalar parameter (``negative_slope``, ``rate``) to a float and
:func:`integer` an integer one (``depth``): a float is an error there, never truncated.

Errors of public ops that are made of several primitives name the public op:
``scale(alpha, x)`` is ``mul(alpha, x)``: a bad ``alpha`` fails inside ``mul``, whose message
would blame "mul: argument x". The :func:`composite` decorator catches such a failure of
an inner primitive and explains it in the public op's own terms: it checks each array
operand (by the public op's argument names) the way a primitive checks a constant, then
whether the operands broadcast together. Only a failed call pays for this; a successful
one costs one extra Python call.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, TypeVar

import numpy as np

from .. import _dtypes
from ..autodiff import primitive as _primitive
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError, TapegradError

F = TypeVar("F", bound=Callable[..., Any])


def check_operand(value: Any, op: str, arg: str) -> tuple[int, ...]:
    """Check that ``value`` can be an operand of ``op`` (a Variable, a number, a number-dtype
    array or a nested list of numbers); return its shape. Errors name ``op`` and ``arg``."""
    if isinstance(value, Variable):
        return value.shape
    if isinstance(value, (bool, int, float)):
        return ()
    if isinstance(value, (np.ndarray, np.generic, list, tuple)):
        return _dtypes.to_array(value, None, _dtypes.DEFAULT_FLOAT, op, arg).shape
    raise OpTypeError(f"{op}: argument {arg} must be a Variable, NumPy array or number, got {type(value).__name__}")


def number(value: Any, op: str, arg: str) -> float:
    """A real scalar parameter as a float; anything else is an error naming ``op`` and ``arg``."""
    if isinstance(value, (bool, np.bool_)) or np.ndim(value) != 0:
        raise OpTypeError(f"{op}: argument {arg} must be a number, got {_shown(value)}")
    try:
        return float(value)
    except TapegradError:
        raise  # e.g. float() of a value traced by a compiled Function: its own message
    except (TypeError, ValueError):
        raise OpTypeError(f"{op}: argument {arg} must be a number, got {_shown(value)}") from None


def integer(value: Any, op: str, arg: str) -> int:
    """An integer parameter (a Python or NumPy integer, not a bool) as an int; a float is an
    error naming ``op`` and ``arg``, never truncated."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    raise OpTypeError(f"{op}: argument {arg} must be an int, got {_shown(value)}")


def operand(x: Any, op: str, arg: str = "x") -> Any:
    """An array argument as the op will use it: a (nested) list or tuple that holds Variables
    becomes their differentiable stack (with their dtype); anything else is returned as is."""
    if x.__class__ is list or x.__class__ is tuple:
        stacked = _primitive.stack_nested(x, op, arg)
        if stacked is not None:
            return stacked
    return x


def shape_tuple(shape: Any, op: str, arg: str = "shape", allow_minus_one: bool = False) -> tuple[int, ...]:
    """A shape argument (an int, a sequence of ints, or an integer array or Variable) as a tuple
    of ints >= 0 (one -1 allowed with ``allow_minus_one``). A float is an error, never truncated;
    a Variable computed inside a compiled Function is refused (its value is unknown then)."""
    if isinstance(shape, Variable):
        shape._check_untraced(f"{op}: argument {arg}")
        shape = shape._value
    if isinstance(shape, np.ndarray):
        if shape.dtype.kind not in "iu" or shape.ndim > 1:
            raise OpTypeError(f"{op}: argument {arg} must be ints, got {_shown(shape)}")
        shape = shape.tolist()
    items = (shape,) if not isinstance(shape, (tuple, list)) else shape
    out = []
    for n in items:
        if not isinstance(n, (int, np.integer)) or isinstance(n, (bool, np.bool_)):
            raise OpTypeError(f"{op}: argument {arg} must be a sequence of ints, got {shape!r}")
        out.append(int(n))
    if any(n < 0 and not (allow_minus_one and n == -1) for n in out) or out.count(-1) > 1:
        raise OpValueError(f"{op}: argument {arg} {tuple(out)} has a negative size"
                           + (" (only one -1 is allowed)" if allow_minus_one else ""))
    return tuple(out)


def _shown(value: Any) -> str:
    if isinstance(value, (Variable, np.ndarray)):
        return f"{type(value).__name__} of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


def composite(*operands: str, broadcast: bool = True, name: str | None = None) -> Callable[[F], F]:
    """Decorate a public op made of several primitives.

    ``operands`` are the names of its array arguments; with ``broadcast`` they must
    broadcast together. ``name`` is the op's public name (default: the function's)."""

    def decorate(fn: F) -> F:
        op = name or fn.__name__
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def public_op(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except TapegradError as exc:
                if str(exc).startswith(f"{op}:"):
                    raise  # already in the public op's terms
                raise _explain(exc, op, signature.bind(*args, **kwargs).arguments, operands, broadcast) from None

        return public_op  # type: ignore[return-value]

    return decorate


def _explain(exc: Exception, op: str, arguments: dict[str, Any], operands: tuple[str, ...],
             broadcast: bool) -> Exception:
    shapes = {arg: check_operand(arguments[arg], op, arg) for arg in operands if arg in arguments}
    if broadcast and len(shapes) > 1:
        try:
            np.broadcast_shapes(*shapes.values())
        except ValueError:
            listed = " and ".join(f"{arg} {shape}" for arg, shape in shapes.items())
            return OpValueError(f"{op}: shapes cannot be broadcast together: {listed}")
    # Nothing wrong with the operands themselves: say which op failed, and where.
    cls = OpTypeError if isinstance(exc, TypeError) else OpValueError
    return cls(f"{op}: {exc}")
