"""Scaled dot-product attention as one fused primitive, and the same with ordinary ops.

``attention_p(q, k, v, *optional, parts, scale)`` with ``q`` of shape
``(batch, T, heads, key_dim)``, ``k`` ``(batch, S, heads, key_dim)`` and ``v``
``(batch, S, heads, value_dim)`` (the layout the projections of MultiHeadAttention give)
computes, per batch element and head::

    P = softmax(scale * q k^T + (1 - mask) * -1e9)      # (T, S), Keras's masked softmax
    out = (P * dropout) v                               # (T, value_dim)

and returns ``(batch, T, heads, value_dim)``. The optional inputs named in ``parts``:
``mask`` (bool, broadcastable to ``(batch, heads, T, S)``: True where a query may attend
to a key) and ``drop`` (a dropout mask on P, already scaled by ``1/(1-rate)``).

One primitive instead of six ops saves their temporaries and dispatch, and its backward
is one pass of matrix products with the softmax derivative in place. The forward's result
is a view into a workspace that also holds P, which the backward reuses (it is
recomputed if the result was copied). Second and higher derivatives go through
:func:`reference_attention`, the same computation as ordinary ops (see
:mod:`tapegrad.ops._higher_order`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff import state as _state
from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpValueError
from ..native import memory
from ._higher_order import double_vjp
from .activation import softmax
from .elementwise import add_p, mul_p
from .indexing import getitem_p
from .linalg import matmul
from .shape import reshape_p, transpose

ArrayLike = Any
MASKED = -1e9  # Keras's large negative number for masked scores (float32 and float64)
RETAIN_MIN = 1 << 18  # elements of a workspace from which freed memory is kept mapped


def _value(x: Any) -> Any:
    return None if x is None else np.asarray(x._value if isinstance(x, Variable) else x)


def _named(inputs: tuple, parts: tuple[str, ...]) -> dict[str, Any]:
    named: dict[str, Any] = {"q": inputs[0], "k": inputs[1], "v": inputs[2], "mask": None, "drop": None}
    named.update(zip(parts, inputs[3:]))
    return named


def _adder(mask: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.where(mask, np.zeros((), dtype), np.asarray(MASKED, dtype))


def _workspace(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    B, T, H, _ = q.shape
    S, Vd = k.shape[1], v.shape[3]
    size = B * T * H * Vd + B * H * T * S
    if size >= RETAIN_MIN:
        memory.retain_freed_memory()  # a training step allocates and frees megabytes: keep them mapped
    ws = np.empty(size, q.dtype)
    return ws[:B * T * H * Vd].reshape(B, T, H, Vd), ws[B * T * H * Vd:].reshape(B, H, T, S)


def _probabilities_of(out: Any, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    """P from the workspace behind a forward result, or None if ``out`` is not one."""
    ws = getattr(out, "base", None)
    B, T, H, _ = q.shape
    S, Vd = k.shape[1], v.shape[3]
    n = B * T * H * Vd
    if (not isinstance(ws, np.ndarray) or ws.ndim != 1 or ws.dtype != out.dtype or ws.size != n + B * H * T * S
            or ws.ctypes.data != out.ctypes.data or out.shape != (B, T, H, Vd) or not out.flags.c_contiguous):
        return None
    return ws[n:].reshape(B, H, T, S)


def attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: Any, drop: Any, scale: float) -> np.ndarray:
    out, P = _workspace(q, k, v)
    np.matmul(q.transpose(0, 2, 1, 3), k.transpose(0, 2, 3, 1), out=P)
    P *= np.asarray(scale, P.dtype)
    if mask is not None:
        P += _adder(mask, P.dtype)
    P -= P.max(axis=-1, keepdims=True)
    np.exp(P, out=P)
    P /= P.sum(axis=-1, keepdims=True)
    weights = P if drop is None else P * drop
    out.transpose(0, 2, 1, 3)[...] = weights @ v.transpose(0, 2, 1, 3)
    return out


def attention_backward(g: np.ndarray, out: Any, q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: Any, drop: Any,
                       scale: float, wanted: tuple[bool, bool, bool]) -> list:
    P = _probabilities_of(out, q, k, v)
    if P is None:
        P = _probabilities_of(attention_forward(q, k, v, mask, drop, scale), q, k, v)
    g = np.asarray(g, q.dtype)
    gh = g.transpose(0, 2, 1, 3)  # (B, H, T, Vd)
    vh = v.transpose(0, 2, 1, 3)
    dq = dk = dv = None
    if wanted[2]:
        weights = P if drop is None else P * drop
        dv = (weights.swapaxes(-1, -2) @ gh).transpose(0, 2, 1, 3)
    if wanted[0] or wanted[1]:
        dS = gh @ vh.swapaxes(-1, -2)  # the cotangent of the weights
        if drop is not None:
            dS *= drop
        dS -= (dS * P).sum(axis=-1, keepdims=True)
        dS *= P
        dS *= np.asarray(scale, dS.dtype)
        if wanted[0]:
            dq = (dS @ k.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
        if wanted[1]:
            dk = (dS.swapaxes(-1, -2) @ q.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    return [dq, dk, dv]


def reference_attention(named: dict[str, Any], scale: float, return_probabilities: bool = False) -> Any:
    """:data:`attention_p`'s result with ordinary ops (and P, with ``return_probabilities``)."""
    q, k, v, mask, drop = named["q"], named["k"], named["v"], named["mask"], named["drop"]
    scores = mul_p(matmul(transpose(q, (0, 2, 1, 3)), transpose(k, (0, 2, 3, 1))), scale)
    if mask is not None:
        dtype = np.result_type(_value(scores))
        scores = add_p(scores, _adder(_value(mask), dtype))
    P = softmax(scores, axis=-1)
    weights = P if drop is None else mul_p(P, drop)
    out = transpose(matmul(weights, transpose(v, (0, 2, 1, 3))), (0, 2, 1, 3))
    return (out, P) if return_probabilities else out


