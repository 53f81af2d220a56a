"""Compiled Functions (API §5): tracing and caching, semantics, gradients, passes, listing."""

import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.compiler import TensorSpec, TracingError

nn = tg.NeuralNetworks()
g = nn.gradient()


def test_seed_function_example():
    """Seed 003/000's compiled function graph: z = (a*b + c)^2, dz/da = 60, dz/db = 40."""
    func = g.Function(lambda a, b, c: g.add(g.mul(a, b), c))
    a, b, c = g.Variable(2.0), g.Variable(3.0), g.Variable(4.0)
    for _ in range(2):  # the first call compiles, the second executes the compiled graph
        z = nn.with_(tape := g.GradientTape(), lambda: g.square(func(a, b, c)))
        da, db = tape.gradient(z, [a, b])
        assert (tg.to_string(z), tg.to_string(da), tg.to_string(db)) == ("100", "60", "40")
    assert func.trace_count == 1


def test_decorator_forms():
    @g.Function
    def f(x):
        return x * 2.0

    @tg.function(input_signature=[TensorSpec([None, 2], "float32")])
    def h(x):
        return x + 1.0

    assert float(f(np.float32(3.0))) == 6.0
    np.testing.assert_array_equal(h(np.ones((3, 2), np.float32)).value(), np.full((3, 2), 2.0))


# -- the cache and retracing ---------------------------------------------------------------
def test_cache_key_is_shapes_dtypes_and_static_values():
    calls = []

    @tg.Function
    def f(x, scale):
        calls.append(1)  # a Python side effect: runs only while tracing
        return x * scale

    f(np.ones(3, np.float32), 2.0)
    f(np.zeros(3, np.float32), 2.0)
    f(tg.Variable(np.ones(3, np.float32)), 2.0)
    assert f.trace_count == 1 and len(calls) == 1
    f(np.ones(4, np.float32), 2.0)
    f(np.ones(3, np.float64), 2.0)
    f(np.ones(3, np.float32), 3.0)
    assert f.trace_count == 4 and len(calls) == 4
    np.testing.assert_array_equal(f(np.ones(3, np.float32), 3.0).value(), [3.0, 3.0, 3.0])
    assert f.trace_count == 4


