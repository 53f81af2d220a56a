"""Variable's ndarray-like methods and NumPy interop (issue 8): any/all, ravel, flatten,
squeeze, astype, clip, prod (and tapegrad.prod), NumPy's reduction signatures, bool() of a
non-scalar, and item assignment."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(8)


def f64(value) -> tg.Variable:
    return tg.Variable(np.asarray(value, dtype=np.float64))


# -- any / all ----------------------------------------------------------------------------
ANY_ALL_INPUTS = [
    np.array([[0.0, 1.5, 0.0], [0.0, 0.0, 0.0]]),
    np.array([[True, False], [True, True]]),
    np.array([[1, 2], [0, 3]], np.int32),
    np.zeros((2, 0)),
]


@pytest.mark.parametrize("method", ["any", "all"])
@pytest.mark.parametrize("value", ANY_ALL_INPUTS, ids=["float", "bool", "int", "empty"])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, False), (1, True), ((0, 1), False), (-1, False)])
def test_any_all_follow_numpy(method, value, axis, keepdims):
    v = tg.Variable(value)
    got = getattr(v, method)(axis=axis, keepdims=keepdims)
    expected = getattr(np, method)(value, axis=axis, keepdims=keepdims)
    assert type(got) is tg.Variable and got.dtype == np.bool_
    np.testing.assert_array_equal(got.value(), expected)
    # NumPy's function calls the method
    np.testing.assert_array_equal(getattr(np, method)(v, axis=axis, keepdims=keepdims).value(), expected)


def test_any_all_are_not_differentiable_and_traceable():
    x = f64([[0.5, -1.0], [2.0, 0.25]])
    with tg.GradientTape() as tape:
        flag = (x > 0).all(axis=1)
    assert tape.gradient(flag.astype("float64"), x) is None
    compiled = tg.Function(lambda v: tg.where((v > 0).any(axis=1, keepdims=True), v, -v))
    for value in ([[0.5, -1.0], [-2.0, -0.25]], [[-0.5, -1.0], [2.0, 0.25]]):
        np.testing.assert_array_equal(compiled(np.array(value)).value(),
                                      np.where((np.array(value) > 0).any(axis=1, keepdims=True), value,
                                               -np.array(value)))
    assert compiled.trace_count == 1


# -- the differentiable methods: values, second order, compiled -----------------------------
X = RNG.uniform(-2.0, 2.0, (2, 1, 3))

METHODS = {
    # name: (method call, NumPy equivalent, input)
    "ravel": (lambda v: v.ravel(), lambda a: a.ravel(), X),
    "flatten": (lambda v: v.flatten(), lambda a: a.flatten(), X),
    "squeeze": (lambda v: v.squeeze(), lambda a: a.squeeze(), X),
    "squeeze axis": (lambda v: v.squeeze(axis=1), lambda a: a.squeeze(axis=1), X),
    "squeeze axes": (lambda v: v.squeeze((1,)), lambda a: a.squeeze((1,)), X),
    "astype float32": (lambda v: v.astype("float32"), lambda a: a.astype(np.float32), X),
    "astype same": (lambda v: v.astype(np.float64), lambda a: a.astype(np.float64), X),
    "clip": (lambda v: v.clip(-0.5, 1.0), lambda a: a.clip(-0.5, 1.0), X),
    "clip min only": (lambda v: v.clip(-0.5), lambda a: a.clip(-0.5), X),
    "clip max only": (lambda v: v.clip(None, 0.5), lambda a: a.clip(None, 0.5), X),
    "clip max keyword": (lambda v: v.clip(max=0.5), lambda a: a.clip(max=0.5), X),
    "prod": (lambda v: v.prod(), lambda a: a.prod(), X),
    "prod axis": (lambda v: v.prod(axis=2), lambda a: a.prod(axis=2), X),
    "prod axes keepdims": (lambda v: v.prod(axis=(0, 2), keepdims=True), lambda a: a.prod(axis=(0, 2), keepdims=True),
                           X),
    "prod function": (lambda v: tg.prod(v, -1), lambda a: np.prod(a, -1), X),
    "transpose ints": (lambda v: v.transpose(2, 0, 1), lambda a: a.transpose(2, 0, 1), X),
    "transpose tuple": (lambda v: v.transpose((2, 0, 1)), lambda a: a.transpose((2, 0, 1)), X),
    "sum dtype": (lambda v: v.sum(axis=0, dtype="float32"), lambda a: a.sum(axis=0, dtype=np.float32), X),
    "mean": (lambda v: v.mean(axis=(0, 2)), lambda a: a.mean(axis=(0, 2)), X),
}


@pytest.mark.parametrize("name", list(METHODS))
def test_method_values(name):
    method, numpy_fn, value = METHODS[name]
    got = method(f64(value))
    expected = numpy_fn(value)
    assert type(got) is tg.Variable and got.dtype == expected.dtype and got.shape == expected.shape
    rtol = 1e-6 if expected.dtype == np.float32 else 1e-15
    np.testing.assert_allclose(got.value(), expected, rtol=rtol)


@pytest.mark.parametrize("name", [n for n in METHODS if "float32" not in n and "dtype" not in n])
def test_method_gradcheck_second_order(name):
    method = METHODS[name][0]
    # sin() makes the second derivative non-zero also for the linear methods
    assert tg.gradcheck(lambda v: tg.sin(method(v)), [METHODS[name][2]], order=2)


def values_and_derivatives(fn, x: np.ndarray) -> list[np.ndarray]:
    """The value, gradient and Hessian-vector product of sum(sin(fn(x)) * w)."""
    v = f64(x)
    w = np.linspace(0.5, 1.5, 16)
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            out = tg.sin(fn(v))
            y = tg.reduce_sum(out * w[: out.size].reshape(out.shape))
        g = inner.gradient(y, v)
        z = tg.reduce_sum(g * np.cos(x))
    h = outer.gradient(z, v)
    return [y.value(), g.value(), h.value()]


@pytest.mark.parametrize("name", [n for n in METHODS if "float32" not in n and "dtype" not in n])
def test_method_compiled_equals_eager(name):
    method = METHODS[name][0]
    compiled = tg.Function(method)
    for x in (X, RNG.uniform(-2.0, 2.0, X.shape)):
        got, expected = values_and_derivatives(compiled, x), values_and_derivatives(method, x)
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert compiled.trace_count == 1


# -- prod with zeros, against torch ---------------------------------------------------------
PROD_CASES = [
    (np.array([2.0, 0.0, 3.0, -1.5]), None, False),
    (np.array([[2.0, 0.0, 3.0, 0.0], [1.0, -2.0, 0.5, 4.0]]), 1, False),  # two zeros, no zero
    (np.array([[0.0, 5.0, 2.0], [0.0, 0.0, 1.5], [1.5, 0.0, -2.0]]), 0, True),  # 2, 3 and 1 zeros
    (np.array([[[1.5, 0.0], [2.0, 3.0]], [[0.0, 0.0], [1.0, -1.0]]]), (0, 2), False),
    (np.array([[0.0], [2.5]]), 1, False),  # one element per slice
    (np.array([[0.0, 0.0]]), None, True),
]


def _torch_prod(t, axis, keepdims):
    if axis is None:
        out = torch.prod(t)
        return out.reshape([1] * t.dim()) if keepdims else out
    for a in sorted((axis,) if isinstance(axis, int) else axis, reverse=True):
        t = torch.prod(t, dim=a, keepdim=keepdims)
    return t


@pytest.mark.parametrize("value, axis, keepdims", PROD_CASES)
def test_prod_gradient_with_zeros_matches_torch(value, axis, keepdims):
    x = f64(value)
    w = np.linspace(0.7, 1.9, value.size).reshape(value.shape)
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            out = tg.prod(x, axis=axis, keepdims=keepdims)
            y = tg.reduce_sum(out * out)
        g = inner.gradient(y, x)
        z = tg.reduce_sum(g * w)
    h = outer.gradient(z, x)

    t = torch.tensor(value, requires_grad=True)
    t_out = _torch_prod(t, axis, keepdims)
    (t_g,) = torch.autograd.grad((t_out * t_out).sum(), t, create_graph=True)
    (t_h,) = torch.autograd.grad((t_g * torch.tensor(w)).sum(), t)
    np.testing.assert_allclose(out.value(), t_out.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(g.value(), t_g.detach().numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(h.value(), t_h.numpy(), rtol=1e-13, atol=1e-14)
    assert np.all(np.isfinite(g.value()))


def test_prod_of_a_zero_size_axis_is_one_with_an_empty_gradient():
    x = f64(np.zeros((2, 0)))
    with tg.GradientTape() as tape:
        out = tg.prod(x, axis=1)
    np.testing.assert_array_equal(out.value(), [1.0, 1.0])
    assert tape.gradient(out, x).shape == (2, 0)


def test_prod_of_integers_is_a_constant():
    i = tg.Variable(np.array([[1, 2], [3, 4]], np.int32))
    assert int(tg.prod(i)) == 24 and tg.prod(i, axis=0).dtype == np.prod(i.value(), axis=0).dtype
    assert tg.NeuralNetworks().gradient().prod is tg.prod


def test_prod_float32_gradient_keeps_the_dtype():
    x = tg.Variable(np.array([1.5, 0.0, 2.0], np.float32))
    with tg.GradientTape() as tape:
        y = x.prod()
    g = tape.gradient(y, x)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g.value(), [0.0, 3.0, 0.0])


# -- NumPy's functions on Variables -----------------------------------------------------------
V = np.array([[1.5, -2.0, 0.5], [0.25, 3.0, -1.0]])

NUMPY_CALLS = {
    # name: (function of a Variable or an array, differentiable)
    "np.sum": (lambda a: np.sum(a), True),
    "np.sum axis keepdims": (lambda a: np.sum(a, axis=1, keepdims=True), True),
    "np.sum dtype": (lambda a: np.sum(a, axis=0, dtype=np.float32), True),
    "np.sum int dtype": (lambda a: np.sum(a, axis=0, dtype=np.int64), False),
    "np.mean": (lambda a: np.mean(a, axis=0), True),
    "np.mean dtype": (lambda a: np.mean(a, dtype=np.float64), True),
    "np.max": (lambda a: np.max(a, axis=1), True),
    "np.amax": (lambda a: np.amax(a), True),
    "np.min": (lambda a: np.min(a, axis=0, keepdims=True), True),
    "np.prod": (lambda a: np.prod(a, axis=1), True),
    "np.prod dtype": (lambda a: np.prod(a, dtype=np.float64), True),
    "np.any": (lambda a: np.any(a > 2.0, axis=0), False),
    "np.all": (lambda a: np.all(a > -3.0), False),
    "np.clip": (lambda a: np.clip(a, -1.0, 1.0), True),
    "np.clip keywords": (lambda a: np.clip(a, min=0.0, max=None), True),
    "np.squeeze": (lambda a: np.squeeze(a[:1]), True),
    "np.squeeze axis": (lambda a: np.squeeze(a[:, None], axis=1), True),
    "np.reshape": (lambda a: np.reshape(a, (3, 2)), True),
    "np.transpose": (lambda a: np.transpose(a), True),
    "np.transpose axes": (lambda a: np.transpose(a, (1, 0)), True),
}


@pytest.mark.parametrize("name", list(NUMPY_CALLS))
def test_numpy_functions_on_a_variable(name):
    fn, differentiable = NUMPY_CALLS[name]
    x = f64(V)
    with tg.GradientTape() as tape:
        got = fn(x)
    expected = fn(V)
    assert type(got) is tg.Variable, f"{name} returned {type(got).__name__}"
    assert got.dtype == np.asarray(expected).dtype and got.shape == np.shape(expected)
    np.testing.assert_allclose(got.value(), expected, rtol=1e-6 if got.dtype == np.float32 else 1e-15)
    grad = tape.gradient(got, x) if got.dtype.kind == "f" else None
    assert (grad is not None) == differentiable


@pytest.mark.parametrize("fn, np_fn", [
    (lambda v: np.round(v, 1), lambda a: np.round(a, 1)),
    (lambda v: np.ravel(v), np.ravel),
    (lambda v: np.std(v, axis=0), lambda a: np.std(a, axis=0)),
])
def test_numpy_functions_without_a_method_give_arrays(fn, np_fn):
    # np.round, np.ravel and np.std convert the Variable with __array__: a NumPy result, no error
    np.testing.assert_array_equal(np.asarray(fn(f64(V))), np_fn(V))


@pytest.mark.parametrize("call, method", [
    (lambda v: np.sum(v, out=np.zeros(3), axis=0), "sum"),
    (lambda v: np.mean(v, out=np.zeros(())), "mean"),
    (lambda v: np.max(v, out=np.zeros(())), "max"),
    (lambda v: np.min(v, axis=1, out=np.zeros(2)), "min"),
    (lambda v: np.prod(v, out=np.zeros(())), "prod"),
    (lambda v: np.any(v, out=np.zeros((), bool)), "any"),
    (lambda v: np.all(v, out=np.zeros((), bool)), "all"),
    (lambda v: np.clip(v, 0.0, 1.0, out=np.zeros((2, 3))), "clip"),
    (lambda v: v.sum(out=np.zeros(())), "sum"),
])
def test_out_is_refused_with_a_clear_message(call, method):
    x = f64(V)
    with pytest.raises(ValueError) as info:
        call(x)
    message = str(info.value)
    assert f"Variable.{method}" in message and "out=" in message and "immutable" in message
    np.testing.assert_array_equal(x.value(), V)  # nothing lost


@pytest.mark.parametrize("call, words", [
    (lambda v: np.sum(v, where=np.array([True, False, True])), ["Variable.sum", "where=", "tapegrad.where"]),
    (lambda v: np.max(v, initial=5.0), ["Variable.max", "initial=5.0"]),
    (lambda v: v.ravel(order="F"), ["Variable.ravel", "order='F'"]),
    (lambda v: v.sum(dtype="banana"), ["Variable.sum", "banana"]),
    (lambda v: v.sum(0, True), ["Variable.sum", "dtype=True", "keepdims=True by keyword"]),
    (lambda v: v.sum(axis=1.5), ["Variable.sum", "axis", "1.5"]),
    (lambda v: v.prod(axis=(0, 0)), ["Variable.prod", "axis", "(0, 0)"]),
    (lambda v: v.squeeze(axis=0.0), ["Variable.squeeze", "axis", "0.0"]),
])
def test_unsupported_numpy_arguments_are_named(call, words):
    with pytest.raises((TypeError, ValueError)) as info:
        call(f64(V))
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


# -- bool() and item assignment ----------------------------------------------------------------
@pytest.mark.parametrize("value", [np.array([1.0, -1.0]), np.zeros((2, 2)), np.zeros(0)])
def test_bool_of_a_non_scalar_points_to_any_all_and_where(value):
    v = f64(value)
    with pytest.raises(ValueError) as info:
        if v > 0:
            pass
    message = str(info.value)
    assert "v.any()" in message and "v.all()" in message and "tapegrad.where" in message
    assert str(value.shape) in message


def test_bool_of_a_scalar_and_of_any_all():
    assert bool(f64(2.0) > 0) and not bool(f64([[0.0]]))
    v = f64([1.0, -1.0])
    assert (v > 0).any() and not (v > 0).all()


def test_item_assignment_is_refused_with_the_alternatives():
    v = f64([1.0, 2.0, 3.0])
    with pytest.raises(TypeError) as info:
        v[0] = 5
    message = str(info.value)
    assert "immutable" in message and "v.assign(" in message and "tapegrad.where" in message
    assert "v[0]" in message
    np.testing.assert_array_equal(v.value(), [1.0, 2.0, 3.0])
