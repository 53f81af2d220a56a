"""tapegrad against its public contract (design/API.md), statement by statement.

Each section below is one section of API.md; each test starts with a comment quoting the
line it checks. Expected values come from NumPy (float64 where the check is tight).
"""

from __future__ import annotations

import gc
import inspect
import json
import re
import struct
import weakref
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg

RNG = np.random.default_rng(20240601)
EMPTY = inspect.Parameter.empty
POS = inspect.Parameter.POSITIONAL_OR_KEYWORD
KW = inspect.Parameter.KEYWORD_ONLY


def params(fn) -> list[tuple[str, object, object]]:
    """(name, default, kind) of fn's parameters, without self."""
    return [(p.name, p.default, p.kind) for p in inspect.signature(fn).parameters.values() if p.name != "self"]


def defaults(fn) -> dict[str, object]:
    return {p.name: p.default for p in inspect.signature(fn).parameters.values() if p.default is not EMPTY}


def f64(a) -> tg.Variable:
    return tg.Variable(np.asarray(a, dtype=np.float64))


def vjp(fn, arrays, weights):
    """fn(*Variables) and the gradients of sum(fn(...) * weights), in float64."""
    xs = [f64(a) for a in arrays]
    with tg.GradientTape() as tape:
        out = fn(*xs)
        loss = tg.reduce_sum(out * weights)
    return out, tape.gradient(loss, xs, unconnected_gradients="zero")


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast gradient back to shape (the NumPy reference)."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def adjoint(np_fn, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The gradient of sum(np_fn(x) * w) for a linear np_fn, from its images of the unit vectors."""
    g = np.zeros(x.size)
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = 1.0
        g[k] = np.sum(np_fn(e.reshape(x.shape)) * w)
    return g.reshape(x.shape)


def softmax_np(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def logsumexp_np(x: np.ndarray, axis=None, keepdims=False) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


# =====================================================================================================
# §1. From the seeds to Python
# =====================================================================================================

# "`nn = tapegrad.NeuralNetworks()` (`dtype="float32"` default)"; "`g = nn.gradient()`, `K = nn.backend()`"
def test_s1_neural_networks_default_dtype_and_builders():
    assert defaults(tg.NeuralNetworks) == {"dtype": "float32"}
    nn = tg.NeuralNetworks()
    g, K = nn.gradient(), nn.backend()
    assert nn.dtype == np.float32
    assert isinstance(g, tg.Gradient) and isinstance(K, tg.Backend)
    assert g.Variable([1, 2]).dtype == np.float32 and K.array([1, 2]).dtype == np.float32
    nn64 = tg.NeuralNetworks(dtype="float64")
    assert nn64.gradient().Variable([1, 2]).dtype == np.float64


# "`$mo->array(x)` -> NumPy: `np.array(x, dtype=np.float32)`"; "`$mo->toString($v)` -> `str(v)`, `print(v)`"
def test_s1_numpy_arrays_and_str_print(capsys):
    g = tg.NeuralNetworks().gradient()
    value = np.array([2, 3], dtype=np.float32)
    a = g.Variable(value)
    np.testing.assert_array_equal(a.value(), value)
    assert str(a) == str(value)
    print(a)
    assert capsys.readouterr().out == str(value) + "\n"


# "`with g.GradientTape() as tape: ...`"; "`tape.gradient(c, [a, b])`" (seed 000: c=6, da=3, db=2)
def test_s1_seed_first_example_with_a_with_block():
    g = tg.NeuralNetworks().gradient()
    a, b = g.Variable(2.0), g.Variable(3.0)
    with g.GradientTape() as tape:
        c = g.mul(a, b)
    grads = tape.gradient(c, [a, b])
    assert isinstance(grads, list) and len(grads) == 2
    assert (float(c), float(grads[0]), float(grads[1])) == (6.0, 3.0, 2.0)


# "also `nn.with_(tape, fn)` returning `fn()`"
def test_s1_with_returns_fn_result_and_records():
    nn = tg.NeuralNetworks()
    g = nn.gradient()
    a, b = g.Variable(2.0), g.Variable(3.0)
    marker = object()
    result = nn.with_(tape := g.GradientTape(), lambda: (g.mul(a, b), marker))
    assert isinstance(result, tuple) and result[1] is marker
    da, db = tape.gradient(result[0], [a, b])
    assert (float(result[0]), float(da), float(db)) == (6.0, 3.0, 2.0)


# "`$g->Function(fn)` -> `g.Function(fn)`, also usable as a decorator" (seed 003: z=100, da=60, db=40)
def test_s1_function_call_and_decorator():
    nn = tg.NeuralNetworks()
    g = nn.gradient()
    func = g.Function(lambda a, b, c: g.add(g.mul(a, b), c))

    @g.Function
    def decorated(a, b, c):
        return g.add(g.mul(a, b), c)

    a, b, c = g.Variable(2.0), g.Variable(3.0), g.Variable(4.0)
    for f in (func, decorated, func, decorated):  # trace, then run compiled
        z = nn.with_(tape := g.GradientTape(), lambda f=f: g.square(f(a, b, c)))
        da, db = tape.gradient(z, [a, b])
        assert (float(z), float(da), float(db)) == (100.0, 60.0, 40.0)
    assert func.trace_count == 1 and decorated.trace_count == 1


# "camelCase methods (`reduceSum`, `trainableVariables`, `clipByValue`, `stopGradient`, `zerosLike`) ->
#  snake_case (`reduce_sum`, `trainable_variables`, `clip_by_value`, `stop_gradient`, `zeros_like`)"
def test_s1_snake_case_names():
    nn = tg.NeuralNetworks(dtype="float64")
    g = nn.gradient()
    x = np.array([[1.0, -2.0], [3.0, 0.5]])
    np.testing.assert_array_equal(g.reduce_sum(x).value(), x.sum())
    np.testing.assert_array_equal(g.clip_by_value(x, -1.0, 1.0).value(), np.clip(x, -1.0, 1.0))
    np.testing.assert_array_equal(g.stop_gradient(x).value(), x)
    np.testing.assert_array_equal(g.zeros_like(x).value(), np.zeros_like(x))
    dense = nn.layers.Dense(3)
    dense(x)
    assert [v.shape for v in dense.trainable_variables()] == [(2, 3), (3,)]


# "`nn.layers.Dense(128, input_shape=[2], activation="sigmoid")`"
def test_s1_dense_builder_keywords():
    nn = tg.NeuralNetworks(dtype="float64")
    dense = nn.layers.Dense(128, input_shape=[2], activation="sigmoid")
    x = RNG.normal(size=(5, 2))
    y = dense(x)
    w, b = dense.get_weights()
    assert w.shape == (2, 128) and b.shape == (128,)
    np.testing.assert_allclose(y.value(), 1 / (1 + np.exp(-(x @ w + b))), rtol=1e-12)


# "`nn.losses.SparseCategoricalCrossentropy(from_logits=True)`"
def test_s1_sparse_categorical_crossentropy_from_logits():
    nn = tg.NeuralNetworks(dtype="float64")
    loss = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    logits = RNG.normal(size=(4, 3))
    labels = np.array([0, 2, 1, 2], np.int32)
    expected = -np.mean(np.log(softmax_np(logits))[np.arange(4), labels])
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-12)


# "`nn.optimizers.Adam()`, `optimizer.update(params, grads)`"
def test_s1_adam_update_params_grads():
    nn = tg.NeuralNetworks(dtype="float64")
    w = f64([1.0, -2.0, 3.0])
    grad = np.array([0.5, -4.0, 1e-3])
    nn.optimizers.Adam().update([w], [grad])
    # Keras/Rindow Adam, first step: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(1-b2)/(1-b1)
    alpha = 0.001 * np.sqrt(1 - 0.999) / (1 - 0.9)
    expected = np.array([1.0, -2.0, 3.0]) - alpha * (0.1 * grad) / (np.sqrt(0.001 * grad**2) + 1e-7)
    np.testing.assert_allclose(w.value(), expected, rtol=1e-12)


# "`nn.data.NDArrayDataset(x, tests=y, batch_size=64, shuffle=False)`"
def test_s1_ndarray_dataset_keywords():
    nn = tg.NeuralNetworks()
    x = np.array([[1, 3], [1, 4], [2, 4], [3, 1], [4, 1], [4, 2]], dtype=np.float32)
    t = np.array([0, 0, 0, 1, 1, 1], dtype=np.int32)
    batches = list(nn.data.NDArrayDataset(x, tests=t, batch_size=64, shuffle=False))
    assert len(batches) == 1
    np.testing.assert_array_equal(batches[0][0], x)
    np.testing.assert_array_equal(batches[0][1], t)
    small = list(nn.data.NDArrayDataset(x, tests=t, batch_size=4, shuffle=False))
    assert [len(b[0]) for b in small] == [4, 2]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in small]), x)  # in order, nothing lost


# "`class M(tapegrad.AbstractModel): def call(self, inputs, training=None, trues=None)`"
def test_s1_abstract_model_call_gets_training_and_trues():
    nn = tg.NeuralNetworks()
    seen = []

    class M(tg.AbstractModel):
        def __init__(self, builder):
            super().__init__(builder)
            self.dense = builder.layers.Dense(2)

        def call(self, inputs, training=None, trues=None):
            seen.append((training, trues))
            return self.dense(inputs, training)

    m = M(nn)
    x = np.ones((3, 4), np.float32)
    y = m(x, True, "labels")
    assert y.shape == (3, 2) and seen == [(True, "labels")]


# Seed 000's last snippet as §1 maps it: `dense.forward(x)`, `lossfunc.forward(target, x)` with an int32 target
# Variable, `trainable_variables()`, `tape.gradient(loss, weights)`, `nn.optimizers.SGD()`, `update(weights, grads)`
def test_s1_seed_layers_losses_and_optimizer_snippet():
    nn = tg.NeuralNetworks(dtype="float64")
    g = nn.gradient()
    a = g.Variable(np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0]]))
    x = g.Variable(np.array([[4.0, 5.0, 6.0], [5.0, 6.0, 7.0]]))
    target = g.Variable(np.array([0, 1], np.int32))
    dense = nn.layers.Dense(10)
    lossfunc = nn.losses.SparseCategoricalCrossentropy(from_logits=True)

    def step():
        return lossfunc.forward(target, dense.forward(g.mul(x, a)))

    loss = nn.with_(tape := g.GradientTape(), step)
    weights = dense.trainable_variables()
    grads = tape.gradient(loss, weights)
    W, b = (w.value().copy() for w in weights)
    h = x.value() * a.value()
    p = softmax_np(h @ W + b)
    assert float(loss) == pytest.approx(-np.mean(np.log(p[[0, 1], [0, 1]])), rel=1e-12)
    dz = (p - np.eye(10)[[0, 1]]) / 2
    np.testing.assert_allclose(grads[0].value(), h.T @ dz, rtol=1e-10)
    nn.optimizers.SGD().update(weights, grads)
    np.testing.assert_allclose(weights[0].value(), W - 0.01 * h.T @ dz, rtol=1e-10)
    np.testing.assert_allclose(weights[1].value(), b - 0.01 * dz.sum(0), rtol=1e-10)


# Seeds 001/003 pass float labels (`$mo->array([0, 0, 0, 1, 1, 1])`) to SparseCategoricalCrossentropy
def test_s1_sparse_categorical_crossentropy_takes_float_labels_as_in_the_seeds():
    loss = tg.NeuralNetworks().losses.SparseCategoricalCrossentropy(from_logits=True)
    logits = np.array([[2.0, 1.0], [0.5, 1.5], [0.0, 3.0]], np.float32)
    expected = -np.mean(np.log(softmax_np(logits.astype(np.float64)))[[0, 1, 2], [0, 1, 1]])
    assert float(loss(np.array([0.0, 1.0, 1.0], np.float32), logits)) == pytest.approx(expected, rel=1e-6)
    assert float(loss(np.array([0, 1, 1]), logits)) == pytest.approx(expected, rel=1e-6)


