"""The C twins of the window loops (tapegrad/native/window_kernels.c) give the same bits
as their NumPy twins (tapegrad/ops/window_kernels.py), inf, signed zeros and ties
included, and NaN in the same places; the ops fall back to NumPy without the library;
the malloc settings are applied once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import native
from tapegrad.ops import window_kernels as wk
from tapegrad.ops import windows as win

HAS_CC = shutil.which(os.environ.get("CC", "cc")) is not None or shutil.which("gcc") is not None
needs_native = pytest.mark.skipif(not HAS_CC, reason="needs a C compiler")

# (padded input sizes, window, strides, dilation)
GEOMETRIES = [
    ((40,), (3,), (1,), (1,)),
    ((41,), (4,), (3,), (2,)),
    ((12, 11), (3, 3), (1, 1), (1, 1)),
    ((13, 12), (2, 3), (2, 1), (1, 2)),
    ((9, 10), (2, 2), (2, 2), (1, 1)),
    ((6, 7, 8), (2, 3, 2), (1, 2, 1), (2, 1, 1)),
]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bits, signed zeros included; NaN where the other has NaN (a C compiler may
    swap the operands of an addition, which changes only which NaN payload propagates)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    nan = np.isnan(a)
    return bool((nan == np.isnan(b)).all()) and a[~nan].tobytes() == b[~nan].tobytes()


def special_values(rng: np.random.Generator, shape: tuple, dtype: Any) -> np.ndarray:
    """Random values with ties, signed zeros, infinities and NaNs mixed in."""
    x = rng.integers(-3, 4, shape).astype(dtype) * dtype(0.5)
    flat = x.reshape(-1)
    picks = rng.choice(flat.size, size=min(40, flat.size // 10), replace=False)
    flat[picks] = rng.choice(np.array([np.nan, np.inf, -np.inf, -0.0, 0.0], dtype=dtype), picks.size)
    return x


def out_sizes(padded: tuple, window: tuple, strides: tuple, dilation: tuple) -> tuple:
    return win.output_sizes(padded, win.effective(window, dilation), strides, tuple((0, 0) for _ in padded))


@needs_native
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"{len(g[0])}d-{g[1]}-s{g[2]}-d{g[3]}")
def test_patch_transpose_c_equals_numpy(geometry: tuple, dtype: Any) -> None:
    padded, window, strides, dilation = geometry
    rng = np.random.default_rng(len(padded) * 100 + window[0])
    channels = 3 if len(padded) < 3 else 1
    out = out_sizes(padded, window, strides, dilation)
    batch = max(2, -(-wk.NATIVE_MIN // int(np.prod(out) * np.prod(window) * channels)) + 1)
    dcols = special_values(rng, (batch,) + out + (int(np.prod(window)), channels), dtype)
    assert wk._native_fn("scatter_patches", dcols) is not None  # the C twin runs for this size
    with np.errstate(all="ignore"):  # the NumPy twin warns of the inf and NaN inputs
        back = wk.scatter_patches(dcols, padded, window, strides, dilation)
        assert same_bits(back, wk.scatter_patches_numpy(dcols, padded, window, strides, dilation))
    # the transpose of the patches: <patches(x), dcols> = <x, scatter(dcols)>
    x = rng.standard_normal((batch,) + padded + (channels,))
    finite = np.where(np.isfinite(dcols), dcols, 0.0).astype(np.float64)
    cols = wk.patches(x, out, window, strides, dilation)
    np.testing.assert_allclose(np.vdot(cols, finite),
                               np.vdot(x, wk.scatter_patches(finite, padded, window, strides, dilation)), rtol=1e-12)


@needs_native
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("window,strides", [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((3, 2), (1, 1)), ((2, 2), (3, 3))])
def test_max_pool_gradient_c_equals_numpy(window: tuple, strides: tuple, dtype: Any) -> None:
    rng = np.random.default_rng(sum(window) + 10 * sum(strides))
    xp = special_values(rng, (40, 11, 9, 4), dtype)
    out = tg.max_pool(xp, window, strides).value()
    g = special_values(rng, out.shape, dtype)
    assert wk._native_fn("max_pool_grad", xp, out, g) is not None
    with np.errstate(all="ignore"):  # the NumPy twin warns of the inf and NaN inputs
        got = wk.max_pool_grad(g, xp, out, window, strides)
        assert same_bits(got, wk.max_pool_grad_numpy(g, xp, out, window, strides))
    assert np.isnan(got).any() and (got == 0).any()  # the special values reached the result


def test_small_arrays_and_other_dtypes_stay_in_numpy() -> None:
    x = np.ones((1, 5, 5, 2), np.float32)
    assert wk._native_fn("scatter_patches", x) is None
    big = np.ones((1, 64, 64, 2), np.float16)
    assert wk._native_fn("scatter_patches", big) is None
    strided = np.ones((2, 64, 64, 4), np.float32)[:, ::2]
    assert wk._native_fn("scatter_patches", strided) is None


def test_ops_run_without_the_native_library() -> None:
    """TAPEGRAD_NATIVE=0: the NumPy twins; the results equal the C twins' bit for bit."""
    code = (
        "import numpy as np, tapegrad as tg\n"
        "rng = np.random.default_rng(0)\n"
        "x = tg.Variable(rng.normal(size=(8, 20, 20, 3)).astype(np.float32))\n"
        "k = tg.Variable(rng.normal(size=(3, 3, 3, 4)).astype(np.float32))\n"
        "with tg.GradientTape() as t:\n"
        "    y = tg.max_pool(tg.conv(x, k, padding='same'), 2)\n"
        "gx, gk = t.gradient(y, [x, k])\n"
        "import tapegrad.native as n\n"
        "print(n.status()['loaded'], y.numpy().tobytes().hex()[:64], gx.numpy().sum(), gk.numpy().sum())\n"
    )
    results = []
    for flag in ("0", "1"):
        env = dict(os.environ, TAPEGRAD_NATIVE=flag)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        results.append(out.stdout.split())
    assert results[0][0] == "False"
    assert results[0][1:] == results[1][1:]
    if HAS_CC:
        assert results[1][0] == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_freed_memory_is_retained_once_unless_turned_off() -> None:
    code = (
        "import numpy as np, tapegrad as tg\n"
        "from tapegrad.native import memory\n"
        "before = memory.retained()\n"
        "tg.conv(np.ones((8, 64, 64, 8), np.float32), np.ones((3, 3, 8, 8), np.float32))\n"
        "print(before, memory.retained())\n"
    )
    for flag, expected in (("1", "False True"), ("0", "False False")):
        env = dict(os.environ, TAPEGRAD_KEEP_MEMORY=flag)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected, (flag, out.stdout)
    assert native.memory.MMAP_THRESHOLD == 32 << 20
