"""The optional native kernels (tapegrad.native): built with the system compiler on
first use, the same bits as their NumPy twins, and a clean fallback to NumPy when no
library can be had."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import native
from tapegrad.nn.optimizers import kernels

HAS_CC = shutil.which("cc") is not None or shutil.which("gcc") is not None


@pytest.fixture
def fresh_native(monkeypatch, tmp_path):
    """A private cache directory and a forgotten library; restored afterwards."""
    monkeypatch.setenv("TAPEGRAD_CACHE_DIR", str(tmp_path / "cache"))
    native.reset()
    yield tmp_path / "cache"
    native.reset()


@pytest.fixture
def numpy_only(monkeypatch):
    monkeypatch.setenv("TAPEGRAD_NATIVE", "0")
    native.reset()
    yield
    monkeypatch.delenv("TAPEGRAD_NATIVE")
    native.reset()


def _adam_inputs(dtype, n, seed=0, special=False):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n).astype(dtype)
    g = (rng.standard_normal(n) * 1e-2).astype(dtype)
    m = (rng.standard_normal(n) * 1e-2).astype(dtype)
    v = np.abs(rng.standard_normal(n) * 1e-4).astype(dtype)
    if special:
        g[:6] = [np.nan, np.inf, -np.inf, 0.0, 1e30, -1e-30]
        v[6:9] = [0.0, np.inf, 1e-40]
    return p, g, m, v


def _run_adam(p, g, m, v, split=None):
    grads = g if split is None else [g[:split], g[split:]]
    tmp = np.empty_like(p)
    with np.errstate(all="ignore"):  # the NumPy twin warns of the inf and NaN inputs
        kernels.adam_kernel(p, grads, m, v, None, tmp, 0.0123, 3e-6, 0.9, 0.999)


@pytest.mark.skipif(not HAS_CC, reason="the machine has no C compiler: the NumPy fallback is tested below")
def test_library_builds_and_loads(fresh_native):
    info = native.status()
    assert info["loaded"], info["reason"]
    assert os.path.dirname(info["path"]) == str(fresh_native)
    assert kernels.native_adam(np.dtype(np.float32), np.dtype(np.float32)) is not None
    # float16 parameters keep float32 slots: no native loop for that pair
    assert kernels.native_adam(np.dtype(np.float16), np.dtype(np.float32)) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("split", [None, 5000])
@pytest.mark.parametrize("special", [False, True])
def test_native_adam_gives_numpy_bits(monkeypatch, dtype, split, special):
    n = kernels.NATIVE_MIN * 2 + 37
    ref = [a.copy() for a in _adam_inputs(dtype, n, special=special)]
    got = [a.copy() for a in ref]
    monkeypatch.setattr(kernels, "native_adam", lambda *a: None)
    for _ in range(3):
        _run_adam(*ref, split=split)
    monkeypatch.undo()
    for _ in range(3):
        _run_adam(*got, split=split)
    for r, o in zip(ref, got):
        np.testing.assert_array_equal(o, r)  # NaN-aware, exact


def test_gradient_aliasing_the_parameters_takes_the_numpy_way(monkeypatch):
    n = kernels.NATIVE_MIN + 1
    p, _, m, v = _adam_inputs(np.float32, n)
    expect = [p.copy(), m.copy(), v.copy()]
    monkeypatch.setattr(kernels, "native_adam", lambda *a: None)
    grad = expect[0].copy()
    kernels.adam_kernel(expect[0], grad, expect[1], expect[2], None, np.empty_like(p), 0.1, 1e-7, 0.9, 0.999)
    monkeypatch.undo()
    kernels.adam_kernel(p, p, m, v, None, np.empty_like(p), 0.1, 1e-7, 0.9, 0.999)
    np.testing.assert_array_equal(p, expect[0])
    np.testing.assert_array_equal(m, expect[1])


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
@pytest.mark.parametrize(
    "shapes",
    [
        [(70, 90), (90,), (90, 10), (10,)],  # 7300 elements: above NATIVE_MIN
        [(300, 250), (250,)],  # above SPLIT_MIN: the optimizer may split it over threads
    ],
)
def test_optimizer_trajectory_is_the_same_with_and_without_native(monkeypatch, cls, amsgrad, shapes):
    rng = np.random.default_rng(1)
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(5)]

    def train():
        params = [tg.Variable(a.copy()) for a in init]
        opt = getattr(tg.nn.optimizers, cls)(learning_rate=0.01, amsgrad=amsgrad)
        for gs in grads * 8:  # 40 updates: the chooser tries both ways
            opt.update(params, gs)
        return [p.value() for p in params], opt.get_state()

    values, state = train()
    monkeypatch.setattr(kernels, "native_adam", lambda *a: None)
    ref_values, ref_state = train()
    for a, b in zip(values, ref_values):
        np.testing.assert_array_equal(a, b)
    assert state.keys() == ref_state.keys()
    for k in state:
        np.testing.assert_array_equal(state[k], ref_state[k])


def test_turned_off_by_environment(numpy_only):
    assert native.library() is None
    assert native.status() == {"loaded": False, "path": None, "reason": "turned off by TAPEGRAD_NATIVE"}
    p, g, m, v = _adam_inputs(np.float32, kernels.NATIVE_MIN + 3)
    _run_adam(p, g, m, v)  # the NumPy twin runs
    assert np.isfinite(p).all()


def test_missing_compiler_falls_back(fresh_native, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert native.library() is None
    assert "no C compiler" in native.status()["reason"]
    params = [tg.Variable(np.ones((100, 100), np.float32))]
    opt = tg.nn.optimizers.Adam(learning_rate=0.5)
    opt.update(params, [np.ones((100, 100), np.float32)])
    np.testing.assert_allclose(params[0].value(), 0.5, rtol=1e-5)


def test_failing_compiler_falls_back_with_its_message(fresh_native, monkeypatch):
    monkeypatch.setenv("CC", "false")
    assert native.library() is None
    assert native.status()["reason"].startswith("false failed")
    assert not [f for f in os.listdir(fresh_native) if f.startswith(".build-")]  # no half-written files


@pytest.mark.skipif(not HAS_CC, reason="needs a C compiler")
def test_damaged_cached_library_is_rebuilt(tmp_path):
    # In a fresh process: this one may have the library mapped already.
    cache = tmp_path / "cache"
    cache.mkdir()
    name = native._library_name(native._source_bytes(), native._compiler())
    (cache / name).write_bytes(b"\x7fELF not really a library")
    code = "import tapegrad.native as n; s = n.status(); print(s['loaded'], s['path'])"
    env = dict(os.environ, TAPEGRAD_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", str(cache / name)]
    assert (cache / name).stat().st_size > 1000


@pytest.mark.skipif(not HAS_CC, reason="needs a C compiler")
def test_unwritable_cache_directory_falls_back(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("TAPEGRAD_CACHE_DIR", str(blocker / "cache"))
    native.reset()
    try:
        assert native.library() is None
        assert "cache directory" in native.status()["reason"]
    finally:
        native.reset()


@pytest.mark.skipif(not HAS_CC, reason="needs a C compiler")
@pytest.mark.parametrize("threads", [2, 3, 8])
def test_native_adam_split_over_threads_gives_the_same_bits(threads):
    n = 50_000 + 7
    cuts = [0, 3, 20_000, 20_001, 41_000, n]  # pieces that straddle the parts' boundaries
    ref = list(_adam_inputs(np.float32, n, seed=threads))
    got = [a.copy() for a in ref]
    for state, parts in ((ref, 1), (got, threads)):
        p, g, m, v = state
        pieces = [g[a:b] for a, b in zip(cuts, cuts[1:])]
        for _ in range(3):
            kernels.adam_kernel(p, pieces, m, v, None, np.empty_like(p), 0.01, 1e-7, 0.9, 0.999, parts)
    for r, o in zip(ref, got):
        np.testing.assert_array_equal(o, r)


@pytest.mark.skipif(not HAS_CC or not hasattr(os, "fork"), reason="needs a C compiler and fork()")
def test_threaded_native_adam_works_in_a_forked_child():
    # The helper threads do not survive fork(): the child must make its own, not wait
    # forever for the parent's.
    code = """
