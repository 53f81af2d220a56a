"""More elementwise primitives, with NumPy's names: rounding and ``mod``, inverse
trigonometric and hyperbolic functions, base-2 and base-10 logarithms, ``exp2``, ``logaddexp``.

As in elementwise.py, each forward has its VJP rules beside it, written with primitives so
that they are differentiable to any order, and (the Jacobian being diagonal) the same rules
serve as JVP rules. The derivative formulas are written to stay accurate where the naive
ones lose digits: ``arcsin``/``arccos`` and ``arctanh`` factor ``1 - x*x`` as
``(1 - x)(1 + x)``, ``arccosh`` uses ``sqrt((x - 1)(x + 1))`` near 1, and ``logaddexp``
weights each input by ``exp(input - out)``, which never overflows.

``floor``, ``ceil`` and ``round`` are piecewise constant: their gradient is zero (as in
PyTorch and JAX), computed by ``zeros_like_p`` so that it is zero also where the incoming
cotangent is inf or NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ._arguments import integer
from .elementwise import div_p, equal_p, exp_p, sqrt_p, where_p

ArrayLike = Any

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


def _zeros_like_impl(x: Any) -> Any:
    return np.zeros_like(x)[()]  # (a NumPy scalar for 0-d x, like the ufuncs give)


# Zeros of x's shape and dtype: the derivative of a piecewise constant op.
zeros_like_p = Primitive("zeros_like", _zeros_like_impl)
zeros_like_p.defvjp(lambda g, out, x: zeros_like_p(g))
zeros_like_p.defjvp_linear()


def _zero_rule(g: Any, out: Any, *inputs: Any, **params: Any) -> Any:
    return zeros_like_p(g)


# -- rounding ------------------------------------------------------------------------------
floor_p = Primitive("floor", np.floor)
ceil_p = Primitive("ceil", np.ceil)
round_p = Primitive("round", lambda x, decimals: np.round(x, decimals))
for _prim in (floor_p, ceil_p, round_p):
    _prim.defvjp(_zero_rule)


# x mod y with the sign of y (NumPy's mod, Python's %, PyTorch's remainder): x - y * floor(x / y)
mod_p = Primitive("mod", np.mod, ("x", "y"), broadcasting=True)
mod_p.defvjp(lambda g, out, x, y: g, lambda g, out, x, y: -(g * floor_p(div_p(x, y))))

# -- inverse trigonometric -------------------------------------------------------------------
arcsin_p = Primitive("arcsin", np.arcsin)
arcsin_p.defvjp(lambda g, out, x: g / sqrt_p((1 - x) * (1 + x)))

arccos_p = Primitive("arccos", np.arccos)
arccos_p.defvjp(lambda g, out, x: -(g / sqrt_p((1 - x) * (1 + x))))

arctan_p = Primitive("arctan", np.arctan)
arctan_p.defvjp(lambda g, out, x: g / (1 + x * x))

# arctan2(x1, x2): the angle of the point (x2, x1), NumPy's argument order
arctan2_p = Primitive("arctan2", np.arctan2, ("x1", "x2"), broadcasting=True)
arctan2_p.defvjp(lambda g, out, x1, x2: g * x2 / (x1 * x1 + x2 * x2),
                 lambda g, out, x1, x2: -(g * x1) / (x1 * x1 + x2 * x2))

# -- hyperbolic ------------------------------------------------------------------------------
sinh_p = Primitive("sinh", np.sinh)
cosh_p = Primitive("cosh", np.cosh)
sinh_p.defvjp(lambda g, out, x: g * cosh_p(x))
cosh_p.defvjp(lambda g, out, x: g * sinh_p(x))

arcsinh_p = Primitive("arcsinh", np.arcsinh)
arcsinh_p.defvjp(lambda g, out, x: g / sqrt_p(x * x + 1))

arccosh_p = Primitive("arccosh", np.arccosh)
arccosh_p.defvjp(lambda g, out, x: g / sqrt_p((x - 1) * (x + 1)))

arctanh_p = Primitive("arctanh", np.arctanh)
arctanh_p.defvjp(lambda g, out, x: g / ((1 - x) * (1 + x)))

# -- logarithms and exponentials -----------------------------------------------------------------
log2_p = Primitive("log2", np.log2)
log2_p.defvjp(lambda g, out, x: g / (x * _LN2))

log10_p = Primitive("log10", np.log10)
log10_p.defvjp(lambda g, out, x: g / (x * _LN10))

exp2_p = Primitive("exp2", np.exp2)
exp2_p.defvjp(lambda g, out, x: g * (out * _LN2))


def _logaddexp_rule(g: Any, out: Any, x: Any, y: Any) -> Any:
    # d/dx log(e^x + e^y) = e^(x - out), at most 1. Where both are -inf, out is -inf and
    # x - out is NaN: the weight is taken as 1/2 there (the limit along x == y).
    both_infinite = equal_p(out, -np.inf)
    safe = where_p(both_infinite, 0.0, x) - where_p(both_infinite, 0.0, out)
    return g * where_p(both_infinite, 0.5, exp_p(safe))


logaddexp_p = Primitive("logaddexp", np.logaddexp, ("x", "y"), broadcasting=True)
logaddexp_p.defvjp(_logaddexp_rule, lambda g, out, x, y: _logaddexp_rule(g, out, y, x))

# Forward mode: every op here is elementwise, its Jacobian diagonal.
for _prim in (floor_p, ceil_p, round_p, mod_p, arcsin_p, arccos_p, arctan_p, arctan2_p, sinh_p, cosh_p,
              arcsinh_p, arccosh_p, arctanh_p, log2_p, log10_p, exp2_p, logaddexp_p):
    _prim.defjvp_diagonal()

UNARY = (floor_p, ceil_p, round_p, arcsin_p, arccos_p, arctan_p, sinh_p, cosh_p, arcsinh_p, arccosh_p,
         arctanh_p, log2_p, log10_p, exp2_p, zeros_like_p)
BINARY = (mod_p, arctan2_p, logaddexp_p)


# ---------------------------------------------------------------------------------------------
# Public ops
# ---------------------------------------------------------------------------------------------
def floor(x: ArrayLike) -> Variable:
    """The largest integer <= x, elementwise (as floats). Its gradient is zero."""
    return floor_p.apply1(x)


def ceil(x: ArrayLike) -> Variable:
    """The smallest integer >= x, elementwise (as floats). Its gradient is zero."""
    return ceil_p.apply1(x)


def round(x: ArrayLike, decimals: int = 0) -> Variable:  # noqa: A001 - NumPy's name
    """x rounded to ``decimals`` decimals, halves to even (NumPy's round). Its gradient is zero."""
    return round_p.apply(x, decimals=integer(decimals, "round", "decimals"))


def mod(x: ArrayLike, y: ArrayLike) -> Variable:
    """x mod y with the sign of y (NumPy's mod, Python's ``%``), with broadcasting. The
    gradient is 1 for x and -floor(x / y) for y."""
    return mod_p.apply2(x, y)


def arcsin(x: ArrayLike) -> Variable:
    """Inverse sine, in [-pi/2, pi/2]."""
    return arcsin_p.apply1(x)


def arccos(x: ArrayLike) -> Variable:
    """Inverse cosine, in [0, pi]."""
    return arccos_p.apply1(x)


def arctan(x: ArrayLike) -> Variable:
    """Inverse tangent, in (-pi/2, pi/2)."""
    return arctan_p.apply1(x)


def arctan2(x1: ArrayLike, x2: ArrayLike) -> Variable:
    """The angle of the point (x2, x1) in (-pi, pi] (NumPy's argument order: y first)."""
    return arctan2_p.apply2(x1, x2)


def sinh(x: ArrayLike) -> Variable:
    """Hyperbolic sine."""
    return sinh_p.apply1(x)


def cosh(x: ArrayLike) -> Variable:
    """Hyperbolic cosine."""
    return cosh_p.apply1(x)


def arcsinh(x: ArrayLike) -> Variable:
    """Inverse hyperbolic sine."""
    return arcsinh_p.apply1(x)


def arccosh(x: ArrayLike) -> Variable:
    """Inverse hyperbolic cosine (x >= 1); its derivative 1/sqrt((x-1)(x+1)) is accurate near 1."""
    return arccosh_p.apply1(x)


def arctanh(x: ArrayLike) -> Variable:
    """Inverse hyperbolic tangent (|x| < 1)."""
    return arctanh_p.apply1(x)


def log2(x: ArrayLike) -> Variable:
    """Base-2 logarithm."""
    return log2_p.apply1(x)


def log10(x: ArrayLike) -> Variable:
    """Base-10 logarithm."""
    return log10_p.apply1(x)


def exp2(x: ArrayLike) -> Variable:
    """2 ** x."""
    return exp2_p.apply1(x)


def logaddexp(x: ArrayLike, y: ArrayLike) -> Variable:
    """log(exp(x) + exp(y)) without overflow, with broadcasting; its gradient is stable too."""
    return logaddexp_p.apply2(x, y)
