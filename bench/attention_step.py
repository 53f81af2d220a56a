"""Transformer-encoder-block training step: (batch, T, d) float32 -> MultiHeadAttention
(self-attention, heads x key_dim = d) -> residual Add -> LayerNormalization -> Dense(2d, relu)
-> Dense(d) -> residual Add -> LayerNormalization -> mean over T -> Dense(10); softmax
cross-entropy from logits, Adam (lr 1e-3, eps 1e-8), a fixed synthetic batch, no dropout.
One step = forward + backward + Adam update, ending with float(loss); in milliseconds.
The defaults are issue 10's workload (batch 32, T 64, d 128, 4 heads of 32).

    python bench/attention_step.py
    python bench/attention_step.py --framework tapegrad_function,torch --batch 128

Frameworks: tapegrad (eager: nn.layers.MultiHeadAttention called as mha(x, x),
LayerNormalization(epsilon=1e-3), Dense, reduce_mean, GradientTape, Adam.update),
tapegrad_function (that step in one g.Function), torch (eager nn.MultiheadAttention with
need_weights=False, nn.LayerNorm(eps=1e-3), nn.Linear, torch.optim.Adam; weights mapped as
in docs/sequences.md). All start from the same weights; each checks its first loss
against a NumPy forward.
"""

from __future__ import annotations

import argparse

import harness
import numpy as np

NAME = "attention_step"
UNIT = "ms"
CLASSES = 10
LN_EPS = 1e-3


def per_call_scale(args) -> float:
    return 1e3


def init_params(args):
    """Wq, bq, Wk, bk, Wv, bv, Wo, bo (as (d, d) matrices), then the two FFN and head layers."""
    rng = np.random.default_rng(5)
    d, ff = args.d, 2 * args.d

    def glorot(fan_in, fan_out):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)

    def zeros(n):
        return np.zeros(n, np.float32)

    return [glorot(d, d), zeros(d), glorot(d, d), zeros(d), glorot(d, d), zeros(d), glorot(d, d), zeros(d),
            glorot(d, ff), zeros(ff), glorot(ff, d), zeros(d), glorot(d, CLASSES), zeros(CLASSES)]


def batch(args):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((args.batch, args.seq, args.d)).astype(np.float32)
    return x, rng.integers(0, CLASSES, args.batch).astype(np.int64)


def numpy_loss(args) -> float:
    Wq, bq, Wk, bk, Wv, bv, Wo, bo, W1, b1, W2, b2, Wc, bc = [p.astype(np.float64) for p in init_params(args)]
    x, y = batch(args)
    x = x.astype(np.float64)
    n, t, d = x.shape
    h, k = args.heads, d // args.heads

    def heads(a):
        return a.reshape(n, t, h, k).transpose(0, 2, 1, 3)

    def norm(a):
        a = a - a.mean(-1, keepdims=True)
        return a / np.sqrt((a * a).mean(-1, keepdims=True) + LN_EPS)

    q, kk, v = heads(x @ Wq + bq), heads(x @ Wk + bk), heads(x @ Wv + bv)
    s = q @ kk.swapaxes(-1, -2) / np.sqrt(k)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    attended = (p @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
    z = norm(x + attended @ Wo + bo)
    z = norm(z + np.maximum(z @ W1 + b1, 0) @ W2 + b2)
    logits = z.mean(axis=1) @ Wc + bc
    logits -= logits.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(n), y]))


def check(loss, args) -> None:
    expected = numpy_loss(args)
    assert abs(loss - expected) <= 1e-4 * abs(expected), (loss, expected)