import os, sys, numpy as np
from tapegrad.nn.optimizers import kernels
n = 100_000
def run():
    p = np.ones(n, np.float32); m = np.zeros(n, np.float32); v = np.zeros(n, np.float32)
    kernels.adam_kernel(p, np.ones(n, np.float32), m, v, None, np.empty(n, np.float32), 0.5, 0.0, 0.9, 0.999, 2)
    return p
first = run()
pid = os.fork()
if pid == 0:
    os._exit(0 if np.array_equal(run(), first) else 1)
_, status = os.waitpid(pid, 0)
print(os.WEXITSTATUS(status), float(first[0]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["0", "0.5"]


@pytest.mark.skipif(not HAS_CC, reason="needs a C compiler")
def test_threaded_splits_with_irregular_gaps_never_hang():
    # Splits arriving while the helper spins, just as it gives up spinning, and while it
    # sleeps (a lost wake-up once left the caller waiting forever). In a subprocess, so that
    # a hang fails the test instead of stalling the suite.
    code = """
import random, time, numpy as np
from tapegrad import native
from tapegrad.nn.optimizers import kernels
n = 70_000
p = np.ones(n, np.float32); m = np.zeros(n, np.float32); v = np.zeros(n, np.float32)
g = np.full(n, 0.5, np.float32); tmp = np.empty(n, np.float32)
ref = [a.copy() for a in (p, m, v)]
rng = random.Random(0)
for i in range(1500):
    end = time.perf_counter() + rng.choice([0.0, 2e-5, 3e-5, 1e-4, 2.2e-4, 5e-4])
    while time.perf_counter() < end:
        pass
    if i % 5 == 0:
        native.library().tg_warm(2)
    kernels.adam_kernel(p, g, m, v, None, tmp, 0.01, 1e-7, 0.9, 0.999, 2)
    kernels.adam_kernel(ref[0], g, ref[1], ref[2], None, tmp, 0.01, 1e-7, 0.9, 0.999, 1)
print(all(np.array_equal(a, b) for a, b in zip((p, m, v), ref)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["True"]


def test_non_contiguous_and_mixed_dtype_gradients_take_the_numpy_way(monkeypatch):
    rng = np.random.default_rng(3)
    init = rng.standard_normal((90, 80)).astype(np.float32)
    grads = [np.asfortranarray(rng.standard_normal((90, 80)).astype(np.float32)),  # not C-contiguous
             rng.standard_normal((80, 90)).astype(np.float32).T,  # a transposed view
             rng.standard_normal((90, 80))]  # float64 for float32 parameters

    def train():
        p = tg.Variable(init.copy())
        opt = tg.nn.optimizers.Adam(learning_rate=0.01)
        for g in grads:
            opt.update([p], [g])
        return p.value()

    got = train()
    monkeypatch.setattr(kernels, "native_adam", lambda *a: None)
    np.testing.assert_array_equal(got, train())
