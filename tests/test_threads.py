"""Threads: recording state is per thread, compiled functions are safe to share.

Every test runs with a tiny switch interval, so that the interpreter switches threads
every few bytecodes and interleavings that a coarse schedule would hide do happen.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.autodiff.state import active_tapes
from tapegrad.nn.random import set_seed


@pytest.fixture(autouse=True)
def fast_switching():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def run_threads(*targets, repeat: int = 1) -> None:
    """Run each target in its own thread (``repeat`` copies of the set); re-raise the first failure."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets) * repeat)

    def wrap(fn):
        def body():
            try:
                start.wait()
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported to the main thread
                errors.append(exc)
        return body

    threads = [threading.Thread(target=wrap(t)) for _ in range(repeat) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


def _one_step(k: int) -> tuple[int, np.ndarray]:
    """A small recorded computation: (the number of ops its tape recorded, the gradient)."""
    x = tg.Variable(np.full(3, float(k + 1)), dtype="float64")
    with tg.GradientTape() as tape:
        y = x * x * float(k + 1)
        for _ in range(5):
            y = tg.sin(y) + y
        loss = tg.reduce_sum(y)
    return len(tape._nodes), tape.gradient(loss, x).numpy().copy()


def test_each_tape_records_only_its_own_threads_ops():
    results: dict[int, list] = {}

    def worker(k: int):
        def body():
            results[k] = [_one_step(k) for _ in range(200)]
        return body

    run_threads(*(worker(k) for k in range(4)))
    for k, out in results.items():
        expected_nodes, expected = _one_step(k)  # alone in the main thread
        for nodes, g in out:
            assert nodes == expected_nodes  # no op of another thread was recorded
            np.testing.assert_array_equal(g, expected)


def test_a_tape_in_one_thread_does_not_record_another_threads_ops():
    inside = threading.Event()
    done = threading.Event()
    recorded: list[int] = []

    def holder():
        with tg.GradientTape() as tape:
            inside.set()
            done.wait(30)
            recorded.append(len(tape._nodes))

    def other():
        inside.wait(30)
        w = tg.Variable(np.ones(4))
        for _ in range(100):
            w = w * 2.0 + 1.0
        done.set()

    run_threads(holder, other)
    assert recorded == [0]
    assert active_tapes() == ()


def test_eager_code_runs_while_another_thread_traces():
    started = threading.Event()
    release = threading.Event()

    @tg.Function
    def slow(x):
        started.set()
        release.wait(30)  # hold the trace open while the other thread computes eagerly
        return x * 2.0

    eager_results: list = []

    def tracer():
        assert float(slow(tg.Variable(3.0))) == 6.0

    def eager():
        started.wait(30)
        v = tg.Variable(np.arange(3.0))
        with tg.GradientTape() as tape:
            y = tg.reduce_sum(v * v)
        eager_results.append(tape.gradient(y, v).numpy())
        if v.value()[0] == 0.0:  # reading a value would raise TracingError if the trace leaked here
            eager_results.append(float(v[1]))
        release.set()

    run_threads(tracer, eager)
    np.testing.assert_array_equal(eager_results[0], [0.0, 2.0, 4.0])
    assert eager_results[1] == 1.0


def test_no_tape_stays_registered_after_threads_end():
    def body():
        for _ in range(50):
            with tg.GradientTape(persistent=True) as t:
                x = tg.Variable(2.0)
                y = x * x
            t.gradient(y, x)

    run_threads(body, body, body)
    assert active_tapes() == ()
    # a fresh tape records exactly its own ops
    x = tg.Variable(2.0)
    with tg.GradientTape() as t:
        y = x * x
    assert len(t._nodes) == 1
    assert float(t.gradient(y, x)) == 4.0


def test_one_compiled_function_called_from_many_threads_gives_each_its_own_result():
    # a chain long enough that the generated code reuses its intermediate buffers
    def chain(a, b, sin, tanh):
        h = tanh(a @ b) * 2.0 + 1.0
        for _ in range(5):
            h = sin(h) * h + a
        return h * h

    f = tg.Function(lambda a, b: tg.reduce_sum(chain(a, b, tg.sin, tg.tanh), axis=1))
    shape = (16, 16)
    f(np.ones(shape), np.ones(shape))  # trace once

    def worker(seed: int):
        def body():
            r = np.random.default_rng(seed)
            for _ in range(100):
                a, b = r.standard_normal(shape), r.standard_normal(shape)
                expected = np.sum(chain(a, b, np.sin, np.tanh), axis=1)
                np.testing.assert_allclose(f(a, b).numpy(), expected, rtol=1e-12)
        return body

    run_threads(*(worker(s) for s in range(4)))
    assert f.trace_count == 1


def test_concurrent_first_calls_trace_once():
    calls = []

    @tg.Function
    def f(x):
        calls.append(1)
        return tg.exp(x) + 1.0

    values = {}

    def worker(k):
        def body():
            values[k] = f(np.full(5, float(k))).numpy()
        return body

    run_threads(*(worker(k) for k in range(4)))
    assert f.trace_count == 1 and len(calls) == 1
    for k, v in values.items():
        np.testing.assert_allclose(v, np.exp(np.full(5, float(k))) + 1.0)


def test_gradients_through_a_shared_compiled_function_in_threads():
    @tg.Function
    def f(x, w):
        return tg.reduce_sum(tg.sin(x * w) * w)

    def worker(seed):
        def body():
            r = np.random.default_rng(seed)
            for _ in range(20):
                x = tg.Variable(r.standard_normal(6))
                w = tg.Variable(r.standard_normal(6))
                with tg.GradientTape() as tape:
                    y = f(x, w)
                gx, gw = tape.gradient(y, [x, w])
                xv, wv = x.numpy(), w.numpy()
                np.testing.assert_allclose(gx.numpy(), np.cos(xv * wv) * wv * wv, rtol=1e-12)
                np.testing.assert_allclose(gw.numpy(), np.cos(xv * wv) * xv * wv + np.sin(xv * wv), rtol=1e-12)
        return body

    run_threads(*(worker(s) for s in range(3)))


LOSS = tg.losses.SparseCategoricalCrossentropy


def _model(seed: int):
    set_seed(seed)
    nn = tg.NeuralNetworks()
    model = nn.models.Sequential([
        nn.layers.Dense(16, input_shape=[4], activation="tanh"),
        nn.layers.Dense(3),
    ])
    model.compile(optimizer="adam", loss=LOSS(from_logits=True), metrics=["accuracy"])
    return model


@pytest.mark.parametrize("round_", range(5))  # the failure it guards against showed in 2 runs of 20
@pytest.mark.parametrize("jit", [True, False])
def test_fit_in_two_threads_trains_like_one(jit, round_):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    models = [_model(s) for s in range(2)]
    references = [_model(s) for s in range(2)]
    histories: dict[int, dict] = {}

    def worker(k):
        def body():
            models[k].compile(optimizer="adam", loss=LOSS(from_logits=True), jit=jit)
            histories[k] = models[k].fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history
        return body

    run_threads(worker(0), worker(1))
    for k in range(2):
        references[k].compile(optimizer="adam", loss=LOSS(from_logits=True), jit=jit)
        expected = references[k].fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history
        np.testing.assert_allclose(histories[k]["loss"], expected["loss"], rtol=1e-6)
        for a, b in zip(models[k].get_weights(), references[k].get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