def _tapegrad_step(args):
    import tapegrad

    nn = tapegrad.NeuralNetworks()
    g = nn.gradient()
    L = nn.layers
    d, h = args.d, args.heads
    mha = L.MultiHeadAttention(h, d // h)
    ln1, ln2 = L.LayerNormalization(epsilon=LN_EPS), L.LayerNormalization(epsilon=LN_EPS)
    ff1, ff2, head = L.Dense(2 * d, activation="relu"), L.Dense(d), L.Dense(CLASSES)
    layers = [mha, ln1, ff1, ff2, ln2, head]

    def forward(xb, training=None):
        z = ln1(xb + mha(xb, xb, training=training), training=training)
        z = ln2(z + ff2(ff1(z, training=training), training=training), training=training)
        return head(tapegrad.reduce_mean(z, axis=1), training=training)

    x, y = batch(args)
    forward(x)
    Wq, bq, Wk, bk, Wv, bv, Wo, bo, W1, b1, W2, b2, Wc, bc = init_params(args)
    k = d // h
    mha.set_weights([Wq.reshape(d, h, k), bq.reshape(h, k), Wk.reshape(d, h, k), bk.reshape(h, k),
                     Wv.reshape(d, h, k), bv.reshape(h, k), Wo.reshape(h, k, d), bo])
    for layer, weights in ((ff1, [W1, b1]), (ff2, [W2, b2]), (head, [Wc, bc])):
        layer.set_weights(weights)
    params = [v for layer in layers for v in layer.trainable_variables()]
    lossf = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = nn.optimizers.Adam(epsilon=1e-8)

    def train_step(xb, yb):
        with g.GradientTape() as tape:
            loss = lossf(yb, forward(xb, training=True))
        optimizer.update(params, tape.gradient(loss, params))
        return loss

    return g, train_step, x, y


def build_tapegrad(args):
    _, step, x, y = _tapegrad_step(args)
    check(float(step(x, y)), args)
    return lambda: float(step(x, y))


def build_tapegrad_function(args):
    g, step, x, y = _tapegrad_step(args)
    compiled = g.Function(step)
    check(float(compiled(x, y)), args)
    return lambda: float(compiled(x, y))


def build_torch(args):
    import torch
    import torch.nn.functional as functional

    d = args.d
    Wq, bq, Wk, bk, Wv, bv, Wo, bo, W1, b1, W2, b2, Wc, bc = init_params(args)
    mha = torch.nn.MultiheadAttention(d, args.heads, batch_first=True)
    ln1, ln2 = torch.nn.LayerNorm(d, eps=LN_EPS), torch.nn.LayerNorm(d, eps=LN_EPS)
    ff1, ff2, head = torch.nn.Linear(d, 2 * d), torch.nn.Linear(2 * d, d), torch.nn.Linear(d, CLASSES)
    tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    with torch.no_grad():
        mha.in_proj_weight.copy_(tensor(np.concatenate([Wq, Wk, Wv], axis=1).T))
        mha.in_proj_bias.copy_(tensor(np.concatenate([bq, bk, bv])))
        mha.out_proj.weight.copy_(tensor(Wo.T))
        mha.out_proj.bias.copy_(tensor(bo))
        for linear, W, b in ((ff1, W1, b1), (ff2, W2, b2), (head, Wc, bc)):
            linear.weight.copy_(tensor(W.T))
            linear.bias.copy_(tensor(b))
    modules = [mha, ln1, ln2, ff1, ff2, head]
    optimizer = torch.optim.Adam([p for m in modules for p in m.parameters()], lr=1e-3, eps=1e-8)
    x, y = batch(args)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        optimizer.zero_grad(set_to_none=True)
        z = ln1(tx + mha(tx, tx, tx, need_weights=False)[0])
        z = ln2(z + ff2(functional.relu(ff1(z))))
        loss = functional.cross_entropy(head(z.mean(dim=1)), ty)
        loss.backward()
        optimizer.step()
        return loss.item()

    check(step(), args)
    return step


FRAMEWORKS = {"tapegrad": build_tapegrad, "tapegrad_function": build_tapegrad_function, "torch": build_torch}


def options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)


if __name__ == "__main__":
    harness.main(__import__(__name__), options)
