"""Tracing: run a Python function once, eagerly, and record every primitive it applies.

While a :class:`Tracer` is active (``autodiff.state.tracers``), each primitive
application with a Variable argument is recorded as a graph node. Arguments of the
Function become graph inputs; any other Variable the function reads (layer weights
from its closure) becomes a capture, read by reference at every call, so an optimizer
update is seen without retracing. Tracing executes the function for real, so the
first call's results are the eager results.

A tape inside the traced function differentiates in its differentiable mode (see
``GradientTape.gradient``): the backward pass is made of primitives too and becomes
part of the graph. ``Variable.assign`` and ``Optimizer.update`` are recorded as effects.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np

from ..autodiff import state as _state
from ..autodiff.tape import flatten
from ..autodiff.variable import Variable, wrap
from ..errors import TracingError
from .ir import Effect, Graph, Node, Value

_shapes: dict[tuple, tuple] = {}


def shape_of(x: Any) -> tuple[int, ...]:
    """x's shape, as one shared tuple per distinct shape (a graph has many values of few shapes)."""
    shape = x.shape if hasattr(x, "shape") else np.shape(x)
    return _shapes.setdefault(shape, shape)


_tracer_serials = itertools.count(1)


class Tracer:
    """Records a traced function's primitive applications as graph nodes.

    A Variable the trace computes (or takes as an argument) carries its graph value in its
    ``_traced`` slot, tagged with this tracer's serial number: the trace keeps no table of
    the Variables it saw, so the eager values die as the function drops them, as in eager
    mode. Captured Variables (read from the closure) are kept by their graph values."""

    def __init__(self, allow_new_variables: bool) -> None:
        self.serial = next(_tracer_serials)
        self.capture_of: dict[int, Value] = {}  # id(Variable) -> capture (the Value keeps it alive)
        self.nodes: list[Node] = []
        self.inputs: list[Value] = []
        self.captures: list[Value] = []
        self.allow_new_variables = allow_new_variables
        # node value id -> the Variable an impure node (a random draw) computed while tracing
        self.variable_of: dict[int, Variable] = {}

    # -- values ------------------------------------------------------------------------
    def placeholder(self, var: Variable) -> Value:
        v = Value("input", shape_of(var._value), np.result_type(var._value), len(self.inputs))
        var._traced = (self.serial, v)
        self.inputs.append(v)
        return v

    def value_of(self, var: Variable) -> Value:
        mark = getattr(var, "_traced", None)
        if mark is not None and mark[0] == self.serial:
            return mark[1]
        v = self.capture_of.get(id(var))
        if v is None:
            v = Value("capture", shape_of(var._value), np.result_type(var._value), var)
            self.capture_of[id(var)] = v
            self.captures.append(v)
        return v

    def is_traced(self, var: Variable) -> bool:
        """Whether ``var`` is a value of this trace (an argument or a result of its ops)."""
        mark = getattr(var, "_traced", None)
        return mark is not None and mark[0] == self.serial

    @staticmethod
    def const(x: Any) -> Value:
        return Value("const", shape_of(x), np.result_type(x), x)

    # -- recording -----------------------------------------------------------------------
    def record(self, prim: Any, args: tuple, vals: Any, params: dict | None, out: Variable) -> None:
        inputs = []
        has_variable = False
        for a, v in zip(args, vals):
            if a.__class__ is Variable:
                inputs.append(self.value_of(a))
                has_variable = True
            else:
                inputs.append(self.const(v))
        if not has_variable:
            return  # a constant result: used later, it is captured like any other Variable
        result = out._value
        value = Value("node", shape_of(result), result.dtype)  # (an ndarray or a NumPy scalar)
        node = Node(prim, tuple(inputs), dict(params) if params else None, value)
        value.payload = node
        out._traced = (self.serial, value)
        if prim.impure:
            self.variable_of[value.id] = out
        self.nodes.append(node)

    def effect(self, name: str, run: Callable[..., None], describe: str, inputs: list[Any]) -> None:
        """Record a side effect; ``run`` receives the current values of ``inputs``."""
        values = [self.value_of(a) if isinstance(a, Variable) else self.const(a) for a in inputs]
        self.nodes.append(Node(None, values, None, None, Effect(name, run, describe)))

    def new_variable(self, var: Variable) -> None:
        if not self.allow_new_variables:
            raise TracingError(
                "a compiled Function created a Variable while it was retraced: Variables may be created only "
                "on the first trace (create them outside the function, or in a layer's build)"
            )