# "`$K->scalar($loss->value())` -> `K.scalar(loss.value())` -> Python float; also `float(loss)`"
def test_s1_scalar_and_float():
    nn = tg.NeuralNetworks()
    K, g = nn.backend(), nn.gradient()
    loss = g.reduce_mean(g.Variable([1.0, 2.0, 4.5]))
    s = K.scalar(loss.value())
    assert type(s) is float and s == 2.5
    assert type(float(loss)) is float and float(loss) == 2.5


# "Every class and function is also importable from the package (`tapegrad.Variable`,
#  `tapegrad.GradientTape`, `tapegrad.layers.Dense`, ...), and ops are also module functions (`tapegrad.mul`)."
def test_s1_everything_importable_from_the_package():
    nn = tg.NeuralNetworks()
    g = nn.gradient()
    assert g.GradientTape is tg.GradientTape
    assert isinstance(g.Variable(1.0), tg.Variable)
    assert isinstance(nn.layers.Dense(2), tg.layers.Dense)
    assert isinstance(nn.losses.SparseCategoricalCrossentropy(), tg.losses.SparseCategoricalCrossentropy)
    assert isinstance(nn.optimizers.Adam(), tg.optimizers.Adam)
    assert isinstance(nn.data.NDArrayDataset(np.ones((2, 1))), tg.data.NDArrayDataset)
    assert g.mul is tg.mul and float(tg.mul(2.0, 3.0)) == 6.0
    for name in ["AbstractModel", "Sequential", "History", "load_model", "Function", "grad", "value_and_grad",
                 "jacobian", "hessian", "gradcheck", "custom_gradient", "metrics", "NeuralNetworks"]:
        assert getattr(tg, name) is not None, name
    assert g.Function is tg.Function


# =====================================================================================================
# §2. Variables
# =====================================================================================================

# "`g.Variable(value, *, name=None, trainable=True, dtype=None)`"; §9: "`g.Variable(..., unbackpropagatable=True)`"
@pytest.mark.parametrize("factory", [tg.Variable, tg.NeuralNetworks().gradient().Variable])
def test_s2_variable_signature(factory):
    expected = [("value", EMPTY, POS), ("name", None, KW), ("trainable", True, KW), ("dtype", None, KW)]
    if factory is not tg.Variable:
        expected.append(("unbackpropagatable", False, KW))
    assert params(factory) == expected
    v = factory([1.0], name="w", trainable=False, dtype="float64")
    assert (v.name, v.trainable, v.dtype) == ("w", False, np.float64)


# "`value` is a Python number, a nested list, a NumPy array or a Variable."
def test_s2_value_kinds():
    g = tg.NeuralNetworks().gradient()
    np.testing.assert_array_equal(g.Variable(2.5).value(), np.float32(2.5))
    np.testing.assert_array_equal(g.Variable([[1, 2], [3, 4]]).value(), [[1, 2], [3, 4]])
    arr = RNG.normal(size=(2, 3))
    np.testing.assert_array_equal(g.Variable(arr).value(), arr)
    src = g.Variable([5.0, 6.0])
    np.testing.assert_array_equal(g.Variable(src).value(), [5.0, 6.0])


# "The value is copied (seed 000: changing the source array later does not change the Variable)."
def test_s2_value_is_copied():
    g = tg.NeuralNetworks().gradient()
    value = np.array([2.0, 3.0], np.float32)
    a = g.Variable(value)
    value[0] = value[1] = 0
    np.testing.assert_array_equal(a.value(), [2.0, 3.0])
    nested = [[1.0, 2.0]]
    b = g.Variable(nested)
    nested[0][0] = 9.0
    np.testing.assert_array_equal(b.value(), [[1.0, 2.0]])
    c = g.Variable(a)
    a.assign(np.array([7.0, 8.0], np.float32))
    np.testing.assert_array_equal(c.value(), [2.0, 3.0])


# "Python numbers and lists become `nn`'s float dtype (float32 by default); NumPy float arrays keep their dtype
#  unless `dtype` is given; integer and bool values stay integer/bool and are never differentiable"
def test_s2_dtype_rules():
    g32 = tg.NeuralNetworks().gradient()
    g64 = tg.NeuralNetworks(dtype="float64").gradient()
    for g, dt in ((g32, np.float32), (g64, np.float64)):
        assert g.Variable(2.0).dtype == dt and g.Variable(2).dtype == dt
        assert g.Variable([1, 2]).dtype == dt and g.Variable([[1.5], [2.5]]).dtype == dt
        assert g.Variable(np.ones(2, np.float16)).dtype == np.float16
        assert g.Variable(np.ones(2, np.float64)).dtype == np.float64
        assert g.Variable(np.ones(2, np.float32)).dtype == np.float32
        assert g.Variable(np.ones(2, np.float32), dtype="float64").dtype == np.float64
        assert g.Variable(np.array([1, 2], np.int32)).dtype == np.int32
        assert g.Variable(np.array([1, 2], np.int64)).dtype == np.int64
        assert g.Variable(np.array([True, False])).dtype == np.bool_
        assert g.Variable(True).dtype == np.bool_
    assert tg.Variable(1.0).dtype == np.float32 and tg.Variable(np.ones(1)).dtype == np.float64


@pytest.mark.parametrize("value", [np.array([1, 2], np.int32), np.array([3, 4], np.int64), np.array([True, False])])
def test_s2_integer_and_bool_variables_are_never_differentiable(value):
    x = tg.Variable([1.5, 2.5])
    i = tg.Variable(value, name="labels", trainable=True)
    with tg.GradientTape(persistent=True) as tape:
        tape.watch(i)
        y = tg.reduce_sum(x * i)
    np.testing.assert_array_equal(tape.gradient(y, x).value(), value.astype(np.float32))
    with pytest.raises(TypeError, match="labels"):
        tape.gradient(y, i)


# "`dtype` takes a NumPy dtype or its name (`"float64"`)."
@pytest.mark.parametrize("dtype", ["float64", np.float64, np.dtype("float64"), "float16", np.float16, "int32"])
def test_s2_dtype_argument(dtype):
    v = tg.Variable([1, 2], dtype=dtype)
    assert v.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(v.value(), np.array([1, 2], dtype=dtype))


# "`v.value()` returns the NumPy array; `np.asarray(v)`, `float(v)` (size-1), `v.shape`, `v.dtype`, `v.ndim`,
#  `len(v)`, `v.numpy()`, `repr`/`str` work as for an ndarray."
def test_s2_ndarray_protocol():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    v = tg.Variable(arr)
    assert type(v.value()) is np.ndarray
    np.testing.assert_array_equal(v.value(), arr)
    np.testing.assert_array_equal(np.asarray(v), arr)
    np.testing.assert_array_equal(v.numpy(), arr)
    assert (v.shape, v.dtype, v.ndim, len(v)) == (arr.shape, arr.dtype, arr.ndim, len(arr))
    assert float(tg.Variable(2.5)) == 2.5 and float(tg.Variable([[4.0]])) == 4.0
    assert str(v) == str(arr)
    assert repr(v).startswith("Variable(") and "[[0., 1., 2.]," in repr(v) and "dtype=float32" in repr(v)
    with pytest.raises(TypeError):
        float(v)  # not size-1


# "`v.assign(value)` replaces the value in place (same shape and dtype, else a clear error)."
def test_s2_assign():
    v = tg.Variable([1.0, 2.0])
    ident = id(v)
    v.assign(np.array([3.0, 4.0], np.float32))
    assert id(v) == ident
    np.testing.assert_array_equal(v.value(), [3.0, 4.0])
    with pytest.raises(ValueError, match=r"assign.*\(3,\).*\(2,\)"):
        v.assign(np.array([1.0, 2.0, 3.0], np.float32))
    with pytest.raises(TypeError, match=r"assign.*float64.*float32"):
        v.assign(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(v.value(), [3.0, 4.0])


X23 = np.array([[0.5, 1.5, 2.0], [1.2, 0.8, 1.7]])
W23 = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])
ARR23 = np.array([[2.0, 3.0, 4.0], [5.0, 6.0, 7.0]])

# (expression, value, d/dx) with x the Variable X23 and arr a NumPy array
OPERATORS = {
    "x + arr": (lambda x: x + ARR23, X23 + ARR23, np.ones_like(X23)),
    "arr + x": (lambda x: ARR23 + x, X23 + ARR23, np.ones_like(X23)),
    "2.0 + x": (lambda x: 2.0 + x, X23 + 2.0, np.ones_like(X23)),
    "x - arr": (lambda x: x - ARR23, X23 - ARR23, np.ones_like(X23)),
    "arr - x": (lambda x: ARR23 - x, ARR23 - X23, -np.ones_like(X23)),
    "2.0 - x": (lambda x: 2.0 - x, 2.0 - X23, -np.ones_like(X23)),
    "x * arr": (lambda x: x * ARR23, X23 * ARR23, ARR23),
    "arr * x": (lambda x: ARR23 * x, X23 * ARR23, ARR23),
    "2.0 * x": (lambda x: 2.0 * x, 2.0 * X23, np.full_like(X23, 2.0)),
    "x / arr": (lambda x: x / ARR23, X23 / ARR23, 1 / ARR23),
    "arr / x": (lambda x: ARR23 / x, ARR23 / X23, -ARR23 / X23**2),
    "1.0 / x": (lambda x: 1.0 / x, 1.0 / X23, -1 / X23**2),
    "x ** 3": (lambda x: x**3, X23**3, 3 * X23**2),
    "x ** arr": (lambda x: x**ARR23, X23**ARR23, ARR23 * X23 ** (ARR23 - 1)),
    "arr ** x": (lambda x: ARR23**x, ARR23**X23, ARR23**X23 * np.log(ARR23)),
    "2.0 ** x": (lambda x: 2.0**x, 2.0**X23, 2.0**X23 * np.log(2.0)),
    "x * x": (lambda x: x * x, X23 * X23, 2 * X23),
    "-x": (lambda x: -x, -X23, -np.ones_like(X23)),
    "abs(x - 1)": (lambda x: abs(x - 1.0), np.abs(X23 - 1), np.sign(X23 - 1)),
}


# "Operators: `+ - * / ** @`, unary `-`, `abs()` ... are differentiable"; "NumPy arrays and Python numbers are
#  accepted ... on either side of an operator: `arr - v` and `2.0 * v` stay differentiable (NumPy must defer)"
@pytest.mark.parametrize("name", list(OPERATORS))
def test_s2_operators_are_differentiable_on_either_side(name):
    fn, value, dfdx = OPERATORS[name]
    out, (gx,) = vjp(fn, [X23], W23)
    assert type(out) is tg.Variable, f"{name} gave {type(out).__name__}"
    np.testing.assert_allclose(out.value(), value, rtol=1e-13)
    np.testing.assert_allclose(gx.value(), W23 * dfdx, rtol=1e-12)


# "`@`" with a Variable or an array on either side
def test_s2_matmul_operator_both_sides():
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=(3, 4))
    w = RNG.normal(size=(2, 4))
    out, (ga,) = vjp(lambda x: x @ b, [a], w)
    assert type(out) is tg.Variable
    np.testing.assert_allclose(out.value(), a @ b, rtol=1e-13)
    np.testing.assert_allclose(ga.value(), w @ b.T, rtol=1e-12)
    out, (gb,) = vjp(lambda y: a @ y, [b], w)
    assert type(out) is tg.Variable
    np.testing.assert_allclose(out.value(), a @ b, rtol=1e-13)
    np.testing.assert_allclose(gb.value(), a.T @ w, rtol=1e-12)


