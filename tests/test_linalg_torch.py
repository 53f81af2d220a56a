"""tapegrad.linalg against PyTorch in float64 (values, gradients, torch.func's jvp, vmap and
jacfwd, Hessian-vector products, gradcheck to order 2; see torch_oracle.py), on
well-conditioned inputs built inside each function (a shifted matrix for inverses, M M^T + 3I
for Cholesky, a symmetrised matrix for eigh). Eigenvectors and singular vectors are compared
through functions that do not depend on their signs. Then the cases where the derivative
needs care: repeated eigenvalues, a determinant's sign, zero-size and wrong shapes.
"""

from __future__ import annotations

import numpy as np
import pytest
from torch_oracle import CHECKS, Case, check_gradcheck, torch

import tapegrad as tg

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
la, tla = tg.linalg, torch.linalg


def real(rng, shape):
    return rng.uniform(-1.0, 1.0, shape)


def of(*shapes):
    return lambda rng: [real(rng, shape) for shape in shapes]


CASES: list[Case] = []


def case(id, fn, torch_fn, *shapes, tol=None):
    CASES.append(Case(id, fn, torch_fn, of(*shapes), tol))


def eye(n):
    return np.eye(n)


def teye(n):
    return torch.eye(n, dtype=torch.float64)


def spd(a):  # a symmetric positive-definite matrix made of a (tapegrad)
    return a @ tg.swapaxes(a, -1, -2) + 3.0 * eye(a.shape[-1])


def tspd(a):
    return a @ a.mT + 3.0 * teye(a.shape[-1])


def sym(a):
    return (a + tg.swapaxes(a, -1, -2)) * 0.5


def tsym(a):
    return (a + a.mT) * 0.5


for shape in [(3, 3), (2, 3, 3)]:
    case(f"inv{shape}", lambda a: la.inv(a + 3.0 * eye(3)), lambda a: tla.inv(a + 3.0 * teye(3)), shape)
    case(f"det{shape}", lambda a: la.det(a + 2.0 * eye(3)), lambda a: tla.det(a + 2.0 * teye(3)), shape)
    case(f"slogdet{shape}", lambda a: la.slogdet(a - 2.0 * eye(3))[1],
         lambda a: tla.slogdet(a - 2.0 * teye(3))[1], shape)
    case(f"cholesky{shape}", lambda a: la.cholesky(spd(a)), lambda a: tla.cholesky(tspd(a)), shape)
    case(f"eigh_eigenvalues{shape}", lambda a: la.eigh(sym(a))[0], lambda a: tla.eigh(tsym(a))[0], shape)
    case(f"eigh_eigenvectors_squared{shape}", lambda a: la.eigh(sym(a))[1] ** 2,
         lambda a: tla.eigh(tsym(a))[1] ** 2, shape)
case("cholesky_upper(3, 3)", lambda a: la.cholesky(spd(a), upper=True), lambda a: tla.cholesky(tspd(a), upper=True),
     (3, 3))
case("eigh_eigenvector_products(3, 3)", lambda a: (lambda w, v: v @ (w[:, None] * tg.swapaxes(v, 0, 1)))(
    *la.eigh(sym(a) * 2.0)), lambda a: (lambda w, v: v @ (w[:, None] * v.mT))(*tla.eigh(tsym(a) * 2.0)), (3, 3))
case("solve_vector", lambda a, b: la.solve(a + 3.0 * eye(3), b), lambda a, b: tla.solve(a + 3.0 * teye(3), b),
     (3, 3), (3,))
case("solve_matrix", lambda a, b: la.solve(a + 3.0 * eye(3), b), lambda a, b: tla.solve(a + 3.0 * teye(3), b),
     (3, 3), (3, 2))
case("solve_broadcast", lambda a, b: la.solve(a + 3.0 * eye(3), b),
     lambda a, b: tla.solve(a + 3.0 * teye(3), b.expand(a.shape[:-2] + b.shape)), (2, 3, 3), (3, 2))
for shape in [(3, 3), (4, 3), (3, 4)]:
    case(f"svd_singular_values{shape}", lambda a: la.svd(a, full_matrices=False)[1], tla.svdvals, shape)
    case(f"qr_Q{shape}", lambda a: la.qr(a)[0], lambda a: tla.qr(a)[0], shape)
    case(f"qr_R{shape}", lambda a: la.qr(a)[1], lambda a: tla.qr(a)[1], shape)
for shape in [(4, 3), (3, 4)]:
    case(f"pinv{shape}", la.pinv, tla.pinv, shape)
    case(f"svd_U_squared{shape}", lambda a: la.svd(a, full_matrices=False)[0] ** 2,
         lambda a: tla.svd(a, full_matrices=False)[0] ** 2, shape)
    case(f"svd_Vh_squared{shape}", lambda a: la.svd(a, full_matrices=False)[2] ** 2,
         lambda a: tla.svd(a, full_matrices=False)[2] ** 2, shape)
