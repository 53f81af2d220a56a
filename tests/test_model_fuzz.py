"""A seeded fuzz test of load_model / load_weights on mutated valid files.

Mutations: byte flips and truncations (with and without a recomputed checksum), JSON
field mutations (type and value substitutions: NaN, Infinity, huge ints, strings,
lists, deep nesting, known class names, deleted and added keys, nested Sequentials)
and array contents (NaN, infinities, huge values), re-signed so that the checksum
passes, as an attacker would. Every case must end in a loaded model that predicts and
trains one step (fit), or in a ModelFileError; never in another exception.

    python -m pytest tests/test_model_fuzz.py                                # 400 cases
    TAPEGRAD_FUZZ_CASES=10000 python -m pytest tests/test_model_fuzz.py -s   # prints figures
    TAPEGRAD_FUZZ_SEED=7 ...                                                 # another sequence
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import struct
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import tapegrad
from tapegrad.io import MAGIC, ModelFileError
from tapegrad.nn.models import NonFiniteLossError
from tapegrad.nn.optimizers import schedules

CASES = int(os.environ.get("TAPEGRAD_FUZZ_CASES", "400"))
SEED = int(os.environ.get("TAPEGRAD_FUZZ_SEED", "0"))


def fuzz_rate(step):
    return 0.05 / (1.0 + 0.1 * step)


def fuzz_loss(trues, predicts):
    return tapegrad.losses.mean_squared_error(trues, predicts)


@tapegrad.register_model
class FuzzModel(tapegrad.AbstractModel):
    def __init__(self, builder, units=6):
        super().__init__(builder)
        self.units = units
        self.hidden = builder.layers.Dense(units, activation="tanh")
        self.out = builder.layers.Dense(1)

    def call(self, inputs, training=None):
        return self.out(self.hidden(inputs, training), training)

    def get_config(self):
        return {"units": self.units}


CUSTOM = {"fuzz_rate": fuzz_rate, "fuzz_loss": fuzz_loss}


def _x(n: int = 8) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, 4)).astype(np.float32)


def _bases() -> list[tuple[str, Callable[[], tapegrad.Model], Callable[[tapegrad.Model], None]]]:
    """(kind, make the model, compile and train it)."""
    nn = tapegrad.NeuralNetworks()
    x = _x()
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1], np.int32)

    def mlp():
        return tapegrad.Sequential([nn.layers.Dense(8, input_shape=[4], activation="relu"),
                                    nn.layers.BatchNormalization(), nn.layers.Dropout(0.1), nn.layers.Dense(3)])

    def fit_mlp(m):
        m.compile(optimizer=tapegrad.optimizers.Adam(clipnorm=1.0),
                  loss=tapegrad.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"], jit=False)
        m.fit(x, labels, epochs=1, batch_size=4, verbose=0)

    def embed():
        return tapegrad.Sequential([nn.layers.Embedding(10, 3, input_length=4), nn.layers.Flatten(),
                                    nn.layers.Dense(2)])

    def fit_embed(m):
        m.compile(optimizer=tapegrad.optimizers.SGD(schedules.ExponentialDecay(0.1, 10, 0.9), momentum=0.9,
                                                    nesterov=True),
                  loss="mse", metrics=["mae"], jit=False)
        m.fit(np.arange(32, dtype=np.int32).reshape(8, 4) % 10, np.zeros((8, 2), np.float32), epochs=1, verbose=0)

    def nested():
        inner = tapegrad.Sequential([nn.layers.Dense(5, activation="relu"), nn.layers.LayerNormalization()])
        return tapegrad.Sequential([nn.layers.Reshape([2, 2], input_shape=[4]), nn.layers.Flatten(), inner,
                                    nn.layers.Dense(3, activation="softmax")])

    def fit_nested(m):
        m.compile(optimizer=tapegrad.optimizers.RMSprop(centered=True, momentum=0.5),
                  loss=tapegrad.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"], jit=False)
        m.fit(x, np.eye(3, dtype=np.float32)[labels], epochs=1, verbose=0)

    def custom():
        return tapegrad.Sequential([nn.layers.Dense(4, input_shape=[4], activation="tanh"), nn.layers.Dense(1)])

    def fit_custom(m):
        m.compile(optimizer=tapegrad.optimizers.SGD(fuzz_rate), loss=fuzz_loss, jit=False)
        m.fit(x, np.zeros((8, 1), np.float32), epochs=1, verbose=0)

    def registered():
        return FuzzModel(nn)

    def fit_registered(m):
        m.compile(optimizer=tapegrad.optimizers.AdamW(weight_decay=0.01), loss=tapegrad.losses.Huber(), jit=False)
        m.fit(x, np.zeros((8, 1), np.float32), epochs=1, verbose=0)

    def build_only(m):
        m.predict(x if m.layers[0].__class__.__name__ != "Embedding" else np.zeros((2, 4), np.int32), verbose=0)

    return [("model", mlp, fit_mlp), ("model", embed, fit_embed), ("model", nested, fit_nested),
            ("model", custom, fit_custom), ("model", registered, fit_registered), ("model", mlp, build_only),
            ("weights", mlp, fit_mlp), ("weights", nested, fit_nested)]


# -- the container, taken apart and put together (a valid checksum, as an attacker can) ------------
def split(raw: bytes) -> tuple[dict, bytes]:
    n = struct.unpack_from("<Q", raw, 16)[0]
    start = -(-(24 + n) // 64) * 64
    return json.loads(raw[24:24 + n]), raw[start:-32]


def sign(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


def assemble(header_text: str, data: bytes) -> bytes:
    header = header_text.encode("utf-8", "surrogatepass")
    body = struct.pack("<12sIQ", MAGIC, 1, len(header)) + header
    return sign(body + b"\0" * (-len(body) % 64) + data)


# -- JSON mutations ----------------------------------------------------------------------------------
_DEEP = "\u0000deep\u0000"


#: What a JSON value is replaced with (besides values derived from the old one).
VALUES: list[Any] = [
    math.nan, math.inf, -math.inf, 0, -0.0, -1, 1, 2, 3, 0.5, -0.5, 0.999999, 1.0, 1e-30, 1e-300, 1e308, 2**31,
    2**63, 10**30, -10**30, "", "x", "Dense", "Sequential", "Embedding", "function", "LossFunctionWrapper",
    "MeanMetricWrapper", "fuzz_rate", "fuzz_loss", "FuzzModel", "float64", "float16", "int32", "bool", "object",
    "mean", "none", "relu", "softmax", "zeros", "accuracy", "mse", None, True, False, [], {}, [1, 2], [None],
    [0], [4], [-1], [{"shape": [4], "dtype": "float32"}], {"shape": [4], "dtype": "int32"},
    {"class_name": "Sequential", "config": {}}, {"class_name": "Dense", "config": {"units": 2}},
    {"class_name": "RandomNormal", "config": {"stddev": math.nan}}, {"class_name": "function", "config": {}},
    "x" * 100_000, _DEEP,
]


def _values(rng: np.random.Generator, old: Any) -> Any:
    choices = list(VALUES)
    if isinstance(old, (int, float)) and not isinstance(old, bool):
        choices += [old * 10, old / 10, -old, old + 1, old * 1e30]
    if isinstance(old, list) and old:
        choices += [old[:-1], old + old[-1:], list(reversed(old))]
    return choices[int(rng.integers(len(choices)))]


def _paths(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) of the JSON tree."""
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        items = n.items() if isinstance(n, dict) else enumerate(n) if isinstance(n, list) else ()
        for k, v in items:
            out.append((n, k))
            stack.append(v)
    return out


