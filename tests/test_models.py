"""Models: AbstractModel (the seeds' base class) and Sequential -- calling with only the
declared arguments, variable discovery through attributes and nested containers (in
definition order, no duplicates, no infinite recursion, cached until something changes),
the layers listing and summary()."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad
from tapegrad import Variable
from tapegrad.nn.layers import BatchNormalization, Dense, Dropout, Input
from tapegrad.nn.models import AbstractModel, Sequential, calling
from tapegrad.nn.models import model as model_mod

X = np.array([[1, 3], [1, 4], [2, 4], [3, 1], [4, 1], [4, 2]], dtype=np.float32)
T = np.array([0, 0, 0, 1, 1, 1], dtype=np.int32)


class SeedModel(tapegrad.AbstractModel):  # seed 003, as bench-reference/seed_cold.py spells it
    def __init__(self, builder):
        super().__init__(builder)
        self.dense1 = builder.layers.Dense(128, input_shape=[2], activation="sigmoid")
        self.dense2 = builder.layers.Dense(2)

    def call(self, inputs, training=None, trues=None):
        x = self.dense1.forward(inputs, training)
        return self.dense2.forward(x, training)


def names(variables):
    return [v.name for v in variables]


# -- the seed's custom training loop ----------------------------------------------------------------
def test_seed_training_loop_runs_verbatim_and_learns():
    nn = tapegrad.NeuralNetworks()
    g, K = nn.gradient(), nn.backend()
    model = SeedModel(nn)
    lossfunc = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = nn.optimizers.Adam()
    dataset = nn.data.NDArrayDataset(X, tests=T, batch_size=64, shuffle=False)
    history = []
    for _epoch in range(100):
        total_loss = 0.0
        for inputs, trues in dataset:
            x = g.Variable(inputs)
            t = g.Variable(trues)
            with g.GradientTape() as tape:
                predicts = model(x, True, t)
                loss = lossfunc(trues, predicts)
            params = model.trainable_variables()
            gradients = tape.gradient(loss, params)
            optimizer.update(params, gradients)
            total_loss += K.scalar(loss.value())
        history.append(total_loss)
    assert history[-1] < 0.7 * history[0]
    assert model.dtype == np.float32 and model.nn is nn
    assert len(model.trainable_variables()) == 4
    assert model.count_params() == 2 * 128 + 128 + 128 * 2 + 2


def test_rindow_backend_builder_constructor_order_and_float64():
    nn = tapegrad.NeuralNetworks(dtype="float64")

    class Old(AbstractModel):
        def __init__(self, backend, builder):
            super().__init__(backend, builder)  # Rindow 1.x: parent::__construct($backend, $builder)
            self.d = builder.layers.Dense(3)

        def call(self, inputs, training):
            return self.d(inputs, training)

    m = Old(nn.backend(), nn)
    assert m.nn is nn and m.dtype == np.float64
    assert m(X.astype(np.float64), True).dtype == np.float64
    with pytest.raises(TypeError, match="NeuralNetworks"):
        AbstractModel("not a builder")


# -- call(): only the declared arguments --------------------------------------------------------------
def _recording(signature: str):
    namespace: dict = {}
    exec(  # noqa: S102 - builds call() with the signature under test
        f"def call{signature}:\n    self.got.append(dict(locals()))\n    return inputs\n", namespace)

    class M(AbstractModel):
        call = namespace["call"]

        def __init__(self):
            super().__init__()
            self.got = []

    return M()


@pytest.mark.parametrize("signature, expected", [
    ("(self, inputs)", {}),
    ("(self, inputs, training)", {"training": True}),
    ("(self, inputs, training=None)", {"training": True}),
    ("(self, inputs, trues=None)", {"trues": "T"}),
    ("(self, inputs, training=None, trues=None)", {"training": True, "trues": "T"}),
    ("(self, inputs, *, trues=None, training=None)", {"training": True, "trues": "T"}),
    ("(self, inputs, is_training, labels)", {"is_training": True, "labels": "T"}),  # Rindow: by position
    ("(self, inputs, is_training)", {"is_training": True}),
])
def test_call_gets_only_the_arguments_it_declares(signature, expected):
    m = _recording(signature)
    out = m(X, True, "T")
    assert out is X
    got = {k: v for k, v in m.got[0].items() if k not in ("self", "inputs")}
    assert got == expected
    assert type(m) in calling._SPECS  # inspected once per class, then cached


def test_call_with_kwargs_gets_everything():
    m = _recording("(self, inputs, **kwargs)")
    m(X, False, "T", mask="M")
    assert m.got[0]["kwargs"] == {"training": False, "trues": "T", "mask": "M"}


# -- variable discovery -----------------------------------------------------------------------------
class Nested(AbstractModel):
    def __init__(self, builder):
        super().__init__(builder)
        self.first = builder.layers.Dense(4, name="first")
        self.blocks = [builder.layers.Dense(4, name="b0"), (builder.layers.Dense(4, name="b1"),)]
        self.heads = {"a": builder.layers.Dense(2, name="ha"), "z": [builder.layers.Dense(2, name="hz")]}
        self.shared = self.first  # the same layer again: no duplicates
        self.alias = [self.blocks, self.heads]  # the same containers again
        self.scale = tapegrad.Variable(np.float32(2.0), name="scale")
        self.frozen = builder.layers.Dense(2, name="frozen", trainable=False)
        self.constant = tapegrad.Variable(np.ones(2, np.float32), name="constant", trainable=False)
        self.loop = []
        self.loop.append(self.loop)  # a list containing itself
        self.me = self  # and the model itself
        self.last_output = None

    def call(self, inputs, training=None):
        x = self.first(inputs)
        x = self.blocks[1][0](self.blocks[0](x))
        out = self.heads["a"](x) * self.scale + self.heads["z"][0](x) + self.frozen(x) + self.constant
        self.last_output = out  # an op result held by an attribute is not a weight
        return out


def test_discovery_through_nested_containers_in_definition_order_without_duplicates():
    m = Nested(tapegrad.NeuralNetworks())
    m(X)
    assert names(m.variables()) == [
        "first/kernel", "first/bias", "b0/kernel", "b0/bias", "b1/kernel", "b1/bias",
        "ha/kernel", "ha/bias", "hz/kernel", "hz/bias", "scale",
        "frozen/kernel", "frozen/bias", "constant",
    ]
    assert names(m.trainable_variables()) == [
        "first/kernel", "first/bias", "b0/kernel", "b0/bias", "b1/kernel", "b1/bias",
        "ha/kernel", "ha/bias", "hz/kernel", "hz/bias", "scale",
    ]
    assert names(m.non_trainable_variables()) == ["frozen/kernel", "frozen/bias", "constant"]
    assert [layer.name for layer in m.layers] == ["first", "b0", "b1", "ha", "hz", "frozen"]
    assert m.count_params() == sum(v.size for v in m.variables())
    # gradients reach every trainable Variable, including the bare one
    with tapegrad.GradientTape() as tape:
        loss = tapegrad.reduce_sum(m(X))
    grads = tape.gradient(loss, m.trainable_variables())
    assert all(g is not None for g in grads)


def test_nested_models_and_frozen_submodels():
    nn = tapegrad.NeuralNetworks()

    class Outer(AbstractModel):
        def __init__(self):
            super().__init__(nn)
            self.inner = SeedModel(nn)
            self.head = nn.layers.Dense(1, name="head")

        def call(self, inputs, training=None):
            return self.head(self.inner(inputs, training))

    m = Outer()
    m(X)
    assert len(m.trainable_variables()) == 6
    assert [type(layer).__name__ for layer in m.layers] == ["SeedModel", "Dense"]
    m.inner.trainable = False
    assert names(m.trainable_variables()) == ["head/kernel", "head/bias"]
    assert len(m.non_trainable_variables()) == 4
    m.trainable = False
    assert m.trainable_variables() == [] and len(m.variables()) == 6


def test_the_discovery_cache_follows_every_change():
    nn = tapegrad.NeuralNetworks()
    m = Nested(nn)
    calls = []
    original = model_mod._discover

    def counting(root):
        calls.append(root)
        return original(root)

    model_mod._discover = counting
    try:
        m(X)
        first = m.trainable_variables()
        for _ in range(50):
            assert m.trainable_variables() == first
        assert len(calls) == 1  # cached
        first.append("junk")  # callers get copies
        assert "junk" not in m.trainable_variables()

        extra = nn.layers.Dense(4, name="extra")
        m.blocks.append(extra)  # a list of a model changes
        extra(np.zeros((1, 4), np.float32))
        assert names(m.trainable_variables())[6:8] == ["extra/kernel", "extra/bias"]

        m.heads["a"].trainable = False  # a layer is frozen
        assert "ha/kernel" not in names(m.trainable_variables())
        m.scale.trainable = False  # a Variable's flag flips
        assert "scale" not in names(m.trainable_variables())
        assert "scale" in names(m.non_trainable_variables())

        m.first = nn.layers.Dense(4, name="replacement")  # an attribute is replaced
        m.shared = m.first
        assert "first/kernel" not in names(m.variables())
        del m.frozen
        assert "frozen/kernel" not in names(m.variables())

        lazy = nn.layers.Dense(3, name="lazy")
        m.heads["late"] = lazy  # a dict gains an unbuilt layer, built later
        assert "lazy/kernel" not in names(m.variables())
        lazy(np.zeros((1, 4), np.float32))
        assert "lazy/kernel" in names(m.variables())
    finally:
        model_mod._discover = original


def test_layers_attribute_may_be_assigned_by_subclasses():
    nn = tapegrad.NeuralNetworks()

    class Stack(AbstractModel):
        def __init__(self):
            super().__init__(nn)
            self.layers = [nn.layers.Dense(3, name="s0"), nn.layers.Dense(2, name="s1")]

        def call(self, inputs, training=None):
            for layer in self._layers:
                inputs = layer(inputs)
            return inputs

    m = Stack()
    assert m(X).shape == (6, 2)
    assert [layer.name for layer in m.layers] == ["s0", "s1"]
    assert names(m.trainable_variables()) == ["s0/kernel", "s0/bias", "s1/kernel", "s1/bias"]


def test_get_and_set_weights_round_trip():
    nn = tapegrad.NeuralNetworks()
    a, b = SeedModel(nn), SeedModel(nn)
    a(X), b(X)
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    with pytest.raises(ValueError, match="set_weights got 1 arrays"):
        b.set_weights([np.zeros(2)])


# -- Sequential -------------------------------------------------------------------------------------
def test_sequential_builds_from_the_first_input_shape():
    m = Sequential([Dense(8, input_shape=[2], activation="relu"), Dense(3)])
    assert m.built and all(layer.built for layer in m.layers)
    assert [v.shape for v in m.variables()] == [(2, 8), (8,), (8, 3), (3,)]
    assert m.output_shape == (3,)
    assert m.predict(X).shape == (6, 3)
    with pytest.raises(ValueError, match=r"expected inputs of shape \(2,\)"):
        m.predict(np.zeros((4, 5), np.float32))


def test_sequential_add_input_layer_pop_and_lazy_build():
    m = Sequential()
    m.add(Input(shape=(2,)))
    m.add(Dense(5))
    assert [type(layer).__name__ for layer in m.layers] == ["Dense"]  # Input is not a layer of the model
    assert m.layers[0].built
    m.add(Dense(4))
    assert m.output_shape == (4,)
    popped = m.pop()
    assert popped.units == 4 and len(m.layers) == 1

    lazy = Sequential([Dense(5), Dense(2)])
    assert not lazy.built and lazy.variables() == []
    assert lazy(X).shape == (6, 2)
    assert len(lazy.variables()) == 4 and lazy.input_shape == (2,)

    with pytest.raises(TypeError, match="expects a Layer"):
        Sequential([lambda x: x])
    with pytest.raises(ValueError, match="Input layer must come first"):
        Sequential([Dense(2), Input(shape=(2,))])


def test_sequential_with_dropout_batchnorm_and_nested_models():
    inner = Sequential([Dense(6, activation="relu"), BatchNormalization()], name="inner")
    m = Sequential([Input(shape=(2,)), inner, Dropout(0.5), Dense(2)])
    assert names(m.non_trainable_variables())[-2:] == [
        f"{inner.layers[1].name}/moving_mean", f"{inner.layers[1].name}/moving_variance"]
    assert len(m.trainable_variables()) == 6
    # inference is deterministic (dropout off), training is not
    np.testing.assert_array_equal(m.predict(X), m.predict(X))
    tapegrad.set_seed(1)
    assert not np.array_equal(m(X, True).numpy(), m(X, False).numpy())


# -- summary ----------------------------------------------------------------------------------------
def test_summary_prints_a_keras_like_table(capsys):
    m = Sequential([Dense(128, input_shape=[2], activation="sigmoid", name="hidden"),
                    BatchNormalization(name="bn"), Dense(2, name="logits")], name="seed")
    m.summary()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'Model: "seed"'
    assert lines[2].split() == ["Layer", "(type)", "Output", "Shape", "Param", "#"]
    rows = [line.split() for line in lines if line.startswith(" ") and "(" in line and "Layer" not in line]
    assert rows == [
        ["hidden", "(Dense)", "(None,", "128)", "384"],
        ["bn", "(BatchNormalization)", "(None,", "128)", "512"],
        ["logits", "(Dense)", "(None,", "2)", "258"],
    ]
    assert "Total params: 1,154 (4.51 KB)" in lines
    assert "Trainable params: 898 (3.51 KB)" in lines
    assert "Non-trainable params: 256 (1.00 KB)" in lines
    widths = {len(line) for line in lines if set(line) <= {"_", "="} and line}
    assert len(widths) == 1  # the rules line up


def test_summary_of_an_unbuilt_subclassed_model_and_print_fn():
    m = SeedModel(tapegrad.NeuralNetworks())
    out: list[str] = []
    m.summary(print_fn=out.append)
    assert any("(unbuilt)" in line and "?" in line for line in out)
    assert "Total params: 0 (0.00 B)" in out
    m(X)
    out.clear()
    m.summary(print_fn=out.append)
    assert any("(None, 128)" in line and "384" in line for line in out)
    assert "Total params: 642 (2.51 KB)" in out


def test_model_build_from_an_input_shape_does_not_touch_active_tapes():
    m = SeedModel(tapegrad.NeuralNetworks())
    w = tapegrad.Variable(np.float32(1.0))
    with tapegrad.GradientTape() as tape:
        y = w * 2.0
        m.build((2,))
    assert m.built and len(m.variables()) == 4
    assert len(tape._nodes) == 1
    assert float(tape.gradient(y, w)) == 2.0


def test_variables_given_to_models_are_plain_variables():
    m = Nested(tapegrad.NeuralNetworks())
    m(X)
    assert all(isinstance(v, Variable) for v in m.variables())
