"""API §9, the model side of Rindow compatibility: how model(...) passes arguments to call, several
inputs in fit/evaluate/predict/build, compile()'s Rindow defaults, "loss" and dicts in metrics,
true_values_filter, History as a dict, set_shape_inspection, 1-based user schedules, Rindow's
spellings of losses and of the file methods."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.nn import losses
from tapegrad.nn.optimizers import SGD, Adam, ExponentialDecay, LearningRateSchedule

nn = tg.NeuralNetworks()
g, K = nn.gradient(), nn.backend()


def two_class_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    return x, y


# -- call(): several inputs, by name -------------------------------------------------------------
class TwoInputs(tg.AbstractModel):
    """Rindow's transformer: call(context, x, training) with two inputs."""

    def __init__(self, builder):
        super().__init__(builder)
        self.a = builder.layers.Dense(3, name="a")
        self.b = builder.layers.Dense(3, name="b")
        self.seen = []

    def call(self, context, x, training=None):
        self.seen.append(training)
        return g.add(self.a(context), self.b(x))


def test_model_with_two_inputs_by_position_list_and_forward():
    tg.set_seed(1)
    m = TwoInputs(nn)
    c = np.ones((2, 4), np.float32)
    x = np.full((2, 5), 2.0, np.float32)
    out = m(c, x, training=False)
    assert out.shape == (2, 3) and m.seen == [False]
    assert m.input_shape == [(4,), (5,)]
    np.testing.assert_allclose(m([c, x]).numpy(), out.numpy())  # one list: spread over the inputs
    np.testing.assert_allclose(m.forward(c, x, False).numpy(), out.numpy())  # training after the inputs
    assert m.seen[1:] == [None, False]
    want = c @ m.a.get_weights()[0] + m.a.get_weights()[1] + x @ m.b.get_weights()[0] + m.b.get_weights()[1]
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6)


