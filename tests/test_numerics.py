"""Numerics policies of API §4: stable softmax family and sigmoid/softplus for huge inputs,
the double-where pattern, even splitting of ties, abs'(0) = relu'(0) = 0, and IEEE
NaN/inf propagation through forward and backward."""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import Variable

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]


def grad_and_hessian_diag(fn: Callable, x: Any, dtype: Any = np.float64) -> tuple[Variable, np.ndarray, np.ndarray]:
    """fn(x), d sum(fn(x)) / dx and the derivative of that gradient's sum (nested tapes)."""
    xv = Variable(np.asarray(x, dtype=dtype))
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            y = fn(xv)
        g = inner.gradient(y, xv)
    h = outer.gradient(g, xv, unconnected_gradients="zero")
    return y, g.value(), h.value()


# -- huge logits -----------------------------------------------------------------------------
LOGITS = [
    [1e4, 0.0, -1e4],
    [1e4, 1e4, -3e4],
    [-1e4, -1e4 + 1.0, -1e4 + 2.0],
    [1e6, 1e6 - 1.0, -1e6],
    [1e30, -1e30, 0.0],
    [3e4, 3e4, 3e4],
]


def _reference_log_softmax(x: np.ndarray) -> np.ndarray:
    # In float64 with the maximum subtracted: exact enough for these logits.
    s = x - x.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_log_softmax_softmax_logsumexp_are_stable_for_huge_logits(dtype: Any) -> None:
    x = np.array(LOGITS, dtype=dtype)
    x64 = x.astype(np.float64)
    expected_lsm = _reference_log_softmax(x64)
    expected_lse = x64.max(axis=-1) + np.log(np.exp(x64 - x64.max(axis=-1, keepdims=True)).sum(axis=-1))
    sm = np.exp(expected_lsm)
    v = np.linspace(0.5, 1.5, x.size).reshape(x.shape).astype(dtype)
    # (op, value, gradient of sum(w * op(x)) for a cotangent w of the output's shape)
    for fn, expected, expected_grad in [
        (tg.log_softmax, expected_lsm, lambda w: w - sm * w.sum(-1, keepdims=True)),
        (tg.softmax, sm, lambda w: sm * (w - (w * sm).sum(-1, keepdims=True))),
        (lambda t: tg.logsumexp(t, axis=-1), expected_lse, lambda w: w[:, None] * sm),
    ]:
        xv = Variable(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow or invalid-value warning either
            with tg.GradientTape() as outer:
                with tg.GradientTape() as inner:
                    out = fn(xv)
                    w = np.linspace(1.0, 2.0, out.size).reshape(out.shape).astype(dtype)
                    y = tg.reduce_sum(out * w)
                g = inner.gradient(y, xv)
                s = tg.reduce_sum(g * v)
            h = outer.gradient(s, xv, unconnected_gradients="zero")
        assert out.dtype == dtype and g.dtype == dtype and h.dtype == dtype
        np.testing.assert_allclose(out.value(), expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(g.value(), expected_grad(w.astype(np.float64)), rtol=1e-5, atol=1e-6)
        assert np.all(np.isfinite(g.value())) and np.all(np.isfinite(h.value()))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_log_softmax_gradient_at_huge_logits(dtype: Any) -> None:
    # d/dx sum(w * log_softmax(x)) = w - softmax(x) * sum(w): here softmax is one-hot.
    x = np.array([1e4, 0.0, -1e4], dtype=dtype)
    w = np.array([1.0, 2.0, 3.0], dtype=dtype)
    xv = Variable(x)
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(tg.log_softmax(xv) * w)
    np.testing.assert_allclose(tape.gradient(y, xv).value(), [1.0 - 6.0, 2.0, 3.0], atol=1e-6)
    np.testing.assert_array_equal(tg.log_softmax(xv).value(), np.array([0.0, -1e4, -2e4], dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_logsumexp_of_huge_equal_logits(dtype: Any) -> None:
    x = Variable(np.array([1e4, 1e4], dtype=dtype))
    with tg.GradientTape() as tape:
        y = tg.logsumexp(x)
    np.testing.assert_allclose(float(y), 1e4 + np.log(2.0), rtol=1e-7)
    np.testing.assert_allclose(tape.gradient(y, x).value(), [0.5, 0.5], rtol=1e-6)


def test_softmax_with_minus_inf_mask_has_finite_gradients():
    # -inf logits are the usual attention mask: probability 0, finite gradient.
    x = Variable(np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]]))
    w = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    for fn in (tg.softmax, tg.log_softmax):
        with tg.GradientTape() as tape:
            out = fn(x)
            finite = tg.where(tg.isfinite(out), out, 0.0)
            y = tg.reduce_sum(finite * w)
        g = tape.gradient(y, x).value()
        assert np.all(np.isfinite(g)), (fn.__name__, g)
    np.testing.assert_allclose(tg.softmax(x).value(), [[1 / (1 + np.e), 0, np.e / (1 + np.e)], [0, 1, 0]])
    np.testing.assert_array_equal(tg.logsumexp(x, axis=1).value()[1], 2.0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log(0), as in NumPy
def test_logsumexp_all_minus_inf_is_minus_inf():
    x = np.array([[-np.inf, -np.inf], [0.0, -np.inf]])
    np.testing.assert_array_equal(tg.logsumexp(x, axis=1).value(), [-np.inf, 0.0])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_sigmoid_and_softplus_at_huge_inputs(dtype: Any) -> None:
    x = np.array([1e4, -1e4, 1e30, -1e30, 0.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning: exp is never taken of a huge value
        s, ds, d2s = grad_and_hessian_diag(tg.sigmoid, x, dtype)
        p, dp, d2p = grad_and_hessian_diag(tg.softplus, x, dtype)
    assert s.dtype == dtype and p.dtype == dtype
    np.testing.assert_array_equal(s.value(), np.array([1, 0, 1, 0, 0.5], dtype=dtype))
    np.testing.assert_array_equal(ds, np.array([0, 0, 0, 0, 0.25], dtype=dtype))
    np.testing.assert_array_equal(d2s, np.zeros(5, dtype=dtype))
    np.testing.assert_allclose(p.value(), np.array([1e4, 0, 1e30, 0, np.log(2)], dtype=dtype), rtol=1e-7)
    np.testing.assert_array_equal(dp, np.array([1, 0, 1, 0, 0.5], dtype=dtype))
    np.testing.assert_array_equal(d2p, np.array([0, 0, 0, 0, 0.25], dtype=dtype))


# -- where and the double-where pattern ---------------------------------------------------------
BRANCHES = [
    # (name, x, branch f that is NaN/inf where not selected, NumPy f, condition, safe filler, f')
    ("sqrt", [-1.0, 0.0, 4.0], tg.sqrt, np.sqrt, lambda v: v > 0, 1.0, lambda x: 0.5 / np.sqrt(x)),
    ("log", [0.0, -2.0, 2.0], tg.log, np.log, lambda v: v > 0, 1.0, lambda x: 1.0 / x),
    ("reciprocal", [0.0, 0.5, -2.0], tg.reciprocal, np.reciprocal, lambda v: tg.not_equal(v, 0.0), 1.0,
     lambda x: -1.0 / x ** 2),
    ("exp_overflow", [800.0, 1.0, -3.0], tg.exp, np.exp, lambda v: v < 50.0, 0.0, np.exp),
]
BRANCH_IDS = [b[0] for b in BRANCHES]


@pytest.mark.parametrize("name,x,f,np_f,cond,filler,df", BRANCHES, ids=BRANCH_IDS)
def test_where_naive_version_gives_nan_gradient(name: str, x: list, f: Callable, np_f: Callable, cond: Callable,
                                                filler: float, df: Callable) -> None:
    xv = Variable(np.array(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy warns about the unselected branch
        with tg.GradientTape() as tape:
            y = tg.where(cond(xv), f(xv), 0.0)
        g = tape.gradient(y, xv).value()
    c = np.asarray(cond(xv).value())
    assert np.all(np.isfinite(y.value()))  # the forward value is fine...
    assert np.any(np.isnan(g[~c]))  # ...but the unselected branch's 0 * inf poisons the gradient


@pytest.mark.parametrize("name,x,f,np_f,cond,filler,df", BRANCHES, ids=BRANCH_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_where_double_where_pattern_gives_finite_gradients(name: str, x: list, f: Callable, np_f: Callable,
                                                           cond: Callable, filler: float, df: Callable,
                                                           dtype: Any) -> None:
    # The pattern documented in tapegrad.where: make the input safe, then select.
    def safe(v: Variable) -> Variable:
        c = cond(v)
        return tg.where(c, f(tg.where(c, v, filler)), 0.0)

    x = np.array(x, dtype=dtype)
    c = np.asarray(cond(Variable(x)).value())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a warning: the bad values are never computed
        y, g, h = grad_and_hessian_diag(safe, x, dtype)
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        expected_y = np.where(c, np_f(x64), 0.0)
        expected_g = np.where(c, df(x64), 0.0)
    assert y.dtype == dtype and g.dtype == dtype and h.dtype == dtype
    np.testing.assert_allclose(y.value(), expected_y, rtol=1e-6)
    np.testing.assert_allclose(g, expected_g, rtol=1e-6)
    assert np.all(np.isfinite(h))


def test_where_gradient_goes_to_the_selected_branch_only():
    a = Variable(np.array([1.0, 2.0, 3.0]))
    b = Variable(np.array([10.0, 20.0, 30.0]))
    cond = np.array([True, False, True])
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(tg.where(cond, a * a, b * 3.0))
    ga, gb = tape.gradient(y, [a, b])
    np.testing.assert_array_equal(ga.value(), [2, 0, 6])
    np.testing.assert_array_equal(gb.value(), [0, 3, 0])


# -- ties ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("op,x,kwargs,expected", [
    (tg.reduce_max, [1.0, 3.0, 3.0], {}, [0.0, 0.5, 0.5]),
    (tg.reduce_min, [2.0, 1.0, 1.0, 5.0], {}, [0.0, 0.5, 0.5, 0.0]),
    (tg.reduce_max, [4.0, 4.0, 4.0, 4.0], {}, [0.25] * 4),
    (tg.reduce_max, [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], {"axis": 1}, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]]),
    (tg.reduce_max, [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], {"axis": -1, "keepdims": True},
     [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]]),
    (tg.reduce_min, [[1.0, 3.0], [1.0, 2.0], [5.0, 2.0]], {"axis": 0}, [[0.5, 0], [0.5, 0.5], [0, 0.5]]),
    (tg.reduce_max, [[1.0, 3.0], [3.0, 2.0]], {}, [[0, 0.5], [0.5, 0]]),
    (tg.reduce_max, [[1.0, 3.0], [3.0, 2.0]], {"axis": (0, 1), "keepdims": True}, [[0, 0.5], [0.5, 0]]),
])
def test_reduce_max_min_split_ties_evenly(op: Callable, x: list, kwargs: dict, expected: list, dtype: Any) -> None:
    y, g, h = grad_and_hessian_diag(lambda v: op(v, **kwargs), x, dtype)
    assert g.dtype == dtype
    np.testing.assert_allclose(g, expected, rtol=1e-6)
    np.testing.assert_array_equal(h, np.zeros_like(h))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_maximum_minimum_split_ties_evenly(dtype: Any) -> None:
    x = Variable(np.array([1.0, 2.0, 3.0, 0.0], dtype=dtype))
    y = Variable(np.array([1.0, 0.0, 3.0, 5.0], dtype=dtype))
    for op, gx, gy in [(tg.maximum, [0.5, 1, 0.5, 0], [0.5, 0, 0.5, 1]),
                       (tg.minimum, [0.5, 0, 0.5, 1], [0.5, 1, 0.5, 0])]:
        with tg.GradientTape() as tape:
            out = tg.reduce_sum(op(x, y))
        dx, dy = tape.gradient(out, [x, y])
        assert dx.dtype == dtype
        np.testing.assert_array_equal(dx.value(), gx)
        np.testing.assert_array_equal(dy.value(), gy)


def test_maximum_tie_with_broadcast_constant_and_with_itself():
    x = Variable(np.array([2.0, 1.0, 3.0]))
    with tg.GradientTape(persistent=True) as tape:
        a = tg.reduce_sum(tg.maximum(x, 2.0))
        b = tg.reduce_sum(tg.maximum(x, x))  # max(x, x) = x: the two halves add up to 1
        c = tg.reduce_sum(tg.minimum(x, x))
    np.testing.assert_array_equal(tape.gradient(a, x).value(), [0.5, 0, 1])
    np.testing.assert_array_equal(tape.gradient(b, x).value(), [1, 1, 1])
    np.testing.assert_array_equal(tape.gradient(c, x).value(), [1, 1, 1])


def test_maximum_tie_with_broadcast_variable_sums_halves():
    x = Variable(np.array([[1.0, 2.0], [1.0, 0.0]]))
    y = Variable(np.array([1.0, 1.0]))
    with tg.GradientTape() as tape:
        out = tg.reduce_sum(tg.maximum(x, y))
    dx, dy = tape.gradient(out, [x, y])
    np.testing.assert_array_equal(dx.value(), [[0.5, 1], [0.5, 0]])
    np.testing.assert_array_equal(dy.value(), [1.0, 1.0])


def test_clip_by_value_passes_gradient_at_the_bounds():
    _, g, _ = grad_and_hessian_diag(lambda v: tg.clip_by_value(v, -1.0, 1.0), [-1.0, 1.0, -1.5, 1.5, 0.0])
    np.testing.assert_array_equal(g, [1, 1, 0, 0, 1])


# -- kinks at zero ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("op,expected", [
    (tg.abs, [0, 0, 1, -1]),
    (abs, [0, 0, 1, -1]),
    (tg.relu, [0, 0, 1, 0]),
])
def test_abs_and_relu_have_zero_derivative_at_zero(op: Callable, expected: list, dtype: Any) -> None:
    y, g, h = grad_and_hessian_diag(op, [0.0, -0.0, 2.0, -3.0], dtype)
    assert g.dtype == dtype
    np.testing.assert_array_equal(g, expected)
    np.testing.assert_array_equal(h, [0, 0, 0, 0])


