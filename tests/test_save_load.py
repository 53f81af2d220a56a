"""Saving and loading: the file container (no pickle, verified before parsing, bounded
reads), atomic writes (a save killed midway leaves the previous file intact), and the
model-level guarantees (Sequential and registered subclasses round-trip; training resumes
bit for bit; weights-only files; clear errors)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import tapegrad
from tapegrad.io import MAGIC, ModelFileError, read_container, write_container
from tapegrad.io import container as container_mod

ROOT = Path(__file__).resolve().parent.parent


# -- helpers -------------------------------------------------------------------------------------
def craft(path: Path, header: object, data: bytes = b"", *, magic: bytes = MAGIC, version: int = 1,
          header_len: int | None = None, digest: bool = True) -> Path:
    """Write a container by hand (valid checksum unless digest=False), to play the attacker."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(raw) if header_len is None else header_len
    body = struct.pack("<12sIQ", magic, version, n) + raw
    body += b"\0" * (-len(body) % 64) + data
    path.write_bytes(body + (hashlib.sha256(body).digest() if digest else b"\0" * 32))
    return path


def entry(name: str, dtype: str, shape: list, offset: int = 0, nbytes: int | None = None) -> dict:
    if nbytes is None:
        nbytes = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    return {"name": name, "dtype": dtype, "shape": shape, "offset": offset, "nbytes": nbytes}


def sequential(nn: tapegrad.NeuralNetworks | None = None) -> tapegrad.Sequential:
    nn = nn or tapegrad.NeuralNetworks()
    return tapegrad.Sequential([
        nn.layers.Dense(16, input_shape=[4], activation="relu"),
        nn.layers.Dense(3),
    ])


def data(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0.5).astype(np.int32)
    return x, y


# -- the container --------------------------------------------------------------------------------
def test_container_round_trip_keeps_dtypes_shapes_and_bytes(tmp_path):
    arrays = {
        "a": np.arange(12, dtype=np.float32).reshape(3, 4),
        "b/c": np.array(7, dtype=np.int64),
        "empty": np.zeros((0, 5), dtype=np.float64),
        "big_endian": np.arange(5, dtype=">f8"),
        "strided": np.arange(20, dtype=np.int16).reshape(4, 5)[:, ::2],
        "flags": np.array([True, False]),
    }
    path = tmp_path / "x.tgm"
    write_container(path, {"hello": ["world", 1]}, arrays)
    meta, back = read_container(path)
    assert meta == {"hello": ["world", 1]}
    assert list(back) == list(arrays)
    for name, arr in arrays.items():
        assert back[name].shape == arr.shape
        assert back[name].dtype == arr.dtype.newbyteorder("=")
        np.testing.assert_array_equal(back[name], arr)
        assert back[name].flags.writeable
    raw = path.read_bytes()
    assert raw[:12] == MAGIC and hashlib.sha256(raw[:-32]).digest() == raw[-32:]
    assert b"pickle" not in raw


def test_writer_refuses_object_arrays_and_bad_names(tmp_path):
    with pytest.raises(ValueError, match="dtype object"):
        write_container(tmp_path / "x", {}, {"a": np.array([object()])})
    for name in ("../etc", "/abs", "a/../b", "a//b", "", "a\nb"):
        with pytest.raises(ValueError, match="invalid array name"):
            write_container(tmp_path / "x", {}, {name: np.zeros(1)})
    assert not (tmp_path / "x").exists()


