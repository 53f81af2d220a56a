"""Batching (``vmap``) and forward-mode (JVP) rules of the fused recurrent and attention
primitives.

A batching rule has the form of the batching rules of the other primitives:
``rule(args, dims, **params) -> (out, out_dim)``, where ``dims[i]`` is the axis of argument
``i`` that runs over the mapped examples (None: the same for every example). A JVP rule is
``rule(tangents, out, inputs, params) -> tangent of out`` (``defjvp_joint``'s form).
:data:`RULES` and :data:`JVP_RULES` map each primitive to its rule; ``install()`` sets them
where the autodiff core has batching and forward mode (``Primitive.batch_rule``,
``Primitive.jvp_joint``).

The forward primitives work on a batch already: when only the per-example inputs are mapped
(the sequences, initial states, masks and dropout masks; the common case, e.g. per-example
gradients), the mapped axis is merged into the batch axis and the op runs once. Mapped
weights, and the backward primitives (whose weight gradients sum over the batch), run once
per example.

The tangents are the VJP transposed: ``J t`` is the gradient, with respect to a cotangent
``u``, of ``<J^T u, t>`` (linear in ``u``, taken at ``u = 0``). Forward mode through a
recurrence would need a third loop per cell; this one reuses the backward loop, and its own
derivatives go through the VJP of the backward primitives (see ``_higher_order``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..autodiff.broadcast import broadcast_to_p, sum_to_p
from ..autodiff.primitive import Primitive
from ..autodiff.tape import GradientTape
from ..autodiff.variable import Variable, wrap
from .attention import attention_bwd_p, attention_p, packed_attention_bwd_p, packed_attention_p
from .indexing import getitem_p
from .recurrent import gru_bwd_p, gru_p, lstm_bwd_p, lstm_p, simple_rnn_bwd_p, simple_rnn_p
from .shape import concat_p, expand_dims_p, reshape_p, transpose_p

Rule = Callable[..., tuple[Any, Any]]


def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(x._value if x.__class__ is Variable else x)


def _size(args: list, dims: list) -> int:
    for a, d in zip(args, dims):
        if d is not None:
            return _shape(a)[d]
    raise AssertionError("a batching rule was called without a mapped argument")


def _front(x: Any, d: int | None, size: int) -> Any:
    """x with the mapped axis first (broadcast along a new first axis when not mapped)."""
    if d is None:
        return broadcast_to_p(x, shape=(size,) + _shape(x))
    if d == 0:
        return x
    rank = len(_shape(x))
    return transpose_p(x, perm=(d,) + tuple(a for a in range(rank) if a != d))


def _merged(x: Any, d: int | None, size: int) -> Any:
    """(mapped, batch, ...) -> (mapped * batch, ...)."""
    x = _front(x, d, size)
    shape = _shape(x)
    return reshape_p(x, shape=(shape[0] * shape[1],) + shape[2:])


def per_example(prim: Primitive) -> Rule:
    """One application per mapped example, stacked along a new first axis."""
    def rule(args: list, dims: list, **params: Any) -> tuple[Any, Any]:
        size = _size(args, dims)
        rows = []
        for k in range(size):
            one = [a if d is None else getitem_p(a, index=(slice(None),) * d + (k,)) for a, d in zip(args, dims)]
            rows.append(expand_dims_p(prim.apply(*one, **params), axes=(0,)))
        return concat_p(*rows, axis=0), 0
    return rule


def _recurrent_rule(prim: Primitive) -> Rule:
    loop = per_example(prim)

    def rule(args: list, dims: list, parts: tuple[str, ...], **params: Any) -> tuple[Any, Any]:
        names = ("x", "W", "R", *parts)
        if any(d is not None for n, d in zip(names, dims) if n in ("W", "R", "b")):
            return loop(args, dims, parts=parts, **params)
        size = _size(args, dims)
        batch = _shape(_front(args[0], dims[0], size))[1]
        merged = [a if n in ("W", "R", "b") else _merged(a, d, size) for n, a, d in zip(names, args, dims)]
        out = prim(*merged, parts=parts, **params)
        shape = _shape(out)
        if params.get("last"):  # (mapped * batch, units)
            return reshape_p(out, shape=(size, batch) + shape[1:]), 0
        lead = 1 if prim is not lstm_p else 2  # (time, m*b, units) or (2, time, m*b, units)
        return reshape_p(out, shape=shape[:lead] + (size, batch) + shape[lead + 1:]), lead
    return rule


def _attention_rule(prim: Primitive) -> Rule:
    def rule(args: list, dims: list, parts: tuple[str, ...], **params: Any) -> tuple[Any, Any]:
        size = _size(args, dims)
        first = next(i for i, d in enumerate(dims) if d is not None)
        batch = _shape(_front(args[first], dims[first], size))[1]
        data = 1 if prim is packed_attention_p else 3
        merged = []
        for i, (a, d) in enumerate(zip(args, dims)):
            if i >= data and d is None and _shape(a)[0] == 1:
                merged.append(a)  # a mask shared by every example broadcasts as it is
                continue
            x = _front(a, d, size)
            if _shape(x)[1] != batch:  # a mapped mask of batch 1: to the batch's size
                x = broadcast_to_p(x, shape=(size, batch) + _shape(x)[2:])
            merged.append(reshape_p(x, shape=(size * batch,) + _shape(x)[2:]))
        out = prim(*merged, parts=parts, **params)
        return reshape_p(out, shape=(size, batch) + _shape(out)[1:]), 0
    return rule


RULES: dict[Primitive, Rule] = {
    **{p: _recurrent_rule(p) for p in (lstm_p, gru_p, simple_rnn_p)},
    **{p: per_example(p) for p in (lstm_bwd_p, gru_bwd_p, simple_rnn_bwd_p, attention_bwd_p,
                                   packed_attention_bwd_p)},
    attention_p: _attention_rule(attention_p),
    packed_attention_p: _attention_rule(packed_attention_p),
}


def transposed_jvp(prim: Primitive) -> Callable[..., Any]:
    """The JVP rule of a primitive with a joint VJP rule: ``d/du sum_i <vjp_i(u), t_i>``."""
    def rule(tangents: list, out: Any, inputs: tuple, params: dict) -> Any:
        args = tuple(a if a.__class__ is Variable else wrap(np.asarray(a)) for a in inputs)
        result = out if out.__class__ is Variable else wrap(np.asarray(out))
        u = wrap(np.zeros_like(result._value))
        needs = tuple(t is not None for t in tangents)
        with GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(u)
            parts = prim.vjp_joint(u, result, needs, args, params)
            total = None
            for part, t in zip(parts, tangents):
                if part is None or t is None:
                    continue
                term = sum_to_p(part * t, shape=())
                total = term if total is None else total + term
        return None if total is None else tape.gradient(total, u)
    return rule


JVP_RULES: dict[Primitive, Callable[..., Any]] = {prim: transposed_jvp(prim) for prim in RULES}


def install() -> None:
    """Set the rules where the core has batching and forward mode."""
    slots = getattr(Primitive, "__slots__", ())
    if "batch_rule" in slots:
        for prim, rule in RULES.items():
            prim.batch_rule = rule  # type: ignore[attr-defined]
    if "jvp_joint" in slots:
        for prim, jvp in JVP_RULES.items():
            prim.jvp_joint = jvp  # type: ignore[attr-defined]


install()
