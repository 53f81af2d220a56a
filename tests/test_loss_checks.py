"""No silent wrong results from the cross-entropy losses: targets they cannot take are
errors (eagerly, while tracing, and in fit/evaluate before any compiled step), and
probabilities that look like logits warn once."""

import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.errors import OpValueError
from tapegrad.nn import loss_checks, losses
from tapegrad.nn.layers import Dense
from tapegrad.nn.models import Sequential


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(loss_checks, "_warned_not_probabilities", set())


def probabilities(rows=4, classes=3, seed=0):
    e = np.exp(np.random.default_rng(seed).normal(size=(rows, classes)))
    return e / e.sum(-1, keepdims=True)


# -- binary and categorical trues are probabilities ---------------------------------------------
@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_labels_outside_0_1_are_an_error_naming_the_count_and_the_first(from_logits):
    bce = losses.BinaryCrossentropy(from_logits=from_logits)
    with pytest.raises(OpValueError, match=r"^BinaryCrossentropy: trues must be probabilities in \[0, 1\] .*; "
                                           r"2 of 3 values \(the first: 2\.0 at index \(0,\)\) are not"):
        bce(np.array([2.0, 0.0, -1.0]), np.array([0.3, 0.6, 0.5]))
    with pytest.raises(OpValueError, match=r"^binary_crossentropy: .*1 of 4 values \(the first: nan at index "
                                           r"\(1, 0\)\)"):
        losses.binary_crossentropy(np.array([[0.0, 1.0], [np.nan, 1.0]]), np.full((2, 2), 0.5))


def test_valid_binary_trues_still_give_the_binary_cross_entropy():
    p = np.array([0.2, 0.7, 0.9])
    for trues in (np.array([0, 1, 1]), np.array([False, True, True]), np.array([0.0, 0.25, 1.0])):
        t = trues.astype(np.float64)
        expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
        assert float(losses.BinaryCrossentropy()(trues, p)) == pytest.approx(expected, rel=1e-12)


