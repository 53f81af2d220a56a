"""Optimizers: trajectories against torch.optim and the Keras 3 formulas, schedules,
clipping, None gradients, state save/restore, flat-buffer adoption, errors."""

from __future__ import annotations

import copy
import json
import math
import pickle
import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.nn import optimizers as O  # noqa: N812
from tapegrad.nn.optimizers import flat_engine

# Shapes: a matrix, a vector, a 0-d scalar (kept as a NumPy scalar by the Variable),
# and a matrix larger than the concatenation threshold (gradients handed to the kernel
# as separate arrays).
SHAPES = [(4, 3), (3,), (), (150, 120)]
assert math.prod(SHAPES[-1]) > flat_engine._CONCAT_MAX
SMALL = [(4, 3), (3,), ()]


def initial(shapes=SHAPES, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.uniform(-1.5, 1.5, s), dtype=dtype) for s in shapes]


def grad_fn(values, k):
    """A gradient that depends on the current values (so that errors compound) and on
    the step (so that it does not settle)."""
    return [0.5 * np.sin(3.0 * v + 0.3 * k) + 0.1 * v + 0.05 * math.cos(k) for v in values]


def run_tapegrad(opt, values, steps=20, grads=grad_fn, dtype=None):
    variables = [tg.Variable(np.asarray(v, dtype=dtype or v.dtype)) for v in values]
    for k in range(steps):
        current = [np.asarray(v.value()) for v in variables]
        opt.update(variables, [None if g is None else np.asarray(g, v.dtype) for g, v in
                               zip(grads(current, k), current)])
    return [np.asarray(v.value()) for v in variables]


# -- Keras 3 formulas, written per parameter in NumPy (natural grouping) ------------------
class KerasRef:
    """Keras 3's update_step for each optimizer, with its clipping and weight decay."""

    def __init__(self, kind, values, lr=0.001, *, weight_decay=None, clipnorm=None, global_clipnorm=None,
                 clipvalue=None, exclude=(), **hp):
        self.kind, self.lr, self.hp = kind, lr, hp
        self.p = [np.array(v, copy=True) for v in values]
        self.wd, self.clipnorm = weight_decay, clipnorm
        self.global_clipnorm, self.clipvalue = global_clipnorm, clipvalue
        self.exclude = set(exclude)
        self.it = 0
        z = [np.zeros_like(v) for v in values]
        if kind == "adagrad":
            self.acc = [np.full_like(v, hp.get("initial_accumulator_value", 0.1)) for v in values]
        self.m, self.v = copy.deepcopy(z), copy.deepcopy(z)
        self.vhat, self.avg, self.mom = copy.deepcopy(z), copy.deepcopy(z), copy.deepcopy(z)

    def current_lr(self):
        return self.lr(self.it) if callable(self.lr) else self.lr

    def clip(self, grads):
        if self.clipnorm:
            out = []
            for g in grads:
                if g is None:
                    out.append(None)
                    continue
                norm = np.sqrt(np.sum(g * g))
                out.append(g * self.clipnorm / max(norm, self.clipnorm))
            return out
        if self.global_clipnorm:
            norm = np.sqrt(sum(np.sum(g * g) for g in grads if g is not None))
            scale = self.global_clipnorm * min(1 / norm, 1 / self.global_clipnorm) + (norm - norm)
            return [None if g is None else g * scale for g in grads]
        if self.clipvalue:
            return [None if g is None else np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def step(self, grads):
        lr = self.current_lr()
        grads = self.clip(grads)
        for i, g in enumerate(grads):
            if g is None:
                continue
            p = self.p[i]
            if self.wd is not None and i not in self.exclude:
                p[...] = p - p * self.wd * lr
            getattr(self, "_" + self.kind)(i, p, g, lr)
        self.it += 1

    def _sgd(self, i, p, g, lr):
        mu, nesterov = self.hp.get("momentum", 0.0), self.hp.get("nesterov", False)
        if mu == 0:
            p -= g * lr
            return
        m = self.m[i]
        m[...] = -g * lr + m * mu
        p += (-g * lr + m * mu) if nesterov else m

    def _adam(self, i, p, g, lr):
        b1, b2 = self.hp.get("beta_1", 0.9), self.hp.get("beta_2", 0.999)
        eps = self.hp.get("epsilon", 1e-7)
        t = self.it + 1
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        m, v = self.m[i], self.v[i]
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        if self.hp.get("amsgrad"):
            self.vhat[i][...] = np.maximum(self.vhat[i], v)
            v = self.vhat[i]
        p -= (m * alpha) / (np.sqrt(v) + eps)

    def _rmsprop(self, i, p, g, lr):
        rho, mu = self.hp.get("rho", 0.9), self.hp.get("momentum", 0.0)
        eps = self.hp.get("epsilon", 1e-7)
        v = self.v[i]
        v[...] = rho * v + (1 - rho) * g * g
        if self.hp.get("centered"):
            a = self.avg[i]
            a[...] = rho * a + (1 - rho) * g
            denom = v - a * a + eps
        else:
            denom = v + eps
        inc = lr * g / np.sqrt(denom)
        if mu > 0:
            self.mom[i][...] = mu * self.mom[i] + inc
            p -= self.mom[i]
        else:
            p -= inc

    def _adagrad(self, i, p, g, lr):
        eps = self.hp.get("epsilon", 1e-7)
        self.acc[i] += g * g
        p -= lr * g / np.sqrt(self.acc[i] + eps)


def run_ref(ref, steps=20, grads=grad_fn):
    for k in range(steps):
        ref.step(grads([p.copy() for p in ref.p], k))
    return ref.p


def assert_close(got, want, rtol, atol=0.0):
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"parameter {i}")


