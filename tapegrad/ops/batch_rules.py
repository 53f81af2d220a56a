"""Batching rules: how each primitive runs on a batch of examples at once (for ``vmap``).

A rule ``rule(args, dims, **params) -> (out, out_dim)`` receives the arguments as batched
values with ``dims[i]`` the axis of argument i that runs over the examples (None: the
argument is the same for every example), and returns the batched result and its batch
axis. Rules apply primitives, so a batched computation is recorded by tapes, traced by
compiled Functions and seen by forward traces like any other.

Most rules come from a few shapes of op (elementwise, reductions over an ``axis``,
leading-axes ops); the rest are written out. ``tapegrad.compiler.vmap`` is the
interpreter that uses them.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..autodiff.broadcast import (
    _sum_axes,
    astype_p,
    broadcast_like_p,
    broadcast_to_p,
    sum_like_p,
    sum_to_p,
)
from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from . import (
    activation,
    constant,
    elementwise,
    elementwise_math,
    indexing,
    linalg,
    linalg_decompositions,
    linalg_inverse,
    loss_ops,
    manipulation,
    nn_ops,
    pooling,
    products,
    scans,
    tiling,
    windows,
)
from . import reduction as reduction_ops
from .conv import patch_matrix_p, patch_matrix_transpose_p  # (the package's `conv` is the op)
from .indexing import ARRAY
from .shape import concat_p, expand_dims_p, reshape_p, squeeze_p, transpose_p

Rule = Callable[..., tuple[Any, Any]]


# -- moving the batch axis ----------------------------------------------------------------------
def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(x._value if x.__class__ is Variable else x)


def to_front(x: Any, dim: int | None) -> Any:
    """x with its batch axis first (x itself when it is first already)."""
    if dim is None or dim == 0:
        return x
    rank = len(_shape(x))
    return transpose_p(x, perm=(dim,) + tuple(a for a in range(rank) if a != dim))


def batched(x: Any, dim: int | None, size: int) -> Any:
    """x with its batch axis first; an unbatched x is broadcast along a new first axis."""
    if dim is None:
        return broadcast_to_p(x, shape=(size,) + _shape(x))
    return to_front(x, dim)


def with_rank(x: Any, rank: int) -> Any:
    """A batch-first x whose examples have ``rank`` axes: unit axes are inserted after the batch
    axis, so that examples of lower rank broadcast as they would alone."""
    missing = rank - (len(_shape(x)) - 1)
    return x if missing <= 0 else expand_dims_p(x, axes=tuple(range(1, 1 + missing)))


def batch_size(args: list, dims: list) -> int:
    for a, d in zip(args, dims):
        if d is not None:
            return _shape(a)[d]
    raise AssertionError("a batching rule was called without a batched argument")


def _example_rank(x: Any, dim: int | None) -> int:
    return len(_shape(x)) - (dim is not None)


# -- rules by the shape of the op ------------------------------------------------------------------
def unary(prim: Primitive) -> Rule:
    """An elementwise op of one argument: the batch axis stays where it is."""
    def rule(args: list, dims: list, **params: Any) -> tuple[Any, Any]:
        return prim(args[0], **params), dims[0]
    return rule


def broadcasting(prim: Primitive) -> Rule:
    """An elementwise op with NumPy broadcasting: batched arguments go batch-first with the
    examples' ranks equalised; unbatched ones broadcast against them as they are."""
    def rule(args: list, dims: list, **params: Any) -> tuple[Any, Any]:
        rank = max(_example_rank(a, d) for a, d in zip(args, dims))
        moved = [a if d is None else with_rank(to_front(a, d), rank) for a, d in zip(args, dims)]
        return prim(*moved, **params), 0
    return rule


def _shift(axis: Any, rank: int) -> Any:
    """Example axes (a tuple, or None for all of them) as axes of the batch-first value."""
    return tuple(range(1, rank + 1)) if axis is None else tuple(a + 1 for a in axis)


def reducing(prim: Primitive) -> Rule:
    """An op over ``axis`` (a tuple of example axes, or None for all)."""
    def rule(args: list, dims: list, axis: Any, **params: Any) -> tuple[Any, Any]:
        x = to_front(args[0], dims[0])
        return prim(x, axis=_shift(axis, len(_shape(x)) - 1), **params), 0
    return rule


