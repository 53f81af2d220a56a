"""Hostile model files: every problem is a ModelFileError naming the file and the field,
found when the file is loaded (not at the first training step); custom_objects entries
are used only in the roles their kind allows; the file's limits hold on save and load;
loading is linear in the number of layers; foreign extensions are refused on save."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import tapegrad
from tapegrad.errors import OpValueError
from tapegrad.io import ModelFileError, container, read_container, write_container
from tapegrad.nn.models import file_limits
from tapegrad.nn.optimizers import schedules


def data(n: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0.5).astype(np.int32)


def model(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=("accuracy",), fit=True,
          layers=None) -> tapegrad.Sequential:
    nn = tapegrad.NeuralNetworks()
    m = tapegrad.Sequential(layers or [nn.layers.Dense(8, input_shape=[4], activation="relu"),
                                       nn.layers.BatchNormalization(), nn.layers.Dense(3)])
    m.compile(optimizer=optimizer, loss=loss, metrics=list(metrics), jit=False)
    if fit:
        x, y = data()
        m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    return m


def saved(tmp_path: Path, m: tapegrad.Model | None = None) -> Path:
    path = tmp_path / "m.tgm"
    (m or model()).save(path)
    return path


def tamper(path: Path, change) -> Path:
    """Change the header (and arrays) and write the file again with a valid checksum, as
    an attacker can."""
    meta, arrays = read_container(path)
    change(meta, arrays)
    out = path.with_name("tampered.tgm")
    write_container(out, meta, arrays)
    return out


def set_state(meta: dict, arrays: dict, key: str, value) -> None:
    """Replace the optimizer state entry ``key`` (e.g. ``"m/0"``)."""
    (name,) = [e["array"] for e in meta["optimizer_state"] if e["key"] == key]
    arrays[name] = value


def drop_state(meta: dict, *positions: int) -> None:
    meta["optimizer_state"] = [e for e in meta["optimizer_state"]
                               if not e["key"].endswith(tuple(f"/{p}" for p in positions))]


def dense_config(meta: dict, i: int = 0) -> dict:
    return meta["model"]["config"]["layers"][i]["config"]


def refused(path: Path, *words: str, **kwargs) -> str:
    with pytest.raises(ModelFileError) as info:
        tapegrad.load_model(path, **kwargs)
    message = str(info.value)
    assert path.name in message
    for word in words:
        assert word in message, message
    return message


# -- 1. errors that were bare Python errors --------------------------------------------------------
@pytest.mark.parametrize("change, words", [
    (lambda m, a: m["weights"][0].update(array=["weights/0"]), ["weights[0] is invalid"]),
    (lambda m, a: m["weights"][0].update(array={"a": 1}), ["weights[0] is invalid"]),
    (lambda m, a: m["optimizer_state"][1].update(array=[1, 2]), ["optimizer_state[1] is invalid"]),
    (lambda m, a: dense_config(m).update(input_shape=[math.inf]), ["layers[0] (Dense)", "input_shape", "inf"]),
    (lambda m, a: dense_config(m).update(units=math.inf), ["layers[0] (Dense)", "units", "inf"]),
    (lambda m, a: dense_config(m, 1).update(axis=math.inf), ["layers[1] (BatchNormalization)", "axis", "inf"]),
    (lambda m, a: dense_config(m, 1).update(axis=[-math.inf]), ["layers[1] (BatchNormalization)", "axis", "inf"]),
    (lambda m, a: m["model"].update(input_spec={"shape": [math.inf], "dtype": "float32"}), ["invalid input spec"]),
])
def test_fields_of_the_wrong_type_or_infinite_are_model_file_errors(tmp_path, change, words):
    refused(tamper(saved(tmp_path), change), *words)


def nest(meta: dict, depth: int) -> None:
    inner = meta["model"]["config"]["layers"]
    for _ in range(depth):
        inner = [{"class_name": "Sequential", "config": {"name": "s", "layers": inner}}]
    meta["model"]["config"]["layers"] = inner


def test_sequentials_nested_deeper_than_the_limit_are_refused(tmp_path, monkeypatch):
    path = saved(tmp_path)
    with monkeypatch.context() as patched:  # the writer refuses such a header: write it as an attacker would
        patched.setattr(container, "MAX_JSON_DEPTH", 10**6)
        hostile = tamper(path, lambda m, a: nest(m, 300))
    refused(hostile, "its JSON is nested 907 levels deep (the limit is 256)")
    refused(tamper(path, lambda m, a: nest(m, 32)), "nested more than 32 deep")  # 33 levels with the outer one
    deep = tapegrad.load_model(tamper(path, lambda m, a: nest(m, 31)))  # 32 levels: loads, predicts, trains
    x, y = data()
    np.testing.assert_allclose(deep.predict(x, verbose=0), tapegrad.load_model(path).predict(x, verbose=0))
    deep.fit(x, y, epochs=1, verbose=0)


def test_saving_a_model_beyond_the_limits_is_refused_and_writes_nothing(tmp_path, monkeypatch):
    nn = tapegrad.NeuralNetworks()
    inner = tapegrad.Sequential([nn.layers.Dense(2, input_shape=[2])])
    for _ in range(file_limits.MAX_MODEL_DEPTH):
        inner = tapegrad.Sequential([inner])
    with pytest.raises(OpValueError, match="nested more than 32 deep"):
        inner.save(tmp_path / "deep.tgm")
    monkeypatch.setattr(file_limits, "MAX_LAYERS", 5)
    wide = tapegrad.Sequential([nn.layers.Dense(2, input_shape=[2])] + [nn.layers.Activation("relu")] * 5)
    with pytest.raises(OpValueError, match="more than 5 layers"):
        wide.save(tmp_path / "wide.tgm")
    assert list(tmp_path.iterdir()) == []


def test_layer_count_limit_on_load_counts_layers_a_models_code_creates(tmp_path, monkeypatch):
    path = tmp_path / "many.tgm"
    nn = tapegrad.NeuralNetworks()
    tapegrad.Sequential([nn.layers.Dense(2, input_shape=[2])] + [nn.layers.Activation("relu") for _ in range(6)]
                        ).save(path)

    class Stack(tapegrad.AbstractModel):
        def __init__(self, builder, n=2):
            super().__init__(builder)
            self.n = n
            self.blocks = [builder.layers.Activation("relu") for _ in range(n)]

        def call(self, inputs):
            for block in self.blocks:
                inputs = block(inputs)
            return inputs

        def get_config(self):
            return {"n": self.n}

    Stack(nn, n=3).save(tmp_path / "stack.tgm")
    hostile = tamper(tmp_path / "stack.tgm", lambda m, a: m["model"]["config"].update(n=10**7))
    monkeypatch.setattr(file_limits, "MAX_LAYERS", 5)
    refused(path, "more than 5 layers")
    refused(hostile, "creates more than 5 layers", custom_objects={"Stack": Stack})
    monkeypatch.setattr(file_limits, "MAX_LAYERS", 10_000)
    assert len(tapegrad.load_model(path).layers) == 7


# -- 2. hyperparameters and what training would find out at its first step ------------------------
@pytest.mark.parametrize("change, words", [
    (lambda m, a: m["compile"]["optimizer"]["config"].update(learning_rate=math.nan), ["Adam", "learning_rate", "nan"]),
    (lambda m, a: m["compile"]["optimizer"]["config"].update(learning_rate=-0.1), ["Adam", "learning_rate", "-0.1"]),
    (lambda m, a: m["compile"]["optimizer"]["config"].update(epsilon=math.nan), ["Adam", "epsilon", "nan"]),
    (lambda m, a: m["compile"]["optimizer"]["config"].update(beta_1=1e300), ["Adam", "beta_1", "1e+300"]),
    (lambda m, a: m["compile"]["optimizer"]["config"].update(clipnorm=math.inf), ["Adam", "clipnorm", "inf"]),
    (lambda m, a: dense_config(m, 1).update(epsilon=-1), ["BatchNormalization", "epsilon", "-1"]),
    (lambda m, a: dense_config(m, 1).update(momentum=2), ["BatchNormalization", "momentum", "2"]),
    (lambda m, a: dense_config(m).update(units=10**12), ["Dense", "units", "1000000000000"]),
    (lambda m, a: m["compile"].update(loss={"class_name": "CategoricalCrossentropy",
                                            "config": {"label_smoothing": math.nan}}), ["label_smoothing", "nan"]),
    (lambda m, a: m["compile"].update(loss=None), ["compile.loss is null", "compile=False"]),
    (lambda m, a: m["compile"].pop("loss"), ["compile.loss is missing"]),
    (lambda m, a: set_state(m, a, "m/0", np.zeros((4, 9), np.float32)),
     ["optimizer state", "'m/0' has shape (4, 9), but parameter 0 has shape (4, 8)"]),
    (lambda m, a: set_state(m, a, "v/5", np.zeros((3, 3), np.float32)),
     ["optimizer state", "'v/5' has shape (3, 3), but parameter 5 has shape (3,)"]),
    (lambda m, a: m["optimizer_state"].pop(), ["the state lacks ['v/5']"]),
    (lambda m, a: drop_state(m, 4, 5), ["slots for 4 parameters, but the optimizer has 6"]),
    (lambda m, a: set_state(m, a, "m/0", np.full((4, 8), np.nan, np.float32)), ["'m/0' holds NaN"]),
    (lambda m, a: set_state(m, a, "v/0", np.full((4, 8), -1.0, np.float32)), ["'v/0' holds negative values"]),
    (lambda m, a: set_state(m, a, "iterations", np.array(-3)), ["'iterations' must be a non-negative integer"]),
    (lambda m, a: m["compile"]["metrics"].append(
        {"class_name": "MeanMetricWrapper", "config": {"fn": "accuracy", "name": "acc2", "bogus": 1}}),
     ["metric 'acc2'", "accuracy", "bogus"]),
])
def test_bad_values_fail_at_load_not_at_the_first_training_step(tmp_path, change, words):
    refused(tamper(saved(tmp_path), change), *words)


@pytest.mark.parametrize("change, words", [
    (lambda m, a: m["compile"].update(metrics=["mse"]),
     ["the loss or a metric cannot take the model's outputs", "mean_squared_error", "(1,)", "(1, 3)"]),
    (lambda m, a: m["compile"].update(metrics=["categorical_accuracy"]), ["cannot take the model's outputs"]),
    (lambda m, a: m["compile"].update(loss={"class_name": "CategoricalCrossentropy", "config": {"axis": 2}}),
     ["CategoricalCrossentropy: axis 2 is out of range for the model's outputs of rank 2"]),
])
def test_a_loss_or_metric_that_cannot_take_the_models_outputs_fails_at_load(tmp_path, change, words):
    refused(tamper(saved(tmp_path), change), *words)


def test_the_input_spec_a_model_was_saved_with_is_restored(tmp_path):
    nn = tapegrad.NeuralNetworks()
    m = tapegrad.Sequential([nn.layers.Dense(3, input_shape=[None, 4]), nn.layers.Dense(2)])
    m.compile(optimizer="sgd", loss="mse", jit=False)
    m.fit(np.ones((4, 5, 4), np.float32), np.zeros((4, 5, 2), np.float32), epochs=1, verbose=0)
    m.save(tmp_path / "m.tgm")
    meta, _ = read_container(tmp_path / "m.tgm")
    meta["model"]["input_spec"] = {"shape": [5, 4], "dtype": "float32"}  # what fit ran on
    write_container(tmp_path / "m.tgm", meta, read_container(tmp_path / "m.tgm")[1])
    assert tapegrad.load_model(tmp_path / "m.tgm")._input_spec == {"shape": [5, 4], "dtype": "float32"}


def test_a_schedule_without_a_valid_rate_at_the_restored_step_fails_at_load(tmp_path):
    lr = schedules.ExponentialDecay(0.01, decay_steps=1, decay_rate=2.0)
    path = saved(tmp_path, model(optimizer=tapegrad.optimizers.SGD(lr)))
    ok = tapegrad.load_model(path)
    assert ok.optimizer.learning_rate == 0.01 * 2.0 ** ok.optimizer.iterations
    hostile = tamper(path, lambda m, a: a.update({"optimizer/0": np.array(10**9, np.int64)}))
    refused(hostile, "returned inf for step 1000000000")


def test_a_model_without_weights_is_built_at_load(tmp_path):
    nn = tapegrad.NeuralNetworks()
    m = tapegrad.Sequential([nn.layers.Reshape([2, 2]), nn.layers.Flatten()])
    m.predict(np.ones((2, 4), np.float32), verbose=0)  # built by its first call: the file holds its input spec
    m.save(tmp_path / "m.tgm")

    def change(meta, arrays):
        for entry in meta["model"]["config"]["layers"]:  # nothing builds the layers when they are made
            entry["config"].pop("input_shape")
        dense_config(meta).update(target_shape=[3, 3])  # and they cannot run on the file's input spec

    refused(tamper(tmp_path / "m.tgm", change), "cannot reshape samples of shape (4,)")


def test_compile_restores_everything_a_legitimate_file_holds(tmp_path):
    m = model(optimizer=tapegrad.optimizers.Adam(clipnorm=1.0, learning_rate=schedules.CosineDecay(0.01, 100)))
    loaded = tapegrad.load_model(saved(tmp_path, m))
    x, y = data()
    assert loaded.optimizer.get_config() == m.optimizer.get_config()
    h1 = m.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history
    h2 = loaded.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history
    assert h1 == h2


# -- 3. custom_objects: each entry only in the roles its kind allows --------------------------------
def my_loss(trues, predicts):
    return tapegrad.losses.sparse_categorical_crossentropy(trues, predicts, from_logits=True)


def my_rate(step):
    return 0.01 / (1 + step)


class MyDense(tapegrad.layers.Dense):
    pass


@pytest.mark.parametrize("change, words", [
    (lambda m: m["compile"]["optimizer"].update(class_name="my_loss"),
     ["compile.optimizer.class_name", "custom_objects['my_loss'] as the optimizer", "an Optimizer subclass",
      "the function my_loss(trues, predicts)"]),
    (lambda m: m["compile"]["optimizer"].update(class_name="MyDense"),
     ["as the optimizer", "it is the Layer subclass MyDense"]),
    (lambda m: m["compile"]["optimizer"]["config"].update(learning_rate={"class_name": "function",
                                                                         "config": {"name": "my_loss"}}),
     ["as a schedule function", "a function of the step", "my_loss(trues, predicts)"]),
    (lambda m: m["compile"]["optimizer"]["config"].update(learning_rate={"class_name": "MyDense", "config": {}}),
     ["as a schedule", "a LearningRateSchedule subclass"]),
    (lambda m: m["compile"].update(loss={"class_name": "my_rate", "config": {}}),
     ["compile.loss.class_name", "as the loss", "my_rate(step)"]),
    (lambda m: m["compile"].update(loss={"class_name": "MyDense", "config": {}}), ["as the loss"]),
    (lambda m: m["compile"].update(loss={"class_name": "LossFunctionWrapper", "config": {"fn": "my_rate"}}),
     ["compile.loss.config.fn", "as a loss function"]),
    (lambda m: m["compile"]["metrics"].append({"class_name": "MyDense", "config": {}}),
     ["compile.metrics[1].class_name", "as a metric"]),
    (lambda m: m["model"].update(class_name="my_loss"), ["model.class_name", "as the model", "a Model subclass"]),
    (lambda m: m["model"].update(class_name="MyDense"), ["as the model", "Layer subclass MyDense"]),
    (lambda m: m["model"]["config"]["layers"][0].update(class_name="my_rate"),
     ["layers[0]", "as a layer", "a Layer subclass", "my_rate(step)"]),
])
def test_custom_objects_cannot_be_routed_into_another_role(tmp_path, change, words):
    objects = {"my_loss": my_loss, "my_rate": my_rate, "MyDense": MyDense}
    m = model(optimizer=tapegrad.optimizers.SGD(my_rate), loss=my_loss)
    path = tamper(saved(tmp_path, m), lambda meta, a: change(meta))
    refused(path, *words, custom_objects=objects)


def test_custom_objects_in_their_own_roles_round_trip(tmp_path):
    nn = tapegrad.NeuralNetworks()
    m = model(optimizer=tapegrad.optimizers.SGD(my_rate), loss=my_loss,
              layers=[MyDense(3, input_shape=[4], name="mine"), nn.layers.Dense(3)])
    loaded = tapegrad.load_model(saved(tmp_path, m), custom_objects={"my_loss": my_loss, "my_rate": my_rate,
                                                                     "MyDense": MyDense})
    assert type(loaded.layers[0]) is MyDense and loaded.optimizer.learning_rate_schedule is my_rate
    assert loaded._loss_fn.fn is my_loss
    x, y = data()
    loaded.fit(x, y, epochs=1, verbose=0)


# -- 5. linear loading --------------------------------------------------------------------------------
class CountingDense(tapegrad.layers.Dense):
    builds = 0
    shapes = 0

    def build(self, input_shape):
        CountingDense.builds += 1
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        CountingDense.shapes += 1
        return super().compute_output_shape(input_shape)


def test_add_and_load_build_each_layer_once(tmp_path):
    n = 2000
    CountingDense.builds = CountingDense.shapes = 0
    m = tapegrad.Sequential([CountingDense(2, input_shape=[2])])
    for _ in range(n - 1):
        m.add(CountingDense(2))
    assert CountingDense.builds == n and CountingDense.shapes <= 2 * n
    m.save(tmp_path / "long.tgm")
    CountingDense.builds = CountingDense.shapes = 0
    loaded = tapegrad.load_model(tmp_path / "long.tgm", custom_objects={"CountingDense": CountingDense})
    assert len(loaded.layers) == n
    assert CountingDense.builds == n and CountingDense.shapes <= 2 * n
    x = np.ones((3, 2), np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))


# -- 8. extensions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["m.keras", "m.h5", "m.weights.h5", "M.PT", "m.pkl", "m.safetensors"])
def test_other_libraries_extensions_are_refused_on_save(tmp_path, name):
    m = model(fit=False)
    with pytest.raises(OpValueError, match=r"tapegrad writes its own format .* use the extension \.tgm"):
        m.save(tmp_path / name)
    with pytest.raises(OpValueError, match="model.save_weights"):
        m.save_weights(tmp_path / name)
    # a checkpoint callback refuses it when made, before an epoch of training is spent
    with pytest.raises(OpValueError, match=r"ModelCheckpoint: .* use the extension \.tgm"):
        tapegrad.callbacks.ModelCheckpoint(str(tmp_path / ("{epoch}-" + name)))
    assert list(tmp_path.iterdir()) == []
    for ok in ("m.tgm", "m", "m.bin", "ckpt-01.weights"):
        m.save(tmp_path / ok)
        tapegrad.load_model(tmp_path / ok)


def test_a_nested_sequential_takes_the_inputs_of_its_first_layer(tmp_path):
    nn = tapegrad.NeuralNetworks()
    inner = tapegrad.Sequential([nn.layers.Embedding(10, 3, input_length=4), nn.layers.Flatten()])
    outer = tapegrad.Sequential([inner, nn.layers.Dense(2)])
    assert outer._input_spec == {"shape": [4], "dtype": "int32"}
    outer.save(tmp_path / "m.tgm")
    loaded = tapegrad.load_model(tmp_path / "m.tgm")
    assert loaded._input_spec == {"shape": [4], "dtype": "int32"}
    x = np.array([[1, 2, 3, 9]], np.int32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), outer.predict(x, verbose=0))