case("svd_full_matrices_singular_values(4, 3)", lambda a: la.svd(a)[1], tla.svdvals, (4, 3))
case("svd_batched(2, 3, 2)", lambda a: la.svd(a, full_matrices=False)[1], tla.svdvals, (2, 3, 2))
case("qr_batched(2, 3, 2)", lambda a: la.qr(a)[1], lambda a: tla.qr(a)[1], (2, 3, 2))
case("norm_nuclear(3, 2)", lambda a: la.norm(a, "nuc"), lambda a: tla.norm(a, "nuc"), (3, 2))
case("norm_spectral(2, 3)", lambda a: la.norm(a, 2), lambda a: tla.norm(a, 2), (2, 3))


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_against_torch(case, check):
    CHECKS[check](case)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gradcheck_to_second_order(case):
    check_gradcheck(case)


# -- where the derivative needs care --------------------------------------------------------------------------
def test_repeated_eigenvalues_give_finite_gradients():
    # sum(w^2) = |A|_F^2 whatever the eigenvectors: its gradient is 2A, also where eigenvalues repeat
    a = tg.Variable(np.diag([1.0, 1.0, 2.0]))
    with tg.GradientTape() as tape:
        w, v = la.eigh(a)
        total = tg.reduce_sum(w * w)
    np.testing.assert_allclose(tape.gradient(total, a).numpy(), 2 * a.numpy(), atol=1e-12)
    _, tangent = tg.jvp(lambda x: la.eigh(x)[0], (a.numpy(),), (np.eye(3),))
    np.testing.assert_allclose(tangent.numpy(), [1.0, 1.0, 1.0], atol=1e-12)


def test_slogdet_sign_and_det_of_a_negative_determinant():
    a = np.array([[0.0, 2.0], [3.0, 1.0]])
    sign, logabsdet = la.slogdet(a)
    assert float(sign) == -1.0
    np.testing.assert_allclose(float(logabsdet), np.log(6.0))
    x = tg.Variable(a)
    with tg.GradientTape(persistent=True) as tape:
        d = la.det(x)
        s, log = la.slogdet(x)
    np.testing.assert_allclose(tape.gradient(d, x).numpy(), np.linalg.det(a) * np.linalg.inv(a).T)
    np.testing.assert_allclose(tape.gradient(log, x).numpy(), np.linalg.inv(a).T)
    np.testing.assert_array_equal(tape.gradient(s, x, unconnected_gradients="zero").numpy(), np.zeros((2, 2)))


def test_svd_of_a_wide_matrix_with_full_matrices_differentiates_its_leading_part():
    # like PyTorch: the extra rows of Vh (any basis of the complement) get no cotangent
    a = np.random.default_rng(5).normal(size=(2, 4))
    u, s, vh = la.svd(a)
    assert (u.shape, s.shape, vh.shape) == ((2, 2), (2,), (4, 4))
    np.testing.assert_allclose((u.numpy() * s.numpy()) @ vh.numpy()[:2], a, atol=1e-12)
    tg.gradcheck(lambda x: la.svd(x)[1], [a], order=2)
    tg.gradcheck(lambda x: la.svd(x)[2][:2] ** 2, [a], order=1)


def test_qr_complete_of_a_tall_matrix_has_no_derivative():
    x = tg.Variable(np.random.default_rng(6).normal(size=(4, 2)))
    with tg.GradientTape() as tape:
        q, r = la.qr(x, mode="complete")
    assert q.shape == (4, 4) and r.shape == (4, 2)
    with pytest.raises(ValueError, match="qr: mode='complete'.*use mode='reduced'"):
        tape.gradient(r, x)
    with tg.GradientTape() as tape:
        r = la.qr(x, mode="r")
    np.testing.assert_allclose(tape.gradient(r, x).numpy(), tg.grad(lambda y: tg.reduce_sum(la.qr(y)[1]))(x).numpy())


@pytest.mark.parametrize("call, message", [
    (lambda: la.inv(np.ones((2, 3))), r"inv: argument a must be square .* shape \(2, 3\)"),
    (lambda: la.det(np.ones(3)), r"det: argument a must have at least 2 dimensions .* shape \(3,\)"),
    (lambda: la.inv(np.ones((2, 2))), r"inv: Singular matrix \(a: ndarray of shape \(2, 2\)"),
    (lambda: la.solve(np.eye(3), np.ones((4, 2))), r"solve: a of shape \(3, 3\) and b of shape \(4, 2\)"),
    (lambda: la.solve(np.eye(3), np.ones(4)), r"solve: a of shape \(3, 3\) and b of shape \(4,\)"),
    (lambda: la.eigh(np.eye(2), UPLO="X"), r"eigh: UPLO must be 'L' or 'U'"),
    (lambda: la.qr(np.eye(2), mode="raw"), r"qr: mode must be"),
    (lambda: la.cholesky(-np.eye(2)), r"cholesky: Matrix is not positive definite"),
    (lambda: la.inv(tg.Variable(np.eye(2, dtype=np.int64))), r"inv: argument a is a Variable of dtype int64"),
])
def test_errors_name_the_op_the_argument_and_the_shape(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_integer_arrays_are_computed_in_float64_as_numpy_does():
    got = la.inv(np.array([[2, 0], [0, 4]]))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got.numpy(), [[0.5, 0.0], [0.0, 0.25]])


def test_float32_stays_float32():
    a = np.eye(3, dtype=np.float32) * 2
    for result in (la.inv(a), la.det(a), la.eigh(a)[0], la.svd(a)[1], la.qr(a)[1], la.cholesky(a), la.pinv(a)):
        assert result.dtype == np.float32
