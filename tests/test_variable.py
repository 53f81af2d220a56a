"""Variable: copying, dtype rules, value()/assign(), operators, indexing (API §2)."""

import copy

import numpy as np
import pytest

import tapegrad as tg


def test_variable_copies_its_value():
    value = np.array([2.0, 3.0], dtype=np.float32)
    a = tg.Variable(value)
    value[0] = 0
    np.testing.assert_array_equal(a.value(), [2.0, 3.0])
    b = tg.Variable(a)
    a.assign([7.0, 8.0])
    np.testing.assert_array_equal(b.value(), [2.0, 3.0])


@pytest.mark.parametrize(
    "value, dtype",
    [
        (2.0, np.float32),
        (2, np.float32),
        ([1, 2], np.float32),
        ([[1.5, 2.5]], np.float32),
        (np.array([1.0], np.float64), np.float64),
        (np.array([1.0], np.float16), np.float16),
        (np.array([1, 2], np.int32), np.int32),
        (np.array([1, 2], np.int64), np.int64),
        (np.array([True, False]), np.bool_),
        (True, np.bool_),
    ],
)
def test_dtype_rules(value, dtype):
    assert tg.Variable(value).dtype == dtype


def test_dtype_argument_and_nn_dtype():
    assert tg.Variable(1.0, dtype="float64").dtype == np.float64
    assert tg.Variable(np.ones(2, np.float32), dtype=np.float64).dtype == np.float64
    g = tg.NeuralNetworks(dtype="float64").gradient()
    assert g.Variable(1.0).dtype == np.float64
    assert g.Variable([1, 2]).dtype == np.float64
    assert g.Variable(np.ones(2, np.float32)).dtype == np.float32  # arrays keep their dtype
    assert g.zeros((2,)).dtype == np.float64


def test_float64_end_to_end():
    x = tg.Variable(np.array([0.1, 0.2]), dtype="float64")
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(tg.exp(x * 3.0) / (x + 1))
    (gx,) = tape.gradient(y, [x])
    assert y.dtype == np.float64 and gx.dtype == np.float64
    expected = np.exp(3 * x.value()) * (3 * (x.value() + 1) - 1) / (x.value() + 1) ** 2
    np.testing.assert_allclose(gx.value(), expected, rtol=1e-14)


def test_integer_and_bool_variables_are_constants():
    i = tg.Variable(np.array([1, 2, 3], np.int32))
    x = tg.Variable([1.0, 2.0, 3.0])
    assert not i.trainable or i.dtype.kind == "i"
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(x * i)
    gx = tape.gradient(y, x)
    np.testing.assert_array_equal(gx.value(), [1, 2, 3])
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(x * i)
    with pytest.raises(TypeError, match="int32"):
        tape.gradient(y, i)


def test_value_numpy_float_len_repr():
    v = tg.Variable([[1.0, 2.0], [3.0, 4.0]], name="w")
    assert isinstance(v.value(), np.ndarray) and v.numpy() is v.value()
    assert np.asarray(v) is v.value()
    assert v.shape == (2, 2) and v.ndim == 2 and v.size == 4 and len(v) == 2
    assert float(tg.Variable(2.5)) == 2.5
    assert str(v) == str(v.value())
    assert repr(v).startswith("Variable([[1., 2.],") and "name='w'" in repr(v)
    s = tg.Variable(6.0) * 1.0
    assert isinstance(s.value(), np.ndarray) and s.value().shape == ()