def test_abs_and_relu_at_zero_0d():
    for op in (tg.abs, tg.relu):
        _, g, _ = grad_and_hessian_diag(op, 0.0)
        assert float(g) == 0.0


# -- pow at x = 0 -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("exponent", [np.array([0.0, 1.0, 2.0, 3.0]), np.array([0, 1, 2, 3])], ids=["float", "int"])
def test_pow_polynomial_features_at_zero(exponent: Any, dtype: Any) -> None:
    # x ** [0, 1, 2, 3] at 0: derivatives [0, 1, 0, 0], second derivatives [0, 0, 2, 0].
    # (y * x ** (y - 1) would be 0 * inf = NaN for y = 0, and its derivative for y = 1.)
    def features(v: Variable) -> Variable:
        return tg.reshape(v, (1,)) ** exponent

    for k, (d1, d2) in enumerate([(0, 0), (1, 0), (0, 2), (0, 0)]):
        seed = np.eye(4)[k]
        xv = Variable(np.array(0.0, dtype=dtype))
        with tg.GradientTape() as outer:
            with tg.GradientTape() as inner:
                y = features(xv)
            g = inner.gradient(y, xv, output_gradients=seed.astype(y.dtype))
        h = outer.gradient(g, xv, unconnected_gradients="zero")
        assert float(g) == d1 and float(h) == d2, (k, float(g), float(h))
        assert g.dtype == dtype


