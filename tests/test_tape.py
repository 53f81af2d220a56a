"""GradientTape semantics (API §3)."""

import gc
import weakref

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.autodiff.state import active_tapes


def test_seed_basic_usage():
    nn = tg.NeuralNetworks()
    g = nn.gradient()
    a, b = g.Variable(2.0), g.Variable(3.0)
    c = nn.with_(tape := g.GradientTape(), lambda: g.mul(a, b))
    da, db = tape.gradient(c, [a, b])
    assert float(c) == 6 and float(da) == 3 and float(db) == 2
    assert da.dtype == np.float32 and isinstance(da, tg.Variable)


def test_sources_structures():
    a, b, c = tg.Variable(1.0), tg.Variable(2.0), tg.Variable(3.0)
    with tg.GradientTape(persistent=True) as tape:
        y = a * b * c
    assert float(tape.gradient(y, a)) == 6
    ga, gb = tape.gradient(y, (a, b))
    assert isinstance(tape.gradient(y, (a, b)), tuple) and float(gb) == 3
    d = tape.gradient(y, {"a": a, "rest": [b, {"c": c}]})
    assert set(d) == {"a", "rest"} and float(d["rest"][1]["c"]) == 2


def test_non_scalar_target_is_summed_or_seeded():
    x = tg.Variable([1.0, 2.0, 3.0])
    with tg.GradientTape(persistent=True) as tape:
        y = x * x
    np.testing.assert_array_equal(tape.gradient(y, x).value(), [2, 4, 6])
    seeded = tape.gradient(y, x, output_gradients=np.array([1.0, 0.0, 10.0], np.float32))
    np.testing.assert_array_equal(seeded.value(), [2, 0, 60])


def test_unconnected_gradients():
    x, unused = tg.Variable([1.0, 2.0]), tg.Variable([[5.0]])
    with tg.GradientTape(persistent=True) as tape:
        y = tg.reduce_sum(x * 3.0)
    assert tape.gradient(y, unused) is None
    z = tape.gradient(y, [x, unused], unconnected_gradients="zero")[1]
    assert z.shape == (1, 1) and z.dtype == np.float32 and float(z) == 0
    with pytest.raises(ValueError, match="unconnected_gradients"):
        tape.gradient(y, x, unconnected_gradients="sometimes")


def test_reused_variable_accumulates():
    x = tg.Variable(3.0)
    with tg.GradientTape() as tape:
        y = x * x + x * 2.0 + tg.sin(x) * x
    expected = 2 * 3.0 + 2.0 + np.cos(3.0) * 3.0 + np.sin(3.0)
    assert float(tape.gradient(y, x)) == pytest.approx(expected, rel=1e-6)


def test_one_call_rule_and_graph_release():
    x = tg.Variable([1.0, 2.0])
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(tg.exp(x))
    tape.gradient(y, x)
    assert len(tape._nodes) == 0  # recorded graph released
    with pytest.raises(RuntimeError, match="persistent=True"):
        tape.gradient(y, x)


def test_released_graph_frees_intermediates():
    x = tg.Variable(np.ones(1000, np.float32))
    with tg.GradientTape() as tape:
        h = tg.exp(x)
        y = tg.reduce_sum(h * 2.0)
    ref = weakref.ref(h)
    del h
    tape.gradient(y, x)
    gc.collect()
    assert ref() is None


def test_persistent_tape_many_calls():
    x = tg.Variable(2.0)
    with tg.GradientTape(persistent=True) as tape:
        y = x**3
        z = x**2
    assert float(tape.gradient(y, x)) == 12
    assert float(tape.gradient(z, x)) == 4
    assert float(tape.gradient(y, x)) == 12


def test_watch_constants_and_watch_accessed_variables():
    c = tg.Variable(np.array([2.0, 3.0]), trainable=False)
    x = tg.Variable([1.0, 1.0])
    with tg.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(c)
        y = tg.reduce_sum(c * x)
    gc_, gx = tape.gradient(y, [c, x])
    np.testing.assert_array_equal(gc_.value(), [1.0, 1.0])
    assert gx is None
    with pytest.raises(TypeError, match="watch"):
        tape.watch(np.ones(3))


def test_stop_recording_and_stop_gradient():
    x = tg.Variable(2.0)
    with tg.GradientTape() as tape:
        y = x * x
        with tape.stop_recording():
            z = x * 100.0
        w = y + z + tg.stop_gradient(x * x) * x
    # z is a constant to the tape; stop_gradient(x*x) = 4 is a constant factor.
    assert float(tape.gradient(w, x)) == pytest.approx(2 * 2.0 + 4.0)


def test_ops_outside_a_tape_are_not_differentiated():
    x = tg.Variable(3.0)
    pre = x * 2.0  # computed before the tape: a constant to it
    with tg.GradientTape(persistent=True) as tape:
        y = pre * x
    assert float(tape.gradient(y, x)) == 6.0
    assert tape.gradient(y, pre) is None


def test_gradient_with_respect_to_intermediate():
    x = tg.Variable(2.0)
    with tg.GradientTape(persistent=True) as tape:
        h = x * 3.0
        y = h * h
    assert float(tape.gradient(y, h)) == 12.0
    gh, gx = tape.gradient(y, [h, x])
    assert float(gh) == 12.0 and float(gx) == 36.0


