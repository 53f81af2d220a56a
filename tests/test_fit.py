"""compile / fit / evaluate / predict: learning on real data (digits), History, validation,
verbose output, callbacks (EarlyStopping, ModelCheckpoint, LearningRateScheduler,
TerminateOnNaN, custom ones), the NaN stop, datasets and predict batching."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest

import tapegrad
from tapegrad.nn import losses, optimizers
from tapegrad.nn.layers import Dense
from tapegrad.nn.models import (
    AbstractModel,
    Callback,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    NonFiniteLossError,
    Sequential,
    TerminateOnNaN,
    progress,
)
from tapegrad.nn.models import model as model_mod


def blobs(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    centers = np.array([[2, 0, 0, 1], [0, 2, 0, -1], [0, 0, 2, 0]], np.float32)
    x = (centers[y] + rng.normal(scale=0.5, size=(n, 4))).astype(np.float32)
    return x, y


def mlp(seed: int = 0, **compile_args) -> Sequential:
    tapegrad.set_seed(seed)
    m = Sequential([Dense(16, input_shape=[4], activation="relu"), Dense(3)])
    args = {"optimizer": "adam", "loss": losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": ["accuracy"]}
    args.update(compile_args)
    m.compile(**args)
    return m


class Events(Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin",))

    def on_train_end(self, logs=None):
        self.events.append(("train_end", sorted(logs)))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, sorted(logs)))

    def on_train_batch_begin(self, batch, logs=None):
        self.events.append(("batch_begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch, sorted(logs)))

    def on_test_begin(self, logs=None):
        self.events.append(("test_begin",))

    def on_test_end(self, logs=None):
        self.events.append(("test_end", sorted(logs)))


class Script(Callback):
    """Overwrites a log value at each epoch end with a scripted sequence (runs before the
    callbacks under test), and records the weights at each epoch end."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values, self.weights = key, values, []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


# -- learning on real data ----------------------------------------------------------------------------
def test_fit_on_digits_reaches_95_percent():
    pytest.importorskip("sklearn")
    nn = tapegrad.NeuralNetworks()
    (x_train, y_train), (x_test, y_test) = nn.datasets.digits(flatten=True)
    tapegrad.set_seed(0)
    model = Sequential([nn.layers.Dense(64, input_shape=[64], activation="relu"), nn.layers.Dense(10)])
    model.compile(optimizer=nn.optimizers.Adam(learning_rate=0.003),
                  loss=nn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=15, batch_size=32, validation_data=(x_test, y_test), verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 15 for v in history.history.values())
    assert history.epoch == list(range(15)) and model.history is history
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.95
    assert math.isclose(accuracy, history.history["val_accuracy"][-1], rel_tol=1e-9)
    assert math.isclose(loss, history.history["val_loss"][-1], rel_tol=1e-6)
    predictions = model.predict(x_test)
    assert math.isclose((predictions.argmax(axis=1) == y_test).mean(), accuracy)


def test_compile_defaults_and_errors():
    m = Sequential([Dense(3, input_shape=[4])])
    with pytest.raises(ValueError, match="compile"):
        m.fit(*blobs(), verbose=0)
    m.compile(loss="sparse_categorical_crossentropy")
    assert type(m.optimizer).__name__ == "SGD"  # Rindow's default (API §9)
    assert m.metrics_names == ["loss", "accuracy"]
    m.compile(loss="sparse_categorical_crossentropy", metrics=[])
    assert m.metrics_names == ["loss"]
    m.compile(optimizer="sgd", loss="mse", metrics=["mae", "mae"])
    assert m.metrics_names == ["loss", "mae", "mae_1"]


def test_evaluate_return_forms_and_batch_weighting():
    x, y = blobs(50)
    m = mlp()
    full = m.evaluate(x, y, batch_size=50, verbose=0)
    chunked = m.evaluate(x, y, batch_size=7, verbose=0)  # 7 batches of 7 and one of 1
    assert isinstance(full, list) and len(full) == 2
    np.testing.assert_allclose(chunked, full, rtol=1e-5)
    d = m.evaluate(x, y, verbose=0, return_dict=True)
    assert list(d) == ["loss", "accuracy"] and math.isclose(d["loss"], full[0], rel_tol=1e-5)
    plain = mlp(metrics=[])
    assert isinstance(plain.evaluate(x, y, verbose=0), float)