@pytest.mark.parametrize("exponent", [0, 0.0, 1, 1.0])
def test_pow_python_exponent_0_and_1_at_zero(exponent: float) -> None:
    _, g, h = grad_and_hessian_diag(lambda v: v ** exponent, [0.0, 2.0])
    np.testing.assert_array_equal(g, [float(exponent), float(exponent)])
    np.testing.assert_array_equal(h, [0.0, 0.0])


def test_pow_exponent_gradient_at_zero_base_is_zero():
    # d/dy 0 ** y = 0 ** y * log(0) -> 0 for y > 0 (the existing double-where in the rule).
    x = np.array([0.0, 2.0])
    y = Variable(np.array([1.5, 1.5]))
    with tg.GradientTape() as tape:
        out = tg.reduce_sum(tg.pow(x, y))
    np.testing.assert_allclose(tape.gradient(out, y).value(), [0.0, 2.0 ** 1.5 * np.log(2.0)])


# -- NaN and inf propagate like NumPy -------------------------------------------------------------
SPECIAL = np.array([np.nan, np.inf, -np.inf, 1.5, 0.0, -2.0])

# (op, NumPy forward, NumPy derivative): the derivative formula evaluated with IEEE rules.
UNARY_SPECIAL = [
    (tg.neg, np.negative, lambda x: -np.ones_like(x)),
    (tg.square, np.square, lambda x: 2 * x),
    (tg.sqrt, np.sqrt, lambda x: 0.5 / np.sqrt(x)),
    (tg.exp, np.exp, np.exp),
    (tg.log, np.log, lambda x: 1 / x),
    (tg.log1p, np.log1p, lambda x: 1 / (1 + x)),
    (tg.expm1, np.expm1, np.exp),
    (tg.reciprocal, np.reciprocal, lambda x: -np.reciprocal(x) ** 2),
    (tg.sin, np.sin, np.cos),
    (tg.cos, np.cos, lambda x: -np.sin(x)),
    (tg.tan, np.tan, lambda x: 1 + np.tan(x) ** 2),
    (tg.tanh, np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    (tg.sigmoid, lambda x: 1 / (1 + np.exp(-x)), lambda x: 1 / (1 + np.exp(-x)) * (1 - 1 / (1 + np.exp(-x)))),
    (tg.softplus, lambda x: np.logaddexp(0, x), lambda x: 1 / (1 + np.exp(-x))),
    (tg.relu, lambda x: np.maximum(x, 0), lambda x: np.where(x > 0, 1.0, 0.0)),
    (tg.abs, np.abs, np.sign),
    (tg.nop, lambda x: x, np.ones_like),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("op,forward,derivative", UNARY_SPECIAL, ids=[u[0].__name__ for u in UNARY_SPECIAL])
def test_unary_ops_propagate_nan_and_inf(op: Callable, forward: Callable, derivative: Callable, dtype: Any) -> None:
    x = SPECIAL.astype(dtype)
    xv = Variable(x)
    with tg.GradientTape() as tape:
        y = op(xv)
    g = tape.gradient(y, xv)
    with np.errstate(all="ignore"):
        expected_y = forward(x)
        expected_g = derivative(x)
    assert y.dtype == dtype and g.dtype == dtype
    np.testing.assert_allclose(y.value(), expected_y, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(g.value(), expected_g, rtol=1e-6, equal_nan=True)


BINARY_SPECIAL = [
    (tg.add, np.add, lambda x, y: (np.ones_like(x), np.ones_like(y))),
    (tg.sub, np.subtract, lambda x, y: (np.ones_like(x), -np.ones_like(y))),
    (tg.mul, np.multiply, lambda x, y: (y, x)),
    (tg.div, np.divide, lambda x, y: (1 / y, -x / y ** 2)),
    (tg.maximum, np.maximum, None),
    (tg.minimum, np.minimum, None),
    (tg.pow, np.power, None),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("op,forward,derivative", BINARY_SPECIAL, ids=[b[0].__name__ for b in BINARY_SPECIAL])
def test_binary_ops_propagate_nan_and_inf(op: Callable, forward: Callable, derivative: Any) -> None:
    # Every pair of special and ordinary values, by broadcasting a column against a row.
    x = SPECIAL[:, None]
    y = SPECIAL[None, :]
    xv, yv = Variable(x), Variable(y)
    with tg.GradientTape() as tape:
        out = op(xv, yv)
    gx, gy = tape.gradient(out, [xv, yv])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(out.value(), forward(x, y))  # NaN positions included
        assert gx.shape == x.shape and gy.shape == y.shape
        if derivative is not None:
            dx, dy = derivative(x, y)
            np.testing.assert_allclose(gx.value(), np.sum(np.broadcast_to(dx, out.shape), axis=1, keepdims=True),
                                       equal_nan=True)
            np.testing.assert_allclose(gy.value(), np.sum(np.broadcast_to(dy, out.shape), axis=0, keepdims=True),
                                       equal_nan=True)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("op,forward", [
    (tg.reduce_sum, np.sum), (tg.reduce_mean, np.mean), (tg.reduce_max, np.max), (tg.reduce_min, np.min),
    (tg.logsumexp, lambda x, axis: np.logaddexp.reduce(x, axis=axis)),
    (tg.softmax, lambda x, axis: np.exp(x - np.max(x, axis, keepdims=True)) / np.sum(
        np.exp(x - np.max(x, axis, keepdims=True)), axis, keepdims=True)),
], ids=["reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "logsumexp", "softmax"])
def test_reductions_propagate_nan_and_inf(op: Callable, forward: Callable) -> None:
    x = np.array([[np.nan, 1.0, 2.0], [np.inf, 1.0, 2.0], [-np.inf, 1.0, 2.0], [0.5, 1.0, 2.0],
                  [-np.inf, -np.inf, -np.inf]])
    xv = Variable(x)
    with tg.GradientTape() as tape:
        y = op(xv, axis=1)
    g = tape.gradient(y, xv)
    with np.errstate(all="ignore"):
        expected = forward(x, axis=1)
    np.testing.assert_allclose(y.value(), expected, rtol=1e-15, equal_nan=True)
    assert g.shape == x.shape
    # The rows without special values are unaffected by the others.
    assert np.all(np.isfinite(g.value()[3]))
    if op in (tg.reduce_sum, tg.reduce_mean):
        assert np.all(np.isfinite(g.value()))  # d sum / dx = 1 whatever x is


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_and_inf_flow_through_matmul_and_shape_ops():
    x = Variable(np.array([[np.nan, 1.0], [np.inf, 2.0]]))
    w = Variable(np.array([[1.0, 0.0], [0.0, 1.0]]))
    with tg.GradientTape() as tape:
        y = tg.matmul(x, w)
        z = tg.reduce_sum(tg.concat([tg.reshape(y, (4,)), x[:, 1], tg.transpose(x)[0]], axis=0))
    gx, gw = tape.gradient(z, [x, w])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(y.value(), x.value() @ w.value())
    assert np.isnan(float(z))
    np.testing.assert_array_equal(gx.value(), [[2, 2], [2, 2]])  # dz/dx does not depend on x
    assert np.isnan(gw.value()[0]).all() and np.all(np.isfinite(gw.value()[1]))
