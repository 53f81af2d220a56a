"""The fused float32 LSTM and GRU cell steps (tapegrad/native/recurrent_kernels.c and
their NumPy twins in tapegrad/ops/recurrent_cells.py): C and NumPy give the same bits
(inf, NaN and signed zeros included); the exp, sigmoid and tanh they use are within a
few ulp of the exact values; the float32 layers that run them agree with the float64
NumPy loops for every option; and without the native library the same bits come out."""

from __future__ import annotations

import os
import shutil
from typing import Any

import numpy as np
import pytest

from tapegrad import native
from tapegrad.ops import recurrent_cells as cells
from tapegrad.ops import recurrent_kernels as rk

HAS_CC = shutil.which(os.environ.get("CC", "cc")) is not None or shutil.which("gcc") is not None
needs_native = pytest.mark.skipif(not HAS_CC, reason="needs a C compiler")
f32 = np.float32


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bits, signed zeros included; NaN where the other has NaN."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    nan = np.isnan(a)
    return bool((nan == np.isnan(b)).all()) and a[~nan].tobytes() == b[~nan].tobytes()


EDGES = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 1e-20, 88.3, 88.4, -87.3, -87.4, 120.0,
                  -120.0, 0.625, -0.625, 0.62499994, 44.15, -44.15, 9.0, -9.0], f32)


def values(rng: np.random.Generator, shape: tuple, scale: float = 4.0, edges: bool = True) -> np.ndarray:
    x = (rng.standard_normal(shape) * scale).astype(f32)
    if edges:
        flat = x.reshape(-1)
        picks = rng.choice(flat.size, size=min(3 * EDGES.size, flat.size // 3), replace=False)
        flat[picks] = np.resize(EDGES, picks.size)
    return x


def step_arguments(name: str, rng: np.random.Generator, rows: int, units: int, keep: Any) -> list:
    U = units
    if name == "lstm":
        return [values(rng, (rows, 4 * U), 30), values(rng, (rows, 4 * U)), values(rng, (4 * U,)),
                values(rng, (rows, U)), np.empty((rows, U), f32), np.empty((rows, U), f32), np.empty((rows, U), f32)]
    if name == "lstm_grad":
        gates = rng.uniform(-1, 1, (rows, 4 * U)).astype(f32)
        return [gates, rng.uniform(-1, 1, (rows, U)).astype(f32), values(rng, (rows, U)), values(rng, (rows, U)),
                values(rng, (rows, U)), np.empty((rows, 4 * U), f32), keep]
    if name == "gru":
        return [values(rng, (rows, 3 * U), 30), values(rng, (rows, 3 * U)), values(rng, (3 * U,)),
                values(rng, (U,)), np.empty((rows, U), f32), values(rng, (rows, U)), np.empty((rows, U), f32)]
    gates = rng.uniform(-1, 1, (rows, 3 * U)).astype(f32)
    return [gates, values(rng, (rows, U)), values(rng, (rows, U)), values(rng, (rows, U)),
            np.empty((rows, 3 * U), f32), np.empty((rows, 3 * U), f32), np.empty((rows, U), f32), keep]


@needs_native
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("name", ["lstm", "lstm_grad", "gru", "gru_grad"])
@pytest.mark.parametrize("rows, units", [(7, 13), (3, 64)])
def test_cell_step_c_equals_numpy(name: str, masked: bool, rows: int, units: int) -> None:
    assert native.library() is not None
    rng = np.random.default_rng(rows * units)
    keep = np.array([1, 0, 1] * rows, f32)[:rows] if masked else None
    args = step_arguments(name, rng, rows, units, keep)
    by_c = [None if a is None else a.copy() for a in args]
    by_numpy = [None if a is None else a.copy() for a in args]
    cells.bind(name, *by_c, rows=rows, units=units)(0)
    with np.errstate(all="ignore"):  # the twin warns of the inf and NaN inputs
        cells.NUMPY_STEPS[name](*by_numpy)
    for i, (c, n) in enumerate(zip(by_c, by_numpy)):
        if c is not None:
            assert same_bits(c, n), (name, i)


def ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    return np.abs(got.astype(np.float64) - exact) / np.spacing(np.abs(exact).astype(f32))


def test_exp_sigmoid_tanh_are_within_a_few_ulp() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(200_000) * 5, rng.uniform(-87, 88, 20_000),
                        np.linspace(-1, 1, 20_001)]).astype(f32)
    x64 = x.astype(np.float64)
    assert ulps(cells.exp32(x), np.exp(x64)).max() <= 1.5
    assert ulps(cells.sigmoid32(x), 1 / (1 + np.exp(-x64))).max() <= 3
    assert ulps(cells.tanh32(x), np.tanh(x64)).max() <= 2
    edge = np.array([0.0, -0.0, 20.0, -20.0, np.inf, -np.inf, 1e-30, -1e-40], f32)
    with np.errstate(all="ignore"):
        t, s = cells.tanh32(edge), cells.sigmoid32(edge)
    np.testing.assert_array_equal(t, np.array([0.0, -0.0, 1.0, -1.0, 1.0, -1.0, 1e-30, -1e-40], f32))
    assert np.signbit(t[1]) and not np.signbit(t[0])
    np.testing.assert_array_equal(s[[0, 1, 2, 4]], [0.5, 0.5, 1.0, 1.0])
    assert 0 <= s[5] < 1e-38 and abs(s[3] - 2.0611537e-09) < 1e-15
    assert np.isnan(cells.tanh32(np.array([np.nan], f32))).all()