# "indexing and slicing (`v[0]`, `v[:, 1:3]`, integer-array indexing) are differentiable"
@pytest.mark.parametrize("index", [0, (slice(None), slice(1, 3)), [0, 0, 2], (Ellipsis, -1), np.array([[2, 1]])],
                         ids=["v[0]", "v[:, 1:3]", "v[[0, 0, 2]]", "v[..., -1]", "v[array]"])
def test_s2_indexing_is_differentiable(index):
    x = np.arange(12, dtype=np.float64).reshape(3, 4) / 3
    w = RNG.normal(size=x[index].shape)
    out, (gx,) = vjp(lambda v: v[index], [x], w)
    np.testing.assert_array_equal(out.value(), x[index])
    np.testing.assert_allclose(gx.value(), adjoint(lambda e: e[index], x, w), rtol=1e-13)


# "`< <= > >=` return non-differentiable bool Variables."
def test_s2_comparisons_are_bool_variables():
    x = f64([1.0, 2.0, 3.0])
    arr = np.array([2.0, 2.0, 2.0])
    for op, ref in [(lambda a: a < arr, np.less), (lambda a: a <= arr, np.less_equal),
                    (lambda a: a > arr, np.greater), (lambda a: a >= arr, np.greater_equal)]:
        with tg.GradientTape() as tape:
            out = op(x)
        assert type(out) is tg.Variable and out.dtype == np.bool_
        np.testing.assert_array_equal(out.value(), ref(x.value(), arr))
        assert tape.gradient(out, x) is None
    np.testing.assert_array_equal((2.0 < x).value(), [False, False, True])  # a number on the left
    left = arr < x  # an array on the left: NumPy defers to the Variable
    assert type(left) is tg.Variable and left.dtype == np.bool_
    np.testing.assert_array_equal(left.value(), [False, False, True])


# "`==` and `hash` stay identity-based so Variables can be dict keys; use `g.equal`."
def test_s2_eq_and_hash_are_identity():
    g = tg.NeuralNetworks().gradient()
    x, y = g.Variable([1.0, 2.0]), g.Variable([1.0, 2.0])
    assert (x == x) is True and (x == y) is False and (x != y) is True
    h = hash(x)
    x.assign(np.array([3.0, 4.0], np.float32))  # the hash does not follow the value
    assert hash(x) == h and hash(x) != hash(y)
    d = {x: "x", y: "y"}
    assert d[x] == "x" and d[y] == "y" and len({x, y, x}) == 2
    np.testing.assert_array_equal(g.equal(x, y).value(), [False, False])
    np.testing.assert_array_equal(g.equal(g.Variable([1.0, 2.0]), y).value(), [True, True])
    np.testing.assert_array_equal(g.equal(x, np.array([3.0, 5.0])).value(), [True, False])


# =====================================================================================================
# §3. GradientTape
# =====================================================================================================

# "`with g.GradientTape(persistent=False, watch_accessed_variables=True) as tape:`";
# "`tape.gradient(target, sources, output_gradients=None, unconnected_gradients="none")`"
def test_s3_signatures():
    assert [(n, d) for n, d, _ in params(tg.GradientTape)] == [("persistent", False),
                                                              ("watch_accessed_variables", True)]
    assert [(n, d) for n, d, _ in params(tg.GradientTape.gradient)] == [
        ("target", EMPTY), ("sources", EMPTY), ("output_gradients", None), ("unconnected_gradients", "none")]
    assert [n for n, _, _ in params(tg.GradientTape.watch)] == ["x"]


# "records every op on trainable float Variables computed inside it"
def test_s3_records_ops_inside_only():
    x = f64(3.0)
    before = x * 2.0  # computed before the tape: a constant to it
    frozen = tg.Variable(np.float64(5.0), trainable=False)
    with tg.GradientTape(persistent=True) as tape:
        y = before * x + frozen * x * x
    assert float(tape.gradient(y, x)) == pytest.approx(6.0 + 2 * 5.0 * 3.0, rel=1e-15)
    assert tape.gradient(y, before) is None and tape.gradient(y, frozen) is None


# "`tape.watch(x)` also records a constant or non-trainable value."
def test_s3_watch_constant_and_non_trainable():
    frozen = tg.Variable(np.array([2.0, 3.0]), trainable=False)
    const = frozen * 1.0  # an op result computed outside any tape
    x = f64([1.0, 4.0])
    with tg.GradientTape() as tape:
        tape.watch(frozen)
        tape.watch(const)
        y = tg.reduce_sum(frozen * x * x + const * 10.0)
    gf, gc_, gx = tape.gradient(y, [frozen, const, x])
    np.testing.assert_allclose(gf.value(), [1.0, 16.0])
    np.testing.assert_allclose(gc_.value(), [10.0, 10.0])
    np.testing.assert_allclose(gx.value(), [4.0, 24.0])


# "watch_accessed_variables=True" (the default) and False: only watched values are recorded
def test_s3_watch_accessed_variables_false():
    x, z = f64(2.0), f64(5.0)
    with tg.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        y = x * x * z
    gx, gz = tape.gradient(y, [x, z])
    assert float(gx) == 20.0 and gz is None


# "`with tape.stop_recording():` pauses it."
def test_s3_stop_recording():
    x = f64(2.0)
    with tg.GradientTape() as tape:
        y = x * x
        with tape.stop_recording():
            z = x * 100.0
        w = y + z * x
    assert float(tape.gradient(w, x)) == pytest.approx(2 * 2.0 + 200.0)  # z counts as a constant


# "`sources` may be one Variable, a list, a tuple or a dict; the result has the same structure."
def test_s3_sources_structure():
    a, b, c = f64(1.0), f64(2.0), f64(3.0)
    with tg.GradientTape(persistent=True) as tape:
        y = a * b * c
    one = tape.gradient(y, a)
    assert isinstance(one, tg.Variable) and float(one) == 6.0
    as_list = tape.gradient(y, [a, b, c])
    assert type(as_list) is list and [float(v) for v in as_list] == [6.0, 3.0, 2.0]
    as_tuple = tape.gradient(y, (a, c))
    assert type(as_tuple) is tuple and [float(v) for v in as_tuple] == [6.0, 2.0]
    as_dict = tape.gradient(y, {"a": a, "b": b})
    assert type(as_dict) is dict and set(as_dict) == {"a", "b"} and float(as_dict["b"]) == 3.0


# "A non-scalar target is differentiated as its sum unless `output_gradients` seeds it."
def test_s3_non_scalar_target_and_output_gradients():
    xv = np.array([1.0, 2.0, 3.0])
    x = f64(xv)
    with tg.GradientTape(persistent=True) as tape:
        y = tg.sin(x) * x
    dydx = np.cos(xv) * xv + np.sin(xv)
    np.testing.assert_allclose(tape.gradient(y, x).value(), dydx, rtol=1e-14)
    seed = np.array([1.0, 0.0, -2.5])
    np.testing.assert_allclose(tape.gradient(y, x, output_gradients=seed).value(), seed * dydx, rtol=1e-14)


