"""Fused recurrent primitives: a whole SimpleRNN, LSTM or GRU layer over a sequence as one op.

``lstm_p``, ``gru_p`` and ``simple_rnn_p`` take ``(x, W, R, *optional)``: the input
``(batch, time, features)``, the input kernel ``(features, G)`` and the recurrent kernel
``(units, G)`` in Keras's layouts, then the optional inputs named by the ``parts``
parameter, in this order: ``b``, ``h0``, ``c0`` (LSTM), ``mask``, ``in_drop``,
``rec_drop`` (see :mod:`tapegrad.ops.recurrent_kernels` for their meaning). They return
the states of every step, time-major in processing order: ``(time, batch, units)``, or
``(2, time, batch, units)`` (hidden, cell) for the LSTM; with the parameter ``last=True``
only the final hidden state ``(batch, units)``.

Why one op for the whole loop (a loop primitive with its own VJP) rather than the time
loop unrolled into per-step ops: eager mode then runs one Python call per layer instead
of several recorded ops per step, the backward pass is one fused loop (backpropagation
through time) with one product per weight gradient, and a compiled Function holds two
nodes (forward and backward) whatever the sequence length, so compile time does not
grow with T.

Derivatives of any order: the VJP rule runs the NumPy backward loop directly when
nobody differentiates the backward pass; otherwise it applies ``<cell>_bwd_p`` (the same
loop as a primitive, recorded or traced as one node). The VJP of that backward primitive
is computed from the elementary definition in :mod:`tapegrad.ops.recurrent_reference`
(a double VJP through the unrolled loop of ordinary ops): slow, but exact, and only
needed for second and higher derivatives.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..autodiff import state as _state
from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpValueError
from . import recurrent_kernels as kernels
from .indexing import getitem_p
from .recurrent_inputs import DIFFERENTIABLE, GATES, OPTIONAL, named_inputs  # noqa: F401 - GATES re-exported
from .shape import reshape_p

ArrayLike = Any

# The differentiable inputs of each cell, in order, and the optional inputs it accepts.
def _arrays(named: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if v is None else np.asarray(v._value if isinstance(v, Variable) else v))
            for k, v in named.items()}


def _forward(cell: str, a: dict[str, Any], reverse: bool, reset_after: bool, last: bool) -> np.ndarray:
    if cell == "lstm":
        return kernels.lstm_forward(a["x"], a["W"], a["R"], a["b"], a["h0"], a["c0"], a["mask"], a["in_drop"],
                                    a["rec_drop"], reverse, last)
    if cell == "gru":
        return kernels.gru_forward(a["x"], a["W"], a["R"], a["b"], a["h0"], a["mask"], a["in_drop"], a["rec_drop"],
                                   reverse, reset_after, last)
    return kernels.simple_rnn_forward(a["x"], a["W"], a["R"], a["b"], a["h0"], a["mask"], a["in_drop"],
                                      a["rec_drop"], reverse, last)


def _backward(cell: str, g: Any, out: Any, a: dict[str, Any], reverse: bool, reset_after: bool, last: bool,
              needs: tuple[bool, ...]) -> list:
    """The NumPy backward: cotangents of the cell's differentiable inputs (None if not needed)."""
    out = np.asarray(out)
    if cell == "lstm":
        return kernels.lstm_backward(g, out, a["x"], a["W"], a["R"], a["b"], a["h0"], a["c0"], a["mask"],
                                     a["in_drop"], a["rec_drop"], reverse, needs, last)
    if cell == "gru":
        return kernels.gru_backward(g, out, a["x"], a["W"], a["R"], a["b"], a["h0"], a["mask"], a["in_drop"],
                                    a["rec_drop"], reverse, reset_after, needs, last)
    return kernels.simple_rnn_backward(g, out, a["x"], a["W"], a["R"], a["b"], a["h0"], a["mask"], a["in_drop"],
                                       a["rec_drop"], reverse, needs, last)


def _make_impl(cell: str) -> Callable[..., np.ndarray]:
    def impl(x: Any, W: Any, R: Any, *rest: Any, parts: tuple[str, ...], reverse: bool,
             reset_after: bool = True, last: bool = False) -> np.ndarray:
        a = _arrays(named_inputs(cell, (x, W, R, *rest), parts))
        return _forward(cell, a, reverse, reset_after, last)

    return impl


def _needs_by_name(cell: str, needs: tuple, parts: tuple[str, ...]) -> tuple[bool, ...]:
    """Which of the cell's differentiable inputs want a cotangent, from the node's needs."""
    position = {"x": 0, "W": 1, "R": 2, **{name: 3 + i for i, name in enumerate(parts)}}
    return tuple(name in position and bool(needs[position[name]]) for name in DIFFERENTIABLE[cell])


def _to_inputs(cell: str, grads: list, n_inputs: int, parts: tuple[str, ...]) -> list:
    """Per-input cotangents (None for masks) from the cell's list of cotangents."""
    by_name = dict(zip(DIFFERENTIABLE[cell], grads))
    return [by_name.get(name) for name in ("x", "W", "R", *parts)][:n_inputs]


def _shape_of(v: Any) -> tuple[int, ...]:
    return np.shape(v._value if isinstance(v, Variable) else v)


