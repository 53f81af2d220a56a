"""grad, value_and_grad, jacobian, hessian, gradcheck and custom_gradient."""

import numpy as np
import pytest

import tapegrad as tg


def f_scalar(x):
    return tg.reduce_sum(tg.sin(x) * x**2)


def test_grad_and_value_and_grad():
    x0 = np.array([0.3, -1.2, 2.0])
    g = tg.grad(f_scalar)(x0)
    np.testing.assert_allclose(g.value(), np.cos(x0) * x0**2 + 2 * x0 * np.sin(x0), rtol=1e-6)
    value, g2 = tg.value_and_grad(f_scalar)(x0)
    assert float(value) == pytest.approx(np.sum(np.sin(x0) * x0**2), rel=1e-6)
    np.testing.assert_allclose(g2.value(), g.value())


def test_grad_argnums():
    def f(a, b, c):
        return tg.reduce_sum(a * b + c)

    ga, gc = tg.grad(f, argnums=(0, 2))(np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([5.0, 6.0]))
    np.testing.assert_array_equal(ga.value(), [3.0, 4.0])
    np.testing.assert_array_equal(gc.value(), [1.0, 1.0])
    with pytest.raises(ValueError, match="argnums"):
        tg.grad(f, argnums=5)(1.0, 2.0, 3.0)


def test_grad_requires_scalar_output():
    with pytest.raises(ValueError, match="scalar"):
        tg.grad(lambda x: x * 2.0)(np.ones(3))


def test_grad_of_grad():
    d2 = tg.grad(tg.grad(lambda x: x**4))(np.float64(1.5))
    assert float(d2) == pytest.approx(12 * 1.5**2)
    d3 = tg.grad(tg.grad(tg.grad(lambda x: tg.sin(x))))(np.float64(0.2))
    assert float(d3) == pytest.approx(-np.cos(0.2))


def test_jacobian_and_hessian():
    A = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])

    def f(x):
        return tg.tanh(tg.matmul(A, x))

    x0 = np.array([0.1, 0.2, -0.3])
    J = tg.jacobian(f)(x0)
    t = np.tanh(A @ x0)
    np.testing.assert_allclose(J.value(), (1 - t**2)[:, None] * A, rtol=1e-12)

    def s(x):
        return tg.reduce_sum(x**3) + x[0] * x[1]

    H = tg.hessian(s)(x0)
    expected = np.diag(6 * x0)
    expected[0, 1] = expected[1, 0] = 1.0
    np.testing.assert_allclose(H.value(), expected, atol=1e-12)


def test_hessian_matches_torch():
    torch = pytest.importorskip("torch")
    x0 = np.array([0.4, -0.7, 1.1])

    def f(x):
        return tg.reduce_sum(tg.exp(x[0] * x) * tg.sin(x)) + tg.logsumexp(x * x)

    def ft(x):
        return torch.sum(torch.exp(x[0] * x) * torch.sin(x)) + torch.logsumexp(x * x, 0)

    expected = torch.autograd.functional.hessian(ft, torch.tensor(x0)).numpy()
    np.testing.assert_allclose(tg.hessian(f)(x0).value(), expected, rtol=1e-10)


def test_gradcheck_passes_and_reports_worst_element():
    assert tg.gradcheck(lambda x, y: x * tg.exp(y), [np.ones((2, 3)), np.zeros(3)], order=2)

    @tg.custom_gradient
    def wrong_square(x):
        def backward(dy):
            return dy * 2.0 * x + tg.where(tg.equal(tg.reshape(tg.gather(tg.reshape(x, (-1,)), [0]), ()), x),
                                           0.5, 0.0)
        return x * x, backward

    with pytest.raises(tg.GradcheckError) as info:
        tg.gradcheck(wrong_square, [np.array([[1.0, 2.0], [3.0, 4.0]])])
    message = str(info.value)
    assert "index (0, 0)" in message and "analytic" in message and "numerical" in message


def test_gradcheck_order_2_detects_wrong_second_derivative():
    @tg.custom_gradient
    def bad(x):
        def backward(dy):
            # right first derivative (2x), but built from a constant: its own derivative is 0
            return dy * tg.stop_gradient(2.0 * x)
        return x * x, backward

    assert tg.gradcheck(bad, [np.array([1.0, 2.0])], order=1)
    with pytest.raises(tg.GradcheckError, match="second derivative"):
        tg.gradcheck(bad, [np.array([1.0, 2.0])], order=2)


def test_custom_gradient_is_used_and_differentiable():
    @tg.custom_gradient
    def clip_grad(x):
        def backward(dy):
            return tg.clip_by_value(dy, -1.0, 1.0)
        return tg.nop(x), backward

    x = tg.Variable([1.0, 2.0])
    with tg.GradientTape() as tape:
        y = tg.reduce_sum(clip_grad(x) * 10.0)
    np.testing.assert_array_equal(tape.gradient(y, x).value(), [1.0, 1.0])

    @tg.custom_gradient
    def cube(x):
        return x * x * x, lambda dy: dy * 3.0 * x * x

    x = tg.Variable(2.0, dtype="float64")
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            y = cube(x)
        dy = inner.gradient(y, x)
    assert float(dy) == 12.0 and float(outer.gradient(dy, x)) == 12.0


def test_custom_gradient_errors():
    @tg.custom_gradient
    def not_a_pair(x):
        return x

    with pytest.raises(TypeError, match="must return \\(output, backward\\)"):
        not_a_pair(tg.Variable(1.0))

    @tg.custom_gradient
    def two_grads(x):
        return x * 1.0, lambda dy: (dy, dy)

    x = tg.Variable(1.0)
    with tg.GradientTape() as tape:
        y = two_grads(x)
    with pytest.raises(ValueError, match="returned 2 gradient"):
        tape.gradient(y, x)
