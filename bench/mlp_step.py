"""MLP training step: 784 -> 256 (ReLU) -> 256 (ReLU) -> 10, softmax cross-entropy from
logits (mean over the batch), Adam (lr 1e-3), float32, a fixed synthetic batch. One step =
forward + backward + Adam update, ending with float(loss); reported in milliseconds.

    python bench/mlp_step.py --batch 64
    python bench/mlp_step.py --batch 512 --framework tapegrad,tapegrad_function,torch

Frameworks: tapegrad (eager: nn.layers.Dense, SparseCategoricalCrossentropy(from_logits=True),
GradientTape, nn.optimizers.Adam().update), tapegrad_function (that step, update included,
in one g.Function), torch (eager, nn.Linear + torch.optim.Adam), numpy (hand-written
forward, backward and per-parameter Adam), jax_jit (the whole step under jax.jit).
All start from the same weights; each checks its first loss against NumPy's.
"""

from __future__ import annotations

import argparse

import harness
import numpy as np

NAME = "mlp_step"
UNIT = "ms"
SIZES = [784, 256, 256, 10]


def per_call_scale(args) -> float:
    return 1e3


def init_params():
    rng = np.random.default_rng(42)
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        params.append((rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32), np.zeros(fan_out, np.float32)))
    return params


def batch(n):
    rng = np.random.default_rng(7)
    return rng.standard_normal((n, SIZES[0])).astype(np.float32), rng.integers(0, SIZES[-1], n).astype(np.int64)


def numpy_loss(params, x, y):
    h = x
    for i, (W, b) in enumerate(params):
        h = h @ W + b
        if i < len(params) - 1:
            h = np.maximum(h, 0)
    h = h - h.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(h).sum(axis=1)) - h[np.arange(len(y)), y]))


def check(loss, args) -> None:
    x, y = batch(args.batch)
    expected = numpy_loss(init_params(), x, y)
    assert abs(loss - expected) <= 1e-4 * abs(expected), (loss, expected)


def build_numpy(args):
    params = [a.copy() for wb in init_params() for a in wb]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    x, y = batch(args.batch)
    n = len(y)
    onehot = np.zeros((n, SIZES[-1]), np.float32)
    onehot[np.arange(n), y] = 1
    t = [0]

    def step():
        W1, b1, W2, b2, W3, b3 = params
        z1 = x @ W1 + b1
        h1 = np.maximum(z1, 0)
        z2 = h1 @ W2 + b2
        h2 = np.maximum(z2, 0)
        logits = h2 @ W3 + b3
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        s = e.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(s[:, 0]) - logits[np.arange(n), y]))
        d3 = (e / s - onehot) * np.float32(1.0 / n)
        d2 = (d3 @ W3.T) * (z2 > 0)
        d1 = (d2 @ W2.T) * (z1 > 0)
        grads = [x.T @ d1, d1.sum(0), h1.T @ d2, d2.sum(0), h2.T @ d3, d3.sum(0)]
        t[0] += 1
        lr = 1e-3 * np.sqrt(1 - 0.999 ** t[0]) / (1 - 0.9 ** t[0])
        for p, g, mm, vv in zip(params, grads, m, v):
            mm *= 0.9
            mm += 0.1 * g
            vv *= 0.999
            vv += 0.001 * (g * g)
            p -= lr * mm / (np.sqrt(vv) + 1e-7)
        return loss

    check(step(), args)
    return step


def _tapegrad_model(args):
    import tapegrad

    nn = tapegrad.NeuralNetworks()
    g = nn.gradient()
    layers = [nn.layers.Dense(256, input_shape=[784], activation="relu"), nn.layers.Dense(256, activation="relu"),
              nn.layers.Dense(10)]
    x, y = batch(args.batch)
    h = x
    for layer in layers:
        h = layer(h)
    for layer, (W, b) in zip(layers, init_params()):
        layer.set_weights([W, b])
    params = [v for layer in layers for v in layer.trainable_variables()]
    lossf = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = nn.optimizers.Adam()

    def train_step(xb, yb):
        with g.GradientTape() as tape:
            h = xb
            for layer in layers:
                h = layer(h, training=True)
            loss = lossf(yb, h)
        optimizer.update(params, tape.gradient(loss, params))
        return loss

    return g, train_step, x, y


def build_tapegrad(args):
    _, train_step, x, y = _tapegrad_model(args)
    check(float(train_step(x, y)), args)
    return lambda: float(train_step(x, y))


def build_tapegrad_function(args):
    g, train_step, x, y = _tapegrad_model(args)
    compiled = g.Function(train_step)
    check(float(compiled(x, y)), args)
    return lambda: float(compiled(x, y))


def build_torch(args):
    import torch
    import torch.nn.functional as functional

    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10))
    with torch.no_grad():
        for linear, (W, b) in zip([model[0], model[2], model[4]], init_params()):
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    x, y = batch(args.batch)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = functional.cross_entropy(model(tx), ty)
        loss.backward()
        optimizer.step()
        return loss.item()

    check(step(), args)
    return step


def build_jax_jit(args):
    import os

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp

    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in init_params()]
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = [params, zeros, zeros, jnp.zeros((), jnp.int32)]
    x, y = batch(args.batch)
    jx, jy = jnp.asarray(x), jnp.asarray(y.astype(np.int32))

    def loss_fn(ps):
        h = jx
        for i, (W, b) in enumerate(ps):
            h = h @ W + b
            if i < len(ps) - 1:
                h = jax.nn.relu(h)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h), jy[:, None], axis=1))

    @jax.jit
    def train(ps, m, v, t):
        loss, grads = jax.value_and_grad(loss_fn)(ps)
        t = t + 1
        m = jax.tree_util.tree_map(lambda a, g: 0.9 * a + 0.1 * g, m, grads)
        v = jax.tree_util.tree_map(lambda a, g: 0.999 * a + 0.001 * g * g, v, grads)
        lr = 1e-3 * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        ps = jax.tree_util.tree_map(lambda p, a, b: p - lr * a / (jnp.sqrt(b) + 1e-7), ps, m, v)
        return ps, m, v, t, loss

    def step():
        *rest, loss = train(*state)
        state[:] = rest
        return float(loss)

    check(step(), args)
    return step


FRAMEWORKS = {"tapegrad": build_tapegrad, "tapegrad_function": build_tapegrad_function, "torch": build_torch,
              "numpy": build_numpy, "jax_jit": build_jax_jit}


def options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--batch", type=int, default=64)


if __name__ == "__main__":
    harness.main(__import__(__name__), options)