# -- torch.optim trajectories (float64) ------------------------------------------------------
def run_torch(make, values, steps=20):
    torch = pytest.importorskip("torch")
    params = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    opt = make(torch, params)
    for k in range(steps):
        grads = grad_fn([p.detach().numpy().copy() for p in params], k)
        for p, g in zip(params, grads):
            p.grad = torch.tensor(np.asarray(g), dtype=torch.float64)
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True), (0.5, True)])
def test_sgd_matches_torch(momentum, nesterov):
    values = initial()
    got = run_tapegrad(O.SGD(0.05, momentum=momentum, nesterov=nesterov), values)
    want = run_torch(lambda t, ps: t.optim.SGD(ps, lr=0.05, momentum=momentum, nesterov=nesterov), values)
    assert_close(got, want, rtol=1e-12, atol=1e-14)
    assert not np.allclose(got[0], values[0])


# Keras adds RMSprop's and Adagrad's epsilon inside the square root, torch outside it;
# with epsilon = 0 the two formulas are the same. tapegrad requires epsilon > 0, so the
# torch comparisons give torch eps=0 and tapegrad TINY_EPSILON, which vanishes next to
# the float64 accumulators (the gradients here are never 0). The Keras placement with
# the default epsilon is checked against the NumPy Keras formula below.
TINY_EPSILON = 1e-30
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.8])
def test_rmsprop_matches_torch(centered, momentum):
    values = initial()
    got = run_tapegrad(O.RMSprop(0.01, rho=0.85, momentum=momentum, epsilon=TINY_EPSILON, centered=centered), values)
    want = run_torch(lambda t, ps: t.optim.RMSprop(ps, lr=0.01, alpha=0.85, eps=0.0, momentum=momentum,
                                                   centered=centered), values)
    assert_close(got, want, rtol=1e-11, atol=1e-13)


def test_adagrad_matches_torch():
    values = initial()
    got = run_tapegrad(O.Adagrad(0.1, initial_accumulator_value=0.1, epsilon=TINY_EPSILON), values)
    want = run_torch(lambda t, ps: t.optim.Adagrad(ps, lr=0.1, initial_accumulator_value=0.1, eps=0.0), values)
    assert_close(got, want, rtol=1e-12, atol=1e-14)


# Keras's Adam epsilon is "epsilon hat" (added to sqrt(v) after bias correction of the
# step size), torch's is added to sqrt(v)/sqrt(1 - beta_2^t): equal at epsilon = 0 (here
# torch's 0 against tapegrad's TINY_EPSILON, see above).
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adamw_matches_torch(amsgrad):
    values = initial()
    opt = O.AdamW(0.02, weight_decay=0.1, beta_1=0.8, beta_2=0.99, epsilon=TINY_EPSILON, amsgrad=amsgrad)
    got = run_tapegrad(opt, values)
    want = run_torch(lambda t, ps: t.optim.AdamW(ps, lr=0.02, betas=(0.8, 0.99), eps=0.0, weight_decay=0.1,
                                                 amsgrad=amsgrad), values)
    assert_close(got, want, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_matches_torch_at_epsilon_zero(amsgrad):
    values = initial()
    got = run_tapegrad(O.Adam(0.05, epsilon=TINY_EPSILON, amsgrad=amsgrad), values)
    want = run_torch(lambda t, ps: t.optim.Adam(ps, lr=0.05, eps=0.0, amsgrad=amsgrad), values)
    assert_close(got, want, rtol=1e-11, atol=1e-13)


# -- Keras formulas (defaults, epsilon placement, float32) -------------------------------------
KERAS_CASES = [
    ("adam", {}, {}),
    ("adam", {"learning_rate": 0.05, "beta_1": 0.7, "beta_2": 0.95, "epsilon": 1e-3}, {}),
    ("adam", {"learning_rate": 0.05, "amsgrad": True, "epsilon": 1e-2}, {}),
    ("sgd", {}, {}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}, {}),
    ("rmsprop", {}, {}),
    ("rmsprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True, "epsilon": 1e-2}, {}),
    ("adagrad", {}, {}),
    ("adagrad", {"learning_rate": 0.3, "initial_accumulator_value": 0.0, "epsilon": 1e-3}, {}),
]


def make_pair(kind, kwargs, values, **ref_kw):
    cls = {"adam": O.Adam, "sgd": O.SGD, "rmsprop": O.RMSprop, "adagrad": O.Adagrad}[kind]
    opt = cls(**kwargs)
    hp = {k: v for k, v in kwargs.items() if k != "learning_rate"}
    lr = kwargs.get("learning_rate", 0.01 if kind == "sgd" else 0.001)
    for key in ("weight_decay", "clipnorm", "global_clipnorm", "clipvalue"):
        if key in hp:
            ref_kw[key] = hp.pop(key)
    return opt, KerasRef(kind, values, lr, **hp, **ref_kw)


@pytest.mark.parametrize("kind, kwargs, _", KERAS_CASES)
def test_matches_keras_formula_float64(kind, kwargs, _):
    values = initial()
    opt, ref = make_pair(kind, kwargs, values)
    assert_close(run_tapegrad(opt, values), run_ref(ref), rtol=1e-11, atol=1e-13)


def fixed_grads(values, k):
    """Gradients that do not depend on the values: float32 rounding does not compound."""
    rng = np.random.default_rng(100 + k)
    return [rng.uniform(-1.0, 1.0, np.shape(v)) for v in values]


@pytest.mark.parametrize("kind, kwargs, _", KERAS_CASES)
def test_matches_keras_formula_float32(kind, kwargs, _):
    values = initial(dtype=np.float32)
    opt, ref = make_pair(kind, kwargs, [v.astype(np.float64) for v in values])
    got = run_tapegrad(opt, values, grads=fixed_grads)
    assert all(g.dtype == np.float32 for g in got)
    assert_close(got, run_ref(ref, grads=fixed_grads), rtol=1e-5, atol=1e-6)


def test_defaults_are_keras_3():
    adam = O.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert adam.amsgrad is False
    assert O.AdamW().weight_decay == 0.004 and O.AdamW().learning_rate == 0.001
    sgd = O.SGD()
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov) == (0.01, 0.0, False)
    rms = O.RMSprop()
    assert (rms.learning_rate, rms.rho, rms.momentum, rms.epsilon, rms.centered) == (0.001, 0.9, 0.0, 1e-7, False)
    ada = O.Adagrad()
    assert (ada.learning_rate, ada.initial_accumulator_value, ada.epsilon) == (0.001, 0.1, 1e-7)


