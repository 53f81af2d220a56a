"""Function: compile a Python function of Variables into an optimised graph.

``f = Function(fn)`` (``g.Function`` and ``@g.Function`` in the seed API). The first
call with a new signature (shapes and dtypes of the array arguments, values of the
others) traces ``fn`` (see tracing.py) and compiles the graph; later calls with that
signature run the compiled code without running ``fn``'s Python.

Under a GradientTape one call is one node on the tape. Its VJP is another Function,
the backward pass of the graph traced from the same VJP rules, so second and higher
derivatives through a Function work like any other op.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import threading
import warnings
from typing import Any, Callable, Iterator

import numpy as np

from ..autodiff import state as _state
from ..autodiff.forward import process as forward_hook
from ..autodiff.forward import run_forward
from ..autodiff.primitive import Primitive, record
from ..autodiff.tape import GradientTape
from ..autodiff.variable import Variable, wrap
from ..errors import OpTypeError, OpValueError, TapegradError
from . import codegen, passes
from .ir import Graph, Value
from .tracing import Tracer, TracingError, flatten_args, flatten_outputs, trace, unmark

RETRACE_WARNING_AFTER = 5


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Building a graph allocates many small objects that all stay alive: the cyclic garbage
    collector would walk them again and again (half the compile time of a long graph)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class TensorSpec:
    """An input signature entry: a shape (None for a free dimension) and a dtype."""

    def __init__(self, shape: Any, dtype: Any = "float32", name: str | None = None) -> None:
        self.shape = tuple(None if n is None else int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.name = name

    def matches(self, value: Any) -> bool:
        shape = np.shape(value._value if isinstance(value, Variable) else value)
        dtype = np.result_type(value._value if isinstance(value, Variable) else value)
        return (len(shape) == len(self.shape) and dtype == self.dtype
                and all(s is None or s == n for s, n in zip(self.shape, shape)))

    def __repr__(self) -> str:
        return f"TensorSpec(shape={self.shape}, dtype={self.dtype})"


class _Compiled:
    """One traced signature: the optimised graph and its generated code.

    The values of impure nodes (random draws) are extra outputs, "residuals": the
    backward pass replays the forward with them instead of drawing again.
    """

    def __init__(self, graph: Graph, rebuild_out: Callable[[list], Any], optimize: bool) -> None:
        self.traced = graph
        self.n_outputs = len(graph.outputs)
        self.residuals = [n.output for n in graph.nodes if n.effect is None and n.op.impure]
        self._optimize = optimize
        # The optimised graph is not kept once its code exists (it is as big as the traced one);
        # ``graph`` rebuilds it for a listing or another thread's copy of the code.
        self.run = codegen.generate(self.graph)
        self.captured = [v.payload for v in graph.captures]
        # The generated code writes into buffers of its own. A call that finds it running in
        # another thread takes a copy with other buffers (generated when first needed).
        self._running = threading.Lock()
        self._spare_runs: list[Callable[[list, list], list]] = []
        self.rebuild_out = rebuild_out
        self.call_prim: Primitive | None = None
        self.backward: Function | None = None
        self.tangents: Function | None = None  # forward mode: the tangents of the outputs
        # per set of outputs that have a cotangent: the positions of the inputs and captures
        # that none of them depends on differentiably. Their gradient is None, as in eager mode
        # (found when the backward pass is traced for that set).
        self.unconnected: dict[tuple[bool, ...], set[int]] = {}

    @property
    def graph(self) -> Graph:
        """The optimised graph that the generated code runs."""
        traced = self.traced
        runnable = Graph(traced.inputs, traced.captures, traced.nodes, traced.outputs + self.residuals)
        return passes.optimize(runnable) if self._optimize else runnable

    def execute(self, arrays: list) -> tuple[list, list]:
        captures = self.captured
        if self._running.acquire(blocking=False):
            try:
                values = self.run(arrays, captures)
            finally:
                self._running.release()
        else:
            spares = self._spare_runs
            try:
                run = spares.pop()
            except IndexError:
                run = codegen.generate(self.graph)
            try:
                values = run(arrays, captures)
            finally:
                spares.append(run)
        return values[:self.n_outputs], values[self.n_outputs:]


class _Entry:
    """The compiled variants of one cache key. Without free dimensions there is one; with
    an input_signature's free dimension, one per size met. The second size is traced like
    the first; if its graph is the first one's with other shapes (same_structure), the
    trace is shape-polymorphic ("polymorphic") and every later size is made by replaying
    the first graph's primitives on inputs of the new size (no Python, no side effects);
    otherwise each size is traced."""

    __slots__ = ("base", "variants", "polymorphic")

    def __init__(self, base: _Compiled, shapes: tuple) -> None:
        self.base = base
        self.variants = {shapes: base}
        self.polymorphic: bool | None = None  # unknown until a second size is traced


class Function:
    """A compiled function; see the module docstring.

    ``trace_count`` is the number of graphs built; ``graph(*args)`` returns the listing
    of the optimised forward (and backward) graph for those arguments.
    """

    def __init__(self, fn: Callable, input_signature: list | None = None, optimize: bool = True,
                 name: str | None = None, relax_shapes: bool = False) -> None:
        if not callable(fn):
            raise OpTypeError(f"Function: fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.input_signature = None if input_signature is None else list(input_signature)
        # relax_shapes: every dimension of every array argument is free (only ranks and dtypes
        # key the cache), as if input_signature had None everywhere.
        self.relax_shapes = bool(relax_shapes)
        self.optimize = optimize
        self.name = name or getattr(fn, "__name__", "function")
        self._cache: dict[Any, _Entry] = {}
        # Held while tracing or compiling a new variant: two threads never trace one signature twice.
        self._lock = threading.RLock()
        self._keys: list[Any] = []
        self.trace_count = 0
        functools.update_wrapper(self, fn, updated=())  # (not __dict__: fn may be a wrapper too)

    # -- the cache -----------------------------------------------------------------------
    def _key(self, args: tuple, kwargs: dict) -> tuple[Any, list]:
        arrays, static, _ = flatten_args(args, kwargs)
        if self.input_signature is not None:
            self._check_signature(arrays)
        parts = []
        shapes = []
        specs = self.input_signature
        for i, a in enumerate(arrays):
            value = a._value if isinstance(a, Variable) else a
            shape = np.shape(value)
            shapes.append(shape)
            if specs is not None:  # free dimensions are not part of the key
                shape = specs[i].shape
            elif self.relax_shapes:
                shape = len(shape)
            parts.append((shape, np.result_type(value).str))
        try:
            key = (tuple(parts), tuple(static))
            hash(key)
        except TypeError:
            raise OpTypeError(
                f"Function {self.name}: a non-array argument is not hashable, so it cannot be part of the "
                f"cache key (pass arrays as ndarrays or Variables, and other arguments as hashable values)"
            ) from None
        return key, arrays, tuple(shapes)

    def _check_signature(self, arrays: list) -> None:
        specs = self.input_signature or []
        if len(arrays) != len(specs):
            raise OpValueError(f"Function {self.name}: input_signature has {len(specs)} entries but the call "
                               f"passes {len(arrays)} arrays")
        for i, (spec, a) in enumerate(zip(specs, arrays)):
            if not spec.matches(a):
                value = a._value if isinstance(a, Variable) else a
                raise OpValueError(f"Function {self.name}: array argument {i} of shape {np.shape(value)} and dtype "
                                   f"{np.result_type(value)} does not match the input_signature {spec}")

    def _retrace_culprit(self, key: Any) -> str:
        previous = self._keys[-1]
        (arr_new, static_new), (arr_old, static_old) = key, previous
        for i, (n, o) in enumerate(zip(arr_new, arr_old)):
            if n != o:
                return f"array argument {i} changed from {_shape_text(o[0])} {o[1]} to {_shape_text(n[0])} {n[1]}"
        for n, o in zip(static_new, static_old):
            if n != o:
                return f"a non-array argument changed from {o!r} to {n!r}"
        return "the number of arguments changed"

    # -- calling ---------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _state.tracing():  # called while an enclosing Function traces: inline into its graph
            return self.fn(*args, **kwargs)
        key, arrays, shapes = self._key(args, kwargs)
        entry = self._cache.get(key)
        compiled = entry.variants.get(shapes) if entry is not None else None
        if compiled is None:
            with self._lock:  # (looked up again: another thread may have compiled it meanwhile)
                entry = self._cache.get(key)
                compiled = entry.variants.get(shapes) if entry is not None else None
                if compiled is None:
                    if entry is None or not entry.polymorphic:
                        return self._trace(key, args, kwargs, shapes)
                    # a new size of a free dimension of a shape-polymorphic trace (see _Entry)
                    with _collector_paused():
                        compiled = _Compiled(respecialize(entry.base.traced, arrays), entry.base.rebuild_out,
                                             self.optimize)
                    entry.variants[shapes] = compiled
        values = [a._value if isinstance(a, Variable) else a for a in arrays]
        try:
            outs, residuals = compiled.execute(values)
        except (ValueError, TypeError, IndexError) as exc:
            raise self._explain(compiled, values, exc) from None
        results = [wrap(o) for o in outs]
        recording = _state.current()
        if recording is not None and (recording.tapes or recording.forward):
            self._record_call(compiled, arrays, results, residuals, recording)
        return compiled.rebuild_out(results)

    def _explain(self, compiled: _Compiled, values: list, exc: Exception) -> Exception:
        """An error of the generated code, as the op that failed reports it in eager mode: the
        graph's primitives are replayed eagerly on the same inputs (effects are not run)."""
        try:
            with _state.paused():
                replay(compiled.traced, [wrap(v) for v in values], [v.payload for v in compiled.traced.captures])
        except (ValueError, TypeError, IndexError) as eager:
            if isinstance(eager, TapegradError):
                eager.args = (f"{eager.args[0]} (in compiled Function {self.name})",) + eager.args[1:]
            return eager
        return exc

    def _trace(self, key: Any, args: tuple, kwargs: dict, shapes: tuple) -> Any:
        entry = self._cache.get(key)
        if self.trace_count >= RETRACE_WARNING_AFTER and entry is None:
            warnings.warn(
                f"Function {self.name} was traced {self.trace_count + 1} times; the last retrace happened because "
                f"{self._retrace_culprit(key)}. Retracing is slow: pass arrays of fixed shapes, use "
                f"input_signature with None for a free dimension, or keep non-array arguments constant",
                stacklevel=3,
            )
        with _collector_paused():
            graph, result, rebuild_out, tracer = trace(self.fn, args, kwargs,
                                                       allow_new_variables=self.trace_count == 0,
                                                       where=f"Function {self.name}")
            compiled = _Compiled(graph, rebuild_out, self.optimize)
        if entry is None:
            self._cache[key] = _Entry(compiled, shapes)
            self._keys.append(key)
        else:
            # A second size of a free dimension: if this trace is the first one with other
            # shapes, the function is shape-polymorphic and later sizes need no tracing.
            entry.variants[shapes] = compiled
            if entry.polymorphic is None:
                entry.polymorphic = same_structure(entry.base.traced, graph)
        self.trace_count += 1
        recording = _state.current()
        if recording is not None and (recording.tapes or recording.forward):
            arrays, _, _ = flatten_args(args, kwargs)
            outputs, _ = flatten_outputs(result, self.name)
            residuals = [tracer.variable_of[v.id]._value for v in compiled.residuals]
            self._record_call(compiled, arrays, outputs, residuals, recording)
        return result

    # -- gradients ---------------------------------------------------------------------------
    def _record_call(self, compiled: _Compiled, arrays: list, outputs: list[Variable], residuals: list,
                     recording: Any) -> None:
        """Apply the call as one op for the active tapes and forward traces. With several
        outputs the op's result is a packed Variable; each output unpacks it (see unpack_p)."""
        captures = [v.payload for v in compiled.traced.captures]
        args = tuple(arrays) + tuple(captures)
        vals = tuple(a._value if isinstance(a, Variable) else a for a in args)
        prim = self._call_prim(compiled)
        params = {"residuals": tuple(residuals)}

        def apply(p: Primitive, a: tuple, v: tuple, ps: dict, out: Variable) -> None:
            if recording.tapes:
                record(p, a, v, ps, out, recording.tapes)
            if recording.forward:
                forward_hook(p, a, v, ps, out, recording)

        if len(outputs) == 1:
            apply(prim, args, vals, params, outputs[0])
            return
        packed = wrap(tuple(o._value for o in outputs))
        apply(prim, args, vals, params, packed)
        for k, out in enumerate(outputs):
            apply(unpack_p, (packed,), (packed._value,), {"index": k}, out)

    def _call_prim(self, compiled: _Compiled) -> Primitive:
        if compiled.call_prim is None:
            with self._lock:
                if compiled.call_prim is None:
                    compiled.call_prim = self._make_call_prim(compiled)
        return compiled.call_prim

    def _make_call_prim(self, compiled: _Compiled) -> Primitive:
        prim = Primitive(f"call:{self.name}", lambda *a, **k: None)
        n_outputs = len(compiled.traced.outputs)

        def vjp(g: Any, out: Any, needs: tuple, inputs: tuple, params: dict) -> list:
            # One backward pass for the outputs that have a cotangent. The others are left
            # out (None, a static argument: one backward graph per set of used outputs), not
            # given zeros: 0 * an infinite derivative would put NaNs where eager has none.
            cotangents = [g] if n_outputs == 1 else [g.parts.get(j) for j in range(n_outputs)]
            backward = self._backward(compiled)
            grads = backward(*inputs, *params["residuals"], *cotangents)
            unconnected = compiled.unconnected[tuple(c is not None for c in cotangents)]
            return [None if k in unconnected else gk for k, gk in enumerate(grads)]

        def jvp(tangents: list, out: Any, inputs: tuple, params: dict) -> Any:
            # the tangents of the outputs, from the forward graph replayed under a forward trace
            # (compiled too: one tangent Function per set of inputs that have tangents)
            outs = self._tangent_function(compiled)(*inputs, *params["residuals"], *tangents)
            return outs[0] if n_outputs == 1 else PackedTangent(outs)

        prim.defvjp_joint(vjp)
        prim.defjvp_joint(jvp)
        return prim

    def _tangent_function(self, compiled: _Compiled) -> Function:
        if compiled.tangents is None:
            with self._lock:
                if compiled.tangents is None:
                    compiled.tangents = self._make_tangent_function(compiled)
        return compiled.tangents

    def _make_tangent_function(self, compiled: _Compiled) -> Function:
        graph = compiled.traced

        def tangents_of_outputs(*values: Any) -> list:
            n_in, n_cap, n_res = len(graph.inputs), len(graph.captures), len(compiled.residuals)
            inputs = [v if isinstance(v, Variable) else wrap(np.asarray(v)) for v in values[:n_in + n_cap]]
            saved = dict(zip((v.id for v in compiled.residuals), values[n_in + n_cap:n_in + n_cap + n_res]))
            given = values[n_in + n_cap + n_res:]
            outs, trace = run_forward(lambda *ins: replay(graph, list(ins[:n_in]), list(ins[n_in:]), saved),
                                      inputs, list(given))
            result = []
            for o in outs:
                t = trace.tangent_of(o)
                result.append(wrap(np.zeros(np.shape(o._value), o._value.dtype)) if t is None
                              else t if isinstance(t, Variable) else wrap(np.asarray(t)))
            return result

        return Function(tangents_of_outputs, optimize=self.optimize, name=f"{self.name}.tangents")

    def _backward(self, compiled: _Compiled) -> Function:
        if compiled.backward is None:
            with self._lock:
                if compiled.backward is None:
                    compiled.backward = self._make_backward(compiled)
        return compiled.backward

    def _make_backward(self, compiled: _Compiled) -> Function:
        graph = compiled.traced

        def backward(*values: Any) -> list:
            n_in, n_cap, n_res = len(graph.inputs), len(graph.captures), len(compiled.residuals)
            inputs = [v if isinstance(v, Variable) else wrap(np.asarray(v)) for v in values[:n_in + n_cap]]
            saved = dict(zip((v.id for v in compiled.residuals), values[n_in + n_cap:n_in + n_cap + n_res]))
            cotangents = values[n_in + n_cap + n_res:]
            with GradientTape(persistent=False, watch_accessed_variables=False) as tape:
                for v in inputs:
                    if v.dtype.kind == "f":
                        tape.watch(v)
                outs = replay(graph, inputs[:n_in], inputs[n_in:], saved)
            used = [(o, c) for o, c in zip(outs, cotangents) if c is not None]
            floats = [v for v in inputs if v.dtype.kind == "f"]
            grads = tape.gradient([o for o, _ in used], floats, output_gradients=[c for _, c in used])
            by_id = {id(v): g for v, g in zip(floats, grads) if g is not None}
            pattern = tuple(c is not None for c in cotangents)
            compiled.unconnected[pattern] = {k for k, v in enumerate(inputs) if id(v) not in by_id}
            return [by_id.get(id(v), wrap(np.zeros(np.shape(v._value)))) for v in inputs]

        return Function(backward, optimize=self.optimize, name=f"{self.name}.backward")

    # -- introspection -------------------------------------------------------------------------
    def graph(self, *args: Any, **kwargs: Any) -> GraphListing:
        """The optimised forward graph for these arguments (and the backward graph when
        the function is differentiable); print it for a readable listing."""
        return self._listing(args, kwargs, with_backward=True)

    def _listing(self, args: tuple, kwargs: dict, with_backward: bool) -> GraphListing:
        key, arrays, shapes = self._key(args, kwargs)
        entry = self._cache.get(key)
        if entry is None or shapes not in entry.variants:
            self(*args, **kwargs)
        compiled = self._cache[key].variants[shapes]
        sections = [compiled.graph.listing(f"forward {self.name}")]
        traced = compiled.traced
        differentiable = (any(v.dtype.kind == "f" for v in traced.inputs + traced.captures)
                          and all(v.dtype.kind == "f" for v in traced.outputs))
        if with_backward and differentiable:
            backward = self._backward(compiled)
            values = [a._value if isinstance(a, Variable) else a for a in arrays]
            values += [v.payload._value for v in compiled.traced.captures]
            values += [np.zeros(v.shape, v.dtype) for v in compiled.residuals]
            cotangents = [np.ones(v.shape, v.dtype) for v in compiled.traced.outputs]
            sections.append(backward._listing((*values, *cotangents), {}, with_backward=False)
                            .replace("forward ", "backward ", 1))
        return GraphListing("\n\n".join(sections))

    def __repr__(self) -> str:
        return f"<Function {self.name} traces={self.trace_count}>"

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        # @g.Function on a method: bind like a function (one compiled Function per instance).
        if obj is None:
            return self
        bound = obj.__dict__.get(f"__tapegrad_function_{self.name}")
        if bound is None:
            bound = Function(functools.partial(self.fn, obj), self.input_signature, self.optimize, self.name,
                             self.relax_shapes)
            obj.__dict__[f"__tapegrad_function_{self.name}"] = bound
        return bound


