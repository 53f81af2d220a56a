"""Every public op inside a compiled Function, with every array argument (float, int and bool)
passed as an argument of the Function: the compiled result must follow the argument's values
call after call, never keep the values of the call that traced it.

This is the audit of "ops that read a traced value at trace time": an op that turns an
argument into a parameter of the graph fails here on the second call.
"""

from __future__ import annotations

import numpy as np
import pytest
from compiled_check import assert_compiled_matches_eager

import tapegrad as tg
from tapegrad.ops.loss_ops import (
    sigmoid_cross_entropy,
    softmax_cross_entropy,
    sparse_softmax_cross_entropy,
    take_class,
)


def floats(*shape, low=-1.0, high=1.0):
    return lambda rng: rng.uniform(low, high, shape)


def ints(high, *shape):
    return lambda rng: rng.integers(0, high, shape)


def bools(*shape):
    return lambda rng: rng.random(shape) > 0.5


def positive(*shape):
    return floats(*shape, low=0.5, high=2.0)


# name -> (function of the Function's arguments, argument makers, derivative order)
CASES = {
    "abs": (tg.abs, [floats(2, 3)], 2),
    "add": (tg.add, [floats(2, 3), floats(3)], 2),
    "argmax": (lambda x: tg.argmax(x, axis=1), [floats(3, 4)], 0),
    "argmin": (lambda x: tg.argmin(x, axis=0), [floats(3, 4)], 0),
    "bandpart": (lambda x: tg.bandpart(x, 1, 0), [floats(4, 4)], 0),
    "broadcast_to": (lambda x: tg.broadcast_to(x, (2, 3)), [floats(3)], 2),
    "cast": (lambda x: tg.cast(x, "int64"), [ints(9, 5)], 0),
    "cast_of_float": (lambda x: tg.cast(x * 3.0, "int32"), [floats(5)], 0),
    "clip_by_value": (lambda x, lo, hi: tg.clip_by_value(x, lo, hi), [floats(6), floats(6, low=-1, high=-0.3),
                                                                        floats(6, low=0.3, high=1)], 2),
    "concat": (lambda x, y: tg.concat([x, y], axis=0), [floats(2, 3), floats(1, 3)], 2),
    "cos": (tg.cos, [floats(4)], 2),
    "div": (tg.div, [floats(2, 3), positive(3)], 2),
    "equal": (tg.equal, [ints(3, 6), ints(3, 6)], 0),
    "exp": (tg.exp, [floats(4)], 2),
    "expand_dims": (lambda x: tg.expand_dims(x, 1), [floats(2, 3)], 2),
    "expm1": (tg.expm1, [floats(4)], 2),
    "gather": (lambda x, i: tg.gather(x, i, axis=0), [floats(5, 3), ints(5, 4)], 2),
    "gather_axis1": (lambda x, i: tg.gather(x, i, axis=1), [floats(3, 5), ints(5, 2, 2)], 2),
    "getitem_int_array": (lambda x, i: x[i], [floats(5, 3), ints(5, 4)], 2),
    "getitem_two_arrays": (lambda x, i, j: x[i, j], [floats(5, 3), ints(5, 4), ints(3, 4)], 2),
    "getitem_mixed": (lambda x, i: x[1:, i, None], [floats(5, 4, 2), ints(4, 3)], 2),
    "getitem_int_scalar": (lambda x, i: x[i], [floats(5, 3), lambda rng: rng.integers(0, 5)], 2),
    "getitem_cast_index": (lambda x, v: x[tg.cast(v, "int64")], [floats(5, 3), floats(4, low=0, high=4.99)], 1),
    "greater": (tg.greater, [floats(5), floats(5)], 0),
    "greater_equal": (tg.greater_equal, [floats(5), floats(5)], 0),
    "increment": (lambda x, b: tg.increment(x, b, 2.0), [floats(3), floats(3)], 2),
    "isfinite": (tg.isfinite, [floats(4)], 0),
    "isnan": (tg.isnan, [floats(4)], 0),
    "less": (tg.less, [floats(5), floats(5)], 0),
    "less_equal": (tg.less_equal, [floats(5), floats(5)], 0),
    "log": (tg.log, [positive(4)], 2),
    "log1p": (tg.log1p, [positive(4)], 2),
    "log_softmax": (tg.log_softmax, [floats(2, 5)], 2),
    "logical_and": (tg.logical_and, [bools(6), bools(6)], 0),
    "logical_not": (tg.logical_not, [bools(6)], 0),
    "logical_or": (tg.logical_or, [bools(6), bools(6)], 0),
    "logsumexp": (lambda x: tg.logsumexp(x, axis=1), [floats(3, 4)], 2),
    "matmul": (tg.matmul, [floats(2, 3), floats(3, 4)], 2),
    "matmul_transposed": (lambda a, b: tg.matmul(a, b, transpose_b=True), [floats(2, 3), floats(4, 3)], 2),
    "maximum": (tg.maximum, [floats(5), floats(5)], 2),
    "minimum": (tg.minimum, [floats(5), floats(5)], 2),
    "mul": (tg.mul, [floats(2, 3), floats(2, 1)], 2),
    "neg": (tg.neg, [floats(3)], 2),
    "nop": (tg.nop, [floats(3)], 2),
    "not_equal": (tg.not_equal, [ints(3, 6), ints(3, 6)], 0),
    "one_hot": (lambda i: tg.one_hot(i, 4), [ints(4, 5)], 0),
    "ones_like": (lambda x: tg.ones_like(x) + x, [floats(3)], 2),
    "pow": (tg.pow, [positive(4), floats(4)], 2),
    "reciprocal": (tg.reciprocal, [positive(4)], 2),
    "prod": (lambda x: tg.prod(x, axis=1), [floats(3, 4)], 2),
    "prod_with_zeros": (lambda x: tg.prod(tg.relu(x), axis=0), [floats(4, 3)], 1),
    "reduce_max": (lambda x: tg.reduce_max(x, axis=0), [floats(3, 4)], 2),
    "reduce_mean": (lambda x: tg.reduce_mean(x, axis=1, keepdims=True), [floats(3, 4)], 2),
    "reduce_min": (lambda x: tg.reduce_min(x), [floats(3, 4)], 2),
    "reduce_sum": (lambda x: tg.reduce_sum(x, axis=(0, 1)), [floats(3, 4, 2)], 2),
    "relu": (tg.relu, [floats(6)], 1),
    "repeat": (lambda x: tg.repeat(x, 2, axis=1), [floats(2, 3)], 2),
    "repeat_counts": (lambda x: tg.repeat(x, [1, 0, 2], axis=0), [floats(3, 2)], 2),
    "reshape": (lambda x: tg.reshape(x, (3, 2)), [floats(2, 3)], 2),
    "scale": (lambda x: tg.scale(3.0, x), [floats(3)], 2),
    "sigmoid": (tg.sigmoid, [floats(4)], 2),
    "sign": (tg.sign, [floats(4)], 0),
    "sin": (tg.sin, [floats(4)], 2),
    "softmax": (tg.softmax, [floats(2, 5)], 2),
    "softplus": (tg.softplus, [floats(4)], 2),
    "split": (lambda x: tg.split(x, [1, 2], axis=1), [floats(2, 3)], 2),
    "sqrt": (tg.sqrt, [positive(4)], 2),
    "square": (tg.square, [floats(4)], 2),
    "squeeze": (lambda x: tg.squeeze(x, 1), [floats(2, 1, 3)], 2),
    "stack": (lambda x, y: tg.stack([x, y], axis=1), [floats(2, 3), floats(2, 3)], 2),
    "stop_gradient": (lambda x: tg.stop_gradient(x) * x, [floats(3)], 2),
    "sub": (tg.sub, [floats(3), floats(2, 3)], 2),
    "tan": (tg.tan, [floats(4)], 2),
    "tanh": (tg.tanh, [floats(4)], 2),
    "transpose": (lambda x: tg.transpose(x, (1, 0, 2)), [floats(2, 3, 4)], 2),
    "where": (tg.where, [bools(5), floats(5), floats(5)], 2),
    "where_computed_condition": (lambda c, x, y: tg.where(c > 0, x, y), [floats(5), floats(5), floats(5)], 2),
    "zeros_like": (lambda x: tg.zeros_like(x) + x * x, [floats(3)], 2),
    "elu": (tg.elu, [floats(5)], 2),
    "erf": (tg.erf, [floats(5)], 2),
    "erfc": (tg.erfc, [floats(5)], 2),
    "gelu": (tg.gelu, [floats(5)], 2),
    "leaky_relu": (tg.leaky_relu, [floats(5)], 1),
    "silu": (tg.silu, [floats(5)], 2),
    "conv": (lambda x, k: tg.conv(x, k, strides=2, padding="same"), [floats(2, 7, 6, 3), floats(3, 2, 3, 4)], 2),
    "conv_transpose": (lambda x, k: tg.conv_transpose(x, k, strides=2, padding="same"),
                       [floats(2, 4, 3, 4), floats(3, 3, 2, 4)], 2),
    "max_pool": (lambda x: tg.max_pool(x, 2, strides=1, padding="same"), [floats(2, 5, 4, 3)], 2),
    "avg_pool": (lambda x: tg.avg_pool(x, 3, strides=2, padding="same"), [floats(2, 5, 4, 3)], 2),
    "operators": (lambda x, y: (x + 1.0) * y - x / (y * y + 1.0) + 2.0 ** x - x ** 2, [floats(3), floats(3)], 2),
    "matmul_operator": (lambda x, y: x @ y, [floats(2, 3), floats(3, 2)], 2),
    "sparse_softmax_cross_entropy": (lambda x, t: sparse_softmax_cross_entropy(x, t, "mean"),
                                     [floats(4, 3), ints(3, 4)], 2),
    "softmax_cross_entropy": (lambda x, t: softmax_cross_entropy(x, tg.one_hot(t, 3, dtype="float64")),
                              [floats(4, 3), ints(3, 4)], 2),
    "sigmoid_cross_entropy": (lambda x, t: sigmoid_cross_entropy(x, tg.cast(t, "float64")),
                              [floats(4), ints(2, 4)], 2),
    "take_class": (lambda x, t: take_class(x, t), [floats(4, 3), ints(3, 4)], 2),
    # NumPy's differentiable core
    "arcsin": (tg.arcsin, [floats(4, low=-0.9, high=0.9)], 2),
    "arccos": (tg.arccos, [floats(4, low=-0.9, high=0.9)], 2),
    "arctan": (tg.arctan, [floats(4)], 2),
    "arctan2": (tg.arctan2, [floats(2, 3), floats(3)], 2),
    "sinh": (tg.sinh, [floats(4)], 2),
    "cosh": (tg.cosh, [floats(4)], 2),
    "arcsinh": (tg.arcsinh, [floats(4)], 2),
    "arccosh": (tg.arccosh, [floats(4, low=1.2, high=3.0)], 2),
    "arctanh": (tg.arctanh, [floats(4, low=-0.9, high=0.9)], 2),
    "log2": (tg.log2, [positive(4)], 2),
    "log10": (tg.log10, [positive(4)], 2),
    "exp2": (tg.exp2, [floats(4)], 2),
    "logaddexp": (tg.logaddexp, [floats(2, 3), floats(3)], 2),
    "mod": (tg.mod, [floats(2, 3, low=-3.0, high=3.0), positive(3)], 2),
    "mod_operator": (lambda x, y: x % y + 2.5 % y, [floats(3, low=-3.0, high=3.0), positive(3)], 2),
    "floor": (lambda x: tg.floor(x * 3.0) * x, [floats(5)], 2),
    "ceil": (lambda x: tg.ceil(x * 3.0) * x, [floats(5)], 2),
    "round": (lambda x: tg.round(x * 3.0, 1) * x, [floats(5)], 2),
    "cumsum": (lambda x: tg.cumsum(x, axis=1), [floats(3, 4)], 2),
    "cumsum_flat": (lambda x: tg.cumsum(x) * x.reshape(-1), [floats(2, 3)], 2),
    "cumprod": (lambda x: tg.cumprod(x, axis=1), [floats(3, 4)], 2),
    "cumprod_with_zeros": (lambda x: tg.cumprod(tg.relu(x), axis=0), [floats(5, 2)], 1),
    "var": (lambda x: tg.var(x, axis=1, ddof=1), [floats(3, 4)], 2),
    "std": (lambda x: tg.std(x, axis=0, keepdims=True), [floats(3, 4)], 2),
    "einsum": (lambda a, b: tg.einsum("ij,jk->ik", a, b), [floats(2, 3), floats(3, 4)], 2),
    "einsum_diagonal": (lambda a, b: tg.einsum("ii,i->i", a, b), [floats(3, 3), floats(3)], 2),
    "einsum_ellipsis": (lambda a, b, c: tg.einsum("...j,j,jk", a, b, c), [floats(2, 3), floats(3), floats(3, 2)], 2),
    "tensordot": (lambda a, b: tg.tensordot(a, b, axes=([1, 2], [0, 1])), [floats(2, 3, 4), floats(3, 4, 2)], 2),
    "dot": (tg.dot, [floats(2, 3), floats(3)], 2),
    "inner": (tg.inner, [floats(2, 3), floats(4, 3)], 2),
    "outer": (tg.outer, [floats(3), floats(2, 2)], 2),
    "kron": (tg.kron, [floats(2, 2), floats(2, 3)], 2),
    "cross": (tg.cross, [floats(4, 3), floats(3)], 2),
    "sort": (lambda x: tg.sort(x, axis=1), [floats(3, 4)], 2),
    "argsort": (lambda x: tg.argsort(x, axis=0), [floats(3, 4)], 0),
    "take_along_axis_rows": (lambda x, i: tg.take_along_axis(x, i, axis=1), [floats(3, 4), ints(4, 3, 2)], 2),
    "flip": (lambda x: tg.flip(x, 1), [floats(2, 3)], 2),
    "roll": (lambda x: tg.roll(x, 2, axis=1), [floats(2, 3)], 2),
    "tril": (lambda x: tg.tril(x, -1), [floats(3, 4)], 2),
    "triu": (lambda x: tg.triu(x, 1), [floats(2, 3, 3)], 2),
    "trace": (lambda x: tg.trace(x, 1), [floats(3, 4)], 2),
    "diag": (lambda x: tg.diag(x, 1), [floats(3)], 2),
    "diag_of_a_matrix": (lambda x: tg.diag(x, -1), [floats(3, 4)], 2),
    "diagonal": (lambda x: tg.diagonal(x, 0, 1, 2), [floats(2, 3, 3)], 2),
    "pad": (lambda x: tg.pad(x, ((1, 0), (2, 1)), constant_values=0.5), [floats(2, 3)], 2),
    "pad_reflect": (lambda x: tg.pad(x, 2, mode="reflect"), [floats(3, 4)], 2),
    "tile": (lambda x: tg.tile(x, (2, 1, 2)), [floats(2, 3)], 2),
    "diff": (lambda x: tg.diff(x, 2, axis=0), [floats(4, 3)], 2),
    "moveaxis": (lambda x: tg.moveaxis(x, 0, -1), [floats(2, 3, 4)], 2),
    "swapaxes": (lambda x: tg.swapaxes(x, 0, 2), [floats(2, 3, 4)], 2),
    "norm": (tg.norm, [floats(3, 4)], 2),
    "norm_nuclear": (lambda x: tg.norm(x, "nuc"), [floats(3, 4)], 2),
    "norm_max_of_rows": (lambda x: tg.norm(x, np.inf, axis=1, keepdims=True), [floats(3, 4)], 1),
    "linalg_inv": (lambda a: tg.linalg.inv(a + 3.0 * np.eye(3)), [floats(3, 3)], 2),
    "linalg_solve": (lambda a, b: tg.linalg.solve(a + 3.0 * np.eye(3), b), [floats(3, 3), floats(3, 2)], 2),
    "linalg_det": (lambda a: tg.linalg.det(a + 2.0 * np.eye(3)), [floats(3, 3)], 2),
    "linalg_slogdet": (lambda a: tg.linalg.slogdet(a - 2.0 * np.eye(3)), [floats(3, 3)], 2),
    "linalg_pinv": (tg.linalg.pinv, [floats(4, 3)], 2),
    "linalg_cholesky": (lambda a: tg.linalg.cholesky(a @ a.T + 3.0 * np.eye(3)), [floats(3, 3)], 2),
    "linalg_eigh": (lambda a: (lambda w, v: (w, v * v))(*tg.linalg.eigh(a + a.T)), [floats(3, 3)], 2),
    "linalg_svd": (lambda a: (lambda u, s, vh: (s, u * u, vh * vh))(*tg.linalg.svd(a, full_matrices=False)),
                   [floats(4, 3)], 2),
    "linalg_qr": (tg.linalg.qr, [floats(4, 3)], 2),
    "linalg_qr_wide": (tg.linalg.qr, [floats(2, 3)], 2),
}


def arg_sets(makers, seeds=(1, 2)):
    sets = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        sets.append([m(rng) for m in makers])
    return sets


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_compiled_follows_its_arguments(name):
    fn, makers, order = CASES[name]
    first, second = arg_sets(makers)
    # the two sets must differ in every argument, or the test could not see a baked value
    for a, b in zip(first, second):
        assert not np.array_equal(a, b), f"{name}: argument sets do not differ"
    assert_compiled_matches_eager(fn, first, second, order=order)


def test_every_public_op_is_in_the_sweep():
    covered = {name.split("_axis")[0] for name in CASES} | {n.rsplit("_", 1)[0] for n in CASES}
    covered |= {"getitem", "gather"}
    # ops that take no array argument (nothing to pass to a Function) or that draw random numbers
    exempt = {"ones", "zeros", "shape", "dropout"}
    missing = [op for op in tg.ops.__all__ if op not in covered and op not in exempt]
    assert not missing, f"add these ops to CASES: {missing}"
