"""NumPy's differentiable core beyond the PyTorch comparisons: the numerics that the rules are
written for (stable derivatives, exact zeros, zero gradients), NumPy's semantics at the edges
(einsum's implicit output, ``%``, shapes), and errors that name the op, argument and shapes."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg


def gradient(f, x, seed=None):
    v = tg.Variable(np.asarray(x, dtype=np.float64))
    with tg.GradientTape() as tape:
        y = f(v)
    return tape.gradient(y, v, output_gradients=seed, unconnected_gradients="zero").numpy()


def test_logaddexp_gradient_is_stable_for_large_and_infinite_inputs():
    x = np.array([1e4, -1e4, 0.0, -np.inf])
    y = np.array([1e4 + 1.0, 1e4, -np.inf, -np.inf])
    np.testing.assert_allclose(gradient(lambda v: tg.logaddexp(v, y), x),
                               [1 / (1 + np.e), 0.0, 1.0, 0.5], rtol=1e-12)
    assert np.isfinite(tg.logaddexp(x, y).numpy()[:3]).all()


def test_arccosh_and_arcsin_derivatives_keep_their_digits_near_the_edge():
    x = 1.0 + 2.0 ** -40  # (x - 1)(x + 1) is exact here; x * x - 1 would lose ~half the digits
    d = x - 1.0
    np.testing.assert_allclose(gradient(tg.arccosh, x), 1 / np.sqrt(d * (2 + d)), rtol=1e-14)
    s = 1.0 - 2.0 ** -40
    e = 1.0 - s
    np.testing.assert_allclose(gradient(tg.arcsin, s), 1 / np.sqrt(e * (2 - e)), rtol=1e-14)


def test_rounding_has_a_zero_gradient_even_under_an_infinite_cotangent():
    x = np.array([0.4, 1.5, -2.5])
    for op in (tg.floor, tg.ceil, tg.round, lambda v: tg.round(v, 1)):
        np.testing.assert_array_equal(gradient(op, x, seed=np.full(3, np.inf)), np.zeros(3))
    np.testing.assert_array_equal(tg.round(x).numpy(), np.round(x))  # halves to even, as NumPy


def test_mod_operator_follows_python_and_numpy_signs():
    x = tg.Variable(np.array([5.5, -5.5, 5.5]))
    y = np.array([2.0, 2.0, -2.0])
    np.testing.assert_array_equal((x % y).numpy(), np.mod(x.numpy(), y))
    np.testing.assert_array_equal((7.0 % tg.Variable(np.array([3.0, -3.0]))).numpy(), [1.0, -2.0])
    with tg.GradientTape() as tape:
        r = tg.reduce_sum(x % y)
    np.testing.assert_array_equal(tape.gradient(r, x).numpy(), [1.0, 1.0, 1.0])


def test_cumprod_gradient_is_exact_with_several_zeros_to_second_order():
    x = np.array([2.0, 0.0, 3.0, 0.0, 1.5])
    # d/dx_i of sum(cumprod): the products of the others in every prefix that holds x_i
    expected = [1 + 0, 2 + 2 * 3 + 0 + 0, 0.0, 0.0, 0.0]
    np.testing.assert_array_equal(gradient(lambda v: tg.reduce_sum(tg.cumprod(v, 0)), x), expected)
    tg.gradcheck(lambda v: tg.cumprod(v, 0), [x], order=2)


def test_euclidean_norms_have_a_zero_gradient_at_zero():
    for f in (tg.norm, lambda v: tg.norm(v, axis=0), lambda v: tg.norm(v, "fro")):
        np.testing.assert_array_equal(gradient(f, np.zeros((2, 2))), np.zeros((2, 2)))


def test_var_and_std_follow_numpy_with_ddof_keepdims_and_tuples_of_axes():
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    for axis, ddof, keepdims in [(None, 0, False), ((0, 2), 1, True), (-1, 2.5, False)]:
        np.testing.assert_allclose(tg.var(x, axis, ddof, keepdims).numpy(), np.var(x, axis, ddof=ddof,
                                                                                  keepdims=keepdims))
        np.testing.assert_allclose(tg.std(x, axis, ddof, keepdims).numpy(), np.std(x, axis, ddof=ddof,
                                                                                  keepdims=keepdims))


def test_einsum_implicit_output_ellipsis_and_broadcasting_follow_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
    for subscripts, operands in [("ab,bA", (a, rng.normal(size=(3, 2)))), ("ij,jk", (a, b)),
                                 ("...ij->...ji", (rng.normal(size=(2, 1, 3, 2)),)),
                                 ("...j,...j->...", (rng.normal(size=(1, 3)), a)), ("ii", (b[:, :3],)),
                                 ("i,i", (a[0], a[1]))]:
        np.testing.assert_allclose(tg.einsum(subscripts, *operands).numpy(), np.einsum(subscripts, *operands),
                                   err_msg=subscripts)
    # a size-1 axis that broadcasts gets its cotangent summed back
    small = tg.Variable(rng.normal(size=(1, 3)))
    with tg.GradientTape() as tape:
        total = tg.reduce_sum(tg.einsum("ij,ij->ij", small, a))
    np.testing.assert_allclose(tape.gradient(total, small).numpy(), a.sum(axis=0, keepdims=True))


def test_sort_sends_each_gradient_to_the_element_it_came_from():
    x = np.array([[3.0, 1.0, 2.0]])
    weights = np.array([[10.0, 20.0, 30.0]])
    np.testing.assert_array_equal(gradient(lambda v: tg.reduce_sum(tg.sort(v) * weights), x), [[30.0, 10.0, 20.0]])
    np.testing.assert_array_equal(tg.argsort(x, axis=None).numpy(), [1, 2, 0])


@pytest.mark.parametrize("call, message", [
    (lambda: tg.einsum("ij,jk->ik", np.ones((2, 3)), np.ones((4, 2))),
     r"einsum: index 'j' has size 3 in operand 0 \(shape \(2, 3\)\) but 4 in operand 1 \(shape \(4, 2\)\)"),
    (lambda: tg.einsum("ij", np.ones(3)), r"einsum: operand 0 has shape \(3,\) \(1 axes\), but its subscripts 'ij'"),
    (lambda: tg.einsum("ij,j", np.ones((2, 2))), r"einsum: subscripts 'ij,j' name 2 operand\(s\), but 1 were given"),
    (lambda: tg.einsum("i1", np.ones((2, 2))), r"einsum: subscripts 'i1' contain '1'"),
    (lambda: tg.einsum("ij->k", np.ones((2, 2))), r"einsum: output index 'k' of 'ij->k' is not in any operand"),
    (lambda: tg.tensordot(np.ones((2, 3)), np.ones((2, 3)), 1),
     r"tensordot: shape mismatch for the sum: axis 1 of a \(shape \(2, 3\)\) has length 3, axis 0 of b"),
    (lambda: tg.dot(np.ones((2, 3)), np.ones(2)), r"dot: shapes \(2, 3\) and \(2,\) are not aligned"),
    (lambda: tg.cross(np.ones(4), np.ones(3)), r"cross: the vectors of a \(axis 0 of shape \(4,\)\) have 4"),
    (lambda: tg.take_along_axis(np.ones((2, 3)), np.zeros(2, int), 1),
     r"take_along_axis: indices of shape \(2,\) must have as many axes as arr \(shape \(2, 3\)\)"),
    (lambda: tg.take_along_axis(np.ones((2, 3)), np.zeros((2, 1)), 1), r"take_along_axis: indices must be integers"),
    (lambda: tg.pad(np.ones(3), 1, mode="mean"), r"pad: mode 'mean' is not supported"),
    (lambda: tg.pad(np.ones((2, 2)), ((1, 2, 3),)), r"pad: argument pad_width=\(\(1, 2, 3\),\) does not fit"),
    (lambda: tg.diagonal(np.ones(3)), r"diagonal: x must have at least 2 dimensions, got shape \(3,\)"),
    (lambda: tg.diag(np.ones((2, 2, 2))), r"diag: v must be 1-d or 2-d, got shape \(2, 2, 2\)"),
    (lambda: tg.cumsum(np.ones((2, 3)), axis=2), r"cumsum: argument axis=2: axis 2 is out of range for an input of"),
    (lambda: tg.moveaxis(np.ones((2, 3)), (0, 1), 0), r"moveaxis: source \(0, 1\) and destination 0 must have"),
    (lambda: tg.norm(np.ones((2, 2, 2)), 2), r"norm: with ord=2 and axis None, x must be 1-d or 2-d"),
    (lambda: tg.norm(np.ones(3), "fro", axis=0), r"norm: invalid norm order 'fro' for vectors"),
    (lambda: tg.tile(np.ones(2), (2, -1)), r"tile: reps \(2, -1\) has a negative count"),
    (lambda: tg.diff(np.ones(3), -1), r"diff: order n must be >= 0, got -1"),
    (lambda: tg.var(np.ones(3), ddof="1"), r"var: argument ddof must be a number"),
])
def test_errors_name_the_op_the_argument_and_the_values(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_the_new_ops_reach_the_builder_and_the_package():
    g = tg.NeuralNetworks("float64").gradient()
    assert g.einsum is tg.einsum and g.norm is tg.norm and g.linalg is tg.linalg
    a = g.Variable([[2.0, 1.0], [1.0, 3.0]])
    with g.GradientTape() as tape:
        y = g.linalg.det(a) + g.trace(a)
    np.testing.assert_allclose(tape.gradient(y, a).numpy(), [[4.0, -1.0], [-1.0, 3.0]])


def _sweep_cases():
    from test_compiled_ops import CASES

    return sorted(name for name, (_, _, order) in CASES.items() if order >= 1)


@pytest.mark.parametrize("name", _sweep_cases())
def test_jacrev_maps_the_vjp_rules_over_a_batch_of_cotangents(name):
    # jacrev is vmap of the VJP: every rule's primitives run batched; it must equal the
    # Jacobian computed one cotangent at a time
    from test_compiled_ops import CASES, arg_sets

    fn, makers, _ = CASES[name]
    (args,) = arg_sets(makers, seeds=(3,))
    floats = [k for k, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]

    def of(*xs):
        call = list(args)
        for k, x in zip(floats, xs):
            call[k] = x
        out = fn(*call)
        if isinstance(out, (list, tuple)):
            out = tg.concat([tg.reshape(o, (-1,)) for o in out if o.dtype.kind == "f"], 0)
        return out

    nums = tuple(range(len(floats)))
    got = tg.jacrev(of, argnums=nums)(*[args[k] for k in floats])
    want = tg.jacobian(of, argnums=nums)(*[tg.Variable(args[k]) for k in floats])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