def test_predict_works_in_batches_and_on_datasets():
    x, _ = blobs(50)
    m = mlp()
    seen = []
    m.predict(x, batch_size=7, callbacks=[LambdaCallback(on_predict_batch_end=lambda b, logs: seen.append(
        logs["outputs"].shape[0]))])
    assert seen == [7] * 7 + [1]
    out = m.predict(x, batch_size=7)
    assert isinstance(out, np.ndarray) and out.shape == (50, 3)
    np.testing.assert_allclose(out, m(x).numpy(), rtol=1e-6, atol=1e-6)
    ds = tapegrad.nn.data.NDArrayDataset(x, batch_size=16, shuffle=False)
    np.testing.assert_allclose(m.predict(ds), out, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(m.predict_on_batch(x[:5]), m.predict(x[:5]))

    class TwoHeads(AbstractModel):
        def __init__(self):
            super().__init__()
            self.a, self.b = Dense(2), Dense(1)

        def call(self, inputs):
            return [self.a(inputs), self.b(inputs)]

    outs = TwoHeads().predict(x, batch_size=16)
    assert [o.shape for o in outs] == [(50, 2), (50, 1)]


def test_fit_on_a_dataset_equals_fit_on_arrays():
    x, y = blobs()
    a, b = mlp(), mlp()
    ha = a.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    ds = tapegrad.nn.data.NDArrayDataset(x, tests=y, batch_size=16, shuffle=False)
    hb = b.fit(ds, epochs=3, verbose=0)
    assert ha.history == hb.history
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    with pytest.raises(ValueError, match="y must be None"):
        b.fit(ds, y, verbose=0)


def test_shuffle_draws_from_the_library_generator():
    x, y = blobs()
    runs = []
    for _ in range(2):
        m = mlp(seed=3)
        tapegrad.set_seed(5)
        runs.append(m.fit(x, y, epochs=2, batch_size=16, verbose=0).history["loss"])
    assert runs[0] == runs[1]
    m = mlp(seed=3)
    assert m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"] != runs[0]


def test_abstract_model_gets_trues_in_fit_and_float64_inputs_are_cast():
    seen = []

    class Teacher(AbstractModel):
        def __init__(self):
            super().__init__()
            self.d = Dense(3)

        def call(self, inputs, training=None, trues=None):
            seen.append((inputs.dtype, training, None if trues is None else trues.shape))
            return self.d(inputs)

    x, y = blobs(20)
    m = Teacher()
    m.compile(optimizer="sgd", loss=losses.SparseCategoricalCrossentropy(from_logits=True), jit=False)
    m.fit(x.astype(np.float64), y, epochs=1, batch_size=10, verbose=0)
    m.evaluate(x, y, batch_size=20, verbose=0)
    m.predict(x, batch_size=20)
    assert seen == [(np.float32, True, (10,))] * 2 + [(np.float32, False, (20,)), (np.float32, False, None)]
    # compiled (the default): call's Python runs once per traced step, then the graphs run
    seen.clear()
    m.compile(optimizer="sgd", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x.astype(np.float64), y, epochs=3, batch_size=10, verbose=0)
    m.evaluate(x, y, batch_size=20, verbose=0)
    m.evaluate(x, y, batch_size=20, verbose=0)
    m.predict(x, batch_size=20)
    assert seen == [(np.float32, True, (10,)), (np.float32, False, (20,)), (np.float32, False, None)]


def test_initial_epoch_and_train_on_batch():
    x, y = blobs()
    m = mlp()
    h = m.fit(x, y, epochs=5, initial_epoch=3, verbose=0)
    assert h.epoch == [3, 4] and len(h.history["loss"]) == 2
    before = m.optimizer.iterations
    loss = m.train_on_batch(x[:8], y[:8])
    assert isinstance(loss, float) and int(m.optimizer.iterations) == int(before) + 1
    assert isinstance(m.test_on_batch(x, y), float)


# -- validation ---------------------------------------------------------------------------------------
def test_validation_split_holds_out_the_last_samples():
    x, y = blobs(100)
    m = mlp(optimizer=optimizers.SGD(learning_rate=0.0))  # nothing changes: val_loss is checkable
    events = Events()
    h = m.fit(x, y, epochs=1, batch_size=10, validation_split=0.25, verbose=0, callbacks=[events])
    assert events.params["steps"] == 8  # 75 training samples
    assert sum(1 for e in events.events if e[0] == "batch_end") == 8
    expected = m.evaluate(x[75:], y[75:], verbose=0, return_dict=True)
    assert math.isclose(h.history["val_loss"][0], expected["loss"], rel_tol=1e-6)
    assert math.isclose(h.history["val_accuracy"][0], expected["accuracy"])
    for bad in (1.0, -0.1, 0.999):
        with pytest.raises(ValueError, match="validation_split"):
            m.fit(x, y, validation_split=bad, verbose=0)


def test_validation_data_as_a_dataset():
    x, y = blobs()
    m = mlp()
    val = tapegrad.nn.data.NDArrayDataset(x[:30], tests=y[:30], batch_size=8, shuffle=False)
    h = m.fit(x, y, epochs=2, validation_data=val, verbose=0)
    assert len(h.history["val_loss"]) == 2
    with pytest.raises(ValueError, match="validation_data"):
        m.fit(x, y, validation_data=(x, y, np.ones(len(x))), verbose=0)


# -- verbose output -------------------------------------------------------------------------------------
def test_verbose_0_prints_nothing(capsys):
    mlp().fit(*blobs(), epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_verbose_2_prints_one_line_per_epoch(capsys):
    x, y = blobs()
    mlp().fit(x, y, epochs=3, validation_split=0.25, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines, 1):
        assert re.fullmatch(rf"Epoch {i}/3 - \d+s - \d+(us|ms|s)/step - loss: \d\.\d{{4}} - accuracy: \d\.\d{{4}}"
                            r" - val_loss: \d\.\d{4} - val_accuracy: \d\.\d{4}", line), line


def test_verbose_1_off_a_terminal_prints_the_final_bar_line_only(capsys):
    x, y = blobs()
    mlp().fit(x, y, epochs=2, batch_size=16, verbose=1)
    out = capsys.readouterr().out
    assert "\r" not in out and "ETA" not in out
    lines = out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert re.fullmatch(r"6/6 \[={30}\] - \d+s \d+(us|ms)/step - loss: \d\.\d{4} - accuracy: \d\.\d{4}", lines[1])


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_verbose_1_on_a_terminal_redraws_the_bar_in_place(monkeypatch):
    stream = FakeTerminal()
    monkeypatch.setattr("sys.stdout", stream)
    monkeypatch.setattr(progress, "_INTERVAL", 0.0)  # redraw after every step
    x, y = blobs()
    mlp().fit(x, y, epochs=1, batch_size=16, verbose=1)
    out = stream.getvalue()
    updates = out.split("\r")
    assert updates[0] == "Epoch 1/1\n"
    assert re.match(r"1/6 \[=====>\.{24}\] - ETA: \d+s - loss: \d\.\d{4} - accuracy: ", updates[1])
    assert any(u.startswith("5/6 [") for u in updates)
    assert updates[-1].startswith("6/6 [" + "=" * 30 + "]") and updates[-1].endswith("\n")
    assert out.count("\n") == 2


def test_evaluate_prints_a_bar_by_default(capsys):
    x, y = blobs()
    mlp().evaluate(x, y, batch_size=32)
    assert re.fullmatch(r"3/3 \[={30}\] - \d+s \d+(us|ms)/step - loss: \d\.\d{4} - accuracy: \d\.\d{4}\n",
                        capsys.readouterr().out)


# -- callbacks -----------------------------------------------------------------------------------------
def test_callback_events_logs_and_params():
    x, y = blobs(40)
    m = mlp()
    events = Events()
    m.fit(x, y, epochs=2, batch_size=20, validation_data=(x, y), verbose=0, callbacks=[events])
    assert events.model is m
    assert events.params == {"epochs": 2, "steps": 2, "verbose": 0, "batch_size": 20}
    batch_keys = ["accuracy", "loss"]
    epoch_keys = ["accuracy", "loss", "val_accuracy", "val_loss"]
    one_epoch = [("batch_begin", 0), ("batch_end", 0, batch_keys), ("batch_begin", 1), ("batch_end", 1, batch_keys),
                 ("test_begin",), ("test_end", batch_keys)]
    assert events.events == [
        ("train_begin",),
        ("epoch_begin", 0), *one_epoch, ("epoch_end", 0, epoch_keys),
        ("epoch_begin", 1), *one_epoch, ("epoch_end", 1, epoch_keys),
        ("train_end", epoch_keys),
    ]


def test_a_callback_can_stop_training_after_a_batch():
    x, y = blobs(40)
    m = mlp()
    stopper = LambdaCallback(on_train_batch_end=lambda batch, logs: setattr(m, "stop_training", batch == 1))
    h = m.fit(x, y, epochs=5, batch_size=10, verbose=0, callbacks=[stopper])
    assert h.epoch == [0] and int(m.optimizer.iterations) == 2


def test_early_stopping_patience_and_restore_best_weights():
    x, y = blobs()
    m = mlp()
    script = Script("val_loss", [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    h = m.fit(x, y, epochs=7, verbose=0, callbacks=[script, stop])
    assert h.epoch == [0, 1, 2, 3]  # best at epoch 1, two epochs without improvement
    assert stop.stopped_epoch == 3 and stop.best == 0.5 and stop.best_epoch == 1
    for w, best in zip(m.get_weights(), script.weights[1]):
        np.testing.assert_array_equal(w, best)


def test_early_stopping_min_delta_mode_and_no_restore():
    x, y = blobs()
    m = mlp()
    script = Script("val_accuracy", [0.5, 0.6, 0.605, 0.61, 0.9])
    stop = EarlyStopping(monitor="val_accuracy", min_delta=0.05, patience=2)  # mode auto: max
    h = m.fit(x, y, epochs=5, verbose=0, callbacks=[script, stop])
    assert h.epoch == [0, 1, 2, 3]
    for w, last in zip(m.get_weights(), script.weights[3]):
        np.testing.assert_array_equal(w, last)
    with pytest.warns(RuntimeWarning, match="'val_loss' is not in the logs"):
        mlp().fit(x, y, epochs=1, verbose=0, callbacks=[EarlyStopping()])


def test_model_checkpoint_save_best_only_writes_only_improvements(tmp_path):
    x, y = blobs()
    m = mlp()
    script = Script("val_loss", [1.0, 0.5, 0.6, 0.4, 0.45])
    ckpt = ModelCheckpoint(str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.2f}.tgm"), save_best_only=True)
    m.fit(x, y, epochs=5, verbose=0, callbacks=[script, ckpt])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["ckpt-01-1.00.tgm", "ckpt-02-0.50.tgm", "ckpt-04-0.40.tgm"]
    loaded = tapegrad.load_model(tmp_path / "ckpt-04-0.40.tgm")
    for w, saved in zip(loaded.get_weights(), script.weights[3]):
        np.testing.assert_array_equal(w, saved)
    assert type(loaded.optimizer).__name__ == "Adam"


def test_model_checkpoint_every_epoch_and_weights_only(tmp_path):
    x, y = blobs()
    m = mlp()
    ckpt = ModelCheckpoint(tmp_path / "w-{epoch}.tgm", save_weights_only=True)
    m.fit(x, y, epochs=3, verbose=0, callbacks=[ckpt])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w-1.tgm", "w-2.tgm", "w-3.tgm"]
    fresh = mlp(seed=9)
    fresh.load_weights(tmp_path / "w-3.tgm")
    np.testing.assert_array_equal(fresh.predict(x), m.predict(x))
    with pytest.raises(ValueError, match="weights-only file"):
        tapegrad.load_model(tmp_path / "w-3.tgm")
    with pytest.raises(KeyError, match="val_loss"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "{val_loss}.tgm")])


def test_learning_rate_scheduler_changes_the_optimizer_rate():
    x, y = blobs()
    m = mlp(optimizer=optimizers.SGD(learning_rate=0.1))
    script = Script("unused", [0] * 4)
    sched = LearningRateScheduler(lambda epoch, lr: lr if epoch == 0 else (0.0 if epoch == 2 else lr * 0.5))
    h = m.fit(x, y, epochs=4, verbose=0, callbacks=[sched, script])
    np.testing.assert_allclose(h.history["learning_rate"], [0.1, 0.05, 0.0, 0.0], rtol=1e-6)
    assert float(m.optimizer.learning_rate) == 0.0
    for w1, w2 in zip(script.weights[1], script.weights[2]):  # lr 0 in epoch 2: nothing moved
        np.testing.assert_array_equal(w1, w2)
    assert not all(np.array_equal(a, b) for a, b in zip(script.weights[0], script.weights[1]))
    # a schedule of the epoch alone works too
    m.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch: 0.25)])
    assert float(m.optimizer.learning_rate) == 0.25


