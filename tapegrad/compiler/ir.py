"""The compiler's intermediate representation: a graph of the eager primitives.

A :class:`Graph` is a list of :class:`Node` in execution order over SSA
:class:`Value` s. A value is a graph input (an argument of the Function), a capture
(a Variable the function read from its closure: read by reference at every call), a
constant, or the output of a node. Nodes apply a primitive (the same objects the tape
records, with the same VJP rules) or perform an effect (an in-place assignment or an
optimizer update), which is never removed or reordered.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np

_ids = itertools.count()


class Value:
    __slots__ = ("id", "kind", "shape", "dtype", "payload")

    def __init__(self, kind: str, shape: tuple[int, ...], dtype: np.dtype, payload: Any = None) -> None:
        self.id = next(_ids)
        self.kind = kind  # "input", "capture", "const" or "node"
        self.shape = shape
        self.dtype = dtype
        self.payload = payload  # input index, captured Variable, constant value, or producing Node

    def __repr__(self) -> str:
        return f"%{self.id}"


# The params of a node without parameters: one shared dict, never written to.
_NO_PARAMS: dict = {}


class Node:
    __slots__ = ("op", "inputs", "params", "output", "effect")

    def __init__(self, op: Any, inputs: list[Value], params: dict | None, output: Value | None,
                 effect: Effect | None = None) -> None:
        self.op = op  # a Primitive, or a Fused group after fusion
        self.inputs = inputs
        self.params = params or _NO_PARAMS
        self.output = output
        self.effect = effect

    @property
    def name(self) -> str:
        return self.effect.name if self.effect is not None else self.op.name


class Effect:
    """A side effect recorded while tracing: ``run(*input_values)`` performs it."""

    __slots__ = ("name", "run", "describe")

    def __init__(self, name: str, run: Callable[..., None], describe: str) -> None:
        self.name = name
        self.run = run
        self.describe = describe


class Fused:
    """A chain of elementwise primitives computed into one buffer (see passes.fuse)."""

    __slots__ = ("name", "steps")

    def __init__(self, steps: list[tuple[Any, list, dict]]) -> None:
        # steps: (primitive, inputs, params) where an input is a Value or the marker ACC
        self.steps = steps
        self.name = "fused[" + ", ".join(p.name for p, _, _ in steps) + "]"


class Stacked:
    """Horizontal batching (see passes.batch): the same elementwise chain applied to many
    values, computed once over a stacked array. Its output is the stack of the results;
    ``Row`` nodes name each member's result (a view of one row)."""

    __slots__ = ("name", "steps", "count")

    def __init__(self, steps: list[tuple[Any, list, dict]], count: int) -> None:
        # steps: (primitive, inputs, params); an input is a constant Value, ACC, or VARYING
        self.steps = steps
        self.count = count
        self.name = f"stacked[{count} x " + ", ".join(p.name for p, _, _ in steps) + "]"


class Row:
    """Row ``index`` of a stacked value."""

    name = "row"


ROW = Row()


class _Varying:
    def __repr__(self) -> str:
        return "each"


VARYING = _Varying()  # in a Stacked chain: the member's own input


class _Acc:
    def __repr__(self) -> str:
        return "acc"


ACC = _Acc()  # the running value of a fused chain


class Graph:
    def __init__(self, inputs: list[Value], captures: list[Value], nodes: list[Node], outputs: list[Value]) -> None:
        self.inputs = inputs
        self.captures = captures
        self.nodes = nodes
        self.outputs = outputs

    def copy(self) -> Graph:
        """A copy whose nodes and node values can be rewritten without touching this graph
        (inputs, captures and constants are shared)."""
        mapping: dict[int, Value] = {}

        def m(v: Value) -> Value:
            return mapping.get(v.id, v)

        nodes = []
        for node in self.nodes:
            output = None
            if node.output is not None:
                output = Value("node", node.output.shape, node.output.dtype)
                mapping[node.output.id] = output
            clone = Node(node.op, [m(i) for i in node.inputs], dict(node.params), output, node.effect)
            if output is not None:
                output.payload = clone
            nodes.append(clone)
        return Graph(self.inputs, self.captures, nodes, [m(v) for v in self.outputs])

    def listing(self, title: str = "graph") -> str:
        """A readable listing: one line per node, with shapes and dtypes."""
        lines = [f"{title}("
                 + ", ".join(f"{v!r}: {_type(v)}" for v in self.inputs) + ")"]
        for v in self.captures:
            var = v.payload
            label = f" {var.name!r}" if getattr(var, "name", None) else ""
            lines.append(f"  {v!r} = capture{label}: {_type(v)}")
        for node in self.nodes:
            args = ", ".join(_show(i) for i in node.inputs)
            params = "".join(f", {k}={_param(p)}" for k, p in node.params.items())
            if node.effect is not None:
                lines.append(f"  {node.effect.describe}({args})")
            elif isinstance(node.op, Stacked):
                steps = "; ".join(
                    f"{p.name}(" + ", ".join(_show(i) for i in ins) + ")" for p, ins, _ in node.op.steps)
                lines.append(f"  {node.output!r} = stacked over ({', '.join(_show(i) for i in node.inputs)}) "
                             f"{{{steps}}}: {_type(node.output)}")
            elif isinstance(node.op, Fused):
                steps = "; ".join(
                    f"{p.name}(" + ", ".join(_show(i) for i in ins)
                    + "".join(f", {k}={_param(x)}" for k, x in ps.items()) + ")"
                    for p, ins, ps in node.op.steps)
                lines.append(f"  {node.output!r} = fused {{{steps}}}: {_type(node.output)}")
            else:
                lines.append(f"  {node.output!r} = {node.op.name}({args}{params}): {_type(node.output)}")
        lines.append("  return " + ", ".join(_show(v) for v in self.outputs))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.listing()


def _type(v: Value) -> str:
    return f"{v.dtype}{list(v.shape)}"


def _show(v: Any) -> str:
    if isinstance(v, Value) and v.kind == "const":
        c = v.payload
        if np.ndim(c) == 0:
            return repr(c.item() if hasattr(c, "item") else c)
        return f"const{list(np.shape(c))}"
    return repr(v)


def _param(p: Any) -> str:
    if isinstance(p, np.ndarray):
        return f"array{list(p.shape)}"
    if isinstance(p, np.dtype):
        return str(p)
    if isinstance(p, tuple) and any(isinstance(i, np.ndarray) for i in p):
        return "(" + ", ".join(_param(i) for i in p) + ")"
    return repr(p)