def along(prim: Primitive) -> Rule:
    """An op along one example axis ``axis`` (an int)."""
    def rule(args: list, dims: list, axis: int, **params: Any) -> tuple[Any, Any]:
        x = to_front(args[0], dims[0])
        return prim(x, *args[1:], axis=axis % (len(_shape(x)) - 1) + 1, **params), 0
    return rule


def leading(prim: Primitive) -> Rule:
    """An op that treats all leading axes alike (rows): every argument goes batch-first
    (broadcast when unbatched)."""
    def rule(args: list, dims: list, **params: Any) -> tuple[Any, Any]:
        size = batch_size(args, dims)
        return prim(*[batched(a, d, size) for a, d in zip(args, dims)], **params), 0
    return rule


def _arg_rule(prim: Primitive) -> Rule:
    def rule(args: list, dims: list, axis: Any) -> tuple[Any, Any]:
        x = to_front(args[0], dims[0])
        if axis is None:  # over the flattened example
            return prim(reshape_p(x, shape=(_shape(x)[0], -1)), axis=1), 0
        return prim(x, axis=axis % (len(_shape(x)) - 1) + 1), 0
    return rule


# -- shapes ---------------------------------------------------------------------------------------
def _reshape_rule(args: list, dims: list, shape: tuple) -> tuple[Any, Any]:
    x = to_front(args[0], dims[0])
    return reshape_p(x, shape=(_shape(x)[0],) + tuple(shape)), 0


def _transpose_rule(args: list, dims: list, perm: Any) -> tuple[Any, Any]:
    x = to_front(args[0], dims[0])
    rank = len(_shape(x)) - 1
    perm = tuple(reversed(range(rank))) if perm is None else perm
    return transpose_p(x, perm=(0,) + tuple(p + 1 for p in perm)), 0


def _axes_rule(prim: Primitive) -> Rule:
    def rule(args: list, dims: list, axes: tuple) -> tuple[Any, Any]:
        return prim(to_front(args[0], dims[0]), axes=tuple(a + 1 for a in axes)), 0
    return rule


def _broadcast_to_rule(args: list, dims: list, shape: tuple) -> tuple[Any, Any]:
    x = with_rank(to_front(args[0], dims[0]), len(shape))
    return broadcast_to_p(x, shape=(_shape(x)[0],) + tuple(shape)), 0


def _sum_to_rule(args: list, dims: list, shape: tuple) -> tuple[Any, Any]:
    x = to_front(args[0], dims[0])
    example = _shape(x)[1:]
    axes = tuple(a + 1 for a in _sum_axes(example, tuple(shape)))
    summed = reduction_ops.reduce_sum_p(x, axis=axes, keepdims=False) if axes else x
    return reshape_p(summed, shape=(_shape(x)[0],) + tuple(shape)), 0


def _like_shape(like: Any, dim: int | None) -> tuple[int, ...]:
    s = _shape(like)
    return s if dim is None else s[:dim] + s[dim + 1:]


def _sum_like_rule(args: list, dims: list) -> tuple[Any, Any]:
    x, like = args
    target = _like_shape(like, dims[1])
    if dims[0] is None:
        return sum_to_p(x, shape=target), None
    return _sum_to_rule([x], [dims[0]], shape=target)


def _broadcast_like_rule(args: list, dims: list) -> tuple[Any, Any]:
    x, like = args
    target = _like_shape(like, dims[1])
    if dims[0] is None:
        return broadcast_to_p(x, shape=target), None
    return _broadcast_to_rule([x], [dims[0]], shape=target)


def _concat_rule(args: list, dims: list, axis: int) -> tuple[Any, Any]:
    size = batch_size(args, dims)
    return concat_p(*[batched(a, d, size) for a, d in zip(args, dims)], axis=axis + 1), 0