def test_first_adam_step_is_lr_times_sign():
    """Keras's Adam: the first step is lr * g / (|g| + eps / sqrt(1 - beta_2))."""
    w = tg.Variable(np.array([1.0, -2.0, 3.0]))
    g = np.array([0.5, -4.0, 1e-3])
    O.Adam(0.1).update([w], [g])
    alpha = 0.1 * np.sqrt(1 - 0.999) / 0.1
    expected = np.array([1.0, -2.0, 3.0]) - alpha * (0.1 * g) / (np.sqrt(0.001) * np.abs(g) + 1e-7)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-13)


@pytest.mark.parametrize("kind", ["sgd", "adam", "rmsprop", "adagrad"])
def test_weight_decay_is_decoupled_and_uses_keras_order(kind):
    values = initial()
    kwargs = {"learning_rate": 0.05, "weight_decay": 0.3}
    opt, ref = make_pair(kind, kwargs, values)
    assert_close(run_tapegrad(opt, values), run_ref(ref), rtol=1e-11, atol=1e-13)


def test_exclude_from_weight_decay():
    values = initial(SMALL)
    names = ["dense/kernel", "dense/bias", "scale"]
    variables = [tg.Variable(v, name=n) for v, n in zip(values, names)]
    opt = O.AdamW(0.05, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"], var_list=[variables[2]])
    ref = KerasRef("adam", values, 0.05, weight_decay=0.5, exclude={1, 2})
    for k in range(10):
        grads = grad_fn([np.asarray(v.value()) for v in variables], k)
        opt.update(variables, grads)
        ref.step(grad_fn([p.copy() for p in ref.p], k))
    assert_close([v.numpy() for v in variables], ref.p, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="before the first update"):
        opt.exclude_from_weight_decay(var_names=["kernel"])


# -- schedules ---------------------------------------------------------------------------------
def test_exponential_and_inverse_time_decay_values():
    e = O.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert [e(s) for s in (0, 5, 10, 25)] == pytest.approx([0.1, 0.1 * 0.5**0.5, 0.05, 0.1 * 0.5**2.5], rel=1e-15)
    es = O.ExponentialDecay(0.1, 10, 0.5, staircase=True)
    assert [es(s) for s in (0, 9, 10, 19, 20)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025], rel=1e-15)
    i = O.InverseTimeDecay(1.0, decay_steps=4, decay_rate=0.5)
    assert [i(s) for s in (0, 2, 4, 8)] == pytest.approx([1.0, 1 / 1.25, 1 / 1.5, 1 / 2.0], rel=1e-15)
    i_s = O.InverseTimeDecay(1.0, 4, 0.5, staircase=True)
    assert [i_s(s) for s in (3, 4, 7, 8)] == pytest.approx([1.0, 1 / 1.5, 1 / 1.5, 1 / 2.0], rel=1e-15)


def test_piecewise_and_cosine_decay_values():
    p = O.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [p(s) for s in (0, 10, 11, 20, 21, 1000)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    c = O.CosineDecay(0.2, decay_steps=100, alpha=0.1)
    for s in (0, 30, 100, 150):
        frac = min(s, 100) / 100
        assert c(s) == pytest.approx(0.2 * (0.9 * 0.5 * (1 + math.cos(math.pi * frac)) + 0.1), rel=1e-14)
    w = O.CosineDecay(0.0, decay_steps=10, warmup_target=1.0, warmup_steps=5)
    assert [w(s) for s in (0, 1, 5)] == pytest.approx([0.0, 0.2, 1.0])
    assert w(15) == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="one more element"):
        O.PiecewiseConstantDecay([1, 2], [1.0])
    with pytest.raises(ValueError, match="increasing"):
        O.PiecewiseConstantDecay([2, 1], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="decay_steps"):
        O.ExponentialDecay(0.1, 0, 0.5)


@pytest.mark.parametrize(
    "lr, keras_lr",
    [
        (O.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.7),) * 2,
        (O.InverseTimeDecay(0.2, decay_steps=2, decay_rate=1.0, staircase=True),) * 2,
        # a user-defined schedule gets Rindow's 1-based step (API §9): the first update calls it with 1
        (lambda step: 0.05 * step, lambda step: 0.05 * (step + 1)),
    ],
    ids=["exponential", "inverse_time", "callable"],
)
def test_schedule_is_called_with_the_number_of_updates_done(lr, keras_lr):
    values = initial(SMALL)
    got = run_tapegrad(O.SGD(lr), values, steps=12)
    want = run_ref(KerasRef("sgd", values, keras_lr), steps=12)
    assert_close(got, want, rtol=1e-13, atol=1e-15)
    # and Adam with a schedule (bias correction and the rate use the same step)
    got = run_tapegrad(O.Adam(lr), values, steps=12)
    want = run_ref(KerasRef("adam", values, keras_lr), steps=12)
    assert_close(got, want, rtol=1e-11, atol=1e-13)


def test_learning_rate_property_and_setter():
    opt = O.SGD(O.ExponentialDecay(1.0, 1, 0.5))
    w = tg.Variable([1.0])
    assert opt.learning_rate == 1.0
    opt.update([w], [np.ones(1, np.float32)])
    opt.update([w], [np.ones(1, np.float32)])
    assert opt.iterations == 2 and opt.learning_rate == 0.25
    np.testing.assert_allclose(w.numpy(), [1.0 - 1.0 - 0.5])
    with pytest.raises(TypeError, match="schedule"):
        opt.learning_rate = 0.1
    opt2 = O.Adam(0.01)
    opt2.learning_rate = 0.5
    assert opt2.learning_rate == 0.5 and opt2.get_config()["learning_rate"] == 0.5
    calls = []
    opt3 = O.SGD(lambda: calls.append(1) or 0.1)  # a Keras-style callable without arguments
    opt3.update([w], [np.ones(1, np.float32)])
    assert calls == [1]


