"""Sequence masks (Keras semantics): Embedding(mask_zero=True) sets x.mask; layers that keep
the time axis pass it on (merging layers AND the masks), others drop it; InheritMask; losses
and metrics skip masked positions; masks inside compiled Functions follow each call's inputs."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.nn import layers, losses, metrics

F64 = "float64"
IDS = np.array([[4, 2, 7, 0, 0], [1, 0, 0, 0, 0], [3, 3, 1, 2, 5]])
MASK = IDS != 0


def _mask(x: tg.Variable) -> np.ndarray | None:
    m = x.mask
    return None if m is None else np.asarray(m.numpy() if isinstance(m, tg.Variable) else m)


def test_embedding_sets_the_mask_of_its_output() -> None:
    emb = layers.Embedding(8, 3, mask_zero=True, dtype=F64)
    out = emb(IDS)
    np.testing.assert_array_equal(_mask(out), MASK)
    np.testing.assert_array_equal(emb.compute_mask(IDS).numpy(), MASK)
    assert layers.Embedding(8, 3)(IDS).mask is None
    assert tg.nop(out).mask is None  # ops do not carry masks: layers do


@pytest.mark.parametrize("make", [
    lambda: layers.Dense(4, dtype=F64),
    lambda: layers.Activation("tanh"),
    lambda: layers.Dropout(0.5),
    lambda: layers.LayerNormalization(dtype=F64),
    lambda: layers.BatchNormalization(dtype=F64),
])
@pytest.mark.parametrize("training", [False, True])
def test_layers_that_keep_the_time_axis_pass_the_mask_on(make, training: bool) -> None:
    x = layers.Embedding(8, 3, mask_zero=True, dtype=F64)(IDS)
    layer = make()
    for _ in range(2):  # the first call builds, the second takes the fast path
        np.testing.assert_array_equal(_mask(layer(x, training=training)), MASK)


def test_layers_that_drop_the_time_axis_drop_the_mask() -> None:
    x = layers.Embedding(8, 3, mask_zero=True, dtype=F64)(IDS)
    assert layers.Flatten()(x).mask is None
    assert layers.RepeatVector(2)(layers.Flatten()(x)).mask is None
    assert layers.GRU(2, dtype=F64)(x).mask is None


def test_merging_layers_merge_masks() -> None:
    emb = layers.Embedding(8, 3, mask_zero=True, dtype=F64)
    a, b = emb(IDS), emb(IDS[::-1])
    plain = tg.Variable(np.ones((3, 5, 3)))
    np.testing.assert_array_equal(_mask(layers.Add()([a, b])), MASK & MASK[::-1])
    np.testing.assert_array_equal(_mask(layers.Add()([a, plain])), MASK)
    np.testing.assert_array_equal(_mask(layers.Concatenate()([a, b])), MASK & MASK[::-1])
    joined = layers.Concatenate(axis=1)([a, plain])
    assert joined.shape == (3, 10, 3)
    np.testing.assert_array_equal(_mask(joined), np.concatenate([MASK, np.ones((3, 5), bool)], axis=1))
    assert layers.Add()([plain, plain]).mask is None


def test_inherit_mask() -> None:
    emb = layers.Embedding(8, 3, mask_zero=True, dtype=F64)
    vectors = emb(IDS)
    position = tg.Variable(np.arange(15.0).reshape(5, 3))
    with tg.GradientTape() as tape:
        shifted = tg.add(vectors, position)  # an op: the mask is gone
        out = layers.InheritMask()([shifted, vectors])
        loss = tg.reduce_sum(out * out)
    assert shifted.mask is None
    np.testing.assert_array_equal(_mask(out), MASK)
    np.testing.assert_array_equal(out.numpy(), shifted.numpy())
    np.testing.assert_allclose(tape.gradient(loss, position).numpy(), (2 * shifted.numpy()).sum(axis=0))
    assert layers.InheritMask()([vectors, position]).mask is None
    with pytest.raises(ValueError, match="InheritMask takes 2 inputs, got 3"):
        layers.InheritMask()([vectors, vectors, vectors])


# -- losses and metrics -----------------------------------------------------------------------------
def _masked_predictions(rng: np.random.Generator, classes: int = 4) -> tg.Variable:
    p = tg.Variable(rng.normal(size=IDS.shape + (classes,)))
    p.mask = MASK
    return p


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_skip_masked_positions(reduction: str) -> None:
    rng = np.random.default_rng(1)
    predicts = _masked_predictions(rng)
    trues = rng.integers(0, 4, IDS.shape)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction)
    per_step = losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")(
        trues, tg.Variable(predicts.numpy())).numpy()
    with tg.GradientTape() as tape:
        tape.watch(predicts)
        value = loss(trues, predicts)
    want = {"mean": per_step[MASK].mean(), "sum": per_step[MASK].sum(), "none": per_step * MASK}[reduction]
    np.testing.assert_allclose(value.numpy(), want, rtol=1e-12)
    grad = tape.gradient(value, predicts).numpy()
    assert np.all(grad[~MASK] == 0) and np.all(np.abs(grad[MASK]).sum(axis=-1) > 0)


def test_masked_loss_with_sample_weight_and_a_regression_loss() -> None:
    rng = np.random.default_rng(2)
    predicts = _masked_predictions(rng)
    trues = rng.normal(size=predicts.shape)
    weights = np.array([1.0, 2.0, 0.5])
    per_step = ((predicts.numpy() - trues) ** 2).mean(axis=-1)
    got = losses.MeanSquaredError()(trues, predicts, sample_weight=weights)
    np.testing.assert_allclose(got.numpy(), (per_step * weights[:, None])[MASK].sum() / MASK.sum(), rtol=1e-12)
    fully_masked = tg.Variable(predicts.numpy())
    fully_masked.mask = np.zeros(IDS.shape, bool)
    assert float(losses.MeanSquaredError()(trues, fully_masked)) == 0.0
    wrong = tg.Variable(predicts.numpy())
    wrong.mask = MASK[:, :3]
    with pytest.raises(ValueError, match=r"MeanSquaredError: the predictions' mask has shape \(3, 3\), but the "
                                         r"per-sample losses have shape \(3, 5\)"):
        losses.MeanSquaredError()(trues, wrong)


def test_metrics_skip_masked_positions() -> None:
    rng = np.random.default_rng(3)
    predicts = _masked_predictions(rng)
    trues = rng.integers(0, 4, IDS.shape)
    hits = (predicts.numpy().argmax(-1) == trues)
    accuracy = metrics.SparseCategoricalAccuracy()
    accuracy.update_state(trues, predicts)
    np.testing.assert_allclose(accuracy.result(), hits[MASK].mean())
    auto = metrics.get("accuracy", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    auto.update_state(trues, predicts, sample_weight=np.array([1.0, 0.0, 3.0]))
    w = np.broadcast_to(np.array([1.0, 0.0, 3.0])[:, None], IDS.shape)
    np.testing.assert_allclose(auto.result(), (hits * w)[MASK].sum() / w[MASK].sum())
    mse = metrics.MeanSquaredError()
    targets = rng.normal(size=predicts.shape)
    mse.update_state(targets, predicts)
    np.testing.assert_allclose(mse.result(), ((predicts.numpy() - targets) ** 2).mean(-1)[MASK].mean())


def test_masks_in_a_compiled_function_follow_each_calls_inputs() -> None:
    rng = np.random.default_rng(4)
    emb = layers.Embedding(8, 3, mask_zero=True, dtype=F64)
    lstm = layers.LSTM(4, return_sequences=True, dtype=F64)
    head = layers.Dense(5, dtype=F64)
    lossf = losses.SparseCategoricalCrossentropy(from_logits=True)

    def step(ids, labels):
        with tg.GradientTape() as tape:
            loss = lossf(labels, head(lstm(emb(ids))))
        return [loss, *tape.gradient(loss, lstm.trainable_variables())]

    compiled = tg.Function(step)
    for ids in (IDS, np.where(rng.random(IDS.shape) < 0.4, 0, IDS), IDS):
        labels = rng.integers(0, 5, IDS.shape)
        for got, want in zip(compiled(ids, labels), step(ids, labels)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    assert compiled.trace_count == 1


def test_a_transformer_block_carries_the_padding_mask_to_the_loss() -> None:
    rng = np.random.default_rng(5)
    nn = tg.NeuralNetworks(dtype=F64)
    emb = nn.layers.Embedding(8, 4, mask_zero=True)
    mha = nn.layers.MultiHeadAttention(2, 2)
    norm, head = nn.layers.LayerNormalization(), nn.layers.Dense(8)
    vectors = emb(IDS)
    x = layers.InheritMask()([tg.add(vectors, rng.normal(size=(5, 4))), vectors])
    x = norm(layers.Add()([x, mha(x, x, use_causal_mask=True)]))
    logits = head(x)
    np.testing.assert_array_equal(_mask(logits), MASK)
    labels = rng.integers(1, 8, IDS.shape)
    per_step = losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")(
        labels, tg.Variable(logits.numpy())).numpy()
    got = losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    np.testing.assert_allclose(got.numpy(), per_step[MASK].mean(), rtol=1e-12)


@pytest.mark.parametrize("jit", [False, True])
def test_fit_and_evaluate_metrics_skip_masked_positions(jit: bool) -> None:
    """The loss of fit/evaluate skipped padded positions but the metrics counted them."""
    rng = np.random.default_rng(5)
    nn = tg.NeuralNetworks()
    model = nn.models.Sequential([
        nn.layers.Embedding(10, 4, input_length=6, mask_zero=True),
        nn.layers.SimpleRNN(5, return_sequences=True),
        nn.layers.Dense(3, activation="softmax"),
    ])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"], jit=jit)
    ids = rng.integers(1, 10, (16, 6))
    ids[:, 3:] = 0  # half of every sequence is padding
    ids[0, 3:] = [4, 5, 6]
    labels = rng.integers(0, 3, ids.shape)
    labels[ids == 0] = 0  # padded positions: the label most often predicted there counts as a hit

    def masked_accuracy() -> float:
        hits = model.predict(ids, verbose=0).argmax(-1) == labels
        return float(hits[ids != 0].mean())

    for _ in range(2):  # again with other weights (a compiled step is called twice)
        loss, accuracy = model.evaluate(ids, labels, verbose=0)
        assert accuracy == pytest.approx(masked_accuracy(), abs=1e-12)
        before = masked_accuracy()
        history = model.fit(ids, labels, epochs=1, batch_size=16, shuffle=False, verbose=0)
        assert history.history["accuracy"][0] == pytest.approx(before, abs=1e-12)