# -- non-finite losses ---------------------------------------------------------------------------------
class Poison(Callback):
    """Puts a NaN into sample `index` of the training inputs when epoch `epoch` begins, and
    records the weights after every batch."""

    def __init__(self, x, epoch, index):
        super().__init__()
        self.x, self.epoch, self.index, self.after_batch = x, epoch, index, None

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.x[self.index, 0] = np.nan

    def on_train_batch_end(self, batch, logs=None):
        self.after_batch = self.model.get_weights()


def test_a_nan_loss_raises_naming_the_epoch_and_batch_and_keeps_the_last_good_weights():
    x, y = blobs(80)
    m = mlp()
    poison = Poison(x, epoch=1, index=45)  # batch 3 of epoch 2 (batch_size 16, no shuffling)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2/5, batch 3/5") as info:
        m.fit(x, y, epochs=5, batch_size=16, shuffle=False, verbose=0, callbacks=[poison])
    err = info.value
    assert isinstance(err, ValueError) and (err.epoch, err.batch) == (1, 2)
    assert "update was not applied" in str(err)
    assert err.history is m.history and err.history.epoch == [0] and len(err.history.history["loss"]) == 1
    for w, good in zip(m.get_weights(), poison.after_batch):
        np.testing.assert_array_equal(w, good)
    assert int(m.optimizer.iterations) == 5 + 2


