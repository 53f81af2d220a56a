"""Fused, numerically stable cross-entropy primitives (used by ``tapegrad.nn.losses``).

* ``sparse_softmax_cross_entropy(logits, labels, reduction)``: ``logsumexp(x) - x[label]``
  along the last axis, optionally summed or averaged over all samples, in one NumPy pass.
  Its VJP is a second fused primitive, ``g * (softmax(x) - onehot(labels))``.
* ``softmax_cross_entropy(logits, targets, axis)``: ``-sum(targets * log_softmax(x))``
  along ``axis`` (one value per sample).
* ``sigmoid_cross_entropy(logits, targets)``: elementwise
  ``max(x, 0) - x * t + log1p(exp(-|x|))`` (exact at both tails).
* ``take_class(x, labels)``: ``x[..., label]`` along the last axis, with its transpose
  ``put_class`` (scatter into zeros) as VJP; each is the other's VJP, so both are
  differentiable to any order.

All logits paths subtract the maximum along the class axis, so they are finite, with
finite gradients, for logits of 1e4 and beyond. Labels are an input of the primitives
(not a parameter), so a compiled Function that takes the labels as an argument reads
them at every call. Labels are never differentiated.

Every VJP rule is written with primitives (``softmax_p``, ``log_softmax_p``,
``sigmoid_p``, ...), so the losses are differentiable to second and higher order.

Speed notes (NumPy, classes on the last axis): reducing a short last axis
(``x.max(axis=-1)`` on ``(512, 10)``) costs ~10x more than the same reduction over the
leading axis of the transposed copy, so the per-row maximum is taken on ``x.T.copy()``
for up to 64 classes, and per-row sums are a matrix-vector product.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError
from ._axis import axis_index
from .activation import log_softmax_p, sigmoid_p, softmax_p
from .reduction import reduce_sum_p
from .shape import reshape_p

ArrayLike = Any

REDUCTIONS = ("none", "sum", "mean")
_SMALL_CLASSES = 64  # up to this many classes, take row maxima on the transposed copy
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


# -- helpers (NumPy) ---------------------------------------------------------------------
def _rows(x: np.ndarray) -> np.ndarray:
    """x as a 2-D (samples, classes) array (a view when possible)."""
    return x.reshape(-1, x.shape[-1])


def _row_max(x2: np.ndarray) -> np.ndarray:
    """Maximum of each row of a 2-D array, shape (rows,)."""
    if x2.shape[1] <= _SMALL_CLASSES and x2.shape[0] > 1:
        return x2.T.copy().max(axis=0)
    return x2.max(axis=1)


_ones: dict[tuple[int, np.dtype], np.ndarray] = {}
_aranges: dict[int, np.ndarray] = {}


def _row_sum(x2: np.ndarray) -> np.ndarray:
    """Sum of each row of a 2-D float array (a matrix-vector product: BLAS, not a strided reduce)."""
    key = (x2.shape[1], x2.dtype)
    ones = _ones.get(key)
    if ones is None:
        if len(_ones) > 16:
            _ones.clear()
        ones = _ones[key] = np.ones(key[0], dtype=key[1])
        ones.flags.writeable = False
    return x2 @ ones


def _arange(n: int) -> np.ndarray:
    """np.arange(n), cached (row indices for picking one entry per row)."""
    r = _aranges.get(n)
    if r is None:
        if len(_aranges) > 16:
            _aranges.clear()
        r = _aranges[n] = np.arange(n)
        r.flags.writeable = False
    return r


def _index(labels: Any, op: str) -> np.ndarray:
    """Labels as a flat index array. Signed labels are viewed as unsigned, so that a negative
    label is out of bounds (an IndexError) instead of silently counting from the end."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "i":
        labels = labels.view(_UNSIGNED[labels.dtype.itemsize])
    elif labels.dtype.kind != "u":
        raise OpTypeError(f"{op}: labels must be integers, got dtype {labels.dtype}")
    return labels.reshape(-1)


def _check_index(idx: np.ndarray, labels: Any, x2: np.ndarray, op: str) -> None:
    # NumPy casts uint64 indices to intp (a viewed negative int64 label would wrap around
    # again), so 8-byte labels are range-checked explicitly; smaller ones fail as IndexError.
    if idx.dtype.itemsize == 8 and idx.size and idx.max() >= x2.shape[1]:
        raise _label_error(op, labels, x2)


