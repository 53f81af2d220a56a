"""Silent wrong results that outside test suites found (issue 8, item 1): each test failed on
the code before its fix, with a wrong number and no error."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_check import assert_compiled_matches_eager

import tapegrad as tg

# -- a compiled Function reads integer and bool arguments at every call -------------------------


def test_integer_index_arguments_are_data_not_constants_of_the_graph():
    W = np.arange(12.0).reshape(4, 3)
    f = tg.Function(lambda W, idx: tg.gather(W, idx, axis=0))
    np.testing.assert_array_equal(f(W, np.array([0, 1])).numpy(), W[[0, 1]])
    np.testing.assert_array_equal(f(W, np.array([2, 2])).numpy(), W[[2, 2]])
    assert f.trace_count == 1


@pytest.mark.parametrize("index", [
    lambda W, idx: W[idx],
    lambda W, idx: W[tg.cast(idx, "int64")],
    lambda W, idx: W[idx, 1:],
    lambda W, idx: tg.gather(W, idx, axis=0),
])
def test_indexing_by_an_argument_follows_it_with_gradients(index):
    W = np.arange(12.0).reshape(4, 3)
    assert_compiled_matches_eager(index, [W, np.array([0, 1])], [W * 2, np.array([3, 3])], [W, np.array([2, 0])],
                                  order=2)


def test_a_bool_mask_argument_inside_a_function_is_a_clear_error():
    f = tg.Function(lambda x, m: x[m])
    with pytest.raises(tg.compiler.TracingError, match="boolean mask"):
        f(np.arange(4.0), np.array([True, False, True, False]))
    # eagerly it is NumPy's boolean indexing
    np.testing.assert_array_equal(tg.Variable(np.arange(4.0))[np.array([True, False, True, False])].numpy(), [0, 2])


def test_per_element_repeats_given_as_an_argument_are_refused_not_baked():
    f = tg.Function(lambda x, r: tg.repeat(x, r, axis=0))
    with pytest.raises(tg.compiler.TracingError, match="repeat"):
        f(np.arange(3.0), np.array([1, 2, 0]))


def test_an_integer_scalar_argument_is_data():
    x = np.arange(10.0)
    assert_compiled_matches_eager(lambda x, i: x[i] * 2.0, [x, np.int64(3)], [x, np.int64(7)], order=1)


# -- custom_gradient inside a Function ------------------------------------------------------------
@tg.custom_gradient
def clipped_square(x):
    y = x * x

    def backward(dy):
        return tg.clip_by_value(dy * 2.0 * x, -1.0, 1.0)

    return y, backward


def test_custom_gradient_inside_a_function_follows_the_inputs_and_gives_its_gradient():
    xs = [np.array([0.1, -0.3, 2.0]), np.array([5.0, 0.2, -0.05])]
    f = tg.Function(lambda x: tg.reduce_sum(clipped_square(x) * 3.0))
    for x in xs + xs:
        v = tg.Variable(x)
        with tg.GradientTape() as tape:
            y = f(v)
        assert float(y) == pytest.approx(3.0 * np.sum(x * x))
        np.testing.assert_allclose(tape.gradient(y, v).numpy(), np.clip(6.0 * x, -1.0, 1.0))
    assert f.trace_count == 1


def test_custom_gradient_with_a_tape_inside_the_function():
    def step(x):
        with tg.GradientTape() as tape:
            tape.watch(x)
            y = tg.reduce_sum(clipped_square(x))
        return y, tape.gradient(y, x)

    assert_compiled_matches_eager(step, [np.array([0.1, -0.3, 2.0])], [np.array([5.0, 0.2, -0.05])], order=0)


def test_custom_gradient_second_derivative_through_a_function():
    @tg.custom_gradient
    def cube(x):
        def backward(dy):
            return dy * 3.0 * x * x
        return x * x * x, backward

    f = tg.Function(lambda x: tg.reduce_sum(cube(x)))
    for x in [np.array([1.0, 2.0]), np.array([-3.0, 0.5])]:
        v = tg.Variable(x)
        with tg.GradientTape() as outer:
            with tg.GradientTape() as inner:
                y = f(v)
            g = inner.gradient(y, v)
        np.testing.assert_allclose(g.numpy(), 3 * x * x)
        np.testing.assert_allclose(outer.gradient(g, v).numpy(), 6 * x)


# -- NumPy scalars keep their dtype ---------------------------------------------------------------
def test_numpy_float64_scalars_stay_float64():
    assert tg.Variable(np.array([0.1, 0.2])[0]).dtype == np.float64
    assert float(tg.Variable(np.float64(0.1))) == 0.1
    assert tg.grad(lambda x: x * x)(np.float64(3.0)).dtype == np.float64
    assert float(tg.grad(lambda x: x * x)(np.float64(3.0))) == 6.0
    assert tg.Variable(np.float32(2.0)).dtype == np.float32
    assert tg.Variable(2.0).dtype == np.float32  # Python numbers take the default float


# -- a list holding Variables is stacked differentiably -------------------------------------------
def test_a_list_of_variables_where_an_array_is_expected_is_differentiable():
    v = tg.Variable(np.array([1.0, 2.0]))
    with tg.GradientTape(persistent=True) as tape:
        mean = tg.reduce_mean([v, v + 2])
        total = tg.reduce_sum(tg.add([v, v], 1.0))
        weighted = tg.reduce_sum(tg.mul([[v, v * 3.0], [v, v]], [1.0, 2.0]))
    assert mean.dtype == np.float64 and float(mean) == 2.5
    np.testing.assert_array_equal(tape.gradient(mean, v).numpy(), [0.5, 0.5])
    np.testing.assert_array_equal(tape.gradient(total, v).numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(tape.gradient(weighted, v).numpy(), [6.0, 12.0])
    assert float(weighted) == 1 * 1 + 2 * 2 + 3 * 1 + 6 * 2 + 1 + 4 + 1 + 4


def test_a_list_of_float32_variables_stays_float32():
    v = tg.Variable(np.array([1.0, 2.0], np.float32))
    assert tg.add([v, v * 2.0], 1.0).dtype == np.float32
    assert tg.add([v, np.ones(2)], 1.0).dtype == np.float64  # NumPy promotion with a float64 array


def test_a_ragged_list_of_variables_is_a_clear_error():
    v = tg.Variable(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="different shapes"):
        tg.add([v, tg.Variable(np.ones(3))], 1.0)


# -- gradient() inside a persistent tape's own block is recorded ----------------------------------
def test_gradient_inside_its_persistent_tape_is_recorded_for_the_next_derivative():
    x = tg.Variable(3.0, dtype="float64")
    with tg.GradientTape(persistent=True) as tape:
        y = x ** 3
        dy = tape.gradient(y, x)
        d2y = tape.gradient(dy, x)
    d3y = tape.gradient(d2y, x)
    assert (float(dy), float(d2y), float(d3y)) == (27.0, 18.0, 6.0)
    assert float(tape.gradient(dy, x, unconnected_gradients="zero")) == 18.0


def test_lists_of_variables_inside_a_function_follow_the_inputs():
    def program(v):
        return (tg.reduce_sum(tg.softmax([v, v * 2.0])) + tg.reduce_sum(tg.transpose([v, v]))
                + tg.reduce_mean([v, v * v], axis=0)[1] + tg.matmul([v, v], [v * 3.0, v])[0, 0]
                + tg.reduce_sum(tg.cast([v, v], "float32")) + tg.reduce_sum(tg.reshape([v, v], (4,)))
                + tg.reduce_sum(tg.concat([[v, v], [v, v]], axis=0)))

    assert_compiled_matches_eager(program, [np.array([1.0, 2.0])], [np.array([3.0, -1.0])], order=2)


@pytest.mark.parametrize("call", [
    lambda x: tg.reduce_sum(x, axis=1.7),
    lambda x: tg.transpose(x, (1.0, 0)),
    lambda x: tg.expand_dims(x, True),
    lambda x: tg.squeeze(tg.reshape(x, (2, 1, 3)), 1.2),
    lambda x: tg.concat([x, x], axis=0.5),
    lambda x: tg.split(x, 3, axis=1.0),
    lambda x: tg.stack([x, x], axis=1.5),
    lambda x: tg.gather(x, [0], axis=True),
    lambda x: tg.repeat(x, 2, axis=0.9),
    lambda x: tg.reshape(x, (3.0, 2)),
    lambda x: tg.broadcast_to(x, (2, 2.5, 3)),
])
def test_a_float_or_bool_axis_or_size_is_refused_not_truncated(call):
    with pytest.raises(TypeError, match="must be"):
        call(tg.Variable(np.ones((2, 3))))


def test_a_compiled_embedding_refuses_a_negative_index_as_eager_does():
    nn = tg.NeuralNetworks()
    layer = nn.layers.Embedding(5, 3, input_shape=[2])
    f = tg.Function(lambda i: layer(i))
    np.testing.assert_array_equal(f(np.array([[0, 4]])).numpy(), layer.embeddings.numpy()[[[0, 4]]])
    for bad in ([[0, -1]], [[0, 7]]):
        with pytest.raises(ValueError, match="out of"):
            layer(np.array(bad))  # eager
        with pytest.raises(ValueError, match=r"gatherb: index .* out of .*compiled Function"):
            f(np.array(bad))  # compiled: not the last row, and the error names the op


def test_an_error_inside_compiled_code_names_the_op_and_the_shapes():
    g = tg.Function(lambda W, i: tg.gather(W, i) * 2.0)
    g(np.ones((3, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"gather: index 5 .* \(3, 2\).*compiled Function"):
        g(np.ones((3, 2)), np.array([0, 5]))
