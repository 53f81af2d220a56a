"""vmap: run a function written for one example on a batch of them, with batched ops.

``vmap(f, in_axes=0, out_axes=0)(*args)`` traces ``f`` once for one example (the first of the
batch, like a compiled Function traces: Python control flow is fixed then), and then runs
the traced graph once on the whole batch, each primitive by its batching rule
(``ops/batch_rules.py``): never a Python loop over the examples. The graph is cached per
signature (the examples' shapes and dtypes, the axes and the other arguments).

The batched run applies primitives to the arguments themselves, so tapes record it,
forward traces differentiate it and compiled Functions trace it: ``grad`` of a vmap, vmap
of a ``grad`` (per-example gradients), vmap of a ``jvp``, vmap inside a Function and vmap of
a vmap all compose.

``in_axes``: an int or None (every argument; None: not mapped), or one entry per positional
argument; an entry for a list, tuple or dict argument applies to all its arrays. ``out_axes``:
an int (or None for outputs that are the same for every example) or one per output.
Outputs that do not depend on the mapped arguments are broadcast along ``out_axes``.
"""

from __future__ import annotations

import functools
import threading
import warnings
from typing import Any, Callable

import numpy as np

from ..autodiff.custom import custom_gradient, custom_p, run_forward
from ..autodiff.variable import Variable, wrap
from ..errors import OpTypeError, OpValueError, TracingError
from ..ops import batch_rules
from ..ops.constant import zeros_like
from ..ops.reduction import reduce_sum_p
from ..ops.shape import concat_p, expand_dims_p
from .ir import Graph
from .tracing import flatten_args, trace


def vmap(f: Callable, in_axes: Any = 0, out_axes: Any = 0) -> Callable:
    """``f`` mapped over a batch axis of its arguments; see the module docstring."""
    if not callable(f):
        raise OpTypeError(f"vmap: f must be callable, got {type(f).__name__}")
    return _Vectorized(f, in_axes, out_axes)


class _Vectorized:
    def __init__(self, fn: Callable, in_axes: Any, out_axes: Any) -> None:
        self.fn = fn
        self.in_axes = in_axes
        self.out_axes = out_axes
        self.name = getattr(fn, "__name__", "function")
        self._cache: dict[Any, tuple[Graph, Callable]] = {}
        self._lock = threading.RLock()
        functools.update_wrapper(self, fn, updated=())  # (not __dict__: fn may be a wrapper too)

    def __call__(self, *args: Any) -> Any:
        axes = _arg_axes(self.in_axes, args, self.name)
        leaves, leaf_axes, examples, size = _split(args, axes, self.name)
        arrays, static, _ = flatten_args(examples, {})
        key = (tuple((np.shape(_raw(a)), np.result_type(_raw(a)).str) for a in arrays), tuple(static),
               tuple(leaf_axes))
        try:
            hash(key)
        except TypeError:
            raise OpTypeError(f"vmap {self.name}: a non-array argument is not hashable") from None
        cached = self._cache.get(key)
        if cached is None:
            with self._lock:
                cached = self._cache.get(key)
                if cached is None:
                    graph, _, rebuild_out, _ = trace(self.fn, examples, {}, allow_new_variables=True,
                                                     where=f"vmap {self.name}")
                    cached = self._cache[key] = (graph, rebuild_out)
        graph, rebuild_out = cached
        outputs = run_batched(graph, leaves, leaf_axes, size, self.name)
        out_axes = _out_axes(self.out_axes, len(outputs), self.name)
        results = [_place(value, dim, axis, size) for (value, dim), axis in zip(outputs, out_axes)]
        return rebuild_out([r if isinstance(r, Variable) else wrap(np.asarray(r)) for r in results])

    def __repr__(self) -> str:
        return f"<vmap of {self.name}>"


def _raw(a: Any) -> Any:
    return a._value if isinstance(a, Variable) else a


