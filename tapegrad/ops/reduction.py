"""Reductions: sum, mean, max, min, prod, logsumexp, any/all, argmax/argmin.

``axis`` may be None (all axes), an int or a tuple of ints (checked by ``_axis``);
``keepdims`` keeps the reduced axes with length 1. Every VJP first reshapes the
cotangent to the keepdims shape, then broadcasts it against the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff.broadcast import astype_p, broadcast_like_p
from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ._arguments import operand
from ._axis import axis_index, axis_tuple
from .elementwise import equal_p, exp_p
from .shape import concat_p, expand_dims_p, getitem_p, reshape_p, transpose_p

ArrayLike = Any


def _expand(g: Any, x: Any, axis: tuple[int, ...] | None, keepdims: bool) -> Any:
    """A reduced cotangent with the reduced axes put back (length 1), by axis number."""
    if keepdims:
        return g
    return expand_dims_p(g, axes=tuple(range(np.ndim(x))) if axis is None else axis)


def _inverse_count_impl(x: Any, axis: tuple[int, ...] | None) -> Any:
    shape = np.shape(x)
    count = int(np.prod(shape if axis is None else [shape[a] for a in axis], dtype=np.int64))
    return np.result_type(x).type(1.0 / count) if count else np.result_type(x).type(np.inf)


# 1 / (the number of elements a mean averages), read from x at run time: not differentiable.
inverse_count_p = Primitive("inverse_count", _inverse_count_impl, differentiable=False)

reduce_sum_p = Primitive("reduce_sum", lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims))
reduce_sum_p.defvjp(lambda g, out, x, axis, keepdims: broadcast_like_p(_expand(g, x, axis, keepdims), x))

reduce_mean_p = Primitive("reduce_mean", lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims))
reduce_mean_p.defvjp(
    lambda g, out, x, axis, keepdims: broadcast_like_p(
        _expand(g, x, axis, keepdims) * inverse_count_p(x, axis=axis), x)
)


def _chooser_rule(g: Any, out: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    # Every element equal to the extreme value gets an equal share of the gradient.
    mask = astype_p(equal_p(x, _expand(out, x, axis, keepdims)), dtype=np.result_type(out))
    share = _expand(g, x, axis, keepdims) / reduce_sum_p(mask, axis=axis, keepdims=True)
    return mask * share


reduce_max_p = Primitive("reduce_max", lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims))
reduce_max_p.defvjp(_chooser_rule)
reduce_min_p = Primitive("reduce_min", lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims))
reduce_min_p.defvjp(_chooser_rule)


# -- prod: its VJP is the product of the other elements, computed without division ----------
reduce_prod_p = Primitive("reduce_prod", lambda x, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims))


def _inclusive_products(rows: Any, n: int, last: int, from_end: bool) -> Any:
    """Running products along the last axis (of length n): x0, x0 x1, ... (or, from_end,
    ..., x(n-2) x(n-1), x(n-1)). A log-step scan of slices and multiplications only, so
    that it is differentiable to any order and exact where elements are zero."""
    step = 1
    while step < n:
        head = getitem_p(rows, index=(Ellipsis, slice(0, n - step)))
        tail = getitem_p(rows, index=(Ellipsis, slice(step, n)))
        if from_end:
            rows = concat_p(head * tail, getitem_p(rows, index=(Ellipsis, slice(n - step, n))), axis=last)
        else:
            rows = concat_p(getitem_p(rows, index=(Ellipsis, slice(0, step))), tail * head, axis=last)
        step *= 2
    return rows


def _products_of_others(rows: Any, n: int, last: int) -> Any:
    """For each element along the last axis (n >= 2), the product of the other elements."""
    before = _inclusive_products(rows, n, last, from_end=False)
    after = _inclusive_products(rows, n, last, from_end=True)
    return concat_p(
        getitem_p(after, index=(Ellipsis, slice(1, 2))),
        getitem_p(before, index=(Ellipsis, slice(0, n - 2))) * getitem_p(after, index=(Ellipsis, slice(2, n))),
        getitem_p(before, index=(Ellipsis, slice(n - 2, n - 1))),
        axis=last,
    )


def _prod_rule(g: Any, out: Any, x: Any, axis: tuple[int, ...] | None, keepdims: bool) -> Any:
    # d prod / d x_i is the product of the other elements of x_i's slice. out / x_i would be
    # NaN where x_i == 0 (and wrong for two zeros): the reduced axes are moved last and
    # flattened, and the products of the others come from prefix and suffix products.
    shape = np.shape(x)
    reduced = tuple(range(len(shape))) if axis is None else axis
    kept = tuple(a for a in range(len(shape)) if a not in reduced)
    perm = kept + reduced
    moved = perm != tuple(range(len(shape)))
    lead = tuple(shape[a] for a in kept)
    n = int(np.prod([shape[a] for a in reduced], dtype=np.int64))
    g_rows = reshape_p(g, shape=lead + (1,))
    if n < 2:  # one element: its derivative is 1 (none: an empty gradient)
        d = g_rows if n == 1 else g_rows * reshape_p(x, shape=lead + (0,))
    else:
        rows = reshape_p(transpose_p(x, perm=perm) if moved else x, shape=lead + (n,))
        d = g_rows * _products_of_others(rows, n, len(lead))
    d = reshape_p(d, shape=tuple(shape[a] for a in perm))
    return transpose_p(d, perm=tuple(int(i) for i in np.argsort(perm))) if moved else d


reduce_prod_p.defvjp(_prod_rule)

# -- any / all (not differentiable) ---------------------------------------------------------
reduce_any_p = Primitive("reduce_any", lambda x, axis, keepdims: np.any(x, axis=axis, keepdims=keepdims),
                         differentiable=False)
reduce_all_p = Primitive("reduce_all", lambda x, axis, keepdims: np.all(x, axis=axis, keepdims=keepdims),
                         differentiable=False)


def _logsumexp_impl(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)  # all -inf (or inf) along the axis: no shift
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.reshape(out, np.shape(np.sum(x, axis=axis)))


logsumexp_p = Primitive("logsumexp", _logsumexp_impl)


def _logsumexp_rule(g: Any, out: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    # The derivative is softmax(x). exp(x - out) alone is off by the factor exp(out - round(out)),
    # the same for a whole reduced slice: ~1e-4 in float32 at logits of 1e4, ~40% at 1e7.
    # Normalising cancels that factor (and, being shift-invariant, adds no gradient through out).
    e = exp_p(x - _expand(out, x, axis, keepdims))
    return _expand(g, x, axis, keepdims) * (e / reduce_sum_p(e, axis=axis, keepdims=True))


logsumexp_p.defvjp(_logsumexp_rule)


def _reduction_jvp(vjp_rule: Any) -> Any:
    """The JVP of a reduction whose output element depends on its own slice only: the VJP of
    a cotangent of ones gives the derivative of each output element with respect to each
    element of its slice, and the tangent is their sum weighted by the input's tangent."""

    def jvp(t: Any, out: Any, x: Any, axis: Any, keepdims: bool) -> Any:
        weights = vjp_rule(np.ones(np.shape(out), np.result_type(out)), out, x, axis, keepdims)
        return reduce_sum_p(weights * t, axis=axis, keepdims=keepdims)

    return jvp


