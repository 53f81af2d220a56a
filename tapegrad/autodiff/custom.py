"""custom_gradient: let a user define an op's backward pass.

    @tapegrad.custom_gradient
    def clip_gradient(x):
        def backward(dy):
            return tapegrad.clip_by_value(dy, -1.0, 1.0)
        return tapegrad.nop(x), backward

The forward runs unrecorded; one node is recorded whose VJP calls ``backward``.
``backward`` receives the output's cotangent as a Variable and returns one cotangent
per positional argument (None for "no gradient"). Written with tapegrad ops, it is
itself differentiable.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from numpy import asarray as _asarray

from ..errors import OpTypeError, OpValueError
from .primitive import Primitive, active_tapes, record
from .variable import Variable, wrap


def _custom_rule(g: Any, out: Any, needs: tuple, inputs: tuple, params: dict) -> list:
    result = params["backward"](g if g.__class__ is Variable else wrap(_asarray(g)))
    grads = list(result) if isinstance(result, (list, tuple)) else [result]
    if len(grads) != len(needs):
        raise OpValueError(f"custom_gradient {params['name']}: backward returned {len(grads)} gradient(s) "
                           f"for {len(needs)} argument(s)")
    if not active_tapes:  # nobody differentiates this pass: hand plain arrays back to the tape
        grads = [gi._value if isinstance(gi, Variable) else gi for gi in grads]
    return grads


def custom_gradient(f: Callable) -> Callable:
    """Decorator: ``f(*args)`` returns ``(output, backward)``; see the module docstring."""
    prim = Primitive(f"custom_gradient:{getattr(f, '__name__', 'f')}", lambda *a, **k: None)
    prim.defvjp_joint(_custom_rule)

    @functools.wraps(f)
    def wrapper(*args: Any) -> Variable:
        paused = active_tapes[:]
        active_tapes.clear()
        try:
            result = f(*args)
        finally:
            active_tapes[:] = paused
        if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
            raise OpTypeError(f"custom_gradient {f.__name__}: the function must return (output, backward)")
        y, backward = result
        out = wrap(y._value if isinstance(y, Variable) else _asarray(y))
        if active_tapes:
            vals = tuple(a._value if isinstance(a, Variable) else a for a in args)
            record(prim, tuple(args), vals, {"backward": backward, "name": f.__name__}, out)
        return out

    return wrapper