def _label_error(op: str, labels: Any, x: Any) -> OpValueError:
    """Why integer ``labels`` do not index the last axis of ``x``."""
    labels, shape = np.asarray(labels), np.shape(x)
    if not shape or labels.size != int(np.prod(shape[:-1], dtype=np.int64)):
        return OpValueError(f"{op}: labels of shape {labels.shape} do not match logits of shape {shape} "
                            f"(expected {shape[:-1]})")
    lo, hi = labels.min(), labels.max()
    bad = lo if lo < 0 else hi
    return OpValueError(f"{op}: label {bad} is out of range [0, {shape[-1]}) for logits of shape {shape} "
                        f"(labels of shape {labels.shape})")


def _pick(x2: np.ndarray, idx: np.ndarray, labels: Any, op: str) -> np.ndarray:
    """x2[row, label] for each row (a copy), with a clear error for bad labels."""
    _check_index(idx, labels, x2, op)
    try:
        return x2[_arange(x2.shape[0]), idx]
    except IndexError:
        raise _label_error(op, labels, x2) from None


def _label_check(vals: list, params: dict) -> str | None:
    labels = np.asarray(vals[1])
    if labels.dtype.kind not in "iu":
        return f"labels must be integers, got dtype {labels.dtype}"
    return str(_label_error("", labels, vals[0])).removeprefix(": ")


def _keep_shape(x: Any) -> tuple[int, ...]:
    """The shape of a per-sample value with the class axis kept (length 1)."""
    return np.shape(x)[:-1] + (1,)


# -- sparse softmax cross-entropy ------------------------------------------------------------
def _sce_impl(logits: Any, labels: Any, reduction: str) -> Any:
    x = np.asarray(logits)
    x2 = _rows(x)
    n = x2.shape[0]
    idx = _index(labels, "sparse_softmax_cross_entropy")
    shifted = x2 - _row_max(x2)[:, None]
    e = np.exp(shifted)
    sums = _row_sum(e)
    loss = np.log(sums)
    loss -= _pick(shifted, idx, labels, "sparse_softmax_cross_entropy")
    if reduction == "none":
        out: Any = loss.reshape(x.shape[:-1])
    else:
        out = loss.sum()
        if reduction == "mean":
            out = out / n if n else out * np.nan
    return out


def _scale(g: Any, n: int, reduction: str) -> Any:
    """The cotangent of each sample's loss: g itself ("none", "sum") or g / n ("mean")."""
    if reduction == "mean":
        return g / n if n else g * 0
    return g


def _sce_grad_impl(g: Any, logits: Any, labels: Any, reduction: str) -> np.ndarray:
    x = np.asarray(logits)
    x2 = _rows(x)
    n = x2.shape[0]
    idx = _index(labels, "sparse_softmax_cross_entropy_grad")
    p = np.exp(x2 - _row_max(x2)[:, None])
    p /= _row_sum(p)[:, None]
    rows = _arange(n)
    _check_index(idx, labels, x2, "sparse_softmax_cross_entropy_grad")
    try:
        p[rows, idx] -= 1
    except IndexError:
        raise _label_error("sparse_softmax_cross_entropy_grad", labels, x2) from None
    if reduction == "none":
        p *= np.reshape(g, (-1, 1))
    else:
        p *= _scale(g, n, reduction)
    return p.reshape(x.shape)


def _sce_logits_rule(g: Any, out: Any, x: Any, labels: Any, reduction: str) -> Any:
    return sce_grad_p(g, x, labels, reduction=reduction)


def _softmax_minus_onehot(x: Any, labels: Any) -> Any:
    """softmax(x) - onehot(labels), along the last axis (a differentiable expression of x)."""
    return softmax_p(x, axis=np.ndim(x) - 1) - one_hot_labels_p(labels, depth=np.shape(x)[-1],
                                                                 dtype=np.result_type(x))


def _sce_grad_g_rule(gout: Any, out: Any, g: Any, x: Any, labels: Any, reduction: str) -> Any:
    # grad = c(g) * d with d = softmax(x) - onehot: its derivative in g contracts gout with d.
    d = gout * _softmax_minus_onehot(x, labels)
    if reduction == "none":
        return reduce_sum_p(d, axis=(np.ndim(x) - 1,), keepdims=False)
    total = reduce_sum_p(d, axis=None, keepdims=False)
    n = int(np.prod(np.shape(x)[:-1], dtype=np.int64))
    return _scale(total, n, reduction)