reduce_sum_p.defjvp_linear()
reduce_mean_p.defjvp_linear()
for _prim, _rule in ((reduce_max_p, _chooser_rule), (reduce_min_p, _chooser_rule), (reduce_prod_p, _prod_rule),
                     (logsumexp_p, _logsumexp_rule)):
    _prim.defjvp(_reduction_jvp(_rule))

argmax_p = Primitive("argmax", lambda x, axis: np.argmax(x, axis=axis), differentiable=False)
argmin_p = Primitive("argmin", lambda x, axis: np.argmin(x, axis=axis), differentiable=False)


def reduce_over(prim: Primitive, x: ArrayLike, axis: Any, keepdims: bool, op: str | None = None) -> Variable:
    """Apply the reduction ``prim`` over a checked ``axis``; errors name ``op`` (default: prim's name)."""
    x = operand(x, op or prim.name)
    shape = np.shape(x._value if isinstance(x, Variable) else x)
    return prim.apply(x, axis=axis_tuple(axis, len(shape), op or prim.name, shape=shape), keepdims=bool(keepdims))


def reduce_sum(x: ArrayLike, axis: Any = None, keepdims: bool = False) -> Variable:
    """Sum over ``axis`` (None: all axes)."""
    return reduce_over(reduce_sum_p, x, axis, keepdims)


def reduce_mean(x: ArrayLike, axis: Any = None, keepdims: bool = False) -> Variable:
    """Mean over ``axis`` (None: all axes)."""
    return reduce_over(reduce_mean_p, x, axis, keepdims)


def reduce_max(x: ArrayLike, axis: Any = None, keepdims: bool = False) -> Variable:
    """Maximum over ``axis``; tied maxima share the gradient evenly."""
    return reduce_over(reduce_max_p, x, axis, keepdims)


def reduce_min(x: ArrayLike, axis: Any = None, keepdims: bool = False) -> Variable:
    """Minimum over ``axis``; tied minima share the gradient evenly."""
    return reduce_over(reduce_min_p, x, axis, keepdims)


def prod(x: ArrayLike, axis: Any = None, keepdims: bool = False) -> Variable:
    """Product over ``axis`` (None: all axes). The gradient of each element is the product
    of the others, exact also where x has zeros; differentiable to any order."""
    return reduce_over(reduce_prod_p, x, axis, keepdims, "prod")


def reduce_any(x: ArrayLike, axis: Any = None, keepdims: bool = False) -> Variable:
    """Whether any element over ``axis`` is true (non-zero), as a bool Variable. Not differentiable."""
    return reduce_over(reduce_any_p, x, axis, keepdims, "any")


def reduce_all(x: ArrayLike, axis: Any = None, keepdims: bool = False) -> Variable:
    """Whether all elements over ``axis`` are true (non-zero), as a bool Variable. Not differentiable."""
    return reduce_over(reduce_all_p, x, axis, keepdims, "all")


def logsumexp(x: ArrayLike, axis: Any = None, keepdims: bool = False) -> Variable:
    """log(sum(exp(x))) over ``axis``, computed stably (no overflow for logits of 1e4)."""
    return reduce_over(logsumexp_p, x, axis, keepdims)


def _arg(prim: Primitive, x: ArrayLike, axis: Any) -> Variable:
    x = operand(x, prim.name)
    if axis is not None:
        shape = np.shape(x._value if isinstance(x, Variable) else x)
        axis = axis_index(axis, len(shape), prim.name, shape=shape)
    return prim.apply(x, axis=axis)


def argmax(x: ArrayLike, axis: Any = None) -> Variable:
    """Index of the maximum along ``axis`` (None: of the flattened array). Not differentiable."""
    return _arg(argmax_p, x, axis)


def argmin(x: ArrayLike, axis: Any = None) -> Variable:
    """Index of the minimum along ``axis`` (None: of the flattened array). Not differentiable."""
    return _arg(argmin_p, x, axis)
