"""fit / evaluate / predict refuse data they would turn into nan or garbage (no samples,
strings, ragged lists) with errors naming the method and the argument, before any step;
layers refuse inputs that are not numbers."""

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.errors import OpTypeError, OpValueError
from tapegrad.nn import losses
from tapegrad.nn.layers import Activation, Concatenate, Dense, Embedding, Flatten
from tapegrad.nn.models import Sequential


def model(jit=True):
    tg.set_seed(0)
    m = Sequential([Dense(3, input_shape=[4])])
    m.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"], jit=jit)
    return m


X = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int32)


@pytest.mark.parametrize("jit", [True, False])
def test_no_samples_is_an_error_for_fit_evaluate_and_predict_as_in_keras(jit):
    m = model(jit)
    m.fit(X, Y, verbose=0)
    weights = m.get_weights()
    with pytest.raises(OpValueError, match=r"^fit: x has 0 samples \(shape \(0, 4\)\): there is nothing to train on"):
        m.fit(X[:0], Y[:0], verbose=0)
    with pytest.raises(OpValueError, match=r"^evaluate: x has 0 samples \(shape \(0, 4\)\): there is nothing to "
                                           r"evaluate"):
        m.evaluate(X[:0], Y[:0], verbose=0)
    with pytest.raises(OpValueError, match=r"^predict: x has 0 samples \(shape \(0, 4\)\): there is nothing to "
                                           r"predict"):
        m.predict(X[:0])
    with pytest.raises(OpValueError, match=r"^fit: validation_data has 0 samples"):
        m.fit(X, Y, validation_data=(X[:0], Y[:0]), verbose=0)
    for w, before in zip(m.get_weights(), weights):
        np.testing.assert_array_equal(w, before)


def test_no_samples_in_one_of_several_inputs_and_in_datasets():
    class TwoInputs(tg.AbstractModel):
        def __init__(self):
            super().__init__()
            self.merge = Concatenate()
            self.out = Dense(2)

        def call(self, inputs, training=None):
            return self.out(self.merge(inputs))

    m = TwoInputs()
    m.compile("sgd", losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(OpValueError, match=r"^fit: x has 0 samples \(shape \[\(0, 4\), \(0, 2\)\]\)"):
        m.fit([X[:0], X[:0, :2]], Y[:0], verbose=0)
    with pytest.raises(OpValueError, match=r"^fit: the dataset given as x has no batches"):
        m.fit(tg.nn.data.NDArrayDataset(X[:0], tests=Y[:0]), verbose=0)


def test_a_dataset_that_runs_dry_after_the_first_epoch_stops_fit_with_an_error():
    m = model()

    class Once:  # a generator-like dataset: its batches are gone after one pass
        def __init__(self):
            self.batches = iter([(X[:8], Y[:8]), (X[8:], Y[8:])])

        def __iter__(self):
            return self.batches

    with pytest.raises(OpValueError, match=r"^fit: the dataset given as x yielded no batches in epoch 2: there is "
                                           r"nothing to train on"):
        m.fit(Once(), epochs=3, verbose=0)
    assert m.history.epoch == [0] and len(m.history.history["loss"]) == 1  # the finished epoch is kept
    spent = Once()
    list(spent)
    with pytest.raises(OpValueError, match=r"^evaluate: the dataset given as x yielded no batches"):
        m.evaluate(spent, verbose=0)


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_strings_are_refused_naming_the_method_and_the_argument(method):
    m = model()
    args = (["a", "b"], Y[:2]) if method != "predict" else (["a", "b"],)
    with pytest.raises(OpTypeError, match=rf"^{method}: x holds strings, not numbers: got a list of 2 str \(an array "
                                          r"of dtype <U1\); expected a float array of shape \(samples, \.\.\.\)"):
        getattr(m, method)(*args, verbose=0)
    if method == "fit":
        with pytest.raises(OpTypeError, match=r"^fit: y holds strings, not numbers: got an array of dtype <U3 and "
                                              r"shape \(2,\)"):
            m.fit(X[:2], np.array(["cat", "dog"]), verbose=0)
        with pytest.raises(OpValueError, match=r"^fit: x is a nested list whose rows differ in length"):
            m.fit([[1.0, 2.0, 3.0, 4.0], [1.0]], Y[:2], verbose=0)
        with pytest.raises(OpTypeError, match=r"^train_on_batch: x holds Python objects"):
            m.train_on_batch(np.array([None, 1.0]), Y[:2])


@pytest.mark.parametrize("layer, x, message", [
    (Dense(2), np.array(["a", "b"]),
     r"^Dense: input has dtype <U1 \(strings\) of shape \(2,\) in layer 'dense.*'; expected a float array$"),
    (Flatten(), np.array([[b"x"]]), r"^Flatten: input has dtype \|S1 \(bytes\)"),
    (Activation("relu"), np.array([[1 + 2j]]), r"^Activation: input has dtype complex128 \(complex numbers\)"),
    (Embedding(10, 2), np.array([["3"]]), r"^Embedding: input has dtype <U1 .*; expected an integer array of "
                                          r"indices$"),
    (Concatenate(), [np.ones((1, 2)), np.array([["a", "b"]], dtype=object)],
     r"^Concatenate: input #1 has dtype object \(Python objects\)"),
])
def test_layers_refuse_inputs_that_are_not_numbers(layer, x, message):
    with pytest.raises(OpTypeError, match=message):
        layer(x)
    assert not layer.built  # nothing was created


def test_numbers_of_every_kind_still_go_through_the_layers():
    np.testing.assert_array_equal(np.asarray(Activation("relu")(np.array([[True, False]]))), [[1.0, 0.0]])
    assert Dense(2)(np.ones((3, 4), np.int64)).shape == (3, 2)
    assert Embedding(10, 2)(np.array([[1, 2]], np.uint8)).shape == (1, 2, 2)