def test_terminate_on_nan_stops_gracefully(capsys):
    x, y = blobs(80)
    m = mlp()
    poison = Poison(x, epoch=1, index=45)
    h = m.fit(x, y, epochs=5, batch_size=16, shuffle=False, verbose=0, callbacks=[poison, TerminateOnNaN()])
    assert "Epoch 2, batch 3: invalid loss (nan), terminating training" in capsys.readouterr().out
    assert h.epoch == [0] and m.stop_training
    for w, good in zip(m.get_weights(), poison.after_batch):
        np.testing.assert_array_equal(w, good)


def test_an_infinite_loss_is_caught_too():
    x, y = blobs(32)
    m = mlp(loss=lambda trues, predicts: tapegrad.reduce_sum(predicts) * np.float32(np.inf))
    with pytest.raises(NonFiniteLossError, match="epoch 1/1, batch 1/1"):
        m.fit(x, y, epochs=1, batch_size=32, verbose=0)


# -- the hot path -----------------------------------------------------------------------------------------
def test_fit_discovers_variables_once(monkeypatch):
    x, y = blobs()
    m = mlp()
    m.trainable_variables()
    calls = []
    original = model_mod._discover
    monkeypatch.setattr(model_mod, "_discover", lambda root: calls.append(root) or original(root))
    m.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert calls == []