def test_nested_tapes_second_derivative():
    x = tg.Variable(np.array([1.0, 2.0, 3.0]), dtype="float64")
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            y = x**3
        dy = inner.gradient(y, x)
    d2y = outer.gradient(dy, x)
    np.testing.assert_allclose(dy.value(), 3 * x.value() ** 2)
    np.testing.assert_allclose(d2y.value(), 6 * x.value())


def test_derivatives_to_fifth_order():
    x = tg.Variable(0.7, dtype="float64")
    tapes = [tg.GradientTape() for _ in range(5)]
    for t in tapes:
        t.__enter__()
    value = tg.exp(x * 2.0)
    for t in reversed(tapes):
        t.__exit__(None, None, None)
        value = t.gradient(value, x)
    assert float(value) == pytest.approx(32 * np.exp(1.4), rel=1e-12)


def test_persistent_outer_tape_gives_mixed_partials():
    x, y = tg.Variable(1.5, dtype="float64"), tg.Variable(-0.5, dtype="float64")
    with tg.GradientTape(persistent=True) as outer:
        with tg.GradientTape() as inner:
            f = tg.sin(x * y) * x
        gx, gy = inner.gradient(f, [x, y])
    dxx, dxy = outer.gradient(gx, [x, y])
    dyx = outer.gradient(gy, x)
    xv, yv = 1.5, -0.5
    assert float(dxy) == pytest.approx(float(dyx), rel=1e-12)
    assert float(dxx) == pytest.approx(2 * yv * np.cos(xv * yv) - xv * yv**2 * np.sin(xv * yv), rel=1e-12)


def test_deep_chain_is_iterative():
    x = tg.Variable(np.float64(1.0), dtype="float64")
    with tg.GradientTape() as tape:
        h = x
        for _ in range(100_000):
            h = h * 1.0
            h = h + 0.0
    assert float(tape.gradient(h, x)) == 1.0


def test_deep_chain_second_order():
    x = tg.Variable(0.5, dtype="float64")
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            h = x
            for _ in range(10_000):
                h = h * 1.0001
            y = h * h
        dy = inner.gradient(y, x)
    d2 = outer.gradient(dy, x)
    assert float(d2) == pytest.approx(2 * 1.0001 ** 20_000, rel=1e-9)


def test_tapes_deactivate_on_exceptions():
    with pytest.raises(ZeroDivisionError):
        with tg.GradientTape():
            raise ZeroDivisionError
    assert active_tapes() == ()


def test_gradient_inside_the_tape_block():
    x = tg.Variable(2.0)
    with tg.GradientTape(persistent=True) as tape:
        y = x * x
        g1 = tape.gradient(y, x)
        z = y * x  # recording continues after gradient
    assert float(g1) == 4
    assert float(tape.gradient(z, x)) == 12


def test_output_gradients_variable_can_be_watched():
    """Forward mode by double VJP: d/dv of vjp(v) is the Jacobian applied to a vector."""
    x = tg.Variable(np.array([1.0, 2.0]), dtype="float64")
    v = tg.Variable(np.zeros(2), dtype="float64")
    with tg.GradientTape() as outer:
        outer.watch(v)
        with tg.GradientTape() as inner:
            y = x * x
        vjp = inner.gradient(y, x, output_gradients=v)
        s = tg.reduce_sum(vjp * np.array([1.0, 0.0]))
    np.testing.assert_allclose(outer.gradient(s, v).value(), [2.0, 0.0])


def test_multiple_targets_sum():
    x = tg.Variable(2.0)
    with tg.GradientTape() as tape:
        a, b = x * 3.0, x * x
    assert float(tape.gradient([a, b], x)) == 7.0


def test_target_that_is_a_source():
    x = tg.Variable([1.0, 2.0])
    with tg.GradientTape() as tape:
        pass
    np.testing.assert_array_equal(tape.gradient(x, x).value(), [1.0, 1.0])


def test_on_ready_hands_each_gradient_over_as_soon_as_it_is_complete():
    rng = np.random.default_rng(0)
    w1, w2, w3 = (tg.Variable(rng.normal(size=(4, 4))) for _ in range(3))
    unused = tg.Variable(np.ones(2))
    x = rng.normal(size=(3, 4))
    order = []
    seen_at = {}

    with tg.GradientTape(persistent=True) as tape:
        h1 = tg.tanh(x @ w1)
        h2 = tg.tanh(h1 @ w2)
        loss = tg.reduce_sum((h2 @ w3) ** 2) + tg.reduce_sum(w3)  # w3 is used twice, late

    def on_ready(i, g):
        order.append(i)
        seen_at[i] = None if g is None else g.numpy().copy()

    sources = [w1, w2, w3, unused, w2]
    grads = tape.gradient_streamed(loss, sources, on_ready)
    expected = tape.gradient(loss, sources)
    assert order.index(2) < order.index(1) < order.index(0)  # the last layer's weights first
    assert sorted(order) == [0, 1, 2, 3, 4]
    for i, (g, e) in enumerate(zip(grads, expected)):
        if e is None:
            assert g is None and seen_at[i] is None
        else:
            np.testing.assert_array_equal(g.numpy(), e.numpy())
            np.testing.assert_array_equal(seen_at[i], e.numpy())  # complete when handed over


def test_on_ready_in_differentiable_mode_gives_differentiable_gradients():
    x = tg.Variable(np.array([1.0, 2.0]))
    got = {}
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            y = tg.reduce_sum(x ** 3)
        (g,) = inner.gradient_streamed(y, [x], lambda i, g: got.setdefault(i, g))
    assert got[0] is g
    np.testing.assert_array_equal(outer.gradient(g, x).numpy(), [6.0, 12.0])