def _repeat_rule(args: list, dims: list, repeats: int, axis: int | None) -> tuple[Any, Any]:
    x = to_front(args[0], dims[0])
    if axis is None:
        return tiling.repeat_p(reshape_p(x, shape=(_shape(x)[0], -1)), repeats=repeats, axis=1), 0
    return tiling.repeat_p(x, repeats=repeats, axis=axis + 1), 0


# -- products ------------------------------------------------------------------------------------
def _matmul_rule(args: list, dims: list, **params: Any) -> tuple[Any, Any]:
    # matmul broadcasts leading axes: batch-first operands with the examples' ranks equalised
    rank = max(_example_rank(a, d) for a, d in zip(args, dims))
    moved = [a if d is None else with_rank(to_front(a, d), rank) for a, d in zip(args, dims)]
    return linalg.matmul_p(*moved, **params), 0


# -- indexing -------------------------------------------------------------------------------------
def _index_layout(template: tuple, example_rank: int) -> tuple[bool, int, int]:
    """How NumPy lays out ``x[template]`` for an example of rank ``example_rank``: whether the
    advanced indices (arrays, and ints when an array is present) are one adjacent block, the
    number of result axes before it (when adjacent), and the number of axes that the basic
    indices before it contribute."""
    has_array = any(item is ARRAY for item in template)
    consumed = sum(1 for item in template if item is not None and item is not Ellipsis)
    positions = []
    before = 0  # result axes from basic indices before the first advanced one
    seen_advanced = False
    for k, item in enumerate(template):
        advanced = item is ARRAY or (has_array and isinstance(item, (int, np.integer)) and not isinstance(item, bool))
        if advanced:
            positions.append(k)
            seen_advanced = True
        elif not seen_advanced:
            if item is None or isinstance(item, slice):
                before += 1
            elif item is Ellipsis:
                before += example_rank - consumed
    adjacent = not positions or positions == list(range(positions[0], positions[0] + len(positions)))
    return adjacent, positions[0] if positions else 0, before


def _getitem_rule(args: list, dims: list, index: tuple) -> tuple[Any, Any]:
    x, arrays = args[0], args[1:]
    xdim, adims = dims[0], dims[1:]
    example_rank = _example_rank(x, xdim)
    adjacent, first, before = _index_layout(index, example_rank)
    if all(d is None for d in adims):
        # the examples share the index: one more leading slice
        out = indexing.getitem_p(to_front(x, xdim), *arrays, index=(slice(None),) + index)
        if adjacent:
            return out, 0
        # NumPy puts the broadcast index axes first when the advanced indices are apart
        return out, len(np.broadcast_shapes(*[_shape(a) for a in arrays])) if arrays else 0
    # each example has its own index arrays: an arange over the batch joins them
    size = batch_size(args, dims)
    xb = batched(x, xdim, size)
    index_rank = len(np.broadcast_shapes(*[_like_shape(a, d) for a, d in zip(arrays, adims)]))
    moved = [a if d is None else to_front(a, d) for a, d in zip(arrays, adims)]
    moved = [m if d is None else reshape_p(m, shape=(size,) + (1,) * (index_rank - len(_shape(m)) + 1)
                                                 + _shape(m)[1:]) for m, d in zip(moved, adims)]
    batch_index = np.arange(size).reshape((size,) + (1,) * index_rank)
    out = indexing.getitem_p(xb, batch_index, *moved, index=(ARRAY,) + index)
    # the batched index is advanced at position 0: the advanced block stays first, after which the
    # example's basic axes follow; alone, an adjacent block after `before` basic axes sits there
    if adjacent and first > 0 and before:
        rank = len(_shape(out))
        block = tuple(range(1, 1 + index_rank))
        rest = tuple(range(1 + index_rank, rank))
        perm = (0,) + rest[:before] + block + rest[before:]
        out = transpose_p(out, perm=perm)
    return out, 0


