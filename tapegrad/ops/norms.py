"""``norm`` with NumPy's semantics (numpy.linalg.norm): vector norms over one axis, matrix
norms over two, and the 2-norm of everything when ``axis`` and ``ord`` are None.

* vectors: ``ord`` None or 2 (Euclidean), 1, inf, -inf, 0 (the count of non-zeros, not
  differentiable), any other p (``sum(|x|^p)^(1/p)``);
* matrices: None or 'fro' (Frobenius), 'nuc' (the sum of the singular values), 1 and -1 (the
  largest and smallest column sum of |x|), inf and -inf (row sums), 2 and -2 (the largest and
  smallest singular value).

Written with primitives (the singular values come from ``svd``). The Euclidean and Frobenius
norms have gradient 0 at 0 (as in PyTorch) instead of 0/0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff.broadcast import astype_p
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError
from ._axis import axis_tuple
from ._compose import dtype_of, float_operand, result, shape_of
from .elementwise import abs_p, greater_p, not_equal_p, pow_p, sqrt_p, where_p
from .indexing import getitem_p
from .linalg_decompositions import svd_p
from .reduction import reduce_max_p, reduce_min_p, reduce_sum_p
from .shape import expand_dims_p, reshape_p, transpose_p

ArrayLike = Any


def _euclidean(x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    squares = reduce_sum_p(x * x, axis=axes, keepdims=keepdims)
    positive = greater_p(squares, 0)  # the double-where pattern: sqrt never sees 0
    return where_p(positive, sqrt_p(where_p(positive, squares, 1)), 0)


def _vector_norm(x: Any, ord: Any, axis: int, keepdims: bool) -> Any:  # noqa: A002 - NumPy's name
    axes = (axis,)
    if ord is None or ord == 2:
        return _euclidean(x, axes, keepdims)
    if isinstance(ord, str):
        raise OpValueError(f"norm: invalid norm order {ord!r} for vectors")
    if ord == np.inf:
        return reduce_max_p(abs_p(x), axis=axes, keepdims=keepdims)
    if ord == -np.inf:
        return reduce_min_p(abs_p(x), axis=axes, keepdims=keepdims)
    if ord == 0:
        return reduce_sum_p(astype_p(not_equal_p(x, 0), dtype=dtype_of(x)), axis=axes, keepdims=keepdims)
    if ord == 1:
        return reduce_sum_p(abs_p(x), axis=axes, keepdims=keepdims)
    p = float(ord)
    return pow_p(reduce_sum_p(pow_p(abs_p(x), p), axis=axes, keepdims=keepdims), 1.0 / p)


def _singular_values(x: Any, rows: int, cols: int) -> Any:
    """The singular values of the matrices on axes (rows, cols), along a last axis."""
    shape = shape_of(x)
    perm = tuple(a for a in range(len(shape)) if a not in (rows, cols)) + (rows, cols)
    if perm != tuple(range(len(shape))):
        x = transpose_p(x, perm=perm)
    m, n = shape[rows], shape[cols]
    lead = tuple(shape[a] for a in perm[:-2])
    packed = svd_p(x, full_matrices=False)
    k = min(m, n)
    index = (slice(None),) * len(lead) + (slice(m * k, m * k + k),)
    return reshape_p(getitem_p(packed, index=index), shape=lead + (k,))


def _matrix_norm(x: Any, ord: Any, rows: int, cols: int) -> Any:  # noqa: A002
    """The norm of the matrices on axes (rows, cols), those axes removed."""
    if ord is None or ord in ("fro", "f"):
        return _euclidean(x, (rows, cols), False)
    if ord == "nuc" or ord in (2, -2):
        s = _singular_values(x, rows, cols)
        last = (len(shape_of(s)) - 1,)
        if ord == "nuc":
            return reduce_sum_p(s, axis=last, keepdims=False)
        return (reduce_max_p if ord == 2 else reduce_min_p)(s, axis=last, keepdims=False)
    if ord in (1, -1, np.inf, -np.inf):
        summed, over = (rows, cols) if ord in (1, -1) else (cols, rows)
        sums = reduce_sum_p(abs_p(x), axis=(summed,), keepdims=False)
        over = over - 1 if over > summed else over
        return (reduce_max_p if ord > 0 else reduce_min_p)(sums, axis=(over,), keepdims=False)
    raise OpValueError(f"norm: invalid norm order {ord!r} for matrices")


def norm(x: ArrayLike, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Variable:  # noqa: A002
    """NumPy's norm: a vector norm over one ``axis``, a matrix norm over two, and with ``axis``
    None the norm of x as a vector (1-d) or matrix (2-d), or the 2-norm of all its elements
    when ``ord`` is None too."""
    x = float_operand(x, "norm")
    shape = shape_of(x)
    if isinstance(ord, bool) or not (ord is None or isinstance(ord, (str, int, float, np.integer, np.floating))):
        raise OpTypeError(f"norm: ord must be a number, 'fro' or 'nuc', got {ord!r}")
    if axis is None:
        if ord is None:
            flat = reshape_p(x, shape=(-1,)) if len(shape) != 1 else x
            out = _euclidean(flat, (0,), False)
            return result(reshape_p(out, shape=(1,) * len(shape)) if keepdims else out)
        if len(shape) not in (1, 2):
            raise OpValueError(f"norm: with ord={ord!r} and axis None, x must be 1-d or 2-d, got shape {shape}")
        axis = tuple(range(len(shape)))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    checked = axis_tuple(axes, len(shape), "norm", shape=shape)
    given = [a + len(shape) if a < 0 else a for a in (int(a) for a in axes)]  # in the given order
    if len(checked) == 1:
        out = _vector_norm(x, ord, checked[0], bool(keepdims))
        return result(out)
    if len(checked) != 2:
        raise OpValueError(f"norm: axis {axis!r} names {len(checked)} axes; a norm is over 1 or 2")
    out = _matrix_norm(x, ord, given[0], given[1])
    if keepdims:
        out = expand_dims_p(out, axes=checked)
    return result(out)