def _shape_text(shape: Any) -> str:
    return f"rank {shape}" if isinstance(shape, int) else f"shape {shape}"


class GraphListing(str):
    """The text of ``Function.graph(...)``."""


class PackedCotangent:
    """The cotangent of a packed multi-output call: output index -> cotangent. Adding two
    merges them, so the tape accumulates the cotangents of all outputs into one."""

    __slots__ = ("parts",)

    def __init__(self, parts: dict[int, Any]) -> None:
        self.parts = parts

    def __add__(self, other: PackedCotangent) -> PackedCotangent:
        merged = dict(self.parts)
        for k, v in other.parts.items():
            merged[k] = merged[k] + v if k in merged else v
        return PackedCotangent(merged)


class PackedTangent(tuple):
    """The tangents of the outputs of a multi-output call, unpacked by unpack_p."""


# Output k of a multi-output call: its VJP packs the cotangent for the call node.
unpack_p = Primitive("unpack", lambda packed, index: packed[index])
unpack_p.defvjp(lambda g, out, packed, index: PackedCotangent({index: g}))
unpack_p.defjvp(lambda t, out, packed, index: t[index])


def replay(graph: Graph, inputs: list[Variable], captures: list[Variable],
           saved: dict[int, Any] | None = None) -> list[Variable]:
    """Run a traced graph's primitives on Variables (so tapes and tracers record them).
    Effects are skipped: replaying is for differentiation, not for running a step twice.
    Impure nodes take their ``saved`` values (the forward's random draws)."""
    env: dict[int, Any] = {}
    for v, var in zip(graph.inputs, inputs):
        env[v.id] = var
    for v, var in zip(graph.captures, captures):
        env[v.id] = var

    def get(v: Any) -> Any:
        return v.payload if v.kind == "const" else env[v.id]

    for node in graph.nodes:
        if node.effect is not None:
            continue
        if saved and node.output.id in saved:
            value = saved[node.output.id]
            env[node.output.id] = value if isinstance(value, Variable) else wrap(value)
            continue
        env[node.output.id] = node.op.apply(*[get(i) for i in node.inputs], **node.params)
    return [get(v) for v in graph.outputs]