def _scatter_add_rule(args: list, dims: list, index: tuple, shape: tuple) -> tuple[Any, Any]:
    # the transpose of getitem: lay g out as the batched getitem would give it, then scatter
    g, arrays = args[0], args[1:]
    gdim, adims = dims[0], dims[1:]
    size = batch_size(args, dims)
    example_rank = len(shape)
    adjacent, first, before = _index_layout(index, example_rank)
    if all(d is None for d in adims):
        target = 0 if adjacent else (len(np.broadcast_shapes(*[_shape(a) for a in arrays])) if arrays else 0)
        gb = batched(g, gdim, size)
        if target:
            rank = len(_shape(gb))
            gb = transpose_p(gb, perm=tuple(range(1, target + 1)) + (0,) + tuple(range(target + 1, rank)))
        return indexing.scatter_add_p(gb, *arrays, index=(slice(None),) + index, shape=(size,) + tuple(shape)), 0
    index_rank = len(np.broadcast_shapes(*[_like_shape(a, d) for a, d in zip(arrays, adims)]))
    moved = [a if d is None else to_front(a, d) for a, d in zip(arrays, adims)]
    moved = [m if d is None else reshape_p(m, shape=(size,) + (1,) * (index_rank - len(_shape(m)) + 1)
                                                        + _shape(m)[1:]) for m, d in zip(moved, adims)]
    batch_index = np.arange(size).reshape((size,) + (1,) * index_rank)
    gb = batched(g, gdim, size)
    if adjacent and first > 0 and before:
        rank = len(_shape(gb))
        rest_before = tuple(range(1, 1 + before))
        block = tuple(range(1 + before, 1 + before + index_rank))
        rest_after = tuple(range(1 + before + index_rank, rank))
        gb = transpose_p(gb, perm=(0,) + block + rest_before + rest_after)
    return indexing.scatter_add_p(gb, batch_index, *moved, index=(ARRAY,) + index, shape=(size,) + tuple(shape)), 0


def _gather_rule(args: list, dims: list, axis: int) -> tuple[Any, Any]:
    x, indices = args
    if dims[1] is None:
        return indexing.gather_p(to_front(x, dims[0]), indices, axis=axis + 1), 0
    return _getitem_rule([x, indices], dims, index=(slice(None),) * axis + (ARRAY,))


# -- losses and other rows-based ops ---------------------------------------------------------------
def _reduce_rows(rows: Any, reduction: str) -> Any:
    axes = tuple(range(1, len(_shape(rows))))
    if reduction == "none" or not axes:
        return rows
    prim = reduction_ops.reduce_mean_p if reduction == "mean" else reduction_ops.reduce_sum_p
    return prim(rows, axis=axes, keepdims=False)


def _sce_rule(args: list, dims: list, reduction: str) -> tuple[Any, Any]:
    size = batch_size(args, dims)
    x, labels = (batched(a, d, size) for a, d in zip(args, dims))
    return _reduce_rows(loss_ops.sce_p(x, labels, reduction="none"), reduction), 0


def _sce_grad_rule(args: list, dims: list, reduction: str) -> tuple[Any, Any]:
    size = batch_size(args, dims)
    g, x, labels = (batched(a, d, size) for a, d in zip(args, dims))
    rows = _shape(x)[1:-1]
    if reduction != "none":  # one cotangent per example: spread over its rows
        if reduction == "mean":
            n = int(np.prod(rows, dtype=np.int64))
            g = g / n if n else g * 0
        g = broadcast_to_p(reshape_p(g, shape=(size,) + (1,) * len(rows)), shape=(size,) + rows)
    return loss_ops.sce_grad_p(g, x, labels, reduction="none"), 0


def _gatherb_rule(prim: Primitive) -> Rule:
    def rule(args: list, dims: list, batch: int, **params: Any) -> tuple[Any, Any]:
        size = batch_size(args, dims)
        return prim(*[batched(a, d, size) for a, d in zip(args, dims)], batch=batch + 1, **params), 0
    return rule


def _dropout_rule(args: list, dims: list, rate: float, noise_shape: Any, generator: Any) -> tuple[Any, Any]:
    x = to_front(args[0], dims[0])
    noise = None if noise_shape is None else (None,) + tuple(noise_shape)
    return nn_ops.dropout_mask_p(x, rate=rate, noise_shape=noise, generator=generator), 0


def _inverse_count_rule(args: list, dims: list, axis: Any) -> tuple[Any, Any]:
    x = to_front(args[0], dims[0])
    return reduction_ops.inverse_count_p(x, axis=_shift(axis, len(_shape(x)) - 1)), None