def _impl(q: Any, k: Any, v: Any, *rest: Any, parts: tuple[str, ...], scale: float) -> np.ndarray:
    named = _named((q, k, v, *rest), parts)
    return attention_forward(_value(q), _value(k), _value(v), _value(named["mask"]), _value(named["drop"]), scale)


def _rule(g: Any, out: Any, needs: tuple, inputs: tuple, params: dict) -> list:
    parts, scale = params["parts"], params["scale"]
    wanted = (bool(needs[0]), bool(needs[1]), bool(needs[2]))
    named = _named(inputs, parts)
    if _state.current() is None:  # nobody differentiates this pass: the NumPy backward directly
        grads = attention_backward(g, out, _value(named["q"]), _value(named["k"]), _value(named["v"]),
                                   _value(named["mask"]), _value(named["drop"]), scale, wanted)
        return grads + [None] * len(parts)
    flat = attention_bwd_p.apply(g, out, *inputs, parts=parts, scale=scale, wanted=wanted)
    grads: list = []
    start = 0
    for name, want in zip(("q", "k", "v"), wanted):
        if not want:
            grads.append(None)
            continue
        shape = np.shape(_value(named[name]))
        size = int(np.prod(shape))
        grads.append(reshape_p.apply(getitem_p.apply(flat, index=(slice(start, start + size),)), shape=shape))
        start += size
    return grads + [None] * len(parts)


def _backward_impl(g: Any, out: Any, q: Any, k: Any, v: Any, *rest: Any, parts: tuple[str, ...], scale: float,
                   wanted: tuple[bool, bool, bool]) -> np.ndarray:
    named = _named((q, k, v, *rest), parts)
    grads = attention_backward(g, np.asarray(out), _value(q), _value(k), _value(v), _value(named["mask"]),
                               _value(named["drop"]), scale, wanted)
    pieces = [np.ravel(d) for d, want in zip(grads, wanted) if want]
    return np.concatenate(pieces) if pieces else np.zeros(0, _value(q).dtype)


def _backward_rule(cot: Any, out: Any, needs: tuple, inputs: tuple, params: dict) -> list:
    g, _, *fwd = inputs
    parts, scale = params["parts"], params["scale"]
    named = _named(tuple(fwd), parts)
    wanted = [n for n, want in zip(("q", "k", "v"), params["wanted"]) if want]
    dg, grads = double_vjp(lambda named: reference_attention(named, scale), named, ["q", "k", "v"], wanted, g, cot)
    return [dg, None, grads["q"], grads["k"], grads["v"]] + [None] * len(parts)


attention_p = Primitive("attention", _impl, ("q", "k", "v", "extra"))
attention_p.defvjp_joint(_rule)
attention_bwd_p = Primitive("attention_bwd", _backward_impl, ("g", "out", "q", "k", "v", "extra"))
attention_bwd_p.defvjp_joint(_backward_rule)


def dot_product_attention(q: ArrayLike, k: ArrayLike, v: ArrayLike, scale: float, mask: Any = None,
                          dropout_mask: Any = None) -> Variable:
    """The fused attention of the module docstring (one op)."""
    qs, ks, vs = np.shape(_value(q)), np.shape(_value(k)), np.shape(_value(v))
    if (len(qs) != 4 or len(ks) != 4 or len(vs) != 4 or qs[0] != ks[0] or ks[:3] != vs[:3] or qs[2:] != ks[2:]):
        raise OpValueError(f"attention: q {qs}, k {ks} and v {vs} do not fit: expected (batch, T, heads, key_dim), "
                           f"(batch, S, heads, key_dim) and (batch, S, heads, value_dim)")
    parts, rest = [], []
    if mask is not None:
        parts.append("mask")
        rest.append(mask)
    if dropout_mask is not None:
        parts.append("drop")
        rest.append(dropout_mask)
    return attention_p.apply(q, k, v, *rest, parts=tuple(parts), scale=float(scale))


