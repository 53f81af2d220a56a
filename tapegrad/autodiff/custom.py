"""custom_gradient: let a user define an op's backward pass.

    @tapegrad.custom_gradient
    def clip_gradient(x):
        def backward(dy):
            return tapegrad.clip_by_value(dy, -1.0, 1.0)
        return tapegrad.nop(x), backward

The forward runs unrecorded by tapes; one ``custom`` node is recorded whose VJP calls
``backward``. ``backward`` receives the output's cotangent as a Variable and returns one
cotangent per positional argument (None for "no gradient"). Written with tapegrad ops, it
is itself differentiable.

Inside a compiled Function the forward's ops are traced into the graph (so the value is
computed at every call), and the node takes the forward's output as its first input. A
graph does not keep Python closures of one trace: when a traced graph is differentiated
(replayed under a tape), the node's VJP runs the forward again on the replayed inputs to
get a ``backward`` of its own; the compiler merges that recomputation with the forward.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from numpy import asarray as _asarray

from ..errors import OpTypeError, OpValueError
from . import primitive as _primitive
from . import state as _state
from .primitive import Primitive, record
from .variable import Variable, wrap


def run_forward(f: Callable, args: tuple) -> tuple[Variable, Callable]:
    """``f(*args)`` with no tape recording (a tracer still records its ops)."""
    with _state.scope((), None, ()):  # (a forward trace differentiates the custom op by its VJP)
        result = f(*args)
    if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
        raise OpTypeError(f"custom_gradient {getattr(f, '__name__', 'f')}: the function must return "
                          f"(output, backward)")
    y, backward = result
    if not isinstance(y, Variable):
        y = wrap(_asarray(y))
    return y, backward


def _custom_rule(g: Any, out: Any, needs: tuple, inputs: tuple, params: dict) -> list:
    """VJP of the ``custom`` node: inputs are ``(forward output, *args)``."""
    backward = params.get("backward")
    args = inputs[1:]
    if backward is None:  # a node of a traced graph: rebuild the closure on these inputs
        args = tuple(a if isinstance(a, Variable) else wrap(_asarray(a)) for a in args)
        _, backward = run_forward(params["fn"], args)
    result = backward(g if g.__class__ is Variable else wrap(_asarray(g)))
    grads = list(result) if isinstance(result, (list, tuple)) else [result]
    if len(grads) != len(args):
        raise OpValueError(f"custom_gradient {params['name']}: backward returned {len(grads)} gradient(s) "
                           f"for {len(args)} argument(s)")
    if _state.current() is None:  # nobody differentiates this pass: hand plain arrays back to the tape
        grads = [gi._value if isinstance(gi, Variable) else gi for gi in grads]
    return [None, *grads]


# The forward value passes through unchanged; the gradient goes to the arguments only.
custom_p = Primitive("custom", lambda y, *args, **params: y, ("y", "args"))
custom_p.defvjp_joint(_custom_rule)


def custom_gradient(f: Callable) -> Callable:
    """Decorator: ``f(*args)`` returns ``(output, backward)``; see the module docstring."""
    name = getattr(f, "__name__", "f")

    @functools.wraps(f)
    def wrapper(*args: Any) -> Variable:
        y, backward = run_forward(f, args)
        out = wrap(y._value)
        inputs = (y, *args)
        vals = tuple(a._value if isinstance(a, Variable) else a for a in inputs)
        state = _state.current()
        if state is not None:
            if state.tapes:
                record(custom_p, inputs, vals, {"fn": f, "backward": backward, "name": name}, out, state.tapes)
            if state.tracers:
                # the graph keeps the function, not this trace's closure (see the module docstring)
                state.tracers[-1].record(custom_p, inputs, vals, {"fn": f, "name": name}, out)
            if state.forward:  # forward mode: the tangent from the custom VJP, by transposition
                _primitive.forward_hook(custom_p, inputs, vals, {"fn": f, "backward": backward, "name": name},
                                        out, state)
        return out

    return wrapper