def mutate_json(rng: np.random.Generator, meta: dict) -> tuple[dict, str, int]:
    meta = copy.deepcopy(meta)
    depth = 0
    op = ["replace", "replace", "replace", "delete", "add", "swap", "nest_models", "deep"][int(rng.integers(8))]
    if op == "swap":  # two entries of a list trade places: weights, state arrays, layers, ...
        lists = [c[k] for c, k in _paths(meta) if isinstance(c[k], list) and len(c[k]) >= 2]
        if lists:
            items = lists[int(rng.integers(len(lists)))]
            i, j = rng.choice(len(items), size=2, replace=False)
            items[i], items[j] = items[j], items[i]
            return meta, f"swap({len(items)})", 0
        op = "replace"
    if op == "nest_models" and isinstance(meta.get("model"), dict):
        depth = int(rng.choice([2, 31, 32, 40, 300]))
        inner = meta["model"].get("config", {}).get("layers")
        for _ in range(depth):
            inner = [{"class_name": "Sequential", "config": {"layers": inner}}]
        meta["model"]["config"]["layers"] = inner
        return meta, f"nest_models({depth})", 0
    container, key = _paths(meta)[int(rng.integers(len(_paths(meta))))]
    where = f"[{key!r}]"
    if op == "delete" and isinstance(container, dict):
        del container[key]
    elif op == "add" and isinstance(container, dict):
        container["x_" + str(int(rng.integers(100)))] = _values(rng, None)
        where += "+key"
    elif op == "deep":
        container[key] = _DEEP
        depth = int(rng.choice([10, 255, 300, 5000]))
    else:
        container[key] = _values(rng, container[key])
        if container[key] == _DEEP:
            depth = int(rng.choice([10, 255, 300, 5000]))
    return meta, f"{op}{where}", depth