def test_schedule_serialization_round_trip():
    for sched in (O.ExponentialDecay(0.1, 7, 0.9, staircase=True), O.InverseTimeDecay(0.3, 2, 0.5),
                  O.PiecewiseConstantDecay([3], [0.1, 0.01]), O.CosineDecay(0.1, 50, 0.05, warmup_target=0.2,
                                                                             warmup_steps=3)):
        opt = O.Adam(sched)
        config = json.loads(json.dumps(opt.get_config()))
        again = O.Adam.from_config(config)
        lr2 = again.learning_rate_schedule
        assert type(lr2) is type(sched) and lr2.get_config() == sched.get_config()
        assert [lr2(s) for s in range(0, 60, 7)] == [sched(s) for s in range(0, 60, 7)]


def test_named_function_schedule_needs_custom_objects():
    def my_schedule(step):
        return 0.1 / (1 + step)

    config = O.SGD(my_schedule).get_config()
    assert config["learning_rate"] == {"class_name": "function", "config": {"name": "my_schedule"}}
    with pytest.raises(ValueError, match="custom_objects"):
        O.SGD.from_config(config)
    assert O.SGD.from_config(config, custom_objects={"my_schedule": my_schedule}).learning_rate_schedule is my_schedule
    with pytest.raises(TypeError, match="cannot serialize"):
        O.SGD(lambda s: 0.1).get_config()


# -- clipping -----------------------------------------------------------------------------------
@pytest.mark.parametrize("clip", [{"clipnorm": 0.5}, {"global_clipnorm": 0.8}, {"clipvalue": 0.2},
                                  {"clipnorm": 100.0}, {"global_clipnorm": 1e3}])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_clipping_matches_keras(clip, kind):
    values = initial()
    kwargs = {"learning_rate": 0.1, **clip}
    opt, ref = make_pair(kind, kwargs, values)
    assert_close(run_tapegrad(opt, values, steps=8), run_ref(ref, steps=8), rtol=1e-11, atol=1e-13)


def test_clipping_values_directly():
    a, b = tg.Variable(np.zeros(2)), tg.Variable(np.zeros(2))
    ga, gb = np.array([3.0, 4.0]), np.array([0.3, 0.4])  # norms 5 and 0.5
    O.SGD(1.0, clipnorm=1.0).update([a, b], [ga, gb])
    np.testing.assert_allclose(a.numpy(), [-0.6, -0.8], rtol=1e-15)
    np.testing.assert_array_equal(b.numpy(), [-0.3, -0.4])  # under the norm: unchanged, exactly
    a.assign(np.zeros(2)), b.assign(np.zeros(2))
    O.SGD(1.0, global_clipnorm=1.0).update([a, b], [ga, gb])  # global norm sqrt(25.25)
    s = 1.0 / math.sqrt(25.25)
    np.testing.assert_allclose(np.concatenate([a.numpy(), b.numpy()]), -s * np.array([3, 4, 0.3, 0.4]), rtol=1e-15)
    a.assign(np.zeros(2))
    O.SGD(1.0, clipvalue=0.5).update([a], [np.array([3.0, -0.25])])
    np.testing.assert_array_equal(a.numpy(), [-0.5, 0.25])
    c = tg.Variable(np.zeros(2))
    O.SGD(1.0, global_clipnorm=1.0).update([c], [np.array([np.inf, 1.0])])
    assert np.isnan(c.numpy()).all()  # Keras: a non-finite global norm makes the update NaN


def test_only_one_clipping_mode():
    with pytest.raises(ValueError, match="only one of clipnorm, clipvalue and global_clipnorm"):
        O.Adam(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="clipnorm must be positive"):
        O.SGD(clipnorm=-1.0)


# -- None gradients ----------------------------------------------------------------------------
@pytest.mark.parametrize("clip", [{}, {"clipnorm": 0.3}])
@pytest.mark.parametrize("shapes", [SHAPES, SMALL], ids=["large", "small"])
def test_none_gradients_are_skipped(shapes, clip):
    values = initial(shapes)
    n = len(values)
    skip = {1, n - 1}

    def grads(vals, k):
        g = grad_fn(vals, k)
        return [None if (i in skip and k < 4) else gi for i, gi in enumerate(g)]

    opt = O.Adam(0.05, weight_decay=0.1, **clip)
    variables = [tg.Variable(v) for v in values]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(4):
            opt.update(variables, grads([v.numpy() for v in variables], k))
    assert any("no gradient for" in str(w.message) for w in caught)
    state = opt.get_state()
    for i in skip:
        np.testing.assert_array_equal(variables[i].numpy(), values[i])  # untouched, weight decay too
        assert not state[f"m/{i}"].any() and not state[f"v/{i}"].any()
    for k in range(4, 9):
        opt.update(variables, grads([v.numpy() for v in variables], k))
    ref = KerasRef("adam", values, 0.05, weight_decay=0.1, **clip)
    assert_close([v.numpy() for v in variables], run_ref(ref, steps=9, grads=grads), rtol=1e-11, atol=1e-13)


def test_all_gradients_none_is_an_error_and_changes_nothing():
    w = tg.Variable([1.0, 2.0])
    opt = O.Adam()
    with pytest.raises(ValueError, match="no gradient was provided for any"):
        opt.update([w], [None])
    assert opt.iterations == 0
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])


def test_empty_update_is_a_no_op():
    opt = O.SGD()
    opt.update([], [])
    assert opt.apply_gradients([]) == 0 and opt.iterations == 0