# "Gradients are Variables of the source's shape and dtype."
def test_s3_gradient_shape_and_dtype():
    x64 = f64([1.0, 2.0, 3.0])
    y32 = tg.Variable([3.0, 4.0, 5.0])
    b = tg.Variable(np.ones((2, 1), np.float32))
    h = tg.Variable(np.ones(3, np.float16))
    with tg.GradientTape() as tape:
        z = tg.reduce_sum(x64 * y32) + tg.reduce_sum(b * np.ones((2, 3), np.float32)) + tg.reduce_sum(h * 2.0)
    gx, gy, gb, gh = tape.gradient(z, [x64, y32, b, h])
    for grad, src in ((gx, x64), (gy, y32), (gb, b), (gh, h)):
        assert isinstance(grad, tg.Variable) and grad.shape == src.shape and grad.dtype == src.dtype
    np.testing.assert_allclose(gx.value(), [3.0, 4.0, 5.0])
    np.testing.assert_allclose(gy.value(), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(gb.value(), [[3.0], [3.0]])
    np.testing.assert_allclose(gh.value(), [2.0, 2.0, 2.0])


# "A source that the target does not depend on gives `None`, or zeros with `unconnected_gradients="zero"`."
def test_s3_unconnected_gradients():
    x, unused = f64([1.0, 2.0]), tg.Variable(np.ones((2, 2), np.float32))
    with tg.GradientTape(persistent=True) as tape:
        y = tg.reduce_sum(x * 3.0)
    assert tape.gradient(y, unused) is None
    gx, gu = tape.gradient(y, [x, unused], unconnected_gradients="zero")
    np.testing.assert_array_equal(gx.value(), [3.0, 3.0])
    assert isinstance(gu, tg.Variable) and gu.shape == (2, 2) and gu.dtype == np.float32
    np.testing.assert_array_equal(gu.value(), np.zeros((2, 2)))


# "An integer source raises `TypeError` naming it."
def test_s3_integer_source_raises_type_error_naming_it():
    x = f64([1.0, 2.0])
    labels = tg.Variable(np.array([0, 1], np.int32), name="my_labels")
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(x * labels)
    with pytest.raises(TypeError, match="my_labels") as info:
        tape.gradient(y, [x, labels])
    assert "int32" in str(info.value)


# "A non-persistent tape's `gradient` may be called once; a second call raises `RuntimeError` that says to pass
#  `persistent=True`. Its recorded graph is released after that call."
def test_s3_non_persistent_tape_once_and_released():
    x = f64(np.ones(1000))
    with tg.GradientTape() as tape:
        h = tg.exp(x)
        y = tg.reduce_sum(h * 2.0)
    ref = weakref.ref(h)
    del h
    np.testing.assert_allclose(tape.gradient(y, x).value(), 2 * np.e)
    gc.collect()
    assert ref() is None  # the intermediate is no longer held by the tape
    with pytest.raises(RuntimeError, match="persistent=True"):
        tape.gradient(y, x)


# (persistent=True: "may be called once" is for a non-persistent tape only)
def test_s3_persistent_tape_many_calls():
    x = f64(2.0)
    with tg.GradientTape(persistent=True) as tape:
        y, z = x**3, x**2
    assert [float(tape.gradient(y, x)), float(tape.gradient(z, x)), float(tape.gradient(y, x))] == [12, 4, 12]


# "Tapes nest. ... gradients of gradients work to any order:" (the API.md example: 3x^2, 6x)
def test_s3_nested_tapes_example():
    g = tg.NeuralNetworks(dtype="float64").gradient()
    x = g.Variable([1.0, 2.0, 3.0])
    with g.GradientTape() as outer:
        with g.GradientTape() as inner:
            y = x**3
        dy = inner.gradient(y, x)
    d2y = outer.gradient(dy, x)
    np.testing.assert_allclose(dy.value(), 3 * x.value() ** 2, rtol=1e-15)
    np.testing.assert_allclose(d2y.value(), 6 * x.value(), rtol=1e-15)


# "... so gradients of gradients work to any order"
def test_s3_fifth_order_derivative():
    x = f64(0.3)
    tapes = [tg.GradientTape() for _ in range(5)]
    for t in tapes:
        t.__enter__()
    value = tg.sin(x * 2.0) * tg.exp(x)
    results = []
    for t in reversed(tapes):
        t.__exit__(None, None, None)
        value = t.gradient(value, x)
        results.append(float(value))
    # d^n/dx^n sin(2x) e^x = Im((1+2i)^n e^{(1+2i)x})
    expected = [((1 + 2j) ** n * np.exp((1 + 2j) * 0.3)).imag for n in range(1, 6)]
    np.testing.assert_allclose(results, expected, rtol=1e-12)


# "Functional helpers: `tapegrad.grad(f, argnums=0)`, `tapegrad.value_and_grad`, `tapegrad.jacobian(f)`,
#  `tapegrad.hessian(f)`"; §11: "`grad(f, has_aux=True)`"
def test_s3_grad_and_value_and_grad():
    assert defaults(tg.grad) == {"argnums": 0, "has_aux": False}

    def f(a, b):
        return tg.reduce_sum(tg.sin(a) * b**2)

    a0, b0 = np.array([0.3, -1.2]), np.array([2.0, 0.5])
    np.testing.assert_allclose(tg.grad(f)(a0, b0).value(), np.cos(a0) * b0**2, rtol=1e-14)
    np.testing.assert_allclose(tg.grad(f, argnums=1)(a0, b0).value(), 2 * np.sin(a0) * b0, rtol=1e-14)
    ga, gb = tg.grad(f, argnums=(0, 1))(a0, b0)
    np.testing.assert_allclose(gb.value(), 2 * np.sin(a0) * b0, rtol=1e-14)
    value, ga2 = tg.value_and_grad(f)(a0, b0)
    assert float(value) == pytest.approx(np.sum(np.sin(a0) * b0**2), rel=1e-14)
    np.testing.assert_allclose(ga2.value(), ga.value(), rtol=1e-15)


def test_s3_jacobian_and_hessian():
    A = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    x0 = np.array([0.1, 0.2, -0.3])
    t = np.tanh(A @ x0)
    J = tg.jacobian(lambda x: tg.tanh(tg.matmul(A, x)))(x0)
    np.testing.assert_allclose(J.value(), (1 - t**2)[:, None] * A, rtol=1e-12)
    H = tg.hessian(lambda x: tg.reduce_sum(x**3) + x[0] * x[1])(x0)
    expected = np.diag(6 * x0)
    expected[0, 1] = expected[1, 0] = 1.0
    np.testing.assert_allclose(H.value(), expected, atol=1e-12)


# "`tapegrad.gradcheck(f, inputs, order=1|2)` (central differences in float64; raises with the worst element's
#  position and both values)"
def test_s3_gradcheck_orders_and_float64():
    assert defaults(tg.gradcheck)["order"] == 1
    f32 = [np.array([0.3, 1.7, -0.4], np.float32), np.array([1.1, 0.2, 0.9], np.float32)]
    for order in (1, 2):
        # float32 inputs, tolerances far below float32 central differences: only float64 passes
        assert tg.gradcheck(lambda a, b: tg.sin(a * b) * tg.exp(a), f32, order=order, atol=1e-7, rtol=1e-7) is True


def test_s3_gradcheck_reports_the_worst_element_and_both_values():
    bump = np.array([[1.0, 1.0], [1.0, 1.5]])  # the analytic gradient is 1.5 times too large at (1, 1) only

    @tg.custom_gradient
    def wrong_square(x):
        return x * x, lambda dy: dy * 2.0 * x * bump

    with pytest.raises(Exception) as info:
        tg.gradcheck(wrong_square, [np.array([[1.0, 2.0], [3.0, 4.0]])])
    message = str(info.value)
    assert "(1, 1)" in message
    number = r"(?<![\w.])(-?\d+(?:\.\d*)?(?:e[+-]?\d+)?)"  # not the 64 of "float64"
    analytic = float(re.search("analytic.*?" + number, message).group(1))
    numerical = float(re.search("numerical.*?" + number, message).group(1))
    assert analytic == pytest.approx(1.5 * numerical, rel=1e-6)

    @tg.custom_gradient
    def flat(x):  # right first derivative, built from a constant: its second derivative is wrong
        return x * x, lambda dy: dy * tg.stop_gradient(2.0 * x)

    assert tg.gradcheck(flat, [np.array([1.0, 2.0])], order=1)
    with pytest.raises(Exception, match="second derivative"):
        tg.gradcheck(flat, [np.array([1.0, 2.0])], order=2)


# "`tapegrad.custom_gradient` lets a user define an op's backward."
def test_s3_custom_gradient():
    @tg.custom_gradient
    def clip_grad(x):
        return tg.nop(x), lambda dy: tg.clip_by_value(dy, -1.0, 1.0)

    x = f64([1.0, 2.0])
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(clip_grad(x) * np.array([10.0, 0.5]))
    np.testing.assert_array_equal(y.value(), 11.0)
    np.testing.assert_array_equal(tape.gradient(y, x).value(), [1.0, 0.5])

    @tg.custom_gradient
    def cube(x):
        return x * x * x, lambda dy: dy * 3.0 * x * x

    x = f64(2.0)
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            y = cube(x)
        dy = inner.gradient(y, x)
    assert (float(y), float(dy), float(outer.gradient(dy, x))) == (8.0, 12.0, 12.0)


# =====================================================================================================
# §4. Ops
# =====================================================================================================

OPS_RINDOW = ("add sub mul div square sqrt exp log matmul reduce_sum reduce_mean clip_by_value scale increment "
              "reshape transpose repeat split concat nop stop_gradient").split()
OPS_NON_DIFFERENTIABLE = "equal not_equal greater less cast zeros ones zeros_like ones_like bandpart shape".split()
OPS_SEED_004 = ("neg reciprocal pow sin cos tan tanh sigmoid relu abs minimum maximum reduce_max reduce_min where "
                "log1p expm1 softmax log_softmax logsumexp gather expand_dims squeeze one_hot argmax").split()


# "Every op is `g.<name>` and `tapegrad.<name>`" ... "At least:" (the three lists)
@pytest.mark.parametrize("name", OPS_RINDOW + OPS_NON_DIFFERENTIABLE + OPS_SEED_004)
def test_s4_every_listed_op_exists(name):
    g = tg.NeuralNetworks().gradient()
    assert callable(getattr(tg, name)), name
    assert callable(getattr(g, name)), name
    if name not in ("zeros", "ones"):  # g.zeros/g.ones apply nn's dtype
        assert getattr(g, name) is getattr(tg, name)


# The documented signatures: "matmul(x, y, transpose_a=False, transpose_b=False)", "reduce_sum reduce_mean(x,
# axis=None, keepdims=False)", "clip_by_value(x, min, max)", "scale(alpha, x)", "increment(x, beta, alpha=1.0)",
# "reshape(x, shape)", "transpose(x, perm=None)", "repeat(x, repeats, axis=None)", "split(x, sizes, axis=0)",
# "concat(xs, axis=-1)"
@pytest.mark.parametrize("name, expected", [
    ("matmul", [("x", EMPTY), ("y", EMPTY), ("transpose_a", False), ("transpose_b", False)]),
    ("reduce_sum", [("x", EMPTY), ("axis", None), ("keepdims", False)]),
    ("reduce_mean", [("x", EMPTY), ("axis", None), ("keepdims", False)]),
    ("clip_by_value", [("x", EMPTY), ("min", EMPTY), ("max", EMPTY)]),
    ("scale", [("alpha", EMPTY), ("x", EMPTY)]),
    ("increment", [("x", EMPTY), ("beta", EMPTY), ("alpha", 1.0)]),
    ("reshape", [("x", EMPTY), ("shape", EMPTY)]),
    ("transpose", [("x", EMPTY), ("perm", None)]),
    ("repeat", [("x", EMPTY), ("repeats", EMPTY), ("axis", None)]),
    ("split", [("x", EMPTY), ("sizes", EMPTY), ("axis", 0)]),
    ("concat", [("xs", EMPTY), ("axis", -1)]),
])
def test_s4_documented_signatures(name, expected):
    got = params(getattr(tg, name))
    assert [(n, d) for n, d, _ in got] == expected
    assert all(kind == POS for _, _, kind in got)


MIXED = np.array([[-1.3, 0.4, 1.1], [0.8, -0.6, 1.4]])
POSITIVE = np.array([[0.3, 1.2, 2.0], [0.7, 1.5, 0.9]])

# name: (numpy value, numpy derivative, input)
UNARY = {
    "neg": (np.negative, lambda x: -np.ones_like(x), MIXED),
    "reciprocal": (np.reciprocal, lambda x: -1 / x**2, POSITIVE),
    "square": (np.square, lambda x: 2 * x, MIXED),
    "sqrt": (np.sqrt, lambda x: 0.5 / np.sqrt(x), POSITIVE),
    "exp": (np.exp, np.exp, MIXED),
    "log": (np.log, lambda x: 1 / x, POSITIVE),
    "sin": (np.sin, np.cos, MIXED),
    "cos": (np.cos, lambda x: -np.sin(x), MIXED),
    "tan": (np.tan, lambda x: 1 / np.cos(x) ** 2, MIXED),
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2, MIXED),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2, MIXED),
    "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float), MIXED),
    "abs": (np.abs, np.sign, MIXED),
    "log1p": (np.log1p, lambda x: 1 / (1 + x), POSITIVE),
    "expm1": (np.expm1, np.exp, MIXED),
    "nop": (lambda x: x, np.ones_like, MIXED),
}


# "takes Variables, arrays or numbers" ... "has a gradient that is itself differentiable"
@pytest.mark.parametrize("name", list(UNARY))
def test_s4_unary_ops_values_gradients_and_second_order(name):
    np_f, np_df, x = UNARY[name]
    op = getattr(tg, name)
    w = RNG.normal(size=x.shape)
    out, (gx,) = vjp(op, [x], w)
    np.testing.assert_allclose(out.value(), np_f(x), rtol=1e-13)
    np.testing.assert_allclose(gx.value(), w * np_df(x), rtol=1e-12)
    from_array = op(x)
    assert type(from_array) is tg.Variable
    np.testing.assert_allclose(from_array.value(), np_f(x), rtol=1e-13)
    number = float(x[0, 1])
    assert float(op(number)) == pytest.approx(float(np_f(np.float64(number))), rel=1e-6)
    assert tg.gradcheck(op, [x], order=2)


# name: (numpy value, d/dx, d/dy); x and y positive and never equal
BINARY = {
    "add": (np.add, lambda x, y: np.ones_like(x * y), lambda x, y: np.ones_like(x * y)),
    "sub": (np.subtract, lambda x, y: np.ones_like(x * y), lambda x, y: -np.ones_like(x * y)),
    "mul": (np.multiply, lambda x, y: y + 0 * x, lambda x, y: x + 0 * y),
    "div": (np.divide, lambda x, y: 1 / y + 0 * x, lambda x, y: -x / y**2),
    "pow": (np.power, lambda x, y: y * x ** (y - 1), lambda x, y: x**y * np.log(x)),
    "minimum": (np.minimum, lambda x, y: (x < y) * 1.0, lambda x, y: (x > y) * 1.0),
    "maximum": (np.maximum, lambda x, y: (x > y) * 1.0, lambda x, y: (x < y) * 1.0),
}
XB = np.array([[0.5, 1.5, 2.25], [1.2, 0.8, 1.75]])


# "follows NumPy broadcasting (the gradient is summed back to each input's shape)"
@pytest.mark.parametrize("y_shape", [(2, 3), (3,), (2, 1), ()])
@pytest.mark.parametrize("name", list(BINARY))
def test_s4_binary_ops_broadcast_and_sum_gradients_back(name, y_shape):
    np_f, dx, dy = BINARY[name]
    y = {(2, 3): np.array([[1.1, 0.9, 2.0], [0.6, 1.3, 1.6]]), (3,): np.array([1.1, 0.9, 2.0]),
         (2, 1): np.array([[1.1], [0.6]]), (): np.array(1.3)}[y_shape]
    w = RNG.normal(size=(2, 3))
    out, (gx, gy) = vjp(getattr(tg, name), [XB, y], w)
    np.testing.assert_allclose(out.value(), np_f(XB, y), rtol=1e-13)
    assert gx.shape == XB.shape and gy.shape == y.shape
    np.testing.assert_allclose(gx.value(), unbroadcast(w * dx(XB, y), XB.shape), rtol=1e-12)
    np.testing.assert_allclose(gy.value(), unbroadcast(w * dy(XB, y), y.shape), rtol=1e-12)
    np.testing.assert_allclose(getattr(tg, name)(XB, 1.25).value(), np_f(XB, 1.25), rtol=1e-13)  # a number
    np.testing.assert_allclose(getattr(tg, name)(1.25, XB).value(), np_f(1.25, XB), rtol=1e-13)
    assert tg.gradcheck(getattr(tg, name), [XB, y], order=2)


