"""Losses: values and gradients against PyTorch (float64), the three reductions, Keras'
shape rules, stability for large logits, second derivatives, label checks, lookup."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import Variable
from tapegrad.nn import losses
from tapegrad.ops import loss_ops

RNG = np.random.default_rng(1234)
B, C = 6, 5
TOL = {"rtol": 1e-10, "atol": 1e-12}


def logits(shape: tuple = (B, C), scale: float = 2.0) -> np.ndarray:
    return RNG.normal(0.0, scale, shape)


def labels(n: int = B, classes: int = C, dtype: type = np.int32) -> np.ndarray:
    out = RNG.integers(0, classes, n).astype(dtype)
    out[:classes] = np.arange(min(n, classes))  # every class at least once when n >= classes
    return out


def probabilities(shape: tuple = (B, C)) -> np.ndarray:
    p = RNG.uniform(0.05, 1.0, shape)
    return p / p.sum(-1, keepdims=True)


def value_and_grad(loss: losses.Loss, trues: object, predicts: np.ndarray, weights: np.ndarray | None = None):
    """The loss value and the gradient of sum(loss * weights) with respect to predicts."""
    x = Variable(predicts)
    with tg.GradientTape() as tape:
        out = loss(trues, x)
        target = out if weights is None else tg.reduce_sum(out * weights)
    return out.numpy(), tape.gradient(target, x).numpy()


def check_reductions(make_loss, torch_per_sample, trues, predicts, torch_trues=None):
    """All three reductions against a torch per-sample loss: values and gradients."""
    torch = pytest.importorskip("torch")
    tt = torch.tensor(trues if torch_trues is None else torch_trues)
    per_shape = None
    for reduction in ("none", "sum", "mean"):
        tx = torch.tensor(predicts, requires_grad=True)
        per = torch_per_sample(tt, tx)
        per_shape = tuple(per.shape)
        expected = {"none": per, "sum": per.sum(), "mean": per.mean()}[reduction]
        w = RNG.uniform(0.5, 1.5, per_shape) if reduction == "none" else None
        target = (expected * torch.tensor(w)).sum() if w is not None else expected
        (expected_grad,) = torch.autograd.grad(target, tx)
        value, grad = value_and_grad(make_loss(reduction), trues, predicts, w)
        np.testing.assert_allclose(value, expected.detach().numpy(), **TOL, err_msg=reduction)
        np.testing.assert_allclose(grad, expected_grad.numpy(), **TOL, err_msg=reduction)
        assert value.shape == (per_shape if reduction == "none" else ())


# ---------------------------------------------------------------------------------------
# Against PyTorch (float64)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(B, C), (B, 3, C)])
@pytest.mark.parametrize("label_shape", ["flat", "column"])
def test_sparse_crossentropy_from_logits_matches_torch(shape, label_shape):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = logits(shape)
    y = RNG.integers(0, C, shape[:-1]).astype(np.int32)
    trues = y[..., None] if label_shape == "column" else y

    def per_sample(t, p):
        # torch wants the classes on axis 1
        return F.cross_entropy(p.movedim(-1, 1), torch.tensor(y).long(), reduction="none")

    check_reductions(lambda r: losses.SparseCategoricalCrossentropy(from_logits=True, reduction=r),
                     per_sample, trues, x)


@pytest.mark.filterwarnings("ignore:.*from_logits=False:UserWarning")  # unnormalised on purpose
def test_sparse_crossentropy_from_probabilities_matches_torch():
    torch = pytest.importorskip("torch")
    p = RNG.uniform(0.05, 1.0, (B, C))  # not normalised: Keras normalises first
    y = labels()

    def per_sample(t, q):
        q = torch.clamp(q / q.sum(-1, keepdim=True), 1e-7, 1 - 1e-7)
        return -torch.log(q).gather(-1, t.long()[:, None])[:, 0]

    check_reductions(lambda r: losses.SparseCategoricalCrossentropy(reduction=r), per_sample, y, p)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_categorical_crossentropy_from_logits_matches_torch(soft, smoothing):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = logits()
    trues = probabilities() if soft else np.eye(C)[labels()]

    def per_sample(t, p):
        return F.cross_entropy(p, t, reduction="none", label_smoothing=smoothing)

    check_reductions(lambda r: losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing,
                                                              reduction=r), per_sample, trues, x)


@pytest.mark.filterwarnings("ignore:.*from_logits=False:UserWarning")  # unnormalised on purpose
def test_categorical_crossentropy_from_probabilities_matches_torch():
    torch = pytest.importorskip("torch")
    p = RNG.uniform(0.05, 1.0, (B, C))
    trues = np.eye(C)[labels()]

    def per_sample(t, q):
        q = torch.clamp(q / q.sum(-1, keepdim=True), 1e-7, 1 - 1e-7)
        return -(t * torch.log(q)).sum(-1)

    check_reductions(lambda r: losses.CategoricalCrossentropy(reduction=r), per_sample, trues, p)


def test_categorical_crossentropy_other_axis():
    x = logits((C, B))
    trues = np.eye(C)[labels()].T
    expected = losses.CategoricalCrossentropy(from_logits=True, reduction="none")(trues.T, x.T).numpy()
    got = losses.CategoricalCrossentropy(from_logits=True, axis=0, reduction="none")(trues, x).numpy()
    np.testing.assert_allclose(got, expected, **TOL)


@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_crossentropy_matches_torch(from_logits):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    trues = RNG.integers(0, 2, (B, 3)).astype(np.float64)
    trues[0] = [0.3, 0.5, 0.9]  # soft labels too
    predicts = logits((B, 3)) if from_logits else RNG.uniform(0.02, 0.98, (B, 3))

    def per_sample(t, p):
        fn = F.binary_cross_entropy_with_logits if from_logits else F.binary_cross_entropy
        return fn(p, t, reduction="none").mean(-1)

    check_reductions(lambda r: losses.BinaryCrossentropy(from_logits=from_logits, reduction=r),
                     per_sample, trues, predicts)


def test_binary_crossentropy_label_smoothing():
    trues = RNG.integers(0, 2, (B, 2)).astype(np.float64)
    p = RNG.uniform(0.05, 0.95, (B, 2))
    smoothed = trues * 0.8 + 0.1
    expected = -(smoothed * np.log(p) + (1 - smoothed) * np.log(1 - p)).mean(-1).mean()
    got = float(losses.BinaryCrossentropy(label_smoothing=0.2)(trues, p))
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kind", ["mse", "mae", "huber"])
def test_regression_losses_match_torch(kind):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    trues = RNG.normal(0, 1, (B, 4))
    predicts = trues + RNG.normal(0, 1.5, (B, 4))  # errors on both sides of delta
    delta = 0.7
    make = {
        "mse": lambda r: losses.MeanSquaredError(reduction=r),
        "mae": lambda r: losses.MeanAbsoluteError(reduction=r),
        "huber": lambda r: losses.Huber(delta=delta, reduction=r),
    }[kind]
    fn = {
        "mse": lambda t, p: F.mse_loss(p, t, reduction="none").mean(-1),
        "mae": lambda t, p: F.l1_loss(p, t, reduction="none").mean(-1),
        "huber": lambda t, p: F.huber_loss(p, t, reduction="none", delta=delta).mean(-1),
    }[kind]
    check_reductions(make, fn, trues, predicts)


def test_ignore_class_matches_torch_ignore_index():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = logits((8, C))
    y = labels(8)
    y[[1, 4, 5]] = -1
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    value, grad = value_and_grad(loss, y, x)
    tx = torch.tensor(x, requires_grad=True)
    expected = F.cross_entropy(tx, torch.tensor(y).long(), ignore_index=-1)  # mean over the others
    (expected_grad,) = torch.autograd.grad(expected, tx)
    np.testing.assert_allclose(value, expected.item(), **TOL)
    np.testing.assert_allclose(grad, expected_grad.numpy(), **TOL)
    none = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1, reduction="none")(y, x).numpy()
    assert (none[[1, 4, 5]] == 0).all() and (none[[0, 2, 3, 6, 7]] > 0).all()


def test_sample_weight():
    trues = RNG.normal(0, 1, (B, 3))
    predicts = RNG.normal(0, 1, (B, 3))
    w = RNG.uniform(0, 2, B)
    per = ((predicts - trues) ** 2).mean(-1)
    assert float(losses.MeanSquaredError()(trues, predicts, sample_weight=w)) == pytest.approx((per * w).mean())
    assert float(losses.MeanSquaredError(reduction="sum")(trues, predicts, w[:, None])) == pytest.approx(
        (per * w).sum())
    y = labels()
    x = logits()
    per_ce = losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")(y, x).numpy()
    weighted = losses.SparseCategoricalCrossentropy(from_logits=True)(y, x, sample_weight=w)
    assert float(weighted) == pytest.approx((per_ce * w).mean(), rel=1e-12)
    with pytest.raises(ValueError, match=r"sample_weight of shape \(4,\)"):
        losses.MeanSquaredError()(trues, predicts, sample_weight=np.ones(4))


# ---------------------------------------------------------------------------------------
# Keras semantics: shapes, dtypes, inputs
# ---------------------------------------------------------------------------------------
def test_default_reduction_is_the_mean_over_samples_of_the_mean_over_the_last_axis():
    trues = np.arange(12.0).reshape(3, 4)
    predicts = trues + np.array([[1.0, 1, 1, 1], [2, 2, 2, 2], [0, 0, 0, 4]])
    loss = losses.MeanSquaredError()
    assert loss.reduction == "mean"
    assert float(loss(trues, predicts)) == pytest.approx((1 + 4 + 4) / 3)
    assert float(losses.MeanSquaredError(reduction="sum")(trues, predicts)) == pytest.approx(1 + 4 + 4)
    np.testing.assert_allclose(losses.MeanSquaredError(reduction="none")(trues, predicts).numpy(), [1, 4, 4])
    # Keras' names for the reductions
    assert losses.MeanSquaredError(reduction="sum_over_batch_size").reduction == "mean"
    assert losses.MeanSquaredError(reduction=None).reduction == "none"


def test_trailing_axis_of_one_follows_keras():
    t = np.array([1.0, 2.0, 3.0])
    p = np.array([[1.5], [2.0], [1.0]])
    none = losses.MeanSquaredError(reduction="none")
    # (batch,) trues with (batch, 1) predictions: one value per sample, no (3, 3) broadcast
    np.testing.assert_allclose(none(t, p).numpy(), [0.25, 0.0, 4.0])
    np.testing.assert_allclose(none(t[:, None], p[:, 0]).numpy(), [0.25, 0.0, 4.0])
    # 1-D trues and predictions: Keras averages over the last axis, giving one scalar
    assert none(t, p[:, 0]).shape == ()
    assert float(losses.MeanSquaredError()(t, p)) == pytest.approx(4.25 / 3)
    bce = losses.BinaryCrossentropy(reduction="none")(np.array([1.0, 0.0]), np.array([[0.9], [0.2]])).numpy()
    np.testing.assert_allclose(bce, [-np.log(0.9), -np.log(0.8)], rtol=1e-6)


def test_seed_usage_raw_int32_labels_and_forward_alias():
    nn = tg.NeuralNetworks()
    g = nn.gradient()
    lossfunc = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    trues = np.array([0, 0, 0, 1, 1, 1], dtype=np.int32)
    x = g.Variable(RNG.normal(0, 1, (6, 2)).astype(np.float32))
    with g.GradientTape() as tape:
        loss = lossfunc(trues, x)
    grad = tape.gradient(loss, x)
    assert loss.dtype == np.float32 and loss.shape == () and grad.dtype == np.float32
    assert float(lossfunc.forward(trues, x)) == float(loss)
    assert float(lossfunc(g.Variable(trues), x)) == float(loss)  # an int Variable
    assert float(lossfunc(trues.tolist(), x)) == float(loss)  # a list
    assert float(lossfunc(trues.astype(np.float32), x)) == float(loss)  # whole floats, as Keras
    assert float(lossfunc(trues[:, None], x)) == float(loss)  # (batch, 1)
    v = x.numpy().astype(np.float64)
    lse = np.log(np.exp(v).sum(1))
    assert float(loss) == pytest.approx(np.mean(lse - v[np.arange(6), trues]), rel=1e-6)


def test_dtypes():
    y = labels()
    x32 = logits().astype(np.float32)
    assert losses.SparseCategoricalCrossentropy(from_logits=True)(y, x32).dtype == np.float32
    assert losses.MeanSquaredError()(np.ones((B, C)), x32).dtype == np.float32  # float64 trues follow
    assert losses.MeanSquaredError()(np.ones((2, 2), int), np.zeros((2, 2), int)).dtype == np.float32
    assert losses.BinaryCrossentropy()(np.ones((2, 2), bool), np.full((2, 2), 0.5)).dtype == np.float64
    assert losses.MeanSquaredError(dtype="float64")(np.ones((2, 2)), x32[:2, :2]).dtype == np.float64


def test_compiled_function_reads_the_labels_at_every_call():
    nn = tg.NeuralNetworks()
    g = nn.gradient()
    W = g.Variable(RNG.normal(0, 1, (4, C)).astype(np.float32))
    lossfunc = nn.losses.SparseCategoricalCrossentropy(from_logits=True)

    def step(x, y):
        with g.GradientTape() as tape:
            loss = lossfunc(y, g.matmul(x, W))
        return loss, tape.gradient(loss, W)

    compiled = g.Function(step)
    x = RNG.normal(0, 1, (8, 4)).astype(np.float32)
    for _ in range(3):
        y = RNG.integers(0, C, 8).astype(np.int32)
        loss, grad = compiled(x, y)
        ref_loss, ref_grad = step(x, y)
        assert float(loss) == pytest.approx(float(ref_loss), rel=1e-6)
        np.testing.assert_allclose(grad.numpy(), ref_grad.numpy(), rtol=1e-5, atol=1e-7)
    assert compiled.trace_count == 1
    with pytest.raises(ValueError, match=r"label 5 is out of range \[0, 5\)"):
        compiled(x, np.array([0, 1, 2, 3, 4, 5, 0, 0], np.int32))
    with pytest.raises(ValueError, match=r"label -1 is out of range"):
        compiled(x, np.array([0, 1, 2, 3, 4, -1, 0, 0], np.int32))


def test_two_loss_calls_on_one_persistent_tape_get_their_own_gradients():
    # two forward calls before the backward pass, and a repeated gradient call
    x = Variable(logits())
    y1, y2 = labels(), labels()[::-1].copy()
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    with tg.GradientTape(persistent=True) as tape:
        l1 = loss(y1, x)
        l2 = loss(y2, x * 2.0)
    g2 = tape.gradient(l2, x).numpy()
    g1 = tape.gradient(l1, x).numpy()
    g1_again = tape.gradient(l1, x).numpy()
    v = x.numpy()

    def ref(y, scale):
        s = np.exp(scale * v - (scale * v).max(1, keepdims=True))
        s /= s.sum(1, keepdims=True)
        s[np.arange(B), y] -= 1
        return scale * s / B

    np.testing.assert_allclose(g1, ref(y1, 1.0), **TOL)
    np.testing.assert_allclose(g1_again, ref(y1, 1.0), **TOL)
    np.testing.assert_allclose(g2, ref(y2, 2.0), **TOL)


# ---------------------------------------------------------------------------------------
# Stability
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("magnitude", [1e4, 1e6, 1e30])
def test_crossentropy_from_logits_is_stable_for_large_logits(dtype, magnitude):
    x = np.array([[magnitude, 0.0, -magnitude], [-magnitude, magnitude, 0.0], [0.5, 0.0, -0.5]], dtype=dtype)
    y = np.array([0, 0, 1])
    onehot = np.eye(3)[y]
    cases = [
        (losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none"), y),
        (losses.CategoricalCrossentropy(from_logits=True, reduction="none"), onehot),
    ]
    small = np.array([0.5, 0.0, -0.5])
    expected_last = np.log(np.exp(small).sum()) - 0.0
    for loss, trues in cases:
        value, grad = value_and_grad(loss, trues, x)
        assert np.isfinite(value).all() and np.isfinite(grad).all()
        assert value[0] == 0.0
        assert value[1] == pytest.approx(2 * magnitude, rel=1e-6)
        assert value[2] == pytest.approx(expected_last, rel=1e-6)
        np.testing.assert_allclose(grad[1], [-1, 1, 0], atol=1e-6)
    bce = losses.BinaryCrossentropy(from_logits=True, reduction="none")
    z = np.array([[magnitude, -magnitude], [20.0, -20.0]], dtype=dtype)
    t = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=dtype)
    value, grad = value_and_grad(bce, t, z)
    assert np.isfinite(value).all() and np.isfinite(grad).all()
    assert value[0] == 0.0
    assert value[1] == pytest.approx(20 + np.log1p(np.exp(-20.0)), rel=1e-6)
    np.testing.assert_allclose(grad[0], [0.0, 0.0], atol=1e-12)


def test_exact_small_binary_crossentropy_from_logits():
    # log(1 + exp(-20)) ~ 2.06e-9: no cancellation to 0 for a confident correct logit
    value = losses.BinaryCrossentropy(from_logits=True, reduction="none")(np.array([[1.0]]), np.array([[20.0]]))
    assert float(value) == pytest.approx(np.log1p(np.exp(-20.0)), rel=1e-12)


def test_probabilities_are_clipped_to_keras_epsilon():
    clipped = -np.log(1e-7)
    bce = losses.BinaryCrossentropy(reduction="none")
    value, grad = value_and_grad(bce, np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert np.isfinite(grad).all()
    assert value[0] == pytest.approx(clipped, rel=1e-6)
    scce = losses.SparseCategoricalCrossentropy(reduction="none")
    value, grad = value_and_grad(scce, np.array([1, 0]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert value[0] == pytest.approx(clipped, rel=1e-6) and value[1] == pytest.approx(-np.log1p(-1e-7))
    assert np.isfinite(grad).all()
    cce = losses.CategoricalCrossentropy(reduction="none")
    value = cce(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]])).numpy()
    assert value[0] == pytest.approx(clipped, rel=1e-6)


# ---------------------------------------------------------------------------------------
# Second derivatives
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_sparse_crossentropy_second_derivatives(reduction):
    y = labels(4, 3)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction)
    assert tg.gradcheck(lambda x: loss(y, x), [logits((4, 3))], order=2)
    probs = losses.SparseCategoricalCrossentropy(reduction=reduction)
    assert tg.gradcheck(lambda p: probs(y, p), [RNG.uniform(0.2, 1.0, (4, 3))], order=2)


def test_other_from_logits_losses_second_derivatives():
    x = logits((3, 4))
    soft = probabilities((3, 4))
    cce = losses.CategoricalCrossentropy(from_logits=True)
    assert tg.gradcheck(lambda z: cce(soft, z), [x], order=2)
    # the primitives are differentiable in the targets too (the losses treat trues as constants)
    assert tg.gradcheck(lambda z, t: loss_ops.softmax_cross_entropy(z, t), [x, soft], order=2)
    bce = losses.BinaryCrossentropy(from_logits=True, reduction="sum")
    assert tg.gradcheck(lambda z, t: loss_ops.sigmoid_cross_entropy(z, t), [x, soft], order=2)
    assert tg.gradcheck(lambda z: bce(soft, z), [x], order=2)
    y = labels(3, 4)
    assert tg.gradcheck(lambda z: loss_ops.take_class(z, y), [x], order=2)
    assert tg.gradcheck(lambda z: losses.Huber(0.5)(soft, z), [soft + RNG.choice([-1, 1], (3, 4))], order=2)


def test_sparse_crossentropy_hessian_vector_product_matches_torch():
    torch = pytest.importorskip("torch")
    x, y, v = logits(), labels(), RNG.normal(0, 1, (B, C))
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    xv = Variable(x)
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            value = loss(y, xv)
        grad = inner.gradient(value, xv)
        projected = tg.reduce_sum(grad * v)
    hvp = outer.gradient(projected, xv).numpy()
    tx = torch.tensor(x, requires_grad=True)
    (tgrad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(tx, torch.tensor(y).long()), tx,
                                   create_graph=True)
    (thvp,) = torch.autograd.grad((tgrad * torch.tensor(v)).sum(), tx)
    np.testing.assert_allclose(hvp, thvp.numpy(), **TOL)


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------
SCCE = losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.mark.parametrize("trues, error, pattern", [
    (np.array([0, 1, 2, 3, 4, 5]), ValueError, r"SparseCategoricalCrossentropy: trues hold the label 5, outside "
                                               r"the range \[0, 5\) of predicts with 5 classes"),
    (np.array([0, 1, -2, 3, 4, 0]), ValueError, r"SparseCategoricalCrossentropy: trues hold the label -2"),
    (np.array([0, 1, 2, 3, 4, 0], np.uint8) + 200, ValueError, r"label 204, outside the range \[0, 5\)"),
    (np.array([0, 1.5, 2, 3, 4, 0]), ValueError, r"SparseCategoricalCrossentropy: trues must be integer class "
                                                 r"labels; dtype float64 labels hold the non-integral value 1\.5"),
    (np.array([0, np.nan, 2, 3, 4, 0]), ValueError, r"non-integral value nan"),
    (np.ones(6, bool), TypeError, r"SparseCategoricalCrossentropy: trues must be integer class labels, "
                                  r"got dtype bool"),
    (np.zeros(5, np.int32), ValueError, r"SparseCategoricalCrossentropy: trues of shape \(5,\) do not match "
                                        r"predicts of shape \(6, 5\): integer labels must have shape \(6,\) or "
                                        r"\(6, 1\)"),
    (np.eye(5)[[0, 1, 2, 3, 4, 0]], ValueError, r"one-hot trues need CategoricalCrossentropy"),
    ("abc", TypeError, r"SparseCategoricalCrossentropy: trues must be an array of integer class labels, got str"),
])
def test_sparse_label_errors(trues, error, pattern):
    with pytest.raises(error, match=pattern):
        SCCE(trues, logits())


def test_other_shape_and_dtype_errors():
    with pytest.raises(ValueError, match=r"CategoricalCrossentropy: trues of shape \(6,\) do not match predicts of "
                                         r"shape \(6, 5\).*integer class labels need SparseCategoricalCrossentropy"):
        losses.CategoricalCrossentropy(from_logits=True)(labels(), logits())
    with pytest.raises(ValueError, match=r"BinaryCrossentropy: trues of shape \(6, 2\) do not match predicts of "
                                         r"shape \(6, 3\)"):
        losses.BinaryCrossentropy()(np.ones((6, 2)), np.full((6, 3), 0.5))
    with pytest.raises(ValueError, match=r"MeanSquaredError: trues of shape \(6,\) do not match predicts of shape "
                                         r"\(6, 2\)"):
        losses.MeanSquaredError()(np.ones(6), np.ones((6, 2)))
    with pytest.raises(ValueError, match=r"predicts must have a class axis"):
        SCCE(np.array(1), np.array(0.5))
    with pytest.raises(TypeError, match=r"MeanAbsoluteError: argument trues must be a Variable, NumPy array"):
        losses.MeanAbsoluteError()(object(), np.ones(2))
    with pytest.raises(ValueError, match=r"MeanSquaredError: reduction must be one of 'mean'.*got 'avg'"):
        losses.MeanSquaredError(reduction="avg")
    with pytest.raises(ValueError, match=r"Huber: delta must be positive"):
        losses.Huber(delta=0)
    # the primitive checks too (also inside compiled graphs), naming itself
    with pytest.raises(ValueError, match=r"sparse_softmax_cross_entropy: labels of shape \(3,\) do not match "
                                         r"logits of shape \(6, 5\)"):
        loss_ops.sparse_softmax_cross_entropy(logits(), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"sparse_softmax_cross_entropy: label -1 is out of range"):
        loss_ops.sparse_softmax_cross_entropy(logits(), -np.ones(6, np.int64))


# ---------------------------------------------------------------------------------------
# Lookup and configs
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [
    ("mse", losses.MeanSquaredError), ("mean_squared_error", losses.MeanSquaredError),
    ("MeanSquaredError", losses.MeanSquaredError), ("mae", losses.MeanAbsoluteError),
    ("mean_absolute_error", losses.MeanAbsoluteError), ("huber", losses.Huber),
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ("categorical_crossentropy", losses.CategoricalCrossentropy),
    ("binary_crossentropy", losses.BinaryCrossentropy),
])
def test_get_by_name(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls and loss.reduction == "mean"


def test_get_other_identifiers_and_config_round_trip():
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum", name="ce")
    assert losses.get(loss) is loss
    assert losses.get(None) is None
    assert type(losses.get(losses.Huber)) is losses.Huber
    config = losses.serialize(loss)
    assert config == json.loads(json.dumps(config))
    assert config["config"] == {"name": "ce", "reduction": "sum", "from_logits": True, "ignore_class": None}
    again = losses.get(config)
    assert type(again) is losses.SparseCategoricalCrossentropy and again.get_config() == loss.get_config()
    assert losses.get(losses.serialize(losses.Huber(0.3))).delta == 0.3

    def my_loss(trues, predicts):
        return tg.reduce_mean(tg.square(predicts - trues), axis=-1)

    wrapped = losses.get(my_loss)
    assert isinstance(wrapped, losses.LossFunctionWrapper) and wrapped.name == "my_loss"
    t, p = np.zeros((4, 2)), RNG.normal(0, 1, (4, 2))
    assert float(wrapped(t, p)) == pytest.approx(float(losses.MeanSquaredError()(t, p)))
    restored = losses.deserialize(losses.serialize(wrapped), custom_objects={"my_loss": my_loss})
    assert restored.fn is my_loss
    builtin = losses.deserialize(losses.serialize(losses.LossFunctionWrapper(losses.huber, delta=0.5)))
    assert builtin.fn is losses.huber and builtin.fn_kwargs == {"delta": 0.5}
    with pytest.raises(ValueError, match=r"losses.get: unknown loss 'msq'; known names: mse"):
        losses.get("msq")
    with pytest.raises(TypeError, match=r"losses.get: cannot make a loss from int"):
        losses.get(3)
    with pytest.raises(ValueError, match=r"unknown loss class 'Nope'"):
        losses.get({"class_name": "Nope", "config": {}})


def test_functional_forms_and_subclassing():
    t, p = labels(), logits()
    per = losses.sparse_categorical_crossentropy(t, p, from_logits=True)
    assert per.shape == (B,)
    np.testing.assert_allclose(per.numpy(), loss_ops.sparse_softmax_cross_entropy(p, t).numpy())
    assert losses.mse is losses.mean_squared_error and losses.mae is losses.mean_absolute_error

    class Scaled(losses.Loss):
        def call(self, trues, predicts):
            return losses.mean_absolute_error(trues, predicts) * 2.0

    loss = Scaled(reduction="sum")
    assert loss.name == "scaled"
    assert float(loss(np.zeros((3, 2)), np.ones((3, 2)))) == pytest.approx(6.0)
    assert loss.get_config() == {"name": "scaled", "reduction": "sum"}


def test_rindow_accuracy_method():
    x = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
    y = np.array([0, 1, 1, 1])
    assert losses.SparseCategoricalCrossentropy(from_logits=True).accuracy(y, x) == 0.75
    assert losses.CategoricalCrossentropy().accuracy(np.eye(2)[y], x) == 0.75
    assert losses.BinaryCrossentropy(from_logits=True).accuracy(np.array([1, 0, 1]), np.array([2.0, -1.0, -0.5])) \
        == pytest.approx(2 / 3)