def test_fit_evaluate_predict_take_a_list_of_inputs_for_a_two_input_call():
    tg.set_seed(2)
    rng = np.random.default_rng(0)
    c = rng.normal(size=(96, 4)).astype(np.float32)
    x = rng.normal(size=(96, 5)).astype(np.float32)
    y = (c[:, 0] - x[:, 1] > 0).astype(np.int32)
    m = TwoInputs(nn)
    m.compile(optimizer=Adam(0.05), loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    history = m.fit([c, x], y, epochs=15, batch_size=32, verbose=0)
    assert history["accuracy"][-1] > 0.9  # above the 0.5 of chance by 0.4
    assert True in m.seen
    evaluated = m.evaluate([c, x], y, verbose=0, return_dict=True)
    predictions = m.predict((c, x), batch_size=40)
    assert predictions.shape == (96, 3)
    assert evaluated["accuracy"] == pytest.approx(float(np.mean(predictions.argmax(-1) == y)))


def test_build_takes_array_specs_with_the_batch_axis_and_trues():
    class Seq2seq(tg.AbstractModel):
        def __init__(self, builder):
            super().__init__(builder)
            self.embedding = builder.layers.Embedding(10, 4)
            self.out = builder.layers.Dense(10)
            self.got_trues = None

        def call(self, inputs, trues=None):  # Rindow's seq2seq: no training argument
            self.got_trues = trues
            return self.out(self.embedding(inputs))

    m = Seq2seq(nn)
    m.build(g.ArraySpec([1, 6], dtype="int32"), trues=g.ArraySpec([1, 6], dtype="int32"))
    assert m.built and m.embedding.input_shape == (6,) and m.got_trues.shape == (1, 6)
    assert m.got_trues.dtype == np.int32
    assert g.ArraySpec is tg.TensorSpec

    t = TwoInputs(nn)
    t.build(g.ArraySpec([1, 4]), g.ArraySpec([1, 7]))
    assert t.a.input_shape == (4,) and t.b.input_shape == (7,)
    custom = TwoInputs(nn)
    custom.build([4], [7])  # shapes without the batch axis, one per input
    assert custom.b.kernel.shape == (7, 3)


def test_model_call_errors_name_the_model():
    m = TwoInputs(nn)
    with pytest.raises(TypeError, match="training given by position"):
        m(np.ones((1, 4)), np.ones((1, 5)), True, training=True)
    with pytest.raises(TypeError, match="no positional argument"):
        m()


# -- compile() ------------------------------------------------------------------------------------
def test_compile_defaults_are_rindows():
    m = tg.Sequential([nn.layers.Dense(2, input_shape=[4], activation="softmax")])
    m.compile()
    assert type(m.optimizer).__name__ == "SGD" and m.optimizer.learning_rate == pytest.approx(0.01)
    assert isinstance(m._loss_fn, losses.SparseCategoricalCrossentropy)
    assert m.metrics_names == ["loss", "accuracy"]
    x, y = two_class_data()
    history = m.fit(x, y, epochs=2, verbose=0)
    assert list(history) == ["loss", "accuracy"]


def test_metrics_accept_loss_and_a_dict_of_names():
    calls = []

    def matches(trues, predicts):  # Rindow's custom accuracy: one number per batch
        calls.append(predicts.shape)
        return float(np.mean(np.argmax(predicts, axis=-1) == trues))

    x, y = two_class_data()
    m = tg.Sequential([nn.layers.Dense(2, input_shape=[4])])
    m.compile(optimizer="adam", loss=losses.SparseCategoricalCrossEntropy(from_logits=True),
              metrics={"loss": "loss", "accuracy": matches})
    assert m.metrics_names == ["loss", "accuracy"]
    h = m.fit(x, y, epochs=1, batch_size=16, verbose=0, validation_data=(x, y))
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy"} and calls
    predictions = m.predict(x)
    assert h["val_accuracy"][0] == pytest.approx(float(np.mean(predictions.argmax(-1) == y)))
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy", "loss"])
    assert m.metrics_names == ["loss", "accuracy"]


# -- true_values_filter -----------------------------------------------------------------------------
class SeesTrues(tg.AbstractModel):
    def __init__(self, builder):
        super().__init__(builder)
        self.dense = builder.layers.Dense(3)
        self.trues_seen = []

    def call(self, inputs, training=None, trues=None):
        self.trues_seen.append(None if trues is None else np.array(trues))
        return self.dense(inputs)


def test_true_values_filter_maps_the_targets_of_the_loss_and_metrics_only():
    tg.set_seed(3)
    x, y = two_class_data(48)
    shift = lambda t: (t + 1) % 3  # noqa: E731
    m = SeesTrues(nn)
    m.compile(optimizer=SGD(0.0), loss=losses.SparseCategoricalCrossentropy(from_logits=True), jit=False)
    plain = m.evaluate(x, shift(y), batch_size=16, verbose=0, return_dict=True)
    m.trues_seen.clear()
    filtered = m.evaluate(x, y, batch_size=16, verbose=0, return_dict=True, true_values_filter=shift)
    assert filtered == pytest.approx(plain)
    np.testing.assert_array_equal(np.concatenate(m.trues_seen), y)  # call gets the targets unfiltered
    m.trues_seen.clear()
    h = m.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0, true_values_filter=shift,
              validation_data=(x, y))
    assert h["loss"][0] == pytest.approx(plain["loss"], rel=1e-6)  # lr 0: the weights did not move
    assert h["accuracy"][0] == pytest.approx(plain["accuracy"])
    assert h["val_loss"][0] == pytest.approx(plain["loss"], rel=1e-6)
    np.testing.assert_array_equal(np.concatenate(m.trues_seen[:3]), y)


def test_true_values_filter_as_a_model_method_and_compiled():
    class Shifted(SeesTrues):
        def call(self, inputs, training=None, trues=None):
            return self.dense(inputs)

        def true_values_filter(self, trues):  # Rindow: protected function trueValuesFilter
            return (trues + 1) % 3

    tg.set_seed(4)
    x, y = two_class_data(32)
    m = Shifted(nn)
    m.compile(optimizer=SGD(0.0), loss=losses.SparseCategoricalCrossentropy(from_logits=True))  # jit
    logits = m.predict(x)
    want = losses.SparseCategoricalCrossentropy(from_logits=True)((y + 1) % 3, logits)
    h = m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert h["loss"][0] == pytest.approx(float(want), rel=1e-5)
    with pytest.raises(TypeError, match="true_values_filter must be a function"):
        m.fit(x, y, verbose=0, true_values_filter=3)