# -- self-attention with q, k and v packed in one array ---------------------------------------
# ``packed_attention_p(qkv, *optional, parts, scale)``: the same computation with
# ``qkv`` of shape ``(batch, T, 3, heads, dim)`` (q, k, v = qkv[:, :, 0], [:, :, 1], [:, :, 2]),
# which is what one product of the input with the three kernels side by side gives; its
# gradient is one array too.
def _unpack(qkv: Any) -> tuple[Any, Any, Any]:
    return tuple(getitem_p(qkv, index=(slice(None), slice(None), j)) for j in range(3))  # type: ignore[return-value]


def _packed_impl(qkv: Any, *rest: Any, parts: tuple[str, ...], scale: float) -> np.ndarray:
    named = _named((None, None, None, *rest), parts)
    q, k, v = _unpack(_value(qkv))
    return attention_forward(q, k, v, _value(named["mask"]), _value(named["drop"]), scale)


def _packed_gradient(g: Any, out: Any, qkv: np.ndarray, named: dict[str, Any], scale: float) -> np.ndarray:
    q, k, v = _unpack(qkv)
    dq, dk, dv = attention_backward(g, out, q, k, v, _value(named["mask"]), _value(named["drop"]), scale,
                                    (True, True, True))
    dqkv = np.empty(qkv.shape, qkv.dtype)
    dqkv[:, :, 0], dqkv[:, :, 1], dqkv[:, :, 2] = dq, dk, dv
    return dqkv


def _packed_rule(g: Any, out: Any, needs: tuple, inputs: tuple, params: dict) -> list:
    parts, scale = params["parts"], params["scale"]
    named = _named((None, None, None, *inputs[1:]), parts)
    if _state.current() is None:
        return [_packed_gradient(g, out, _value(inputs[0]), named, scale)] + [None] * len(parts)
    return [packed_attention_bwd_p.apply(g, out, *inputs, parts=parts, scale=scale)] + [None] * len(parts)


def _packed_backward_impl(g: Any, out: Any, qkv: Any, *rest: Any, parts: tuple[str, ...], scale: float) -> np.ndarray:
    named = _named((None, None, None, *rest), parts)
    return _packed_gradient(g, np.asarray(out), _value(qkv), named, scale)


def _packed_backward_rule(cot: Any, out: Any, needs: tuple, inputs: tuple, params: dict) -> list:
    g, _, qkv, *rest = inputs
    parts, scale = params["parts"], params["scale"]
    named = _named((None, None, None, *rest), parts)
    named["qkv"] = qkv

    def reference(named: dict[str, Any]) -> Any:
        q, k, v = _unpack(named["qkv"])
        return reference_attention({**named, "q": q, "k": k, "v": v}, scale)

    flat = reshape_p(cot, shape=(-1,))  # double_vjp packs the gradient flat
    dg, grads = double_vjp(reference, named, ["qkv"], ["qkv"], g, flat)
    return [dg, None, grads["qkv"]] + [None] * len(parts)


packed_attention_p = Primitive("packed_attention", _packed_impl, ("qkv", "extra"))
packed_attention_p.defvjp_joint(_packed_rule)
packed_attention_bwd_p = Primitive("packed_attention_bwd", _packed_backward_impl, ("g", "out", "qkv", "extra"))
packed_attention_bwd_p.defvjp_joint(_packed_backward_rule)


def packed_self_attention(qkv: ArrayLike, scale: float, mask: Any = None, dropout_mask: Any = None) -> Variable:
    """:func:`dot_product_attention` of ``qkv[:, :, 0]``, ``[:, :, 1]`` and ``[:, :, 2]``
    (``qkv`` of shape ``(batch, T, 3, heads, dim)``), as one op."""
    shape = np.shape(_value(qkv))
    if len(shape) != 5 or shape[2] != 3:
        raise OpValueError(f"attention: packed qkv must have shape (batch, T, 3, heads, dim), got {shape}")
    parts, rest = [], []
    if mask is not None:
        parts.append("mask")
        rest.append(mask)
    if dropout_mask is not None:
        parts.append("drop")
        rest.append(dropout_mask)
    return packed_attention_p.apply(qkv, *rest, parts=tuple(parts), scale=float(scale))