def test_categorical_trues_outside_0_1_are_an_error_and_other_rows_are_taken_as_keras_and_torch_do():
    cce = losses.CategoricalCrossentropy()
    p = probabilities(3, 2)
    with pytest.raises(OpValueError, match=r"CategoricalCrossentropy: trues must be probabilities in \[0, 1\].*"
                                           r"2 of 6 values \(the first: -1\.0 at index \(1, 0\)\)"):
        cce(np.array([[1.0, 0.0], [-1.0, 2.0], [0.0, 1.0]]), p)
    # an all-zero (padding) row and a row with two positives: -sum(trues * log(p)), no warning
    trues = np.array([[1.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = float(cce(trues, p))
    assert value == pytest.approx(-(np.log(p[0]).sum() + np.log(p[2, 1])) / 3, rel=1e-12)


def test_sparse_labels_out_of_range_name_the_count_and_the_first_position():
    scce = losses.SparseCategoricalCrossentropy(from_logits=True)
    with pytest.raises(OpValueError, match=r"trues hold the label 9, outside the range \[0, 3\) of predicts with 3 "
                                           r"classes .*: 2 of 4 labels \(the first: 7 at index \(1,\)\) are out of "
                                           r"range"):
        scce(np.array([0, 7, 1, 9]), np.zeros((4, 3)))
    ignoring = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    assert float(ignoring(np.array([0, -1, 1, -1]), np.zeros((4, 3)))) == pytest.approx(np.log(3))


# -- from_logits=False given logits ----------------------------------------------------------------
@pytest.mark.parametrize("make, trues, axis", [
    (losses.SparseCategoricalCrossentropy, np.array([0, 2, 1, 0]), -1),
    (losses.CategoricalCrossentropy, np.eye(3)[[0, 2, 1, 0]], -1),
    (losses.BinaryCrossentropy, np.array([[0.0, 1.0, 1.0]] * 4), None),
])
def test_logits_with_from_logits_false_warn_once_and_probabilities_do_not(make, trues, axis):
    logits = np.random.default_rng(1).normal(scale=3.0, size=(4, 3))
    loss = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss(trues, probabilities() if axis is not None else 1 / (1 + np.exp(-logits)))
    with pytest.warns(UserWarning, match=rf"^{make.__name__}: from_logits=False, but predicts are not probabilities "
                                         r"\(.* are outside \[0, 1\]\).*pass from_logits=True"):
        value = float(loss(trues, logits))
    assert value == float(make()(trues, logits))  # still computed as before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make()(trues, logits)  # warned once for this loss


def test_positive_scores_whose_rows_do_not_sum_to_1_warn_for_the_categorical_losses():
    scores = probabilities() * 0.5  # in [0, 1], but each row sums to 0.5
    with pytest.warns(UserWarning, match=r"sparse_categorical_crossentropy: from_logits=False, .*the sums of 4 of 4 "
                                         r"rows \(the first: 0\.5.* are not 1"):
        losses.sparse_categorical_crossentropy(np.array([0, 1, 2, 0]), scores)


def test_the_warning_comes_while_tracing_a_compiled_function_and_labels_are_checked_then():
    loss = losses.BinaryCrossentropy()
    step = tg.Function(lambda t, p: loss(t, p))
    with pytest.warns(UserWarning, match="from_logits=True"):
        step(np.array([0.0, 1.0]), tg.Variable(np.array([2.0, -1.0])))
    bad = tg.Function(lambda t, p: loss(t, p))
    with pytest.raises(OpValueError, match=r"BinaryCrossentropy: trues must be probabilities"):
        bad(np.array([0.0, 3.0]), tg.Variable(np.array([0.5, 0.5])))


# -- fit and evaluate check every target once, before a compiled step runs without checks -------
def binary_model(jit):
    tg.set_seed(0)
    m = Sequential([Dense(1, input_shape=[2])])
    m.compile("sgd", losses.BinaryCrossentropy(from_logits=True), jit=jit)
    return m


@pytest.mark.parametrize("jit", [True, False])
def test_fit_refuses_binary_labels_outside_0_1_anywhere_before_the_first_step(jit):
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    m = binary_model(jit)
    m.fit(x[:8], y[:8], batch_size=8, verbose=0)  # builds (and, with jit, compiles) the steps
    before = m.get_weights()
    y[40] = 2.0  # in the sixth batch
    with pytest.raises(OpValueError, match=r"^fit: y does not suit the loss: BinaryCrossentropy: trues must be "
                                           r"probabilities in \[0, 1\].*1 of 64 values \(the first: 2\.0 at index "
                                           r"\(40, 0\)\)"):
        m.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    for w, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(w, b)  # no step ran
    with pytest.raises(OpValueError, match=r"^evaluate: y does not suit the loss: BinaryCrossentropy"):
        m.evaluate(x, y, batch_size=8, verbose=0)
    with pytest.raises(OpValueError, match=r"^fit: the y of validation_data does not suit the loss"):
        m.fit(x[:8], y[:8], validation_data=(x, y), verbose=0)
    with pytest.raises(OpValueError, match=r"^train_on_batch: y does not suit the loss"):
        m.train_on_batch(x[32:48], y[32:48])


def test_compiled_fit_refuses_fractional_and_out_of_range_sparse_labels():
    tg.set_seed(0)
    m = Sequential([Dense(3, input_shape=[2])])
    m.compile("sgd", losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
    y = np.zeros(32, np.float32)
    m.fit(x, y, batch_size=8, verbose=0)
    y[20] = 1.5  # the compiled step would cast it to 1 silently
    with pytest.raises(OpValueError, match=r"^fit: y does not suit the loss: SparseCategoricalCrossentropy: trues "
                                           r"must be integer class labels; .* value 1\.5: 1 of 32 labels \(the "
                                           r"first: 1\.5 at index \(20,\)\)"):
        m.fit(x, y, batch_size=8, verbose=0)
    y[20] = 3
    with pytest.raises(OpValueError, match=r"label 3, outside the range \[0, 3\) of predicts with 3 classes"):
        m.evaluate(x, y, verbose=0)


def test_a_loss_function_wrapper_of_a_crossentropy_checks_the_same():
    m = Sequential([Dense(1, input_shape=[2])])
    m.compile("sgd", lambda t, p: losses.binary_crossentropy(t, p, from_logits=True))
    assert m._loss_fn.fn is not losses.binary_crossentropy  # a lambda: not checked up front, only eagerly
    m.compile("sgd", losses.LossFunctionWrapper(losses.binary_crossentropy, from_logits=True))
    with pytest.raises(OpValueError, match=r"^fit: y does not suit the loss: binary_crossentropy: trues must be"):
        m.fit(np.zeros((4, 2), np.float32), np.array([0.0, 1.0, -1.0, 0.0]), verbose=0)