def test_fit_checks_the_filtered_targets_before_training():
    x, y = two_class_data(16)
    m = SeesTrues(nn)
    m.compile(optimizer="sgd", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    m.build([4])
    before = m.get_weights()
    with pytest.raises(ValueError, match="fit: y does not suit the loss"):
        m.fit(x, y, verbose=0, true_values_filter=lambda t: t + 5)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- History reads like Rindow's dict ----------------------------------------------------------------
def test_history_is_subscriptable():
    x, y = two_class_data()
    m = tg.Sequential([nn.layers.Dense(2, input_shape=[4])])
    m.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    h = m.fit(x, y, epochs=3, verbose=0, validation_data=(x, y))
    assert h["loss"] is h.history["loss"] and len(h["accuracy"]) == 3
    assert "val_accuracy" in h and "nope" not in h and len(h) == 4
    assert dict(h.items()) == h.history and list(h.keys()) == list(h)
    assert h.get("nope", []) == []
    with pytest.raises(KeyError, match="has no 'acc'"):
        h["acc"]
    assert bool(tg.History())


# -- shape inspection -------------------------------------------------------------------------------
def test_set_shape_inspection_lets_a_built_model_take_other_lengths():
    class Decoder(tg.AbstractModel):
        def __init__(self, builder):
            super().__init__(builder)
            self.embedding = builder.layers.Embedding(12, 4, input_length=6)
            self.blocks = g.modules([builder.layers.Dense(5)])
            self.out = builder.layers.Dense(12)

        def call(self, inputs, training=None):
            x = self.embedding(inputs)
            for block in self.blocks:
                x = block(x)
            return self.out(x)

    m = Decoder(nn)
    m(np.zeros((2, 6), np.int32))
    one_token = np.array([[3]], np.int32)
    with pytest.raises(ValueError, match=r"expected inputs of shape \(6,\)"):
        m(one_token)
    assert m.shape_inspection() and m.embedding.shape_inspection()
    m.set_shape_inspection(False)
    assert not m.embedding.shape_inspection() and not m.blocks[0].shape_inspection()
    out = m(one_token)
    assert out.shape == (1, 1, 12)
    want = m(np.array([[3, 0, 0, 0, 0, 0]], np.int32)).numpy()[:, :1]
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6)
    m.set_shape_inspection(True)
    with pytest.raises(ValueError, match="expected inputs"):
        m(one_token)
    layer = nn.layers.Dense(2)
    layer(np.zeros((1, 3), np.float32))
    layer.set_shape_inspection(False)
    assert layer.shape_inspection() is False


# -- learning-rate schedules -----------------------------------------------------------------------
def test_user_schedules_get_the_1_based_step_built_ins_keep_keras():
    steps = []

    class Warmup(LearningRateSchedule):  # Rindow's CustomSchedule: 1 / sqrt(step) fails at 0
        def __call__(self, step):
            steps.append(step)
            return 0.1 / np.sqrt(step)

        def get_config(self):
            return {}

    seen = []
    w = tg.Variable(np.zeros(2, np.float32))
    for lr in (Warmup(), lambda step: seen.append(step) or 0.1):
        opt = SGD(lr)
        for _ in range(3):
            opt.update([w], [np.ones(2, np.float32)])
    assert steps == [1, 2, 3] and seen == [1, 2, 3]
    decay = ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
    opt = SGD(decay)
    assert opt.learning_rate == 1.0  # Keras: the first update uses decay(0)
    v = tg.Variable(np.zeros(1, np.float32))
    opt.update([v], [np.ones(1, np.float32)])
    np.testing.assert_allclose(v.numpy(), [-1.0])
    assert opt.learning_rate == 0.5


# -- Rindow's spellings -------------------------------------------------------------------------------
def test_loss_spellings_and_file_methods(tmp_path):
    assert nn.losses.SparseCategoricalCrossEntropy is losses.SparseCategoricalCrossentropy
    assert nn.losses().CategoricalCrossEntropy is losses.CategoricalCrossentropy
    assert nn.losses.BinaryCrossEntropy is losses.BinaryCrossentropy
    assert {"SparseCategoricalCrossEntropy", "BinaryCrossEntropy"} <= set(losses.__all__)
    tg.set_seed(5)
    x, y = two_class_data()
    m = tg.Sequential([nn.layers.Dense(2, input_shape=[4])])
    m.compile(optimizer="adam", loss=nn.losses.SparseCategoricalCrossEntropy(from_logits=True))
    m.fit(x, y, epochs=1, verbose=0)
    m.save(tmp_path / "m.model", portable=True)
    np.testing.assert_allclose(tg.load_model(tmp_path / "m.model").predict(x), m.predict(x))
    m.save_weights_to_file(tmp_path / "w.model", portable=True)
    other = tg.Sequential([nn.layers.Dense(2, input_shape=[4])])
    other.compile(optimizer="adam", loss=nn.losses.SparseCategoricalCrossEntropy(from_logits=True))
    other.build()
    other.load_weights_from_file(tmp_path / "w.model", portable=True)
    np.testing.assert_allclose(other.predict(x), m.predict(x))