def run_layer(cell: str, dtype: Any, data: dict, reverse: bool, last: bool) -> tuple[np.ndarray, list]:
    """The forward result and every cotangent (x, W, R, b, h0[, c0]) through the NumPy loops."""
    a = {k: (v if v is None or v.dtype == bool else v.astype(dtype)) for k, v in data.items()}
    if cell == "lstm":
        out = rk.lstm_forward(a["x"], a["W"], a["R"], a["b"], a["h0"], a["c0"], a["mask"], a["in_drop"],
                              a["rec_drop"], reverse, last)
        g = np.asarray(data["g"][0, -1] if last else data["g"], dtype)
        grads = rk.lstm_backward(g, out, a["x"], a["W"], a["R"], a["b"], a["h0"], a["c0"], a["mask"],
                                 a["in_drop"], a["rec_drop"], reverse, (True,) * 6, last)
    else:
        out = rk.gru_forward(a["x"], a["W"], a["R"], a["b"], a["h0"], a["mask"], a["in_drop"], a["rec_drop"],
                             reverse, True, last)
        g = np.asarray(data["g"][0, -1] if last else data["g"][0], dtype)
        grads = rk.gru_backward(g, out, a["x"], a["W"], a["R"], a["b"], a["h0"], a["mask"], a["in_drop"],
                                a["rec_drop"], reverse, True, (True,) * 5, last)
    return out.copy(), grads


def layer_data(cell: str, masked: bool, dropout: bool, states: bool, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    B, T, F, U = 5, 6, 3, 4
    k = 4 if cell == "lstm" else 3
    mask = None
    if masked:
        mask = np.ones((B, T), bool)
        mask[1, 3:] = False
        mask[3, :2] = False
    return {
        "x": rng.standard_normal((B, T, F)), "W": rng.standard_normal((F, k * U)) * 0.7,
        "R": rng.standard_normal((U, k * U)) * 0.5,
        "b": rng.standard_normal(k * U) if cell == "lstm" else rng.standard_normal((2, k * U)),
        "h0": rng.standard_normal((B, U)) if states else None,
        "c0": rng.standard_normal((B, U)) if states and cell == "lstm" else None, "mask": mask,
        "in_drop": (rng.random((B, k, F)) > 0.3) / 0.7 if dropout else None,
        "rec_drop": (rng.random((B, k, U)) > 0.3) / 0.7 if dropout else None,
        "g": rng.standard_normal((2, T, B, U)),
    }


OPTIONS = [  # masked, dropout, initial states, go_backwards, last only
    (False, False, False, False, True), (False, False, True, False, False), (True, False, False, False, False),
    (True, True, True, True, False), (False, True, False, True, True), (True, False, True, False, True),
]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_float32_fused_loops_match_float64(cell: str, options: tuple) -> None:
    masked, dropout, states, reverse, last = options
    data = layer_data(cell, masked, dropout, states, seed=sum(options) + 7 * len(cell))
    if cell == "gru":
        data.pop("c0")
    out64, grads64 = run_layer(cell, np.float64, {"c0": None, **data}, reverse, last)
    out32, grads32 = run_layer(cell, f32, {"c0": None, **data}, reverse, last)
    assert out32.dtype == f32
    np.testing.assert_allclose(out32, out64, rtol=0, atol=2e-6)
    for g32, g64 in zip(grads32, grads64):
        assert (g32 is None) == (g64 is None)
        if g64 is not None:
            assert g32.dtype == f32
            np.testing.assert_allclose(g32, g64, rtol=0, atol=2e-5 * max(1.0, np.abs(g64).max()))


@needs_native
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_without_the_native_library_the_loops_give_the_same_bits(cell: str, monkeypatch) -> None:
    assert native.library() is not None
    data = layer_data(cell, masked=True, dropout=True, states=True, seed=3)
    data.setdefault("c0", None)
    by_c = run_layer(cell, f32, data, reverse=False, last=False)
    calls = []
    twin = cells.NUMPY_STEPS[cell]
    monkeypatch.setitem(cells.NUMPY_STEPS, cell, lambda *a: calls.append(1) or twin(*a))
    monkeypatch.setattr(native, "library", lambda: None)
    by_numpy = run_layer(cell, f32, data, reverse=False, last=False)
    assert calls  # the twins ran
    assert same_bits(by_c[0], by_numpy[0])
    for c, n in zip(by_c[1], by_numpy[1]):
        assert same_bits(c, n)



@needs_native
def test_a_bound_step_keeps_its_arrays_alive() -> None:
    """The GRU and LSTM backward passed its step masks as a temporary; the bound C step kept
    only the address, the array was freed and its memory reused by the loop's own arrays, so
    masked gradients changed from run to run (a Rindow sample's accuracy went from 0.97 to
    0.56-0.78 between identical runs). The bound step must hold every array it was given."""
    import gc
    import weakref

    B, T, U = 4, 5, 8
    arrays = {"a": np.zeros((T, B, 3 * U), f32), "uh": np.zeros((T, B, U), f32), "h_prev": np.zeros((T, B, U), f32),
              "dh": np.zeros((B, U), f32), "d": np.zeros((T, B, 3 * U), f32), "du": np.zeros((T, B, 3 * U), f32),
              "carry": np.zeros((B, U), f32)}
    keep = np.ones((T, B), f32)
    alive = weakref.ref(keep)
    step = cells.bind("gru_grad", (arrays["a"],), (arrays["uh"],), (arrays["h_prev"],), arrays["dh"], (arrays["d"],),
                      (arrays["du"],), arrays["carry"], (keep,), rows=B, units=U)
    del keep
    gc.collect()
    assert alive() is not None
    step(0)