# "matmul(x, y, transpose_a=False, transpose_b=False)` (2-D and batched)"
@pytest.mark.parametrize("a_shape, b_shape, ta, tb", [
    ((2, 3), (3, 4), False, False), ((3, 2), (3, 4), True, False), ((2, 3), (4, 3), False, True),
    ((3, 2), (4, 3), True, True), ((5, 2, 3), (5, 3, 4), False, False), ((5, 3, 2), (5, 4, 3), True, True),
    ((5, 2, 3), (3, 4), False, False),
])
def test_s4_matmul(a_shape, b_shape, ta, tb):
    a, b = RNG.normal(size=a_shape), RNG.normal(size=b_shape)
    a_ = np.swapaxes(a, -1, -2) if ta else a
    b_ = np.swapaxes(b, -1, -2) if tb else b
    expected = a_ @ b_
    w = RNG.normal(size=expected.shape)
    out, (ga, gb) = vjp(lambda x, y: tg.matmul(x, y, transpose_a=ta, transpose_b=tb), [a, b], w)
    np.testing.assert_allclose(out.value(), expected, rtol=1e-12)
    np.testing.assert_allclose(ga.value(), adjoint(lambda e: (np.swapaxes(e, -1, -2) if ta else e) @ b_, a, w),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gb.value(), adjoint(lambda e: a_ @ (np.swapaxes(e, -1, -2) if tb else e), b, w),
                               rtol=1e-12, atol=1e-14)
    assert tg.gradcheck(lambda p, q: tg.matmul(p * p, q, transpose_a=ta, transpose_b=tb), [a, b], order=2)


X234 = RNG.normal(size=(2, 3, 4))


# "reduce_sum reduce_mean(x, axis=None, keepdims=False)` (axis may be an int or a tuple)"; also reduce_max,
# reduce_min, logsumexp
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), (1,)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "logsumexp"])
def test_s4_reductions(name, axis, keepdims):
    ref = {"reduce_sum": np.sum, "reduce_mean": np.mean, "reduce_max": np.max, "reduce_min": np.min,
           "logsumexp": logsumexp_np}[name]
    expected = ref(X234, axis=axis, keepdims=keepdims)
    w = RNG.normal(size=np.shape(expected))
    out, (gx,) = vjp(lambda x: getattr(tg, name)(x, axis=axis, keepdims=keepdims), [X234], w)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.value(), expected, rtol=1e-12)
    wk = np.reshape(w, ref(X234, axis=axis, keepdims=True).shape)
    n = X234.size // wk.size
    local = {"reduce_sum": np.ones_like(X234), "reduce_mean": np.full_like(X234, 1 / n),
             "reduce_max": (X234 == np.max(X234, axis=axis, keepdims=True)) * 1.0,
             "reduce_min": (X234 == np.min(X234, axis=axis, keepdims=True)) * 1.0,
             "logsumexp": np.exp(X234 - logsumexp_np(X234, axis=axis, keepdims=True))}[name]
    np.testing.assert_allclose(gx.value(), wk * local, rtol=1e-12)
    if axis in (None, (0, 2)) and keepdims:
        assert tg.gradcheck(lambda x: getattr(tg, name)(x, axis=axis, keepdims=keepdims), [X234], order=2)


# "clip_by_value(x, min, max)", "scale(alpha, x)", "increment(x, beta, alpha=1.0)"
def test_s4_clip_scale_increment():
    x = np.array([[-2.0, -0.5, 0.3], [0.9, 1.5, 4.0]])
    w = RNG.normal(size=x.shape)
    out, (gx,) = vjp(lambda v: tg.clip_by_value(v, -1.0, 1.0), [x], w)
    np.testing.assert_array_equal(out.value(), np.clip(x, -1.0, 1.0))
    np.testing.assert_array_equal(gx.value(), w * ((x > -1.0) & (x < 1.0)))
    out, (ga, gx) = vjp(lambda a, v: tg.scale(a, v), [2.5, x], w)
    np.testing.assert_allclose(out.value(), 2.5 * x, rtol=1e-15)
    np.testing.assert_allclose(gx.value(), 2.5 * w, rtol=1e-15)
    assert float(ga) == pytest.approx(np.sum(w * x), rel=1e-13)
    out, (gx, gb, ga) = vjp(lambda v, b, a: tg.increment(v, b, a), [x, 0.75, -3.0], w)
    np.testing.assert_allclose(out.value(), -3.0 * x + 0.75, rtol=1e-15)
    np.testing.assert_allclose(gx.value(), -3.0 * w, rtol=1e-15)
    assert float(gb) == pytest.approx(w.sum(), rel=1e-13) and float(ga) == pytest.approx(np.sum(w * x), rel=1e-13)
    np.testing.assert_allclose(tg.increment(x, 0.75).value(), x + 0.75, rtol=1e-15)  # alpha=1.0 by default
    assert tg.gradcheck(lambda v, b, a: tg.increment(v * v, b, a), [x, np.array(0.75), np.array(-3.0)], order=2)


# Linear shape ops: "reshape(x, shape)", "transpose(x, perm=None)", "repeat(x, repeats, axis=None)", "gather",
# "expand_dims", "squeeze", "nop"; value = NumPy's, gradient = NumPy's adjoint, second order by gradcheck
SHAPE_OPS = {
    "reshape": (lambda x: tg.reshape(x, (4, 6)), lambda x: x.reshape(4, 6)),
    "reshape -1": (lambda x: tg.reshape(x, (-1, 3)), lambda x: x.reshape(-1, 3)),
    "transpose": (lambda x: tg.transpose(x), lambda x: np.transpose(x)),
    "transpose perm": (lambda x: tg.transpose(x, (2, 0, 1)), lambda x: np.transpose(x, (2, 0, 1))),
    "repeat": (lambda x: tg.repeat(x, 2), lambda x: np.repeat(x, 2)),
    "repeat axis": (lambda x: tg.repeat(x, 3, axis=1), lambda x: np.repeat(x, 3, axis=1)),
    "gather": (lambda x: tg.gather(x, [1, 0, 1]), lambda x: np.take(x, [1, 0, 1], axis=0)),
    "gather axis": (lambda x: tg.gather(x, np.array([3, 3, 0]), axis=2), lambda x: np.take(x, [3, 3, 0], axis=2)),
    "expand_dims": (lambda x: tg.expand_dims(x, 1), lambda x: np.expand_dims(x, 1)),
    "squeeze": (lambda x: tg.squeeze(tg.reshape(x, (2, 1, 12, 1))), lambda x: np.squeeze(x.reshape(2, 1, 12, 1))),
    "squeeze axis": (lambda x: tg.squeeze(tg.reshape(x, (2, 1, 12, 1)), axis=1),
                     lambda x: np.squeeze(x.reshape(2, 1, 12, 1), axis=1)),
}


@pytest.mark.parametrize("name", list(SHAPE_OPS))
def test_s4_shape_ops(name):
    fn, np_fn = SHAPE_OPS[name]
    expected = np_fn(X234)
    w = RNG.normal(size=expected.shape)
    out, (gx,) = vjp(fn, [X234], w)
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.value(), expected)
    np.testing.assert_allclose(gx.value(), adjoint(np_fn, X234, w), rtol=1e-13)
    assert tg.gradcheck(lambda x: fn(x) * fn(x), [X234], order=2)


# "split(x, sizes, axis=0)", "concat(xs, axis=-1)"
def test_s4_split_and_concat():
    x = RNG.normal(size=(5, 3))
    w0, w1 = RNG.normal(size=(2, 3)), RNG.normal(size=(3, 3))
    v = f64(x)
    with tg.GradientTape() as tape:
        a, b = tg.split(v, [2, 3])  # axis=0 by default
        loss = tg.reduce_sum(a * w0) + tg.reduce_sum(b * w1)
    np.testing.assert_array_equal(a.value(), x[:2])
    np.testing.assert_array_equal(b.value(), x[2:])
    np.testing.assert_array_equal(tape.gradient(loss, v).value(), np.concatenate([w0, w1]))
    parts = tg.split(x, [1, 2], axis=1)
    assert [p.shape for p in parts] == [(5, 1), (5, 2)]
    np.testing.assert_array_equal(parts[1].value(), x[:, 1:])

    y = RNG.normal(size=(5, 2))
    w = RNG.normal(size=(5, 5))
    out, (gx, gy) = vjp(lambda p, q: tg.concat([p, q]), [x, y], w)  # axis=-1 by default
    np.testing.assert_array_equal(out.value(), np.concatenate([x, y], axis=-1))
    np.testing.assert_array_equal(gx.value(), w[:, :3])
    np.testing.assert_array_equal(gy.value(), w[:, 3:])
    np.testing.assert_array_equal(tg.concat([x, x], axis=0).value(), np.concatenate([x, x], axis=0))
    assert tg.gradcheck(lambda p, q: tg.concat([p * q[:, :1], q * q], axis=1), [x, y], order=2)
    assert tg.gradcheck(lambda p: tg.split(p * p, [2, 3])[1], [x], order=2)


# "where"; "softmax log_softmax"
def test_s4_where_softmax_log_softmax():
    x, y = RNG.normal(size=(2, 4)), RNG.normal(size=(2, 4))
    cond = x > y
    w = RNG.normal(size=(2, 4))
    out, (gx, gy) = vjp(lambda a, b: tg.where(a > b, a * a, b), [x, y], w)
    np.testing.assert_array_equal(out.value(), np.where(cond, x * x, y))
    np.testing.assert_allclose(gx.value(), w * cond * 2 * x, rtol=1e-14)
    np.testing.assert_array_equal(gy.value(), w * ~cond)
    for axis in (-1, 0):
        s = softmax_np(x, axis)
        out, (gx,) = vjp(lambda a: tg.softmax(a, axis=axis), [x], w)
        np.testing.assert_allclose(out.value(), s, rtol=1e-13)
        np.testing.assert_allclose(gx.value(), s * (w - np.sum(w * s, axis=axis, keepdims=True)), rtol=1e-12,
                                   atol=1e-15)
        out, (gx,) = vjp(lambda a: tg.log_softmax(a, axis=axis), [x], w)
        np.testing.assert_allclose(out.value(), np.log(s), rtol=1e-13)
        np.testing.assert_allclose(gx.value(), w - s * np.sum(w, axis=axis, keepdims=True), rtol=1e-12, atol=1e-15)
    assert defaults(tg.softmax) == {"axis": -1} and defaults(tg.log_softmax) == {"axis": -1}
    for fn in (tg.softmax, tg.log_softmax, lambda a: tg.where(a > 0.1, tg.sin(a), a * a)):
        assert tg.gradcheck(fn, [x], order=2)


