"""The ops against PyTorch (float64): values, gradients and Hessian-vector products.

For each case ``f`` with inputs ``xs``, a fixed random cotangent ``w`` and direction ``v``:

* values: ``f(xs)`` against the torch function;
* gradients: ``tape.gradient(sum(f(xs) * w), xs)`` against ``torch.autograd.grad``;
* Hessian-vector products: nested GradientTapes (inner gradient ``g``, then the outer
  gradient of ``sum(g * v)``) against torch's double backward.
"""

from __future__ import annotations

import operator
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import Variable

torch = pytest.importorskip("torch")

SHAPES = [(), (2, 3), (2, 1, 4)]
PAIRS = [((2, 3), (3,)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((1, 3), (2, 1))]
TOL = {"rtol": 1e-10, "atol": 1e-12}


def _uniform(lo: float, hi: float) -> Callable:
    return lambda rng, shape: np.asarray(rng.uniform(lo, hi, shape), dtype=np.float64)


real = _uniform(-2.0, 2.0)
positive = _uniform(0.5, 2.0)


def nonzero(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return np.asarray(rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape), dtype=np.float64)


def distinct(rng: np.random.Generator, *shapes: tuple) -> list[np.ndarray]:
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    total = max(sum(sizes), 2)
    values = rng.permutation(np.linspace(-2.0, 2.0, total)) + rng.uniform(-0.02, 0.02, total)
    out, start = [], 0
    for s, n in zip(shapes, sizes):
        out.append(values[start:start + n].reshape(s))
        start += n
    return out


@dataclass
class Case:
    id: str
    fn: Callable[..., Variable]
    torch_fn: Callable[..., Any]
    make: Callable[[np.random.Generator], list[np.ndarray]]

    def inputs(self) -> list[np.ndarray]:
        return self.make(np.random.default_rng(zlib.crc32(self.id.encode())))


CASES: list[Case] = []


def add_case(id: str, fn: Callable, torch_fn: Callable, make: Callable) -> None:
    CASES.append(Case(id, fn, torch_fn, make))


def sid(*shapes: tuple) -> str:
    return "x".join(str(s).replace(" ", "") for s in shapes)


def one(sampler: Callable, shape: tuple) -> Callable:
    return lambda rng: [sampler(rng, shape)]


def each(samplers: tuple, shapes: tuple) -> Callable:
    return lambda rng: [s(rng, shape) for s, shape in zip(samplers, shapes)]


def T(a: Any) -> Any:
    """A NumPy constant as a torch tensor."""
    return torch.as_tensor(np.asarray(a))


UNARY = [
    ("neg", tg.neg, torch.neg, real),
    ("square", tg.square, torch.square, real),
    ("sqrt", tg.sqrt, torch.sqrt, positive),
    ("exp", tg.exp, torch.exp, real),
    ("log", tg.log, torch.log, positive),
    ("log1p", tg.log1p, torch.log1p, _uniform(-0.5, 2.0)),
    ("expm1", tg.expm1, torch.expm1, real),
    ("reciprocal", tg.reciprocal, torch.reciprocal, nonzero),
    ("sin", tg.sin, torch.sin, real),
    ("cos", tg.cos, torch.cos, real),
    ("tan", tg.tan, torch.tan, _uniform(-1.2, 1.2)),
    ("tanh", tg.tanh, torch.tanh, real),
    ("sigmoid", tg.sigmoid, torch.sigmoid, real),
    ("softplus", tg.softplus, torch.nn.functional.softplus, real),
    ("relu", tg.relu, torch.relu, nonzero),
    ("abs", tg.abs, torch.abs, nonzero),
    ("nop", tg.nop, lambda t: t.clone(), real),
    ("mul_float", lambda v: v * 2.5, lambda t: t * 2.5, real),
    ("rsub_float", lambda v: 0.5 - v, lambda t: 0.5 - t, real),
    ("rdiv_float", lambda v: 3.0 / v, lambda t: 3.0 / t, nonzero),
    ("pow_int", lambda v: v ** 3, lambda t: t ** 3, real),
    ("pow_float", lambda v: v ** 2.5, lambda t: t ** 2.5, positive),
    ("rpow_float", lambda v: 2.0 ** v, lambda t: 2.0 ** t, real),
    ("scale", lambda v: tg.scale(2.5, v), lambda t: 2.5 * t, real),
    ("increment", lambda v: tg.increment(v, 0.5, 2.0), lambda t: 2.0 * t + 0.5, real),
    ("clip_by_value", lambda v: tg.clip_by_value(v, -0.5, 0.8), lambda t: torch.clamp(t, -0.5, 0.8), real),
    ("maximum_float", lambda v: tg.maximum(v, 0.25), lambda t: torch.clamp(t, min=0.25), real),
]
for _name, _fn, _tfn, _s in UNARY:
    for _shape in SHAPES:
        add_case(f"{_name}-{sid(_shape)}", _fn, _tfn, one(_s, _shape))

BINARY = [
    ("add", tg.add, torch.add, (real, real)),
    ("sub", tg.sub, torch.sub, (real, real)),
    ("mul", tg.mul, torch.mul, (real, real)),
    ("div", tg.div, torch.div, (real, nonzero)),
    ("pow", tg.pow, torch.pow, (positive, _uniform(-1.5, 1.5))),
    ("pow_operator", operator.pow, operator.pow, (positive, _uniform(-1.5, 1.5))),
    ("maximum", tg.maximum, torch.maximum, None),
    ("minimum", tg.minimum, torch.minimum, None),
]
for _name, _fn, _tfn, _ss in BINARY:
    for _pair in PAIRS:
        _make = (lambda rng, p=_pair: distinct(rng, *p)) if _ss is None else each(_ss, _pair)
        add_case(f"{_name}-{sid(*_pair)}", _fn, _tfn, _make)

for _shapes in [((2, 3), (3,), ()), ((2, 1, 4), (3, 1), (4,))]:
    add_case(f"increment_xba-{sid(*_shapes)}", tg.increment, lambda x, b, a: a * x + b,
             each((real, real, real), _shapes))

for _c, _x, _y in [((2, 3), (2, 3), (2, 3)), ((2, 3), (3,), (2, 1)), ((2, 1, 4), (3, 1), (4,))]:
    _cond = np.random.default_rng(len(_c)).uniform(size=_c) > 0.5
    add_case(f"where-{sid(_c, _x, _y)}", lambda x, y, c=_cond: tg.where(c, x, y),
             lambda x, y, c=_cond: torch.where(T(c), x, y), each((real, real), (_x, _y)))


def _torch_matmul(ta: bool, tb: bool) -> Callable:
    return lambda x, y: torch.matmul(x.mT if ta else x, y.mT if tb else y)


for _xs, _ys, _ta, _tb in [((2, 3), (3, 4), False, False), ((3, 2), (3, 4), True, False),
                           ((2, 3), (4, 3), False, True), ((3, 2), (4, 3), True, True),
                           ((2, 1, 2, 3), (3, 3, 2), False, False), ((2, 3, 2), (1, 4, 3), True, True),
                           ((3,), (3,), False, False), ((3,), (2, 3, 4), False, False),
                           ((2, 2, 3), (3,), False, False)]:
    add_case(f"matmul-{sid(_xs, _ys)}{'-ta' if _ta else ''}{'-tb' if _tb else ''}",
             lambda x, y, ta=_ta, tb=_tb: tg.matmul(x, y, transpose_a=ta, transpose_b=tb),
             _torch_matmul(_ta, _tb), each((real, real), (_xs, _ys)))


def _dims(axis: Any, ndim: int) -> Any:
    return tuple(range(ndim)) if axis is None else axis


REDUCTIONS = [
    ("reduce_sum", tg.reduce_sum, torch.sum, real),
    ("reduce_mean", tg.reduce_mean, torch.mean, real),
    ("reduce_max", tg.reduce_max, torch.amax, None),
    ("reduce_min", tg.reduce_min, torch.amin, None),
    ("logsumexp", tg.logsumexp, torch.logsumexp, real),
]
for _name, _fn, _tfn, _s in REDUCTIONS:
    for _shape, _axis, _keep in [((), None, False), ((2, 3), None, True), ((2, 3), -1, False), ((2, 3), 0, True),
                                 ((2, 1, 4), (0, 2), False), ((2, 1, 4), (-1, 1), True)]:
        _make = (lambda rng, s=_shape: distinct(rng, s)) if _s is None else one(_s, _shape)
        add_case(f"{_name}-{sid(_shape)}-axis{_axis}-keep{int(_keep)}".replace(" ", ""),
                 lambda x, f=_fn, a=_axis, k=_keep: f(x, axis=a, keepdims=k),
                 lambda t, f=_tfn, a=_axis, k=_keep: f(t, dim=_dims(a, t.ndim), keepdim=k), _make)

for _shape, _axis in [((3,), -1), ((2, 3), 0), ((2, 3), -1), ((2, 1, 4), 1), ((2, 1, 4), -1)]:
    add_case(f"softmax-{sid(_shape)}-axis{_axis}", lambda x, a=_axis: tg.softmax(x, a),
             lambda t, a=_axis: torch.softmax(t, a), one(real, _shape))
    add_case(f"log_softmax-{sid(_shape)}-axis{_axis}", lambda x, a=_axis: tg.log_softmax(x, a),
             lambda t, a=_axis: torch.log_softmax(t, a), one(real, _shape))

# Shape ops.
for _shape, _new in [((2, 3), (3, 2)), ((2, 1, 4), (4, -1)), ((), (1, 1))]:
    add_case(f"reshape-{sid(_shape)}-to{sid(_new)}", lambda x, s=_new: tg.reshape(x, s),
             lambda t, s=_new: torch.reshape(t, s), one(real, _shape))
for _shape, _perm in [((2, 3), None), ((2, 1, 4), (1, 2, 0))]:
    add_case(f"transpose-{sid(_shape)}-{_perm}".replace(" ", ""), lambda x, p=_perm: tg.transpose(x, p),
             lambda t, p=_perm: t.permute(p if p is not None else tuple(reversed(range(t.ndim)))),
             one(real, _shape))
for _shape, _r, _axis in [((2, 3), 2, None), ((2, 3), 3, 0), ((2, 3), [1, 0, 3], 1),
                          ((2, 3), [2, 1, 0, 1, 1, 3], None)]:
    add_case(f"repeat-{sid(_shape)}-{_r}-axis{_axis}".replace(" ", ""), lambda x, r=_r, a=_axis: tg.repeat(x, r, a),
             lambda t, r=_r, a=_axis: torch.repeat_interleave(t, r if isinstance(r, int) else T(r), dim=a),
             one(real, _shape))
for _shape, _sizes, _axis in [((4, 3), [1, 3], 0), ((2, 3), [1, 0, 2], -1)]:
    add_case(f"split-{sid(_shape)}-{_sizes}-axis{_axis}".replace(" ", ""),
             lambda x, s=_sizes, a=_axis: tg.concat([p * float(i + 1) for i, p in enumerate(tg.split(x, s, a))], a),
             lambda t, s=_sizes, a=_axis: torch.cat([p * float(i + 1) for i, p in enumerate(torch.split(t, s, a))], a),
             one(real, _shape))
add_case("concat-(2,3)x(2,1)-axis-1", lambda x, y: tg.concat([x, y], -1), lambda x, y: torch.cat([x, y], -1),
         each((real, real), ((2, 3), (2, 1))))
add_case("concat-(2,1,4)x(2,2,4)-axis1", lambda x, y: tg.concat([x, y], 1), lambda x, y: torch.cat([x, y], 1),
         each((real, real), ((2, 1, 4), (2, 2, 4))))
add_case("stack-(2,3)x2-axis1", lambda x, y: tg.stack([x, y], 1), lambda x, y: torch.stack([x, y], 1),
         each((real, real), ((2, 3), (2, 3))))
add_case("stack-()x3-axis0", lambda x, y, z: tg.stack([x, y, z]), lambda x, y, z: torch.stack([x, y, z]),
         each((real,) * 3, ((),) * 3))
add_case("expand_dims-(2,3)-axis1", lambda x: tg.expand_dims(x, 1), lambda t: t.unsqueeze(1), one(real, (2, 3)))
add_case("expand_dims-()-axis0", lambda x: tg.expand_dims(x, 0), lambda t: t.unsqueeze(0), one(real, ()))
add_case("squeeze-(2,1,4)-axis1", lambda x: tg.squeeze(x, 1), lambda t: t.squeeze(1), one(real, (2, 1, 4)))
add_case("squeeze-(1,3,1)-all", tg.squeeze, torch.squeeze, one(real, (1, 3, 1)))
add_case("broadcast_to-(3,1)-to(2,3,4)", lambda x: tg.broadcast_to(x, (2, 3, 4)),
         lambda t: torch.broadcast_to(t, (2, 3, 4)), one(real, (3, 1)))
add_case("broadcast_to-()-to(2,3)", lambda x: tg.broadcast_to(x, (2, 3)), lambda t: torch.broadcast_to(t, (2, 3)),
         one(real, ()))
for _shape, _idx, _axis in [((4, 3), [0, 2, 2, -1], 0), ((2, 3), [[0, 2], [2, 2]], 1), ((2, 1, 4), [3, 0, 3], -1)]:
    add_case(f"gather-{sid(_shape)}-{_idx}-axis{_axis}".replace(" ", ""),
             lambda x, i=_idx, a=_axis: tg.gather(x, np.asarray(i), a),
             lambda t, i=_idx, a=_axis: t[(slice(None),) * (a % t.ndim) + (T(i),)], one(real, _shape))

_MASK = np.array([[True, False, True], [False, True, True]])
for _shape, _index in [((3, 4), 1), ((3, 4), (slice(None), slice(1, 3))), ((3, 4), (slice(None, None, 2), -1)),
                       ((2, 3, 4), (None, Ellipsis, slice(1, None), -1)), ((3, 4), np.array([0, 0, 2])),
                       ((3, 4), (np.array([0, 1, 1]), np.array([2, 2, 0]))), ((2, 3), _MASK),
                       ((2, 3, 4), (Ellipsis, np.array([1, 0, 0, 1], bool)))]:
    _tindex = tuple(T(i) if isinstance(i, np.ndarray) else i for i in _index) if isinstance(_index, tuple) else (
        T(_index) if isinstance(_index, np.ndarray) else _index)
    add_case(f"getitem-{sid(_shape)}-{_index!r}".replace(" ", "").replace("array", ""),
             lambda x, i=_index: x[i], lambda t, i=_tindex: t[i], one(real, _shape))

add_case("chain_mlp-(2,3)x(3,4)x(4,)", lambda x, w, b: tg.reduce_mean(tg.log_softmax(tg.tanh(x @ w + b)), axis=0),
         lambda x, w, b: torch.mean(torch.log_softmax(torch.tanh(x @ w + b), -1), 0),
         each((real, real, real), ((2, 3), (3, 4), (4,))))

CASE_PARAMS = [pytest.param(c, id=c.id) for c in CASES]


# -- helpers --------------------------------------------------------------------------------
def _weights(case: Case, out_shape: tuple, xs: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(zlib.crc32(case.id.encode()) + 1)
    return rng.uniform(0.5, 1.5, out_shape), [rng.uniform(-1.0, 1.0, x.shape) for x in xs]


def _torch_grads(case: Case, xs: list[np.ndarray], w: np.ndarray, vs: list[np.ndarray]) -> tuple[list, list]:
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    y = (case.torch_fn(*ts) * T(w)).sum()
    gs = torch.autograd.grad(y, ts, create_graph=True, allow_unused=True, materialize_grads=True)
    s = sum((g * T(v)).sum() for g, v in zip(gs, vs))
    if s.requires_grad:
        hv = torch.autograd.grad(s, ts, allow_unused=True, materialize_grads=True)
    else:  # the gradient does not depend on the inputs (a linear op)
        hv = [torch.zeros_like(t) for t in ts]
    return [g.detach().numpy(force=True) for g in gs], [h.detach().numpy(force=True) for h in hv]


def _torch_value(case: Case, xs: list[np.ndarray]) -> np.ndarray:
    return case.torch_fn(*[torch.tensor(x, dtype=torch.float64) for x in xs]).numpy()


# -- the tests --------------------------------------------------------------------------------
def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_values(case: Case) -> None:
    xs = case.inputs()
    out = case.fn(*[Variable(x) for x in xs])
    expected = _torch_value(case, xs)
    assert out.dtype == np.float64 and out.shape == expected.shape
    np.testing.assert_allclose(out.value(), expected, **TOL)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_gradients(case: Case) -> None:
    xs = case.inputs()
    w, vs = _weights(case, _torch_value(case, xs).shape, xs)
    variables = [Variable(x) for x in xs]
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(case.fn(*variables) * w)
    grads = tape.gradient(y, variables)
    expected, _ = _torch_grads(case, xs, w, vs)
    for g, e, x in zip(grads, expected, xs):
        assert g.shape == x.shape and g.dtype == np.float64
        np.testing.assert_allclose(g.value(), e, **TOL)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_hessian_vector_products(case: Case) -> None:
    xs = case.inputs()
    w, vs = _weights(case, _torch_value(case, xs).shape, xs)
    variables = [Variable(x) for x in xs]
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            y = tg.reduce_sum(case.fn(*variables) * w)
        grads = inner.gradient(y, variables, unconnected_gradients="zero")
        s = tg.reduce_sum(grads[0] * vs[0])
        for g, v in zip(grads[1:], vs[1:]):
            s = s + tg.reduce_sum(g * v)
    hvps = outer.gradient(s, variables, unconnected_gradients="zero")
    expected_grads, expected = _torch_grads(case, xs, w, vs)
    for g, e in zip(grads, expected_grads):
        np.testing.assert_allclose(g.value(), e, **TOL)
    for h, e, x in zip(hvps, expected, xs):
        assert h.shape == x.shape and h.dtype == np.float64
        np.testing.assert_allclose(h.value(), e, **TOL)


# -- conventions at kinks and special points, where torch agrees ------------------------------
def _grad_and_hvp(fn: Callable, x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xv = Variable(x)
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            y = tg.reduce_sum(fn(xv))
        g = inner.gradient(y, xv)
        s = tg.reduce_sum(g * v)
    h = outer.gradient(s, xv, unconnected_gradients="zero")
    return g.value(), h.value()


def _torch_grad_and_hvp(fn: Callable, x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(fn(t).sum(), t, create_graph=True)
    s = (g * T(v)).sum()
    h = torch.autograd.grad(s, t, materialize_grads=True)[0] if s.requires_grad else torch.zeros_like(t)
    return g.detach().numpy(force=True), h.detach().numpy(force=True)


SPECIAL_POINTS = [
    # (name, f, torch f, x, compare second derivatives too)
    ("abs_at_0", tg.abs, torch.abs, [0.0, -0.0, 1.5, -2.0], True),
    ("relu_at_0", tg.relu, torch.relu, [0.0, -0.0, 1.5, -2.0], True),
    ("maximum_ties", lambda v: tg.maximum(v, np.array([1.0, 0.0, 3.0, 5.0])),
     lambda t: torch.maximum(t, T([1.0, 0.0, 3.0, 5.0])), [1.0, 2.0, 3.0, 4.0], True),
    ("minimum_ties", lambda v: tg.minimum(v, np.array([1.0, 0.0, 3.0, 5.0])),
     lambda t: torch.minimum(t, T([1.0, 0.0, 3.0, 5.0])), [1.0, 2.0, 3.0, 4.0], True),
    ("reduce_max_ties", lambda v: tg.reduce_max(v), lambda t: torch.amax(t), [1.0, 3.0, 3.0, -1.0], True),
    ("reduce_min_ties", lambda v: tg.reduce_min(v), lambda t: torch.amin(t), [1.0, -3.0, 2.0, -3.0], True),
    ("clip_at_bounds", lambda v: tg.clip_by_value(v, -1.0, 1.0), lambda t: torch.clamp(t, -1.0, 1.0),
     [-1.0, 1.0, 0.0, 2.0], True),
    ("pow_at_0", lambda v: v ** np.array([1.0, 2.0, 3.0, 0.5]), lambda t: t ** T([1.0, 2.0, 3.0, 0.5]),
     [0.0, 0.0, 0.0, 1.0], True),
    # torch's second derivative of t ** tensor(0.) at 0 is NaN (its masked_fill is a naive where);
    # tapegrad's is 0, see test_numerics.py.
    ("pow_0_at_0", lambda v: v ** np.array([0.0, 0.0]) + v * v, lambda t: t ** T([0.0, 0.0]) + t * t,
     [0.0, 2.0], False),
    ("pow_scalar_1_at_0", lambda v: v ** 1, lambda t: t ** 1, [0.0, 2.0], True),
]


@pytest.mark.parametrize("name,fn,torch_fn,x,second", SPECIAL_POINTS, ids=[p[0] for p in SPECIAL_POINTS])
def test_special_points_match_torch(name: str, fn: Callable, torch_fn: Callable, x: list, second: bool) -> None:
    x = np.array(x)
    v = np.linspace(0.5, 1.5, x.size)
    g, h = _grad_and_hvp(fn, x, v)
    tg_, th = _torch_grad_and_hvp(torch_fn, x, v)
    np.testing.assert_allclose(g, tg_, **TOL)
    if second:
        np.testing.assert_allclose(h, th, **TOL)