def merged_batch(prim: Primitive) -> Rule:
    """An op over inputs with a leading batch axis of their own (convolution and pooling,
    (N, *spatial, C)): the examples' batches are stacked into one, B*N, and split again
    (the op's results are ordered batch first, so B stays the outer factor)."""
    def rule(args: list, dims: list, **params: Any) -> tuple[Any, Any]:
        size = batch_size(args, dims)
        merged = []
        for a, d in zip(args, dims):
            a = batched(a, d, size)
            merged.append(reshape_p(a, shape=(-1,) + _shape(a)[2:]))
        out = prim(*merged, **params)
        return reshape_p(out, shape=(size, _shape(out)[0] // size) + _shape(out)[1:]), 0
    return rule


def _grouped_patch_matrix_rule(args: list, dims: list, groups: int, **params: Any) -> tuple[Any, Any]:
    if groups == 1:
        return merged_batch(patch_matrix_p)(args, dims, groups=groups, **params)
    x = to_front(args[0], dims[0])
    size = _shape(x)[0]
    out = patch_matrix_p(reshape_p(x, shape=(-1,) + _shape(x)[2:]), groups=groups, **params)
    g, m, width = _shape(out)  # (groups, B*positions, ...): the examples are the outer factor of the rows
    return reshape_p(out, shape=(g, size, m // size, width)), 1


def _grouped_patch_matrix_transpose_rule(args: list, dims: list, groups: int, **params: Any) -> tuple[Any, Any]:
    cols, dim = args[0], dims[0]
    if groups == 1:
        return merged_batch(patch_matrix_transpose_p)(args, dims, groups=groups, **params)
    rank = len(_shape(cols))
    cols = transpose_p(cols, perm=(1, dim) + tuple(a for a in range(rank) if a not in (1, dim))) if dim != 1 \
        else cols  # (groups, B, positions, width)
    g, size, m, width = _shape(cols)
    out = patch_matrix_transpose_p(reshape_p(cols, shape=(g, size * m, width)), groups=groups, **params)
    return reshape_p(out, shape=(size, _shape(out)[0] // size) + _shape(out)[1:]), 0


def _pad_rule(args: list, dims: list, pads: tuple, start: int) -> tuple[Any, Any]:
    return windows.pad_p(to_front(args[0], dims[0]), pads=pads, start=start + 1), 0


def _along_axis_rule(prim: Primitive) -> Rule:
    """take_along_axis and its transpose: the other axes broadcast, so an unbatched argument
    gets a unit batch axis; ``shape`` (the transpose's) gets the batch size."""
    def rule(args: list, dims: list, axis: int, **params: Any) -> tuple[Any, Any]:
        size = batch_size(args, dims)
        moved = [expand_dims_p(a, axes=(0,)) if d is None else to_front(a, d) for a, d in zip(args, dims)]
        if "shape" in params:
            params["shape"] = (size,) + tuple(params["shape"])
        return prim(*moved, axis=axis + 1, **params), 0
    return rule


# -- the table --------------------------------------------------------------------------------------
def _install() -> None:
    e, a, r, i, lo, nn, c = elementwise, activation, reduction_ops, indexing, loss_ops, nn_ops, constant
    for prim in (e.neg_p, e.nop_p, e.reciprocal_p, e.square_p, e.sqrt_p, e.exp_p, e.log_p, e.log1p_p, e.expm1_p,
                 e.sin_p, e.cos_p, e.tan_p, e.tanh_p, e.sign_p, e.abs_p, e.logical_not_p, e.isfinite_p, e.isnan_p,
                 a.sigmoid_p, a.relu_p, a.softplus_p, nn.erf_p, nn.erfc_p, nn.gelu_p, nn.silu_p, nn.leaky_relu_p,
                 nn.elu_p, astype_p, c.cast_p, c.stop_gradient_p):
        prim.batch_rule = unary(prim)
    for prim in (e.add_p, e.sub_p, e.mul_p, e.div_p, e.pow_p, e.maximum_p, e.minimum_p, e.where_p, e.clip_p,
                 e.equal_p, e.not_equal_p, e.greater_p, e.greater_equal_p, e.less_p, e.less_equal_p,
                 e.logical_and_p, e.logical_or_p, lo.sigmoid_ce_p):
        prim.batch_rule = broadcasting(prim)
    for prim in (r.reduce_sum_p, r.reduce_mean_p, r.reduce_max_p, r.reduce_min_p, r.reduce_prod_p, r.reduce_any_p,
                 r.reduce_all_p, r.logsumexp_p):
        prim.batch_rule = reducing(prim)
    for prim in (a.softmax_p, a.log_softmax_p):
        prim.batch_rule = along(prim)
    for prim in (r.argmax_p, r.argmin_p):
        prim.batch_rule = _arg_rule(prim)
    for prim in (lo.take_class_p, lo.put_class_p, lo.one_hot_labels_p, c.one_hot_p, c.bandpart_p):
        prim.batch_rule = leading(prim)

    def softmax_ce_rule(args: list, dims: list, axis: int) -> tuple[Any, Any]:
        # (the logits are normalised along axis on their own: both go batch-first)
        rank = max(_example_rank(x, d) for x, d in zip(args, dims))
        size = batch_size(args, dims)
        moved = [with_rank(batched(x, d, size), rank) for x, d in zip(args, dims)]
        return lo.softmax_ce_p(*moved, axis=axis % rank + 1), 0

    lo.softmax_ce_p.batch_rule = softmax_ce_rule
    reshape_p.batch_rule = _reshape_rule
    transpose_p.batch_rule = _transpose_rule
    expand_dims_p.batch_rule = _axes_rule(expand_dims_p)
    squeeze_p.batch_rule = _axes_rule(squeeze_p)
    concat_p.batch_rule = _concat_rule
    broadcast_to_p.batch_rule = _broadcast_to_rule
    sum_to_p.batch_rule = _sum_to_rule
    sum_like_p.batch_rule = _sum_like_rule
    broadcast_like_p.batch_rule = _broadcast_like_rule
    tiling.repeat_p.batch_rule = _repeat_rule
    linalg.matmul_p.batch_rule = _matmul_rule
    i.getitem_p.batch_rule = _getitem_rule
    i.scatter_add_p.batch_rule = _scatter_add_rule
    i.gather_p.batch_rule = _gather_rule
    lo.sce_p.batch_rule = _sce_rule
    lo.sce_grad_p.batch_rule = _sce_grad_rule
    nn.gatherb_p.batch_rule = _gatherb_rule(nn.gatherb_p)
    nn.scatterb_add_p.batch_rule = _gatherb_rule(nn.scatterb_add_p)
    nn.dropout_mask_p.batch_rule = _dropout_rule
    r.inverse_count_p.batch_rule = _inverse_count_rule
    for prim in (pooling.max_pool_p, pooling.max_pool_grad_p, pooling.max_pool_gather_p, pooling.avg_pool_p,
                 pooling.avg_pool_grad_p):
        prim.batch_rule = merged_batch(prim)
    patch_matrix_p.batch_rule = _grouped_patch_matrix_rule
    patch_matrix_transpose_p.batch_rule = _grouped_patch_matrix_transpose_rule
    windows.pad_p.batch_rule = _pad_rule
    _install_numpy_core()


def _install_numpy_core() -> None:
    em, sc, m = elementwise_math, scans, manipulation
    for prim in em.UNARY:
        prim.batch_rule = unary(prim)
    for prim in em.BINARY + (linalg_inverse.solve_p,):  # (solve broadcasts its stack axes)
        prim.batch_rule = broadcasting(prim)
    for prim in (sc.cumsum_p, sc.cumprod_p, m.argsort_p):
        prim.batch_rule = along(prim)
    for prim in (m.take_along_axis_p, m.put_along_axis_add_p):
        prim.batch_rule = _along_axis_rule(prim)
    for prim in linalg_inverse.PRIMITIVES + linalg_decompositions.PRIMITIVES:  # numpy.linalg maps leading axes
        prim.batch_rule = leading(prim)
    products.einsum_p.batch_rule = products.einsum_batch_rule


_install()