def test_retrace_warning_names_the_argument():
    f = tg.Function(lambda x, y: x * y)
    y = np.ones(1, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in range(1, 6):
            f(np.ones(n, np.float32), y)
    with pytest.warns(UserWarning, match=r"traced 6 times.*array argument 0 changed from shape \(5,\)"):
        f(np.ones(6, np.float32), y)


def test_unhashable_static_argument():
    f = tg.Function(lambda x, opts: x * len(opts))
    with pytest.raises(TypeError, match="not hashable"):
        f(np.ones(2), bytearray(b"ab"))
    # nested lists and dicts of static values are part of the key
    assert tg.Function(lambda x, opts: x * opts["k"][0])(np.ones(2), {"k": [3]}).value().tolist() == [3, 3]


def test_input_signature_is_checked():
    f = tg.Function(lambda x: x * 2.0, input_signature=[TensorSpec([None, 3], "float32")])
    f(np.ones((2, 3), np.float32))
    f(np.ones((5, 3), np.float32))
    with pytest.raises(ValueError, match=r"shape \(2, 4\).*TensorSpec\(shape=\(None, 3\)"):
        f(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="float64"):
        f(np.ones((2, 3), np.float64))


# -- semantics -------------------------------------------------------------------------------
def test_python_control_flow_on_traced_values_is_an_error():
    @tg.Function
    def f(x):
        if tg.reduce_sum(x) > 0:
            return x
        return -x

    with pytest.raises(TracingError, match="Python control flow is fixed at trace time.*tapegrad.where"):
        f(np.ones(2, np.float32))

    @tg.Function
    def h(x):
        return x * float(tg.reduce_sum(x))

    with pytest.raises(TracingError, match="float"):
        h(np.ones(2, np.float32))


def test_control_flow_on_static_arguments_is_fine():
    @tg.Function
    def f(x, training):
        return x * 2.0 if training else x

    assert float(f(np.float32(1.0), True)) == 2.0
    assert float(f(np.float32(1.0), False)) == 1.0


def test_captured_variables_are_read_by_reference():
    w = tg.Variable([1.0, 2.0])
    f = tg.Function(lambda x: x * w)
    np.testing.assert_array_equal(f(np.ones(2, np.float32)).value(), [1.0, 2.0])
    w.assign([5.0, 6.0])
    np.testing.assert_array_equal(f(np.ones(2, np.float32)).value(), [5.0, 6.0])
    assert f.trace_count == 1


def test_variables_may_be_created_on_the_first_trace_only():
    state = {}

    @tg.Function
    def f(x):
        if "v" not in state:
            state["v"] = tg.Variable(np.full(x.shape, 3.0, np.float32))
        return x * state["v"]

    np.testing.assert_array_equal(f(np.ones(2, np.float32)).value(), [3.0, 3.0])
    np.testing.assert_array_equal(f(np.full(2, 2.0, np.float32)).value(), [6.0, 6.0])

    @tg.Function
    def h(x):
        return x * tg.Variable(np.ones(x.shape, np.float32))

    h(np.ones(2, np.float32))
    with pytest.raises(TracingError, match="created a Variable while it was retraced"):
        h(np.ones(3, np.float32))


def test_result_must_be_variables():
    with pytest.raises(TypeError, match=r"returns Variables.*result\[1\] must be a Variable.*got int"):
        tg.Function(lambda x: (x, 3))(np.ones(2))
    out = tg.Function(lambda x: {"a": x * 2.0, "b": [x + 1.0, x]})(np.ones(2, np.float32))
    assert set(out) == {"a", "b"} and out["b"][0].value().tolist() == [2.0, 2.0]


def test_assign_inside_a_function_runs_at_every_call():
    counter = tg.Variable(0.0)

    @tg.Function
    def step(x):
        counter.assign(counter + x)
        return counter * 1.0

    for _ in range(3):
        step(np.float32(2.0))
    assert float(counter) == 6.0 and step.trace_count == 1


def test_outputs_are_not_overwritten_by_later_calls():
    f = tg.Function(lambda x: tg.tanh(x * 2.0) + 1.0)
    first = f(np.ones(4, np.float32))
    second = f(np.zeros(4, np.float32))
    assert not np.shares_memory(first.value(), second.value())
    np.testing.assert_allclose(first.value(), np.tanh(2.0) + 1.0, rtol=1e-6)


def test_functions_call_functions():
    inner = tg.Function(lambda x: tg.sin(x) * 2.0)
    outer = tg.Function(lambda x: inner(x) + inner(x * 3.0))
    x = tg.Variable(np.array([0.1, 0.5]), dtype="float64")
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(outer(x))
    expected = 2 * np.cos(x.value()) + 6 * np.cos(3 * x.value())
    np.testing.assert_allclose(tape.gradient(y, x).value(), expected)


# -- gradients ---------------------------------------------------------------------------------
def test_gradients_reach_inputs_and_captured_trainable_variables():
    W = tg.Variable(np.array([[1.0, 2.0], [3.0, 4.0]]), dtype="float64")
    b = tg.Variable(np.array([0.5, -0.5]), dtype="float64")
    f = tg.Function(lambda x: tg.tanh(tg.matmul(x, W) + b))
    x = tg.Variable(np.array([[0.1, 0.2]]), dtype="float64")
    for _ in range(2):
        with tg.GradientTape() as tape:
            y = tg.reduce_sum(f(x) * np.array([1.0, 2.0]))
        gx, gW, gb = tape.gradient(y, [x, W, b])
        t = np.tanh(x.value() @ W.value() + b.value())
        d = (1 - t**2) * np.array([1.0, 2.0])
        np.testing.assert_allclose(gb.value(), d[0])
        np.testing.assert_allclose(gW.value(), x.value().T @ d)
        np.testing.assert_allclose(gx.value(), d @ W.value().T)


def test_second_and_third_derivatives_through_a_function():
    f = tg.Function(lambda x: x**3 * tg.sin(x))
    x = tg.Variable(0.8, dtype="float64")
    for _ in range(2):
        with tg.GradientTape() as t3:
            with tg.GradientTape() as t2:
                with tg.GradientTape() as t1:
                    y = f(x)
                d1 = t1.gradient(y, x)
            d2 = t2.gradient(d1, x)
        d3 = t3.gradient(d2, x)
        v = 0.8
        assert float(d1) == pytest.approx(3 * v**2 * np.sin(v) + v**3 * np.cos(v), rel=1e-12)
        assert float(d2) == pytest.approx(6 * v * np.sin(v) + 6 * v**2 * np.cos(v) - v**3 * np.sin(v), rel=1e-12)
        assert float(d3) == pytest.approx(
            6 * np.sin(v) + 18 * v * np.cos(v) - 9 * v**2 * np.sin(v) - v**3 * np.cos(v), rel=1e-12)


def test_multiple_outputs_each_get_their_gradient():
    f = tg.Function(lambda x: (x * 2.0, x * x))
    x = tg.Variable([1.0, 3.0])
    with tg.GradientTape() as tape:
        a, b = f(x)
        y = tg.reduce_sum(a) + tg.reduce_sum(b * 10.0)
    np.testing.assert_allclose(tape.gradient(y, x).value(), [2 + 20.0, 2 + 60.0])


def test_a_tape_inside_the_function_body():
    w = tg.Variable(np.array([1.0, -2.0, 0.5]), dtype="float64")

    @tg.Function
    def loss_and_grad(x):
        with tg.GradientTape() as tape:
            loss = tg.reduce_sum(tg.square(tg.tanh(x * w)))
        return loss, tape.gradient(loss, w)

    x = np.array([0.3, 0.2, -0.1])
    for _ in range(3):
        loss, gw = loss_and_grad(x)
        t = np.tanh(x * w.value())
        np.testing.assert_allclose(gw.value(), 2 * t * (1 - t**2) * x)
        w.assign(w.value() - 0.1 * gw.value())
    assert loss_and_grad.trace_count == 1


# -- compiled equals eager: random programs ----------------------------------------------------------
UNARY = [tg.tanh, tg.sin, tg.exp, tg.sigmoid, tg.neg, tg.square, lambda v: tg.log(tg.square(v) + 1.0),
         tg.softplus, lambda v: tg.relu(v) * 2.0]
BINARY = [tg.add, tg.sub, tg.mul, lambda a, b: a / (tg.square(b) + 1.0), tg.maximum]


def random_program(seed: int):
    rng = np.random.default_rng(seed)
    plan = [(rng.integers(2), rng.integers(len(UNARY)), rng.integers(len(BINARY)), rng.integers(3))
            for _ in range(rng.integers(4, 12))]

    def program(x, y):
        values = [x, y]
        for kind, u, b, pick in plan:
            if kind == 0:
                values.append(UNARY[u](values[-1 - pick % len(values)]))
            else:
                values.append(BINARY[b](values[-1], values[-1 - (pick + 1) % len(values)]))
        total = values[-1] + tg.reduce_sum(values[-2], axis=-1, keepdims=True)
        return tg.reduce_sum(total * total)

    return program


@pytest.mark.parametrize("seed", range(12))
def test_random_programs_compiled_equal_eager(seed):
    program = random_program(seed)
    compiled = tg.Function(program)
    rng = np.random.default_rng(100 + seed)

    def derivatives(fn, xv, yv):
        x = tg.Variable(xv, dtype="float64")
        y = tg.Variable(yv, dtype="float64")
        with tg.GradientTape() as outer:
            with tg.GradientTape() as inner:
                value = fn(x, y)
            gx, gy = inner.gradient(value, [x, y], unconnected_gradients="zero")
            probe = tg.reduce_sum(gx * 0.5) + tg.reduce_sum(gy)
        hx, hy = outer.gradient(probe, [x, y], unconnected_gradients="zero")
        return [float(value), gx.value(), gy.value(), hx.value(), hy.value()]

    for _ in range(3):  # trace, then the compiled graph, with other values at every call
        xv, yv = rng.normal(size=(2, 3)), rng.normal(size=(3,))
        eager = derivatives(program, xv, yv)
        got = derivatives(compiled, xv, yv)
        for e, c in zip(eager, got):
            np.testing.assert_allclose(c, e, rtol=1e-9, atol=1e-12)
    assert compiled.trace_count == 1


# -- the optimiser and the listing ---------------------------------------------------------------
def test_listing_shows_optimised_forward_and_backward():
    x = tg.Variable(np.ones(4, np.float32))
    w = tg.Variable(np.full(4, 2.0, np.float32), trainable=False)

    @tg.Function
    def f(x):
        unused = tg.exp(x) * 3.0  # noqa: F841 - dead code
        a = tg.tanh(x * w + 1.0)
        b = tg.tanh(x * w + 1.0)  # the same subexpression
        return a + b * 1.0 + (2.0 * 3.0)

    text = str(f.graph(x))
    forward, backward = text.split("\n\n")
    assert forward.startswith("forward f(") and backward.startswith("backward f.backward(")
    assert "exp" not in forward  # dead code removed
    assert forward.count("tanh") == 1  # common subexpression merged
    assert "fused {mul(" in forward  # elementwise chain fused
    assert "6.0" in forward  # constants folded
    np.testing.assert_allclose(f(x).value(), 2 * np.tanh(3.0) + 6.0, rtol=1e-6)


def test_compiled_chain_uses_buffers_in_place():
    f = tg.Function(lambda x: tg.tanh(tg.tanh(x * 2.0 + 1.0) * 3.0))
    f(np.ones((8, 8), np.float32))
    compiled = next(iter(f._cache.values())).base
    assert "np_empty" in compiled.run.source and "np_tanh(" in compiled.run.source
    np.testing.assert_allclose(f(np.zeros((8, 8), np.float32)).value(), np.tanh(np.tanh(1.0) * 3.0), rtol=1e-6)


def test_random_draws_are_not_repeated_by_the_backward_pass():
    """Dropout's mask is impure: the compiled backward uses the forward's draw."""
    layer = tg.layers.Dropout(0.5, seed=0)
    f = tg.Function(lambda x: layer(x, training=True) * 3.0)
    x = tg.Variable(np.ones((4, 50), np.float32))
    masks = []
    for _ in range(3):
        with tg.GradientTape() as tape:
            y = f(x)
            total = tg.reduce_sum(y)
        gx = tape.gradient(total, x).value()
        kept = y.value() != 0
        np.testing.assert_array_equal(gx != 0, kept)  # the gradient flows exactly where the mask kept
        np.testing.assert_allclose(gx[kept], 6.0)  # 3 * 1 / (1 - rate)
        masks.append(kept)
    assert not np.array_equal(masks[1], masks[2])  # a fresh draw at every call
    two = tg.Function(lambda x: tg.layers.Dropout(0.5)(x, training=True) - tg.layers.Dropout(0.5)(x, training=True))
    assert np.any(two(np.ones((4, 50), np.float32)).value() != 0)  # two draws are never merged


def test_a_whole_training_step_compiles_with_the_update_as_an_effect():
    """forward, tape.gradient and optimizer.update in one Function equal the eager step."""
    nn_ = tg.NeuralNetworks(dtype="float64")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)), rng.integers(0, 2, 8)
    runs = []
    for compiled in (False, True):
        tg.set_seed(1)
        layers = [nn_.layers.Dense(5, activation="tanh"), nn_.layers.Dense(2)]
        lossf = nn_.losses.SparseCategoricalCrossentropy(from_logits=True)
        opt = nn_.optimizers.Adam(0.05)

        def step(xb, yb, layers=layers, lossf=lossf, opt=opt):
            with tg.GradientTape() as tape:
                h = xb
                for layer in layers:
                    h = layer(h)
                loss = lossf(yb, h)
            params = [v for layer in layers for v in layer.trainable_variables()]
            opt.update(params, tape.gradient(loss, params))
            return loss

        fn = tg.Function(step) if compiled else step
        runs.append([float(fn(x, y)) for _ in range(6)])
        if compiled:
            assert fn.trace_count == 1 and opt.iterations == 6
            assert "Adam.update(" in str(fn.graph(x, y)).split("\n\n")[0]
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-12)
    assert runs[1][-1] < runs[1][0]