def _sce_grad_x_rule(gout: Any, out: Any, g: Any, x: Any, labels: Any, reduction: str) -> Any:
    # d/dx of c(g) * softmax(x): the softmax VJP applied to u = c(g) * gout.
    axis = np.ndim(x) - 1
    if reduction == "none":
        u = gout * reshape_p(g, shape=_keep_shape(x))
    else:
        n = int(np.prod(np.shape(x)[:-1], dtype=np.int64))
        u = gout * _scale(g, n, reduction)
    s = softmax_p(x, axis=axis)
    return s * (u - reduce_sum_p(u * s, axis=(axis,), keepdims=True))


def _one_hot_labels_impl(labels: Any, depth: int, dtype: Any) -> np.ndarray:
    labels = np.asarray(labels)
    out = np.zeros((labels.size, depth), dtype=dtype)
    idx = _index(labels, "one_hot_labels")
    _check_index(idx, labels, out, "one_hot_labels")
    out[_arange(labels.size), idx] = 1
    return out.reshape(labels.shape + (depth,))


one_hot_labels_p = Primitive("one_hot_labels", _one_hot_labels_impl, ("labels",), differentiable=False)

sce_p = Primitive("sparse_softmax_cross_entropy", _sce_impl, ("logits", "labels"), check=_label_check)
sce_p.defvjp(_sce_logits_rule, lambda g, out, x, labels, reduction: None)

sce_grad_p = Primitive("sparse_softmax_cross_entropy_grad", _sce_grad_impl, ("g", "logits", "labels"))
sce_grad_p.defvjp(_sce_grad_g_rule, _sce_grad_x_rule, lambda gout, out, g, x, labels, reduction: None)


# -- dense softmax cross-entropy -----------------------------------------------------------------
def _softmax_ce_impl(logits: Any, targets: Any, axis: int) -> np.ndarray:
    x = np.asarray(logits)
    m = np.max(x, axis=axis, keepdims=True) if axis != x.ndim - 1 else _row_max(_rows(x)).reshape(_keep_shape(x))
    shifted = x - m
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return -np.sum(targets * log_probs, axis=axis)


def _expand_at(g: Any, x: Any, axis: int) -> Any:
    shape = list(np.shape(x))
    shape[axis] = 1
    return reshape_p(g, shape=tuple(shape))


def _softmax_ce_logits_rule(g: Any, out: Any, x: Any, t: Any, axis: int) -> Any:
    # d/dx = softmax(x) * sum(t) - t (sum(t) = 1 for a distribution)
    ge = _expand_at(g, x, axis)
    return ge * (softmax_p(x, axis=axis) * reduce_sum_p(t, axis=(axis,), keepdims=True) - t)


def _softmax_ce_targets_rule(g: Any, out: Any, x: Any, t: Any, axis: int) -> Any:
    return -(_expand_at(g, x, axis) * log_softmax_p(x, axis=axis))


softmax_ce_p = Primitive("softmax_cross_entropy", _softmax_ce_impl, ("logits", "targets"), broadcasting=True)
softmax_ce_p.defvjp(_softmax_ce_logits_rule, _softmax_ce_targets_rule)


# -- sigmoid (binary) cross-entropy --------------------------------------------------------------
def _sigmoid_ce_impl(logits: Any, targets: Any) -> Any:
    x = np.asarray(logits)
    return (np.maximum(x, 0) - x * targets) + np.log1p(np.exp(-np.abs(x)))


sigmoid_ce_p = Primitive("sigmoid_cross_entropy", _sigmoid_ce_impl, ("logits", "targets"), broadcasting=True)
sigmoid_ce_p.defvjp(
    lambda g, out, x, t: g * (sigmoid_p(x) - t),
    lambda g, out, x, t: -(g * x),
)


# -- take_class / put_class -------------------------------------------------------------------------
def _take_class_impl(x: Any, labels: Any) -> np.ndarray:
    x = np.asarray(x)
    x2 = _rows(x)
    return _pick(x2, _index(labels, "take_class"), labels, "take_class").reshape(x.shape[:-1])


def _put_class_impl(g: Any, labels: Any, depth: int) -> np.ndarray:
    g = np.asarray(g)
    out = np.zeros((g.size, depth), dtype=g.dtype)
    idx = _index(labels, "put_class")
    _check_index(idx, labels, out, "put_class")
    out[_arange(g.size), idx] = g.reshape(-1)
    return out.reshape(g.shape + (depth,))


