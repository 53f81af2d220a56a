"""Matrix decompositions (``tapegrad.linalg``): cholesky, eigh, svd, qr.

Each is one primitive on stacks of matrices whose several results are packed into one
array (eigh: the eigenvalues as row 0 above the eigenvectors; svd and qr: the flattened
factors side by side), which the public op splits with slices and reshapes. So the
machinery sees ordinary one-output primitives, and a result that is not used gets a zero
cotangent. The VJP and JVP rules are written with matmul, solve and elementwise primitives
(differentiable to any order):

* cholesky (PyTorch's convention: the gradient is symmetric): ``gA = L^-T Phi*(L^T gL) L^-1``
  and ``dL = L Phi(L^-1 dA L^-T)``, Phi taking the lower triangle with the diagonal halved;
* eigh (symmetric gradient): ``gA = V (diag(gw) + F o skew(V^T gV)) V^T`` with
  ``F_ij = 1 / (w_j - w_i)``, set to 0 where two eigenvalues are equal; a loss that depends
  on eigenvectors of a repeated eigenvalue has no derivative, and gets none from that pair;
* svd (Townsend's formulas), with ``F_ij = 1 / (s_j^2 - s_i^2)`` masked the same way and
  1/s taken as 0 for zero singular values. With ``full_matrices=True`` and a non-square
  matrix, the extra columns of U or rows of Vh (any basis of a complement) get no derivative,
  as in PyTorch;
* qr: TensorFlow's and JAX's formulas for m >= n, and for m < n the split A = [X | Y] with X
  square. ``mode='complete'`` with m > n has no derivative (the extra columns of Q are any
  basis of a complement): its gradient raises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpValueError
from ._compose import dtype_of, result, shape_of
from .elementwise import equal_p, where_p
from .indexing import getitem_p
from .linalg import matmul_p
from .linalg_inverse import matrices, mT, solve_p
from .reduction import reduce_sum_p
from .shape import concat_p, expand_dims_p, reshape_p

ArrayLike = Any


def _cols(x: Any, start: int, stop: int) -> Any:
    rank = len(shape_of(x))
    return getitem_p(x, index=(slice(None),) * (rank - 1) + (slice(start, stop),))


def _rows(x: Any, start: int, stop: int) -> Any:
    rank = len(shape_of(x))
    return getitem_p(x, index=(slice(None),) * (rank - 2) + (slice(start, stop), slice(None)))


def _row_vector(v: Any) -> Any:
    """v[..., None, :]: broadcasts along the rows (scales column j by v_j)."""
    return expand_dims_p(v, axes=(len(shape_of(v)) - 1,))


def _column_vector(v: Any) -> Any:
    """v[..., :, None]: scales row i by v_i."""
    return expand_dims_p(v, axes=(len(shape_of(v)),))


def _masked_reciprocal(d: Any) -> Any:
    """1 / d, and 0 where d == 0 (the double-where pattern: no inf reaches a gradient)."""
    zero = equal_p(d, 0)
    return where_p(zero, 0, 1 / where_p(zero, 1, d))


def _differences_reciprocal(v: Any) -> Any:
    """F_ij = 1 / (v_j - v_i), 0 where v_i == v_j (the diagonal included)."""
    return _masked_reciprocal(_row_vector(v) - _column_vector(v))


def _constant(matrix: np.ndarray, like: Any) -> np.ndarray:
    return matrix.astype(dtype_of(like))


def _diagonal_part(m: Any) -> Any:
    """The diagonal of each square matrix, as a vector."""
    n = shape_of(m)[-1]
    return reduce_sum_p(m * _constant(np.eye(n), m), axis=(len(shape_of(m)) - 2,), keepdims=False)


def _diag_embed(v: Any) -> Any:
    n = shape_of(v)[-1]
    return _row_vector(v) * _constant(np.eye(n), v)


def _right_solve(x: Any, r: Any) -> Any:
    """x r^-1."""
    return mT(solve_p(mT(r), mT(x)))


# -- cholesky ------------------------------------------------------------------------------------
cholesky_p = Primitive("cholesky", lambda x: np.linalg.cholesky(x), ("a",))


def _cholesky_vjp(g: Any, out: Any, x: Any) -> Any:
    n = shape_of(out)[-1]
    lower = matmul_p(out, g, transpose_a=True) * _constant(np.tri(n), out)  # tril(L^T gL)
    sym = (lower + mT(lower * _constant(np.tri(n, k=-1), out))) * 0.5
    left = solve_p(mT(out), sym)  # L^-T sym
    return mT(solve_p(mT(out), mT(left)))  # (L^-T sym) L^-1


def _cholesky_jvp(t: Any, out: Any, x: Any) -> Any:
    n = shape_of(out)[-1]
    sym = (t + mT(t)) * 0.5
    inner = mT(solve_p(out, mT(solve_p(out, sym))))  # L^-1 dA L^-T
    phi = inner * _constant(np.tri(n, k=-1) + 0.5 * np.eye(n), out)
    return matmul_p(out, phi)


cholesky_p.defvjp(_cholesky_vjp)
cholesky_p.defjvp(_cholesky_jvp)


# -- eigh ------------------------------------------------------------------------------------------
def _eigh_impl(x: Any, UPLO: str) -> np.ndarray:  # noqa: N803 - NumPy's argument name
    w, v = np.linalg.eigh(x, UPLO)
    return np.concatenate([w[..., None, :], v], axis=-2)


eigh_p = Primitive("eigh", _eigh_impl, ("a",))


def _eigh_parts(packed: Any) -> tuple[Any, Any]:
    n = shape_of(packed)[-1]
    rank = len(shape_of(packed))
    w = getitem_p(packed, index=(slice(None),) * (rank - 2) + (0, slice(None)))
    return w, _rows(packed, 1, n + 1)


def _eigh_vjp(g: Any, out: Any, x: Any, UPLO: str) -> Any:  # noqa: N803
    w, v = _eigh_parts(out)
    gw, gv = _eigh_parts(g)
    vtgv = matmul_p(v, gv, transpose_a=True)
    inner = (vtgv - mT(vtgv)) * 0.5 * _differences_reciprocal(w) + _diag_embed(gw)
    return matmul_p(matmul_p(v, inner), v, transpose_b=True)


def _eigh_jvp(t: Any, out: Any, x: Any, UPLO: str) -> Any:  # noqa: N803
    w, v = _eigh_parts(out)
    m = matmul_p(matmul_p(v, (t + mT(t)) * 0.5, transpose_a=True), v)  # V^T dA V
    dv = matmul_p(v, m * _differences_reciprocal(w))
    return concat_p(_row_vector(_diagonal_part(m)), dv, axis=len(shape_of(out)) - 2)


eigh_p.defvjp(_eigh_vjp)
eigh_p.defjvp(_eigh_jvp)


# -- svd ----------------------------------------------------------------------------------------------
def _svd_sizes(shape: tuple[int, ...], full_matrices: bool) -> tuple[int, int, int, int, int]:
    m, n = shape[-2:]
    k = min(m, n)
    return m, n, k, (m if full_matrices else k), (n if full_matrices else k)


def _svd_impl(x: Any, full_matrices: bool) -> np.ndarray:
    u, s, vh = np.linalg.svd(x, full_matrices=full_matrices)
    lead = np.shape(x)[:-2]
    return np.concatenate([u.reshape(lead + (-1,)), s, vh.reshape(lead + (-1,))], axis=-1)


svd_p = Primitive("svd", _svd_impl, ("a",))


def _svd_parts(packed: Any, shape: tuple[int, ...], full_matrices: bool) -> tuple[Any, Any, Any]:
    """U (m x mu), s (k), Vh (kv x n) from a packed result or cotangent."""
    m, n, k, mu, kv = _svd_sizes(shape, full_matrices)
    lead = tuple(shape[:-2])
    u = reshape_p(_cols(packed, 0, m * mu), shape=lead + (m, mu))
    s = _cols(packed, m * mu, m * mu + k)
    vh = reshape_p(_cols(packed, m * mu + k, m * mu + k + kv * n), shape=lead + (kv, n))
    return u, s, vh


def _pack(parts: list, lead: tuple[int, ...]) -> Any:
    return concat_p(*[reshape_p(p, shape=lead + (-1,)) if len(shape_of(p)) > len(lead) + 1 else p
                      for p in parts], axis=len(lead))


def _svd_vjp(g: Any, out: Any, x: Any, full_matrices: bool) -> Any:
    shape = shape_of(x)
    m, n, k, mu, kv = _svd_sizes(shape, full_matrices)
    u, s, vh = _svd_parts(out, shape, full_matrices)
    gu, gs, gvh = _svd_parts(g, shape, full_matrices)
    if mu > k:  # the first k columns only (PyTorch's narrowing)
        u, gu = _cols(u, 0, k), _cols(gu, 0, k)
    if kv > k:
        vh, gvh = _rows(vh, 0, k), _rows(gvh, 0, k)
    v, gv = mT(vh), mT(gvh)
    f = _differences_reciprocal(s * s)
    utgu = matmul_p(u, gu, transpose_a=True)
    vtgv = matmul_p(v, gv, transpose_a=True)
    inner = ((utgu - mT(utgu)) * f) * _row_vector(s) + _diag_embed(gs) + _column_vector(s) * ((vtgv - mT(vtgv)) * f)
    grad = matmul_p(matmul_p(u, inner), vh)
    s_inv = _row_vector(_masked_reciprocal(s))
    if m > k:  # (I - U U^T) gU S^-1 V^T
        grad = grad + matmul_p((gu - matmul_p(u, utgu)) * s_inv, vh)
    if n > k:  # U S^-1 gV^T (I - V V^T)
        grad = grad + matmul_p(u, mT((gv - matmul_p(v, vtgv)) * s_inv))
    return grad


def _svd_jvp(t: Any, out: Any, x: Any, full_matrices: bool) -> Any:
    shape = shape_of(x)
    m, n, k, mu, kv = _svd_sizes(shape, full_matrices)
    lead = tuple(shape[:-2])
    u, s, vh = _svd_parts(out, shape, full_matrices)
    if mu > k:
        u = _cols(u, 0, k)
    if kv > k:
        vh = _rows(vh, 0, k)
    v = mT(vh)
    dp = matmul_p(matmul_p(u, t, transpose_a=True), v)  # U^T dA V
    f = _differences_reciprocal(s * s)
    s_row, s_col = _row_vector(s), _column_vector(s)
    du = matmul_p(u, f * (dp * s_row + s_col * mT(dp)))
    dv = matmul_p(v, f * (s_col * dp + mT(dp) * s_row))
    s_inv = _row_vector(_masked_reciprocal(s))
    if m > k:
        dav = matmul_p(t, v)
        du = du + (dav - matmul_p(u, matmul_p(u, dav, transpose_a=True))) * s_inv
    if n > k:
        datu = matmul_p(t, u, transpose_a=True)
        dv = dv + (datu - matmul_p(v, matmul_p(v, datu, transpose_a=True))) * s_inv
    dvh = mT(dv)
    if mu > k:  # the extra columns have no derivative
        du = concat_p(du, np.zeros(lead + (m, mu - k), dtype_of(out)), axis=len(lead) + 1)
    if kv > k:
        dvh = concat_p(dvh, np.zeros(lead + (kv - k, n), dtype_of(out)), axis=len(lead))
    return _pack([du, _diagonal_part(dp), dvh], lead)


svd_p.defvjp(_svd_vjp)
svd_p.defjvp(_svd_jvp)


# -- qr ------------------------------------------------------------------------------------------------
def _qr_sizes(shape: tuple[int, ...], mode: str) -> tuple[int, int, int]:
    m, n = shape[-2:]
    return m, n, (m if mode == "complete" else min(m, n))


def _qr_impl(x: Any, mode: str) -> np.ndarray:
    q, r = np.linalg.qr(x, mode=mode)
    lead = np.shape(x)[:-2]
    return np.concatenate([q.reshape(lead + (-1,)), r.reshape(lead + (-1,))], axis=-1)


qr_p = Primitive("qr", _qr_impl, ("a",))


def _qr_parts(packed: Any, shape: tuple[int, ...], mode: str) -> tuple[Any, Any]:
    m, n, c = _qr_sizes(shape, mode)
    lead = tuple(shape[:-2])
    return (reshape_p(_cols(packed, 0, m * c), shape=lead + (m, c)),
            reshape_p(_cols(packed, m * c, m * c + c * n), shape=lead + (c, n)))


def _qr_square_or_tall_vjp(q: Any, r: Any, gq: Any, gr: Any) -> Any:
    qtgq = matmul_p(q, gq, transpose_a=True)
    rgrt = matmul_p(r, gr, transpose_b=True)
    n = shape_of(r)[-1]
    lower = (qtgq - mT(qtgq) + rgrt - mT(rgrt)) * _constant(np.tri(n), r)
    return matmul_p(q, gr + _right_solve(lower, mT(r))) + _right_solve(gq - matmul_p(q, qtgq), mT(r))


def _qr_vjp(g: Any, out: Any, x: Any, mode: str) -> Any:
    shape = shape_of(x)
    m, n, _ = _qr_sizes(shape, mode)
    if mode == "complete" and m > n:
        raise OpValueError(f"qr: mode='complete' of a matrix with more rows than columns (shape {shape}) has no "
                           f"derivative (its extra columns of Q are any basis of a complement); use mode='reduced'")
    q, r = _qr_parts(out, shape, mode)
    gq, gr = _qr_parts(g, shape, mode)
    if m >= n:
        return _qr_square_or_tall_vjp(q, r, gq, gr)
    y = _cols(x, m, n)
    g_right = _cols(gr, m, n)
    g_left = _qr_square_or_tall_vjp(q, _cols(r, 0, m), gq + matmul_p(y, g_right, transpose_b=True),
                                    _cols(gr, 0, m))
    return concat_p(g_left, matmul_p(q, g_right), axis=len(shape) - 1)


def _qr_square_or_tall_jvp(q: Any, r: Any, t: Any) -> tuple[Any, Any]:
    n = shape_of(r)[-1]
    t_rinv = _right_solve(t, r)
    qt_t_rinv = matmul_p(q, t_rinv, transpose_a=True)
    below = qt_t_rinv * _constant(np.tri(n, k=-1), r)
    omega = below - mT(below)
    return matmul_p(q, omega - qt_t_rinv) + t_rinv, matmul_p(qt_t_rinv - omega, r)


def _qr_jvp(t: Any, out: Any, x: Any, mode: str) -> Any:
    shape = shape_of(x)
    m, n, _ = _qr_sizes(shape, mode)
    lead = tuple(shape[:-2])
    if mode == "complete" and m > n:
        raise OpValueError(f"qr: mode='complete' of a matrix with more rows than columns (shape {shape}) has no "
                           f"derivative; use mode='reduced'")
    q, r = _qr_parts(out, shape, mode)
    if m >= n:
        dq, dr = _qr_square_or_tall_jvp(q, r, t)
    else:
        dq, dr_left = _qr_square_or_tall_jvp(q, _cols(r, 0, m), _cols(t, 0, m))
        dr_right = matmul_p(dq, _cols(x, m, n), transpose_a=True) + matmul_p(q, _cols(t, m, n), transpose_a=True)
        dr = concat_p(dr_left, dr_right, axis=len(shape) - 1)
    return _pack([dq, dr], lead)


qr_p.defvjp(_qr_vjp)
qr_p.defjvp(_qr_jvp)

PRIMITIVES = (cholesky_p, eigh_p, svd_p, qr_p)  # one input, stacks of matrices


# -- public ops -----------------------------------------------------------------------------------------
def cholesky(a: ArrayLike, *, upper: bool = False) -> Variable:
    """The Cholesky factor L (lower; ``upper=True``: L^T) of each symmetric positive-definite
    matrix, a = L L^T. Like NumPy it reads the lower triangle; its gradient is symmetric."""
    lower = cholesky_p.apply(matrices(a, "cholesky"))
    return result(mT(lower)) if upper else lower


def eigh(a: ArrayLike, UPLO: str = "L") -> tuple[Variable, Variable]:  # noqa: N803 - NumPy's name
    """``(eigenvalues, eigenvectors)`` of each symmetric matrix, eigenvalues ascending, the
    eigenvectors as columns. Gradients are symmetric; equal eigenvalues give no 1/0 terms."""
    if UPLO not in ("L", "U"):
        raise OpValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    packed = eigh_p.apply(matrices(a, "eigh"), UPLO=UPLO)
    w, v = _eigh_parts(packed)
    return result(w), result(v)


def eigvalsh(a: ArrayLike, UPLO: str = "L") -> Variable:  # noqa: N803
    """The eigenvalues of each symmetric matrix, ascending."""
    return eigh(a, UPLO)[0]


def svd(a: ArrayLike, full_matrices: bool = True, compute_uv: bool = True,
        hermitian: bool = False) -> Any:
    """``(U, S, Vh)`` with a = U @ diag(S) @ Vh for each matrix, singular values descending
    (``compute_uv=False``: S only; ``hermitian`` is accepted, and the general SVD computed).
    With ``full_matrices=True`` and a non-square matrix the extra columns of U (rows of Vh)
    have no derivative."""
    x = matrices(a, "svd", square=False)  # (hermitian=True: the general SVD, equal up to the signs of U, Vh)
    shape = shape_of(x)
    full = bool(full_matrices) and bool(compute_uv)
    packed = svd_p.apply(x, full_matrices=full)
    u, s, vh = _svd_parts(packed, shape, full)
    if not compute_uv:
        return result(s)
    return result(u), result(s), result(vh)


def svdvals(a: ArrayLike) -> Variable:
    """The singular values of each matrix, descending."""
    return svd(a, compute_uv=False)


def qr(a: ArrayLike, mode: str = "reduced") -> Any:
    """``(Q, R)`` with a = Q @ R for each matrix (``mode`` 'reduced', 'complete', or 'r' for R
    only). ``mode='complete'`` with more rows than columns has no derivative."""
    if mode not in ("reduced", "complete", "r"):
        raise OpValueError(f"qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    x = matrices(a, "qr", square=False)
    computed = "reduced" if mode == "r" else mode
    packed = qr_p.apply(x, mode=computed)
    q, r = _qr_parts(packed, shape_of(x), computed)
    return result(r) if mode == "r" else (result(q), result(r))
