"""Elementwise primitives: arithmetic, math functions, comparisons.

Each primitive is defined once: its NumPy forward and, next to it, its VJP rule
written with primitives and Python operators (so the rule is differentiable).
Binary ops follow NumPy broadcasting; the tape sums each cotangent back to its
input's shape.

Arithmetic forwards are the ``operator`` functions rather than the ufuncs: on NumPy
scalars (0-d values) ``a * b`` takes NumPy's scalar fast path, ~15x faster than
``np.multiply(a, b)``; on arrays both are the same ufunc call.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ._arguments import composite

ArrayLike = Any  # a Variable, NumPy array, Python number or nested list

_XY = ("x", "y")


def _binary(name: str, impl: Any, **kw: Any) -> Primitive:
    return Primitive(name, impl, _XY, broadcasting=True, **kw)


# -- arithmetic ---------------------------------------------------------------------
add_p = _binary("add", operator.add)
add_p.defvjp(lambda g, out, x, y: g, lambda g, out, x, y: g)

sub_p = _binary("sub", operator.sub)
sub_p.defvjp(lambda g, out, x, y: g, lambda g, out, x, y: -g)

mul_p = _binary("mul", operator.mul)
mul_p.defvjp(lambda g, out, x, y: g * y, lambda g, out, x, y: g * x)

div_p = _binary("div", operator.truediv)
div_p.defvjp(lambda g, out, x, y: g / y, lambda g, out, x, y: -g * out / y)

neg_p = Primitive("neg", operator.neg)
neg_p.defvjp(lambda g, out, x: -g)

nop_p = Primitive("nop", lambda x: x)
nop_p.defvjp(lambda g, out, x: g)


def _pow_base_rule(g: Any, out: Any, x: Any, y: Any) -> Any:
    # d/dx x**y = y * x**(y-1). Where y == 0 that is 0 * x**-1, which is 0 * inf = NaN at
    # x == 0 although x**0 is constant: the exponent is made safe first (double-where
    # pattern), so that x**0 has derivative 0 and x**1 has second derivative 0 everywhere.
    if y.__class__ is int or y.__class__ is float:  # the common x ** 2: decided in Python
        return g * 0 if y == 0 else g * y * x ** (y - 1)
    return g * y * x ** where_p(equal_p(y, 0), 1, y - 1)


def _pow_exponent_rule(g: Any, out: Any, x: Any, y: Any) -> Any:
    # d/dy x**y = x**y * log(x); log is taken of 1 where x == 0 so that 0**y gives 0
    # there instead of 0 * -inf (the double-where pattern, see where()).
    safe_x = where_p(equal_p(x, 0), 1, x)
    return g * out * log_p(safe_x)


pow_p = _binary("pow", operator.pow)
pow_p.defvjp(_pow_base_rule, _pow_exponent_rule)

reciprocal_p = Primitive("reciprocal", np.reciprocal)
reciprocal_p.defvjp(lambda g, out, x: -g * out * out)

square_p = Primitive("square", np.square)
square_p.defvjp(lambda g, out, x: g * (2 * x))

sqrt_p = Primitive("sqrt", np.sqrt)
sqrt_p.defvjp(lambda g, out, x: g * 0.5 / out)

# -- exponentials and logarithms ------------------------------------------------------
exp_p = Primitive("exp", np.exp)
exp_p.defvjp(lambda g, out, x: g * out)

log_p = Primitive("log", np.log)
log_p.defvjp(lambda g, out, x: g / x)

log1p_p = Primitive("log1p", np.log1p)
log1p_p.defvjp(lambda g, out, x: g / (1 + x))

expm1_p = Primitive("expm1", np.expm1)
expm1_p.defvjp(lambda g, out, x: g * (out + 1))

# -- trigonometric and hyperbolic -------------------------------------------------------
sin_p = Primitive("sin", np.sin)
cos_p = Primitive("cos", np.cos)
sin_p.defvjp(lambda g, out, x: g * cos_p(x))
cos_p.defvjp(lambda g, out, x: -(g * sin_p(x)))

tan_p = Primitive("tan", np.tan)
tan_p.defvjp(lambda g, out, x: g * (1 + out * out))

tanh_p = Primitive("tanh", np.tanh)
tanh_p.defvjp(lambda g, out, x: g * (1 - out * out))

# -- piecewise ------------------------------------------------------------------------
sign_p = Primitive("sign", np.sign, differentiable=False)

abs_p = Primitive("abs", np.abs)
abs_p.defvjp(lambda g, out, x: g * sign_p(x))  # sign(0) = 0, so abs'(0) = 0


def _maximum_rule(g: Any, out: Any, x: Any, y: Any) -> Any:
    # Ties split the gradient evenly between both arguments.
    return where_p(greater_p(x, y), g, where_p(equal_p(x, y), g * 0.5, 0))


def _minimum_rule(g: Any, out: Any, x: Any, y: Any) -> Any:
    return where_p(less_p(x, y), g, where_p(equal_p(x, y), g * 0.5, 0))


maximum_p = _binary("maximum", np.maximum)
maximum_p.defvjp(_maximum_rule, lambda g, out, x, y: _maximum_rule(g, out, y, x))

minimum_p = _binary("minimum", np.minimum)
minimum_p.defvjp(_minimum_rule, lambda g, out, x, y: _minimum_rule(g, out, y, x))


def _where_impl(cond: Any, x: Any, y: Any) -> Any:
    # Selecting with a random mask is slow in NumPy (~10x a multiply), and VJPs select
    # against 0 all the time (relu, clip, max). x * cond equals where(cond, x, 0) unless x
    # holds inf or NaN where cond is false, which leaves a NaN in the product: checked
    # with one reduction, and only then is the exact select computed.
    if (y.__class__ in (int, float) and y == 0 and x.__class__ is np.ndarray and x.dtype.kind == "f"
            and cond.__class__ is np.ndarray and cond.dtype.kind == "b" and x.size >= _SELECT_BY_PRODUCT):
        out = x * cond
        if not np.isnan(np.add.reduce(out, axis=None)):
            return out
    return np.where(cond, x, y)


_SELECT_BY_PRODUCT = 1024  # below this size np.where is as fast


where_p = Primitive("where", _where_impl, ("condition", "x", "y"), broadcasting=True)
where_p.defvjp(
    lambda g, out, c, x, y: None,
    lambda g, out, c, x, y: where_p(c, g, 0),
    lambda g, out, c, x, y: where_p(c, 0, g),
)


def _clip_impl(x: Any, lo: Any, hi: Any) -> Any:
    return np.minimum(np.maximum(x, lo), hi)


def _clip_rule(g: Any, out: Any, x: Any, lo: Any, hi: Any) -> Any:
    # The gradient passes where lo <= x <= hi (boundaries included, as in TF and PyTorch).
    return where_p(less_p(x, lo), 0, where_p(greater_p(x, hi), 0, g))


def _clip_min_rule(g: Any, out: Any, x: Any, lo: Any, hi: Any) -> Any:
    # The result is lo where x < lo, unless lo > hi (then it is hi).
    return where_p(less_p(x, lo), where_p(greater_p(lo, hi), 0, g), 0)


def _clip_max_rule(g: Any, out: Any, x: Any, lo: Any, hi: Any) -> Any:
    return where_p(greater_p(maximum_p(x, lo), hi), g, 0)


clip_p = Primitive("clip_by_value", _clip_impl, ("x", "min", "max"), broadcasting=True)
clip_p.defvjp(_clip_rule, _clip_min_rule, _clip_max_rule)

# Forward mode: every differentiable op above is elementwise, its Jacobian diagonal.
for _prim in (add_p, sub_p, mul_p, div_p, neg_p, nop_p, pow_p, reciprocal_p, square_p, sqrt_p, exp_p, log_p,
              log1p_p, expm1_p, sin_p, cos_p, tan_p, tanh_p, abs_p, maximum_p, minimum_p, where_p, clip_p):
    _prim.defjvp_diagonal()

# -- comparisons (not differentiable) --------------------------------------------------
equal_p = _binary("equal", np.equal, differentiable=False)
not_equal_p = _binary("not_equal", np.not_equal, differentiable=False)
greater_p = _binary("greater", np.greater, differentiable=False)
greater_equal_p = _binary("greater_equal", np.greater_equal, differentiable=False)
less_p = _binary("less", np.less, differentiable=False)
less_equal_p = _binary("less_equal", np.less_equal, differentiable=False)
logical_and_p = _binary("logical_and", np.logical_and, differentiable=False)
logical_or_p = _binary("logical_or", np.logical_or, differentiable=False)
logical_not_p = Primitive("logical_not", np.logical_not, differentiable=False)
isfinite_p = Primitive("isfinite", np.isfinite, differentiable=False)
isnan_p = Primitive("isnan", np.isnan, differentiable=False)


# ---------------------------------------------------------------------------------------
# Public ops. Each takes Variables, NumPy arrays or numbers and returns a Variable.
# ---------------------------------------------------------------------------------------


def add(x: ArrayLike, y: ArrayLike) -> Variable:
    """x + y, elementwise with broadcasting."""
    return add_p.apply2(x, y)


def sub(x: ArrayLike, y: ArrayLike) -> Variable:
    """x - y, elementwise with broadcasting."""
    return sub_p.apply2(x, y)


def mul(x: ArrayLike, y: ArrayLike) -> Variable:
    """x * y, elementwise with broadcasting."""
    return mul_p.apply2(x, y)


def div(x: ArrayLike, y: ArrayLike) -> Variable:
    """x / y, elementwise with broadcasting."""
    return div_p.apply2(x, y)


def pow(x: ArrayLike, y: ArrayLike) -> Variable:  # noqa: A001 - the op's public name
    """x ** y, elementwise with broadcasting. Differentiable in both arguments."""
    return pow_p.apply2(x, y)


def neg(x: ArrayLike) -> Variable:
    """-x."""
    return neg_p.apply1(x)


def nop(x: ArrayLike) -> Variable:
    """Identity: a new Variable with the same value; gradients pass through."""
    return nop_p.apply1(x)


def reciprocal(x: ArrayLike) -> Variable:
    """1 / x."""
    return reciprocal_p.apply1(x)


def square(x: ArrayLike) -> Variable:
    """x ** 2."""
    return square_p.apply1(x)


def sqrt(x: ArrayLike) -> Variable:
    """Square root."""
    return sqrt_p.apply1(x)


def exp(x: ArrayLike) -> Variable:
    """e ** x."""
    return exp_p.apply1(x)


def log(x: ArrayLike) -> Variable:
    """Natural logarithm."""
    return log_p.apply1(x)


def log1p(x: ArrayLike) -> Variable:
    """log(1 + x), accurate for small x."""
    return log1p_p.apply1(x)


def expm1(x: ArrayLike) -> Variable:
    """exp(x) - 1, accurate for small x."""
    return expm1_p.apply1(x)


def sin(x: ArrayLike) -> Variable:
    """Sine."""
    return sin_p.apply1(x)


def cos(x: ArrayLike) -> Variable:
    """Cosine."""
    return cos_p.apply1(x)


def tan(x: ArrayLike) -> Variable:
    """Tangent."""
    return tan_p.apply1(x)


def tanh(x: ArrayLike) -> Variable:
    """Hyperbolic tangent."""
    return tanh_p.apply1(x)


def abs(x: ArrayLike) -> Variable:  # noqa: A001 - the op's public name
    """|x|. Its derivative at 0 is 0."""
    return abs_p.apply1(x)


def sign(x: ArrayLike) -> Variable:
    """-1, 0 or 1 (not differentiable: its gradient is zero)."""
    return sign_p.apply1(x)


def maximum(x: ArrayLike, y: ArrayLike) -> Variable:
    """Elementwise maximum; where x == y the gradient is split evenly."""
    return maximum_p.apply2(x, y)


def minimum(x: ArrayLike, y: ArrayLike) -> Variable:
    """Elementwise minimum; where x == y the gradient is split evenly."""
    return minimum_p.apply2(x, y)


def where(condition: ArrayLike, x: ArrayLike, y: ArrayLike) -> Variable:
    """x where condition is true, else y (with broadcasting).

    The gradient flows to the selected branch only. But if the unselected branch is
    NaN or inf, its derivative (0 * inf = NaN) still poisons the gradient. Use the
    double-where pattern: first replace the inputs that would produce the bad
    values, then select::

        safe_x = where(x > 0, x, 1.0)              # log is never evaluated at x <= 0
        y = where(x > 0, log(safe_x), 0.0)         # finite gradient everywhere
    """
    return where_p.apply(condition, x, y)


def clip_by_value(x: ArrayLike, min: ArrayLike, max: ArrayLike) -> Variable:
    """Clip x to [min, max]. The gradient passes to x where min <= x <= max, and to the bound
    that x crossed elsewhere (bounds given as Variables are differentiable, as in PyTorch)."""
    return clip_p.apply(x, min, max)


def equal(x: ArrayLike, y: ArrayLike) -> Variable:
    """x == y as a bool Variable (not differentiable)."""
    return equal_p.apply2(x, y)


def not_equal(x: ArrayLike, y: ArrayLike) -> Variable:
    """x != y as a bool Variable (not differentiable)."""
    return not_equal_p.apply2(x, y)


def greater(x: ArrayLike, y: ArrayLike) -> Variable:
    """x > y as a bool Variable (not differentiable)."""
    return greater_p.apply2(x, y)


def greater_equal(x: ArrayLike, y: ArrayLike) -> Variable:
    """x >= y as a bool Variable (not differentiable)."""
    return greater_equal_p.apply2(x, y)


def less(x: ArrayLike, y: ArrayLike) -> Variable:
    """x < y as a bool Variable (not differentiable)."""
    return less_p.apply2(x, y)


def less_equal(x: ArrayLike, y: ArrayLike) -> Variable:
    """x <= y as a bool Variable (not differentiable)."""
    return less_equal_p.apply2(x, y)


def logical_and(x: ArrayLike, y: ArrayLike) -> Variable:
    """Elementwise logical and (not differentiable)."""
    return logical_and_p.apply2(x, y)


def logical_or(x: ArrayLike, y: ArrayLike) -> Variable:
    """Elementwise logical or (not differentiable)."""
    return logical_or_p.apply2(x, y)


def logical_not(x: ArrayLike) -> Variable:
    """Elementwise logical not (not differentiable)."""
    return logical_not_p.apply1(x)


def isfinite(x: ArrayLike) -> Variable:
    """True where x is neither NaN nor inf (not differentiable)."""
    return isfinite_p.apply1(x)


def isnan(x: ArrayLike) -> Variable:
    """True where x is NaN (not differentiable)."""
    return isnan_p.apply1(x)


@composite("alpha", "x")
def scale(alpha: ArrayLike, x: ArrayLike) -> Variable:
    """alpha * x (Rindow's scale)."""
    return mul_p.apply2(alpha, x)


@composite("x", "beta", "alpha")
def increment(x: ArrayLike, beta: ArrayLike, alpha: ArrayLike = 1.0) -> Variable:
    """alpha * x + beta (Rindow's increment)."""
    if alpha.__class__ in (int, float) and alpha == 1:
        return add_p.apply2(x, beta)
    return add_p.apply2(mul_p.apply2(alpha, x), beta)
