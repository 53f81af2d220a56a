"""API §9, the builder side: K (nn.backend()) with Rindow's argument orders and semantics (as in
rindow-neuralnetworks' Backend and rindow-math-matrix's LinearAlgebra), Rindow's g helpers, and the
builder's callable groups."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.nn.layers import Dense

nn = tg.NeuralNetworks()
g, K = nn.gradient(), nn.backend()
A = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


# -- the builder --------------------------------------------------------------------------------------
def test_builder_groups_are_callable_and_return_themselves():
    assert nn.backend() is nn.backend is K and nn.gradient() is nn.gradient is g and g() is g and K() is K
    assert nn.datasets().mnist is tg.datasets.mnist
    assert nn.layers().Dense(2).dtype == np.float32
    assert nn.data().NDArrayDataset is tg.data.NDArrayDataset
    for group in ("layers", "losses", "optimizers", "metrics", "data", "datasets", "models"):
        builder = getattr(nn, group)
        assert builder() is builder
    assert nn.device_type() == "CPU"
    assert nn.backend.softmax(np.zeros(2)).tolist() == [0.5, 0.5]  # Rindow's $nn->backend->softmax


# -- K: values in and out ----------------------------------------------------------------------------
def test_array_ndarray_scalar_fill_copy():
    v = tg.Variable(A)
    assert K.ndarray(v) is v.value() and K.ndarray(A) is A
    assert K.array([[1, 2]]).dtype == np.float32 and K.array([[1]], dtype="int32").dtype == np.int32
    assert K.fill([2, 2], 7).tolist() == [[7.0, 7.0], [7.0, 7.0]] and K.fill([1], 3, dtype="int32").dtype == np.int32
    out = K.zeros([4, 1], dtype="int32")
    result = K.copy(np.array([[5]], np.int32), out[1:2])  # Rindow: $K->copy($start, $output[R(1,2)])
    assert out.ravel().tolist() == [0, 5, 0, 0] and result.base is out
    with pytest.raises(ValueError, match=r"K.copy: x has shape \(2,\) but to has shape \(1, 1\)"):
        K.copy(np.ones(2), out[:1])
    assert K.scalar(K.argmax(np.array([0.1, 0.7, 0.2]))) == 1


def test_argmax_equal_cast_sum_masking_like_rindows_accuracy():
    label = np.array([[3, 1, 0], [2, 2, 0]], np.int32)
    logits = np.zeros((2, 3, 4), np.float32)
    logits[0, 0, 3] = logits[0, 1, 2] = logits[0, 2, 1] = logits[1, 0, 2] = logits[1, 1, 2] = 1.0
    pred = K.argmax(logits, axis=-1)
    assert pred.dtype == np.int32 and pred.tolist() == [[3, 2, 1], [2, 2, 0]]
    match = K.equal(label, pred)
    assert match.dtype == np.int32 and match.tolist() == [[1, 0, 0], [1, 1, 1]]
    mask = K.cast(label, dtype="bool")
    match = K.masking(mask, K.cast(match, dtype="float32"))
    assert K.scalar(K.sum(match)) / K.scalar(K.sum(mask)) == pytest.approx(3 / 4)
    assert K.argmax(np.array([[1, 5, 2], [7, 0, 1]])) == 3  # no axis: the flat index, an int
    assert K.argmax(np.array([[1, 5], [7, 0]]), axis=0, keepdims=True).tolist() == [[1, 0]]


def test_masking_batch_dims_axis_and_add_mode():
    data = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    mask = np.array([[True, False, True], [False, True, True]])
    got = K.masking(mask, data, fill=-1.0)  # mask over the first two axes, broadcast over the last
    want = np.where(mask[:, :, None], data, -1.0)
    np.testing.assert_array_equal(got, want)
    assert data[0, 1, 0] == 4.0  # not changed in place
    per_key = np.array([[True, True, False, False], [True, False, False, False]])  # (batch, keys)
    got = K.masking(per_key, data, fill=-1e9, mode=1, batch_dims=1, axis=2)  # attention scores
    want = data + np.where(per_key[:, None, :], 0.0, -1e9).astype(np.float32)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match=r"mask of shape \(2, 4\) does not fit data of shape \(2, 3, 4\)"):
        K.masking(per_key, data)
    with pytest.raises(TypeError, match="mask must be a bool array"):
        K.masking(per_key.astype(np.float32), data, batch_dims=1, axis=2)


# -- K: shapes -------------------------------------------------------------------------------------
def test_slice_counts_sizes_and_negative_values_as_rindow():
    sentence = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.int32)
    np.testing.assert_array_equal(K.slice(sentence, [0, 1], [-1, -1]), sentence[:, 1:])  # Rindow's shift
    np.testing.assert_array_equal(K.slice(A, [1, 0, 1], [1, -2, 2]), A[1:2, 0:2, 1:3])
    np.testing.assert_array_equal(K.slice(A, [-1], [1]), A[1:])
    piece = K.slice(sentence, [0, 1], [1, 2])
    piece[0, 0] = 99
    assert sentence[0, 1] == 2  # a copy
    with pytest.raises(ValueError, match="size\\[1\\]=5 from begin 1 does not fit axis 1 of length 4"):
        K.slice(sentence, [0, 1], [1, 5])
    with pytest.raises(ValueError, match="begin\\[0\\]=2 is out of range"):
        K.slice(sentence, [2], [1])
    target = np.zeros((2, 4), np.int32)
    K.stick(np.array([[7, 8]], np.int32), target, [1, 2], [1, 2])
    assert target.tolist() == [[0, 0, 0, 0], [0, 0, 7, 8]]


def test_repeat_adds_an_axis_like_rindow():
    positions = K.repeat(K.range(5), 3, axis=1)  # Rindow's positional encoding: (length, depth)
    assert positions.shape == (5, 3) and positions.dtype == np.float32
    np.testing.assert_array_equal(positions, np.repeat(np.arange(5.0)[:, None], 3, axis=1))
    x = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(K.repeat(x, 2, axis=0), [x, x])
    np.testing.assert_array_equal(K.repeat(x, 2, axis=1), [[[1, 2], [1, 2]], [[3, 4], [3, 4]]])
    np.testing.assert_array_equal(K.repeat(x, 2), [1, 2, 3, 4, 1, 2, 3, 4])
    np.testing.assert_array_equal(K.repeat(x, 2, axis=0, keepdims=True), np.concatenate([x, x]))
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        K.repeat(x, 0)


def test_range_concat_split_expand_squeeze():
    assert K.range(4).tolist() == [0.0, 1.0, 2.0, 3.0] and K.range(4).dtype == np.float32
    assert K.range(10, 2, 3, dtype="int32").tolist() == [2, 5, 8]  # limit excluded, as tf.range
    assert K.range(9, 3, 3).tolist() == [3.0, 6.0]
    assert K.range(0, 3).tolist() == [3.0, 2.0, 1.0]
    assert tg.NeuralNetworks(dtype="float64").backend().range(2).dtype == np.float64
    with pytest.raises(ValueError, match="delta must not be 0"):
        K.range(3, 0, 0)
    a, b = np.ones((2, 3)), np.zeros((2, 1))
    assert K.concat([a, b]).shape == (2, 4) and K.concat([a, a], axis=0).shape == (4, 3)  # default: last axis
    with pytest.raises(ValueError, match=r"K.concat: shapes \[\(2, 3\), \(3, 1\)\]"):
        K.concat([a, np.zeros((3, 1))])
    left, right = K.split(A, [1, 3])
    assert left.shape == (2, 3, 1) and right.shape == (2, 3, 3)
    assert K.expand_dims(np.ones(3), axis=0).shape == (1, 3) and K.expand_dims(np.ones(3), -1).shape == (3, 1)
    assert K.squeeze(np.ones((1, 3, 1))).shape == (3,) and K.squeeze(np.ones((1, 3, 1)), axis=0).shape == (3, 1)
    with pytest.raises(ValueError, match="has length 3, not 1"):
        K.squeeze(np.ones((1, 3)), axis=1)


# -- K: arithmetic ---------------------------------------------------------------------------------
def test_scale_mul_pow_reciprocal_increment_softmax():
    depth = 4
    depths = K.scale(1 / depth, K.range(depth))
    np.testing.assert_allclose(depths, [0, 0.25, 0.5, 0.75])
    rates = K.reciprocal(K.pow(K.fill(depths.shape, 10000, dtype=depths.dtype), depths))
    np.testing.assert_allclose(rates, 1 / 10000 ** np.array([0, 0.25, 0.5, 0.75]), rtol=1e-6)
    angles = K.mul(K.repeat(K.range(3), depth, axis=1), rates)  # (3, depth) * (depth,)
    np.testing.assert_allclose(angles, np.arange(3)[:, None] * rates[None, :], rtol=1e-6)
    assert angles.dtype == np.float32
    np.testing.assert_allclose(K.reciprocal(np.array([1.0, 2.0]), 1.0, 2.0), [1 / 3, 1 / 5])
    np.testing.assert_allclose(K.increment(np.array([1.0, 2.0]), 1.0, 3.0), [4.0, 7.0])
    np.testing.assert_allclose(K.mul(np.array([1.0, 2.0]), np.ones((2, 3)), trans=True), [[1, 1, 1], [2, 2, 2]])
    np.testing.assert_allclose(K.add(np.ones(3), np.ones((2, 3))), np.full((2, 3), 2.0))
    np.testing.assert_allclose(K.sub(np.ones((2, 3)), np.ones(3)), np.zeros((2, 3)))
    np.testing.assert_allclose(K.div(np.ones(2), np.full(2, 4.0)), [0.25, 0.25])
    logits = np.array([[1.0, 2.0, 3.0], [1e4, 0.0, -1e4]], np.float32)
    soft = K.softmax(tg.Variable(logits))
    np.testing.assert_allclose(soft[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), rtol=1e-6)
    np.testing.assert_allclose(soft[1], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(K.sin(np.array([0.0])), [0.0])  # NumPy's, for everything else


# -- g -----------------------------------------------------------------------------------------------
def test_g_get_follows_rindows_offset_and_count():
    x = g.Variable(np.arange(12, dtype=np.float32).reshape(6, 2))
    shape = g.shape(x)
    assert int(g.get(shape, 1)) == 2
    length = g.get(shape, 0)
    np.testing.assert_array_equal(g.get(x, 0, length).numpy(), x.numpy())
    np.testing.assert_array_equal(g.get(x, 1, 2).numpy(), x.numpy()[1:3])
    np.testing.assert_array_equal(g.get(x, 0, -2).numpy(), x.numpy()[:5])  # count -1: all, -2: one less
    assert g.get((4, 5, 6), 1, -1) == (5, 6)
    with g.GradientTape() as tape:
        y = g.reduce_sum(g.get(x, 1, 2))
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [[0, 0], [1, 1], [1, 1], [0, 0], [0, 0], [0, 0]])
    with pytest.raises(TypeError, match="get: offset must be an int"):
        g.get(x, 1.5)


def test_g_variable_unbackpropagatable_ndarray_constant():
    c = g.Variable(np.ones(3, np.float32), unbackpropagatable=True)
    w = g.Variable(np.full(3, 2.0, np.float32))
    assert not c.trainable and w.trainable
    with g.GradientTape() as tape:
        y = g.reduce_sum(g.mul(c, w))
    gc, gw = tape.gradient(y, [c, w])
    assert gc is None and gw.numpy().tolist() == [1.0, 1.0, 1.0]
    assert g.ndarray(w) is w.value()
    const = g.constant([1, 2])
    assert isinstance(const, np.ndarray) and const.dtype == np.float32


def test_g_modules_is_owned_by_the_model():
    class Encoder(tg.AbstractModel):
        def __init__(self, builder):
            super().__init__(builder)
            self.layers_ = builder.gradient().modules()
            for _ in range(2):
                self.layers_.add(builder.layers.Dense(3))
            self.pos = builder.gradient().Variable(np.ones((1, 3), np.float32), unbackpropagatable=True)

        def call(self, inputs):
            x = inputs
            for layer in self.layers_:
                x = layer(x)
            return g.add(x, self.pos)

    m = Encoder(nn)
    m(np.ones((2, 3), np.float32))
    assert len(m.layers_) == 2 and m.layers_[1] is m.layers[1]
    assert len(m.trainable_variables()) == 4 and len(m.variables()) == 5
    assert m.layers_.trainable_variables() == m.trainable_variables()
    with pytest.raises(TypeError, match="module must be a layer or a model"):
        m.layers_.add("dense")
    assert isinstance(g.modules([Dense(1)]), list)
