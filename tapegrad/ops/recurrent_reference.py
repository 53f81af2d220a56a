"""The recurrent layers written with ordinary ops, one step at a time.

:func:`reference_forward` computes exactly what the fused primitives of
:mod:`tapegrad.ops.recurrent` compute (same inputs, same result layout), as an unrolled
loop of elementary ops. It serves twice:

* layers with activations other than the fused defaults (tanh, and sigmoid for the
  gates) run it directly;
* the VJP of the fused backward primitives (second and higher derivatives) is a
  double VJP through it (:func:`backward_vjp`).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..autodiff.variable import Variable
from ._higher_order import double_vjp
from .activation import sigmoid
from .elementwise import add_p, mul_p, sub_p, tanh, where_p
from .indexing import getitem_p
from .linalg import matmul
from .recurrent_inputs import DIFFERENTIABLE, named_inputs
from .shape import concat, stack, transpose

Activation = Callable[[Any], Any]


def _shape(v: Any) -> tuple[int, ...]:
    return np.shape(v._value if isinstance(v, Variable) else v)


def _cols(v: Any, j: int, units: int) -> Any:
    return getitem_p(v, index=(Ellipsis, slice(j * units, (j + 1) * units)))


def _block(v: Any, j: int) -> Any:
    """``v[:, j, :]`` of a (batch, k, n) dropout mask (a constant)."""
    return getitem_p(v, index=(slice(None), j, slice(None)))


def _masked_product(h: Any, R: Any, drop: Any, first: int, count: int, units: int) -> Any:
    """``h R[:, first*U:(first+count)*U]``, each gate block j with ``h * drop[:, j]``."""
    if drop is None:
        return matmul(h, getitem_p(R, index=(slice(None), slice(first * units, (first + count) * units))))
    k = _shape(drop)[1]
    if k == 1:
        return matmul(mul_p(h, _block(drop, 0)),
                      getitem_p(R, index=(slice(None), slice(first * units, (first + count) * units))))
    blocks = [matmul(mul_p(h, _block(drop, first + j)), _cols(R, first + j, units)) for j in range(count)]
    return blocks[0] if count == 1 else concat(blocks, axis=-1)


def _projection(x: Any, W: Any, in_drop: Any, reverse: bool, gates: int, units: int) -> Any:
    xt = transpose(x, (1, 0, 2))
    if reverse:
        xt = getitem_p(xt, index=(slice(None, None, -1),))
    if in_drop is None:
        return matmul(xt, W)
    k = _shape(in_drop)[1]
    if k == 1:
        return matmul(mul_p(xt, _block(in_drop, 0)), W)
    return concat([matmul(mul_p(xt, _block(in_drop, j)), _cols(W, j, units)) for j in range(gates)], axis=-1)


def reference_forward(cell: str, named: dict[str, Any], reverse: bool, reset_after: bool = True,
                      activation: Activation = tanh, recurrent_activation: Activation = sigmoid,
                      last: bool = False) -> Variable:
    """The fused primitive's result, computed step by step with ordinary ops."""
    x, W, R = named["x"], named["W"], named["R"]
    b, mask, in_drop, rec_drop = named["b"], named["mask"], named["in_drop"], named["rec_drop"]
    batch, steps, _ = _shape(x)
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[cell]
    units = _shape(W)[1] // gates
    dtype = np.result_type(x._value if isinstance(x, Variable) else x)
    X = _projection(x, W, in_drop, reverse, gates, units)
    b_rec = None
    if b is not None:
        if cell == "gru" and reset_after:
            b_rec = getitem_p(b, index=(1,))
            b = getitem_p(b, index=(0,))
        X = add_p(X, b)
    zeros = np.zeros((batch, units), dtype)
    h = zeros if named["h0"] is None else named["h0"]
    c = zeros if named.get("c0") is None else named["c0"]
    m = None
    if mask is not None:
        m = np.asarray(mask._value if isinstance(mask, Variable) else mask, dtype=bool)
    hs, cs = [], []
    for s in range(steps):
        xs = getitem_p(X, index=(s,))
        if cell == "lstm":
            z = add_p(xs, _masked_product(h, R, rec_drop, 0, 4, units))
            i = recurrent_activation(_cols(z, 0, units))
            f = recurrent_activation(_cols(z, 1, units))
            gc = activation(_cols(z, 2, units))
            o = recurrent_activation(_cols(z, 3, units))
            c_new = add_p(mul_p(f, c), mul_p(i, gc))
            h_new = mul_p(o, activation(c_new))
        elif cell == "gru":
            if reset_after:
                u = _masked_product(h, R, rec_drop, 0, 3, units)
                if b_rec is not None:
                    u = add_p(u, b_rec)
                zr_rec, uh = getitem_p(u, index=(Ellipsis, slice(0, 2 * units))), _cols(u, 2, units)
            else:
                zr_rec = _masked_product(h, R, rec_drop, 0, 2, units)
            zz = recurrent_activation(add_p(_cols(xs, 0, units), _cols(zr_rec, 0, units)))
            r = recurrent_activation(add_p(_cols(xs, 1, units), _cols(zr_rec, 1, units)))
            if reset_after:
                hh = activation(add_p(_cols(xs, 2, units), mul_p(r, uh)))
            else:
                k = 1 if rec_drop is None else _shape(rec_drop)[1]
                drop_h = None if rec_drop is None else (rec_drop if k == 1 else getitem_p(
                    rec_drop, index=(slice(None), slice(2, 3), slice(None))))
                hh = activation(add_p(_cols(xs, 2, units), _masked_product(mul_p(r, h), _cols(R, 2, units),
                                                                           drop_h, 0, 1, units)))
            h_new = add_p(mul_p(zz, h), mul_p(sub_p(1.0, zz), hh))
            c_new = None
        else:
            h_new = activation(add_p(xs, _masked_product(h, R, rec_drop, 0, 1, units)))
            c_new = None
        if m is not None:
            keep = m[:, steps - 1 - s if reverse else s][:, None]
            h_new = where_p(keep, h_new, h)
            if c_new is not None:
                c_new = where_p(keep, c_new, c)
        h = h_new
        hs.append(h)
        if c_new is not None:
            c = c_new
            cs.append(c)
    if last:
        return h
    H = stack(hs, axis=0)
    if cell == "lstm":
        return stack([H, stack(cs, axis=0)], axis=0)
    return H


def backward_vjp(cell: str, cot: Any, inputs: tuple, params: dict) -> list:
    """The VJP of ``<cell>_bwd_p`` (inputs ``(g, out, x, W, R, *parts)``; result the packed
    cotangents of the inputs selected by ``params["wanted"]``): a double VJP through
    :func:`reference_forward`."""
    g, _, *fwd_inputs = inputs
    parts = params["parts"]
    named = named_inputs(cell, tuple(fwd_inputs), parts)
    sources = [n for n in DIFFERENTIABLE[cell] if named[n] is not None]
    wanted = [n for n, want in zip(DIFFERENTIABLE[cell], params["wanted"]) if want]
    reverse, reset_after, last = params["reverse"], params.get("reset_after", True), params.get("last", False)
    dg, grads = double_vjp(lambda named: reference_forward(cell, named, reverse, reset_after, last=last),
                           named, sources, wanted, g, cot)
    return [dg, None] + [grads.get(n) for n in ("x", "W", "R", *parts)]
