"""Forward mode (jvp) and the Jacobian transformations built on it (jacfwd, jacrev, hessian).

Every op of the compiled-op sweep is checked: the JVP along a random tangent equals the
Jacobian (by reverse mode) times the tangent, in float64; then nesting with reverse mode
and with itself, compiled Functions, and the API's edge cases.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_compiled_ops import CASES, arg_sets

import tapegrad as tg


def float_positions(args):
    return [k for k, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]


def reverse_jvp(fn, args, tangents, floats):
    """J @ t by reverse mode: the Jacobian of each output w.r.t. each float argument."""
    def of(*xs):
        call = list(args)
        for k, x in zip(floats, xs):
            call[k] = x
        return fn(*call)

    out = of(*[args[k] for k in floats])
    outs = out if isinstance(out, (list, tuple)) else [out]
    results = []
    for index in range(len(outs)):
        def one(*xs, index=index):
            o = of(*xs)
            return (o if isinstance(o, (list, tuple)) else [o])[index]

        if outs[index].dtype.kind != "f":
            results.append(None)
            continue
        jac = tg.jacobian(one, argnums=tuple(range(len(floats))))(*[tg.Variable(args[k]) for k in floats])
        total = np.zeros(outs[index].shape)
        for j, t in zip(jac, tangents):
            total = total + np.tensordot(j.numpy(), t, axes=t.ndim)
        results.append(total)
    return results


DIFFERENTIABLE = sorted(name for name, (_, _, order) in CASES.items() if order >= 1)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_jvp_of_every_op_is_the_jacobian_times_the_tangent(name):
    fn, makers, _ = CASES[name]
    (args,) = arg_sets(makers, seeds=(3,))
    floats = float_positions(args)
    rng = np.random.default_rng(7)
    tangents = [rng.normal(size=args[k].shape) for k in floats]

    def of(*xs):
        call = list(args)
        for k, x in zip(floats, xs):
            call[k] = x
        return fn(*call)

    out, tangent_out = tg.jvp(of, tuple(args[k] for k in floats), tuple(tangents))
    outs = tangent_out if isinstance(tangent_out, (list, tuple)) else [tangent_out]
    expected = reverse_jvp(fn, args, tangents, floats)
    for got, want in zip(outs, expected):
        if want is None:
            continue
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-12, err_msg=name)


def test_jvp_costs_one_pass_of_tangents_on_raw_arrays():
    # with nothing recording outside it, the tangents are NumPy arrays, not Variables
    seen = []
    x = np.linspace(-1, 1, 5)

    def f(v):
        y = tg.tanh(v) * v
        seen.append(type(y).__name__)
        return tg.reduce_sum(y)

    out, t = tg.jvp(f, (x,), (np.ones(5),))
    assert float(t) == pytest.approx(float(np.sum((1 - np.tanh(x) ** 2) * x + np.tanh(x))))


def test_hessian_vector_product_forward_over_reverse():
    x = np.array([0.3, -1.2, 2.0])
    v = np.array([1.0, 0.5, -2.0])
    f = lambda x: tg.reduce_sum(tg.sin(x) * x ** 3) + tg.logsumexp(x * x)  # noqa: E731
    _, hvp = tg.jvp(tg.grad(f), (x,), (v,))
    hessian = tg.jacobian(tg.grad(f))(tg.Variable(x)).numpy()
    np.testing.assert_allclose(hvp.numpy(), hessian @ v, rtol=1e-10)


def test_reverse_over_forward_and_forward_over_forward():
    x = tg.Variable(np.array([0.5, 1.5]))
    t = np.array([1.0, -1.0])
    f = lambda x: tg.reduce_sum(tg.exp(x) * tg.sin(x))  # noqa: E731
    # d/dx <grad f, t> = H t
    with tg.GradientTape() as tape:
        _, df_t = tg.jvp(f, (x,), (t,))
    ht = tape.gradient(df_t, x).numpy()
    hessian = tg.hessian(f)(x).numpy()
    np.testing.assert_allclose(ht, hessian @ t, rtol=1e-10)
    # t' H t by forward over forward
    _, second = tg.jvp(lambda y: tg.jvp(f, (y,), (t,))[1], (x,), (t,))
    np.testing.assert_allclose(float(second), t @ hessian @ t, rtol=1e-10)


def test_third_order_forward_mode():
    f = lambda x: x ** 4  # noqa: E731
    d1 = lambda x: tg.jvp(f, (x,), (np.ones(()),))[1]  # noqa: E731
    d2 = lambda x: tg.jvp(d1, (x,), (np.ones(()),))[1]  # noqa: E731
    _, d3 = tg.jvp(d2, (np.array(2.0),), (np.array(1.0),))
    assert float(d3) == pytest.approx(24 * 2.0)


def test_jacfwd_jacrev_hessian_and_jacobian_agree():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 4))
    f = lambda x: tg.tanh(x @ W) * 2.0  # noqa: E731
    x = rng.normal(size=(2, 3))
    j_fwd, j_rev, j_ref = tg.jacfwd(f)(x), tg.jacrev(f)(x), tg.jacobian(f)(tg.Variable(x))
    assert j_fwd.shape == j_rev.shape == (2, 4, 2, 3)
    np.testing.assert_allclose(j_fwd.numpy(), j_ref.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(j_rev.numpy(), j_ref.numpy(), rtol=1e-10, atol=1e-12)
    g = lambda x: tg.reduce_sum(tg.sin(x @ W) ** 2)  # noqa: E731
    np.testing.assert_allclose(tg.hessian(g)(x).numpy(), tg.jacobian(tg.grad(g))(tg.Variable(x)).numpy(),
                               rtol=1e-9, atol=1e-12)


def test_jvp_through_a_compiled_function_follows_its_inputs():
    @tg.Function
    def f(x, w):
        return tg.reduce_sum(tg.tanh(x * w) ** 2), x * 3.0

    for seed in (1, 2, 1):
        rng = np.random.default_rng(seed)
        x, w, tx, tw = (rng.normal(size=4) for _ in range(4))
        got = tg.jvp(f, (x, w), (tx, tw))[1]
        want = tg.jvp(f.fn, (x, w), (tx, tw))[1]
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    assert f.trace_count == 1


def test_jvp_of_a_custom_gradient_uses_the_custom_derivative():
    @tg.custom_gradient
    def scaled(x):
        return x * 1.0, lambda dy: dy * 10.0  # a deliberately different derivative

    _, t = tg.jvp(lambda x: scaled(x), (np.array([1.0, 2.0]),), (np.array([1.0, 1.0]),))
    np.testing.assert_array_equal(t.numpy(), [10.0, 10.0])


def test_jvp_inside_a_compiled_function():
    def f(x, t):
        return tg.jvp(lambda y: tg.sin(y) * y, (x,), (t,))[1]

    from compiled_check import assert_compiled_matches_eager

    assert_compiled_matches_eager(f, [np.array([0.1, 0.7]), np.array([1.0, 2.0])],
                                  [np.array([-1.0, 0.3]), np.array([0.5, -0.5])], order=1)


def test_jvp_arguments_are_checked():
    with pytest.raises(ValueError, match="shape"):
        tg.jvp(tg.sin, (np.ones(3),), (np.ones(2),))
    with pytest.raises(TypeError, match="tuple"):
        tg.jvp(tg.sin, np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="primal"):
        tg.jvp(tg.sin, (np.ones(3),), (np.ones(3), np.ones(3)))


def test_an_output_that_does_not_depend_on_the_input_has_a_zero_tangent():
    _, t = tg.jvp(lambda x: (x * 2.0, tg.Variable(np.ones(2))), (np.ones(3),), (np.ones(3),))
    np.testing.assert_array_equal(t[1].numpy(), [0.0, 0.0])


def test_grad_has_aux_and_vjp():
    f = lambda x: (tg.reduce_sum(x * x), x * 2.0)  # noqa: E731
    g, aux = tg.grad(f, has_aux=True)(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(g.numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(aux.numpy(), [2.0, 4.0])
    (value, aux2), g2 = tg.value_and_grad(f, has_aux=True)(np.array([1.0, 2.0]))
    assert float(value) == 5.0
    out, vjp_fn = tg.vjp(lambda x, y: x * y, np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    gx, gy = vjp_fn(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(gx.numpy(), [3.0, 40.0])
    np.testing.assert_array_equal(gy.numpy(), [1.0, 20.0])
    gx2, _ = vjp_fn(np.array([2.0, 0.0]))  # again, with another cotangent
    np.testing.assert_array_equal(gx2.numpy(), [6.0, 0.0])


def test_grad_of_a_structure_of_parameters():
    params = {"w": np.array([1.0, 2.0]), "b": [np.array(0.5), np.array([1.0])]}
    loss = lambda p: tg.reduce_sum(p["w"] * p["w"]) + p["b"][0] * 3.0 + tg.reduce_sum(p["b"][1])  # noqa: E731
    g = tg.grad(loss)(params)
    np.testing.assert_array_equal(g["w"].numpy(), [2.0, 4.0])
    assert float(g["b"][0]) == 3.0
    np.testing.assert_array_equal(g["b"][1].numpy(), [1.0])