def current() -> Tracer | None:
    return _state.tracer()


def run_effect(name: str, fn: Callable[..., None], inputs: list[Any], describe: str) -> None:
    """Run ``fn(*values of inputs)`` now; inside a compiled Function also record it as an
    effect of the graph, so that it runs at every call. ``fn`` runs with nothing recording,
    so whatever it does is not recorded twice."""
    values = [a._value if isinstance(a, Variable) else a for a in inputs]
    tracer = _state.tracer()
    with _state.paused():
        fn(*values)
    if tracer is not None:
        tracer.effect(name, fn, describe, inputs)


# -- running a function under a tracer ----------------------------------------------------
class _ArrayLeaf:
    """Marks the position of an array argument among the static parts of a cache key."""

    def __repr__(self) -> str:
        return "<array>"


ARRAY_LEAF = _ArrayLeaf()


def flatten_args(args: tuple, kwargs: dict) -> tuple[list[Any], list[Any], Callable[[list], tuple]]:
    """Split arguments into array leaves (ndarrays and Variables, in nested lists/tuples/dicts)
    and the static rest. Returns (arrays, static key parts, rebuild(arrays) -> (args, kwargs))."""
    arrays: list[Any] = []
    static: list[Any] = []

    def walk(x: Any) -> Callable[[list], Any]:
        if isinstance(x, (Variable, np.ndarray, np.generic)):
            i = len(arrays)
            arrays.append(x)
            static.append(ARRAY_LEAF)  # where the array sits: f(a, None) is not f(None, a)
            return lambda leaves: leaves[i]
        if isinstance(x, (list, tuple)):
            parts = [walk(item) for item in x]
            kind = type(x) if type(x) in (list, tuple) else list
            static.append((kind.__name__, len(x)))
            return lambda leaves: kind(p(leaves) for p in parts)
        if isinstance(x, dict):
            keys = list(x)
            parts_d = [walk(x[k]) for k in keys]
            static.append(("dict", tuple(keys)))
            return lambda leaves: {k: p(leaves) for k, p in zip(keys, parts_d)}
        static.append(x)
        return lambda leaves: x

    arg_parts = [walk(a) for a in args]
    kw_keys = sorted(kwargs)
    kw_parts = [walk(kwargs[k]) for k in kw_keys]
    static.append(tuple(kw_keys))

    def rebuild(leaves: list) -> tuple:
        return tuple(p(leaves) for p in arg_parts), {k: p(leaves) for k, p in zip(kw_keys, kw_parts)}

    return arrays, static, rebuild


def flatten_outputs(result: Any, where: str) -> tuple[list[Variable], Callable[[list], Any]]:
    """The Variables a traced function returned, and how to rebuild its result from them."""
    return flatten(result, f"{where} (a compiled Function returns Variables)", "the result", TracingError)


def trace(fn: Callable, args: tuple, kwargs: dict, allow_new_variables: bool,
          where: str) -> tuple[Graph, Any, Callable[[list], Any], Tracer]:
    """Trace ``fn(*args, **kwargs)``. Returns the graph, the eager result, the function
    that rebuilds the result structure from a list of output Variables, and the tracer."""
    arrays, _, rebuild_args = flatten_args(args, kwargs)
    tracer = Tracer(allow_new_variables)
    placeholders = []
    for a in arrays:
        var = a if isinstance(a, Variable) else wrap(a)
        if getattr(var, "_traced", None) is not None:  # passed twice, or a value of an enclosing trace
            var = wrap(var._value)
        tracer.placeholder(var)
        placeholders.append(var)
    call_args, call_kwargs = rebuild_args(placeholders)
    try:
        with _state.tracing_scope(tracer):  # an outer tape sees the whole call as one node, recorded by the caller
            result = fn(*call_args, **call_kwargs)
        outputs, rebuild_out = flatten_outputs(result, where)
        graph = Graph(tracer.inputs, tracer.captures, tracer.nodes, [tracer.value_of(o) for o in outputs])
    finally:
        # the caller's Variables (arguments, results) do not keep pointing into the graph
        for var in placeholders:
            unmark(var, tracer.serial)
    for var in outputs:
        unmark(var, tracer.serial)
    return graph, result, rebuild_out, tracer


def unmark(var: Variable, serial: int) -> None:
    """Forget that ``var`` is a value of the trace ``serial`` (not of an enclosing one)."""
    mark = getattr(var, "_traced", None)
    if mark is not None and mark[0] == serial:
        del var._traced