def test_a_multi_output_call_is_one_node_and_one_backward_pass():
    f = tg.Function(lambda x: (tg.sin(x), x * x, x + 1.0))
    x = tg.Variable(np.array([0.3, 1.2]), dtype="float64")
    for _ in range(2):
        with tg.GradientTape(persistent=True) as tape:
            a, b, c = f(x)
            y = tg.reduce_sum(a) + tg.reduce_sum(b * 3.0)
        calls = [n for n in tape._nodes if n[0].name.startswith("call:")]
        assert len(calls) == 1
        np.testing.assert_allclose(tape.gradient(y, x).value(), np.cos(x.value()) + 6 * x.value())
        np.testing.assert_allclose(tape.gradient(c, x).value(), [1.0, 1.0])
    backward = next(iter(f._cache.values())).base.backward
    # one backward graph per set of seeded outputs ({a, b} and {c}), each traced once
    assert backward.trace_count == 2


def test_a_free_dimension_is_traced_twice_then_replayed():
    """With input_signature's None dimension, the second size verifies that the trace is
    shape-polymorphic; later sizes reuse it without running the Python function."""
    calls = []
    W = tg.Variable(np.array([[1.0, -1.0], [0.5, 2.0], [0.0, 1.0]]), dtype="float64")

    def f(x):
        calls.append(x.shape)
        return tg.tanh(tg.matmul(x, W)) * 2.0

    spec = [TensorSpec([None, 3], "float64")]
    compiled = tg.Function(f, input_signature=spec)
    rng = np.random.default_rng(0)
    for n in (4, 7, 1, 9, 7, 4):
        x = rng.normal(size=(n, 3))
        np.testing.assert_allclose(compiled(x).value(), np.tanh(x @ W.value()) * 2.0, rtol=1e-12)
    assert compiled.trace_count == 2 and calls == [(4, 3), (7, 3)]
    entry = next(iter(compiled._cache.values()))
    assert entry.polymorphic and len(entry.variants) == 4

    def baked(x):  # bakes the batch size into a constant: not polymorphic, so each size is traced
        return x * float(x.shape[0])

    g2 = tg.Function(baked, input_signature=spec)
    for n in (2, 3, 5):
        np.testing.assert_allclose(g2(np.ones((n, 3))).value(), np.full((n, 3), float(n)))
    assert g2.trace_count == 3 and next(iter(g2._cache.values())).polymorphic is False