def header_text(meta: dict, depth: int) -> str:
    text = json.dumps(meta, allow_nan=True)
    return text.replace(json.dumps(_DEEP), "[" * depth + "]" * depth)


def mutate(rng: np.random.Generator, raw: bytes) -> tuple[bytes, str]:
    kind = ["flip", "flip_resign", "truncate", "json", "json", "json", "json", "arrays"][int(rng.integers(8))]
    if kind in ("flip", "flip_resign"):
        bad = bytearray(raw if kind == "flip" else raw[:-32])
        for _ in range(int(rng.integers(1, 9))):
            bad[int(rng.integers(len(bad)))] ^= 1 << int(rng.integers(8))
        return (bytes(bad) if kind == "flip" else sign(bytes(bad))), kind
    if kind == "truncate":
        cut = int(rng.integers(len(raw)))
        return (sign(raw[:cut]) if rng.random() < 0.5 else raw[:cut]), f"truncate({cut})"
    meta, data = split(raw)
    if kind == "arrays":
        values = np.frombuffer(bytearray(data), np.float32).copy() if len(data) % 4 == 0 else None
        if values is not None and values.size:
            idx = rng.integers(values.size, size=int(rng.integers(1, 5)))
            values[idx] = rng.choice([np.nan, np.inf, -np.inf, 3e38, -1.0, 0.0])
            return assemble(header_text(meta, 0), values.tobytes()), "arrays"
    meta, what, depth = mutate_json(rng, meta)
    return assemble(header_text(meta, depth), data), f"json:{what}"


# -- running a case ----------------------------------------------------------------------------------
def probe_data(model: tapegrad.Model, n: int = 4) -> tuple[Any, Any]:
    rng = np.random.default_rng(2)
    spec = model._input_spec

    def one(s: dict) -> np.ndarray:
        shape = (n, *(1 if d is None else d for d in s["shape"]))
        dt = np.dtype(s["dtype"])
        return np.zeros(shape, dt) if dt.kind in "biu" else rng.normal(size=shape).astype(dt)

    x = [one(s) for s in spec] if isinstance(spec, list) else one(spec)
    return x, model.predict(x, verbose=0)


def trues_for(model: tapegrad.Model, predictions: np.ndarray) -> np.ndarray:
    loss = model._loss_fn
    fn = getattr(getattr(loss, "fn", None), "__name__", "")
    name = type(loss).__name__
    if name == "SparseCategoricalCrossentropy" or "sparse" in fn:
        return np.zeros(predictions.shape[:-1], np.int32)
    if name == "CategoricalCrossentropy" or fn == "categorical_crossentropy":
        trues = np.zeros(predictions.shape, np.float32)
        trues[..., 0] = 1.0
        return trues
    return np.zeros(predictions.shape, np.float32)


