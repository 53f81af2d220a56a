"""Neural-network primitives: erf/erfc, gelu, silu, leaky_relu, elu, and the dropout mask.

``erf`` and ``erfc`` are W. J. Cody's rational Chebyshev approximations (the
CALERF routine of SPECFUN, Math. Comp. 23 (1969) 631-637), accurate to float64
rounding over the whole real line; NumPy has no erf and SciPy is not a
dependency. They run in the input's float dtype (float32 stays float32).

The activations are single primitives (one NumPy pass forward, one VJP rule)
rather than chains of ops, because they run on every hidden unit of a network.
Their VJP rules are written with primitives, so they are differentiable to any
order. All of them are finite, with finite derivatives, for inputs of +-1e4 and
beyond: ``gelu`` goes through ``erfc`` (no cancellation in ``1 + erf(x)`` for
large negative x), ``elu`` never evaluates ``exp`` of a positive number.

``dropout_mask`` draws a fresh random mask on every execution. It is not
differentiable (the mask is a constant); a compiler must treat it as impure:
never constant-fold it, never merge two of its calls (each call gets its own
``RandomSource`` parameter, which compares by identity), and never re-execute it
to recompute a value for the backward pass (the backward must use the mask the
forward drew).

``gatherb`` (Rindow's batched gather) takes its indices as an input, not as a
parameter, so that a compiled graph reads new indices on every run; its VJP is
``scatterb_add`` and vice versa (differentiable to any order).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError
from ._arguments import composite, number, operand
from .activation import sigmoid_p
from .elementwise import exp_p, greater_p, mul_p, nop_p, tanh_p, where_p

ArrayLike = Any

# -- erf / erfc (Cody) ---------------------------------------------------------------
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_SQRPI = 5.6418958354775628695e-1  # 1 / sqrt(pi)
_THRESH = 0.46875
_XBIG = 26.543  # erfc(x) underflows float64 beyond this
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _float_input(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _exp_neg_square(y: np.ndarray) -> np.ndarray:
    """exp(-y*y) without the rounding error of forming y*y (Cody's split)."""
    ysq = np.trunc(y * 16) / 16
    delta = (y - ysq) * (y + ysq)
    return np.exp(-ysq * ysq) * np.exp(-delta)


def _erfc_abs(y: np.ndarray) -> np.ndarray:
    """erfc(y) for y >= THRESH (y a float array)."""
    mid = y <= 4
    # 0.46875 < y <= 4
    ym = np.where(mid, y, 4)
    num = _C[8] * ym
    den = ym
    for i in range(7):
        num = (num + _C[i]) * ym
        den = (den + _D[i]) * ym
    r_mid = (num + _C[7]) / (den + _D[7])
    # y > 4 (clamped where erfc is zero anyway, so that inf and huge y stay finite)
    yt = np.clip(y, 4, _XBIG)
    ysq = 1 / (yt * yt)
    num = _P[5] * ysq
    den = ysq
    for i in range(4):
        num = (num + _P[i]) * ysq
        den = (den + _Q[i]) * ysq
    r_tail = (_SQRPI - ysq * (num + _P[4]) / (den + _Q[4])) / yt
    yc = np.minimum(y, _XBIG)
    out = _exp_neg_square(yc) * np.where(mid, r_mid, r_tail)
    return np.where(y >= _XBIG, 0, out).astype(y.dtype, copy=False)


def _erf_small(x: np.ndarray) -> np.ndarray:
    """erf(x) for |x| <= THRESH."""
    xs = np.where(np.abs(x) <= _THRESH, x, 0)
    ysq = xs * xs
    num = _A[4] * ysq
    den = ysq
    for i in range(3):
        num = (num + _A[i]) * ysq
        den = (den + _B[i]) * ysq
    return xs * (num + _A[3]) / (den + _B[3])


def _erf_impl(x: Any) -> np.ndarray:
    x = _float_input(x)
    y = np.abs(x)
    small = y <= _THRESH
    big = ~small
    if not big.any():
        return _erf_small(x)
    c = _erfc_abs(np.where(small, 1, y))
    large = np.where(x < 0, c - 1, 1 - c)
    if not small.any():
        return large
    return np.where(small, _erf_small(x), large)


def _erfc_impl(x: Any) -> np.ndarray:
    x = _float_input(x)
    y = np.abs(x)
    small = y <= _THRESH
    c = _erfc_abs(np.where(small, 1, y))
    large = np.where(x < 0, 2 - c, c)
    if not small.any():
        return large
    return np.where(small, 1 - _erf_small(x), large)


erf_p = Primitive("erf", _erf_impl)
erf_p.defvjp(lambda g, out, x: g * (_TWO_OVER_SQRT_PI * exp_p(-(x * x))))

erfc_p = Primitive("erfc", _erfc_impl)
erfc_p.defvjp(lambda g, out, x: g * (-_TWO_OVER_SQRT_PI * exp_p(-(x * x))))

# -- gelu --------------------------------------------------------------------------
_INV_SQRT2 = 1 / math.sqrt(2.0)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_TANH_C = math.sqrt(2 / math.pi)
_TANH_K = 0.044715


def _gelu_impl(x: Any, approximate: bool) -> np.ndarray:
    x = _float_input(x)
    if approximate:
        inner = _TANH_C * (x + _TANH_K * (x * x * x))
        return 0.5 * x * (1 + np.tanh(inner))
    # x * Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2: accurate in the left tail too.
    return x * (0.5 * _erfc_impl(x * -_INV_SQRT2))


def _gelu_rule(g: Any, out: Any, x: Any, approximate: bool) -> Any:
    if approximate:
        x2 = x * x
        t = tanh_p(_TANH_C * (x + _TANH_K * (x2 * x)))
        dinner = _TANH_C * (1 + (3 * _TANH_K) * x2)
        return g * (0.5 * (1 + t) + (0.5 * x) * ((1 - t * t) * dinner))
    # d/dx x Phi(x) = Phi(x) + x phi(x)
    cdf = 0.5 * erfc_p(x * -_INV_SQRT2)
    pdf = _INV_SQRT_2PI * exp_p(-0.5 * (x * x))
    return g * (cdf + x * pdf)


gelu_p = Primitive("gelu", _gelu_impl)
gelu_p.defvjp(_gelu_rule)


# -- silu, leaky_relu, elu ------------------------------------------------------------
def _silu_impl(x: Any) -> np.ndarray:
    return x * sigmoid_p.impl(x)


def _silu_rule(g: Any, out: Any, x: Any) -> Any:
    s = sigmoid_p(x)
    return g * (s + x * (s * (1 - s)))


silu_p = Primitive("silu", _silu_impl)
silu_p.defvjp(_silu_rule)


def _leaky_relu_impl(x: Any, negative_slope: float) -> np.ndarray:
    x = np.asarray(x)
    return np.where(x > 0, x, x * negative_slope)


leaky_relu_p = Primitive("leaky_relu", _leaky_relu_impl)
# The derivative at 0 is negative_slope (as in TensorFlow and PyTorch).
leaky_relu_p.defvjp(
    lambda g, out, x, negative_slope: where_p(greater_p(x, 0), g, g * negative_slope)
)


def _elu_impl(x: Any, alpha: float) -> np.ndarray:
    x = _float_input(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _elu_rule(g: Any, out: Any, x: Any, alpha: float) -> Any:
    # For x <= 0, d/dx alpha (e^x - 1) = alpha e^x = out + alpha: differentiable through out.
    return where_p(greater_p(x, 0), g, g * (out + alpha))


elu_p = Primitive("elu", _elu_impl)
elu_p.defvjp(_elu_rule)


# -- dropout ----------------------------------------------------------------------------
def _dropout_mask_impl(x: Any, rate: float, noise_shape: tuple[int, ...] | None,
                       generator: Callable[[], np.random.Generator]) -> np.ndarray:
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    shape = x.shape if noise_shape is None else tuple(
        n if m is None else m for n, m in zip(x.shape, noise_shape)
    )
    rng = generator()
    draw = rng.random(shape, dtype=np.float32 if dtype == np.float32 else np.float64)
    keep = np.asarray(1.0 / (1.0 - rate), dtype=dtype)
    return np.where(draw >= rate, keep, np.zeros((), dtype=dtype))


dropout_mask_p = Primitive("dropout_mask", _dropout_mask_impl, differentiable=False, impure=True)


# -- gatherb / scatterb_add (Rindow's batched gather) -----------------------------------
def gatherb_index(pshape: tuple, indices: np.ndarray, batch: int, outer: int, inner: int) -> tuple:
    """The NumPy index tuple of a batched gather.

    ``params`` has shape ``(*B, *O, N, *I, *D)`` with ``len(B) == batch``, ``len(O) == outer``,
    ``len(I) == inner``; ``indices`` has shape ``(*B, *X, *I)`` with values in ``[0, N)``.
    The result ``params[index]`` has shape ``(*B, *O, *X, *I, *D)`` with
    ``out[b, o, x, i, d] = params[b, o, indices[b, x, i], i, d]``.
    """
    ishape = indices.shape
    rank = outer + len(ishape)
    index: list[np.ndarray] = []
    for j in range(batch + outer):  # shared batch axes and outer axes keep their position
        index.append(_arange_at(pshape[j], j, rank))
    index.append(indices.reshape(ishape[:batch] + (1,) * outer + ishape[batch:]))
    for m in range(inner):
        index.append(_arange_at(pshape[batch + outer + 1 + m], rank - inner + m, rank))
    return tuple(index)


def _arange_at(n: int, position: int, rank: int) -> np.ndarray:
    shape = [1] * rank
    shape[position] = n
    return np.arange(n).reshape(shape)


def _gatherb_impl(params: Any, indices: Any, batch: int, outer: int, inner: int) -> np.ndarray:
    params, indices = np.asarray(params), np.asarray(indices)
    # NumPy counts a negative index from the end; here it is an error, in a compiled graph too
    if indices.size and indices.min() < 0:
        raise IndexError(f"index {indices.min()} is out of range [0, {params.shape[batch + outer]})")
    if batch == 0 and outer == 0 and inner == 0:
        return np.take(params, indices, axis=0)
    return params[gatherb_index(params.shape, indices, batch, outer, inner)]


def _scatterb_add_impl(g: Any, indices: Any, shape: tuple, batch: int, outer: int, inner: int) -> np.ndarray:
    g, indices = np.asarray(g), np.asarray(indices)
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, gatherb_index(shape, indices, batch, outer, inner), g)  # repeated indices accumulate
    return out


# The indices are an input (not a parameter), so a compiled graph reads them at every run.
gatherb_p = Primitive("gatherb", _gatherb_impl, ("params", "indices"))
scatterb_add_p = Primitive("scatterb_add", _scatterb_add_impl, ("g", "indices"))
gatherb_p.defvjp(
    lambda g, out, params, indices, batch, outer, inner: scatterb_add_p(
        g, indices, shape=np.shape(params), batch=batch, outer=outer, inner=inner),
    None,
)
scatterb_add_p.defvjp(
    lambda g, out, x, indices, shape, batch, outer, inner: gatherb_p(
        g, indices, batch=batch, outer=outer, inner=inner),
    None,
)
# Forward mode: the activations are elementwise; the batched gather and its transpose are linear.
for _prim in (erf_p, erfc_p, gelu_p, silu_p, leaky_relu_p, elu_p):
    _prim.defjvp_diagonal()
gatherb_p.defjvp_linear()
scatterb_add_p.defjvp_linear()


# ---------------------------------------------------------------------------------------
# Public ops.
# ---------------------------------------------------------------------------------------
def erf(x: ArrayLike) -> Variable:
    """The error function, accurate to float64 rounding (Cody's approximation)."""
    return erf_p.apply1(x)


def erfc(x: ArrayLike) -> Variable:
    """The complementary error function 1 - erf(x), accurate also where it is tiny."""
    return erfc_p.apply1(x)


def gelu(x: ArrayLike, approximate: bool = False) -> Variable:
    """Gaussian error linear unit: x * Phi(x) (exact, with erf), or its tanh approximation
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` with ``approximate=True``."""
    return gelu_p.apply(x, approximate=bool(approximate))


def silu(x: ArrayLike) -> Variable:
    """x * sigmoid(x) (also called swish)."""
    return silu_p.apply1(x)


def leaky_relu(x: ArrayLike, negative_slope: float = 0.2) -> Variable:
    """x where x > 0, else negative_slope * x (Keras default slope 0.2)."""
    return leaky_relu_p.apply(x, negative_slope=number(negative_slope, "leaky_relu", "negative_slope"))


def elu(x: ArrayLike, alpha: float = 1.0) -> Variable:
    """x where x > 0, else alpha * (exp(x) - 1)."""
    return elu_p.apply(x, alpha=number(alpha, "elu", "alpha"))


@composite("x")
def dropout(
    x: ArrayLike,
    rate: float,
    noise_shape: Any = None,
    rng: np.random.Generator | int | None = None,
) -> Variable:
    """Inverted dropout: zero each element with probability ``rate`` and scale the others
    by ``1 / (1 - rate)``, so that the expected value is unchanged.

    ``noise_shape`` (the full shape, batch axis included; None entries take x's size)
    shares one mask value along the axes where it is 1. ``rng`` is a NumPy Generator,
    a seed, or None for ``tapegrad.nn.random.generator()`` (the library generator).
    """
    rate = number(rate, "dropout", "rate")
    if not 0.0 <= rate < 1.0:
        raise OpValueError(f"dropout: rate must be in [0, 1), got {rate}")
    x = operand(x, "dropout")
    shape = np.shape(x._value if isinstance(x, Variable) else x)
    if noise_shape is not None:
        noise_shape = tuple(None if n is None else int(n) for n in noise_shape)
        if len(noise_shape) != len(shape) or any(
            m is not None and m != 1 and m != n for n, m in zip(shape, noise_shape)
        ):
            raise OpValueError(f"dropout: noise_shape {noise_shape} does not broadcast to x of shape {shape}")
    if rate == 0.0:
        return nop_p.apply1(x)
    return mul_p.apply2(x, dropout_mask_p.apply(x, rate=rate, noise_shape=noise_shape,
                                                generator=_generator_source(rng)))


def _generator_source(rng: Any) -> Callable[[], np.random.Generator]:
    if rng is None:
        return RandomSource(None)
    if isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(int(rng))
    if not isinstance(rng, np.random.Generator):
        raise OpTypeError(f"dropout: rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")
    return RandomSource(rng)


class RandomSource:
    """The ``generator`` parameter of ``dropout_mask``: returns its Generator, or (for None)
    the library generator ``tapegrad.nn.random.generator()`` current at the draw, so that
    ``set_seed`` takes effect. Make a new one for every application of the primitive: it
    compares by identity, so a compiler never merges two random draws."""

    __slots__ = ("rng",)

    def __init__(self, rng: np.random.Generator | None) -> None:
        self.rng = rng

    def __call__(self) -> np.random.Generator:
        if self.rng is None:
            from ..nn import random as _random

            return _random.generator()
        return self.rng

    def __repr__(self) -> str:
        return "RandomSource(library generator)" if self.rng is None else "RandomSource(own generator)"
