"""The check every compiled test goes through: a compiled Function equals eager execution,
on the call that traces it AND on later calls with other values of the same shapes (and
again with the first values), for values, gradients and second derivatives.

A test that calls a compiled function once cannot see a value baked into the graph at
trace time; this helper always calls it at least three times.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

import tapegrad as tg


def _as_arrays(result: Any) -> list:
    if isinstance(result, tg.Variable):
        return [result.numpy().copy()]
    if isinstance(result, (list, tuple)):
        return [a for r in result for a in _as_arrays(r)]
    if result is None:
        return [None]
    return [np.array(result)]


def _variables(args: Sequence[Any]) -> list:
    return [tg.Variable(a, dtype=a.dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
            for a in args]


def _run(fn: Callable, args: Sequence[Any], order: int) -> list:
    """Values, then (order >= 1) gradients of sum(outputs) w.r.t. the float arguments, then
    (order >= 2) the gradient of sum(first gradients * fixed weights)."""
    vs = _variables(args)
    floats = [v for v in vs if isinstance(v, tg.Variable)]
    if order == 0 or not floats:
        return _as_arrays(fn(*vs))
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            out = fn(*vs)
        outs = out if isinstance(out, (list, tuple)) else [out]
        diff = [o for o in outs if o.dtype.kind == "f"]
        if not diff:
            return _as_arrays(out)
        grads = inner.gradient(diff, floats, unconnected_gradients="zero")
        probe = sum(tg.reduce_sum(g * (0.5 + k)) for k, g in enumerate(grads))
    results = _as_arrays(out) + _as_arrays(grads)
    if order >= 2:
        second = outer.gradient(probe, floats, unconnected_gradients="zero")
        results += _as_arrays(second)
    return results


def assert_compiled_matches_eager(fn: Callable, *arg_sets: Sequence[Any], order: int = 1,
                                  rtol: float = 1e-9, atol: float = 1e-12, compiled: Any = None) -> Any:
    """Compile ``fn`` (or use ``compiled``) and compare it with eager ``fn`` on each argument
    set in turn, then on the first set again. Give at least two sets that differ in values
    (same shapes and dtypes). Returns the compiled Function."""
    assert len(arg_sets) >= 2, "give at least two argument sets with other values"
    compiled = compiled if compiled is not None else tg.Function(fn)
    sequence = list(arg_sets) + [arg_sets[0]]
    for call, args in enumerate(sequence):
        expected = _run(fn, args, order)
        got = _run(compiled, args, order)
        assert len(got) == len(expected), f"call {call}: {len(got)} results, eager has {len(expected)}"
        for k, (c, e) in enumerate(zip(got, expected)):
            what = f"call {call} (argument set {call % len(arg_sets)}), result {k}"
            if e is None or c is None:
                assert c is None and e is None, what
                continue
            assert c.shape == e.shape and c.dtype == e.dtype, f"{what}: {c.shape} {c.dtype} != {e.shape} {e.dtype}"
            np.testing.assert_allclose(c, e, rtol=rtol, atol=atol, err_msg=what)
    traces = compiled.trace_count
    assert traces == 1, f"traced {traces} times for one signature"
    return compiled
