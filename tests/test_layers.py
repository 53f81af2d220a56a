"""Layers: outputs and gradients against NumPy references, numerical gradients (gradcheck,
float64, orders 1 and 2) and PyTorch; training vs inference behaviour; lazy building and
shape errors; default names; get_config/from_config round trips."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import Variable
from tapegrad.nn import layers
from tapegrad.nn import random as tg_random

RNG = np.random.default_rng(2024)
F64 = "float64"


def _grads(layer_fn: Any, inputs: list[Variable], sources: list[Variable], upstream: np.ndarray | None = None):
    with tg.GradientTape() as tape:
        for x in inputs:
            tape.watch(x)
        y = layer_fn()
    return y, tape.gradient(y, sources, output_gradients=upstream)


# -- Dense --------------------------------------------------------------------------------------------
def test_dense_output_and_gradients_match_numpy() -> None:
    layer = layers.Dense(4, activation="tanh", dtype=F64)
    x = Variable(RNG.normal(size=(5, 3)))
    layer(x)
    w, b = RNG.normal(size=(3, 4)), RNG.normal(size=(4,))
    layer.set_weights([w, b])
    upstream = RNG.normal(size=(5, 4))
    y, (gx, gw, gb) = _grads(lambda: layer(x), [x], [x, layer.kernel, layer.bias], upstream)
    z = x.value() @ w + b
    np.testing.assert_allclose(y.value(), np.tanh(z), rtol=1e-12)
    dz = upstream * (1 - np.tanh(z) ** 2)
    np.testing.assert_allclose(gx.value(), dz @ w.T, rtol=1e-12)
    np.testing.assert_allclose(gw.value(), x.value().T @ dz, rtol=1e-12)
    np.testing.assert_allclose(gb.value(), dz.sum(axis=0), rtol=1e-12)


def test_dense_applies_to_the_last_axis_of_higher_rank_inputs() -> None:
    layer = layers.Dense(2, use_bias=False, dtype=F64)
    x = Variable(RNG.normal(size=(2, 3, 5)))
    layer(x)
    assert layer.bias is None and len(layer.variables()) == 1 and layer.output_shape == (3, 2)
    upstream = RNG.normal(size=(2, 3, 2))
    y, (gx, gw) = _grads(lambda: layer(x), [x], [x, layer.kernel], upstream)
    w = layer.kernel.value()
    np.testing.assert_allclose(y.value(), x.value() @ w, rtol=1e-12)
    np.testing.assert_allclose(gx.value(), upstream @ w.T, rtol=1e-12)
    np.testing.assert_allclose(gw.value(), np.einsum("bti,btj->ij", x.value(), upstream), rtol=1e-12)


@pytest.mark.parametrize("order", [1, 2])
def test_dense_gradcheck_inputs_and_weights(order: int) -> None:
    layer = layers.Dense(3, activation="gelu", dtype=F64)
    layer(np.ones((1, 2)))

    def f(x: Variable, w: Variable, b: Variable) -> Variable:
        layer.kernel, layer.bias = w, b
        return layer(x)

    rank3 = layers.Dense(2, activation="sigmoid", dtype=F64)
    assert tg.gradcheck(f, [RNG.normal(size=(2, 2)), RNG.normal(size=(2, 3)), RNG.normal(size=(3,))], order=order)
    assert tg.gradcheck(lambda x: rank3(x), [RNG.normal(size=(2, 2, 2))], order=order)


def test_dense_is_one_matmul_one_add_one_activation() -> None:
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    for activation, count in [(None, 2), ("linear", 2), ("relu", 3)]:
        layer = layers.Dense(5, activation=activation)
        layer(x)
        with tg.GradientTape() as tape:
            layer(x)
        assert len(tape._nodes) == count, activation
    layer = layers.Dense(5, use_bias=False)
    layer(x)
    with tg.GradientTape() as tape:
        layer(x)
    assert len(tape._nodes) == 1


def test_dense_defaults_and_dtypes() -> None:
    layer = layers.Dense(8)
    y = layer(np.ones((2, 50), np.float32))
    assert y.dtype == np.float32 and layer.kernel.dtype == np.float32
    assert np.all(layer.bias.value() == 0)  # bias_initializer zeros
    limit = np.sqrt(6 / (50 + 8))  # glorot_uniform
    assert np.abs(layer.kernel.value()).max() <= limit
    # Inputs of another dtype are cast to the layer's dtype (Keras' autocast).
    assert layer(np.ones((2, 50), np.float64)).dtype == np.float32
    assert layer(np.ones((2, 50), np.int64)).dtype == np.float32
    nn = tg.NeuralNetworks(dtype="float64")
    built = nn.layers.Dense(3, input_shape=[2], activation="sigmoid")
    assert built(np.ones((1, 2))).dtype == np.float64
    with pytest.raises(ValueError, match="units must be a positive int"):
        layers.Dense(0)


def test_default_names() -> None:
    layers.reset_names()
    assert [layers.Dense(1).name, layers.Dense(1).name, layers.Dense(1).name] == ["dense", "dense_1", "dense_2"]
    assert layers.BatchNormalization().name == "batch_normalization"
    assert layers.Dropout(0.1).name == "dropout"
    assert layers.Dense(1, name="head").name == "head"
    assert layers.Dense(1).name == "dense_3"


# -- lazy build and shape errors --------------------------------------------------------------------
def test_shape_mismatch_names_the_layer_and_both_shapes() -> None:
    layer = layers.Dense(2, name="fc")
    layer(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"fc: expected inputs of shape \(3,\).*got \(5,\)"):
        layer(np.ones((4, 5), np.float32))
    layer(np.ones((7, 3), np.float32))  # another batch size is fine
    declared = layers.Dense(2, input_shape=[3], name="declared")
    with pytest.raises(ValueError, match=r"declared: expected inputs of shape \(3,\).*got \(4,\)"):
        declared(np.ones((1, 4), np.float32))
    cat = layers.Concatenate(name="cat")
    cat([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(ValueError, match=r"cat: expected inputs of shape \[\(3,\), \(4,\)\].*got \[\(3,\), \(5,\)\]"):
        cat([np.ones((2, 3)), np.ones((2, 5))])
    with pytest.raises(ValueError, match="dense_rank: Dense needs inputs of rank >= 2"):
        layers.Dense(2, name="dense_rank")(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="takes one input"):
        layers.Dense(2)([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(TypeError, match="takes a list of inputs"):
        layers.Add()(np.ones((2, 3)))


def test_build_from_input_shape_and_weights_api() -> None:
    layer = layers.Dense(4, input_shape=(3,), dtype=F64)
    assert not layer.built and layer.variables() == []
    layer(np.ones((2, 3)))
    assert [v.name for v in layer.variables()] == [f"{layer.name}/kernel", f"{layer.name}/bias"]
    assert layer.count_params() == 16
    weights = layer.get_weights()
    weights[0][:] = 1.0
    assert not np.all(layer.kernel.value() == 1.0)  # get_weights copies
    layer.set_weights(weights)
    np.testing.assert_array_equal(layer(np.ones((1, 3))).value(), np.full((1, 4), 3.0))


# -- shape layers --------------------------------------------------------------------------------------
def test_input_layer() -> None:
    layer = layers.Input(shape=(3, 2))
    assert layer.name.startswith("input") and layer.output_shape == (3, 2)
    x = Variable(np.ones((4, 3, 2)))
    assert layer(x) is x
    with pytest.raises(ValueError, match=r"expected inputs of shape \(3, 2\)"):
        layer(np.ones((4, 2, 3)))
    assert layers.Input(shape=[5]).get_config()["shape"] == [5]
    assert layers.Input(shape=(4,), dtype="int32").dtype == np.int32


@pytest.mark.parametrize(
    "make, shape, reference",
    [
        (lambda: layers.Flatten(), (2, 3, 4), lambda x: x.reshape(2, 12)),
        (lambda: layers.Flatten(), (2,), lambda x: x.reshape(2, 1)),
        (lambda: layers.Reshape((4, -1)), (2, 3, 4), lambda x: x.reshape(2, 4, 3)),
        (lambda: layers.Reshape([12]), (2, 3, 4), lambda x: x.reshape(2, 12)),
        (lambda: layers.ExpandDims(0), (2, 3), lambda x: x[:, None, :]),
        (lambda: layers.ExpandDims(-1), (2, 3), lambda x: x[:, :, None]),
        (lambda: layers.ExpandDims(1), (2, 3, 4), lambda x: x[:, :, None, :]),
        (lambda: layers.RepeatVector(3), (2, 4), lambda x: np.repeat(x[:, None, :], 3, axis=1)),
        (lambda: layers.Activation("softplus"), (2, 3), lambda x: np.log1p(np.exp(x))),
    ],
)
def test_shape_layers_match_numpy_and_gradcheck(make: Any, shape: tuple, reference: Any) -> None:
    layer = make()
    x = RNG.normal(size=shape)
    y = layer(x)
    np.testing.assert_allclose(y.value(), reference(x), rtol=1e-12)
    assert layer.output_shape == y.shape[1:] == tuple(layer.compute_output_shape(shape[1:]))
    assert tg.gradcheck(lambda v: layer(v), [x], order=1)


def test_shape_layer_errors() -> None:
    with pytest.raises(ValueError, match="cannot reshape samples of shape"):
        layers.Reshape((5,))(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="one -1"):
        layers.Reshape((-1, -1))
    with pytest.raises(ValueError, match="RepeatVector takes inputs of shape"):
        layers.RepeatVector(2)(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="out of range"):
        layers.ExpandDims(3)(np.ones((2, 3)))


# -- merging ------------------------------------------------------------------------------------------------
def test_concatenate_and_add() -> None:
    a, b = Variable(RNG.normal(size=(2, 3, 4))), Variable(RNG.normal(size=(2, 3, 2)))
    cat = layers.Concatenate()
    upstream = RNG.normal(size=(2, 3, 6))
    y, (ga, gb) = _grads(lambda: cat([a, b]), [a, b], [a, b], upstream)
    np.testing.assert_array_equal(y.value(), np.concatenate([a.value(), b.value()], axis=-1))
    np.testing.assert_array_equal(ga.value(), upstream[..., :4])
    np.testing.assert_array_equal(gb.value(), upstream[..., 4:])
    assert cat.output_shape == (3, 6)
    c = layers.Concatenate(axis=1)([np.ones((2, 3, 4)), np.zeros((2, 1, 4))])
    assert c.shape == (2, 4, 4)
    with pytest.raises(ValueError, match="differ in axis 2"):
        layers.Concatenate(axis=1)([np.ones((2, 3, 4)), np.zeros((2, 1, 5))])
    with pytest.raises(ValueError, match="batch axis"):
        layers.Concatenate(axis=0)([np.ones((2, 3)), np.ones((2, 3))])

    x, y2, z = (Variable(RNG.normal(size=(2, 3))) for _ in range(3))
    add = layers.Add()
    out, grads = _grads(lambda: add([x, y2, z]), [x, y2, z], [x, y2, z])
    np.testing.assert_allclose(out.value(), x.value() + y2.value() + z.value())
    for g in grads:
        np.testing.assert_array_equal(g.value(), np.ones((2, 3)))
    assert layers.Add()([np.ones((2, 3)), np.ones((2, 1))]).shape == (2, 3)  # broadcasting, as Keras 3
    with pytest.raises(ValueError, match="cannot be added"):
        layers.Add()([np.ones((2, 3)), np.ones((2, 4))])
    assert layers.Add(input_shapes=[[3], [3]]).input_shape == [(3,), (3,)]  # Rindow's keyword


@pytest.mark.parametrize("order", [1, 2])
def test_merging_gradcheck(order: int) -> None:
    cat, cat2, add = layers.Concatenate(axis=1), layers.Concatenate(axis=1), layers.Add()
    a, b = RNG.normal(size=(2, 2)), RNG.normal(size=(2, 1))
    assert tg.gradcheck(lambda x, y: cat([x, y]) * cat2([y, x]), [a, b], order=order)
    assert tg.gradcheck(lambda x, y: add([x * x, y]), [a, b], order=order)


# -- Gather -------------------------------------------------------------------------------------------------
def test_gather_default_picks_one_element_per_sample() -> None:
    params = Variable(RNG.normal(size=(4, 10)))
    idx = np.array([1, 9, 1, 0])
    layer = layers.Gather()
    y, (g,) = _grads(lambda: layer([params, idx]), [params], [params])
    np.testing.assert_array_equal(y.value(), params.value()[np.arange(4), idx])
    expected = np.zeros((4, 10))
    expected[np.arange(4), idx] = 1
    np.testing.assert_array_equal(g.value(), expected)
    assert layer.output_shape == ()


def test_gather_semantics() -> None:
    p = RNG.normal(size=(3, 5, 6, 2))
    # axis 1 of (5, 6, 2), no batch dims: out[b, o, x, d] = p[b, o, idx[b, x], d]
    idx = RNG.integers(0, 6, size=(3, 4))
    y = layers.Gather(axis=1)([p, idx]).value()
    ref = np.stack([p[b][:, idx[b], :] for b in range(3)])
    assert y.shape == (3, 5, 4, 2)
    np.testing.assert_array_equal(y, ref)
    # batch_dims=1: take along axis 1 of the samples, per row.
    idx2 = RNG.integers(0, 6, size=(3, 5))
    y2 = layers.Gather(batch_dims=1)([p, idx2]).value()
    assert y2.shape == (3, 5, 2)
    np.testing.assert_array_equal(y2, np.take_along_axis(p, idx2[:, :, None, None], axis=2)[:, :, 0])
    # detail_depth: axis 0 of (5, 6, 2) indexed, axis 1 (6) matched elementwise with the indices' last axis.
    idx3 = RNG.integers(0, 5, size=(3, 7, 6))
    y3 = layers.Gather(axis=0, detail_depth=2, index_depth=1)([p, idx3]).value()
    assert y3.shape == (3, 7, 6, 2)
    ref3 = np.empty((3, 7, 6, 2))
    for b in range(3):
        for x in range(7):
            for n in range(6):
                ref3[b, x, n] = p[b, idx3[b, x, n], n]
    np.testing.assert_array_equal(y3, ref3)
    with pytest.raises(ValueError, match="out of range"):
        layers.Gather()([np.ones((2, 3)), np.array([0, 3])])
    with pytest.raises(ValueError, match="inner axes"):
        layers.Gather(axis=0, detail_depth=2, index_depth=1)([p, idx3[:, :, :5]])
    with pytest.raises(ValueError, match="takes 2 inputs"):
        layers.Gather()([p, idx, idx])


@pytest.mark.parametrize("order", [1, 2])
def test_gather_gradcheck_with_repeated_indices(order: int) -> None:
    layer = layers.Gather(axis=0)
    idx = np.array([[0, 2, 2], [1, 1, 0]])
    assert tg.gradcheck(lambda p: layer([p * p, idx]), [RNG.normal(size=(2, 3, 2))], order=order)


# -- Embedding ------------------------------------------------------------------------------------------------
def test_embedding_matches_torch_and_masks() -> None:
    layer = layers.Embedding(10, 4, mask_zero=True, dtype=F64)
    idx = np.array([[1, 2, 0, 0], [9, 9, 3, 0]])
    upstream = RNG.normal(size=(2, 4, 4))
    layer(idx)
    y, (g,) = _grads(lambda: layer(idx), [], [layer.embeddings], upstream)
    table = layer.embeddings.value()
    np.testing.assert_array_equal(y.value(), table[idx])
    assert np.abs(table).max() <= 0.05  # "uniform" initializer: U(-0.05, 0.05)
    mask = layer.compute_mask(idx)
    np.testing.assert_array_equal(mask.value(), idx != 0)
    assert layers.Embedding(10, 4).compute_mask(idx) is None
    torch = pytest.importorskip("torch")
    w = torch.tensor(table, requires_grad=True)
    out = torch.nn.functional.embedding(torch.tensor(idx), w)
    out.backward(torch.tensor(upstream))
    np.testing.assert_allclose(y.value(), out.detach().numpy())
    np.testing.assert_allclose(g.value(), w.grad.numpy(), rtol=1e-12)  # repeated index 9 accumulates


def test_embedding_inputs() -> None:
    layer = layers.Embedding(5, 3, input_length=4)
    assert layer.input_shape == (4,)
    assert layer(np.array([[0, 1, 2, 4]], np.float32)).shape == (1, 4, 3)  # integral floats are accepted
    assert layer(Variable(np.array([[0, 1, 2, 4]], np.int32))).shape == (1, 4, 3)
    with pytest.raises(ValueError, match=r"index 5 is out of range \[0, 5\)"):
        layer(np.array([[0, 1, 2, 5]]))
    with pytest.raises(ValueError, match=r"index -1 is out of range"):
        layer(np.array([[0, 1, 2, -1]]))
    with pytest.raises(TypeError, match="integer"):
        layer(np.array([[0, 1.5, 2, 3]]))


@pytest.mark.parametrize("order", [1, 2])
def test_embedding_gradcheck(order: int) -> None:
    layer = layers.Embedding(3, 2, dtype=F64)
    idx = np.array([[0, 2, 2, 1]])
    layer(idx)

    def f(table: Variable) -> Variable:
        layer.embeddings = table
        return layer(idx) ** 2

    assert tg.gradcheck(f, [RNG.normal(size=(3, 2))], order=order)


# -- Dropout --------------------------------------------------------------------------------------------------
def test_dropout_training_and_inference() -> None:
    layer = layers.Dropout(0.25, seed=3)
    x = Variable(RNG.uniform(1, 2, size=(200, 100)))
    assert layer(x) is x and layer(x, training=False) is x  # inference: identity, no op
    y, (g,) = _grads(lambda: layer(x, training=True), [x], [x])
    kept = y.value() != 0
    assert abs(1 - kept.mean() - 0.25) < 0.01
    np.testing.assert_allclose(y.value()[kept], x.value()[kept] / 0.75, rtol=1e-12)
    np.testing.assert_allclose(g.value(), kept / 0.75, rtol=1e-12)
    assert abs(y.value().mean() / x.value().mean() - 1) < 0.02  # the expectation is kept
    # A seed makes the sequence of masks reproducible; consecutive masks differ.
    again = layers.Dropout(0.25, seed=3)
    np.testing.assert_array_equal(again(x, training=True).value(), y.value())
    assert not np.array_equal(again(x, training=True).value(), y.value())
    tg_random.set_seed(5)
    a = layers.Dropout(0.5)(x, training=True).value()
    tg_random.set_seed(5)
    np.testing.assert_array_equal(layers.Dropout(0.5)(x, training=True).value(), a)
    shared = layers.Dropout(0.5, noise_shape=(None, 1), seed=0)(x, training=True).value()
    assert np.all((shared == 0) == (shared[:, :1] == 0))
    with pytest.raises(ValueError, match="rate must be in"):
        layers.Dropout(1.0)
    with pytest.raises(ValueError, match="noise_shape"):
        layers.Dropout(0.5, noise_shape=(None, 3))(x, training=True)
    assert layers.Dropout(0.0)(x, training=True) is x


def test_dropout_scaling_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    x = np.full((50, 40), 3.0)
    t = torch.nn.functional.dropout(torch.tensor(x), p=0.4, training=True).numpy()
    ours = layers.Dropout(0.4, seed=1)(x, training=True).value()
    assert set(np.unique(t)) == set(np.unique(ours)) == {0.0, 3.0 / 0.6}


# -- BatchNormalization ------------------------------------------------------------------------------------------
def test_batch_normalization_training_matches_keras_formula_and_torch() -> None:
    torch = pytest.importorskip("torch")
    layer = layers.BatchNormalization(dtype=F64)
    x = Variable(RNG.normal(2.0, 3.0, size=(8, 5)))
    layer(x)  # build (inference: no update)
    np.testing.assert_array_equal(layer.moving_mean.value(), np.zeros(5))
    np.testing.assert_array_equal(layer.moving_variance.value(), np.ones(5))
    gamma, beta = RNG.normal(size=5), RNG.normal(size=5)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    upstream = RNG.normal(size=(8, 5))
    y, (gx, gg, gb) = _grads(lambda: layer(x, training=True), [x], [x, layer.gamma, layer.beta], upstream)
    mean, var = x.value().mean(axis=0), x.value().var(axis=0)
    np.testing.assert_allclose(y.value(), gamma * (x.value() - mean) / np.sqrt(var + 1e-3) + beta, rtol=1e-12)
    # Keras: moving = moving * momentum + batch * (1 - momentum), with the biased batch variance.
    np.testing.assert_allclose(layer.moving_mean.value(), 0.01 * mean, rtol=1e-12)
    np.testing.assert_allclose(layer.moving_variance.value(), 0.99 + 0.01 * var, rtol=1e-12)

    bn = torch.nn.BatchNorm1d(5, eps=1e-3, momentum=0.01, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma))
        bn.bias.copy_(torch.tensor(beta))
    tx = torch.tensor(x.value(), requires_grad=True)
    ty = bn.train()(tx)
    ty.backward(torch.tensor(upstream))
    np.testing.assert_allclose(y.value(), ty.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(gx.value(), tx.grad.numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(gg.value(), bn.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(gb.value(), bn.bias.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(layer.moving_mean.value(), bn.running_mean.numpy(), rtol=1e-12)
    # torch keeps the unbiased variance; Keras (and tapegrad) the biased one.
    np.testing.assert_allclose(0.99 + 0.01 * (bn.running_var.numpy() - 0.99) / 0.01 * 7 / 8,
                               layer.moving_variance.value(), rtol=1e-12)


def test_batch_normalization_inference_uses_moving_statistics() -> None:
    layer = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=F64)
    x = RNG.normal(1.0, 2.0, size=(16, 3))
    for _ in range(3):
        layer(x, training=True)
    mm, mv = layer.moving_mean.value().copy(), layer.moving_variance.value().copy()
    expected_mm = x.mean(axis=0) * (1 - 0.9 ** 3)
    np.testing.assert_allclose(mm, expected_mm, rtol=1e-12)
    for training in (None, False):
        y = layer(x, training=training).value()
        np.testing.assert_allclose(y, (x - mm) / np.sqrt(mv + 1e-5), rtol=1e-12)
        np.testing.assert_array_equal(layer.moving_mean.value(), mm)  # no update outside training
    layer.trainable = False  # a frozen layer runs in inference mode, also with training=True
    np.testing.assert_allclose(layer(x, training=True).value(), (x - mm) / np.sqrt(mv + 1e-5), rtol=1e-12)
    np.testing.assert_array_equal(layer.moving_mean.value(), mm)
    assert layer.trainable_variables() == []
    layer.trainable = True
    assert [v.name.split("/")[-1] for v in layer.trainable_variables()] == ["gamma", "beta"]
    assert [v.name.split("/")[-1] for v in layer.non_trainable_variables()] == ["moving_mean", "moving_variance"]


def test_batch_normalization_channels_first_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    layer = layers.BatchNormalization(axis=1, dtype=F64)
    x = RNG.normal(size=(4, 3, 5, 2))
    y = layer(x, training=True).value()
    assert layer.gamma.shape == (3,)
    bn = torch.nn.BatchNorm2d(3, eps=1e-3, momentum=0.01, dtype=torch.float64).train()
    np.testing.assert_allclose(y, bn(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.moving_mean.value(), bn.running_mean.numpy(), rtol=1e-12)
    with torch.no_grad():  # torch keeps the unbiased variance: give it ours, then compare inference
        bn.running_var.copy_(torch.tensor(layer.moving_variance.value()))
    np.testing.assert_allclose(layer(x).value(), bn.eval()(torch.tensor(x)).detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("order", [1, 2])
def test_batch_normalization_gradcheck(order: int) -> None:
    layer = layers.BatchNormalization(dtype=F64)
    x = RNG.normal(size=(4, 2))
    layer(x)
    layer.gamma.assign(np.array([1.5, -0.7]))
    assert tg.gradcheck(lambda v: layer(v, training=True), [x], order=order)
    assert tg.gradcheck(lambda v: layer(v, training=False), [x], order=order)


# -- LayerNormalization ----------------------------------------------------------------------------------------
def test_layer_normalization_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    layer = layers.LayerNormalization(dtype=F64)
    x = Variable(RNG.normal(1.0, 2.0, size=(3, 4, 6)))
    layer(x)
    gamma, beta = RNG.normal(size=6), RNG.normal(size=6)
    layer.set_weights([gamma, beta])
    upstream = RNG.normal(size=(3, 4, 6))
    y, (gx, gg, gb) = _grads(lambda: layer(x), [x], [x, layer.gamma, layer.beta], upstream)
    mean, var = x.value().mean(-1, keepdims=True), x.value().var(-1, keepdims=True)
    np.testing.assert_allclose(y.value(), gamma * (x.value() - mean) / np.sqrt(var + 1e-3) + beta, rtol=1e-12)
    ln = torch.nn.LayerNorm(6, eps=1e-3, dtype=torch.float64)
    with torch.no_grad():
        ln.weight.copy_(torch.tensor(gamma))
        ln.bias.copy_(torch.tensor(beta))
    tx = torch.tensor(x.value(), requires_grad=True)
    ty = ln(tx)
    ty.backward(torch.tensor(upstream))
    np.testing.assert_allclose(y.value(), ty.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(gx.value(), tx.grad.numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(gg.value(), ln.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(gb.value(), ln.bias.grad.numpy(), rtol=1e-10)
    # training makes no difference
    np.testing.assert_array_equal(layer(x, training=True).value(), y.value())


def test_layer_normalization_over_several_axes() -> None:
    layer = layers.LayerNormalization(axis=[1, 2], center=False, dtype=F64)
    x = RNG.normal(size=(2, 3, 4))
    y = layer(x).value()
    assert layer.gamma.shape == (3, 4) and layer.beta is None
    mean, var = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-12)


@pytest.mark.parametrize("order", [1, 2])
def test_layer_normalization_gradcheck(order: int) -> None:
    layer = layers.LayerNormalization(dtype=F64)
    x = RNG.normal(size=(2, 3))
    layer(x)
    layer.set_weights([np.array([1.2, -0.5, 0.8]), np.array([0.1, 0.2, -0.3])])
    assert tg.gradcheck(lambda v: layer(v), [x], order=order)


# -- configs ------------------------------------------------------------------------------------------------
def _round_trip_cases() -> list[tuple[Any, Any]]:
    x2 = RNG.normal(size=(3, 4))
    x3 = RNG.normal(size=(3, 2, 4))
    idx = np.array([[1, 2], [0, 4], [3, 3]])
    return [
        (layers.Input(shape=(4,)), x2),
        (layers.Dense(3, activation="swish", use_bias=False, kernel_initializer="he_normal", input_shape=(4,)), x2),
        (layers.Dense(3, kernel_initializer=tg.initializers.GlorotUniform(seed=3)), x2),
        (layers.Activation("leaky_relu"), x2),
        (layers.Flatten(), x3),
        (layers.Reshape((8, -1)), x3),
        (layers.ExpandDims(1), x2),
        (layers.RepeatVector(2), x2),
        (layers.Concatenate(axis=1), [x3, x3]),
        (layers.Add(), [x2, x2]),
        (layers.Gather(batch_dims=1), [x3, np.array([[1, 0], [2, 2], [3, 0]])]),
        (layers.Embedding(5, 2, mask_zero=True, input_length=2), idx),
        (layers.Dropout(0.3, noise_shape=(None, 1), seed=4), x2),
        (layers.BatchNormalization(axis=[1], momentum=0.9, epsilon=1e-4, center=False), x2),
        (layers.LayerNormalization(axis=-1, scale=False), x3),
    ]


def test_get_config_from_config_round_trips() -> None:
    for layer, x in _round_trip_cases():
        before = layer.get_config()
        json.dumps(before)  # JSON values only
        y = layer(x)
        config = layer.get_config()
        json.dumps(config)
        clone = type(layer).from_config(config)
        assert clone.get_config() == config, type(layer).__name__
        assert {k: v for k, v in before.items() if k != "input_shape"} == \
            {k: v for k, v in config.items() if k != "input_shape"}
        again = layers.deserialize(json.loads(json.dumps(layers.serialize(layer))))
        assert type(again) is type(layer) and again.get_config() == config
        clone(x)
        clone.set_weights(layer.get_weights())
        np.testing.assert_allclose(np.asarray(clone(x)), np.asarray(y), rtol=1e-6, err_msg=type(layer).__name__)


def test_deserialize_errors() -> None:
    with pytest.raises(ValueError, match="unknown layer class 'Conv9D'"):
        layers.deserialize({"class_name": "Conv9D", "config": {}})

    class Custom(layers.Dense):
        pass

    layer = layers.deserialize({"class_name": "Custom", "config": {"units": 2}}, custom_objects={"Custom": Custom})
    assert isinstance(layer, Custom) and layer.units == 2


def test_builder_exposes_the_layers() -> None:
    nn = tg.NeuralNetworks()
    for name in ["Input", "Dense", "Activation", "Flatten", "Reshape", "ExpandDims", "RepeatVector", "Concatenate",
                 "Add", "Gather", "Embedding", "Dropout", "BatchNormalization", "LayerNormalization"]:
        assert name in dir(nn.layers) and getattr(tg.layers, name) is getattr(layers, name)
    assert nn.layers.Dense(2).dtype == np.float32