# "nop, stop_gradient"
def test_s4_nop_and_stop_gradient():
    x = f64([1.0, -2.0])
    with tg.GradientTape(persistent=True) as tape:
        a = tg.nop(x)
        s = tg.stop_gradient(x * x)
        y = tg.reduce_sum(s * x)
    np.testing.assert_array_equal(a.value(), x.value())
    np.testing.assert_array_equal(tape.gradient(a, x).value(), [1.0, 1.0])
    np.testing.assert_array_equal(s.value(), [1.0, 4.0])
    np.testing.assert_array_equal(tape.gradient(y, x).value(), [1.0, 4.0])  # s is a constant
    assert tape.gradient(s, x) is None


# "one_hot argmax (argmax not differentiable)"
def test_s4_one_hot_and_argmax():
    idx = np.array([0, 2, 1, 2])
    np.testing.assert_array_equal(tg.one_hot(idx, 3).value(), np.eye(3)[idx])
    x = f64(RNG.normal(size=(3, 4)))
    with tg.GradientTape() as tape:
        i = tg.argmax(x, axis=1)
        j = tg.argmax(x)
    np.testing.assert_array_equal(i.value(), np.argmax(x.value(), axis=1))
    assert int(j.value()) == np.argmax(x.value())
    assert i.dtype.kind in "iu" and tape.gradient(i, x) is None


# "non-differentiable: `equal not_equal greater less cast zeros ones zeros_like ones_like bandpart shape`"
def band_np(m: np.ndarray, lower: int, upper: int) -> np.ndarray:
    i, j = np.indices(m.shape[-2:])
    keep = ((lower < 0) | (i - j <= lower)) & ((upper < 0) | (j - i <= upper))
    return np.where(keep, m, 0)


NON_DIFF = {
    "equal": (lambda x: tg.equal(x, 0.5), lambda x: np.equal(x, 0.5)),
    "not_equal": (lambda x: tg.not_equal(x, 0.5), lambda x: np.not_equal(x, 0.5)),
    "greater": (lambda x: tg.greater(x, 0.5), lambda x: np.greater(x, 0.5)),
    "less": (lambda x: tg.less(x, 0.5), lambda x: np.less(x, 0.5)),
    "cast int32": (lambda x: tg.cast(x * 4.0, "int32"), lambda x: (x * 4.0).astype(np.int32)),
    "cast bool": (lambda x: tg.cast(x - 0.5, np.bool_), lambda x: (x - 0.5).astype(np.bool_)),
    "zeros": (lambda x: tg.zeros((2, 3), "float64"), lambda x: np.zeros((2, 3))),
    "ones": (lambda x: tg.ones((4, 1), np.float32), lambda x: np.ones((4, 1), np.float32)),
    "zeros_like": (lambda x: tg.zeros_like(x), np.zeros_like),
    "ones_like": (lambda x: tg.ones_like(x), np.ones_like),
    "bandpart 1 0": (lambda x: tg.bandpart(x, 1, 0), lambda x: band_np(x, 1, 0)),
    "bandpart -1 0": (lambda x: tg.bandpart(x, -1, 0), np.tril),
    "bandpart 0 -1": (lambda x: tg.bandpart(x, 0, -1), np.triu),
    "shape": (lambda x: tg.shape(x), lambda x: np.array(x.shape)),
}


@pytest.mark.parametrize("name", list(NON_DIFF))
def test_s4_non_differentiable_ops(name):
    fn, np_fn = NON_DIFF[name]
    xv = RNG.normal(size=(4, 4)) if "bandpart" in name else np.array([[0.5, 1.0, -0.25], [0.5, 2.0, 0.75]])
    x = f64(xv)
    with tg.GradientTape() as tape:
        out = fn(x)
    assert type(out) is tg.Variable and out.dtype == np_fn(xv).dtype
    np.testing.assert_array_equal(out.value(), np_fn(xv))
    assert tape.gradient(out, x) is None


# "`cast` passes the gradient between float dtypes (in the source's dtype, to any order, as TensorFlow, PyTorch
# and JAX do) and blocks it to int or bool."
def test_s4_cast_passes_the_gradient_between_float_dtypes():
    x = tg.Variable(np.array([0.5, -2.0], np.float32))
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            y = tg.reduce_sum(tg.cast(x, "float64") ** 3)
        dy = inner.gradient(y, x)
    d2y = outer.gradient(dy, x)
    assert (y.dtype, dy.dtype, d2y.dtype) == (np.float64, np.float32, np.float32)
    np.testing.assert_array_equal(dy.value(), [0.75, 12.0])
    np.testing.assert_array_equal(d2y.value(), [3.0, -12.0])