take_class_p = Primitive("take_class", _take_class_impl, ("x", "labels"), check=_label_check)
put_class_p = Primitive("put_class", _put_class_impl, ("g", "labels"))
take_class_p.defvjp(lambda g, out, x, labels: put_class_p(g, labels, depth=np.shape(x)[-1]), lambda *a: None)
put_class_p.defvjp(lambda g, out, x, labels, depth: take_class_p(g, labels), lambda *a, **k: None)


# ---------------------------------------------------------------------------------------------
# Public functions.
# ---------------------------------------------------------------------------------------------
def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(x._value if isinstance(x, Variable) else x)


def _check_reduction(reduction: str, op: str) -> str:
    if reduction not in REDUCTIONS:
        raise OpValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def sparse_softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike, reduction: str = "none") -> Variable:
    """Cross-entropy of integer ``labels`` (shape ``logits.shape[:-1]``) against ``logits``
    (classes on the last axis): ``logsumexp(logits) - logits[label]`` per sample, or its
    ``"sum"`` or ``"mean"`` over all samples. Stable for logits of any magnitude."""
    return sce_p.apply(logits, labels, reduction=_check_reduction(reduction, "sparse_softmax_cross_entropy"))


def softmax_cross_entropy(logits: ArrayLike, targets: ArrayLike, axis: int = -1) -> Variable:
    """``-sum(targets * log_softmax(logits), axis)``: one value per sample. Stable."""
    shape = _shape(logits)
    return softmax_ce_p.apply(logits, targets, axis=axis_index(axis, len(shape), "softmax_cross_entropy",
                                                               shape=shape))


def sigmoid_cross_entropy(logits: ArrayLike, targets: ArrayLike) -> Variable:
    """Elementwise binary cross-entropy of ``targets`` in [0, 1] against ``logits``:
    ``softplus(x) - x * t``, computed as ``max(x, 0) - x t + log1p(exp(-|x|))``."""
    return sigmoid_ce_p.apply2(logits, targets)


def take_class(x: ArrayLike, labels: ArrayLike) -> Variable:
    """``x[..., labels]``: the entry of each row's last axis at its integer label."""
    return take_class_p.apply2(x, labels)


# -- forward mode ----------------------------------------------------------------------------------
def _sce_jvp(t: Any, out: Any, x: Any, labels: Any, reduction: str) -> Any:
    # each row's loss moves by sum((softmax - onehot) * t) over the classes
    rows = reduce_sum_p(_softmax_minus_onehot(x, labels) * t, axis=(np.ndim(x) - 1,), keepdims=False)
    if reduction == "none":
        return rows
    n = int(np.prod(np.shape(x)[:-1], dtype=np.int64))
    return _scale(reduce_sum_p(rows, axis=None, keepdims=False), n, reduction)


def _sce_grad_x_jvp(t: Any, out: Any, g: Any, x: Any, labels: Any, reduction: str) -> Any:
    # c(g) * softmax(x) moves by c(g) * s * (t - sum(s * t)) (the softmax's symmetric Jacobian)
    axis = np.ndim(x) - 1
    if reduction == "none":
        c = reshape_p(g, shape=_keep_shape(x))
    else:
        c = _scale(g, int(np.prod(np.shape(x)[:-1], dtype=np.int64)), reduction)
    s = softmax_p(x, axis=axis)
    return c * (s * (t - reduce_sum_p(s * t, axis=(axis,), keepdims=True)))


sce_p.defjvp(_sce_jvp, None)
sce_grad_p.defjvp(lambda t, out, g, x, labels, reduction: sce_grad_p(t, x, labels, reduction=reduction),
                  _sce_grad_x_jvp, None)
softmax_ce_p.defjvp(
    lambda t, out, x, targets, axis: reduce_sum_p(
        (softmax_p(x, axis=axis) * reduce_sum_p(targets, axis=(axis,), keepdims=True) - targets) * t,
        axis=(axis,), keepdims=False),
    lambda t, out, x, targets, axis: -reduce_sum_p(log_softmax_p(x, axis=axis) * t, axis=(axis,), keepdims=False),
)
sigmoid_ce_p.defjvp_diagonal()
take_class_p.defjvp_linear()
put_class_p.defjvp_linear()
