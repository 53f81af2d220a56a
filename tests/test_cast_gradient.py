"""cast passes the gradient between float dtypes, in the source's dtype and to any order (as
TensorFlow, PyTorch and JAX do), and blocks it to int and bool (issue 8, API §4)."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg

X32 = np.array([0.5, -1.25, 2.0], np.float32)


def derivatives(fn, x: np.ndarray) -> tuple[tg.Variable, tg.Variable, tg.Variable]:
    """fn(x), its gradient and the gradient of sum(gradient) (second derivative, elementwise fns)."""
    v = tg.Variable(x)
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            y = fn(v)
        g = inner.gradient(y, v)
    return y, g, outer.gradient(g, v)


@pytest.mark.parametrize("source, target", [("float32", "float64"), ("float64", "float32"), ("float16", "float32"),
                                            ("float32", "float16"), ("float64", "float64")])
def test_cast_between_floats_passes_the_gradient_in_the_source_dtype(source, target):
    x = X32.astype(source)
    y, g, h = derivatives(lambda v: tg.reduce_sum(tg.cast(v, target) ** 3), x)
    assert y.dtype == np.dtype(target) and g.dtype == np.dtype(source) and h.dtype == np.dtype(source)
    x64 = x.astype(np.float64)
    rtol = 1e-3 if "float16" in (source, target) else 1e-6
    np.testing.assert_allclose(g.value(), 3 * x64**2, rtol=rtol)
    np.testing.assert_allclose(h.value(), 6 * x64, rtol=rtol)


def test_float32_float64_float32_chain():
    def chain(v):
        wide = tg.cast(v, "float64")
        back = tg.cast(tg.sin(wide) * wide, "float32")
        return tg.reduce_sum(tg.cast(back * v, np.float64))

    y, g, h = derivatives(chain, X32)
    x = X32.astype(np.float64)
    # d/dx x^2 sin x = 2x sin x + x^2 cos x; d2 = 2 sin x + 4x cos x - x^2 sin x
    assert y.dtype == np.float64 and g.dtype == np.float32 and h.dtype == np.float32
    np.testing.assert_allclose(g.value(), 2 * x * np.sin(x) + x**2 * np.cos(x), rtol=1e-6)
    np.testing.assert_allclose(h.value(), 2 * np.sin(x) + 4 * x * np.cos(x) - x**2 * np.sin(x), rtol=1e-5)


def test_cast_gradcheck_second_order():
    # through float32 and back: central differences see float32 rounding, hence the larger steps
    assert tg.gradcheck(lambda v: tg.sin(tg.cast(tg.cast(v, "float32"), "float64")) * v,
                        [np.array([0.3, -1.1, 2.4])], order=2, eps=1e-3, atol=1e-3, rtol=1e-3)
    assert tg.gradcheck(lambda v: tg.cast(v, "float64") ** 3, [np.array([0.3, -1.1, 2.4])], order=2)


@pytest.mark.parametrize("target", ["int32", "int64", "uint8", "bool"])
def test_cast_to_int_or_bool_blocks_the_gradient(target):
    x = tg.Variable(np.array([0.5, 1.5, 2.5]), dtype="float64")
    with tg.GradientTape(persistent=True) as tape:
        y = tg.cast(x * 2.0, target)
        z = tg.reduce_sum(tg.cast(y, "float64") * x)
    assert y.dtype == np.dtype(target)
    np.testing.assert_array_equal(y.value(), (x.value() * 2.0).astype(target))
    assert tape.gradient(tg.cast(y, "float64"), x) is None
    np.testing.assert_array_equal(tape.gradient(z, x).value(), (x.value() * 2.0).astype(target))  # only via * x


def test_cast_inside_a_compiled_function():
    def fn(v):
        return tg.cast(tg.sin(tg.cast(v, "float64")) * 2.0, "float32") * v

    compiled = tg.Function(fn)
    rng = np.random.default_rng(3)
    for x in (X32, rng.uniform(-2, 2, 3).astype(np.float32)):
        got = derivatives(lambda v: tg.reduce_sum(compiled(v)), x)
        expected = derivatives(lambda v: tg.reduce_sum(fn(v)), x)
        for a, b in zip(got, expected):
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a.value(), b.value(), rtol=1e-6)
        x64 = x.astype(np.float64)
        np.testing.assert_allclose(got[1].value(), 2 * np.sin(x64) + 2 * x64 * np.cos(x64), rtol=1e-5)
    assert compiled.trace_count == 1


def test_astype_method_is_cast():
    x = tg.Variable(X32)
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(x.astype("float64") * 2.0)
    g = tape.gradient(y, x)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g.value(), [2.0, 2.0, 2.0])
