"""Rindow's ``$mo->toString()`` format: ``[2,3]``, ``6``, ``[[1,2.5],[3,4]]``.

``str(v)`` prints a Variable the way NumPy prints its array; ``to_string(v)`` prints
it the way the seed documents do.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _scalar(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (np.integer, int)):
        return str(int(x))
    return np.format_float_positional(x, trim="-")


def _nested(a: np.ndarray) -> str:
    if a.ndim == 0:
        return _scalar(a[()])
    return "[" + ",".join(_nested(item) for item in a) + "]"


def to_string(x: Any) -> str:
    """Format a Variable, array or number as Rindow's MatrixOperator::toString does."""
    from .autodiff.variable import Variable

    value = x.value() if isinstance(x, Variable) else np.asarray(x)
    return _nested(value)