# -- History plots and the examples --------------------------------------------------------------------
def test_history_plot_saves_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = blobs()
    h = mlp().fit(x, y, epochs=3, validation_split=0.25, verbose=0)
    fig = h.plot(path=tmp_path / "curves.png", title="training")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.get_suptitle() == "training"
    loss_ax, accuracy_ax = fig.axes  # one axes per quantity (see test_history_plots.py)
    assert [line.get_label() for line in loss_ax.get_lines()] == ["loss", "val_loss"]
    assert [line.get_label() for line in accuracy_ax.get_lines()] == ["accuracy", "val_accuracy"]
    assert list(loss_ax.get_lines()[0].get_ydata()) == h.history["loss"]
    from tapegrad.nn.models import plot_history, plot_loss

    fig = plot_loss([3.0, 2.0, 1.0], tmp_path / "loss.png", title="dynamic mode gradient")
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "loss"
    assert (tmp_path / "loss.png").exists()
    plot_history(h, keys=["val_loss"], path=tmp_path / "val.png")
    with pytest.raises(KeyError, match="no curve named 'nope'"):
        plot_history(h, keys=["nope"])


def test_plots_without_matplotlib_say_how_to_install_it(monkeypatch):
    import sys

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    from tapegrad.nn.models import History

    h = History()
    h.on_epoch_end(0, {"loss": 1.0})
    with pytest.raises(ImportError, match="pip install matplotlib"):
        h.plot()