def test_a_compiled_training_step_with_a_free_batch_dimension():
    x_all = np.random.default_rng(1).normal(size=(50, 4))
    y_all = (x_all[:, 0] > 0).astype(np.int64)
    nn_ = tg.NeuralNetworks(dtype="float64")
    tg.set_seed(3)
    dense = nn_.layers.Dense(2)
    dense(x_all[:1])  # build the weights
    lossf = nn_.losses.SparseCategoricalCrossentropy(from_logits=True)
    opt = nn_.optimizers.SGD(0.5)

    def step(xb, yb):
        with tg.GradientTape() as tape:
            loss = lossf(yb, dense(xb))
        params = dense.trainable_variables()
        opt.update(params, tape.gradient(loss, params))
        return loss

    compiled = tg.Function(step, input_signature=[TensorSpec([None, 4], "float64"), TensorSpec([None], "int64")])
    for start, stop in ((0, 16), (16, 32), (32, 45), (45, 50), (0, 16), (16, 29)):
        before = [v.value().copy() for v in dense.trainable_variables()]
        loss = compiled(x_all[start:stop], y_all[start:stop])
        # the same step computed eagerly from the weights before it
        W, b = before
        logits = x_all[start:stop] @ W + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        assert float(loss) == pytest.approx(-np.mean(np.log(p[np.arange(stop - start), y_all[start:stop]])))
        p[np.arange(stop - start), y_all[start:stop]] -= 1
        np.testing.assert_allclose(dense.trainable_variables()[0].value(), W - 0.5 * x_all[start:stop].T @ p
                                   / (stop - start), rtol=1e-10)
    assert compiled.trace_count == 2 and opt.iterations == 6


