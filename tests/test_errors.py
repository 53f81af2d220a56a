"""Bad input, collected in one place (API §7).

Each case says what was tried and which words the error must contain: the op (or
method), the argument, and the shapes or dtypes. Every error is a ValueError or
TypeError subclass, and a failed call loses nothing already computed.
"""

import numpy as np
import pytest

import tapegrad as tg

x23 = tg.Variable(np.ones((2, 3), np.float32))
x45 = tg.Variable(np.ones((4, 5), np.float32))
v3 = tg.Variable(np.ones(3, np.float32))

BAD_CALLS = [
    # (what was tried, call, exception type, words the message must contain)
    ("matmul misaligned", lambda: tg.matmul(x23, x45), ValueError,
     ["matmul", "(2, 3)", "(4, 5)", "3 (dim 1 of x) != 4 (dim 0 of y)"]),
    ("matmul misaligned with transpose_b", lambda: tg.matmul(x23, x45, transpose_b=True), ValueError,
     ["matmul", "transpose_b", "(2, 3)", "(4, 5)"]),
    ("matmul of a scalar", lambda: tg.matmul(tg.Variable(2.0), x23), ValueError, ["matmul", "()"]),
    ("@ misaligned", lambda: x23 @ x45, ValueError, ["matmul", "not aligned"]),
    ("add shapes that do not broadcast", lambda: tg.add(x23, x45), ValueError,
     ["add", "broadcast", "x (2, 3)", "y (4, 5)"]),
    ("operator * that does not broadcast", lambda: x23 * v3[:2], ValueError, ["mul", "(2, 3)", "(2,)"]),
    ("where with mismatched branches", lambda: tg.where(x23 > 0, x23, x45), ValueError, ["where", "(2, 3)", "(4, 5)"]),
    ("a string operand", lambda: tg.mul(x23, "abc"), TypeError, ["mul", "argument y", "str"]),
    ("None operand", lambda: tg.add(None, x23), TypeError, ["add", "argument x", "NoneType"]),
    ("an object operand", lambda: tg.exp(object()), TypeError, ["exp", "argument x", "object"]),
    ("a string array", lambda: tg.log(np.array(["a", "b"])), TypeError, ["log", "argument x", "<U1"]),
    ("operator with None", lambda: x23 + None, TypeError, ["add", "NoneType"]),
    ("reshape to a wrong size", lambda: tg.reshape(x23, (4, 2)), ValueError, ["reshape", "(2, 3)", "(4, 2)"]),
    ("reduce over a missing axis", lambda: tg.reduce_sum(x23, axis=2), ValueError, ["reduce_sum", "axis 2", "rank 2"]),
    ("reduce with a bad axis type", lambda: tg.reduce_mean(x23, axis="rows"), TypeError,
     ["reduce_mean", "argument axis", "'rows'"]),
    ("softmax over a missing axis", lambda: tg.softmax(v3, axis=1), ValueError, ["softmax", "axis 1"]),
    ("transpose with a bad perm", lambda: tg.transpose(x23, (0, 0)), ValueError, ["transpose", "(0, 0)", "(2, 3)"]),
    ("concat of mismatched shapes", lambda: tg.concat([x23, x45], axis=0), ValueError,
     ["concat", "(2, 3)", "(4, 5)"]),
    ("concat of nothing", lambda: tg.concat([]), TypeError, ["concat", "non-empty list"]),
    ("split into unequal sizes", lambda: tg.split(x23, [1, 1], axis=1), ValueError, ["split", "[1, 1]", "3"]),
    ("gather out of range", lambda: tg.gather(x23, [0, 5], axis=0), ValueError, ["gather", "index 5", "(2, 3)"]),
    ("gather with float indices", lambda: tg.gather(x23, np.array([0.5])), TypeError, ["gather", "float64"]),
    ("index out of range", lambda: x23[5], ValueError, ["getitem", "index 5", "size 2"]),
    ("index with a float array", lambda: x23[np.array([0.5])], TypeError, ["getitem", "float64"]),
    ("index with a string", lambda: x23["a"], TypeError, ["getitem", "str"]),
    ("one_hot out of range", lambda: tg.one_hot(np.array([0, 3]), 3), ValueError, ["one_hot", "index 3", "depth 3"]),
    ("one_hot of floats", lambda: tg.one_hot(np.array([0.0]), 3), TypeError, ["one_hot", "float"]),
    ("squeeze a non-1 axis", lambda: tg.squeeze(x23, axis=0), ValueError, ["squeeze", "axis 0", "(2, 3)"]),
    ("repeat with negative count", lambda: tg.repeat(v3, -1), ValueError, ["repeat", "-1"]),
    ("cast to a non-dtype", lambda: tg.cast(v3, "banana"), TypeError, ["cast", "banana"]),
    ("cast to complex", lambda: tg.cast(v3, np.complex64), TypeError, ["cast", "complex64"]),
    ("Variable of strings", lambda: tg.Variable("abc"), TypeError, ["Variable", "str"]),
    ("Variable of a ragged list", lambda: tg.Variable([[1, 2], [3]]), TypeError, ["Variable", "ragged"]),
    ("Variable of None", lambda: tg.Variable(None), TypeError, ["Variable", "NoneType"]),
    ("Variable with a bad dtype", lambda: tg.Variable(1.0, dtype="float7"), TypeError, ["Variable", "float7"]),
    ("assign of another shape", lambda: v3.assign([1.0, 2.0]), ValueError, ["assign", "(2,)", "(3,)"]),
    ("assign of another dtype", lambda: v3.assign(np.ones(3, np.int64)), TypeError, ["assign", "int64", "float32"]),
    ("float() of a vector", lambda: float(v3), TypeError, ["float", "(3,)"]),
    ("NeuralNetworks with an int dtype", lambda: tg.NeuralNetworks(dtype="int32"), TypeError,
     ["NeuralNetworks", "int32"]),
    ("K.scalar of a vector", lambda: tg.NeuralNetworks().backend().scalar(v3), TypeError, ["scalar", "(3,)"]),
    ("gradcheck with order 3", lambda: tg.gradcheck(tg.exp, [np.ones(2)], order=3), ValueError,
     ["gradcheck", "order"]),
    ("grad of a non-float argument", lambda: tg.grad(lambda i: i * 2)(np.array([1, 2])), TypeError,
     ["grad", "int64"]),
    # issue 8: errors that blamed the wrong argument, or came from NumPy, or did not come at all
    ("scale by a string", lambda: tg.scale("two", v3), TypeError, ["scale", "argument alpha", "str"]),
    ("Dense on strings", lambda: tg.layers.Dense(2, name="d")(np.array([["a", "b"]])), TypeError,
     ["Dense", "'d'", "<U1", "(1, 2)", "strings"]),
    ("predict on strings", lambda: _model().predict(np.array([["a", "b", "c", "d"]]), verbose=0), TypeError,
     ["predict", "strings", "<U1", "(1, 4)"]),
    ("fit on a list of strings", lambda: _model().fit(["a", "b"], np.zeros((2, 2)), verbose=0), TypeError,
     ["fit", "strings", "2 str"]),
    ("fit on 0 samples", lambda: _model().fit(np.zeros((0, 4)), np.zeros((0, 2)), verbose=0), ValueError,
     ["fit", "0 samples", "(0, 4)"]),
    ("item assignment", lambda: v3.__setitem__(0, 5), TypeError, ["immutable", "assign", "where"]),
    ("truth value of a vector", lambda: bool(v3 > 0), ValueError, ["(3,)", "ambiguous", "any()", "all()"]),
    ("np.sum with out=", lambda: np.sum(v3, out=np.zeros(())), ValueError, ["sum", "out=", "immutable"]),
    ("reduce_sum with a float axis", lambda: tg.reduce_sum(x23, axis=1.7), TypeError,
     ["reduce_sum", "argument axis", "1.7"]),
    ("Adam with a negative learning rate", lambda: tg.optimizers.Adam(learning_rate=-0.1), ValueError,
     ["Adam", "learning_rate", "-0.1"]),
    ("Adam with a NaN epsilon", lambda: tg.optimizers.Adam(epsilon=float("nan")), ValueError,
     ["Adam", "epsilon", "nan"]),
    ("BatchNormalization with a negative epsilon", lambda: tg.layers.BatchNormalization(epsilon=-1, name="bn"),
     ValueError, ["BatchNormalization 'bn'", "epsilon", "-1"]),
    ("BatchNormalization with momentum 2", lambda: tg.layers.BatchNormalization(momentum=2, name="bn"),
     ValueError, ["BatchNormalization 'bn'", "momentum", "2"]),
    ("binary crossentropy with labels 2 and -1",
     lambda: tg.losses.BinaryCrossentropy()(np.array([2.0, -1.0]), np.array([0.3, 0.6])), ValueError,
     ["BinaryCrossentropy", "trues", "[0, 1]", "2.0"]),
    ("an LSTM of 2**40 units", lambda: tg.layers.LSTM(2**40, name="l"), ValueError, ["LSTM 'l'", "units", str(2**40)]),
    ("a checkpoint named .keras", lambda: tg.callbacks.ModelCheckpoint("ckpt.keras"), ValueError,
     ["ModelCheckpoint", "'ckpt.keras'", ".tgm"]),
]


