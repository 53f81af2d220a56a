"""Matrix multiplication, 2-D and batched, with optional transposes."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpValueError
from ._arguments import composite, operand
from .shape import reshape_p

ArrayLike = Any


def _matmul_impl(x: np.ndarray, y: np.ndarray, transpose_a: bool = False, transpose_b: bool = False) -> np.ndarray:
    # (a node recorded without parameters is a plain x @ y: the defaults)
    if transpose_a:
        x = x.swapaxes(-1, -2)
    if transpose_b:
        y = y.swapaxes(-1, -2)
    if x.shape[-1] == 1 and x.ndim > 2:
        # Outer products (a contracted axis of length 1, as in per-example weight gradients):
        # NumPy's batched matmul does not reach BLAS there; the broadcast product is ~4x faster.
        return np.multiply(x, y)
    return np.matmul(x, y)


def _matmul_check(vals: list, params: dict) -> str | None:
    x, y = vals
    xs, ys = np.shape(x), np.shape(y)
    if len(xs) < 2 or len(ys) < 2:
        return None
    ta, tb = params.get("transpose_a", False), params.get("transpose_b", False)
    kx, dx = (xs[-2], len(xs) - 2) if ta else (xs[-1], len(xs) - 1)
    ky, dy = (ys[-1], len(ys) - 1) if tb else (ys[-2], len(ys) - 2)
    if kx != ky:
        flags = "".join([" with transpose_a" if ta else "", " with transpose_b" if tb else ""])
        return (f"shapes {xs} and {ys} are not aligned{flags}: {kx} (dim {dx} of x) != {ky} (dim {dy} of y)")
    return f"batch dimensions of x {xs[:-2]} and y {ys[:-2]} cannot be broadcast together"


def _matmul_x_rule(g: Any, out: Any, x: Any, y: Any, transpose_a: bool = False, transpose_b: bool = False) -> Any:
    # With A = op(x), B = op(y): dA = g @ B^T, and dx = dA (or dA^T when x was transposed).
    if transpose_a:
        return matmul_p(y, g, transpose_a=transpose_b, transpose_b=True)
    return matmul_p(g, y, transpose_a=False, transpose_b=not transpose_b)


def _matmul_y_rule(g: Any, out: Any, x: Any, y: Any, transpose_a: bool = False, transpose_b: bool = False) -> Any:
    # dB = A^T @ g, and dy = dB (or dB^T when y was transposed).
    if transpose_b:
        return matmul_p(g, x, transpose_a=True, transpose_b=transpose_a)
    return matmul_p(x, g, transpose_a=not transpose_a, transpose_b=False)


matmul_p = Primitive("matmul", _matmul_impl, ("x", "y"), broadcasting=True, check=_matmul_check)
matmul_p.defvjp(_matmul_x_rule, _matmul_y_rule)
# Forward mode: the product is bilinear, each tangent goes through it in its argument's place.
matmul_p.defjvp(lambda t, out, x, y, **params: matmul_p(t, y, **params),
                lambda t, out, x, y, **params: matmul_p(x, t, **params))


def matmul(x: ArrayLike, y: ArrayLike, transpose_a: bool = False, transpose_b: bool = False) -> Variable:
    """Matrix product of the last two axes (leading axes are batch axes and broadcast).

    A 1-D x is treated as a row vector and a 1-D y as a column vector, as in NumPy;
    the added axis is removed from the result.
    """
    x, y = operand(x, "matmul", "x"), operand(y, "matmul", "y")
    xs = np.shape(x._value if isinstance(x, Variable) else x)
    ys = np.shape(y._value if isinstance(y, Variable) else y)
    if len(xs) >= 2 and len(ys) >= 2:
        if not transpose_a and not transpose_b:
            return matmul_p.apply2(x, y)  # the fast path: no parameters
        return matmul_p.apply(x, y, transpose_a=bool(transpose_a), transpose_b=bool(transpose_b))
    if len(xs) == 0 or len(ys) == 0:
        raise OpValueError(f"matmul: arguments must have at least 1 dimension, got x of shape {xs} "
                           f"and y of shape {ys} (use mul for scalars)")
    return _matmul_vectors(x, y, transpose_a, transpose_b)


@composite("x", "y", broadcast=False, name="matmul")
def _matmul_vectors(x: ArrayLike, y: ArrayLike, transpose_a: bool, transpose_b: bool) -> Variable:
    """matmul with a 1-d argument: promote vectors to matrices with reshape (differentiable),
    multiply, then drop the added axis."""
    xs = np.shape(x._value if isinstance(x, Variable) else x)
    ys = np.shape(y._value if isinstance(y, Variable) else y)
    x2 = reshape_p.apply(x, shape=(1,) + xs) if len(xs) == 1 else x
    y2 = reshape_p.apply(y, shape=ys + (1,)) if len(ys) == 1 else y
    out = matmul_p.apply(x2, y2, transpose_a=bool(transpose_a) and len(xs) > 1,
                         transpose_b=bool(transpose_b) and len(ys) > 1)
    shape = out.shape
    if len(xs) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(ys) == 1:
        shape = shape[:-1]
    return reshape_p.apply(out, shape=shape)