def _run_example(name, tmp_path, *args, env=None):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "examples" / name
    result = subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "MPLBACKEND": "Agg", **(env or {})})
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_seed_training_example_prints_losses_and_saves_the_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = _run_example("seed_training.py", tmp_path, "curve.png")
    losses_ = [float(re.fullmatch(rf"epoch {i}: loss=(\d+\.\d{{6}})", line).group(1))
               for i, line in enumerate(out[:100], 1)]
    assert losses_[-1] < 0.7 * losses_[0]
    assert out[100] == f"saved the loss plot to {tmp_path / 'curve.png'}"
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_seed_training_example_runs_without_matplotlib(tmp_path):
    blocker = tmp_path / "blocked" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib is blocked for this test')\n")
    import os

    path = os.pathsep.join([str(tmp_path / "blocked"), os.environ.get("PYTHONPATH", "")])
    out = _run_example("seed_training.py", tmp_path, env={"PYTHONPATH": path})
    assert len(out) == 101 and out[-1] == "matplotlib is not installed: no loss plot (pip install matplotlib)"
    assert not list(tmp_path.glob("*.png"))


def test_digits_example_reaches_95_percent_and_reloads_identically(tmp_path):
    pytest.importorskip("sklearn")
    out = _run_example("digits_mlp.py", tmp_path, str(tmp_path / "digits.tgm"))
    accuracy = float(next(line for line in out if line.startswith("test accuracy:")).split(":")[1])
    assert accuracy >= 0.95
    assert out[-1].endswith("the reloaded model predicts identically: True")
    assert tapegrad.load_model(tmp_path / "digits.tgm").metrics_names == ["loss", "accuracy"]


def test_seed_autodiff_example_ends_with_the_layers_snippet(tmp_path):
    out = _run_example("seed_autodiff.py", tmp_path)
    assert out[:13] == ["[2,3]", "[2,3]", "a=[2,3]", "value=[0,0]", "a=[2,3]", "b=[4,5]", "c=6",
                        "c=6", "da=3", "db=2", "c=6", "da=3", "db=2"]
    assert out[13] == "weights: dense/kernel(3, 10), dense/bias(10,)"
    assert out[14] == "grads: (3, 10), (10,)"
    match = re.fullmatch(r"loss=([\d.]+) after one SGD step=([\d.]+) decreased=True", out[15])
    assert match and float(match.group(2)) < float(match.group(1))


# -- compiled steps (compile(jit=True), the default) -------------------------------------------------
def test_compiled_fit_trains_like_eager_fit():
    x, y = blobs(100)
    runs = {}
    for jit in (False, True):
        m = mlp(seed=5, jit=jit)
        history = m.fit(x, y, epochs=4, batch_size=32, shuffle=False, verbose=0,
                        validation_data=(x[:20], y[:20])).history
        runs[jit] = (history, m.get_weights(), m.predict(x[:7]), m.evaluate(x, y, verbose=0))
    eager, compiled = runs[False], runs[True]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(compiled[0][key], eager[0][key], rtol=1e-5)
    for a, b in zip(compiled[1], eager[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(compiled[2], eager[2], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(compiled[3], eager[3], rtol=1e-5)


def test_compiled_fit_traces_twice_for_all_batch_sizes():
    x, y = blobs(100)
    m = mlp(seed=1)
    m.fit(x, y, epochs=3, batch_size=32, verbose=0)  # batches of 32, 32, 32 and 4
    m.fit(x, y, epochs=1, batch_size=17, verbose=0)  # and 17, ..., 15: replayed, not traced
    assert m._train_fn.function.trace_count == 2  # the second size verified the trace is polymorphic
    for n in (5, 9, 100):
        np.testing.assert_allclose(m.predict(x[:n], batch_size=n), m.predict(x[:n], batch_size=1), rtol=1e-5)
    assert m._predict_fn.function.trace_count == 2


def test_compiled_step_skips_the_update_on_a_nan_loss():
    x, y = blobs(64)
    m = mlp(seed=2)
    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    before = m.get_weights()
    bad = x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="epoch 1/1, batch 1/1"):
        m.fit(bad, y, epochs=1, batch_size=64, verbose=0)
    for a, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_compiled_fit_with_batch_norm_and_dropout():
    from tapegrad.nn.layers import BatchNormalization, Dropout

    x, y = blobs(128)
    tapegrad.set_seed(0)
    m = Sequential([Dense(32, input_shape=[4], activation="relu"), BatchNormalization(), Dropout(0.3),
                    Dense(3)])
    m.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    moving_before = m.layers[1].moving_mean.value().copy()
    history = m.fit(x, y, epochs=15, batch_size=32, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert not np.allclose(m.layers[1].moving_mean.value(), moving_before)  # the assign effects ran
    assert m.evaluate(x, y, verbose=0)[1] > 0.9