# "Numerics: `log_softmax`, `logsumexp` and cross-entropy from logits are stable for logits of 1e4 and more"
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_s4_log_softmax_and_logsumexp_are_stable(dtype):
    logits = np.array([[1e4, 0.0, -1e4], [2e4, 2e4, 2e4 - 1.0], [-3e4, -3e4 + 2.0, -3e4]], dtype=dtype)
    ref = logits.astype(np.float64)
    x = tg.Variable(logits)
    w = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 1.0], [1.0, 1.0, 1.0]], dtype)
    with tg.GradientTape(persistent=True) as tape:
        ls = tg.log_softmax(x)
        lse = tg.logsumexp(x, axis=-1)
        loss = tg.reduce_sum(ls * w) + tg.reduce_sum(lse)
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    expected_ls = ref - logsumexp_np(ref, axis=-1, keepdims=True)
    np.testing.assert_allclose(ls.value(), expected_ls, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(lse.value(), logsumexp_np(ref, axis=-1), rtol=rtol)
    s = softmax_np(ref)
    gx = tape.gradient(loss, x).value()
    assert np.all(np.isfinite(gx))
    np.testing.assert_allclose(gx, w - s * w.sum(-1, keepdims=True) + s, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(tg.logsumexp(tg.Variable(np.array([1e5, 1e5], dtype)))), 1e5 + np.log(2),
                               rtol=rtol)


def test_s4_cross_entropy_from_logits_is_stable():
    nn = tg.NeuralNetworks()
    logits = np.array([[1e4, 0.0, -1e4], [0.0, -2e4, 2e4]], np.float32)
    labels = np.array([1, 2])
    # exact losses: logsumexp - the true logit = [1e4, 0]
    for loss_fn, trues in ((nn.losses.SparseCategoricalCrossentropy(from_logits=True), labels),
                           (nn.losses.CategoricalCrossentropy(from_logits=True), np.eye(3, dtype=np.float32)[labels])):
        x = tg.Variable(logits)
        with tg.GradientTape() as tape:
            loss = loss_fn(trues, x)
        assert float(loss) == pytest.approx(5e3, rel=1e-6)
        gx = tape.gradient(loss, x).value()
        expected = (softmax_np(logits.astype(np.float64)) - np.eye(3)[labels]) / 2
        np.testing.assert_allclose(gx, expected, atol=1e-6)
    bce = nn.losses.BinaryCrossentropy(from_logits=True)
    z = tg.Variable(np.array([[1e4], [-1e4], [2e4]], np.float32))
    with tg.GradientTape() as tape:
        loss = bce(np.array([[0.0], [1.0], [1.0]], np.float32), z)
    assert float(loss) == pytest.approx(2e4 / 3, rel=1e-6)  # [1e4, 1e4, 0] averaged
    np.testing.assert_allclose(tape.gradient(loss, z).value(), [[1 / 3], [-1 / 3], [0.0]], atol=1e-7)


# "`where` with a branch that is NaN where it is not selected gives finite gradients for the selected branch when
#  written with the double-where pattern (document it)"
def test_s4_double_where_gives_finite_gradients():
    x = f64([-1.0, 0.0, 2.0, 4.0])
    with tg.GradientTape() as tape:
        safe = tg.where(x > 0, x, 1.0)
        y = tg.where(x > 0, tg.log(safe), 0.0)
        total = tg.reduce_sum(y)
    np.testing.assert_allclose(y.value(), [0.0, 0.0, np.log(2.0), np.log(4.0)])
    np.testing.assert_array_equal(tape.gradient(total, x).value(), [0.0, 0.0, 0.5, 0.25])
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "double-where" in readme  # "(document it)"


# "ties in `reduce_max`/`maximum` split the gradient evenly"
def test_s4_ties_split_the_gradient_evenly():
    x = f64([1.0, 3.0, 3.0, 3.0])
    with tg.GradientTape() as tape:
        m = tg.reduce_max(x)
    np.testing.assert_allclose(tape.gradient(m, x).value(), [0.0, 1 / 3, 1 / 3, 1 / 3], rtol=1e-15)
    rows = f64([[2.0, 2.0], [1.0, 5.0]])
    with tg.GradientTape() as tape:
        m = tg.reduce_max(rows, axis=1)
    np.testing.assert_array_equal(tape.gradient(m, rows).value(), [[0.5, 0.5], [0.0, 1.0]])
    a, b = f64([1.0, 2.0, 3.0]), f64([1.0, 5.0, 3.0])
    with tg.GradientTape() as tape:
        m = tg.reduce_sum(tg.maximum(a, b) * np.array([2.0, 1.0, 4.0]))
    ga, gb = tape.gradient(m, [a, b])
    np.testing.assert_array_equal(ga.value(), [1.0, 0.0, 2.0])
    np.testing.assert_array_equal(gb.value(), [1.0, 1.0, 2.0])


# "`abs'(0) = relu'(0) = 0`"
def test_s4_abs_and_relu_derivative_at_zero():
    x = f64([0.0, -0.0])
    for op in (tg.abs, tg.relu, abs):
        with tg.GradientTape() as tape:
            y = tg.reduce_sum(op(x))
        np.testing.assert_array_equal(tape.gradient(y, x).value(), [0.0, 0.0])


# =====================================================================================================
# §5. Function: compiled graphs
# =====================================================================================================

# "The first call with a new input signature (the shapes and dtypes of array arguments, the values of non-array
#  arguments) runs `fn` once ...; later calls with that signature run the compiled graph without running `fn`'s
#  Python again." "`f.trace_count` says how many graphs were built"
def test_s5_tracing_and_the_cache_key():
    g = tg.NeuralNetworks().gradient()
    runs = []

    @g.Function
    def f(x, n):
        runs.append(1)
        return tg.tanh(x) * n

    a = np.array([0.1, 0.2], np.float32)
    for value, n in ((a, 2.0), (a + 1, 2.0), (tg.Variable(a * 3), 2.0)):
        np.testing.assert_allclose(f(value, n).value(), np.tanh(np.asarray(value)) * n, rtol=1e-6)
    assert f.trace_count == 1 and len(runs) == 1
    f(np.ones(3, np.float32), 2.0)  # a new shape
    assert f.trace_count == 2
    f(np.ones(2, np.float64), 2.0)  # a new dtype
    assert f.trace_count == 3
    np.testing.assert_allclose(f(a, 3.0).value(), np.tanh(a) * 3.0, rtol=1e-6)  # a new non-array value
    assert f.trace_count == 4
    f(a, 3.0)
    f(a, 2.0)
    assert f.trace_count == 4 and len(runs) == 4


# "Python control flow is fixed at trace time."
def test_s5_control_flow_is_fixed_at_trace_time():
    flag = {"double": True}

    def h(x):
        return x * 2.0 if flag["double"] else x * 3.0

    compiled = tg.Function(h)
    x = np.ones(2, np.float32)
    np.testing.assert_array_equal(compiled(x).value(), [2.0, 2.0])
    flag["double"] = False
    np.testing.assert_array_equal(compiled(x).value(), [2.0, 2.0])  # the branch taken when traced
    np.testing.assert_array_equal(h(tg.Variable(x)).value(), [3.0, 3.0])  # eager follows the flag


# "It works inside and outside tapes; under a tape, gradients reach its inputs and every trainable Variable that
#  `fn` reads from its closure (layer weights)."
def test_s5_gradients_reach_inputs_and_closure_layer_weights():
    nn = tg.NeuralNetworks(dtype="float64")
    dense = nn.layers.Dense(3, activation="tanh")
    frozen = tg.Variable(np.array([1.0, -1.0, 0.5]), trainable=False)
    f = nn.gradient().Function(lambda x: dense(x) * frozen)
    x = f64(RNG.normal(size=(4, 2)))
    outside = f(x)  # outside a tape
    W, b = dense.get_weights()
    t = np.tanh(x.value() @ W + b)
    np.testing.assert_allclose(outside.value(), t * frozen.value(), rtol=1e-13)
    w = RNG.normal(size=(4, 3))
    for _ in range(2):
        with tg.GradientTape() as tape:
            loss = tg.reduce_sum(f(x) * w)
        gx, gW, gb, gf = tape.gradient(loss, [x, dense.kernel, dense.bias, frozen])
        d = w * frozen.value() * (1 - t**2)
        np.testing.assert_allclose(gx.value(), d @ W.T, rtol=1e-12)
        np.testing.assert_allclose(gW.value(), x.value().T @ d, rtol=1e-12)
        np.testing.assert_allclose(gb.value(), d.sum(0), rtol=1e-12)
        assert gf is None
    assert f.trace_count == 1


# "Results equal eager execution to float tolerance, for values, first and second derivatives."
def test_s5_compiled_equals_eager_to_second_order():
    def fn(x, y):
        return tg.reduce_sum(tg.sin(x * y) * tg.exp(x) / (1.0 + y * y)) + tg.logsumexp(x - y)

    compiled = tg.Function(fn)
    xv, yv = RNG.normal(size=(3,)), RNG.normal(size=(3,))

    def derivatives(f):
        x, y = f64(xv), f64(yv)
        with tg.GradientTape() as outer:
            with tg.GradientTape() as inner:
                value = f(x, y)
            gx, gy = inner.gradient(value, [x, y])
            probe = tg.reduce_sum(gx * np.array([1.0, 2.0, -1.0])) + tg.reduce_sum(gy)
        hx, hy = outer.gradient(probe, [x, y])
        return [value.value(), gx.value(), gy.value(), hx.value(), hy.value()]

    eager = derivatives(fn)
    for _ in range(2):
        for e, c in zip(eager, derivatives(compiled)):
            np.testing.assert_allclose(c, e, rtol=1e-11, atol=1e-13)
    assert compiled.trace_count == 1


# "`print(f.graph(*args))` shows a readable listing of the optimized forward and backward graph. The compiler
#  removes dead code, merges common subexpressions, folds constants and fuses elementwise chains"
def test_s5_graph_listing_shows_the_optimizations():
    w = tg.Variable(np.full(4, 2.0, np.float32), trainable=False)
    x = tg.Variable(np.array([0.1, 0.2, 0.3, 0.4], np.float32))

    @tg.Function
    def f(x):
        unused = tg.exp(x) * 3.0  # noqa: F841 - dead code
        a = tg.tanh(x * w + 1.0)
        b = tg.tanh(x * w + 1.0)  # a common subexpression
        return a + b * 1.0 + (2.0 * 3.0)

    text = str(f.graph(x))
    forward, backward = text.split("\n\n")[:2]
    assert "forward" in forward and "backward" in backward
    assert "exp" not in forward
    assert forward.count("tanh") == 1
    assert "6.0" in forward and "3.0" not in forward
    assert "fused" in forward
    np.testing.assert_allclose(f(x).value(), 2 * np.tanh(x.value() * 2.0 + 1.0) + 6.0, rtol=1e-6)


# =====================================================================================================
# §6. Neural networks
# =====================================================================================================

# "`layer.forward(x, training=None)` or `layer(x, training=None)`"
def test_s6_layer_call_signatures():
    nn = tg.NeuralNetworks(dtype="float64")
    dense = nn.layers.Dense(3, activation="tanh")
    for method in (type(dense).forward, type(dense).__call__):
        p = params(method)
        assert p[0][2] == POS and p[0][1] is EMPTY  # the input
        assert p[1][:2] == ("training", None)
    x = RNG.normal(size=(5, 4))
    a, b = dense.forward(x), dense(x, training=True)
    W, bias = dense.get_weights()
    np.testing.assert_allclose(a.value(), np.tanh(x @ W + bias), rtol=1e-13)
    np.testing.assert_array_equal(a.value(), b.value())


# "`layer(x, training=None)`": the training flag reaches the layer (Dropout drops only when training)
def test_s6_training_flag():
    drop = tg.NeuralNetworks().layers.Dropout(0.5)
    x = np.ones((4, 100), np.float32)
    np.testing.assert_array_equal(np.asarray(drop(x)), x)
    np.testing.assert_array_equal(np.asarray(drop(x, training=False)), x)
    for out in (np.asarray(drop(x, training=True)), np.asarray(drop.forward(x, True))):
        assert set(np.unique(out)) == {0.0, 2.0}  # dropped, or kept and scaled by 1 / (1 - rate)
        assert 0.3 < np.mean(out == 0) < 0.7


# "A layer builds its weights on first call from the input shape (`input_shape` optional)."
def test_s6_layers_build_on_first_call():
    nn = tg.NeuralNetworks()
    dense = nn.layers.Dense(3)
    assert dense.variables() == []
    dense(np.ones((2, 7), np.float32))
    assert [v.shape for v in dense.variables()] == [(7, 3), (3,)]
    with_shape = nn.layers.Dense(3, input_shape=[7])
    assert with_shape(np.ones((2, 7), np.float32)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"\(7,\).*\(5,\)"):
        with_shape(np.ones((2, 5), np.float32))


# "multi-input layers take a list"
def test_s6_multi_input_layers_take_a_list():
    nn = tg.NeuralNetworks(dtype="float64")
    a, b = f64(RNG.normal(size=(2, 3))), f64(RNG.normal(size=(2, 3)))
    w = RNG.normal(size=(2, 6))
    with tg.GradientTape() as tape:
        c = nn.layers.Concatenate()([a, b])
        s = nn.layers.Add()([a, b])
        loss = tg.reduce_sum(c * w) + tg.reduce_sum(s)
    np.testing.assert_array_equal(c.value(), np.concatenate([a.value(), b.value()], axis=-1))
    np.testing.assert_array_equal(s.value(), a.value() + b.value())
    ga, gb = tape.gradient(loss, [a, b])
    np.testing.assert_array_equal(ga.value(), w[:, :3] + 1)
    np.testing.assert_array_equal(gb.value(), w[:, 3:] + 1)


# "`layer.trainable_variables()`, `layer.variables()`, `layer.get_weights()` / `set_weights()`"
def test_s6_layer_variables_and_weights():
    nn = tg.NeuralNetworks(dtype="float64")
    bn = nn.layers.BatchNormalization()
    x = RNG.normal(size=(8, 3))
    bn(x, training=True)
    assert len(bn.variables()) == 4 and len(bn.trainable_variables()) == 2
    assert all(v.trainable for v in bn.trainable_variables())
    assert set(map(id, bn.trainable_variables())) < set(map(id, bn.variables()))
    dense = nn.layers.Dense(2)
    dense(x)
    weights = dense.get_weights()
    assert all(type(w) is np.ndarray for w in weights)
    new = [RNG.normal(size=(3, 2)), np.array([0.5, -0.5])]
    dense.set_weights(new)
    np.testing.assert_array_equal(dense.get_weights()[0], new[0])
    np.testing.assert_allclose(dense(x).value(), x @ new[0] + new[1], rtol=1e-13)
    np.testing.assert_array_equal([v.value() for v in dense.trainable_variables()][1], new[1])


# "Models: subclass `AbstractModel` (constructor takes `nn`) and define `call`; `model(x, training, trues)`.
#  `model.trainable_variables()` finds layers held in attributes and inside lists, tuples and dicts."
def test_s6_abstract_model_finds_layers_in_containers():
    nn = tg.NeuralNetworks(dtype="float64")

    class M(tg.AbstractModel):
        def __init__(self, builder):
            super().__init__(builder)
            self.first = builder.layers.Dense(4)
            self.blocks = [builder.layers.Dense(4), (builder.layers.Dense(4),)]
            self.heads = {"a": builder.layers.Dense(2), "b": [builder.layers.Dense(2)]}

        def call(self, inputs, training=None, trues=None):
            h = self.blocks[1][0](self.blocks[0](self.first(inputs)))
            out = self.heads["a"](h) + self.heads["b"][0](h)
            return out if trues is None else out * trues

    m = M(nn)
    x = RNG.normal(size=(3, 5))
    y = m(x, True, 2.0)
    params_ = m.trainable_variables()
    layers = [m.first, m.blocks[0], m.blocks[1][0], m.heads["a"], m.heads["b"][0]]
    assert len(params_) == 10
    assert {id(v) for v in params_} == {id(v) for layer in layers for v in layer.trainable_variables()}
    h = x
    for layer in layers[:3]:
        W, b = layer.get_weights()
        h = h @ W + b
    expected = sum(h @ layer.get_weights()[0] + layer.get_weights()[1] for layer in layers[3:]) * 2.0
    np.testing.assert_allclose(y.value(), expected, rtol=1e-12)
    with tg.GradientTape() as tape:
        loss = tg.reduce_sum(m(x, True))
    assert all(gr is not None for gr in tape.gradient(loss, params_))


def _data(n: int = 48):
    x = RNG.normal(size=(n, 4)).astype(np.float32)
    y = ((x[:, 0] + x[:, 1]) > 0).astype(np.int32)
    return x, y


def _sequential(nn=None) -> tg.Sequential:
    nn = nn or tg.NeuralNetworks()
    return tg.Sequential([nn.layers.Dense(8, input_shape=[4], activation="relu"), nn.layers.Dense(2)])


# "`fit(x, y=None, epochs=1, batch_size=32, validation_data=None, shuffle=True, verbose=1, callbacks=None)`"
def test_s6_fit_signature():
    got = params(tg.Sequential.fit)
    documented = [("y", None), ("epochs", 1), ("batch_size", 32), ("validation_data", None), ("shuffle", True),
                  ("verbose", 1), ("callbacks", None)]
    assert got[0][0] == "x"
    names = [n for n, _, _ in got]
    assert [n for n in names if n in dict(documented)] == [n for n, _ in documented]  # in the documented order
    by_name = {n: (d, k) for n, d, k in got}
    for name, default in documented:
        assert by_name[name][0] == default, name
    # written without "*": the documented parameters may be passed by position, in that order
    assert [n for n, _, k in got[:8]] == ["x"] + [n for n, _ in documented] and all(k == POS for _, _, k in got[:8])


# "`Sequential([...])`. `compile(optimizer, loss, metrics)`, `fit(...)` returning a `History` whose `.history` maps
#  names to per-epoch lists, `evaluate`, `predict` (batched), `summary()`"
def test_s6_sequential_compile_fit_evaluate_predict_summary(capsys):
    tg.set_seed(0)
    x, y = _data()
    model = _sequential()
    model.compile(tg.optimizers.Adam(0.05), tg.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    history = model.fit(x, y, 6, 16, (x, y), False, 0)  # by position, in the documented order
    assert isinstance(history, tg.History)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(isinstance(v, list) and len(v) == 6 for v in history.history.values())
    assert history.history["loss"][-1] < history.history["loss"][0]
    history = model.fit(x, y, epochs=2, batch_size=32, validation_data=None, shuffle=True, verbose=0, callbacks=None)
    assert set(history.history) == {"loss", "accuracy"} and len(history.history["loss"]) == 2

    class Count(tg.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs, self.batches = [], 0

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append((epoch, logs["loss"]))

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1

    dataset = tg.NeuralNetworks().data.NDArrayDataset(x, tests=y, batch_size=16, shuffle=False)
    history = model.fit(dataset, epochs=2, verbose=0)  # y=None: x is a dataset of (inputs, trues)
    assert len(history.history["loss"]) == 2 and len(history.history["accuracy"]) == 2

    count = Count()
    history = model.fit(x, y, epochs=3, batch_size=20, verbose=0, callbacks=[count])
    assert [e for e, _ in count.epochs] == [0, 1, 2] and count.batches == 3 * 3  # 48 samples: 20 + 20 + 8
    assert [loss for _, loss in count.epochs] == pytest.approx(history.history["loss"])

    logits = model(x).value().astype(np.float64)
    loss_np = -np.mean(np.log(softmax_np(logits))[np.arange(len(y)), y])
    acc_np = np.mean(np.argmax(logits, axis=1) == y)
    loss, acc = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(loss_np, rel=1e-5) and acc == pytest.approx(acc_np)
    predicted = model.predict(x, batch_size=7)  # 7 batches, the last one partial
    assert predicted.shape == (48, 2)
    np.testing.assert_allclose(np.asarray(predicted), logits, rtol=1e-5, atol=1e-6)

    capsys.readouterr()
    model.summary()
    out = capsys.readouterr().out
    assert "Dense" in out and str(4 * 8 + 8 + 8 * 2 + 2) in out


# "`save(path)`, `tapegrad.load_model(path)`, `save_weights` / `load_weights`. Saved files hold no pickles."
def test_s6_save_load_and_no_pickles(tmp_path, monkeypatch):
    import pickle

    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle used")

    for name in ("dump", "dumps", "load", "loads", "Pickler", "Unpickler"):
        monkeypatch.setattr(pickle, name, no_pickle)
    x, y = _data()
    model = _sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "model.tgm")
    loaded = tg.load_model(tmp_path / "model.tgm")
    np.testing.assert_array_equal(np.asarray(loaded.predict(x)), np.asarray(model.predict(x)))
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)

    model.save_weights(tmp_path / "weights.tgm")
    other = _sequential()
    other(x[:1])
    other.load_weights(tmp_path / "weights.tgm")
    np.testing.assert_array_equal(np.asarray(other.predict(x)), np.asarray(model.predict(x)))

    for path in (tmp_path / "model.tgm", tmp_path / "weights.tgm"):
        raw = path.read_bytes()
        assert not raw.startswith((b"\x80", b"PK"))  # neither a pickle nor a .npz
        magic_len = raw.index(b"\n\x1a\n") + 3
        _version, header_len = struct.unpack("<IQ", raw[magic_len:magic_len + 12])
        header = json.loads(raw[magic_len + 12:magic_len + 12 + header_len])
        assert header["arrays"] and all(np.dtype(a["dtype"]).kind in "fiub" for a in header["arrays"])


# "`nn.losses`, `nn.optimizers`, `nn.metrics`, `nn.data` as in Rindow (seed examples), with the defaults of
#  Rindow / Keras (Adam: lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7)."
def test_s6_adam_defaults():
    d = defaults(tg.optimizers.Adam)
    assert (d["learning_rate"], d["beta_1"], d["beta_2"], d["epsilon"]) == (0.001, 0.9, 0.999, 1e-7)
    adam = tg.NeuralNetworks().optimizers.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    # the Rindow spellings of the same options
    rindow = tg.optimizers.Adam(lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7)
    assert (rindow.learning_rate, rindow.beta_1, rindow.beta_2, rindow.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert tg.optimizers.Adam(lr=0.05, beta1=0.5, beta2=0.75).get_config()["beta_2"] == 0.75


def test_s6_adam_default_steps_match_the_formula():
    p0 = np.array([1.0, -2.0, 0.5])
    grads = [np.array([0.3, -1.0, 2.0]), np.array([-0.2, 0.4, 1.0]), np.array([0.1, 0.1, -3.0])]
    w = f64(p0)
    opt = tg.optimizers.Adam()
    p, m, v = p0.copy(), np.zeros(3), np.zeros(3)
    for t, grad in enumerate(grads, start=1):
        opt.update([w], [grad])
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        p = p - 0.001 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-7)
        np.testing.assert_allclose(w.value(), p, rtol=1e-12)


def test_s6_sgd_and_rindow_builders():
    nn = tg.NeuralNetworks(dtype="float64")
    w = f64([1.0, 2.0])
    nn.optimizers.SGD().update([w], [np.array([1.0, -3.0])])
    np.testing.assert_allclose(w.value(), [1.0 - 0.01, 2.0 + 0.03], rtol=1e-15)  # Rindow/Keras lr=0.01
    acc = nn.metrics.SparseCategoricalAccuracy()
    acc.update_state(np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]))
    assert float(acc.result()) == pytest.approx(2 / 3)


