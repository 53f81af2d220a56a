"""GradientTape: records ops and differentiates through them.

The tape keeps the nodes it recorded in execution order, which is already a
topological order, so backprop is one reversed loop over a list: no recursion, no
sort, and a chain of any length works.

Backprop runs in one of two modes:

* raw: no other tape is recording, so nobody will differentiate the gradient.
  Rules run on ndarrays at plain NumPy speed.
* differentiable: another tape is recording. Rules run on the Variables the ops
  were called with, so that tape records the backward pass and can differentiate
  it again (gradients of gradients, to any order).
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np

from ..errors import OpTypeError, OpValueError
from . import state as _state
from .broadcast import astype_p, sum_like_p
from .primitive import _ONE, _SCALAR_TYPES
from .variable import Variable, wrap

_serial_numbers = itertools.count(1)


class GradientTape:
    """Records ops on watched Variables so that gradients can be computed.

    ``with GradientTape() as tape: ...`` records every op on trainable float
    Variables computed inside the block; ``tape.watch(x)`` adds other Variables.
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True) -> None:
        self._persistent = bool(persistent)
        self._watch_accessed = bool(watch_accessed_variables)
        self._nodes: list = []
        # Variables remember the serial numbers (not the tapes) of the tapes that
        # recorded them: no reference cycle between a tape and its Variables.
        self._serial = next(_serial_numbers)
        self._serials = (self._serial,)
        self._watched: dict[int, Variable] = {}
        self._used = False
        self._set_recorder()

    def _set_recorder(self) -> None:
        # What the per-op hot path needs, in one attribute load.
        self._recorder = (self._serials, self._serial, self._watch_accessed, self._watched, self._nodes.append)

    @property
    def persistent(self) -> bool:
        return self._persistent

    # -- recording -----------------------------------------------------------------
    def __enter__(self) -> GradientTape:
        if self._used:
            raise RuntimeError(
                "GradientTape: this non-persistent tape was already used by gradient(); "
                "create a new tape, or pass persistent=True"
            )
        _state.push_tape(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _state.remove_tape(self)

    def watch(self, x: Any) -> None:
        """Watch a Variable (or a list/tuple/dict of them) so that ops on it are recorded."""
        for v in flatten(x, "GradientTape.watch", "x")[0]:
            if v._value.dtype.kind == "f":
                self._watched[id(v)] = v

    def watched_variables(self) -> list[Variable]:
        """The Variables watched explicitly with :meth:`watch`."""
        return list(self._watched.values())

    def stop_recording(self) -> _Paused:
        """``with tape.stop_recording(): ...`` runs ops without recording them."""
        return _Paused(self)

    def reset(self) -> None:
        """Forget everything recorded so far."""
        self._nodes = []
        self._watched = {}
        self._used = False
        self._set_recorder()

    # -- differentiation -------------------------------------------------------------
    def gradient(
        self,
        target: Any,
        sources: Any,
        output_gradients: Any = None,
        unconnected_gradients: str = "none",
    ) -> Any:
        """The gradient of ``target`` with respect to ``sources``.

        ``sources`` may be one Variable or a list, tuple or dict of them; the result
        has the same structure. A non-scalar target is differentiated as its sum
        unless ``output_gradients`` gives its cotangent.
        """
        return self.gradient_streamed(target, sources, None, output_gradients, unconnected_gradients)

    def gradient_streamed(
        self,
        target: Any,
        sources: Any,
        on_ready: Callable[[int, Any], None] | None,
        output_gradients: Any = None,
        unconnected_gradients: str = "none",
    ) -> Any:
        """:meth:`gradient`, calling ``on_ready(i, gradient)`` for the i-th source (in the
        order of the flattened ``sources``) as soon as its gradient is complete, while
        backprop goes on with the earlier ops: data-parallel training starts averaging a
        bucket of gradients over the network then (``tapegrad.distributed``)."""
        if self._used:
            raise RuntimeError(
                "GradientTape.gradient can only be called once on a non-persistent tape: "
                "create the tape with GradientTape(persistent=True) to call gradient() more than once"
            )
        mode = unconnected_gradients
        if mode != "none":
            mode = str(getattr(mode, "value", mode)).lower()  # also accept an enum
            if mode not in ("none", "zero"):
                raise OpValueError(
                    f"GradientTape.gradient: unconnected_gradients must be 'none' or 'zero', "
                    f"got {unconnected_gradients!r}"
                )
        targets = [target] if target.__class__ is Variable else _targets(target)
        flat_sources, rebuild = flatten(sources, "GradientTape.gradient", "sources")
        for s in flat_sources:
            if s._value.dtype.kind != "f":
                _integer_source(flat_sources)
        if output_gradients is None and len(targets) == 1:
            seeds = [_ones(targets[0]._value)]
        else:
            seeds = _seeds(targets, output_gradients)

        # A persistent tape called inside its own ``with`` block records its backward pass,
        # as TensorFlow's does, so that the gradient can be differentiated again. A
        # non-persistent tape cannot be used again: it stops recording here.
        position = _state.tape_position(self)
        if position >= 0 and not self._persistent:
            _state.remove_tape(self)
        # Differentiate the backward pass itself when a tape records it, or when a compiled
        # Function is tracing (so that the backward pass becomes part of its graph).
        differentiable = _state.current() is not None
        nodes = self._nodes[:] if position >= 0 and self._persistent else self._nodes
        serial, accessed, watched = self._serial, self._watch_accessed, self._watched

        def result(s: Variable, g: Any) -> Any:
            if g is not None and not ((accessed and s._trainable) or serial in s._tapes or id(s) in watched):
                g = None  # not watched by this tape (TensorFlow semantics)
            if g is None:
                return wrap(np.zeros_like(s._value)) if mode == "zero" else None
            if g.__class__ is Variable and differentiable:
                return g if g._value.dtype == s._value.dtype else astype_p.apply(g, dtype=s._value.dtype)
            if g.__class__ in _SCALAR_TYPES and g.dtype == s._value.dtype:
                return wrap(g)  # 0-d: an immutable NumPy scalar, nothing to copy
            return wrap(_own(g, s._value.dtype))

        if on_ready is None:
            grads = backprop(nodes, targets, seeds, flat_sources, differentiable)
            get = grads.get
            results = [result(s, get(s)) for s in flat_sources]
        else:
            done: dict[int, Any] = {}
            positions: dict[int, list[int]] = {}
            for i, s in enumerate(flat_sources):
                positions.setdefault(id(s), []).append(i)

            def ready(s: Variable, g: Any) -> None:
                done[id(s)] = r = result(s, g)
                for i in positions[id(s)]:
                    on_ready(i, r)

            backprop(nodes, targets, seeds, flat_sources, differentiable, ready)
            results = [done[id(s)] for s in flat_sources]
        if not self._persistent:
            self._nodes = []
            self._watched = {}
            self._used = True
            self._set_recorder()
        return rebuild(results)

    def _watches(self, v: Variable) -> bool:
        return (self._watch_accessed and v._trainable) or self._serial in v._tapes or id(v) in self._watched

    def __repr__(self) -> str:
        return f"<GradientTape persistent={self._persistent} nodes={len(self._nodes)}>"


class _Paused:
    def __init__(self, tape: GradientTape) -> None:
        self._tape = tape
        self._position = -1

    def __enter__(self) -> None:
        self._position = _state.tape_position(self._tape)
        if self._position >= 0:
            _state.remove_tape(self._tape)

    def __exit__(self, *exc: object) -> None:
        if self._position >= 0:
            _state.insert_tape(self._tape, self._position)


def backprop(nodes: list, targets: list, seeds: list, sources: list, differentiable: bool,
             ready: Callable[[Variable, Any], None] | None = None) -> dict:
    """Propagate cotangents from ``targets`` back through ``nodes`` (in reverse).

    Returns a dict from Variable to cotangent; entries for Variables that are
    neither sources nor still needed are dropped as soon as they are used.
    ``ready(source, cotangent)``, if given, is called for each distinct source as soon as
    no op left to visit can add to its cotangent (then the ops before the first use of
    every source are not visited at all).
    """
    grads: dict = {}
    for t, seed in zip(targets, seeds):
        prev = grads.get(t)
        grads[t] = seed if prev is None else prev + seed
    # Cotangents are dropped once used, except those of sources that are themselves
    # results of recorded ops (leaf sources are never a node's output).
    keep = {s for s in sources if s._leaf is None}
    # A leaf Variable (made by the user) that is not a source needs no cotangent: skipping
    # it saves e.g. the gradient of a model's input batch.
    wanted = set(sources)
    if ready is None:
        _propagate(reversed(nodes), grads, keep, wanted, differentiable)
        return grads
    # A source's cotangent is complete once the op that used it first has been visited.
    first_use: dict[Variable, int] = {}
    for i, node in enumerate(nodes):
        for a in node[1]:
            if a.__class__ is Variable and a in wanted and a not in first_use:
                first_use[a] = i
    by_position: dict[int, list[Variable]] = {}
    for source, i in first_use.items():
        by_position.setdefault(i, []).append(source)
    end = len(nodes)
    for i in sorted(by_position, reverse=True):
        _propagate(reversed(nodes[i:end]), grads, keep, wanted, differentiable)
        end = i
        for source in by_position[i]:
            ready(source, grads.get(source))
    for source in dict.fromkeys(sources):  # sources no op used: their seed (as targets), or nothing
        if source not in first_use:
            ready(source, grads.get(source))
    return grads


def _propagate(reversed_nodes: Any, grads: dict, keep: set, wanted: set, differentiable: bool) -> None:
    """The backprop loop over ``reversed_nodes``, accumulating into ``grads``."""
    pop, get = grads.pop, grads.get
    for prim, args, vals, params, out, needs in reversed_nodes:
        g = pop(out, None)
        if g is None:
            continue
        if keep and out in keep:
            grads[out] = g
        if differentiable:
            inputs, outv = args, out
        else:
            inputs, outv = vals, out._value
        rules = prim.vjp_rules
        if needs is _ONE and rules is not None:  # one input, no parameters (apply1): the common case
            x = args[0]
            if x._leaf is not None and x not in wanted:
                continue
            gi = rules[0](g, outv, inputs[0])
            if gi is not None:
                prev = get(x)
                grads[x] = gi if prev is None else prev + gi
        elif rules is not None and not params and len(needs) == 2:  # binary, no parameters: unrolled
            x, y = args
            if needs[0] and (x._leaf is None or x in wanted):
                gi = rules[0](g, outv, inputs[0], inputs[1])
                if gi is not None:
                    if prim.broadcasting and gi.__class__ not in _SCALAR_TYPES and gi.shape != vals[0].shape:
                        gi = sum_like_p(gi, inputs[0])
                    prev = get(x)
                    grads[x] = gi if prev is None else prev + gi
            if needs[1] and (y._leaf is None or y in wanted):
                gi = rules[1](g, outv, inputs[0], inputs[1])
                if gi is not None:
                    if prim.broadcasting and gi.__class__ not in _SCALAR_TYPES and gi.shape != vals[1].shape:
                        gi = sum_like_p(gi, inputs[1])
                    prev = get(y)
                    grads[y] = gi if prev is None else prev + gi
        elif rules is not None:
            broadcasting = prim.broadcasting
            i = 0
            for need in needs:
                if need and (args[i]._leaf is None or args[i] in wanted):
                    gi = rules[i](g, outv, *inputs, **params) if params else rules[i](g, outv, *inputs)
                    if gi is not None:
                        # (a NumPy-scalar cotangent belongs to a 0-d output: nothing to unbroadcast)
                        if broadcasting and gi.__class__ not in _SCALAR_TYPES and gi.shape != vals[i].shape:
                            gi = sum_like_p(gi, inputs[i])
                        x = args[i]
                        prev = get(x)
                        grads[x] = gi if prev is None else prev + gi
                i += 1
        else:
            for i, gi in enumerate(prim.vjp_joint(g, outv, needs, inputs, params or {})):
                if gi is None or not needs[i]:
                    continue
                x = args[i]
                prev = get(x)
                grads[x] = gi if prev is None else prev + gi


def _own(g: Any, dtype: np.dtype) -> np.ndarray:
    """A gradient as a writable ndarray of the source's dtype."""
    if g.__class__ is Variable:
        g = g._value
    if g.__class__ in _SCALAR_TYPES:  # 0-d: NumPy scalars are immutable, nothing to copy
        return g if g.dtype == dtype else dtype.type(g)
    if g.__class__ is not np.ndarray:
        return np.array(g, dtype=dtype)
    if g.dtype != dtype:
        return g.astype(dtype)
    if not g.flags.writeable:
        return g.copy()
    return g


def _integer_source(sources: list[Variable]) -> None:
    for i, s in enumerate(sources):
        if s._value.dtype.kind != "f":
            label = f"{s.name!r}" if s.name else f"#{i}"
            raise OpTypeError(
                f"GradientTape.gradient: source {label} has dtype {s.dtype}; integer and bool "
                f"Variables are constants and have no gradient"
            )


def _targets(target: Any) -> list[Variable]:
    if target.__class__ is Variable:
        return [target]
    if isinstance(target, (list, tuple)) and target and all(isinstance(t, Variable) for t in target):
        return list(target)
    raise OpTypeError(
        f"GradientTape.gradient: target must be a Variable or a list of Variables, got {type(target).__name__}"
    )


def _ones(value: Any) -> Any:
    # A 0-d target gets a NumPy scalar seed: NumPy computes on scalars much faster.
    return value.dtype.type(1) if value.ndim == 0 else np.ones(value.shape, value.dtype)


def _seeds(targets: list[Variable], output_gradients: Any) -> list:
    if output_gradients is None:
        return [_ones(t._value) for t in targets]
    given = output_gradients
    if len(targets) == 1 and not isinstance(given, (list, tuple)):
        given = [given]
    if not isinstance(given, (list, tuple)) or len(given) != len(targets):
        raise OpValueError(
            f"GradientTape.gradient: output_gradients must match target: {len(targets)} target(s), "
            f"got {type(output_gradients).__name__}"
        )
    seeds = []
    for t, og in zip(targets, given):
        if og is None:
            seeds.append(_ones(t._value))
            continue
        value = og._value if og.__class__ is Variable else np.asarray(og, dtype=t._value.dtype)
        if value.shape != t._value.shape:
            raise OpValueError(
                f"GradientTape.gradient: output_gradients has shape {value.shape}, "
                f"but target has shape {t._value.shape}"
            )
        # A Variable seed is kept as is: a tape may watch it (e.g. forward mode by double VJP).
        seeds.append(og if og.__class__ is Variable else value)
    return seeds


def _first(flat: list) -> Any:
    return flat[0]


def flatten(structure: Any, op: str, arg: str,
             error: type[Exception] = OpTypeError) -> tuple[list[Variable], Callable[[list], Any]]:
    """Flatten a Variable or nested list/tuple/dict of Variables; return a rebuild function.
    Anything else raises ``error`` naming ``op`` and the path to the offending element."""
    if structure.__class__ is Variable:
        return [structure], _first
    kind = structure.__class__
    if kind is list or kind is tuple:
        for v in structure:
            if v.__class__ is not Variable:
                break
        else:
            return (structure if kind is list else list(structure)), (list if kind is list else tuple)
    flat: list[Variable] = []

    def walk(node: Any, path: str) -> Callable[[Any], Any]:
        if node.__class__ is Variable:
            index = len(flat)
            flat.append(node)
            return lambda values: values[index]
        if isinstance(node, (list, tuple)):
            parts = [walk(item, f"{path}[{i}]") for i, item in enumerate(node)]
            kind = type(node) if type(node) in (list, tuple) else list
            return lambda values: kind(p(values) for p in parts)
        if isinstance(node, dict):
            parts_d = {k: walk(v, f"{path}[{k!r}]") for k, v in node.items()}
            return lambda values: {k: p(values) for k, p in parts_d.items()}
        raise error(f"{op}: {path} must be a Variable (or a list, tuple or dict of Variables), "
                    f"got {type(node).__name__}")

    build = walk(structure, arg)
    return flat, build
