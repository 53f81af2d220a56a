"""vmap: a function written for one example, run on a batch with batched ops.

Every op of the compiled-op sweep is mapped over a batch in several ways (every argument
mapped, one argument mapped and the others shared, the batch on another axis) and compared
with a Python loop over the examples; then compositions with grad, jvp, Function and vmap
itself, per-example gradients, and errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_compiled_ops import CASES

import tapegrad as tg

BATCH = 3


def examples(makers, count, seed):
    rng = np.random.default_rng(seed)
    return [[m(rng) for m in makers] for _ in range(count)]


def as_arrays(result):
    if isinstance(result, (list, tuple)):
        return [np.asarray(r) for r in result]
    return [np.asarray(result)]


def loop(fn, per_example):
    """The reference: fn on each example, stacked on a new first axis."""
    outs = [as_arrays(fn(*[tg.Variable(a) if isinstance(a, np.ndarray) else a for a in args]))
            for args in per_example]
    return [np.stack([o[k] for o in outs]) for k in range(len(outs[0]))]


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_op_mapped_over_all_its_arguments(name):
    fn, makers, _ = CASES[name]
    per_example = examples(makers, BATCH, 11)
    stacked = [np.stack([ex[k] for ex in per_example]) for k in range(len(makers))]
    got = as_arrays(tg.vmap(fn)(*stacked))
    for g, w in zip(got, loop(fn, per_example)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_op_with_one_argument_mapped_on_its_last_axis(name):
    fn, makers, _ = CASES[name]
    for mapped in range(len(makers)):
        per_example = examples(makers, BATCH, 12 + mapped)
        shared = per_example[0]
        for ex in per_example:  # the other arguments are the same for every example
            for k in range(len(makers)):
                if k != mapped:
                    ex[k] = shared[k]
        if np.ndim(per_example[0][mapped]) == 0:
            axis = 0
        else:
            axis = np.ndim(per_example[0][mapped])  # a new last axis
        column = np.stack([ex[mapped] for ex in per_example], axis=axis)
        args = [column if k == mapped else shared[k] for k in range(len(makers))]
        in_axes = tuple(axis if k == mapped else None for k in range(len(makers)))
        got = as_arrays(tg.vmap(fn, in_axes=in_axes)(*args))
        for g, w in zip(got, loop(fn, per_example)):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=f"{name}, argument {mapped}")


def test_per_example_gradients_of_an_mlp_equal_a_loop():
    from tapegrad.ops.loss_ops import sparse_softmax_cross_entropy

    rng = np.random.default_rng(0)
    params = [rng.normal(size=(8, 16)) * 0.3, np.zeros(16), rng.normal(size=(16, 4)) * 0.3, np.zeros(4)]

    def loss(params, x, y):
        w1, b1, w2, b2 = params
        h = tg.relu(x @ w1 + b1)
        return sparse_softmax_cross_entropy(h @ w2 + b2, y, "mean")

    xs, ys = rng.normal(size=(6, 8)), rng.integers(0, 4, 6)
    per_example = tg.vmap(tg.grad(loss), in_axes=(None, 0, 0))(params, xs, ys)
    for i in range(6):
        alone = tg.grad(loss)(params, xs[i], ys[i])
        for g, a in zip(per_example, alone):
            np.testing.assert_allclose(g.numpy()[i], a.numpy(), rtol=1e-12, atol=1e-14)
    # and their mean is the batch gradient
    batch = tg.grad(lambda p: loss(p, xs, ys))(params)
    for g, b in zip(per_example, batch):
        np.testing.assert_allclose(g.numpy().mean(axis=0), b.numpy(), rtol=1e-10, atol=1e-14)


def test_grad_of_a_vmap_and_vmap_of_a_jvp():
    w = tg.Variable(np.array([0.5, -1.0, 2.0]))
    xs = np.arange(12.0).reshape(4, 3) / 10
    f = lambda w, x: tg.reduce_sum(tg.sin(w * x))  # noqa: E731
    with tg.GradientTape() as tape:
        total = tg.reduce_sum(tg.vmap(f, in_axes=(None, 0))(w, xs))
    expected = np.sum(np.cos(w.numpy() * xs) * xs, axis=0)
    np.testing.assert_allclose(tape.gradient(total, w).numpy(), expected, rtol=1e-12)
    tangents = np.eye(3)
    columns = tg.vmap(lambda t: tg.jvp(lambda v: tg.sin(v) * v, (w,), (t,))[1])(tangents)
    wv = w.numpy()
    np.testing.assert_allclose(columns.numpy(), np.diag(np.cos(wv) * wv + np.sin(wv)), rtol=1e-12, atol=1e-15)


def test_vmap_of_vmap_and_in_axes_per_argument():
    x = np.arange(24.0).reshape(2, 3, 4)
    y = np.arange(4.0)
    inner = tg.vmap(lambda a, b: a * b + tg.reduce_sum(a), in_axes=(0, None))
    got = tg.vmap(inner, in_axes=(0, None))(x, y)
    want = x * y + x.sum(axis=2, keepdims=True)
    np.testing.assert_allclose(got.numpy(), want)
    # the batch on axis 1, the result's batch axis last
    got = tg.vmap(lambda a: tg.reduce_sum(a, axis=0), in_axes=1, out_axes=1)(x)
    np.testing.assert_allclose(got.numpy(), np.stack([x[:, k].sum(axis=0) for k in range(3)], axis=1))


def test_vmap_inside_a_compiled_function_follows_its_inputs():
    from compiled_check import assert_compiled_matches_eager

    def f(w, xs):
        return tg.vmap(lambda x: tg.tanh(x @ w), in_axes=0)(xs)

    rng = np.random.default_rng(3)
    assert_compiled_matches_eager(f, [rng.normal(size=(3, 2)), rng.normal(size=(5, 3))],
                                  [rng.normal(size=(3, 2)), rng.normal(size=(5, 3))], order=2)


def test_an_output_that_does_not_depend_on_the_batch_is_broadcast():
    got = tg.vmap(lambda x: (x * 2.0, tg.Variable(np.ones(2))))(np.ones((4, 3)))
    assert got[1].shape == (4, 2)


def test_vmap_errors_name_the_arguments():
    with pytest.raises(ValueError, match="different sizes"):
        tg.vmap(lambda a, b: a + b)(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="out of range"):
        tg.vmap(lambda a: a, in_axes=2)(np.ones((3, 4)))
    with pytest.raises(ValueError, match="no argument is mapped"):
        tg.vmap(lambda a: a, in_axes=None)(np.ones(3))
    with pytest.raises(ValueError, match="in_axes has 1 entries"):
        tg.vmap(lambda a, b: a, in_axes=(0,))(np.ones(3), np.ones(3))


def test_a_primitive_without_a_batching_rule_still_works_with_a_warning():
    from tapegrad.autodiff.primitive import Primitive

    cumulative = Primitive("my_cumsum", lambda x: np.cumsum(x))
    with pytest.warns(RuntimeWarning, match="no batching rule"):
        got = tg.vmap(lambda x: cumulative.apply(x))(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(got.numpy(), np.cumsum(np.arange(6.0).reshape(2, 3), axis=1))


def test_every_builtin_primitive_has_a_batching_rule():
    import tapegrad.ops.batch_rules  # noqa: F401 - installs the rules (vmap imports it on first use)
    from tapegrad.autodiff.primitive import ALL_PRIMITIVES

    missing = sorted({p.name for p in ALL_PRIMITIVES if p.batch_rule is None
                      and not p.name.startswith(("call:", "my_", "bad"))} - {"unpack"})
    assert not missing, f"primitives without a batching rule: {missing}"


def test_every_builtin_differentiable_primitive_has_a_jvp_rule():
    from tapegrad.autodiff.primitive import ALL_PRIMITIVES

    missing = sorted({p.name for p in ALL_PRIMITIVES if p.differentiable
                      and p.jvp_rules is None and p.jvp_joint is None
                      and not p.name.startswith(("call:", "my_", "bad", "custom"))})
    assert not missing, f"differentiable primitives without a JVP rule: {missing}"


def test_custom_gradient_keeps_its_backward_under_vmap():
    """grad of a vmap over a custom_gradient function used the forward's own derivative (3)
    instead of the custom backward (clipped to 0.5): the batching rule dropped the node."""
    @tg.custom_gradient
    def clipped(x, w):
        def backward(g):
            return tg.clip_by_value(g * w, -0.5, 0.5), tg.reduce_sum(g * x) * 2.0
        return x * w, backward

    def f(x, w):
        return tg.reduce_sum(clipped(x, w) * 3.0)

    x = np.array([[1.0, 2.0], [3.0, 4.0], [0.1, 0.02]])
    for w in (np.array(1.0), np.array(0.1)):  # a second call with other values
        want_x = np.clip(3.0 * w * np.ones_like(x), -0.5, 0.5)
        want_w = 2.0 * 3.0 * x.sum()  # unmapped w: the examples' gradients summed
        gx, gw = tg.grad(lambda x, w: tg.reduce_sum(tg.vmap(f, in_axes=(0, None))(x, w)), argnums=(0, 1))(x, w)
        np.testing.assert_allclose(gx.numpy(), want_x)
        np.testing.assert_allclose(gw.numpy(), want_w)
        # per-example gradients through the custom backward (vmap of grad) agree
        per = tg.vmap(tg.grad(f, argnums=(0, 1)), in_axes=(0, None))(x, w)
        np.testing.assert_allclose(per[0].numpy(), want_x)
        np.testing.assert_allclose(per[1].numpy(), 2.0 * 3.0 * x.sum(axis=1))
        # inside a compiled Function, twice
        step = tg.Function(lambda x, w: tg.grad(lambda x: tg.reduce_sum(tg.vmap(f, in_axes=(0, None))(x, w)))(x))
        np.testing.assert_allclose(step(x, w).numpy(), want_x)
        np.testing.assert_allclose(step(x * 2.0, w).numpy(), want_x)