# -- API forms ------------------------------------------------------------------------------
def test_apply_gradients_apply_and_gradient_types_agree():
    values = initial(SMALL, dtype=np.float32)
    grads = grad_fn(values, 0)
    results = []
    for form in ("update", "apply_gradients", "apply", "variables"):
        variables = [tg.Variable(v) for v in values]
        opt = O.Adam(0.1)
        gs = [np.asarray(g, np.float32) for g in grads]
        if form == "update":
            opt.update(variables, gs)
        elif form == "apply_gradients":
            assert opt.apply_gradients(zip(gs, variables)) == 1
        elif form == "apply":
            opt.build(variables)
            opt.apply(gs)
        else:  # gradients as Variables, float64 (cast to the parameters' dtype)
            opt.update(tuple(variables), [tg.Variable(g.astype(np.float64)) for g in gs])
        results.append([v.numpy().copy() for v in variables])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_minimize_and_tape_gradients():
    w = tg.Variable(np.array([3.0, -1.0]))
    opt = O.SGD(0.25)
    for _ in range(3):
        opt.minimize(lambda: tg.reduce_sum(w * w), [w])
    np.testing.assert_allclose(w.numpy(), np.array([3.0, -1.0]) * 0.5**3)


def test_mixed_dtypes_float16_and_integer_gradients():
    values = [np.array([[0.5, -1.0]], np.float32), np.array([1.5, 2.0, -3.0]), np.array([0.25, -0.5], np.float16)]
    variables = [tg.Variable(v) for v in values]
    opt = O.Adam(0.01)
    ref = KerasRef("adam", [v.astype(np.float64) for v in values], 0.01)
    for k in range(5):
        grads = grad_fn([v.numpy().astype(np.float64) for v in variables], k)
        opt.update(variables, [g.astype(v.dtype) for g, v in zip(grads, variables)])
        ref.step(grads)
    assert [v.dtype for v in variables] == [np.float32, np.float64, np.float16]
    np.testing.assert_allclose(variables[0].numpy(), ref.p[0], rtol=1e-5)
    np.testing.assert_allclose(variables[2].numpy(), ref.p[2], rtol=3e-3)
    assert opt._layout.where[2][0].slots["v"].dtype == np.float32  # float16 moments kept in float32
    i = tg.Variable(np.array([1.0, 1.0]))
    O.SGD(0.5).update([i], [np.array([1, 2])])  # integer gradients are cast
    np.testing.assert_array_equal(i.numpy(), [0.5, 0.0])