def test_assign_in_place_and_errors():
    v = tg.Variable([1.0, 2.0])
    ident = id(v)
    v.assign(np.array([3.0, 4.0], np.float32))
    assert id(v) == ident
    np.testing.assert_array_equal(v.value(), [3.0, 4.0])
    v.assign([5, 6])  # Python lists take the Variable's dtype
    np.testing.assert_array_equal(v.value(), [5.0, 6.0])
    with pytest.raises(ValueError, match=r"shape \(3,\) does not match.*\(2,\)"):
        v.assign([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="float64 does not match.*float32"):
        v.assign(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(v.value(), [5.0, 6.0])  # a failed assign changes nothing


def test_assign_to_a_view_does_not_change_the_source():
    x = tg.Variable([[1.0, 2.0], [3.0, 4.0]])
    row = x[0]
    row.assign([9.0, 9.0])
    np.testing.assert_array_equal(x.value(), [[1.0, 2.0], [3.0, 4.0]])


def test_operators_and_reflected_operators():
    x = tg.Variable([1.0, 2.0, 4.0])
    arr = np.array([10.0, 20.0, 40.0], np.float32)
    cases = {
        "x+arr": (lambda: x + arr, arr + x.value()),
        "arr+x": (lambda: arr + x, arr + x.value()),
        "arr-x": (lambda: arr - x, arr - x.value()),
        "2*x": (lambda: 2.0 * x, 2.0 * x.value()),
        "arr/x": (lambda: arr / x, arr / x.value()),
        "2**x": (lambda: 2.0**x, 2.0 ** x.value()),
        "x**2": (lambda: x**2, x.value() ** 2),
        "-x": (lambda: -x, -x.value()),
        "abs": (lambda: abs(-x), x.value()),
        "arr*x": (lambda: arr * x, arr * x.value()),
    }
    for name, (fn, expected) in cases.items():
        with tg.GradientTape() as tape:
            y = fn()
            total = tg.reduce_sum(y)
        assert isinstance(y, tg.Variable), name
        np.testing.assert_allclose(y.value(), expected, rtol=1e-6, err_msg=name)
        assert tape.gradient(total, x) is not None, name


def test_matmul_operator_with_array_on_the_left():
    w = tg.Variable(np.eye(3, dtype=np.float32) * 2)
    a = np.ones((2, 3), np.float32)
    with tg.GradientTape() as tape:
        y = a @ w
    assert isinstance(y, tg.Variable)
    np.testing.assert_allclose(tape.gradient(y, w).value(), a.T @ np.ones((2, 3)))


def test_comparisons_are_bool_and_eq_is_identity():
    x = tg.Variable([1.0, 2.0, 3.0])
    assert (x > 1.5).dtype == np.bool_
    np.testing.assert_array_equal((x <= 2.0).value(), [True, True, False])
    y = tg.Variable([1.0, 2.0, 3.0])
    assert (x == x) is True and (x == y) is False
    d = {x: 1, y: 2}
    assert d[x] == 1 and d[y] == 2
    np.testing.assert_array_equal(tg.equal(x, y).value(), [True, True, True])


def test_indexing_is_differentiable():
    x = tg.Variable(np.arange(12, dtype=np.float32).reshape(3, 4))
    with tg.GradientTape(persistent=True) as tape:
        a = x[0]
        b = x[:, 1:3]
        c = x[[0, 0, 2]]  # repeated rows accumulate
        d = x[x.value() > 5]
        e = x[..., None, 2]
    assert tape.gradient(a, x).value().tolist()[0] == [1, 1, 1, 1]
    np.testing.assert_array_equal(tape.gradient(b, x).value(), np.tile([0, 1, 1, 0], (3, 1)))
    np.testing.assert_array_equal(tape.gradient(c, x).value()[:, 0], [2, 0, 1])
    np.testing.assert_array_equal(tape.gradient(d, x).value(), (x.value() > 5).astype(np.float32))
    assert e.shape == (3, 1) and tape.gradient(e, x).value()[:, 2].tolist() == [1, 1, 1]
    idx = tg.Variable(np.array([2, 1]))
    np.testing.assert_array_equal(x[idx].value(), x.value()[[2, 1]])


def test_iteration_and_copy():
    x = tg.Variable([[1.0, 2.0], [3.0, 4.0]])
    rows = list(x)
    assert len(rows) == 2 and rows[1].value().tolist() == [3.0, 4.0]
    y = copy.deepcopy(x)
    y.assign([[0.0, 0.0], [0.0, 0.0]])
    assert x.value()[0, 0] == 1.0


def test_trainable_flag():
    x = tg.Variable([1.0], trainable=False)
    with tg.GradientTape() as tape:
        y = x * 2.0
    assert tape.gradient(y, x) is None
    x.trainable = True
    with tg.GradientTape() as tape:
        y = x * 2.0
    assert float(tape.gradient(y, x)) == 2.0