def test_reductions_and_losses_with_a_free_batch_dimension_need_no_retrace():
    """Mean losses and batch normalisation reduce over the batch: their VJPs read the batch
    size at run time, so one trace serves every batch size."""
    nn_ = tg.NeuralNetworks(dtype="float64")
    tg.set_seed(0)
    layers = [nn_.layers.Dense(5, activation="tanh"), nn_.layers.BatchNormalization(), nn_.layers.Dense(2)]
    lossf = nn_.losses.MeanSquaredError()
    rng = np.random.default_rng(2)

    def loss_and_grads(xb, yb):
        with tg.GradientTape() as tape:
            h = xb
            for layer in layers:
                h = layer(h, training=True)
            loss = lossf(yb, h) + tg.reduce_mean(tg.square(h))
        params = [v for layer in layers for v in layer.trainable_variables()]
        return loss, tape.gradient(loss, params)

    loss_and_grads(rng.normal(size=(3, 4)), rng.normal(size=(3, 2)))  # build the layers
    spec = [TensorSpec([None, 4], "float64"), TensorSpec([None, 2], "float64")]
    compiled = tg.Function(loss_and_grads, input_signature=spec)
    for n in (8, 5, 13, 2):
        xb, yb = rng.normal(size=(n, 4)), rng.normal(size=(n, 2))
        moving = layers[1].moving_mean.value().copy()
        loss, grads = compiled(xb, yb)
        layers[1].moving_mean.assign(moving)  # undo this call's moving-average update
        eager_loss, eager_grads = loss_and_grads(xb, yb)
        layers[1].moving_mean.assign(moving)
        assert float(loss) == pytest.approx(float(eager_loss), rel=1e-12)
        for a, b in zip(grads, eager_grads):
            np.testing.assert_allclose(a.value(), b.value(), rtol=1e-10, atol=1e-12)
    assert compiled.trace_count == 2 and next(iter(compiled._cache.values())).polymorphic