def _arg_axes(in_axes: Any, args: tuple, name: str) -> list[Any]:
    if in_axes is None or isinstance(in_axes, (int, np.integer)):
        return [in_axes] * len(args)
    if isinstance(in_axes, (list, tuple)):
        if len(in_axes) != len(args):
            raise OpValueError(f"vmap {name}: in_axes has {len(in_axes)} entries but f got {len(args)} "
                               f"positional arguments")
        return list(in_axes)
    raise OpTypeError(f"vmap {name}: in_axes must be an int, None, or a tuple with one entry per argument, "
                      f"got {in_axes!r}")


def _split(args: tuple, axes: list[Any], name: str) -> tuple[list, list, tuple, int]:
    """The array leaves of the arguments with their batch axes, the arguments of one example
    (the first), and the batch size."""
    leaves: list[Any] = []
    leaf_axes: list[int | None] = []
    sizes: dict[int, str] = {}

    def example(x: Any, axis: Any, where: str) -> Any:
        if isinstance(x, (list, tuple)):
            parts = axis if isinstance(axis, (list, tuple)) else [axis] * len(x)
            return type(x)(example(item, a, f"{where}[{k}]") for k, (item, a) in enumerate(zip(x, parts)))
        if isinstance(x, dict):
            parts = axis if isinstance(axis, dict) else {k: axis for k in x}
            return {k: example(v, parts[k], f"{where}[{k!r}]") for k, v in x.items()}
        if not isinstance(x, (Variable, np.ndarray, np.generic)):
            if axis is not None and isinstance(x, (int, float)):
                raise OpValueError(f"vmap {name}: {where} is a number, which has no axis {axis} to map over "
                                   f"(use in_axes None for it)")
            return x
        value = _raw(x)
        if axis is None:
            leaves.append(x)
            leaf_axes.append(None)
            return x
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise OpTypeError(f"vmap {name}: the in_axes entry of {where} must be an int or None, got {axis!r}")
        rank = np.ndim(value)
        if not -rank <= axis < rank:
            raise OpValueError(f"vmap {name}: in_axes {axis} is out of range for {where} of shape "
                               f"{np.shape(value)}")
        axis = int(axis) % rank
        sizes.setdefault(np.shape(value)[axis], where)
        leaves.append(x)
        leaf_axes.append(axis)
        return np.take(np.asarray(value), 0, axis=axis) if np.shape(value)[axis] else np.zeros(
            np.shape(value)[:axis] + np.shape(value)[axis + 1:], np.result_type(value))

    examples = tuple(example(a, ax, f"argument {k}") for k, (a, ax) in enumerate(zip(args, axes)))
    if len(sizes) > 1:
        shown = ", ".join(f"{where} has {n}" for n, where in sizes.items())
        raise OpValueError(f"vmap {name}: the mapped axes have different sizes: {shown}")
    if not sizes:
        raise OpValueError(f"vmap {name}: no argument is mapped (every in_axes entry is None)")
    return leaves, leaf_axes, examples, next(iter(sizes))


def run_batched(graph: Graph, leaves: list, leaf_axes: list, size: int, name: str) -> list[tuple[Any, Any]]:
    """Run a graph traced for one example on the batch: (value, batch axis or None) per output."""
    env: dict[int, tuple[Any, Any]] = {}
    for v, leaf, axis in zip(graph.inputs, leaves, leaf_axes):
        env[v.id] = (leaf, axis)
    for v in graph.captures:
        env[v.id] = (v.payload, None)

    def get(v: Any) -> tuple[Any, Any]:
        return (v.payload, None) if v.kind == "const" else env[v.id]

    for node in graph.nodes:
        pairs = [get(i) for i in node.inputs]
        dims = [d for _, d in pairs]
        values = [x for x, _ in pairs]
        if node.effect is not None:
            if any(d is not None for d in dims):
                raise TracingError(f"vmap {name}: {node.effect.describe.rstrip(' :=')} inside a mapped function "
                                   f"changes a Variable with per-example values; update it outside the vmap")
            node.effect.run(*[_raw(x) for x in values])
            continue
        prim = node.op
        if all(d is None for d in dims):
            env[node.output.id] = (prim.apply(*values, **node.params), None)
        elif prim.batch_rule is not None:
            env[node.output.id] = prim.batch_rule(values, dims, **node.params)
        else:
            env[node.output.id] = (_example_loop(prim, values, dims, size, node.params), 0)
    return [get(v) for v in graph.outputs]


