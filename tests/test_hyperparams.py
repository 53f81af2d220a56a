"""Constructors check their hyperparameters: a NaN, infinite, negative, out-of-range or
absurdly large value (given by a user or read from a model file) raises a ValueError or
TypeError naming the class, the argument and the value, instead of training silently
wrong."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import layers, losses
from tapegrad import optimizers as O  # noqa: N812
from tapegrad.errors import OpTypeError, OpValueError
from tapegrad.nn.optimizers import schedules

NAN, INF = math.nan, math.inf

# (constructor, error class, words the message must hold: the class, the argument, the value)
BAD = [
    # the four of the issue
    (lambda: O.Adam(learning_rate=-0.1), OpValueError, ["Adam", "learning_rate", "-0.1"]),
    (lambda: O.Adam(epsilon=NAN), OpValueError, ["Adam", "epsilon", "nan"]),
    (lambda: layers.BatchNormalization(epsilon=-1, name="bn"), OpValueError, ["BatchNormalization 'bn'", "epsilon",
                                                                               "-1"]),
    (lambda: layers.BatchNormalization(momentum=2, name="bn"), OpValueError, ["BatchNormalization 'bn'", "momentum",
                                                                               "2"]),
    # optimizers
    (lambda: O.SGD(learning_rate=INF), OpValueError, ["SGD", "learning_rate", "inf"]),
    (lambda: O.SGD(learning_rate=10**400), OpValueError, ["SGD", "learning_rate"]),
    (lambda: O.SGD(learning_rate=1e308), OpValueError, ["SGD", "learning_rate", "largest float32", "1e+308"]),
    (lambda: O.AdamW(weight_decay=1e39), OpValueError, ["AdamW", "weight_decay", "largest float32", "1e+39"]),
    (lambda: losses.Huber(delta=1e300), OpValueError, ["Huber", "delta", "largest float32"]),
    (lambda: O.SGD(momentum=NAN), OpValueError, ["SGD", "momentum", "nan"]),
    (lambda: O.SGD(nesterov="yes"), OpTypeError, ["SGD", "nesterov", "'yes'"]),
    (lambda: O.Adam(epsilon=0.0), OpValueError, ["Adam", "epsilon", "0.0"]),
    (lambda: O.Adam(epsilon=INF), OpValueError, ["Adam", "epsilon", "inf"]),
    (lambda: O.Adam(beta_1=NAN), OpValueError, ["Adam", "beta_1", "nan"]),
    (lambda: O.Adam(beta_2=-0.5), OpValueError, ["Adam", "beta_2", "-0.5"]),
    (lambda: O.Adam(amsgrad="no"), OpTypeError, ["Adam", "amsgrad", "'no'"]),
    (lambda: O.Adam(name="opt", weight_decay=NAN), OpValueError, ["Adam 'opt'", "weight_decay", "nan"]),
    (lambda: O.AdamW(weight_decay=-1.0), OpValueError, ["AdamW", "weight_decay", "-1.0"]),
    (lambda: O.Adam(clipnorm=NAN), OpValueError, ["Adam", "clipnorm", "nan"]),
    (lambda: O.Adam(global_clipnorm=INF), OpValueError, ["Adam", "global_clipnorm", "inf"]),
    (lambda: O.Adam(clipvalue=0.0), OpValueError, ["Adam", "clipvalue", "0.0"]),
    (lambda: O.Adam(name=3), OpTypeError, ["Adam", "name", "3"]),
    (lambda: O.RMSprop(rho=1.0), OpValueError, ["RMSprop", "rho", "1.0"]),
    (lambda: O.RMSprop(rho=0.0), OpValueError, ["RMSprop", "rho", "0.0"]),
    (lambda: O.RMSprop(momentum=1.5), OpValueError, ["RMSprop", "momentum", "1.5"]),
    (lambda: O.RMSprop(epsilon=-1e-7), OpValueError, ["RMSprop", "epsilon", "-1e-07"]),
    (lambda: O.Adagrad(epsilon=0.0), OpValueError, ["Adagrad", "epsilon", "0.0"]),
    (lambda: O.Adam(epsilon=1e-300), OpValueError, ["Adam", "epsilon", "smallest normal float32", "1e-300"]),
    (lambda: O.Adagrad(initial_accumulator_value=NAN), OpValueError, ["Adagrad", "initial_accumulator_value", "nan"]),
    # schedules
    (lambda: schedules.ExponentialDecay(-0.1, 10, 0.9), OpValueError, ["ExponentialDecay", "initial_learning_rate",
                                                                       "-0.1"]),
    (lambda: schedules.ExponentialDecay(0.1, NAN, 0.9), OpValueError, ["ExponentialDecay", "decay_steps", "nan"]),
    (lambda: schedules.ExponentialDecay(0.1, 10, 0.0), OpValueError, ["ExponentialDecay", "decay_rate", "0.0"]),
    (lambda: schedules.InverseTimeDecay(0.1, 10, -0.5), OpValueError, ["InverseTimeDecay", "decay_rate", "-0.5"]),
    (lambda: schedules.ExponentialDecay(0.1, 10, 0.9, staircase="x"), OpTypeError, ["ExponentialDecay", "staircase"]),
    (lambda: schedules.PiecewiseConstantDecay([10], [0.1, NAN]), OpValueError, ["PiecewiseConstantDecay", "value",
                                                                                "nan"]),
    (lambda: schedules.PiecewiseConstantDecay([INF], [0.1, 0.2]), OpValueError, ["PiecewiseConstantDecay",
                                                                                 "boundary", "inf"]),
    (lambda: schedules.PiecewiseConstantDecay("10", [0.1]), OpTypeError, ["PiecewiseConstantDecay", "boundaries"]),
    (lambda: schedules.CosineDecay(0.1, 100, alpha=2.0), OpValueError, ["CosineDecay", "alpha", "2.0"]),
    (lambda: schedules.CosineDecay(0.1, 100, warmup_target=NAN, warmup_steps=5), OpValueError,
     ["CosineDecay", "warmup_target", "nan"]),
    (lambda: schedules.CosineDecay(0.1, 100, warmup_steps=INF), OpValueError, ["CosineDecay", "warmup_steps", "inf"]),
    # layers
    (lambda: layers.Dense(0, name="d"), OpValueError, ["Dense 'd'", "units", "0"]),
    (lambda: layers.Dense(10**12, name="d"), OpValueError, ["Dense 'd'", "units", "1000000000000"]),
    (lambda: layers.Dense(INF, name="d"), OpValueError, ["Dense 'd'", "units", "inf"]),
    (lambda: layers.Dense(2.5, name="d"), OpValueError, ["Dense 'd'", "units", "2.5"]),
    (lambda: layers.Dense(3, use_bias="no", name="d"), OpTypeError, ["Dense 'd'", "use_bias", "'no'"]),
    (lambda: layers.Dense(3, input_shape=[INF], name="d"), OpValueError, ["Dense 'd'", "input_shape", "inf"]),
    (lambda: layers.Dense(3, input_shape=[NAN], name="d"), OpValueError, ["Dense 'd'", "input_shape", "nan"]),
    (lambda: layers.Dense(3, input_shape=[-2], name="d"), OpValueError, ["Dense 'd'", "input_shape", "-2"]),
    (lambda: layers.Dense(3, input_shape=[1] * 40, name="d"), OpValueError, ["Dense 'd'", "input_shape", "40"]),
    (lambda: layers.Dense(3, input_shape="abc", name="d"), OpTypeError, ["Dense 'd'", "input_shape", "'abc'"]),
    (lambda: layers.Dense(3, trainable="yes", name="d"), OpTypeError, ["Dense 'd'", "trainable", "'yes'"]),
    (lambda: layers.Dense(3, name=7), OpTypeError, ["Dense", "name", "7"]),
    (lambda: layers.Dropout(NAN, name="dr"), OpValueError, ["Dropout 'dr'", "rate", "nan"]),
    (lambda: layers.Dropout(1.0, name="dr"), OpValueError, ["Dropout 'dr'", "rate", "1.0"]),
    (lambda: layers.Dropout(0.5, noise_shape=[None, INF], name="dr"), OpValueError, ["Dropout 'dr'", "noise_shape",
                                                                                       "inf"]),
    (lambda: layers.Dropout(0.5, seed=-1, name="dr"), OpValueError, ["Dropout 'dr'", "seed", "-1"]),
    (lambda: layers.BatchNormalization(epsilon=NAN, name="bn"), OpValueError, ["BatchNormalization 'bn'", "epsilon",
                                                                                "nan"]),
    (lambda: layers.BatchNormalization(epsilon=1e-300, name="bn"), OpValueError, ["BatchNormalization 'bn'",
                                                                                   "float32", "1e-300"]),
    (lambda: layers.LayerNormalization(epsilon=1e-6, dtype="float16", name="ln"), OpValueError,
     ["LayerNormalization 'ln'", "float16", "1e-06"]),
    (lambda: layers.BatchNormalization(momentum=-0.1, name="bn"), OpValueError, ["BatchNormalization 'bn'",
                                                                                  "momentum", "-0.1"]),
    (lambda: layers.BatchNormalization(axis=INF, name="bn"), OpValueError, ["BatchNormalization 'bn'", "axis", "inf"]),
    (lambda: layers.BatchNormalization(axis=100, name="bn"), OpValueError, ["BatchNormalization 'bn'", "axis", "100"]),
    (lambda: layers.LayerNormalization(axis=[], name="ln"), OpValueError, ["LayerNormalization 'ln'", "axis", "[]"]),
    (lambda: layers.LayerNormalization(epsilon=0.0, name="ln"), OpValueError, ["LayerNormalization 'ln'", "epsilon",
                                                                               "0.0"]),
    (lambda: layers.LayerNormalization(center="x", name="ln"), OpTypeError, ["LayerNormalization 'ln'", "center"]),
    (lambda: layers.Embedding(0, 4, name="e"), OpValueError, ["Embedding 'e'", "input_dim", "0"]),
    (lambda: layers.Embedding(10, 2**40, name="e"), OpValueError, ["Embedding 'e'", "output_dim", str(2**40)]),
    (lambda: layers.Embedding(10, 4, input_length=INF, name="e"), OpValueError, ["Embedding 'e'", "input_length",
                                                                                  "inf"]),
    (lambda: layers.Embedding(10, 4, mask_zero="x", name="e"), OpTypeError, ["Embedding 'e'", "mask_zero"]),
    (lambda: layers.Reshape([2, INF], name="r"), OpValueError, ["Reshape 'r'", "target_shape", "inf"]),
    (lambda: layers.Reshape([-2, 3], name="r"), OpValueError, ["Reshape 'r'", "target_shape", "-2"]),
    (lambda: layers.Reshape([-1, -1], name="r"), OpValueError, ["Reshape 'r'", "target_shape", "-1"]),
    (lambda: layers.ExpandDims(INF, name="x"), OpValueError, ["ExpandDims 'x'", "axis", "inf"]),
    (lambda: layers.RepeatVector(0, name="rv"), OpValueError, ["RepeatVector 'rv'", "n", "0"]),
    (lambda: layers.Concatenate(axis=NAN, name="c"), OpValueError, ["Concatenate 'c'", "axis", "nan"]),
    (lambda: layers.Gather(axis=10**9, name="g"), OpValueError, ["Gather 'g'", "axis", str(10**9)]),
    # convolution, pooling, recurrent and attention layers: sizes beyond int32 and non-integral sizes
    (lambda: layers.Conv2D(2**40, 3, name="c"), OpValueError, ["'c'", "filters", str(2**40)]),
    (lambda: layers.Conv2D(4.0, 3, name="c"), OpValueError, ["'c'", "filters", "4.0"]),
    (lambda: layers.Conv2D(4, 2**40, name="c"), OpValueError, ["'c'", "kernel_size", str(2**40)]),
    (lambda: layers.Conv1D(4, 3, strides=2**31, name="c"), OpValueError, ["'c'", "strides", str(2**31)]),
    (lambda: layers.MaxPooling2D(pool_size=2**40, name="p"), OpValueError, ["'p'", "pool_size", str(2**40)]),
    (lambda: layers.UpSampling2D(size=2**40, name="u"), OpValueError, ["'u'", "size", str(2**40)]),
    (lambda: layers.ZeroPadding2D(padding=2**40, name="z"), OpValueError, ["'z'", "padding", str(2**40)]),
    (lambda: layers.LSTM(2**40, name="l"), OpValueError, ["'l'", "units", str(2**40)]),
    (lambda: layers.GRU(NAN, name="l"), OpValueError, ["'l'", "units", "nan"]),
    (lambda: layers.SimpleRNN(-3, name="l"), OpValueError, ["'l'", "units", "-3"]),
    (lambda: layers.MultiHeadAttention(num_heads=2**40, key_dim=4, name="m"), OpValueError,
     ["'m'", "num_heads", str(2**40)]),
    (lambda: layers.MultiHeadAttention(num_heads=2, key_dim=INF, name="m"), OpValueError, ["'m'", "key_dim", "inf"]),
    (lambda: layers.MultiHeadAttention(num_heads=2, key_dim=4, output_shape=2**40, name="m"), OpValueError,
     ["'m'", "output_shape", str(2**40)]),
    # losses
    (lambda: losses.Huber(delta=NAN), OpValueError, ["Huber", "delta", "nan"]),
    (lambda: losses.Huber(delta=INF), OpValueError, ["Huber", "delta", "inf"]),
    (lambda: losses.CategoricalCrossentropy(label_smoothing=NAN), OpValueError, ["CategoricalCrossentropy",
                                                                                 "label_smoothing", "nan"]),
    (lambda: losses.BinaryCrossentropy(axis=INF), OpValueError, ["BinaryCrossentropy", "axis", "inf"]),
    (lambda: losses.BinaryCrossentropy(from_logits="true"), OpTypeError, ["BinaryCrossentropy", "from_logits"]),
    (lambda: losses.SparseCategoricalCrossentropy(ignore_class=INF), OpValueError, ["SparseCategoricalCrossentropy",
                                                                                    "ignore_class", "inf"]),
    (lambda: losses.MeanSquaredError(reduction=["mean"]), OpValueError, ["MeanSquaredError", "reduction"]),
    (lambda: losses.MeanSquaredError(name=1), OpTypeError, ["MeanSquaredError", "name", "1"]),
    (lambda: losses.LossFunctionWrapper(losses.huber, delta=1.0, extra=2), OpTypeError, ["LossFunctionWrapper", "huber",
                                                                                         "extra"]),
]


@pytest.mark.parametrize("make, error, words", BAD)
def test_bad_hyperparameters_raise_naming_class_argument_and_value(make, error, words):
    with pytest.raises(error) as info:
        make()
    message = str(info.value)
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("make", [
    lambda: O.Adam(learning_rate=0.0), lambda: O.SGD(momentum=1.0, nesterov=1), lambda: O.Adam(beta_1=0.0),
    lambda: O.RMSprop(rho=0.5, momentum=0.0), lambda: O.Adagrad(initial_accumulator_value=0.0),
    lambda: O.Adam(learning_rate=np.float32(0.01), epsilon=np.float64(1e-8)), lambda: O.AdamW(weight_decay=0.0),
    lambda: O.RMSprop(epsilon=1e-30), lambda: layers.LayerNormalization(epsilon=1e-300, dtype="float64"),
    lambda: layers.Dense(np.int64(4), input_shape=np.array([3])), lambda: layers.Dense(4.0),
    lambda: layers.Dropout(0.0), lambda: layers.BatchNormalization(momentum=1.0, axis=[1, 2]),
    lambda: layers.Reshape((-1, 2)), lambda: layers.Embedding(10, 3, input_length=5),
    lambda: layers.Concatenate(axis=1, input_shapes=[[2], [3]]),
    lambda: losses.Huber(delta=1), lambda: losses.CategoricalCrossentropy(label_smoothing=1.0),
    lambda: schedules.CosineDecay(0.1, 100, warmup_target=0.2, warmup_steps=10.0),
])
def test_edge_values_are_accepted(make):
    make()


def test_defaults_and_configs_survive_the_checks():
    for opt in (O.SGD(), O.Adam(), O.AdamW(), O.RMSprop(), O.Adagrad()):
        again = type(opt).from_config(opt.get_config())
        assert again.get_config() == opt.get_config()
    dense = layers.Dense(3, input_shape=[4], activation="relu")
    assert layers.Dense.from_config(dense.get_config()).get_config() == dense.get_config()
    assert layers.Embedding(10, 4, input_length=5).input_shape == (5,)


def params_and_grads():
    return [tg.Variable(np.ones(3), dtype="float64")], [np.full(3, 0.5)]


@pytest.mark.parametrize("schedule, step, words", [
    (lambda step: math.nan, 0, "returned nan for step 0"),
    (lambda step: -0.5, 0, "returned -0.5 for step 0"),
    (lambda step: math.inf, 0, "returned inf for step 0"),
    (schedules.ExponentialDecay(0.1, 1, 2.0), 10**9, "returned inf for step 1000000000"),
])
def test_a_schedule_giving_a_bad_rate_stops_the_update_and_changes_nothing(schedule, step, words):
    params, grads = params_and_grads()
    opt = O.SGD(learning_rate=schedule)
    opt.iterations = step
    with pytest.raises(OpValueError, match="a learning rate must be a finite number >= 0") as info:
        opt.update(params, grads)
    assert words in str(info.value) and "SGD" in str(info.value)
    np.testing.assert_array_equal(params[0].numpy(), np.ones(3))
    assert opt.iterations == step


def test_a_schedule_class_instead_of_an_instance_is_refused():
    with pytest.raises(OpTypeError, match="got the class ExponentialDecay"):
        O.SGD(learning_rate=schedules.ExponentialDecay)


@pytest.mark.parametrize("state, words", [
    ({"iterations": np.array(3), "m/0": np.full(3, np.nan), "v/0": np.ones(3)}, "'m/0' holds NaN"),
    ({"iterations": np.array(3), "m/0": np.zeros(3), "v/0": -np.ones(3)}, "'v/0' holds negative values"),
    ({"iterations": np.array(3), "m/0": np.zeros(3), "v/0": np.full(3, np.inf)}, "'v/0' holds NaN or infinite"),
    ({"iterations": np.array(3), "m/999999999": np.zeros(3), "v/999999999": np.zeros(3)}, "the state lacks ['m/0'"),
    ({"iterations": np.array(3), "m/²": np.zeros(3)}, "unexpected entry 'm/²'"),
])
def test_set_state_refuses_impossible_states_quickly(state, words):
    opt = O.Adam()
    with pytest.raises(OpValueError) as info:
        opt.set_state(state)
    assert words in str(info.value), str(info.value)
    assert opt.iterations == 0 and opt.get_state().keys() == {"iterations"}


def test_check_state_for_names_a_state_that_does_not_fit_the_parameters():
    opt = O.Adam()
    opt.set_state({"iterations": np.array(2), "m/0": np.zeros((2, 3)), "v/0": np.zeros((2, 3))})
    opt._check_state_for([tg.Variable(np.zeros((2, 3)))])
    with pytest.raises(OpValueError, match=r"'m/0' has shape \(2, 3\), but parameter 0 has shape \(3, 2\)"):
        opt._check_state_for([tg.Variable(np.zeros((3, 2)))])


def test_a_centered_rmsprop_state_keeps_the_mean_square_above_the_squared_mean():
    params = [tg.Variable(np.ones(3), dtype="float64")]
    trained = O.RMSprop(0.01, centered=True)
    for k in range(5):
        trained.update(params, [np.array([0.5, -1.0, 2.0]) * (k + 1)])
    state = trained.get_state()
    O.RMSprop(0.01, centered=True).set_state(state)  # a state training gives is accepted
    hostile = {**state, "velocity/0": np.zeros(3)}
    opt = O.RMSprop(0.01, centered=True)
    with pytest.raises(OpValueError, match=r"'velocity/0' is below the square of 'average_gradient/0'"):
        opt.set_state(hostile)
    assert opt.get_state().keys() == {"iterations"}
    O.RMSprop(0.01).set_state({"iterations": state["iterations"], "velocity/0": np.zeros(3)})  # not centered