def _make_rule(cell: str, backward_p: Primitive) -> Callable[..., list]:
    def rule(g: Any, out: Any, needs: tuple, inputs: tuple, params: dict) -> list:
        parts, reverse = params["parts"], params["reverse"]
        reset_after, last = params.get("reset_after", True), params.get("last", False)
        wanted = _needs_by_name(cell, needs, parts)
        if _state.current() is None:  # nobody differentiates this pass: the NumPy loop directly
            a = _arrays(named_inputs(cell, inputs, parts))
            grads = _backward(cell, g, out, a, reverse, reset_after, last, wanted)
            return _to_inputs(cell, grads, len(inputs), parts)
        flat = backward_p.apply(g, out, *inputs, parts=parts, reverse=reverse, reset_after=reset_after, last=last,
                                wanted=wanted)
        named = named_inputs(cell, inputs, parts)
        grads: list = []
        start = 0
        for name, want in zip(DIFFERENTIABLE[cell], wanted):
            if not want:
                grads.append(None)
                continue
            shape = _shape_of(named[name])
            size = int(np.prod(shape))
            piece = getitem_p.apply(flat, index=(slice(start, start + size),))
            grads.append(reshape_p.apply(piece, shape=shape))
            start += size
        return _to_inputs(cell, grads, len(inputs), parts)

    return rule


def _make_backward_impl(cell: str) -> Callable[..., np.ndarray]:
    def impl(g: Any, out: Any, x: Any, W: Any, R: Any, *rest: Any, parts: tuple[str, ...], reverse: bool,
             reset_after: bool, last: bool, wanted: tuple[bool, ...]) -> np.ndarray:
        a = _arrays(named_inputs(cell, (x, W, R, *rest), parts))
        grads = _backward(cell, g, out, a, reverse, reset_after, last, wanted)
        pieces = [np.ravel(gr) for gr, want in zip(grads, wanted) if want]
        return np.concatenate(pieces) if pieces else np.zeros(0, np.asarray(x).dtype)

    return impl


def _make_backward_rule(cell: str) -> Callable[..., list]:
    def rule(cot: Any, out: Any, needs: tuple, inputs: tuple, params: dict) -> list:
        from .recurrent_reference import backward_vjp

        return backward_vjp(cell, cot, inputs, params)

    return rule


def _define(cell: str) -> tuple[Primitive, Primitive]:
    backward_p = Primitive(f"{cell}_bwd", _make_backward_impl(cell), ("g", "out", "x", "W", "R", "extra"))
    backward_p.defvjp_joint(_make_backward_rule(cell))
    forward_p = Primitive(cell, _make_impl(cell), ("x", "W", "R", "extra"))
    forward_p.defvjp_joint(_make_rule(cell, backward_p))
    return forward_p, backward_p


lstm_p, lstm_bwd_p = _define("lstm")
gru_p, gru_bwd_p = _define("gru")
simple_rnn_p, simple_rnn_bwd_p = _define("simple_rnn")
PRIMITIVES = {"lstm": lstm_p, "gru": gru_p, "simple_rnn": simple_rnn_p}


def recurrent(cell: str, x: ArrayLike, W: ArrayLike, R: ArrayLike, *, b: Any = None, h0: Any = None,
              c0: Any = None, mask: Any = None, in_drop: Any = None, rec_drop: Any = None,
              go_backwards: bool = False, reset_after: bool = True, last: bool = False) -> Variable:
    """Apply the fused ``cell`` (``"lstm"``, ``"gru"`` or ``"simple_rnn"``) over a sequence;
    see the module docstring for the arguments and the result (with ``last``, only the
    final hidden state ``(batch, units)``)."""
    xs, ws, rs = _shape_of(x), _shape_of(W), _shape_of(R)
    k = GATES[cell]
    if len(xs) != 3 or len(ws) != 2 or len(rs) != 2 or ws[0] != xs[2] or ws[1] % k or rs != (ws[1] // k, ws[1]):
        raise OpValueError(f"{cell}: x {xs}, kernel {ws} and recurrent kernel {rs} do not fit: expected x "
                           f"(batch, time, features), kernel (features, {k} * units), recurrent kernel "
                           f"(units, {k} * units)")
    batch, units = xs[0], rs[0]
    checks = {"h0": (batch, units), "c0": (batch, units), "mask": (batch, xs[1])}
    given = {"b": b, "h0": h0, "c0": c0, "mask": mask, "in_drop": in_drop, "rec_drop": rec_drop}
    parts, rest = [], []
    for name in OPTIONAL:
        value = given[name]
        if value is None:
            continue
        if name == "c0" and cell != "lstm":
            raise OpValueError(f"{cell}: only the LSTM has a cell state c0")
        shape = _shape_of(value)
        if name in checks and shape != checks[name]:
            raise OpValueError(f"{cell}: {name} has shape {shape}, expected {checks[name]}")
        parts.append(name)
        rest.append(value)
    params: dict[str, Any] = {"parts": tuple(parts), "reverse": bool(go_backwards)}
    if cell == "gru":
        params["reset_after"] = bool(reset_after)
    if last:
        params["last"] = True
    return PRIMITIVES[cell].apply(x, W, R, *rest, **params)
