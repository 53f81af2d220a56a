"""Recurrent training step: (batch, T, features) float32 -> LSTM or GRU (units) -> last state ->
Dense(10), softmax cross-entropy from logits, Adam (lr 1e-3, eps 1e-8); a fixed synthetic
batch. One step = forward + backpropagation through time + Adam update, ending with
float(loss); reported in milliseconds. The defaults are issue 10's workload (batch 64,
T 32, 32 features, 128 units: about 1 GFLOP per step).

    python bench/rnn_step.py                                   # LSTM, tapegrad vs torch
    python bench/rnn_step.py --cell gru --framework tapegrad,torch
    python bench/rnn_step.py --compile-time --steps 100        # first call of the compiled step

Frameworks: tapegrad (eager: nn.layers.LSTM/GRU, Dense, SparseCategoricalCrossentropy,
GradientTape, Adam.update), tapegrad_function (that step, update included, in one
g.Function), torch (eager nn.LSTM/nn.GRU + nn.Linear + torch.optim.Adam; the Keras weights
mapped as in docs/sequences.md). All start from the same weights; each checks its first
loss against a NumPy forward.

``--compile-time`` prints, for tapegrad_function, the seconds (wall and CPU) of the first
call (trace, optimise, generate code, run) and of a later call, and the graph's size.
"""

from __future__ import annotations

import argparse
import json
import time

import harness
import numpy as np

NAME = "rnn_step"
UNIT = "ms"
CLASSES = 10


def per_call_scale(args) -> float:
    return 1e3


def gates(args) -> int:
    return 4 if args.cell == "lstm" else 3


def init_params(args):
    """Keras-style initial weights: kernel, recurrent kernel, bias; Dense kernel and bias."""
    rng = np.random.default_rng(3)
    k, u, f = gates(args), args.units, args.features

    def glorot(fan_in, fan_out):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)

    q, _ = np.linalg.qr(rng.standard_normal((k * u, u)))
    recurrent = q.T.astype(np.float32)  # (u, k*u) with orthonormal rows
    if args.cell == "lstm":
        bias = np.zeros(k * u, np.float32)
        bias[u:2 * u] = 1.0
    else:
        bias = np.zeros((2, k * u), np.float32)
    return [glorot(f, k * u), recurrent, bias, glorot(u, CLASSES), np.zeros(CLASSES, np.float32)]


def batch(args):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((args.batch, args.steps, args.features)).astype(np.float32)
    return x, rng.integers(0, CLASSES, args.batch).astype(np.int64)


def numpy_loss(args) -> float:
    W, R, b, Wd, bd = [p.astype(np.float64) for p in init_params(args)]
    x, y = batch(args)
    u = args.units
    h = np.zeros((args.batch, u))
    c = np.zeros_like(h)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for t in range(args.steps):
        if args.cell == "lstm":
            z = x[:, t] @ W + h @ R + b
            c = sig(z[:, u:2 * u]) * c + sig(z[:, :u]) * np.tanh(z[:, 2 * u:3 * u])
            h = sig(z[:, 3 * u:]) * np.tanh(c)
        else:
            xz, rz = x[:, t] @ W + b[0], h @ R + b[1]
            z, r = sig(xz[:, :u] + rz[:, :u]), sig(xz[:, u:2 * u] + rz[:, u:2 * u])
            h = z * h + (1 - z) * np.tanh(xz[:, 2 * u:] + r * rz[:, 2 * u:])
    logits = h @ Wd + bd
    logits -= logits.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(len(y)), y]))


def check(loss, args) -> None:
    expected = numpy_loss(args)
    assert abs(loss - expected) <= 1e-4 * abs(expected), (loss, expected)


def _tapegrad_step(args):
    import tapegrad

    nn = tapegrad.NeuralNetworks()
    g = nn.gradient()
    rnn = nn.layers.LSTM(args.units) if args.cell == "lstm" else nn.layers.GRU(args.units)
    head = nn.layers.Dense(CLASSES)
    x, y = batch(args)
    head(rnn(x))
    W, R, b, Wd, bd = init_params(args)
    rnn.set_weights([W, R, b])
    head.set_weights([Wd, bd])
    params = rnn.trainable_variables() + head.trainable_variables()
    lossf = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = nn.optimizers.Adam(epsilon=1e-8)

    def train_step(xb, yb):
        with g.GradientTape() as tape:
            loss = lossf(yb, head(rnn(xb, training=True), training=True))
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

    W, R, b, Wd, bd = init_params(args)
    u = args.units
    rnn = (torch.nn.LSTM if args.cell == "lstm" else torch.nn.GRU)(args.features, u, batch_first=True)
    head = torch.nn.Linear(u, CLASSES)
    perm = np.arange(W.shape[1]) if args.cell == "lstm" else np.r_[u:2 * u, 0:u, 2 * u:3 * u]
    tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(tensor(W[:, perm].T))
        rnn.weight_hh_l0.copy_(tensor(R[:, perm].T))
        if args.cell == "lstm":
            rnn.bias_ih_l0.copy_(tensor(b))
            rnn.bias_hh_l0.zero_()
            rnn.bias_hh_l0.requires_grad_(False)  # Keras has one bias: a second trained copy would double its steps
        else:
            rnn.bias_ih_l0.copy_(tensor(b[0, perm]))
            rnn.bias_hh_l0.copy_(tensor(b[1, perm]))
        head.weight.copy_(tensor(Wd.T))
        head.bias.copy_(tensor(bd))
    params = [p for p in (*rnn.parameters(), *head.parameters()) if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-3, eps=1e-8)
    x, y = batch(args)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        optimizer.zero_grad(set_to_none=True)
        out, _ = rnn(tx)
        loss = functional.cross_entropy(head(out[:, -1]), ty)
        loss.backward()
        optimizer.step()
        return loss.item()

    check(step(), args)
    return step


FRAMEWORKS = {"tapegrad": build_tapegrad, "tapegrad_function": build_tapegrad_function, "torch": build_torch}


def compile_time(args) -> None:
    g, step, x, y = _tapegrad_step(args)
    compiled = g.Function(step)
    times = []
    for _ in range(3):  # the first call traces and compiles; then the compiled step runs
        t0, c0 = time.perf_counter(), time.process_time()
        compiled(x, y)
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    nodes = str(compiled.graph(x, y)).count(" = ")
    print(json.dumps({"bench": NAME, "cell": args.cell, "steps": args.steps, "first_call_s": round(times[0][0], 4),
                      "later_call_s": round(min(t for t, _ in times[1:]), 4),
                      "first_call_cpu_s": round(times[0][1], 4),
                      "later_call_cpu_s": round(min(c for _, c in times[1:]), 4),
                      "graph_lines": nodes}))


def options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=32, help="sequence length T")
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--compile-time", action="store_true")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(add_help=False)
    options(ap)
    known, _ = ap.parse_known_args()
    if known.compile_time:
        compile_time(known)
    else:
        harness.main(__import__(__name__), options)
