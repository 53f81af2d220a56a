"""The builder facade: NeuralNetworks, g = nn.gradient(), K = nn.backend(), nn.with_."""

import numpy as np
import pytest

import tapegrad as tg


def test_gradient_builder_exposes_ops_and_classes():
    nn = tg.NeuralNetworks()
    g = nn.gradient()
    assert g.GradientTape is tg.GradientTape
    assert g.mul is tg.mul and g.reduce_sum is tg.reduce_sum and g.stop_gradient is tg.stop_gradient
    assert g.grad is tg.grad and g.custom_gradient is tg.custom_gradient
    with pytest.raises(AttributeError, match="no op 'frobnicate'"):
        _ = g.frobnicate


def test_with_returns_the_function_result_and_records():
    nn = tg.NeuralNetworks(dtype="float64")
    g = nn.gradient()
    x = g.Variable(3.0)
    tape = g.GradientTape()
    y, z = nn.with_(tape, lambda: (x * x, x + 1.0))
    assert float(y) == 9.0 and float(z) == 4.0
    assert float(tape.gradient(y, x)) == 6.0
    assert x.dtype == np.float64


def test_backend_helpers():
    nn = tg.NeuralNetworks()
    K = nn.backend()
    v = tg.Variable([[1.0, 5.0, 2.0], [7.0, 0.0, 1.0]])
    assert K.scalar(tg.Variable(2.5)) == 2.5 and isinstance(K.scalar(tg.Variable(2.5)), float)
    assert K.scalar(np.array([3])) == 3
    a = K.array([[1, 2]])
    assert a.dtype == np.float32 and a.shape == (1, 2)
    assert K.array([1, 2], dtype="int32").dtype == np.int32
    assert K.zeros((2, 3)).dtype == np.float32 and K.ones(2).sum() == 2
    assert K.argmax(v) == 3  # Rindow (and NumPy): without an axis, the index into the flattened array
    np.testing.assert_array_equal(K.argmax(v, axis=-1), [1, 0])
    np.testing.assert_array_equal(K.argmax(v, axis=0), [1, 0, 0])
    assert K.cast(v, "int32").dtype == np.int32
    assert K.shape(v) == (2, 3) and K.ndim(v) == 2
    assert K.sum(v) == 16.0 and K.max(v, axis=1).tolist() == [5.0, 7.0]
    np.testing.assert_array_equal(K.onehot(np.array([0, 2]), 3), [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_allclose(K.sqrt(v), np.sqrt(v.value()))  # anything else: NumPy's
    assert K.to_string(v) == "[[1,5,2],[7,0,1]]"
    assert K.random_uniform((3,), seed=1).dtype == np.float32
    copied = K.copy(v)
    copied[0, 0] = 100.0
    assert v.value()[0, 0] == 1.0


def test_float64_builder_makes_float64_everything():
    nn = tg.NeuralNetworks(dtype="float64")
    g, K = nn.gradient(), nn.backend()
    assert g.Variable([1, 2]).dtype == np.float64
    assert g.ones((2,)).dtype == np.float64
    assert K.array([1.0]).dtype == np.float64
    assert K.dtype == np.float64


def test_to_string_formats_like_rindow():
    assert tg.to_string(tg.Variable([2, 3])) == "[2,3]"
    assert tg.to_string(tg.Variable(6.0)) == "6"
    assert tg.to_string(tg.Variable([[1.5, -2.0], [0.25, 1e-3]])) == "[[1.5,-2],[0.25,0.001]]"
    assert tg.to_string(np.array([True, False])) == "[true,false]"
    assert tg.to_string(np.array([1, 2], np.int32)) == "[1,2]"
    assert tg.to_string(tg.Variable(0.1)) == "0.1"  # float32 0.1 prints as 0.1


def test_everything_public_is_importable_from_the_package():
    for name in ["Variable", "GradientTape", "NeuralNetworks", "grad", "value_and_grad", "jacobian", "hessian",
                 "gradcheck", "custom_gradient", "mul", "matmul", "reduce_sum", "log_softmax", "to_string"]:
        assert getattr(tg, name) is not None
    assert "NeuralNetworks" in dir(tg)