_warned: set[str] = set()


def _example_loop(prim: Any, values: list, dims: list, size: int, params: dict) -> Any:
    """A primitive without a batching rule (a user's own): one application per example,
    stacked. Correct but slow; every built-in primitive has a rule."""
    if prim.name not in _warned:
        _warned.add(prim.name)
        warnings.warn(f"vmap: primitive {prim.name!r} has no batching rule; it runs once per example "
                      f"(define prim.batch_rule for speed)", RuntimeWarning, stacklevel=4)
    from ..ops.indexing import getitem_p

    rows = []
    for k in range(size):
        args = [x if d is None else getitem_p(x, index=(slice(None),) * d + (k,)) for x, d in zip(values, dims)]
        rows.append(expand_dims_p(prim.apply(*args, **params), axes=(0,)))
    return concat_p(*rows, axis=0)


def _out_axes(out_axes: Any, count: int, name: str) -> list[Any]:
    if out_axes is None or isinstance(out_axes, (int, np.integer)):
        return [out_axes] * count
    if isinstance(out_axes, (list, tuple)) and len(out_axes) == count:
        return list(out_axes)
    raise OpValueError(f"vmap {name}: out_axes must be an int, None, or one entry per output ({count}), "
                       f"got {out_axes!r}")


def _place(value: Any, dim: Any, axis: Any, size: int) -> Any:
    """A batched output with its batch axis at ``axis``."""
    if axis is None:
        if dim is not None:
            raise OpValueError("vmap: out_axes None for an output that differs between examples")
        return value
    if dim is None:  # the same for every example: broadcast along the batch axis
        value = batch_rules.batched(value, None, size)
        dim = 0
    rank = np.ndim(_raw(value))
    axis = int(axis) % rank
    if dim == axis:
        return value
    from ..ops.shape import transpose_p

    order = [a for a in range(rank) if a != dim]
    order.insert(axis, dim)
    return transpose_p(value, perm=tuple(order))


__all__ = ["vmap"]


def _custom_batch_rule(args: list, dims: list, fn: Callable, name: str, **_: Any) -> tuple[Any, Any]:
    """A ``custom_gradient`` node on a batch. The forward value is already batched (its ops were
    batched before this node); what the node adds is its backward, so the batched run records a
    custom node of its own whose backward runs the user's backward on every example (by vmap:
    no Python loop over the batch). An argument that is not mapped gets the examples' gradients
    summed, as it would in the batched computation."""
    size = batch_rules.batch_size(args, dims)
    value = batch_rules.batched(args[0], dims[0], size)
    axes = list(dims[1:])

    def example_vjp(g: Any, *xs: Any) -> list:
        _, backward = run_forward(fn, xs)
        grads = backward(g)
        grads = list(grads) if isinstance(grads, (list, tuple)) else [grads]
        # vmap returns Variables: "no gradient" becomes zeros
        return [zeros_like(x) if gx is None else gx for gx, x in zip(grads, xs)]

    def batch_forward(*xs: Any) -> tuple[Any, Callable]:
        def backward(g: Any) -> list:
            per_example = vmap(example_vjp, in_axes=(0, *axes), out_axes=[0 if a is None else a for a in axes])
            grads = per_example(g, *xs)
            return [reduce_sum_p(gx, axis=0, keepdims=False) if a is None else gx for gx, a in zip(grads, axes)]
        return value, backward

    batch_forward.__name__ = name
    return custom_gradient(batch_forward)(*args[1:]), 0


custom_p.batch_rule = _custom_batch_rule