def respecialize(graph: Graph, arrays: list) -> Graph:
    """The graph for inputs of other shapes: its primitives replayed on new placeholders
    under a tracer. Effects are recorded, not performed (the caller runs the new graph)."""
    tracer = Tracer(allow_new_variables=False)
    env: dict[int, Any] = {}
    for v, a in zip(graph.inputs, arrays):
        var = a if isinstance(a, Variable) else wrap(a)
        if getattr(var, "_traced", None) is not None:
            var = wrap(var._value)
        tracer.placeholder(var)
        env[v.id] = var
    for v in graph.captures:
        env[v.id] = v.payload

    def get(v: Any) -> Any:
        return v.payload if v.kind == "const" else env[v.id]

    with _state.tracing_scope(tracer):
        for node in graph.nodes:
            inputs = [get(i) for i in node.inputs]
            if node.effect is not None:
                tracer.effect(node.effect.name, node.effect.run, node.effect.describe, inputs)
            else:
                env[node.output.id] = node.op.apply(*inputs, **node.params)
    result = Graph(tracer.inputs, tracer.captures, tracer.nodes, [tracer.value_of(get(v)) for v in graph.outputs])
    for v in graph.inputs:
        unmark(env[v.id], tracer.serial)
    return result


def same_structure(a: Graph, b: Graph) -> bool:
    """Whether two traces are the same program up to the shapes of their values: the same
    primitives and parameters on the same inputs, the same captured Variables, the same
    constants and effects. Then one trace serves every size of a free dimension."""
    from .passes import _key

    if (len(a.inputs), len(a.captures), len(a.nodes), len(a.outputs)) != (
            len(b.inputs), len(b.captures), len(b.nodes), len(b.outputs)):
        return False
    mapping: dict[int, int] = {}
    for x, y in zip(a.inputs, b.inputs):
        if x.dtype != y.dtype:
            return False
        mapping[x.id] = y.id
    for x, y in zip(a.captures, b.captures):
        if x.payload is not y.payload:
            return False
        mapping[x.id] = y.id

    def same_value(x: Value, y: Value) -> bool:
        if x.kind == "const" or y.kind == "const":
            return (x.kind == y.kind and x.dtype == y.dtype and np.shape(x.payload) == np.shape(y.payload)
                    and bool(np.array_equal(x.payload, y.payload)))
        return mapping.get(x.id) == y.id

    for n, m in zip(a.nodes, b.nodes):
        if (n.effect is None) != (m.effect is None) or len(n.inputs) != len(m.inputs):
            return False
        if n.effect is not None:
            if n.effect.describe != m.effect.describe:
                return False
        elif n.op is not m.op or _key(n.params) != _key(m.params) or n.output.dtype != m.output.dtype:
            return False
        if not all(same_value(x, y) for x, y in zip(n.inputs, m.inputs)):
            return False
        if n.output is not None:
            mapping[n.output.id] = m.output.id
    return all(same_value(x, y) for x, y in zip(a.outputs, b.outputs))


def function(fn: Callable | None = None, *, input_signature: list | None = None) -> Any:
    """Decorator form: ``@tapegrad.function`` or ``@tapegrad.function(input_signature=[...])``."""
    if fn is None:
        return lambda f: Function(f, input_signature)
    return Function(fn, input_signature)


__all__ = ["Function", "TensorSpec", "TracingError", "function", "replay"]
