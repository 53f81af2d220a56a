"""Arguments of ops (issue 8): axis arguments are checked (ints, in range, no duplicates, never
truncated), and errors of composite ops name the public op and its own argument."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.ops._axis import axis_index, axis_permutation, axis_tuple
from tapegrad.ops.loss_ops import softmax_cross_entropy

X = tg.Variable(np.arange(6.0).reshape(2, 3))

# Every op of the ops modules that takes an axis (shape.py's ops are checked where they are wired).
AXIS_OPS = {
    "reduce_sum": lambda axis: tg.reduce_sum(X, axis=axis),
    "reduce_mean": lambda axis: tg.reduce_mean(X, axis=axis),
    "reduce_max": lambda axis: tg.reduce_max(X, axis=axis),
    "reduce_min": lambda axis: tg.reduce_min(X, axis=axis),
    "logsumexp": lambda axis: tg.logsumexp(X, axis=axis),
    "prod": lambda axis: tg.prod(X, axis=axis),
    "argmax": lambda axis: tg.argmax(X, axis=axis),
    "argmin": lambda axis: tg.argmin(X, axis=axis),
    "softmax": lambda axis: tg.softmax(X, axis=axis),
    "log_softmax": lambda axis: tg.log_softmax(X, axis=axis),
    "softmax_cross_entropy": lambda axis: softmax_cross_entropy(X, X, axis=axis),
    "Variable.sum": lambda axis: X.sum(axis=axis),
    "Variable.any": lambda axis: X.any(axis=axis),
    "Variable.all": lambda axis: X.all(axis=axis),
}


@pytest.mark.parametrize("op", list(AXIS_OPS))
@pytest.mark.parametrize("axis, words", [
    (1.7, ["float 1.7"]),
    (1.0, ["float 1.0"]),
    (True, ["bool True"]),
    (np.float64(0.0), ["float64 0.0"]),
    ("rows", ["str 'rows'"]),
])
def test_a_non_integer_axis_is_a_type_error(op, axis, words):
    with pytest.raises(TypeError) as info:
        AXIS_OPS[op](axis)
    message = str(info.value)
    for word in [f"{op}:", "argument axis", "int", *words]:
        assert word in message, f"{word!r} not in {message!r}"


@pytest.mark.parametrize("op", list(AXIS_OPS))
@pytest.mark.parametrize("axis", [2, -3, np.int64(5)])
def test_an_axis_out_of_range_is_a_value_error(op, axis):
    with pytest.raises(ValueError) as info:
        AXIS_OPS[op](axis)
    message = str(info.value)
    for word in [f"{op}:", "argument axis", f"axis {int(axis)}", "rank 2", "(2, 3)"]:
        assert word in message, f"{word!r} not in {message!r}"


@pytest.mark.parametrize("op", [op for op in AXIS_OPS if not op.startswith(("arg", "softmax", "log_softmax"))])
@pytest.mark.parametrize("axis, words", [((0, 0), ["(0, 0)", "axis 0 more than once"]),
                                         ((1, -1), ["(1, -1)", "axis 1 more than once"]),
                                         ((0, 1.5), ["tuple (0, 1.5)"]),
                                         ((0, False), ["tuple (0, False)"])])
def test_tuples_of_axes_are_checked(op, axis, words):
    with pytest.raises((TypeError, ValueError)) as info:
        AXIS_OPS[op](axis)
    for word in [f"{op}:", "argument axis", *words]:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


@pytest.mark.parametrize("axis", [1, -1, np.int32(1), np.int64(-1), np.array(1), tg.Variable(np.int64(1))])
def test_numpy_integers_are_axes(axis):
    np.testing.assert_array_equal(tg.reduce_sum(X, axis=axis).value(), [3.0, 12.0])
    np.testing.assert_array_equal(tg.argmax(X, axis=axis).value(), [2, 2])
    np.testing.assert_allclose(tg.softmax(X, axis=axis).value().sum(axis=1), [1.0, 1.0])


@pytest.mark.parametrize("axis", [(0, 1), [1, 0], (np.int64(-1), 0), np.array([0, 1])])
def test_tuples_lists_and_arrays_of_axes(axis):
    assert float(tg.reduce_sum(X, axis=axis)) == 15.0


def test_axis_helpers_directly():
    assert axis_index(-1, 3, "op") == 2
    assert axis_tuple(None, 3, "op") is None
    assert axis_tuple((2, -3), 3, "op") == (0, 2)
    with pytest.raises(ValueError, match=r"expand_dims: argument axis=3: axis 3 is out of range .* rank 3"):
        axis_index(3, 3, "expand_dims")  # (an op that inserts an axis checks against ndim + 1)
    with pytest.raises(TypeError, match=r"concat: argument axis must be an int, got float 0.5"):
        axis_index(0.5, 2, "concat")


def test_axis_permutation():
    assert axis_permutation(None, 3, "op") is None
    assert axis_permutation((-1, 0, 1), 3, "op") == (2, 0, 1)
    assert axis_permutation(np.array([1, 0]), 2, "op") == (1, 0)
    with pytest.raises(TypeError, match=r"transpose: argument perm must be a tuple of ints, got tuple \(1.5, 0\)"):
        axis_permutation((1.5, 0), 2, "transpose")
    with pytest.raises(ValueError, match=r"transpose: argument perm=\(0, 0\) is not a permutation .* \(shape \(2, 3"):
        axis_permutation((0, 0), 2, "transpose", shape=(2, 3))


@pytest.mark.parametrize("call, words", [
    (lambda: X.transpose(1.5, 0), ["Variable.transpose: argument axes must be a tuple of ints", "(1.5, 0)"]),
    (lambda: X.transpose((0, 0)), ["Variable.transpose: argument axes=(0, 0)", "(2, 3)"]),
    (lambda: X.transpose((True, 0)), ["Variable.transpose", "(True, 0)"]),
    (lambda: tg.one_hot(np.array([0, 1]), 2.7), ["one_hot: argument depth must be an int", "float 2.7"]),
    (lambda: tg.one_hot(np.array([0, 1]), True), ["one_hot: argument depth", "bool True"]),
    (lambda: tg.bandpart(X, 0.5, 0), ["bandpart: argument lower must be an int", "float 0.5"]),
    (lambda: tg.bandpart(X, 0, -1.0), ["bandpart: argument upper", "float -1.0"]),
])
def test_integer_parameters_are_not_truncated(call, words):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


def test_integer_parameters_accept_numpy_integers():
    np.testing.assert_array_equal(tg.one_hot(np.array([1]), np.int64(3)).value(), [[0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(tg.bandpart(X, np.int32(0), np.int64(0)).value(), [[0.0, 0.0, 0.0], [0.0, 4.0, 0.0]])


# -- composite ops name themselves ----------------------------------------------------------------
x23 = tg.Variable(np.ones((2, 3), np.float32))

COMPOSITE_ERRORS = [
    ("scale alpha", lambda: tg.scale("two", x23), TypeError, ["scale: argument alpha must be a", "str"]),
    ("scale x", lambda: tg.scale(2.0, None), TypeError, ["scale: argument x must be a", "NoneType"]),
    ("scale shapes", lambda: tg.scale(np.ones(4), x23), ValueError,
     ["scale:", "broadcast", "alpha (4,)", "x (2, 3)"]),
    ("increment beta", lambda: tg.increment(x23, "one"), TypeError, ["increment: argument beta", "str"]),
    ("increment alpha", lambda: tg.increment(x23, 1.0, alpha=object()), TypeError,
     ["increment: argument alpha", "object"]),
    ("increment string array", lambda: tg.increment(x23, np.array(["a"])), TypeError,
     ["increment: argument beta", "<U1"]),
    ("increment shapes", lambda: tg.increment(x23, np.ones(4)), ValueError,
     ["increment:", "broadcast", "x (2, 3)", "beta (4,)"]),
    ("increment alpha shape", lambda: tg.increment(x23, 1.0, np.ones(5)), ValueError,
     ["increment:", "broadcast", "alpha (5,)"]),
    ("matmul vector of strings", lambda: tg.matmul(np.array(["a", "b", "c"]), x23.T), TypeError,
     ["matmul: argument x", "<U1"]),
    ("dropout x", lambda: tg.dropout("abc", 0.5), TypeError, ["dropout: argument x", "str"]),
    ("dropout rate", lambda: tg.dropout(x23, "half"), TypeError, ["dropout: argument rate", "str 'half'"]),
    ("leaky_relu slope", lambda: tg.leaky_relu(x23, "a"), TypeError, ["leaky_relu: argument negative_slope"]),
    ("elu alpha", lambda: tg.elu(x23, [1.0, 2.0]), TypeError, ["elu: argument alpha", "list"]),
    ("clip_by_value min", lambda: tg.clip_by_value(x23, "a", 1.0), TypeError, ["clip_by_value: argument min"]),
    ("Variable.clip shapes", lambda: x23.clip(np.zeros(4), 1.0), ValueError, ["clip_by_value", "min (4,)"]),
]


@pytest.mark.parametrize("what, call, exc_type, words", COMPOSITE_ERRORS, ids=[c[0] for c in COMPOSITE_ERRORS])
def test_composite_ops_name_themselves_and_their_argument(what, call, exc_type, words):
    with pytest.raises(exc_type) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{what}: {word!r} not in {message!r}"
    for inner in ("mul:", "add:", "reshape:", "dropout_mask:"):
        assert not message.startswith(inner), message


def test_composite_ops_still_compute():
    np.testing.assert_array_equal(tg.scale(2.0, x23).value(), np.full((2, 3), 2.0))
    np.testing.assert_array_equal(tg.increment(x23, 1.0, 3.0).value(), np.full((2, 3), 4.0))
    np.testing.assert_array_equal(tg.matmul(np.ones(3, np.float32), x23.T).value(), [3.0, 3.0])
    assert tg.scale.__name__ == "scale" and "Rindow" in tg.scale.__doc__
