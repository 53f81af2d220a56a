"""Higher derivatives of a fused backward primitive, from the elementary definition.

A fused op ``F`` (one NumPy forward, one NumPy backward) is differentiable to first
order by its own backward primitive ``B(g, inputs) = VJP of F``. The VJP of ``B`` itself
(second and higher derivatives) is obtained here as a double VJP through a reference
function ``f`` that computes ``F`` with ordinary ops: slow, but exact and differentiable
to any order, and only run when someone differentiates a gradient.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..autodiff import state as _state
from ..autodiff.tape import GradientTape
from ..autodiff.variable import Variable, wrap
from .shape import concat, reshape


def _variable(v: Any) -> Variable:
    return v if isinstance(v, Variable) else wrap(np.asarray(v))


def double_vjp(f: Callable[[dict[str, Any]], Variable], named: dict[str, Any], sources: list[str],
               wanted: list[str], g: Any, cot: Any) -> tuple[Any, dict[str, Any]]:
    """The VJP, for the cotangent ``cot``, of ``B(g, sources) = concat(ravel(d f(named)/d w) for w
    in wanted)`` (the VJP of ``f`` for the cotangent ``g``, packed), with respect to ``g`` and
    to each name in ``sources``. Returns ``(cotangent of g, {name: cotangent})``; arrays when
    nothing records the caller (raw backprop), Variables otherwise."""
    raw = _state.current() is None
    named = dict(named)
    g = _variable(g)
    for name in sources:
        named[name] = _variable(named[name])
    variables = [named[n] for n in sources]
    with GradientTape(watch_accessed_variables=False) as outer:
        outer.watch([g, *variables])
        with GradientTape(watch_accessed_variables=False) as inner:
            inner.watch(variables)
            y = f(named)
        firsts = inner.gradient(y, [named[n] for n in wanted], output_gradients=g, unconnected_gradients="zero")
        flat = concat([reshape(d, (-1,)) for d in firsts], axis=0)
    grads = outer.gradient(flat, [g, *variables], output_gradients=cot, unconnected_gradients="zero")
    if raw:
        grads = [d._value for d in grads]
    return grads[0], dict(zip(sources, grads[1:]))