def test_truncated_files_raise_a_clear_error(tmp_path):
    path = tmp_path / "m.tgm"
    write_container(path, {"k": "v" * 100}, {"w": np.arange(100, dtype=np.float32)})
    raw = path.read_bytes()
    for size in (0, 5, 12, 23, 40, 100, 200, len(raw) // 2, len(raw) - 33, len(raw) - 1):
        cut = tmp_path / f"cut{size}.tgm"
        cut.write_bytes(raw[:size])
        with pytest.raises(ModelFileError) as info:
            read_container(cut)
        assert str(cut) in str(info.value)
        assert isinstance(info.value, ValueError)


def test_bit_flips_anywhere_are_detected(tmp_path):
    path = tmp_path / "m.tgm"
    write_container(path, {"k": "v"}, {"w": np.arange(300, dtype=np.float32)})
    raw = path.read_bytes()
    offsets = [0, 5, 11, 12, 14, 16, 20, 24, 30, 60, 70, len(raw) // 2, len(raw) - 40, len(raw) - 32, len(raw) - 1]
    for off in offsets:
        for bit in (0, 7):
            bad = bytearray(raw)
            bad[off] ^= 1 << bit
            p = tmp_path / "flip.tgm"
            p.write_bytes(bytes(bad))
            with pytest.raises(ModelFileError) as info:
                read_container(p)
            message = str(info.value)
            assert str(p) in message
            assert any(w in message for w in ("checksum", "magic", "version", "header", "corrupt")), message


@pytest.mark.parametrize("header, words", [
    ({"arrays": [entry("w", "object", [2])]}, "dtype 'object' is not allowed"),
    ({"arrays": [entry("w", "|O", [2], nbytes=16)]}, "is not allowed"),
    ({"arrays": [entry("w", "<U10", [1], nbytes=40)]}, "is not allowed"),
    ({"arrays": [entry("w", "V8", [1], nbytes=8)]}, "is not allowed"),
    ({"arrays": [entry("w", "float32", [10 ** 12, 10 ** 12])]}, "outside the data section"),
    ({"arrays": [entry("w", "float32", [2 ** 62, 2 ** 62], nbytes=16)]}, "bytes, but 16 are declared"),
    ({"arrays": [entry("w", "float32", [4], nbytes=8)]}, "needs 16 bytes"),
    ({"arrays": [entry("w", "float32", [-4], nbytes=0)]}, "invalid shape"),
    ({"arrays": [entry("w", "float32", [True], nbytes=4)]}, "invalid shape"),
    ({"arrays": [entry("w", "float32", [1] * 40, nbytes=4)]}, "invalid shape"),
    ({"arrays": [entry("w", "float32", [2], offset=10 ** 15)]}, "outside the data section"),
    ({"arrays": [entry("w", "float32", [2], offset=-8)]}, "invalid offset"),
    ({"arrays": [entry("a", "float32", [4]), entry("b", "float32", [4], offset=8)]}, "overlap"),
    ({"arrays": [entry("a", "float32", [1]), entry("a", "float32", [1], offset=64)]}, "duplicate array name"),
    ({"arrays": [entry("../../etc/passwd", "uint8", [1])]}, "invalid array name"),
    ({"arrays": [entry("/root/x", "uint8", [1])]}, "invalid array name"),
    ({"arrays": [entry("a/../b", "uint8", [1])]}, "invalid array name"),
    ({"arrays": [entry("a\u0000b", "uint8", [1])]}, "invalid array name"),
    ({"arrays": [{"name": "w", "dtype": "float32"}]}, "expected the keys"),
    ({"arrays": "all of them"}, "'arrays' must be a list"),
    ({}, "'arrays' must be a list"),
    ([1, 2, 3], "expected a JSON object"),
])
def test_hostile_headers_are_rejected_without_big_allocations(tmp_path, header, words):
    path = craft(tmp_path / "evil.tgm", header, data=b"\0" * 128)
    with pytest.raises(ModelFileError, match="evil.tgm") as info:
        read_container(path)
    assert words in str(info.value)


@pytest.mark.parametrize("raw, words", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    (b'{"a": 1, "a": 2, "arrays": []}', "duplicate key"),
    (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
], ids=["truncated", "not-utf8", "duplicate-keys", "deeply-nested"])
def test_malformed_json_is_a_clear_error(tmp_path, raw, words):
    path = craft(tmp_path / "bad.tgm", raw)
    with pytest.raises(ModelFileError, match=words):
        read_container(path)


def test_wrong_magic_version_and_header_length(tmp_path):
    good = {"arrays": []}
    with pytest.raises(ModelFileError, match="wrong magic"):
        read_container(craft(tmp_path / "a", good, magic=b"\x80NUMPY\x00\x00\x00\x00\x00\x00"))
    with pytest.raises(ModelFileError, match="wrong magic"):
        (tmp_path / "p").write_bytes(b"\x80\x04\x95" + b"\0" * 100)  # a pickle
        read_container(tmp_path / "p")
    with pytest.raises(ModelFileError, match="unsupported format version 9"):
        read_container(craft(tmp_path / "b", good, version=9))
    with pytest.raises(ModelFileError, match="header length"):
        read_container(craft(tmp_path / "c", good, header_len=2 ** 60))
    with pytest.raises(ModelFileError, match="checksum"):
        read_container(craft(tmp_path / "d", good, digest=False))
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_container(tmp_path / "missing")


def test_header_limits_are_checked_on_write_and_on_read(tmp_path, monkeypatch):
    deep: object = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(ModelFileError, match="nested 302 levels deep"):
        read_container(craft(tmp_path / "deep.tgm", {"x": deep, "arrays": []}))
    with pytest.raises(ValueError, match="nested 302 levels deep"):
        write_container(tmp_path / "deep.tgm", {"x": deep}, {})
    monkeypatch.setattr(container_mod, "MAX_HEADER_BYTES", 1000)
    with pytest.raises(ValueError, match="more than the 1000 a file may hold"):
        write_container(tmp_path / "big.tgm", {"x": "y" * 1000}, {})
    assert not (tmp_path / "big.tgm").exists()
    with pytest.raises(ModelFileError, match=r"header length \d+ exceeds .* the limit of 1000 bytes"):
        read_container(craft(tmp_path / "big.tgm", {"x": "y" * 1000, "arrays": []}))


@pytest.mark.parametrize("start, words", [
    (b"PK\x03\x04" + b"\0" * 60, "Keras .keras file"),
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 60, "Keras .h5 file"),
    (b"\x80\x02" + b"\0" * 60, "pickle"),
], ids=["keras", "hdf5", "pickle"])
def test_other_libraries_files_are_named(tmp_path, start, words):
    (tmp_path / "m.keras").write_bytes(start)
    with pytest.raises(ModelFileError, match=f"wrong magic bytes.*{words}.*only files written by tapegrad"):
        read_container(tmp_path / "m.keras")


def test_atomic_write_failure_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "m.tgm"
    write_container(path, {"v": 1}, {"w": np.ones(10)})
    before = path.read_bytes()

    def boom(f, arr):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(container_mod, "_write_array", boom)
    with pytest.raises(OSError, match="disk full"):
        write_container(path, {"v": 2}, {"w": np.zeros(10)})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.tgm"]


def test_saved_files_get_normal_permissions(tmp_path):
    path = tmp_path / "m.tgm"
    write_container(path, {}, {})
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask


_SAVER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import tapegrad
    from tapegrad.io import container

    path, ready, go = sys.argv[1], sys.argv[2], sys.argv[3]
    nn = tapegrad.NeuralNetworks()
    model = tapegrad.Sequential([nn.layers.Dense(512, input_shape=[256], activation="relu"),
                                 nn.layers.Dense(10)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    write = container._write_array
    calls = []

    def write_half_then_wait(f, arr):
        calls.append(arr)
        if len(calls) > 1:
            return write(f, arr)
        data = memoryview(arr).cast("B")
        f.write(data[: len(data) // 2])
        f.flush()
        with open(ready, "w") as r:
            r.write("ready")
        deadline = time.monotonic() + 120
        while not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.01)
        f.write(data[len(data) // 2:])

    container._write_array = write_half_then_wait
    model.save(path)
""")


def start_saver(tmp_path: Path, path: Path) -> tuple[subprocess.Popen, Path]:
    """A process that saves a model to ``path`` and stops in the middle of writing until
    the file ``go`` exists. Returns it once it is there, and the path of ``go``."""
    script = tmp_path / "saver.py"
    script.write_text(_SAVER)
    ready, go = tmp_path / "ready", tmp_path / "go"
    for p in (ready, go):
        p.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the tapegrad under test
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(ready), str(go)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1].decode())
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the saver never reached the middle of its save")
        time.sleep(0.01)
    return proc, go


def temporaries(folder: Path, name: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(f".{name}.") and p.name.endswith(".tmp"))


def test_a_save_killed_midway_leaves_the_previous_file_intact_and_the_next_save_cleans_up(tmp_path):
    path = tmp_path / "model.tgm"
    model = sequential()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    model.save(path)
    before = path.read_bytes()
    expected = model.predict(x)

    proc, _ = start_saver(tmp_path, path)
    try:
        temps = temporaries(tmp_path, "model.tgm")
        assert len(temps) == 1 and temps[0].stat().st_size > 100_000  # half written
        assert f".{proc.pid}-" in temps[0].name  # its writer's pid is in its name
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    loaded = tapegrad.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), expected)
    # the half-written temporary file is garbage the loader refuses
    with pytest.raises(ModelFileError):
        read_container(temps[0])
    assert temps[0].exists()
    # the next save to the same path removes it (its writer is gone and holds no lock)
    loaded.save(path)
    assert temporaries(tmp_path, "model.tgm") == []
    np.testing.assert_array_equal(tapegrad.load_model(path).predict(x), expected)


def test_a_save_running_in_another_process_is_not_disturbed(tmp_path):
    path = tmp_path / "model.tgm"
    proc, go = start_saver(tmp_path, path)
    try:
        temps = temporaries(tmp_path, "model.tgm")
        assert len(temps) == 1
        size = temps[0].stat().st_size
        mine = sequential()
        mine.save(path)  # a concurrent save to the same path: it must leave the other one's file alone
        assert temporaries(tmp_path, "model.tgm") == temps and temps[0].stat().st_size == size
        np.testing.assert_array_equal(tapegrad.load_model(path).get_weights()[0], mine.get_weights()[0])
        go.write_text("go")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert temporaries(tmp_path, "model.tgm") == []
    other = tapegrad.load_model(path)  # the other process's save, complete
    assert other.get_weights()[0].shape == (256, 512)


# -- models ---------------------------------------------------------------------------------------
def fitted(epochs: int = 2, **compile_args) -> tapegrad.Sequential:
    tapegrad.set_seed(0)
    m = sequential()
    args = {"optimizer": "adam", "loss": tapegrad.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": ["accuracy"]}
    args.update(compile_args)
    m.compile(**args)
    x, y = data()
    m.fit(x, y, epochs=epochs, batch_size=16, shuffle=False, verbose=0)
    return m


def test_sequential_round_trip_restores_everything(tmp_path):
    m = fitted()
    path = tmp_path / "m.tgm"
    m.save(path)
    loaded = tapegrad.load_model(path)
    assert type(loaded) is tapegrad.Sequential and loaded.name == m.name
    assert [type(layer).__name__ for layer in loaded.layers] == ["Dense", "Dense"]
    assert [layer.get_config() for layer in loaded.layers] == [layer.get_config() for layer in m.layers]
    for a, b in zip(loaded.variables(), m.variables()):
        assert a.name == b.name and a.dtype == b.dtype
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    x, y = data()
    np.testing.assert_array_equal(loaded.predict(x), m.predict(x))
    assert type(loaded.optimizer) is type(m.optimizer)
    assert loaded.optimizer.get_config() == m.optimizer.get_config()
    assert type(loaded._loss_fn) is type(m._loss_fn) and loaded._loss_fn.get_config() == m._loss_fn.get_config()
    assert loaded.metrics_names == ["loss", "accuracy"]
    assert int(loaded.optimizer.iterations) == int(m.optimizer.iterations) == 8
    assert loaded.evaluate(x, y, verbose=0) == m.evaluate(x, y, verbose=0)
    uncompiled = tapegrad.load_model(path, compile=False)
    assert uncompiled.optimizer is None
    np.testing.assert_array_equal(uncompiled.predict(x), m.predict(x))


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum", "rmsprop"])
def test_training_resumes_bit_for_bit_after_save_and_load(tmp_path, optimizer):
    opt = {"sgd_momentum": lambda: tapegrad.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
           "adam": lambda: "adam", "rmsprop": lambda: "rmsprop"}[optimizer]
    x, y = data()
    xv, yv = data(16, seed=1)
    kwargs = {"batch_size": 16, "shuffle": False, "verbose": 0, "validation_data": (xv, yv)}

    straight = fitted(epochs=0, optimizer=opt())
    h_all = straight.fit(x, y, epochs=5, **kwargs)

    first = fitted(epochs=0, optimizer=opt())
    h_first = first.fit(x, y, epochs=2, **kwargs)
    first.save(tmp_path / "ckpt.tgm")
    resumed = tapegrad.load_model(tmp_path / "ckpt.tgm")
    h_rest = resumed.fit(x, y, epochs=5, initial_epoch=2, **kwargs)

    for key in h_all.history:
        assert h_first.history[key] + h_rest.history[key] == h_all.history[key], key
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)
    state_a, state_b = resumed.optimizer.get_state(), straight.optimizer.get_state()
    assert state_a.keys() == state_b.keys()
    for k in state_a:
        np.testing.assert_array_equal(state_a[k], state_b[k])


@tapegrad.register_model
class Registered(tapegrad.AbstractModel):
    def __init__(self, builder, units=8):
        super().__init__(builder)
        self.units = units
        self.blocks = [builder.layers.Dense(units, activation="relu"), builder.layers.Dense(3)]

    def call(self, inputs, training=None):
        for layer in self.blocks:
            inputs = layer(inputs, training)
        return inputs

    def get_config(self):
        return {"units": self.units}


class SeedModel(tapegrad.AbstractModel):
    def __init__(self, builder):
        super().__init__(builder)
        self.dense1 = builder.layers.Dense(128, input_shape=[2], activation="sigmoid")
        self.dense2 = builder.layers.Dense(2)

    def call(self, inputs, training=None, trues=None):
        x = self.dense1.forward(inputs, training)
        return self.dense2.forward(x, training)


def test_registered_subclass_round_trip_with_its_config(tmp_path):
    nn = tapegrad.NeuralNetworks(dtype="float64")
    m = Registered(nn, units=5)
    m.compile(optimizer="adam", loss=tapegrad.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = data()
    m.fit(x, y, epochs=1, verbose=0)
    m.save(tmp_path / "r.tgm")
    loaded = tapegrad.load_model(tmp_path / "r.tgm")
    assert type(loaded) is Registered and loaded.units == 5 and loaded.dtype == np.float64
    np.testing.assert_array_equal(loaded.predict(x), m.predict(x))
    assert "Registered" in tapegrad.nn.models.registered_models()
    # a hostile config of a registered class cannot make the loader allocate much
    evil = tamper(tmp_path / "r.tgm", lambda meta, arrays: meta["model"]["config"].update(units=10 ** 9))
    with pytest.raises(ModelFileError, match="creates weight .* more than the"):
        tapegrad.load_model(evil)


def test_unregistered_subclass_needs_custom_objects(tmp_path):
    nn = tapegrad.NeuralNetworks()
    g = nn.gradient()
    m = SeedModel(nn)
    opt = nn.optimizers.Adam()
    lossfunc = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    x = np.array([[1, 3], [1, 4], [2, 4], [3, 1], [4, 1], [4, 2]], dtype=np.float32)
    t = np.array([0, 0, 0, 1, 1, 1], dtype=np.int32)
    for _ in range(3):  # the seed's custom loop, then save
        with g.GradientTape() as tape:
            loss = lossfunc(t, m(g.Variable(x), True, g.Variable(t)))
        params = m.trainable_variables()
        opt.update(params, tape.gradient(loss, params))
    m.save(tmp_path / "seed.tgm")
    with pytest.raises(ModelFileError, match=r"unknown model class 'SeedModel'.*register_model") as info:
        tapegrad.load_model(tmp_path / "seed.tgm")
    assert "seed.tgm" in str(info.value)
    loaded = tapegrad.load_model(tmp_path / "seed.tgm", custom_objects={"SeedModel": SeedModel})
    assert loaded.optimizer is None  # never compiled
    np.testing.assert_array_equal(loaded.predict(x), m.predict(x))


def test_save_and_load_weights(tmp_path):
    m = fitted()
    m.save_weights(tmp_path / "w.tgm")
    other = sequential()
    other.load_weights(tmp_path / "w.tgm")
    x, _ = data()
    np.testing.assert_array_equal(other.predict(x), m.predict(x))
    other.load_weights(tmp_path / "w.tgm")  # idempotent
    # a full model file works as a weights file too
    m.save(tmp_path / "m.tgm")
    other.load_weights(tmp_path / "m.tgm")

    nn = tapegrad.NeuralNetworks()
    deeper = tapegrad.Sequential([nn.layers.Dense(16, input_shape=[4]), nn.layers.Dense(3), nn.layers.Dense(3)])
    with pytest.raises(ModelFileError, match=r"w.tgm: the file holds 4 weights \(dense.*/kernel.*has 6") as info:
        deeper.load_weights(tmp_path / "w.tgm")
    assert isinstance(info.value, ValueError)
    wider = tapegrad.Sequential([nn.layers.Dense(32, input_shape=[4], name="wide"), nn.layers.Dense(3)])
    with pytest.raises(ModelFileError, match=r"weight #0 'dense.*/kernel' has shape \(4, 16\) in the file, but the "
                                             r"model's weight 'wide/kernel' has shape \(4, 32\)"):
        wider.load_weights(tmp_path / "w.tgm")
    unbuilt = tapegrad.Sequential([nn.layers.Dense(16), nn.layers.Dense(3)])
    with pytest.raises(ModelFileError, match="not built"):
        unbuilt.load_weights(tmp_path / "w.tgm")


def tamper(path: Path, change) -> Path:
    meta, arrays = read_container(path)
    change(meta, arrays)
    out = path.with_name("tampered.tgm")
    write_container(out, meta, arrays)  # a valid checksum: only the loader's checks stand
    return out


@pytest.mark.parametrize("change, words", [
    (lambda m, a: m["model"].update(class_name="os.system"), "unknown model class 'os.system'"),
    (lambda m, a: m["model"].update(class_name="__import__"), "unknown model class '__import__'"),
    (lambda m, a: m["model"]["config"]["layers"][0].update(class_name="eval"), "unknown layer class 'eval'"),
    (lambda m, a: m["model"]["config"]["layers"][0]["config"].update(units=10 ** 8), "more than the"),
    (lambda m, a: m["model"]["config"]["layers"][0]["config"].update(units=10 ** 12), "units must be a positive int"),
    (lambda m, a: m["model"]["config"]["layers"][0]["config"].update(input_shape=[10 ** 9]), "more than the"),
    (lambda m, a: m["model"]["config"]["layers"][0]["config"].update(units="many"), "units must be"),
    (lambda m, a: m["model"]["config"]["layers"][0]["config"].update(evil=1), "cannot rebuild"),
    (lambda m, a: m["model"].update(dtype="object"), "invalid model dtype"),
    (lambda m, a: m["model"].update(input_spec={"shape": [10 ** 6, 10 ** 6], "dtype": "float32"}), "too large"),
    (lambda m, a: m["model"].update(input_spec=[[{"shape": [1], "dtype": "float32"}]]), "invalid input spec"),
    (lambda m, a: m["model"].update(input_spec={"shape": [4], "dtype": "object"}), "invalid input spec"),
    (lambda m, a: m.update(kind="pickle"), "got kind 'pickle'"),
    (lambda m, a: m.update(format="numpy"), "not a tapegrad model file"),
    (lambda m, a: m.update(weights=[{"name": "x", "array": "../../etc/passwd"}]), "weights[0] is invalid"),
    (lambda m, a: m.update(weights="all"), "'weights' must be a list"),
    (lambda m, a: m["weights"].pop(), "the file holds 3 weights"),
    (lambda m, a: a.update({"weights/0": np.zeros((4, 17), np.float32)}), "has shape (4, 17) in the file"),
    (lambda m, a: a.update({"weights/0": np.zeros((4, 16), np.int32)}), "has dtype int32"),
    (lambda m, a: m["compile"]["optimizer"].update(class_name="subprocess.Popen"), "unknown optimizer"),
    (lambda m, a: m["compile"]["loss"].update(class_name="exec"), "unknown loss class"),
    (lambda m, a: m["compile"].update(metrics="accuracy"), "'metrics' must be a list"),
    (lambda m, a: m.update(optimizer_state=[{"key": "x", "array": "nope"}]), "optimizer_state[0] is invalid"),
    (lambda m, a: m.update(model=[]), "'model' must be an object"),
])
def test_hostile_model_headers_raise_clear_errors_and_execute_nothing(tmp_path, change, words, monkeypatch):
    m = fitted(epochs=1)
    m.save(tmp_path / "m.tgm")
    path = tamper(tmp_path / "m.tgm", change)
    import pickle

    def forbidden(*args, **kwargs):
        raise AssertionError("the loader must not unpickle anything")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    with pytest.raises(ModelFileError) as info:
        tapegrad.load_model(path)
    assert "tampered.tgm" in str(info.value)
    assert words in str(info.value), str(info.value)


def test_a_corrupt_model_file_is_refused_before_parsing(tmp_path):
    m = fitted(epochs=1)
    m.save(tmp_path / "m.tgm")
    raw = bytearray((tmp_path / "m.tgm").read_bytes())
    for off in (3, 30, len(raw) // 2, len(raw) - 100, len(raw) - 5):
        bad = bytearray(raw)
        bad[off] ^= 0x10
        (tmp_path / "bad.tgm").write_bytes(bytes(bad))
        with pytest.raises(ModelFileError, match="bad.tgm"):
            tapegrad.load_model(tmp_path / "bad.tgm")
    (tmp_path / "short.tgm").write_bytes(bytes(raw[: len(raw) // 3]))
    with pytest.raises(ModelFileError, match="short.tgm: checksum mismatch"):
        tapegrad.load_model(tmp_path / "short.tgm")


def test_saving_is_atomic_over_an_existing_file_and_unsavable_configs_fail_cleanly(tmp_path):
    m = fitted(epochs=1)
    path = tmp_path / "m.tgm"
    m.save(path)
    before = path.read_bytes()

    class Odd(tapegrad.AbstractModel):
        def __init__(self, builder):
            super().__init__(builder)
            self.d = builder.layers.Dense(2)

        def call(self, inputs):
            return self.d(inputs)

        def get_config(self):
            return {"thing": object()}

    odd = Odd(tapegrad.NeuralNetworks())
    odd(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="not JSON"):
        odd.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.tgm"]
