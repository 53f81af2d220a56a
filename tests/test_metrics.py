"""Metrics: values against NumPy references, accumulation over batches, reset, the
choice of accuracy variant, names and lookup."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.nn import losses, metrics

RNG = np.random.default_rng(99)


def batches(sizes=(7, 5, 3), classes=4):
    """Batches of (integer labels, scores) of different sizes."""
    out = []
    for n in sizes:
        out.append((RNG.integers(0, classes, n), RNG.normal(0, 1, (n, classes))))
    return out


def test_sparse_categorical_accuracy_accumulates_over_batches():
    data = batches()
    metric = metrics.SparseCategoricalAccuracy()
    assert metric.result() == 0.0 and metric.name == "sparse_categorical_accuracy"
    for i, (y, p) in enumerate(data):
        metric.update_state(y, p)
        seen = data[: i + 1]
        hits = sum(int((np.argmax(q, -1) == t).sum()) for t, q in seen)
        assert metric.result() == pytest.approx(hits / sum(len(t) for t, _ in seen))
        assert isinstance(metric.result(), float)
    metric.reset_state()
    assert metric.result() == 0.0
    y, p = data[0]
    assert metric(y[:, None], tg.Variable(p)) == pytest.approx(np.mean(np.argmax(p, -1) == y))  # (n, 1), Variable


def test_categorical_accuracy_and_ties():
    y, p = batches((9,))[0]
    onehot = np.eye(4)[y]
    metric = metrics.CategoricalAccuracy()
    metric.update_state(onehot, p)
    assert metric.result() == pytest.approx(np.mean(np.argmax(p, -1) == y))
    tie = metrics.CategoricalAccuracy()
    tie.update_state(np.array([[1, 0, 0], [0, 0, 1]]), np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4]]))
    assert tie.result() == 0.5  # the first maximum wins, as np.argmax and Keras


def test_many_classes_and_extra_axes():
    y = RNG.integers(0, 100, (3, 5))
    p = RNG.normal(0, 1, (3, 5, 100))
    metric = metrics.SparseCategoricalAccuracy()
    metric.update_state(y, p)
    assert metric.result() == pytest.approx(np.mean(np.argmax(p, -1) == y))
    p[..., 7] = 50.0
    y[:] = 7
    assert metrics.SparseCategoricalAccuracy()(y, p) == 1.0


def test_binary_accuracy():
    t = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 1, 0]], dtype=np.float32)
    p = np.array([[0.9, 0.2, 0.4], [0.1, 0.6, 0.7], [0.5, 0.51, 0.99], [0.3, 0.8, 0.0]])
    metric = metrics.BinaryAccuracy()
    metric.update_state(t[:2], p[:2])
    metric.update_state(t[2:], p[2:])
    assert metric.result() == pytest.approx(np.mean(t == (p > 0.5)))
    assert metrics.BinaryAccuracy(threshold=0.45)(t, p) == pytest.approx(np.mean(t == (p > 0.45)))
    # (batch,) trues against (batch, 1) predictions: per sample, not a (batch, batch) broadcast
    assert metrics.BinaryAccuracy()(np.array([1, 0, 1]), np.array([[0.7], [0.6], [0.2]])) == pytest.approx(1 / 3)


def test_regression_metrics():
    t = RNG.normal(0, 1, (6, 3))
    p = RNG.normal(0, 1, (6, 3))
    mse, mae = metrics.MeanSquaredError(), metrics.MeanAbsoluteError()
    for lo, hi in ((0, 2), (2, 6)):
        mse.update_state(t[lo:hi], p[lo:hi])
        mae.update_state(t[lo:hi], p[lo:hi])
    assert mse.result() == pytest.approx(np.mean((p - t) ** 2))
    assert mae.result() == pytest.approx(np.mean(np.abs(p - t)))
    col = metrics.MeanSquaredError()
    col.update_state(t[:, 0], p[:, :1])  # (n,) with (n, 1)
    assert col.result() == pytest.approx(np.mean((p[:, 0] - t[:, 0]) ** 2))
    with pytest.raises(ValueError, match=r"mean_squared_error: trues of shape \(6,\) do not match predicts of "
                                         r"shape \(6, 3\)"):
        metrics.MeanSquaredError().update_state(t[:, 0], p)


def test_sample_weight():
    y, p = batches((6,))[0]
    w = np.array([1.0, 0.0, 2.0, 1.0, 0.5, 0.0])
    metric = metrics.SparseCategoricalAccuracy()
    metric.update_state(y, p, sample_weight=w)
    hits = (np.argmax(p, -1) == y).astype(float)
    assert metric.result() == pytest.approx((hits * w).sum() / w.sum())


def test_mean_of_callable():
    def abs_diff(trues, predicts):  # per-sample values
        return np.abs(np.asarray(predicts) - np.asarray(trues)).sum(-1)

    def batch_mean(trues, predicts):  # one number per batch
        return float(np.mean(np.asarray(predicts) - np.asarray(trues)))

    def as_variable(trues, predicts):  # a tapegrad result
        return tg.reduce_mean(tg.square(tg.Variable(predicts) - trues), axis=-1)

    t = RNG.normal(0, 1, (10, 2))
    p = RNG.normal(0, 1, (10, 2))
    per = metrics.get(abs_diff)
    assert isinstance(per, metrics.MeanMetricWrapper) and per.name == "abs_diff"
    scalar = metrics.get(batch_mean)
    var = metrics.get(as_variable)
    for lo, hi in ((0, 7), (7, 10)):  # unequal batches
        for m in (per, scalar, var):
            m.update_state(t[lo:hi], p[lo:hi])
    assert per.result() == pytest.approx(np.abs(p - t).sum(-1).mean())
    assert scalar.result() == pytest.approx(np.mean(p - t))  # weighted by batch size: the overall mean
    assert var.result() == pytest.approx(np.mean((p - t) ** 2))
    mean = metrics.Mean()
    mean.update_state([1.0, 2.0, 3.0])
    mean.update_state(10.0)
    assert mean.result() == pytest.approx(4.0)


def test_crossentropy_metrics_equal_the_losses():
    y, p = batches((8,))[0]
    metric = metrics.get("sparse_categorical_crossentropy", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    metric.update_state(y[:5], p[:5])
    metric.update_state(y[5:], p[5:])
    expected = float(losses.SparseCategoricalCrossentropy(from_logits=True)(y, p))
    assert metric.result() == pytest.approx(expected, rel=1e-12)
    assert metrics.get("sparse_categorical_crossentropy").fn_kwargs["from_logits"] is False
    soft = np.abs(p) / np.abs(p).sum(-1, keepdims=True)
    assert metrics.CategoricalCrossentropy()(np.eye(4)[y], soft) == pytest.approx(
        float(losses.CategoricalCrossentropy()(np.eye(4)[y], soft)), rel=1e-12)


@pytest.mark.parametrize("loss, expected", [
    (losses.SparseCategoricalCrossentropy(from_logits=True), metrics.SparseCategoricalAccuracy),
    ("sparse_categorical_crossentropy", metrics.SparseCategoricalAccuracy),
    (losses.CategoricalCrossentropy(), metrics.CategoricalAccuracy),
    ("categorical_crossentropy", metrics.CategoricalAccuracy),
    (losses.BinaryCrossentropy(), metrics.BinaryAccuracy),
    (losses.binary_crossentropy, metrics.BinaryAccuracy),
    (losses.LossFunctionWrapper(losses.sparse_categorical_crossentropy), metrics.SparseCategoricalAccuracy),
    (losses.MeanSquaredError(), metrics.AutoAccuracy),
    (None, metrics.AutoAccuracy),
])
def test_accuracy_is_picked_from_the_loss(loss, expected):
    for name in ("accuracy", "acc"):
        metric = metrics.get(name, loss=loss)
        assert type(metric) is expected and metric.name == name


def test_binary_accuracy_for_logits_thresholds_at_zero():
    assert metrics.get("accuracy", loss=losses.BinaryCrossentropy()).threshold == 0.5
    metric = metrics.get("accuracy", loss=losses.BinaryCrossentropy(from_logits=True))
    assert metric.threshold == 0.0
    assert metric(np.array([1, 0, 1, 0]), np.array([0.3, -2.0, -0.1, 0.2])) == 0.5


@pytest.mark.parametrize("trues, predicts, variant", [
    (np.array([1, 0, 1]), np.array([[0.8], [0.3], [0.4]]), metrics.BinaryAccuracy),
    (np.array([1.0, 0.0, 1.0]), np.array([0.8, 0.3, 0.4]), metrics.BinaryAccuracy),
    (np.array([2, 0, 1]), np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2], [0.6, 0.3, 0.1]]),
     metrics.SparseCategoricalAccuracy),
    (np.array([[2], [0], [1]]), np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2], [0.6, 0.3, 0.1]]),
     metrics.SparseCategoricalAccuracy),
    (np.eye(3)[[2, 0, 1]], np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2], [0.6, 0.3, 0.1]]),
     metrics.CategoricalAccuracy),
])
def test_accuracy_without_a_loss_is_picked_from_the_shapes(trues, predicts, variant):
    metric = metrics.get("accuracy")
    metric.update_state(trues, predicts)
    assert type(metric.metric) is variant and metric.metric.name == "accuracy"
    assert metric.result() == pytest.approx(2 / 3)
    metric.update_state(trues[:1], predicts[:1])  # the choice is kept
    assert metric.result() == pytest.approx(3 / 4)
    metric.reset_state()
    assert metric.result() == 0.0


@pytest.mark.parametrize("name, cls", [
    ("mse", metrics.MeanSquaredError), ("mean_squared_error", metrics.MeanSquaredError),
    ("mae", metrics.MeanAbsoluteError), ("mean_absolute_error", metrics.MeanAbsoluteError),
    ("binary_accuracy", metrics.BinaryAccuracy), ("categorical_accuracy", metrics.CategoricalAccuracy),
    ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy),
    ("SparseCategoricalAccuracy", metrics.SparseCategoricalAccuracy),
    ("binary_crossentropy", metrics.BinaryCrossentropy),
])
def test_get_by_name_keeps_the_name(name, cls):
    metric = metrics.get(name)
    assert type(metric) is cls and metric.name == name


def test_get_other_identifiers_and_config_round_trip():
    metric = metrics.BinaryAccuracy(name="bin", threshold=0.3)
    assert metrics.get(metric) is metric
    assert type(metrics.get(metrics.CategoricalAccuracy)) is metrics.CategoricalAccuracy
    config = metrics.serialize(metric)
    assert config == json.loads(json.dumps(config))
    again = metrics.get(config)
    assert type(again) is metrics.BinaryAccuracy and again.threshold == 0.3 and again.name == "bin"
    wrapped = metrics.deserialize(metrics.serialize(metrics.MeanMetricWrapper(metrics.mean_absolute_error)))
    assert wrapped.fn is metrics.mean_absolute_error
    with pytest.raises(ValueError, match=r"metrics.get: unknown metric 'accuracyy'; known names: accuracy"):
        metrics.get("accuracyy")
    with pytest.raises(TypeError, match=r"metrics.get: cannot make a metric from int"):
        metrics.get(5)


def test_builder_facade():
    nn = tg.NeuralNetworks()
    metric = nn.metrics.SparseCategoricalAccuracy()
    assert metric(np.array([1, 0]), np.array([[0.1, 0.9], [0.2, 0.8]])) == 0.5
    assert type(nn.metrics.get("accuracy", loss=nn.losses.SparseCategoricalCrossentropy())) is \
        metrics.SparseCategoricalAccuracy


def test_label_errors_name_the_metric():
    with pytest.raises(ValueError, match=r"sparse_categorical_accuracy: trues of shape \(3,\) do not match predicts "
                                         r"of shape \(2, 4\)"):
        metrics.SparseCategoricalAccuracy().update_state(np.zeros(3), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"categorical_accuracy: .*integer labels need SparseCategoricalAccuracy"):
        metrics.CategoricalAccuracy().update_state(np.zeros(2), np.zeros((2, 4)))
    with pytest.raises(TypeError, match=r"binary_accuracy: trues has dtype <U1"):
        metrics.BinaryAccuracy().update_state(np.array(["a", "b"]), np.zeros(2))