# -- state ----------------------------------------------------------------------------------
STATE_CASES = [
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"learning_rate": 0.05}),
    ("Adam", {"learning_rate": 0.05}),
    ("Adam", {"learning_rate": O.ExponentialDecay(0.05, 4, 0.8), "amsgrad": True, "clipnorm": 0.5}),
    ("AdamW", {"learning_rate": 0.05, "weight_decay": 0.2, "global_clipnorm": 1.0}),
    ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
    ("Adagrad", {"learning_rate": 0.1, "clipvalue": 0.3}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls_name, kwargs", STATE_CASES)
@pytest.mark.parametrize("build_first", [False, True])
def test_state_round_trip_continues_bit_for_bit(cls_name, kwargs, dtype, build_first):
    cls = getattr(O, cls_name)
    values = initial(dtype=dtype)

    def step(opt, variables, k):
        grads = grad_fn([v.numpy() for v in variables], k)
        opt.update(variables, [g.astype(dtype) for g in grads])

    straight = [tg.Variable(v) for v in values]
    opt = cls(**kwargs)
    for k in range(20):
        step(opt, straight, k)

    first = [tg.Variable(v) for v in values]
    opt1 = cls(**kwargs)
    for k in range(10):
        step(opt1, first, k)
    state = opt1.get_state()
    config = json.loads(json.dumps(opt1.get_config()))
    weights = [v.numpy().copy() for v in first]
    for k in range(10, 12):  # the first optimizer goes on: the saved state must not move
        step(opt1, first, k)

    resumed = [tg.Variable(w) for w in weights]
    opt2 = cls.from_config(config)
    if build_first:
        opt2.build(resumed)
    opt2.set_state(state)
    assert opt2.iterations == 10
    for k in range(10, 20):
        step(opt2, resumed, k)
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for key, value in opt.get_state().items():
        np.testing.assert_array_equal(opt2.get_state()[key], value)


def test_state_contents_and_copies():
    w = tg.Variable(np.array([1.0, 2.0]), name="w")
    opt = O.Adam(0.1)
    assert opt.get_state().keys() == {"iterations"}
    opt.update([w], [np.array([1.0, -1.0])])
    state = opt.get_state()
    assert sorted(state) == ["iterations", "m/0", "v/0"]
    assert state["iterations"].dtype == np.int64 and int(state["iterations"]) == 1
    np.testing.assert_allclose(state["m/0"], [1.0, -1.0])  # m / (1 - beta_1) after one step: g
    state["m/0"][:] = 99.0  # a copy
    assert opt.get_state()["m/0"][0] == 1.0
    fresh = O.Adam(0.1)
    fresh.set_state(opt.get_state())  # before the first update: kept until built
    assert set(fresh.get_state()) == {"iterations", "m/0", "v/0"}


def test_set_state_errors_change_nothing():
    w = tg.Variable(np.array([1.0, 2.0]))
    opt = O.Adam(0.1)
    opt.update([w], [np.array([1.0, -1.0])])
    before = opt.get_state()
    bad = dict(before, **{"m/0": np.zeros(3)})
    with pytest.raises(ValueError, match=r"'m/0' has shape \(3,\), but parameter 0 has shape \(2,\)"):
        opt.set_state(bad)
    with pytest.raises(ValueError, match="unexpected entry 'momentum/0'"):
        opt.set_state(dict(before, **{"momentum/0": np.zeros(2)}))
    with pytest.raises(ValueError, match="lacks"):
        opt.set_state({"iterations": np.array(3), "m/0": np.zeros(2)})
    with pytest.raises(ValueError, match="'iterations'"):
        opt.set_state({"m/0": np.zeros(2), "v/0": np.zeros(2)})
    after = opt.get_state()
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    pending = O.Adam(0.1)
    pending.set_state({"iterations": np.array(1), "m/0": np.zeros(3), "v/0": np.zeros(3)})
    with pytest.raises(ValueError, match="has shape"):
        pending.update([w], [np.ones(2)])
    np.testing.assert_array_equal(w.numpy(), after["m/0"] * 0 + w.numpy())
    assert pending.iterations == 1


# -- flat buffers ----------------------------------------------------------------------------------
def test_parameters_become_views_of_one_flat_buffer_per_dtype():
    values = initial(dtype=np.float32)
    variables = [tg.Variable(v) for v in values]
    opt = O.Adam()
    opt.update(variables, grad_fn(values, 0))
    group = opt._layout.groups[0]
    for v in variables:
        if v.shape:
            assert np.shares_memory(v.value(), group.param)
            assert v.value().flags.c_contiguous
        else:
            assert isinstance(v._value, np.float32)  # 0-d stays a NumPy scalar
    assert group.param.ctypes.data % 64 == 0


def test_assign_and_set_weights_after_adoption():
    from tapegrad.nn.layers import Layer

    values = initial(SMALL)
    layer = Layer(name="holder")
    layer._weights = [tg.Variable(v, name=f"holder/{i}") for i, v in enumerate(values)]
    opt = O.Adam(0.05)
    ref = KerasRef("adam", values, 0.05)
    for k in range(3):
        opt.update(layer.trainable_variables(), grad_fn([v.numpy() for v in layer.variables()], k))
        ref.step(grad_fn([p.copy() for p in ref.p], k))
    new = [v * 0.5 + 1.0 for v in ref.p]
    layer.set_weights(new)  # writes into the flat buffer
    ref.p = [np.array(v) for v in new]
    layer.variables()[0].assign(np.full((4, 3), 0.25))
    ref.p[0][...] = 0.25
    layer.variables()[2].assign(7.0)  # 0-d: rebinds a scalar, picked up by identity
    ref.p[2][...] = 7.0
    for k in range(3, 6):
        opt.update(layer.trainable_variables(), grad_fn([v.numpy() for v in layer.variables()], k))
        ref.step(grad_fn([p.copy() for p in ref.p], k))
    assert_close([v.numpy() for v in layer.variables()], ref.p, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(np.stack(layer.get_weights()[0]), layer.variables()[0].numpy())


def test_params_shared_between_two_optimizers():
    values = initial(SMALL)
    shared = [tg.Variable(v) for v in values]
    only_a = tg.Variable(np.array([1.0, -1.0]))
    opt_a, opt_b = O.Adam(0.05), O.SGD(0.1, momentum=0.9)
    ref_a = KerasRef("adam", values + [np.array([1.0, -1.0])], 0.05)
    ref_b = KerasRef("sgd", values, 0.1, momentum=0.9)
    for k in range(6):
        opt_a.update(shared + [only_a], grad_fn([v.numpy() for v in shared + [only_a]], k))
        ref_a.step(grad_fn([p.copy() for p in ref_a.p], k))
        ref_b.p = [p.copy() for p in ref_a.p[:3]]
        opt_b.update(shared, grad_fn([v.numpy() for v in shared], k + 100))
        ref_b.step(grad_fn([p.copy() for p in ref_b.p], k + 100))
        ref_a.p[:3] = [p.copy() for p in ref_b.p]
    assert_close([v.numpy() for v in shared], ref_b.p, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(only_a.numpy(), ref_a.p[3], rtol=1e-12)


def test_reordered_or_new_variables_keep_positional_slots():
    values = initial(SMALL)
    opt = O.Adam(0.05)
    ref = KerasRef("adam", values, 0.05)
    variables = [tg.Variable(v) for v in values]
    for k in range(3):
        opt.update(variables, grad_fn([v.numpy() for v in variables], k))
        ref.step(grad_fn([p.copy() for p in ref.p], k))
    # new Variable objects (e.g. a reloaded model) with the same shapes: slots by position
    variables = [tg.Variable(v.numpy()) for v in variables]
    for k in range(3, 6):
        opt.update(variables, grad_fn([v.numpy() for v in variables], k))
        ref.step(grad_fn([p.copy() for p in ref.p], k))
    assert_close([v.numpy() for v in variables], ref.p, rtol=1e-12, atol=1e-14)
    # a Variable whose storage was replaced behind the optimizer's back is adopted again
    variables[0]._value = variables[0]._value.copy() + 1.0
    ref.p[0] += 1.0
    opt.update(variables, grad_fn([v.numpy() for v in variables], 6))
    ref.step(grad_fn([p.copy() for p in ref.p], 6))
    assert_close([v.numpy() for v in variables], ref.p, rtol=1e-12, atol=1e-14)


def test_gradients_and_copies_work_on_adopted_variables():
    w = tg.Variable(np.array([[1.0, 2.0], [3.0, 4.0]]))
    opt = O.SGD(0.1)
    opt.update([w], [np.ones((2, 2))])
    with tg.GradientTape() as tape:
        loss = tg.reduce_sum(w * w)
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), 2 * w.numpy())
    clone = copy.deepcopy(w)
    pickled = pickle.loads(pickle.dumps(w))
    opt.update([w], [np.ones((2, 2))])
    np.testing.assert_allclose(clone.numpy(), [[0.9, 1.9], [2.9, 3.9]])
    np.testing.assert_allclose(pickled.numpy(), [[0.9, 1.9], [2.9, 3.9]])
    np.testing.assert_allclose(w.numpy(), [[0.8, 1.8], [2.8, 3.8]])


# -- errors ------------------------------------------------------------------------------------
def test_shape_error_names_everything_and_changes_nothing():
    a = tg.Variable(np.ones((2, 3)), name="dense/kernel")
    b = tg.Variable(np.ones(3))
    opt = O.Adam(0.1)
    opt.update([a, b], [np.ones((2, 3)), np.ones(3)])
    before = [a.numpy().copy(), b.numpy().copy()]
    state = opt.get_state()
    with pytest.raises(ValueError) as info:
        opt.update([b, a], [np.ones(3), np.ones((3, 2))])
    msg = str(info.value)
    assert "Adam" in msg and "'dense/kernel'" in msg and "parameter 1" in msg
    assert "(3, 2)" in msg and "(2, 3)" in msg
    with pytest.raises(ValueError, match=r"parameter 1 has shape \(2, 4\)|parameter 1 \('x'\)"):
        opt.update([a, tg.Variable(np.ones((2, 4)), name="x")], [np.ones((2, 3)), np.ones((2, 5))])
    with pytest.raises(ValueError, match=r"Adam 'mine'\.update: the gradient of parameter 0 has shape \(4,\)"):
        O.Adam(name="mine").update([tg.Variable(np.ones(3))], [np.ones(4)])
    np.testing.assert_array_equal(a.numpy(), before[0])
    np.testing.assert_array_equal(b.numpy(), before[1])
    assert opt.iterations == 1
    for key, value in opt.get_state().items():
        np.testing.assert_array_equal(value, state[key])


def test_other_errors():
    w = tg.Variable(np.ones(2), name="w")
    opt = O.SGD()
    with pytest.raises(ValueError, match=r"SGD\.update: got 1 parameters but 2 gradients"):
        opt.update([w], [np.ones(2), np.ones(2)])
    with pytest.raises(TypeError, match="parameter 0 is a ndarray, not a Variable"):
        opt.update([np.ones(2)], [np.ones(2)])
    with pytest.raises(TypeError, match=r"the gradient of parameter 0 \('w'\) must be a Variable, an array or None"):
        opt.update([w], ["nope"])
    with pytest.raises(TypeError, match="only float Variables"):
        opt.update([tg.Variable(np.array([1, 2]))], [np.ones(2)])
    with pytest.raises(ValueError, match="same Variable as parameter 0"):
        O.SGD().update([w, w], [np.ones(2), np.ones(2)])
    opt.update([w], [np.ones(2)])
    with pytest.raises(ValueError, match=r"built for 1 parameters .* use one optimizer per set"):
        opt.update([w, tg.Variable(np.ones(3))], [np.ones(2), np.ones(3)])
    with pytest.raises(TypeError, match=r"\(gradient, variable\) pairs"):
        opt.apply_gradients([w])
    for bad in (lambda: O.Adam(beta_1=1.0), lambda: O.Adam(epsilon=-1.0), lambda: O.SGD(momentum=1.5),
                lambda: O.RMSprop(rho=-0.1), lambda: O.Adagrad(initial_accumulator_value=-1.0),
                lambda: O.AdamW(weight_decay=None), lambda: O.SGD(learning_rate=float("nan"))):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(TypeError, match="learning_rate must be"):
        O.SGD(learning_rate="fast")


# -- get / serialize / builders ------------------------------------------------------------------
def test_get_serialize_and_builders():
    for name, cls in [("sgd", O.SGD), ("Adam", O.Adam), ("adamw", O.AdamW), ("RMSprop", O.RMSprop),
                      ("adagrad", O.Adagrad)]:
        opt = O.get(name)
        assert type(opt) is cls
        again = O.deserialize(json.loads(json.dumps(O.serialize(opt))))
        assert type(again) is cls and again.get_config() == opt.get_config()
    adam = O.Adam(0.3)
    assert O.get(adam) is adam
    assert O.get({"class_name": "SGD", "config": {"learning_rate": 0.2}}).learning_rate == 0.2
    assert type(O.get(O.RMSprop)) is O.RMSprop
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        O.get("lbfgs")
    with pytest.raises(TypeError, match="cannot interpret"):
        O.get(None)
    nn = tg.NeuralNetworks()
    assert type(nn.optimizers.Adam()) is O.Adam and tg.optimizers.AdamW is O.AdamW
    config = O.Adam(0.01, beta_1=0.8, amsgrad=True, clipnorm=2.0, name="opt").get_config()
    assert config == {"name": "opt", "learning_rate": 0.01, "weight_decay": None, "clipnorm": 2.0,
                      "global_clipnorm": None, "clipvalue": None, "beta_1": 0.8, "beta_2": 0.999,
                      "epsilon": 1e-7, "amsgrad": True}


def test_kernel_accepts_flat_or_pieces():
    rng = np.random.default_rng(3)
    p = rng.standard_normal(10)
    g = rng.standard_normal(10)
    out = []
    for grad in (g, [g[:4].reshape(2, 2), g[4:5], g[5:]]):
        pp, m, v, t = p.copy(), np.zeros(10), np.zeros(10), np.zeros(10)
        scale, eps = O.kernels.adam_coefficients(0.1, 0, 0.9, 0.999, 1e-7)
        O.kernels.adam_kernel(pp, grad, m, v, None, t, scale, eps, 0.9, 0.999)
        out.append(pp)
    np.testing.assert_array_equal(out[0], out[1])
    with pytest.raises(ValueError, match="pieces hold 9 elements"):
        O.kernels.adam_kernel(p, [g[:9]], m, v, None, t, 0.1, 0.1, 0.9, 0.999)


# -- threads, subnormal flushing -------------------------------------------------------------------
@pytest.mark.parametrize("kind, kwargs", [("Adam", {"amsgrad": True}), ("AdamW", {"clipnorm": 0.5}),
                                          ("SGD", {"momentum": 0.9, "nesterov": True}),
                                          ("RMSprop", {"centered": True, "momentum": 0.3}), ("Adagrad", {})])
def test_threaded_updates_are_bit_for_bit_the_same(kind, kwargs, monkeypatch):
    from tapegrad.nn.optimizers import _parallel

    values = initial(SHAPES + [(5, 7)], dtype=np.float32)
    results = []
    for threads, split_min, chunk in ((1, 1 << 30, 1 << 16), (1, 16, 1000), (1, 16, 1 << 16), (2, 16, 1 << 16),
                                      (3, 16, 1 << 16)):
        monkeypatch.setattr(_parallel, "SPLIT_MIN", split_min)
        monkeypatch.setattr(_parallel, "CHUNK", chunk)
        monkeypatch.setattr(_parallel, "_threads", threads)
        opt = getattr(O, kind)(learning_rate=0.01, **kwargs)
        results.append(run_tapegrad(opt, values, steps=6, grads=fixed_grads))
    assert O.get_num_threads() == 3
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_concurrent_updates_from_two_threads(monkeypatch):
    import threading

    from tapegrad.nn.optimizers import _parallel

    monkeypatch.setattr(_parallel, "SPLIT_MIN", 16)
    monkeypatch.setattr(_parallel, "_threads", 2)
    values = initial(dtype=np.float32)
    expected = run_tapegrad(O.Adam(0.01), values, steps=40, grads=fixed_grads)
    results: dict[int, list] = {}

    def train(i):
        results[i] = run_tapegrad(O.Adam(0.01), values, steps=40, grads=fixed_grads)

    threads = [threading.Thread(target=train, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        for a, b in zip(results[i], expected):
            np.testing.assert_array_equal(a, b)
    # while another call holds the workers, the parts run inline on the calling thread
    with _parallel._busy:
        inline = run_tapegrad(O.Adam(0.01), values, steps=40, grads=fixed_grads)
    for a, b in zip(inline, expected):
        np.testing.assert_array_equal(a, b)


def test_chooser_runs_the_faster_way_and_keeps_checking():
    from tapegrad.nn.optimizers import _parallel

    chooser = _parallel.Chooser()
    cost = {0: 3.0, 1: 1.0}
    picks = []
    for call in range(3000):
        if call == 1000:
            cost = {0: 1.0, 1: 3.0}  # the machine's load changed
        way = chooser.pick()
        picks.append(way)
        chooser.record(way, cost[way])
    assert picks[:2] == [0, 1]
    # the faster way, and a look at the other one that backs off while it stays slower
    assert [k + 1 for k in range(2, 1000) if picks[k] == 0] == [16, 32, 64, 128, 256, 512]
    # switched at the first look after the change (call 1024), and still looking
    assert picks[1000:1023] == [1] * 23 and picks[1023:1039] == [0] * 16
    assert 0 < picks[2000:].count(1) < 10


def test_cut_grad_and_worker_errors():
    from tapegrad.nn.optimizers import _parallel

    g = [np.arange(6.0).reshape(2, 3), np.arange(6.0, 8.0), np.arange(8.0, 20.0)]
    offsets = [0, 6, 8, 20]
    for cuts in ([0, 3, 20], [0, 6, 8, 20], [0, 7, 9, 20], [0, 20]):
        parts = _parallel.cut_grad(g, _parallel.cut_plan(offsets, cuts), cuts)
        for (a, b), part in zip(zip(cuts, cuts[1:]), parts):
            np.testing.assert_array_equal(np.concatenate([np.ravel(x) for x in part]), np.arange(a, b, dtype=float))
    assert _parallel.bounds(1000, 3) == [0, 320, 656, 1000]

    def fn(k):
        if k == 2:
            raise RuntimeError("part 2 failed")

    with pytest.raises(RuntimeError, match="part 2 failed"):
        _parallel.run_parts(fn, [(0,), (1,), (2,)])
    seen = []
    _parallel.run_parts(seen.append, [(0,), (1,), (2,)])  # the workers survived
    assert sorted(seen) == [0, 1, 2]
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        O.set_num_threads(0)


def test_decaying_slots_are_flushed_before_they_become_subnormal():
    w = tg.Variable(np.ones(4, np.float32))
    opt = O.Adam(0.01)
    opt.update([w], [np.full(4, 1e-3, np.float32)])
    zero = np.zeros(4, np.float32)
    m_min = np.inf
    for _ in range(1, 800):  # zero gradients: m decays by 0.9 per step
        opt.update([w], [zero])
        m = opt.get_state()["m/0"]
        assert not np.any((m != 0) & (np.abs(m) < np.finfo(np.float32).tiny)), "a subnormal moment"
        m_min = min(m_min, float(np.abs(m).max()) if m.any() else m_min)
    assert not opt.get_state()["m/0"].any() and opt.get_state()["v/0"].all()
    assert m_min < 1e-24  # it did decay that far before being flushed
    # SGD's momentum is flushed too
    opt0 = O.SGD(0.01, momentum=0.5)
    u = tg.Variable(np.ones(1, np.float32))
    opt0.update([u], [np.ones(1, np.float32)])
    for _ in range(130):  # 0.01 * 0.5^k is subnormal for k > 119
        opt0.update([u], [np.zeros(1, np.float32)])
        mom = opt0.get_state()["momentum/0"][0]
        assert mom == 0 or abs(mom) >= np.finfo(np.float32).tiny
    assert mom == 0.0
    opt1 = O.Adam(0.01, epsilon=1e-20)  # below FLUSH_MIN_EPSILON: no flush
    x = tg.Variable(np.ones(1, np.float32))
    opt1.update([x], [np.full(1, 1e-3, np.float32)])
    for _ in range(850):
        opt1.update([x], [np.zeros(1, np.float32)])
    assert 0 < abs(opt1.get_state()["m/0"][0]) < np.finfo(np.float32).tiny  # subnormal, as the formula says


@pytest.mark.parametrize("make, steps, cut", [(lambda: O.Adam(0.1), 300, 257),
                                              (lambda: O.SGD(0.1, momentum=0.5), 70, 33)], ids=["adam", "sgd"])
def test_state_round_trip_across_flushes(make, steps, cut):
    values = initial(SMALL, dtype=np.float32)

    def grads(vals, k):  # tiny gradients, then 0 for half of the entries: their slots get flushed
        g = fixed_grads(vals, k)
        return [gi * 1e-20 * ((np.arange(gi.size) % 2).reshape(gi.shape) if k > 3 else 1.0) for gi in g]

    def run(opt, variables, ks):
        for k in ks:
            opt.update(variables, [g.astype(np.float32) for g in grads([v.numpy() for v in variables], k)])

    straight = [tg.Variable(v) for v in values]
    opt = make()
    run(opt, straight, range(steps))
    assert any((v == 0).any() for k, v in opt.get_state().items() if k != "iterations")  # flushed
    first = [tg.Variable(v) for v in values]
    opt1 = make()
    run(opt1, first, range(cut))
    resumed = [tg.Variable(v.numpy()) for v in first]
    opt2 = make()
    opt2.set_state(opt1.get_state())
    run(opt2, resumed, range(cut, steps))
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
