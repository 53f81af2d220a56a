"""Error types and message helpers shared by every package of tapegrad.

Every error raised for bad input names the op (or layer), the argument and the
shapes or dtypes involved, so that a user can fix the call without a debugger.
"""

from __future__ import annotations

import numpy as np


class TapegradError(Exception):
    """Base class of tapegrad's own exceptions."""


class OpValueError(TapegradError, ValueError):
    """A value (usually a shape) an op cannot work with."""


class OpTypeError(TapegradError, TypeError):
    """An argument of a type or dtype an op cannot work with."""


class TracingError(OpTypeError):
    """Something a compiled Function cannot do while it is traced."""


def control_flow_error(what: str) -> TracingError:
    return TracingError(
        f"{what} of a Variable computed inside a compiled Function: its value is not known when the graph "
        "is built, because Python control flow is fixed at trace time. Use tapegrad.where() for a choice "
        "that depends on values, compute the decision outside the Function, or return the value from it"
    )


class GradcheckError(TapegradError, AssertionError):
    """Raised by ``gradcheck`` when analytic and numerical derivatives differ."""


def describe(value: object) -> str:
    """A short description of a value for an error message: its shape and dtype."""
    if type(value).__name__ == "Variable":  # (by name: the errors module imports nothing of tapegrad)
        return f"Variable of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"ndarray of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (bool, int, float, np.generic)):
        return f"{type(value).__name__} {value!r}"
    return f"{type(value).__name__}"