def weights_are_wild(model: tapegrad.Model) -> bool:
    """Whether the file's arrays (weights, optimizer state) hold values no training gives."""
    arrays = model.get_weights()
    if model.optimizer is not None:
        arrays += [a for k, a in model.optimizer.get_state().items() if k != "iterations"]
    return any(not np.isfinite(a).all() or np.abs(a).max(initial=0) > 1e3 for a in arrays)


def run_case(raw: bytes, kind: str, make: Callable[[], tapegrad.Model], path: Path) -> str:
    """'error', 'loaded', 'trained', 'diverged' (the file's weights give a non-finite loss)."""
    path.write_bytes(raw)
    try:
        if kind == "weights":
            model = make()
            model.load_weights(path)
            probe_data(model)
            return "loaded"
        model = tapegrad.load_model(path, custom_objects=CUSTOM)
    except ModelFileError:
        return "error"
    if model._input_spec is None:
        return "loaded"
    x, predictions = probe_data(model)
    if model.optimizer is None:
        return "loaded"
    tame = not weights_are_wild(model)
    trues = trues_for(model, predictions)
    try:
        history = model.fit(x, trues, epochs=1, batch_size=len(predictions), verbose=0)
    except NonFiniteLossError:
        if weights_are_wild(model):
            return "diverged"  # the file's weights
        if not np.isfinite(float(model.compute_loss(trues, predictions))):
            return "diverged"  # the file's architecture gives a NaN loss on this data (e.g. relu into a crossentropy)
        raise
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        if tame and np.isfinite(history.history["loss"][-1]):
            raise AssertionError("one update from tame weights and state and a finite loss made the weights "
                                 "non-finite")
        return "diverged"
    return "trained"


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> list[tuple[str, Callable[[], tapegrad.Model], bytes]]:
    folder = tmp_path_factory.mktemp("fuzz_bases")
    out = []
    for i, (kind, make, train) in enumerate(_bases()):
        tapegrad.set_seed(i)
        model = make()
        train(model)
        path = folder / f"base{i}.tgm"
        (model.save if kind == "model" else model.save_weights)(path)
        out.append((kind, make, path.read_bytes()))
    return out


def test_every_valid_base_file_loads_and_trains(valid_files, tmp_path):
    for kind, make, raw in valid_files:
        assert run_case(raw, kind, make, tmp_path / "case.tgm") in ("trained", "loaded")


def test_mutated_files_load_and_train_or_raise_model_file_error(valid_files, tmp_path):
    outcomes: Counter = Counter()
    failures: list[str] = []
    slowest = (0.0, "")
    start = time.perf_counter()
    for case in range(CASES):
        rng = np.random.default_rng([SEED, case])
        base = int(rng.integers(len(valid_files)))
        kind, make, raw = valid_files[base]
        mutated, what = mutate(rng, raw)
        began = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outcome = run_case(mutated, kind, make, tmp_path / "case.tgm")
        except Exception as exc:  # noqa: BLE001 - the point: anything but a ModelFileError is a failure
            outcome = "FAILED"
            failures.append(f"case {case} (base {base}, {what}): {type(exc).__name__}: {str(exc)[:300]}")
        took = time.perf_counter() - began
        slowest = max(slowest, (took, f"case {case} (base {base}, {what[:60]})"))
        outcomes[outcome] += 1
    elapsed = time.perf_counter() - start
    print(f"\nfuzz: {CASES} cases, seed {SEED}, {elapsed:.1f} s: {dict(outcomes)}; "
          f"slowest case {slowest[0]:.2f} s: {slowest[1]}")
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures[:20])
    assert outcomes["error"] and outcomes["trained"]  # the mutations reach both ends
