"""Forward mode: a trace that carries a tangent along with each value as ops run.

``jvp(f, primals, tangents)`` runs ``f`` once under a :class:`ForwardTrace`. Every
primitive application whose inputs have tangents gets its output's tangent from the
primitive's JVP rule, the third interpreter of the same table of rules (beside the eager
forward and the VJP rules):

* ``prim.defjvp(*rules)``: ``rule(t, out, *inputs, **params)`` gives the output tangent's
  part due to one input's tangent ``t`` (linear in ``t``, broadcastable to the output);
* ``prim.defjvp_joint(rule)``: ``rule(tangents, out, inputs, params)`` (None where an input
  has no tangent);
* ``prim.defjvp_diagonal()``: an elementwise op, whose Jacobian is diagonal: each VJP rule,
  applied to a tangent, is the JVP rule;
* ``prim.defjvp_linear()``: an op linear in its first input (the others are indices or
  shapes): the tangent is the op applied to the first input's tangent.

A primitive without a JVP rule gets one from its VJP rules by transposition: the output
tangent is the gradient, with respect to a cotangent ``u``, of ``sum_i <vjp_i(u), t_i>``
(two passes instead of one; custom gradients go this way).

Rules are written with primitives, so they nest like the VJP rules do. The ops a trace
runs to compute tangents are seen by the traces and tapes that were active before it
started (so ``grad`` of a ``jvp`` and ``jvp`` of a ``jvp`` work), never by itself or by
later ones; the outer traces take each op first. With nothing outside it, a trace
computes on raw NumPy values.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np

from ..errors import OpTypeError, OpValueError
from . import primitive as _primitive
from . import state as _state
from .broadcast import astype_p, broadcast_like_p, sum_to_p
from .primitive import Primitive
from .variable import Variable, wrap

_serials = itertools.count(1)


class ForwardTrace:
    """The tangents of the values computed under one ``jvp``."""

    def __init__(self) -> None:
        self.serial = next(_serials)
        # id(Variable) -> (Variable, tangent): the Variable is kept so that its id stays its own
        self.tangents: dict[int, tuple[Variable, Any]] = {}
        state = _state.current()
        # what was active when the trace started: it sees the ops that compute tangents
        self.outer_tapes = state.tapes if state is not None else ()
        self.outer_forward = state.forward if state is not None else ()

    def tangent_of(self, var: Any) -> Any:
        if var.__class__ is not Variable:
            return None
        entry = self.tangents.get(id(var))
        return None if entry is None else entry[1]

    def set_tangent(self, var: Variable, tangent: Any) -> None:
        self.tangents[id(var)] = (var, tangent)


def process(prim: Primitive, args: tuple, vals: Any, params: dict | None, out: Variable,
             recording: _state.Recording) -> None:
    """Called by every primitive application while forward traces are active."""
    if not prim.differentiable:
        return
    forward = recording.forward
    # Outermost first: an inner trace's rules use the output (e.g. exp's tangent is t * out), and
    # the outer traces, which see those rules run, must know the output's tangent by then.
    for depth in range(len(forward)):
        trace = forward[depth]
        tangents = [trace.tangent_of(a) for a in args]
        if all(t is None for t in tangents):
            continue
        outer_forward = forward[:depth]
        differentiable = bool(trace.outer_tapes or outer_forward or recording.tracers)
        with _state.scope(trace.outer_tapes, recording.tracers, outer_forward):
            tangent = _tangent(prim, args, vals, params or {}, out, tangents, differentiable)
        if tangent is not None:
            trace.set_tangent(out, tangent)


def _tangent(prim: Primitive, args: tuple, vals: Any, params: dict, out: Variable, tangents: list,
             differentiable: bool) -> Any:
    if differentiable:
        inputs = args
        outv: Any = out
        # (a multi-output call's tangent is a tuple of them: left as it is)
        tangents = [t if t is None or t.__class__ is Variable or isinstance(t, tuple) else wrap(t)
                    for t in tangents]
    else:
        inputs = vals
        outv = out._value
        tangents = [t._value if t.__class__ is Variable else t for t in tangents]
    if prim.jvp_joint is not None:
        result = prim.jvp_joint(tangents, outv, inputs, params)
    elif prim.jvp_rules is not None:
        result = None
        for rule, t in zip(prim.jvp_rules, tangents):
            if t is None or rule is None:
                continue
            part = rule(t, outv, *inputs, **params)
            if part is not None:
                result = part if result is None else result + part
    else:
        result = _transposed_vjp(prim, args, params, out, tangents)
    if result is None or isinstance(result, tuple):
        return result
    shape, dtype = np.shape(out._value), out._value.dtype
    value = result._value if result.__class__ is Variable else result
    if np.shape(value) != shape:  # a part due to a broadcast input
        result = _primitive_broadcast(result, out if differentiable else outv)
        value = result._value if result.__class__ is Variable else result
    if np.result_type(value) != dtype:
        result = astype_p(result, dtype=dtype)
    return result


def _primitive_broadcast(t: Any, like: Any) -> Any:
    return broadcast_like_p(t, like)


def _transposed_vjp(prim: Primitive, args: tuple, params: dict, out: Variable, tangents: list) -> Any:
    """The JVP of a primitive that only has VJP rules: d/du sum_i <vjp_i(u), t_i> at u = 0."""
    from .tape import GradientTape

    inputs = tuple(a if a.__class__ is Variable else wrap(np.asarray(a)) for a in args)
    tangents = [t if t is None or t.__class__ is Variable else wrap(t) for t in tangents]
    u = wrap(np.zeros_like(out._value))
    needs = tuple(t is not None for t in tangents)
    with GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(u)
        if prim.vjp_joint is not None:
            parts = list(prim.vjp_joint(u, out, needs, inputs, params))
        elif prim.vjp_rules is not None:
            parts = [rule(u, out, *inputs, **params) if need and rule is not None else None
                     for rule, need in zip(prim.vjp_rules, needs)]
        else:
            raise OpTypeError(f"{prim.name}: this op has no derivative rule, so it has no tangent in forward mode")
        total = None
        for part, t in zip(parts, tangents):
            if part is None or t is None:
                continue
            term = sum_to_p(part * t, shape=())
            total = term if total is None else total + term
    if total is None:
        return None
    return tape.gradient(total, u)


# Primitives call this while forward traces are active (the core imports no op module).
_primitive.forward_hook = process


def as_tangent(tangent: Any, primal: Variable, where: str) -> Any:
    """A tangent for ``primal``: an array of its shape (floats of its dtype)."""
    value = tangent._value if isinstance(tangent, Variable) else np.asarray(tangent)
    if np.shape(value) != primal.shape:
        raise OpValueError(f"{where}: a tangent has shape {np.shape(value)}, but its primal has shape {primal.shape}")
    if primal.dtype.kind != "f":
        raise OpTypeError(f"{where}: a primal of dtype {primal.dtype} has no tangent (only floats do)")
    if isinstance(tangent, Variable):
        return tangent if tangent.dtype == primal.dtype else tangent.astype(primal.dtype)
    return value.astype(primal.dtype, copy=False)


def run_forward(f: Callable, primals: list[Variable], tangents: list[Any]) -> tuple[Any, ForwardTrace]:
    """Run ``f(*primals)`` under a new forward trace that gives each primal its tangent."""
    trace = ForwardTrace()
    for x, t in zip(primals, tangents):
        trace.set_tangent(x, t)
    with _state.forward_scope(trace):
        out = f(*primals)
    return out, trace