# The seed's custom training loop (seeds 000/001/003), in Python as API.md §1 maps it: it learns.
def test_s6_seed_custom_training_loop_learns():
    tg.set_seed(0)
    nn = tg.NeuralNetworks()
    g, K = nn.gradient(), nn.backend()

    class TestModel(tg.AbstractModel):
        def __init__(self, builder):
            super().__init__(builder)
            self.dense1 = builder.layers.Dense(128, input_shape=[2], activation="sigmoid")
            self.dense2 = builder.layers.Dense(2)

        def call(self, inputs, training=None, trues=None):
            return self.dense2.forward(self.dense1.forward(inputs, training), training)

    model = TestModel(nn)
    lossfunc = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = nn.optimizers.Adam()
    x = np.array([[1, 3], [1, 4], [2, 4], [3, 1], [4, 1], [4, 2]], dtype=np.float32)
    t = np.array([0, 0, 0, 1, 1, 1], dtype=np.int32)
    dataset = nn.data.NDArrayDataset(x, tests=t, batch_size=64, shuffle=False)
    history = []
    for _epoch in range(100):
        total = 0.0
        for inputs, trues in dataset:
            with g.GradientTape() as tape:
                predicts = model(g.Variable(inputs), True, g.Variable(trues))
                loss = lossfunc(trues, predicts)
            params_ = model.trainable_variables()
            optimizer.update(params_, tape.gradient(loss, params_))
            total += K.scalar(loss.value())
        history.append(total)
    assert len(model.trainable_variables()) == 4
    assert history[-1] < 0.5 * history[0]
    assert np.array_equal(np.argmax(model(x).value(), axis=1), t)


# =====================================================================================================
# §7. Errors
# =====================================================================================================

# "e.g. `matmul: shapes (2, 3) and (4, 5) are not aligned: 3 (dim 1 of x) != 4 (dim 0 of y)`"
def test_s7_matmul_message():
    with pytest.raises(ValueError) as info:
        tg.matmul(np.ones((2, 3), np.float32), np.ones((4, 5), np.float32))
    assert str(info.value) == "matmul: shapes (2, 3) and (4, 5) are not aligned: 3 (dim 1 of x) != 4 (dim 0 of y)"


# "Bad input raises a subclass of `ValueError` or `TypeError` whose message names the op or layer, the argument and
#  the shapes or dtypes involved"
BAD = [
    ("add", lambda: tg.add(np.ones((2, 3)), np.ones((4, 5))), ["add", "(2, 3)", "(4, 5)"]),
    ("operator", lambda: tg.Variable(np.ones((2, 3))) * np.ones(2), ["mul", "(2, 3)", "(2,)"]),
    ("mul str", lambda: tg.mul(np.ones(2), "abc"), ["mul", "y", "str"]),
    ("reshape", lambda: tg.reshape(np.ones((2, 3)), (4, 2)), ["reshape", "(2, 3)", "(4, 2)"]),
    ("reduce axis", lambda: tg.reduce_sum(np.ones((2, 3)), axis=2), ["reduce_sum", "axis"]),
    ("concat", lambda: tg.concat([np.ones((2, 3)), np.ones((4, 5))], axis=0), ["concat", "(2, 3)", "(4, 5)"]),
    ("gather", lambda: tg.gather(np.ones((2, 3)), np.array([0.5])), ["gather", "float64"]),
    ("Variable", lambda: tg.Variable("abc"), ["Variable", "str"]),
    ("Dense", lambda: tg.layers.Dense(2, input_shape=[3])(np.ones((2, 4), np.float32)), ["dense", "(3,)", "(4,)"]),
    ("loss", lambda: tg.losses.MeanSquaredError()(np.ones((2, 3)), np.ones((2, 4))), ["(2, 3)", "(2, 4)"]),
    ("gradient", lambda: tg.GradientTape().gradient(tg.Variable(1.0), [np.ones(2)]), ["sources", "ndarray"]),
]


@pytest.mark.parametrize("what, call, words", BAD, ids=[b[0] for b in BAD])
def test_s7_bad_input_errors_name_the_op_and_shapes(what, call, words):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{what}: {word!r} not in {message!r}"


# "Nothing already computed or saved is lost when an error is raised."
def test_s7_nothing_computed_is_lost():
    x = f64([1.0, 2.0, 3.0])
    with tg.GradientTape() as tape:
        y = x * 2.0
        with pytest.raises(ValueError):
            tg.add(y, np.ones(2))
        z = tg.reduce_sum(y * y)
    np.testing.assert_allclose(tape.gradient(z, x).value(), 8 * x.value())

    labels = tg.Variable(np.array([1, 2]), name="labels")
    with tg.GradientTape() as once:  # a failed gradient call does not use up a non-persistent tape
        y = tg.reduce_sum(x[:2] * x[:2] * labels)
    with pytest.raises(TypeError):
        once.gradient(y, [x, labels])
    with pytest.raises(ValueError):
        once.gradient(y, x, unconnected_gradients="sometimes")
    with pytest.raises(ValueError):
        once.gradient(y, x, output_gradients=np.ones(3))
    np.testing.assert_allclose(once.gradient(y, x).value(), [2.0, 8.0, 0.0])

    v = tg.Variable([1.0, 2.0])
    with pytest.raises(ValueError):
        v.assign([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(v.value(), [1.0, 2.0])

    w = f64(np.ones((2, 3)))
    opt = tg.optimizers.Adam(0.1)
    opt.update([w], [np.ones((2, 3))])
    before, state = w.value().copy(), {k: np.copy(s) for k, s in opt.get_state().items()}
    with pytest.raises(ValueError):
        opt.update([w], [np.ones((3, 2))])
    np.testing.assert_array_equal(w.value(), before)
    assert opt.iterations == 1
    for key, value in opt.get_state().items():
        np.testing.assert_array_equal(value, state[key])

    dense = tg.layers.Dense(2, dtype="float64")
    dense(np.ones((1, 3)))
    weights = dense.get_weights()
    with pytest.raises(ValueError):
        dense.set_weights([np.ones((3, 2)), np.ones(5)])
    for a, b in zip(dense.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


def test_s7_nothing_saved_is_lost(tmp_path):
    x, _ = _data()
    model = _sequential()
    model(x[:1])
    path = tmp_path / "model.tgm"
    model.save(path)
    saved = path.read_bytes()

    class Unsavable(tg.AbstractModel):
        def __init__(self, builder):
            super().__init__(builder)
            self.d = builder.layers.Dense(2)

        def call(self, inputs):
            return self.d(inputs)

        def get_config(self):
            return {"thing": object()}

    bad = Unsavable(tg.NeuralNetworks())
    bad(x[:1])
    with pytest.raises((ValueError, TypeError)):
        bad.save(path)
    assert path.read_bytes() == saved
    wider = tg.Sequential([tg.layers.Dense(9, input_shape=[4]), tg.layers.Dense(2)])
    wider(x[:1])
    before = wider.get_weights()
    with pytest.raises(ValueError, match=r"\(4, 8\).*\(4, 9\)"):
        wider.load_weights(path)
    for a, b in zip(wider.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tgm"]