def test_relax_shapes_frees_every_dimension():
    f = tg.Function(lambda x: tg.reduce_sum(tg.sin(x) * 2.0, axis=-1), relax_shapes=True)
    for shape in [(2, 3), (4, 3), (4, 7), (1, 1)]:
        x = np.random.default_rng(0).normal(size=shape)
        np.testing.assert_allclose(f(x).value(), np.sum(np.sin(x) * 2.0, axis=-1), rtol=1e-12)
    assert f.trace_count == 2
    f(np.ones(3))  # another rank: another entry
    assert f.trace_count == 3


def test_identical_independent_chains_are_batched_over_a_stack():
    """The backward pass of a deep tanh chain computes 1 - y*y for every layer: the compiler
    computes them once over a stack of the ys (horizontal batching), with the same values."""
    w = tg.Variable(np.linspace(0.9, 1.1, 6).astype(np.float32), trainable=False)

    def step(x):
        with tg.GradientTape() as tape:
            tape.watch(x)
            h = x
            for _ in range(12):
                h = tg.tanh(h * w + 0.01)
            y = tg.reduce_sum(h)
        return y, tape.gradient(y, x)

    compiled = tg.Function(step)
    x = tg.Variable(np.linspace(-1, 1, 6).astype(np.float32), trainable=False)
    for _ in range(2):
        (y, gx), (ey, egx) = compiled(x), step(x)
        assert float(y) == float(ey)
        np.testing.assert_array_equal(gx.value(), egx.value())
    listing = str(compiled.graph(x)).split("\n\n")[0]
    assert "stacked over" in listing and "row(" in listing
    source = next(iter(compiled._cache.values())).base.run.source
    assert source.count("np_tanh(") == 12 and source.count("np_subtract(") < 4  # 1 - y*y once, not 12 times


def test_a_function_of_a_function_keeps_its_own_cache():
    inner = tg.Function(lambda x: x * 2.0)
    outer = tg.Function(lambda x: inner(x) + 1.0)
    wrapped = tg.Function(inner)  # a Function of a Function object
    assert float(inner(tg.Variable(1.0))) == 2.0
    assert float(outer(tg.Variable(1.0))) == 3.0
    assert float(wrapped(tg.Variable(3.0))) == 6.0
    assert wrapped._cache is not inner._cache and wrapped.trace_count == 1 and inner.trace_count == 1
