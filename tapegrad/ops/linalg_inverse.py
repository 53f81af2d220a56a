"""Inverses and determinants (``tapegrad.linalg``): inv, solve, det, slogdet, pinv.

Each is a primitive on stacks of matrices (the last two axes; leading axes broadcast as in
numpy.linalg), with VJP and JVP rules written with matmul, solve, inv and elementwise
primitives, so that they are differentiable to any order:

* inv: ``dX = -X dA X``; solve: ``dx = A^-1 (db - dA x)``;
* det: ``d det = det * tr(A^-1 dA)``; slogdet: ``d log|det| = tr(A^-1 dA)`` (its sign has no
  derivative). slogdet's two results are one primitive's output, packed along a last axis
  of length 2, which the public op splits;
* pinv: the derivative of the pseudo-inverse where the rank is constant (Golub and Pereyra):
  ``dP = -P dA P + P P^T dA^T (I - A P) + (I - P A) dA^T P^T P``.

The derivatives of inv, det and slogdet need A^-1, so they exist for invertible matrices only
(singular ones raise, naming the op).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpValueError
from ._compose import float_operand, matrix_transpose_perm, result, shape_of
from .elementwise_math import zeros_like_p
from .indexing import getitem_p
from .linalg import matmul_p
from .reduction import reduce_sum_p
from .shape import concat_p, expand_dims_p, reshape_p, transpose_p

ArrayLike = Any


def mT(x: Any) -> Any:  # noqa: N802 - NumPy's name for the matrix transpose
    """x with its last two axes swapped."""
    return transpose_p(x, perm=matrix_transpose_perm(len(shape_of(x))))


def matrices(x: ArrayLike, op: str, arg: str = "a", square: bool = True) -> Any:
    """A float stack of (square) matrices, checked: errors name the op, the argument and its shape."""
    x = float_operand(x, op, arg)
    shape = shape_of(x)
    if len(shape) < 2:
        raise OpValueError(f"{op}: argument {arg} must have at least 2 dimensions (a matrix), got shape {shape}")
    if square and shape[-1] != shape[-2]:
        raise OpValueError(f"{op}: argument {arg} must be square in its last two dimensions, got shape {shape}")
    return x


def _expand_matrix(v: Any, rank: int) -> Any:
    """A value per matrix (rank - 2 axes) with two unit axes appended, against matrices of ``rank``."""
    return expand_dims_p(v, axes=(rank - 2, rank - 1))


def _trace_of_product(a: Any, b: Any) -> Any:
    """tr(a^T b) of each matrix pair: the sum of their elementwise product."""
    rank = len(shape_of(b))
    return reduce_sum_p(a * b, axis=(rank - 2, rank - 1), keepdims=False)


# -- inv ----------------------------------------------------------------------------------------
inv_p = Primitive("inv", lambda x: np.linalg.inv(x), ("a",))
inv_p.defvjp(lambda g, out, x: -matmul_p(matmul_p(out, g, transpose_a=True), out, transpose_b=True))
inv_p.defjvp(lambda t, out, x: -matmul_p(matmul_p(out, t), out))


# -- solve --------------------------------------------------------------------------------------
def _solve_check(vals: list, params: dict) -> str | None:
    a, b = (np.shape(v) for v in vals)
    if a[-1] != b[-2]:
        return f"a of shape {a} and b of shape {b} do not fit: b needs {a[-1]} rows, it has {b[-2]}"
    try:
        np.broadcast_shapes(a[:-2], b[:-2])
    except ValueError:
        return f"the stack shapes of a {a[:-2]} and b {b[:-2]} cannot be broadcast together"
    return None


solve_p = Primitive("solve", lambda a, b: np.linalg.solve(a, b), ("a", "b"), broadcasting=True, check=_solve_check)


def _solve_a_rule(g: Any, out: Any, a: Any, b: Any) -> Any:
    return -matmul_p(solve_p(mT(a), g), out, transpose_b=True)


solve_p.defvjp(_solve_a_rule, lambda g, out, a, b: solve_p(mT(a), g))
solve_p.defjvp(lambda t, out, a, b: -solve_p(a, matmul_p(t, out)), lambda t, out, a, b: solve_p(a, t))


# -- det and slogdet ------------------------------------------------------------------------------
det_p = Primitive("det", lambda x: np.linalg.det(x), ("a",))
det_p.defvjp(lambda g, out, x: _expand_matrix(g * out, len(shape_of(x))) * mT(inv_p(x)))
det_p.defjvp(lambda t, out, x: out * _trace_of_product(mT(inv_p(x)), t))


def _slogdet_impl(x: Any) -> np.ndarray:
    sign, logabsdet = np.linalg.slogdet(x)
    return np.stack([sign, logabsdet], axis=-1)


slogdet_p = Primitive("slogdet", _slogdet_impl, ("a",))


def _slogdet_vjp(g: Any, out: Any, x: Any) -> Any:
    rank = len(shape_of(x))
    g_log = getitem_p(g, index=(slice(None),) * (rank - 2) + (1,))
    return _expand_matrix(g_log, rank) * mT(inv_p(x))


def _slogdet_jvp(t: Any, out: Any, x: Any) -> Any:
    t_log = expand_dims_p(_trace_of_product(mT(inv_p(x)), t), axes=(len(shape_of(x)) - 2,))
    return concat_p(zeros_like_p(t_log), t_log, axis=len(shape_of(x)) - 2)


slogdet_p.defvjp(_slogdet_vjp)
slogdet_p.defjvp(_slogdet_jvp)


# -- pinv --------------------------------------------------------------------------------------------
def _pinv_impl(x: Any, rcond: Any, rtol: Any, hermitian: bool) -> np.ndarray:
    options: dict[str, Any] = {"hermitian": hermitian}
    if rtol is not None:
        options["rtol"] = rtol
    else:
        options["rcond"] = rcond
    return np.linalg.pinv(x, **options)


pinv_p = Primitive("pinv", _pinv_impl, ("a",))


def _pinv_vjp(g: Any, out: Any, x: Any, **params: Any) -> Any:
    p, pt = out, mT(out)
    gt = mT(g)
    left = matmul_p(matmul_p(gt, p), pt)  # G^T P P^T, then (I - A P) of it
    right = matmul_p(matmul_p(pt, p), gt)  # P^T P G^T, then of it (I - P A)
    return (-matmul_p(matmul_p(pt, g), pt) + left - matmul_p(x, matmul_p(p, left))
            + right - matmul_p(matmul_p(right, p), x))


def _pinv_jvp(t: Any, out: Any, x: Any, **params: Any) -> Any:
    p, tt = out, mT(t)
    first = matmul_p(matmul_p(p, mT(p)), tt)  # P P^T dA^T, then of it (I - A P)
    second = matmul_p(matmul_p(tt, mT(p)), p)  # dA^T P^T P, then (I - P A) of it
    return (-matmul_p(matmul_p(p, t), p) + first - matmul_p(matmul_p(first, x), p)
            + second - matmul_p(p, matmul_p(x, second)))


pinv_p.defvjp(_pinv_vjp)
pinv_p.defjvp(_pinv_jvp)

PRIMITIVES = (inv_p, det_p, slogdet_p, pinv_p)  # one input, stacks of matrices


# -- public ops ------------------------------------------------------------------------------------
def inv(a: ArrayLike) -> Variable:
    """The inverse of each square matrix (last two axes). A singular matrix raises OpValueError."""
    return inv_p.apply(matrices(a, "inv"))


def solve(a: ArrayLike, b: ArrayLike) -> Variable:
    """x with a @ x = b, NumPy 2's semantics: a 1-d b is one vector, otherwise b is a stack of
    matrices (..., M, K); the stack axes of a and b broadcast."""
    a = matrices(a, "solve")
    b = float_operand(b, "solve", "b")
    shape = shape_of(b)
    if len(shape) == 1:
        if shape[0] != shape_of(a)[-1]:
            raise OpValueError(f"solve: a of shape {shape_of(a)} and b of shape {shape} do not fit: b needs "
                               f"{shape_of(a)[-1]} elements")
        column = reshape_p(b, shape=shape + (1,))
        out = solve_p.apply(a, column)
        return result(reshape_p(out, shape=shape_of(out)[:-1]))
    if not shape:
        raise OpValueError("solve: argument b must have at least 1 dimension, got a 0-d value")
    return solve_p.apply(a, b)


def det(a: ArrayLike) -> Variable:
    """The determinant of each square matrix (last two axes)."""
    return det_p.apply(matrices(a, "det"))


def slogdet(a: ArrayLike) -> tuple[Variable, Variable]:
    """``(sign, logabsdet)`` of the determinant of each square matrix, without overflow. The
    gradient flows through logabsdet (the sign is piecewise constant)."""
    packed = slogdet_p.apply(matrices(a, "slogdet"))
    rank = len(shape_of(packed))
    return (getitem_p.apply(packed, index=(slice(None),) * (rank - 1) + (0,)),
            getitem_p.apply(packed, index=(slice(None),) * (rank - 1) + (1,)))


def pinv(a: ArrayLike, rcond: Any = None, hermitian: bool = False, *, rtol: Any = None) -> Variable:
    """The Moore-Penrose pseudo-inverse of each matrix (NumPy's pinv, with ``rcond``/``rtol``).
    Its derivative is that of a matrix of constant rank."""
    if rcond is not None and rtol is not None:
        raise OpValueError("pinv: give rcond or rtol, not both")
    return pinv_p.apply(matrices(a, "pinv", square=False), rcond=rcond, rtol=rtol, hermitian=bool(hermitian))
