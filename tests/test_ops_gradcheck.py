"""Every differentiable op of API §4: gradcheck (order 1 and 2), forward values and dtypes.

Each case is an op applied to inputs of given shapes, with inputs sampled inside the
op's domain and away from its kinks (ties are tested in test_numerics.py). For every
case:

* ``test_gradcheck``: ``tapegrad.gradcheck`` at order 1 and order 2 (float64);
* ``test_forward``: the value against a NumPy reference in float32 and float64, the
  result dtype (float32 stays float32, also next to Python float constants), and the
  dtype and shape of the gradient of each input (broadcast inputs are summed back).
"""

from __future__ import annotations

import builtins
import operator
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import Primitive, Variable

SHAPES = [(), (3,), (2, 3), (1, 3), (2, 1, 4)]
PAIRS = [
    ((2, 3), (3,)), ((2, 3), (1, 3)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((1, 3), (2, 1)), ((3,), (3,)),
    ((3,), (2, 3)), ((2, 3), ()),
]
DTYPES = [np.float32, np.float64]
ORDERS = [1, 2]


# -- samplers: (rng, *shapes) -> list of float64 arrays ------------------------------------
def _uniform(lo: float, hi: float) -> Callable[..., np.ndarray]:
    return lambda rng, shape: np.asarray(rng.uniform(lo, hi, shape), dtype=np.float64)


real = _uniform(-2.0, 2.0)
positive = _uniform(0.5, 2.0)


def nonzero(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Values with |x| in [0.3, 2]: away from the kink of abs/relu and the pole of 1/x."""
    return np.asarray(rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape), dtype=np.float64)


def distinct(rng: np.random.Generator, *shapes: tuple) -> list[np.ndarray]:
    """Values that are pairwise at least ~0.3 apart (no ties for max/min), split into shapes."""
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    total = builtins.max(sum(sizes), 2)
    values = rng.permutation(np.linspace(-2.0, 2.0, total)) + rng.uniform(-0.02, 0.02, total)
    out, start = [], 0
    for s, n in zip(shapes, sizes):
        out.append(values[start:start + n].reshape(s))
        start += n
    return out


def away_from(*points: float) -> Callable[..., np.ndarray]:
    """Values in [-2, 2] at least 0.1 away from each of ``points`` (kinks of clip, maximum)."""

    def sample(rng: np.random.Generator, shape: tuple) -> np.ndarray:
        x = np.asarray(rng.uniform(-2.0, 2.0, shape), dtype=np.float64)
        for _ in range(100):
            bad = np.zeros(np.shape(x), dtype=bool)
            for p in points:
                bad |= np.abs(x - p) < 0.1
            if not bad.any():
                return x
            x = np.where(bad, rng.uniform(-2.0, 2.0, np.shape(x)), x)
        raise AssertionError("sampler did not converge")

    return sample


# -- cases ---------------------------------------------------------------------------------
@dataclass
class Case:
    id: str
    fn: Callable[..., Variable]  # on Variables (what gradcheck calls)
    ref: Callable[..., np.ndarray]  # on float64 ndarrays
    make: Callable[[np.random.Generator], list[np.ndarray]]  # float64 inputs

    def inputs(self) -> list[np.ndarray]:
        return self.make(np.random.default_rng(zlib.crc32(self.id.encode())))


CASES: list[Case] = []


def add_case(id: str, fn: Callable, ref: Callable, make: Callable) -> None:
    CASES.append(Case(id, fn, ref, make))


def shape_id(*shapes: tuple) -> str:
    return "x".join(str(s).replace(" ", "") for s in shapes)


def one(sampler: Callable, shape: tuple) -> Callable:
    return lambda rng: [sampler(rng, shape)]


def each(samplers: tuple, shapes: tuple) -> Callable:
    return lambda rng: [s(rng, shape) for s, shape in zip(samplers, shapes)]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# Unary elementwise ops, over the whole shape grid.
UNARY = [
    ("neg", tg.neg, np.negative, real),
    ("neg_operator", operator.neg, np.negative, real),
    ("square", tg.square, lambda x: x * x, real),
    ("sqrt", tg.sqrt, np.sqrt, positive),
    ("exp", tg.exp, np.exp, real),
    ("log", tg.log, np.log, positive),
    ("log1p", tg.log1p, lambda x: np.log(1.0 + x), _uniform(-0.5, 2.0)),
    ("expm1", tg.expm1, lambda x: np.exp(x) - 1.0, real),
    ("reciprocal", tg.reciprocal, lambda x: 1.0 / x, nonzero),
    ("sin", tg.sin, np.sin, real),
    ("cos", tg.cos, np.cos, real),
    ("tan", tg.tan, np.tan, _uniform(-1.2, 1.2)),
    ("tanh", tg.tanh, np.tanh, real),
    ("sigmoid", tg.sigmoid, _sigmoid, real),
    ("softplus", tg.softplus, lambda x: np.log(1.0 + np.exp(x)), real),
    ("relu", tg.relu, lambda x: np.where(x > 0, x, 0.0), nonzero),
    ("abs", tg.abs, lambda x: np.where(x < 0, -x, x), nonzero),
    ("abs_builtin", builtins.abs, lambda x: np.where(x < 0, -x, x), nonzero),
    ("nop", tg.nop, lambda x: x, real),
]
for _name, _fn, _ref, _sampler in UNARY:
    for _shape in SHAPES:
        add_case(f"{_name}-{shape_id(_shape)}", _fn, _ref, one(_sampler, _shape))

# Ops with a Python number (or same-dtype ndarray) constant: the dtype must not change.
CONSTANT_FORMS = [
    ("mul_float", lambda v: v * 2.5, lambda x: x * 2.5, real),
    ("rmul_float", lambda v: 2.5 * v, lambda x: 2.5 * x, real),
    ("add_float", lambda v: v + 1.5, lambda x: x + 1.5, real),
    ("radd_int", lambda v: 3 + v, lambda x: 3 + x, real),
    ("sub_float", lambda v: v - 0.5, lambda x: x - 0.5, real),
    ("rsub_float", lambda v: 0.5 - v, lambda x: 0.5 - x, real),
    ("div_float", lambda v: v / 4.0, lambda x: x / 4.0, real),
    ("rdiv_float", lambda v: 3.0 / v, lambda x: 3.0 / x, nonzero),
    ("pow_int", lambda v: v ** 3, lambda x: x ** 3, real),
    ("pow_float", lambda v: v ** 2.5, lambda x: x ** 2.5, positive),
    ("pow_negative", lambda v: v ** -1.5, lambda x: x ** -1.5, positive),
    ("rpow_float", lambda v: 2.0 ** v, lambda x: 2.0 ** x, real),
    ("pow_fn_exponent", lambda v: tg.pow(v, 0.5), np.sqrt, positive),
    ("pow_fn_base", lambda v: tg.pow(1.7, v), lambda x: 1.7 ** x, real),
    ("mul_fn_float", lambda v: tg.mul(v, 0.5), lambda x: x * 0.5, real),
    ("sub_fn_float", lambda v: tg.sub(1.0, v), lambda x: 1.0 - x, real),
    ("div_fn_float", lambda v: tg.div(1.0, v), lambda x: 1.0 / x, nonzero),
    ("rsub_ndarray", lambda v: np.full(v.shape, 1.5, v.dtype) - v, lambda x: 1.5 - x, real),
    ("rmul_ndarray", lambda v: np.full(v.shape, 1.5, v.dtype) * v, lambda x: 1.5 * x, real),
    ("scale", lambda v: tg.scale(2.5, v), lambda x: 2.5 * x, real),
    ("increment", lambda v: tg.increment(v, 0.5), lambda x: x + 0.5, real),
    ("increment_alpha", lambda v: tg.increment(v, 0.5, 2.0), lambda x: 2.0 * x + 0.5, real),
    ("maximum_float", lambda v: tg.maximum(v, 0.25), lambda x: np.where(x > 0.25, x, 0.25), away_from(0.25)),
    ("minimum_float", lambda v: tg.minimum(0.25, v), lambda x: np.where(x < 0.25, x, 0.25), away_from(0.25)),
    ("clip_by_value", lambda v: tg.clip_by_value(v, -0.5, 0.8), lambda x: np.where(x < -0.5, -0.5,
                                                                                   np.where(x > 0.8, 0.8, x)),
     away_from(-0.5, 0.8)),
    ("where_float_y", lambda v: tg.where(v > 0, v, 0.0), lambda x: np.where(x > 0, x, 0.0), nonzero),
    ("where_float_x", lambda v: tg.where(v > 0, 1.0, v * v), lambda x: np.where(x > 0, 1.0, x * x), nonzero),
]
for _name, _fn, _ref, _sampler in CONSTANT_FORMS:
    for _shape in SHAPES:
        add_case(f"{_name}-{shape_id(_shape)}", _fn, _ref, one(_sampler, _shape))

# Binary elementwise ops over broadcasting pairs (function form and operator form).
BINARY = [
    ("add", tg.add, np.add, (real, real)),
    ("add_operator", operator.add, np.add, (real, real)),
    ("sub", tg.sub, np.subtract, (real, real)),
    ("sub_operator", operator.sub, np.subtract, (real, real)),
    ("mul", tg.mul, np.multiply, (real, real)),
    ("mul_operator", operator.mul, np.multiply, (real, real)),
    ("div", tg.div, np.divide, (real, nonzero)),
    ("div_operator", operator.truediv, np.divide, (real, nonzero)),
    ("pow", tg.pow, np.power, (positive, _uniform(-1.5, 1.5))),
    ("pow_operator", operator.pow, np.power, (positive, _uniform(-1.5, 1.5))),
    ("scale", tg.scale, np.multiply, (real, real)),
    ("maximum", tg.maximum, np.fmax, None),
    ("minimum", tg.minimum, np.fmin, None),
]
for _name, _fn, _ref, _samplers in BINARY:
    for _pair in PAIRS:
        _make = (lambda rng, p=_pair: distinct(rng, *p)) if _samplers is None else each(_samplers, _pair)
        add_case(f"{_name}-{shape_id(*_pair)}", _fn, _ref, _make)

# increment(x, beta, alpha) with all three arguments differentiable.
for _shapes in [((2, 3), (3,), ()), ((3,), (2, 3), (1, 3)), ((), (), ()), ((2, 1, 4), (3, 1), (4,))]:
    add_case(f"increment_xba-{shape_id(*_shapes)}", tg.increment, lambda x, b, a: a * x + b,
             each((real, real, real), _shapes))

# where(condition, x, y) with broadcasting among all three.
for _c, _x, _y in [((2, 3), (2, 3), (2, 3)), ((2, 3), (3,), (2, 1)), ((3,), (2, 3), ()), ((2, 1, 4), (3, 1), (4,)),
                   ((), (3,), (2, 3))]:
    _cond = np.random.default_rng(len(_c) + len(_x)).uniform(size=_c) > 0.5
    add_case(f"where-{shape_id(_c, _x, _y)}", lambda x, y, c=_cond: tg.where(c, x, y),
             lambda x, y, c=_cond: np.where(c, x, y), each((real, real), (_x, _y)))
    add_case(f"where_variable_cond-{shape_id(_c, _x, _y)}", lambda x, y, c=_cond: tg.where(Variable(c), x, y),
             lambda x, y, c=_cond: np.where(c, x, y), each((real, real), (_x, _y)))

# clip_by_value with array bounds that broadcast against x.
for _x, _lo, _hi in [((2, 3), (3,), ()), ((3,), (2, 3), (2, 1))]:
    _lo_v = np.resize([-0.7, -0.5, -0.3], _lo)
    _hi_v = np.full(_hi, 0.8)
    add_case(f"clip_array_bounds-{shape_id(_x, _lo, _hi)}",
             lambda v, lo=_lo_v, hi=_hi_v: tg.clip_by_value(v, lo.astype(v.dtype), hi.astype(v.dtype)),
             lambda x, lo=_lo_v, hi=_hi_v: np.where(x < lo, lo, np.where(x > hi, hi, x)),
             one(away_from(-0.7, -0.5, -0.3, 0.8), _x))


# matmul: 2-D, all transpose combinations, batched with broadcasting batch axes, vectors.
def _np_matmul(ta: bool, tb: bool) -> Callable:
    def ref(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.matmul(np.swapaxes(x, -1, -2) if ta else x, np.swapaxes(y, -1, -2) if tb else y)

    return ref


MATMUL = [
    ((2, 3), (3, 4), False, False), ((3, 2), (3, 4), True, False), ((2, 3), (4, 3), False, True),
    ((3, 2), (4, 3), True, True),
    ((2, 2, 3), (3, 4), False, False), ((2, 3), (2, 3, 4), False, False), ((1, 2, 3), (2, 3, 4), False, False),
    ((2, 1, 2, 3), (3, 3, 2), False, False), ((2, 3, 2), (1, 4, 3), True, True), ((2, 3, 2), (3, 4), True, False),
    ((2, 2, 3), (2, 4, 3), False, True),
    ((3,), (3,), False, False), ((3,), (3, 4), False, False), ((2, 3), (3,), False, False),
    ((3,), (2, 3, 4), False, False), ((2, 2, 3), (3,), False, False), ((3,), (4, 3), False, True),
    ((3, 2), (3,), True, False),
]
for _xs, _ys, _ta, _tb in MATMUL:
    _suffix = "".join(["-ta" if _ta else "", "-tb" if _tb else ""])
    add_case(f"matmul-{shape_id(_xs, _ys)}{_suffix}",
             lambda x, y, ta=_ta, tb=_tb: tg.matmul(x, y, transpose_a=ta, transpose_b=tb),
             _np_matmul(_ta, _tb), each((real, real), (_xs, _ys)))
add_case("matmul_operator-(2,3)x(3,4)", operator.matmul, np.matmul, each((real, real), ((2, 3), (3, 4))))
add_case("matmul_rmatmul_ndarray-(2,3)x(3,)", lambda v: np.linspace(-1, 1, 6).reshape(2, 3).astype(v.dtype) @ v,
         lambda x: np.linspace(-1, 1, 6).reshape(2, 3) @ x, one(real, (3,)))


# Reductions: axis None / int / negative int / tuple, keepdims False / True.
def axis_cases(shape: tuple) -> list:
    nd = len(shape)
    cases: list = [None]
    if nd >= 1:
        cases += [0, -1]
    if nd >= 2:
        cases += [(0, -1), (-1,)]
    if nd >= 3:
        cases += [1, (2, 1), (0, 1, 2)]
    return cases


def _np_logsumexp(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


REDUCTIONS = [
    ("reduce_sum", tg.reduce_sum, np.sum, real),
    ("reduce_mean", tg.reduce_mean, np.mean, real),
    ("reduce_max", tg.reduce_max, np.max, None),
    ("reduce_min", tg.reduce_min, np.min, None),
    ("logsumexp", tg.logsumexp, _np_logsumexp, real),
]
for _name, _fn, _ref, _sampler in REDUCTIONS:
    for _shape in SHAPES:
        for _axis in axis_cases(_shape):
            for _keep in (False, True):
                _make = (lambda rng, s=_shape: distinct(rng, s)) if _sampler is None else one(_sampler, _shape)
                add_case(f"{_name}-{shape_id(_shape)}-axis{_axis}-keep{int(_keep)}".replace(" ", ""),
                         lambda x, f=_fn, a=_axis, k=_keep: f(x, axis=a, keepdims=k),
                         lambda x, f=_ref, a=_axis, k=_keep: f(x, axis=a, keepdims=k), _make)
# The methods of Variable go through the same ops.
add_case("sum_method-(2,3)-axis0", lambda v: v.sum(axis=0), lambda x: x.sum(axis=0), one(real, (2, 3)))
add_case("mean_method-(2,3)-keep", lambda v: v.mean(axis=1, keepdims=True), lambda x: x.mean(1, keepdims=True),
         one(real, (2, 3)))
add_case("max_method-(2,3)", lambda v: v.max(axis=-1), lambda x: x.max(axis=-1), lambda rng: distinct(rng, (2, 3)))
add_case("min_method-(2,3)", lambda v: v.min(), lambda x: x.min(), lambda rng: distinct(rng, (2, 3)))


# softmax / log_softmax along an axis.
def _np_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


for _shape in SHAPES[1:]:
    for _axis in sorted({-1, 0, len(_shape) - 2}):
        add_case(f"softmax-{shape_id(_shape)}-axis{_axis}", lambda x, a=_axis: tg.softmax(x, axis=a),
                 lambda x, a=_axis: _np_softmax(x, a), one(real, _shape))
        add_case(f"log_softmax-{shape_id(_shape)}-axis{_axis}", lambda x, a=_axis: tg.log_softmax(x, axis=a),
                 lambda x, a=_axis: np.log(_np_softmax(x, a)), one(real, _shape))
add_case("softmax_default_axis-(2,3)", tg.softmax, lambda x: _np_softmax(x, -1), one(real, (2, 3)))
add_case("log_softmax_default_axis-(2,3)", tg.log_softmax, lambda x: np.log(_np_softmax(x, -1)), one(real, (2, 3)))

# Shape ops.
for _shape, _new in [((2, 3), (3, 2)), ((2, 3), (6,)), ((2, 3), (-1,)), ((1, 3), (3,)), ((), (1, 1)),
                     ((2, 1, 4), (4, 2)), ((3,), (1, 3, 1)), ((2, 1, 4), (2, -1)), ((1, 1), ())]:
    add_case(f"reshape-{shape_id(_shape)}-to{shape_id(_new)}", lambda x, s=_new: tg.reshape(x, s),
             lambda x, s=_new: np.reshape(x, s), one(real, _shape))
add_case("reshape_method-(2,3)", lambda v: v.reshape(3, 2), lambda x: x.reshape(3, 2), one(real, (2, 3)))

for _shape, _perm in [((2, 3), None), ((2, 1, 4), None), ((2, 1, 4), (1, 2, 0)), ((2, 1, 4), (0, -1, 1)),
                      ((3,), None), ((), None), ((2, 3), (1, 0)), ((1, 3), (0, 1))]:
    add_case(f"transpose-{shape_id(_shape)}-perm{_perm}".replace(" ", ""), lambda x, p=_perm: tg.transpose(x, p),
             lambda x, p=_perm: np.transpose(x, p), one(real, _shape))
add_case("transpose_T-(2,3)", lambda v: v.T, lambda x: x.T, one(real, (2, 3)))

for _shape, _repeats, _axis in [((3,), 2, None), ((2, 3), 2, None), ((2, 3), 2, 1), ((2, 3), 3, 0),
                                ((2, 1, 4), 2, -2), ((), 3, None), ((2, 3), 0, 1), ((2, 3), [1, 0, 3], 1),
                                ((2, 3), [2, 1], 0), ((2, 3), [1, 0, 3, 2, 1, 1], None),
                                ((2, 3), np.array([2, 1, 1]), -1), ((2, 1, 4), [3], 1)]:
    _rid = str(list(_repeats) if isinstance(_repeats, np.ndarray) else _repeats).replace(" ", "")
    add_case(f"repeat-{shape_id(_shape)}-r{_rid}-axis{_axis}", lambda x, r=_repeats, a=_axis: tg.repeat(x, r, a),
             lambda x, r=_repeats, a=_axis: np.repeat(x, r, axis=a), one(real, _shape))


def _weighted_concat(pieces: list, axis: int, concat: Callable) -> Any:
    # Weight each piece differently, so that a mix-up between pieces changes the gradient.
    return concat([p * float(i + 1) for i, p in enumerate(pieces)], axis)


for _shape, _sizes, _axis in [((4, 3), [1, 3], 0), ((2, 3), [1, 2], 1), ((2, 6), 3, -1), ((2, 1, 4), [3, 0, 1], 2),
                              ((6,), 2, 0), ((2, 3), [3], 1)]:
    add_case(f"split-{shape_id(_shape)}-{_sizes}-axis{_axis}".replace(" ", ""),
             lambda x, s=_sizes, a=_axis: _weighted_concat(tg.split(x, s, a), a, lambda ps, ax: tg.concat(ps, ax)),
             lambda x, s=_sizes, a=_axis: _weighted_concat(
                 np.split(x, s if isinstance(s, int) else np.cumsum(s)[:-1], axis=a), a,
                 lambda ps, ax: np.concatenate(ps, ax)),
             one(real, _shape))

for _shapes, _axis in [([(2, 3), (2, 1), (2, 2)], -1), ([(2, 3), (1, 3)], 0), ([(2, 1, 4), (2, 2, 4)], 1),
                       ([(3,), (2,)], 0), ([(2, 3)], 0), ([(2, 1, 4), (2, 1, 1), (2, 1, 2)], 2)]:
    add_case(f"concat-{shape_id(*_shapes)}-axis{_axis}", lambda *xs, a=_axis: tg.concat(list(xs), a),
             lambda *xs, a=_axis: np.concatenate(xs, axis=a), each((real,) * len(_shapes), tuple(_shapes)))
add_case("concat_default_axis-(2,1)x(2,2)", lambda x, y: tg.concat([x, y]), lambda x, y: np.concatenate([x, y], -1),
         each((real, real), ((2, 1), (2, 2))))

for _shape, _n, _axis in [((3,), 3, 0), ((2, 3), 2, -1), ((2, 3), 2, 1), ((), 3, 0), ((2, 1, 4), 2, 2), ((1, 3), 1, 0)]:
    add_case(f"stack-{_n}x{shape_id(_shape)}-axis{_axis}", lambda *xs, a=_axis: tg.stack(list(xs), a),
             lambda *xs, a=_axis: np.stack(xs, axis=a), each((real,) * _n, (_shape,) * _n))
add_case("stack_same_variable_twice-(2,3)", lambda x: tg.stack([x, x * 2.0], 0), lambda x: np.stack([x, x * 2.0]),
         one(real, (2, 3)))

for _shape, _axis in [((), 0), ((3,), 0), ((3,), -1), ((2, 3), 1), ((2, 1, 4), -2), ((2, 3), -3)]:
    add_case(f"expand_dims-{shape_id(_shape)}-axis{_axis}", lambda x, a=_axis: tg.expand_dims(x, a),
             lambda x, a=_axis: np.expand_dims(x, a), one(real, _shape))

for _shape, _axis in [((1, 3), None), ((1, 3), 0), ((2, 1, 4), 1), ((2, 1, 4), -2), ((1, 3, 1), None),
                      ((1, 3, 1), -1), ((3,), None), ((1, 3, 1), (0, 2))]:
    add_case(f"squeeze-{shape_id(_shape)}-axis{_axis}".replace(" ", ""), lambda x, a=_axis: tg.squeeze(x, a),
             lambda x, a=_axis: np.squeeze(x, a), one(real, _shape))

for _shape, _to in [((3,), (2, 3)), ((1, 3), (2, 3)), ((), (2, 3)), ((2, 1, 4), (3, 2, 2, 4)), ((3, 1), (3, 4)),
                    ((2, 3), (2, 3))]:
    add_case(f"broadcast_to-{shape_id(_shape)}-to{shape_id(_to)}", lambda x, s=_to: tg.broadcast_to(x, s),
             lambda x, s=_to: np.broadcast_to(x, s), one(real, _shape))

for _shape, _idx, _axis in [((4, 3), [0, 2, 2, -1], 0), ((2, 3), [[0, 2], [2, 2]], 1), ((2, 1, 4), [3, 0, 3], -1),
                            ((3,), 1, 0), ((2, 3), [1, 1, 1], 0), ((3,), [[2, 0], [0, 0]], 0)]:
    add_case(f"gather-{shape_id(_shape)}-{_idx}-axis{_axis}".replace(" ", ""),
             lambda x, i=_idx, a=_axis: tg.gather(x, np.asarray(i), a),
             lambda x, i=_idx, a=_axis: np.take(x, i, axis=a), one(real, _shape))
add_case("gather_variable_indices-(4,3)", lambda x: tg.gather(x, Variable(np.array([3, 3, 0])), 0),
         lambda x: np.take(x, [3, 3, 0], axis=0), one(real, (4, 3)))

# Indexing v[...]: slices, ints, None, Ellipsis, int arrays (repeated indices), bool masks.
_MASK_23 = np.array([[True, False, True], [False, True, True]])
INDEXING = [
    ((3, 4), 1), ((3, 4), -1), ((3, 4), (1, 2)), ((3, 4), slice(1, None)),
    ((3, 4), (slice(None), slice(1, 3))), ((3, 4), (slice(None, None, -1), slice(None, None, 2))),
    ((3, 4), (slice(None, None, 2), 0)), ((3, 4), None), ((3, 4), (None, slice(None), None)),
    ((2, 3, 4), (Ellipsis, 1)), ((2, 3, 4), (None, Ellipsis, slice(1, None), -1)), ((2, 3, 4), ()),
    ((3, 4), np.array([0, 0, 2])), ((3, 4), (slice(None), [1, 1, 3, 0])),
    ((3, 4), (np.array([0, 1, 1]), np.array([2, 2, 0]))), ((3, 4), np.array([[0, 1], [1, 1]])),
    ((2, 3, 4), (np.array([1, 1]), slice(None), np.array([0, 0]))),
    ((2, 3), _MASK_23), ((3, 4), np.array([True, False, True])), ((2, 3, 4), (Ellipsis, np.array([1, 0, 0, 1], bool))),
    ((2, 3), (slice(0, 2), _MASK_23[0])), ((3,), [2, 2, 2, 0]), ((), ()), ((), None),
]
for _shape, _index in INDEXING:
    _iid = repr(_index).replace(" ", "").replace("array", "")
    add_case(f"getitem-{shape_id(_shape)}-{_iid}", lambda x, i=_index: x[i], lambda x, i=_index: x[i],
             one(real, _shape))
add_case("getitem_fn-(3,4)", lambda x: tg.getitem(x, (slice(None), [0, 0])), lambda x: x[:, [0, 0]],
         one(real, (3, 4)))
add_case("getitem_variable_index-(3,4)", lambda x: x[Variable(np.array([2, 2]))], lambda x: x[[2, 2]],
         one(real, (3, 4)))
add_case("getitem_variable_mask-(2,3)", lambda x: x[Variable(_MASK_23)], lambda x: x[_MASK_23], one(real, (2, 3)))

# Compositions: an op used twice, several ops chained (the tape sums cotangents).
add_case("chain_mlp-(2,3)x(3,4)x(4,)",
         lambda x, w, b: tg.reduce_mean(tg.log_softmax(tg.tanh(tg.matmul(x, w) + b)), axis=0),
         lambda x, w, b: np.mean(np.log(_np_softmax(np.tanh(x @ w + b), -1)), axis=0),
         each((real, real, real), ((2, 3), (3, 4), (4,))))
add_case("add_same_variable-(2,3)", lambda x: tg.add(x, x), lambda x: 2 * x, one(real, (2, 3)))
add_case("mul_same_variable-(2,3)", lambda x: tg.mul(x, x), lambda x: x * x, one(real, (2, 3)))
add_case("pow_same_variable-(3,)", lambda x: tg.pow(x, x), lambda x: x ** x, one(positive, (3,)))
add_case("where_same_variable-(2,3)", lambda x: tg.where(_MASK_23, x, x * 3.0), lambda x: np.where(_MASK_23, x, 3 * x),
         one(real, (2, 3)))
add_case("concat_with_constant-(2,3)", lambda x: tg.concat([x, np.ones((2, 2), x.dtype), x * 2.0], axis=1),
         lambda x: np.concatenate([x, np.ones((2, 2)), 2 * x], axis=1), one(real, (2, 3)))
add_case("stack_with_constant-(3,)", lambda x: tg.stack([np.zeros(3, x.dtype), x], axis=1),
         lambda x: np.stack([np.zeros(3), x], axis=1), one(real, (3,)))
add_case("chain_reuse-(2,3)", lambda x: x * tg.exp(x) - tg.sin(x) / (1.0 + x * x), lambda x: x * np.exp(x) - np.sin(x)
         / (1.0 + x * x), one(real, (2, 3)))

CASE_PARAMS = [pytest.param(c, id=c.id) for c in CASES]


# -- the tests -------------------------------------------------------------------------------
def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_gradcheck(case: Case, order: int) -> None:
    assert tg.gradcheck(case.fn, case.inputs(), order=order) is True


TOLERANCE = {np.float32: {"rtol": 2e-5, "atol": 1e-5}, np.float64: {"rtol": 1e-11, "atol": 1e-12}}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_forward(case: Case, dtype: type) -> None:
    xs = [a.astype(dtype) for a in case.inputs()]
    vs = [Variable(x) for x in xs]
    with tg.GradientTape() as tape:
        out = case.fn(*vs)
    assert isinstance(out, Variable)
    expected = np.asarray(case.ref(*[x.astype(np.float64) for x in xs]))
    assert out.shape == expected.shape
    assert out.dtype == dtype, f"result dtype {out.dtype} for {np.dtype(dtype)} inputs"
    np.testing.assert_allclose(out.value(), expected, **TOLERANCE[dtype])
    # Inputs are not changed by the op.
    for x, v in zip(xs, vs):
        np.testing.assert_array_equal(v.value(), x)
    # Gradients have each input's shape and dtype (broadcast inputs are summed back).
    grads = tape.gradient(out, vs)
    for g, x in zip(grads, xs):
        assert g is not None
        assert g.shape == x.shape and g.dtype == dtype


# -- op-specific checks the table does not express ------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("shape,sizes,axis", [((4, 3), [1, 3], 0), ((2, 6), 3, -1), ((2, 1, 4), [3, 0, 1], 2)])
def test_split_pieces(shape: tuple, sizes: Any, axis: int, dtype: type) -> None:
    x = np.arange(np.prod(shape), dtype=dtype).reshape(shape)
    pieces = tg.split(Variable(x), sizes, axis)
    expected = np.split(x, sizes if isinstance(sizes, int) else np.cumsum(sizes)[:-1], axis=axis)
    assert isinstance(pieces, list) and len(pieces) == len(expected)
    for p, e in zip(pieces, expected):
        assert p.dtype == dtype
        np.testing.assert_array_equal(p.value(), e)


def test_split_gradient_of_one_piece():
    x = Variable(np.arange(6.0).reshape(2, 3))
    with tg.GradientTape() as tape:
        _, right = tg.split(x, [1, 2], axis=1)
        y = tg.reduce_sum(right * right)
    np.testing.assert_array_equal(tape.gradient(y, x).value(), [[0, 2, 4], [0, 8, 10]])


def test_nop_result_does_not_alias_input():
    # assign() on an op result must never change the op's input (as for reshape and slicing).
    x = Variable(np.array([1.0, 2.0, 3.0]))
    y = tg.nop(x)
    y.assign(np.zeros(3))
    np.testing.assert_array_equal(x.value(), [1, 2, 3])
    np.testing.assert_array_equal(y.value(), [0, 0, 0])


def test_stop_gradient_result_does_not_alias_input():
    x = Variable(np.array([1.0, 2.0, 3.0]))
    y = tg.stop_gradient(x)
    y.assign(np.zeros(3))
    np.testing.assert_array_equal(x.value(), [1, 2, 3])


def test_stop_gradient_blocks_gradient():
    x = Variable(np.array([1.0, 2.0, 3.0]))
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(x * tg.stop_gradient(x))
    np.testing.assert_array_equal(tape.gradient(y, x).value(), [1, 2, 3])


def test_clip_by_value_bounds_get_the_gradient_where_x_crossed_them():
    # as TensorFlow, PyTorch (torch.clamp with tensor bounds) and JAX do
    x = Variable(np.array([-1.0, 0.5, 2.0, 3.0]))
    lo, hi = Variable(np.array(0.0)), Variable(np.array(1.0))
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(tg.clip_by_value(x, lo, hi) * np.array([1.0, 2.0, 3.0, 4.0]))
    gx, glo, ghi = tape.gradient(y, [x, lo, hi])
    np.testing.assert_array_equal(gx.value(), [0, 2, 0, 0])
    assert float(glo) == 1.0 and float(ghi) == 7.0
    # lo > hi: the result is hi everywhere
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(tg.clip_by_value(x, hi, lo))
    gx, glo, ghi = tape.gradient(y, [x, lo, hi])
    np.testing.assert_array_equal(gx.value(), [0, 0, 0, 0])
    assert float(glo) == 4.0 and float(ghi) == 0.0
    tg.gradcheck(lambda a, b, c: tg.clip_by_value(a, b, c), [np.array([-1.0, 0.4, 2.0]), np.array(0.1),
                                                            np.array(1.2)], order=2)


# -- gradcheck itself must be able to fail, or the tests above prove nothing ------------------
def test_gradcheck_detects_a_wrong_first_derivative():
    bad = Primitive("bad_square", np.square)
    bad.defvjp(lambda g, out, x: g * 2.1 * x)
    with pytest.raises(tg.GradcheckError, match="gradient of input 0"):
        tg.gradcheck(lambda v: bad.apply(v), [np.array([0.5, 1.5])], order=1)


def test_gradcheck_detects_a_wrong_second_derivative():
    # A correct first derivative whose rule is not differentiable (it reads the raw value).
    bad = Primitive("bad_square", np.square)
    bad.defvjp(lambda g, out, x: g * (2 * np.asarray(x)))
    assert tg.gradcheck(lambda v: bad.apply(v), [np.array([0.5, 1.5])], order=1)
    with pytest.raises(tg.GradcheckError, match="second derivative"):
        tg.gradcheck(lambda v: bad.apply(v), [np.array([0.5, 1.5])], order=2)


# -- a constant given as a nested list reaches the VJP rules converted, in both backprop modes --
def test_pow_with_list_exponent_second_order():
    assert tg.gradcheck(lambda v: v ** [2.0, 3.0], [np.array([0.5, 1.5])], order=1)
    assert tg.gradcheck(lambda v: v ** [2.0, 3.0], [np.array([0.5, 1.5])], order=2)