def _model():
    nn = tg.NeuralNetworks()
    model = nn.models.Sequential([nn.layers.Dense(2, input_shape=(4,))])
    model.compile(loss="mse", optimizer="adam")
    return model


@pytest.mark.parametrize("what, call, exc_type, words", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_gives_a_clear_error(what, call, exc_type, words):
    with pytest.raises(exc_type) as info:
        call()
    assert isinstance(info.value, (ValueError, TypeError))
    message = str(info.value)
    for word in words:
        assert word in message, f"{what}: {word!r} not in {message!r}"


def tape_with_result():
    x = tg.Variable([1.0, 2.0], name="weights")
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(x * x)
    return tape, x, y


def test_gradient_of_an_integer_source_names_it():
    tape, x, y = tape_with_result()
    labels = tg.Variable(np.array([0, 1], np.int32), name="labels")
    with pytest.raises(TypeError, match="source 'labels' has dtype int32"):
        tape.gradient(y, [x, labels])


def test_second_gradient_call_on_a_non_persistent_tape():
    tape, x, y = tape_with_result()
    tape.gradient(y, x)
    with pytest.raises(RuntimeError, match="GradientTape.*persistent=True"):
        tape.gradient(y, x)


def test_target_that_is_not_a_variable():
    tape, x, y = tape_with_result()
    with pytest.raises(TypeError, match="target must be a Variable.*ndarray"):
        tape.gradient(y.value(), x)
    assert float(tape.gradient(y, x)[0]) == 2.0  # the failed call lost nothing


def test_source_that_is_not_a_variable():
    tape, x, y = tape_with_result()
    with pytest.raises(TypeError, match=r"sources\[1\] must be a Variable.*ndarray"):
        tape.gradient(y, [x, np.ones(2)])


def test_output_gradients_of_the_wrong_shape():
    tape, x, y = tape_with_result()
    with pytest.raises(ValueError, match=r"output_gradients has shape \(3,\).*target has shape \(\)"):
        tape.gradient(y, x, output_gradients=np.ones(3, np.float32))


def test_a_failed_op_inside_a_tape_loses_nothing():
    x = tg.Variable([1.0, 2.0, 3.0])
    with tg.GradientTape() as tape:
        y = x * 2.0
        with pytest.raises(ValueError):
            tg.add(y, tg.Variable(np.ones(2, np.float32)))
        z = tg.reduce_sum(y * y)
    np.testing.assert_allclose(tape.gradient(z, x).value(), 8 * x.value())


def test_nan_and_inf_propagate_without_crashing_the_tape():
    x = tg.Variable(np.array([np.nan, np.inf, -np.inf, 1.0], np.float64))
    with np.errstate(all="ignore"), tg.GradientTape() as tape:
        y = tg.reduce_sum(tg.exp(x) * x + tg.log(x))
    with np.errstate(all="ignore"):
        gx = tape.gradient(y, x).value()
        expected = np.exp(x.value()) * x.value() + np.exp(x.value()) + 1 / x.value()
    np.testing.assert_array_equal(np.isnan(gx), np.isnan(expected))
    np.testing.assert_allclose(gx[3], expected[3])
