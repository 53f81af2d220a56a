"""Activation and normalisation primitives: sigmoid, relu, softplus, softmax, log_softmax.

All are written to be stable for large inputs: sigmoid and softplus go through
``logaddexp`` (no overflow for |x| of 1e4), and softmax/log_softmax subtract the
maximum along the axis first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ._arguments import operand
from ._axis import axis_index
from .elementwise import exp_p, greater_p, where_p
from .reduction import reduce_sum_p

ArrayLike = Any


def sigmoid_into(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) into ``out`` in four in-place passes. exp(-x) may overflow to inf
    for very negative x, which gives the exact limit 0 (the warning is silenced); the
    relative error is ~1 ulp, as for exp(-logaddexp(0, -x)), at a quarter of its cost."""
    with np.errstate(over="ignore"):
        np.negative(x, out=out)
        np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


def _sigmoid_impl(x: Any) -> Any:
    if x.__class__ is np.ndarray and x.dtype.kind == "f":
        return sigmoid_into(x, np.empty_like(x))
    # np.asarray first: a Python number would be weakly typed and give float16 (3 digits).
    x = np.asarray(x)
    x = np.asarray(x, dtype=np.result_type(x, np.float16))
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x[()] if x.ndim == 0 else -x))


sigmoid_p = Primitive("sigmoid", _sigmoid_impl)
sigmoid_p.defvjp(lambda g, out, x: g * (out * (1 - out)))

relu_p = Primitive("relu", lambda x: np.maximum(x, 0))
# relu'(0) = 0. The mask is read from the output (out > 0 exactly where x > 0): then nothing
# after the forward pass needs the pre-activation, and a compiled graph computes matmul, bias
# and relu in one buffer.
relu_p.defvjp(lambda g, out, x: where_p(greater_p(out, 0), g, 0))


def _softplus_impl(x: Any) -> Any:
    # max(x, 0) + log1p(exp(-|x|)): stable at both tails, ~3x faster than logaddexp
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


softplus_p = Primitive("softplus", _softplus_impl)
softplus_p.defvjp(lambda g, out, x: g * sigmoid_p(x))


def _softmax_impl(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


softmax_p = Primitive("softmax", _softmax_impl)
softmax_p.defvjp(lambda g, out, x, axis: out * (g - reduce_sum_p(g * out, axis=(axis,), keepdims=True)))


def _log_softmax_impl(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


log_softmax_p = Primitive("log_softmax", _log_softmax_impl)
log_softmax_p.defvjp(
    lambda g, out, x, axis: g - exp_p(out) * reduce_sum_p(g, axis=(axis,), keepdims=True)
)


# Forward mode: sigmoid, relu and softplus are elementwise; softmax's Jacobian, diag(s) - s s^T,
# is symmetric, so its VJP rule is its JVP rule; log_softmax's is I - 1 s^T.
for _prim in (sigmoid_p, relu_p, softplus_p, softmax_p):
    _prim.defjvp_diagonal()
log_softmax_p.defjvp(lambda t, out, x, axis: t - reduce_sum_p(exp_p(out) * t, axis=(axis,), keepdims=True))


def sigmoid(x: ArrayLike) -> Variable:
    """1 / (1 + exp(-x)), stable for large |x|."""
    return sigmoid_p.apply1(x)


def relu(x: ArrayLike) -> Variable:
    """max(x, 0); its derivative at 0 is 0."""
    return relu_p.apply1(x)


def softplus(x: ArrayLike) -> Variable:
    """log(1 + exp(x)), stable for large |x|."""
    return softplus_p.apply1(x)


def _axis(x: ArrayLike, axis: int, op: str) -> int:
    shape = np.shape(x._value if isinstance(x, Variable) else x)  # (x is an operand() already)
    return axis_index(axis, len(shape), op, shape=shape)


def softmax(x: ArrayLike, axis: int = -1) -> Variable:
    """exp(x) / sum(exp(x)) along ``axis``, computed stably."""
    x = operand(x, "softmax")
    return softmax_p.apply(x, axis=_axis(x, axis, "softmax"))


def log_softmax(x: ArrayLike, axis: int = -1) -> Variable:
    """x - logsumexp(x) along ``axis``, stable for logits of 1e4 and more."""
    x = operand(x, "log_softmax")
    return log_softmax_p.apply(x, axis=_axis(x, axis, "log_softmax"))
