"""Recurrent layers inside g.Function: compiled equals eager (values, gradients and second
derivatives, called with other values and again with the first ones), with another sequence
length and batch size, a whole compiled training step; the layers save and load with models."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_check import assert_compiled_matches_eager

import tapegrad as tg
from tapegrad.nn import layers

F64 = "float64"
LAYERS = {"lstm": layers.LSTM, "gru": layers.GRU, "simple_rnn": layers.SimpleRNN}


def _layer(cell: str, rng: np.random.Generator, **kwargs: object) -> layers.RecurrentLayer:
    layer = LAYERS[cell](3, dtype=F64, **kwargs)
    layer(np.zeros((1, 2, 2)))
    layer.set_weights([rng.normal(scale=0.6, size=w.shape) for w in layer.get_weights()])
    return layer


def _args(rng: np.random.Generator, batch: int, steps: int, count: int) -> list:
    mask = np.ones((batch, steps), bool)
    mask[0, steps - 1:] = False
    mask[-1, :1] = False
    return [rng.normal(size=(batch, steps, 2)), mask] + [rng.normal(size=(batch, 3)) for _ in range(count)]


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_compiled_equals_eager_to_second_order_and_for_another_length(cell: str) -> None:
    rng = np.random.default_rng(len(cell))
    layer = _layer(cell, rng, return_sequences=True, return_state=True, go_backwards=cell == "gru")

    def fn(x, mask, *states):
        out, final = layer(x, initial_states=list(states), mask=mask)
        return [out, *final]

    count = layer.state_count
    compiled = assert_compiled_matches_eager(fn, _args(rng, 2, 4, count), _args(rng, 2, 4, count), order=2)
    for batch, steps in ((2, 6), (3, 2)):  # another sequence length, another batch size
        args = _args(rng, batch, steps, count)
        got = compiled(*[tg.Variable(a) if a.dtype.kind == "f" else a for a in args])
        want = fn(*[tg.Variable(a) if a.dtype.kind == "f" else a for a in args])
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-12)
    assert_compiled_matches_eager(fn, _args(rng, 2, 6, count), _args(rng, 2, 6, count), compiled=tg.Function(fn))


def test_compiled_bidirectional_with_dropout_in_inference() -> None:
    rng = np.random.default_rng(3)
    bi = layers.Bidirectional(layers.GRU(3, return_sequences=True, dropout=0.5, recurrent_dropout=0.5),
                              merge_mode="ave", dtype=F64)
    bi(np.zeros((1, 2, 2)))
    bi.set_weights([rng.normal(size=w.shape) for w in bi.get_weights()])
    assert_compiled_matches_eager(lambda x: bi(x, training=False), [rng.normal(size=(2, 4, 2))],
                                  [rng.normal(size=(2, 4, 2))], order=2)


def test_compiled_dropout_draws_new_masks_at_every_call() -> None:
    rng = np.random.default_rng(4)
    layer = _layer("lstm", rng, dropout=0.5, recurrent_dropout=0.3)
    step = tg.Function(lambda x: layer(x, training=True))
    x = rng.normal(size=(4, 3, 2))
    a, b = step(x).numpy(), step(x).numpy()
    assert step.trace_count == 1 and not np.allclose(a, b)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_compiled_training_step_equals_eager_steps(cell: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(8, 5, 2))
    y = rng.integers(0, 4, 8)

    def make():
        nn = tg.NeuralNetworks(dtype=F64)
        rnn, head = LAYERS[cell](6, dtype=F64), nn.layers.Dense(4)
        head(rnn(x))
        init = np.random.default_rng(6)
        for lay in (rnn, head):
            lay.set_weights([init.normal(scale=0.5, size=w.shape) for w in lay.get_weights()])
        params = rnn.trainable_variables() + head.trainable_variables()
        lossf = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
        opt = nn.optimizers.Adam(learning_rate=0.01)

        def step(xb, yb):
            with tg.GradientTape() as tape:
                loss = lossf(yb, head(rnn(xb, training=True), training=True))
            opt.update(params, tape.gradient(loss, params))
            return loss

        return step, params

    eager, eager_params = make()
    compiled_step, compiled_params = make()
    compiled = tg.Function(compiled_step)
    for _ in range(4):
        np.testing.assert_allclose(float(compiled(x, y)), float(eager(x, y)), rtol=1e-12)
    for a, b in zip(compiled_params, eager_params):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-13)
    assert compiled.trace_count == 1


def test_sequential_models_with_recurrent_layers_save_and_load(tmp_path) -> None:
    rng = np.random.default_rng(7)
    nn = tg.NeuralNetworks()
    ids = rng.integers(1, 9, size=(32, 6))
    ids[::3, 4:] = 0  # padding
    y = (ids.sum(axis=1) % 3).astype(np.int32)
    model = tg.Sequential([
        nn.layers.Embedding(9, 4, mask_zero=True, input_length=6),
        nn.layers.LSTM(5, return_sequences=True),
        nn.layers.Bidirectional(nn.layers.GRU(3, reset_after=False), merge_mode="concat"),
        nn.layers.Dense(3),
    ])
    model.compile(optimizer="adam", loss=nn.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(ids, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "rnn.tgm")
    loaded = tg.load_model(tmp_path / "rnn.tgm")
    np.testing.assert_array_equal(loaded.predict(ids), model.predict(ids))
    assert [type(lay).__name__ for lay in loaded.layers] == ["Embedding", "LSTM", "Bidirectional", "Dense"]
    second = tg.Sequential([nn.layers.SimpleRNN(4, input_shape=(None, 3), go_backwards=True), nn.layers.Dense(2)])
    x = rng.normal(size=(5, 7, 3)).astype(np.float32)
    second.save(tmp_path / "simple.tgm")
    np.testing.assert_array_equal(tg.load_model(tmp_path / "simple.tgm").predict(x), second.predict(x))
