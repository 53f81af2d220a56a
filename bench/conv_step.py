"""CNN training step on 28x28x1 inputs, float32 (the reference workload of issue 9):
Conv2D(32, 3x3, valid, ReLU) -> MaxPool 2 -> Conv2D(64, 3x3, valid, ReLU) -> MaxPool 2 ->
Flatten (1600) -> Dense(10), softmax cross-entropy from logits (mean), Adam (lr 1e-3). One
step = forward + backward + Adam update, ending with float(loss); reported in milliseconds.

    python bench/conv_step.py --batch 64
    python bench/conv_step.py --framework tapegrad,tapegrad_function,torch --rounds 5
    python bench/conv_step.py --faults        # page faults per step and peak RSS, in-process

Frameworks: tapegrad (eager: nn.layers.Conv2D, MaxPooling2D, Flatten, Dense; GradientTape;
nn.optimizers.Adam().update), tapegrad_function (that step, update included, in one
g.Function), torch (eager, NCHW), numpy (im2col by hand: sliding windows + one matmul per
convolution, hand-written backward and Adam). All start from the same weights and check
their first loss against NumPy's.
"""

from __future__ import annotations

import argparse
import resource
import sys

import harness
import numpy as np

NAME = "conv_step"
UNIT = "ms"


def per_call_scale(args) -> float:
    return 1e3


def init_params():
    rng = np.random.default_rng(3)

    def glorot(shape, fan_in, fan_out):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(np.float32)

    return [glorot((3, 3, 1, 32), 9, 288), np.zeros(32, np.float32), glorot((3, 3, 32, 64), 288, 576),
            np.zeros(64, np.float32), glorot((1600, 10), 1600, 10), np.zeros(10, np.float32)]


def batch(n):
    rng = np.random.default_rng(7)
    return rng.standard_normal((n, 28, 28, 1)).astype(np.float32), rng.integers(0, 10, n).astype(np.int64)


def _im2col(x, k=3):
    from numpy.lib.stride_tricks import sliding_window_view

    windows = sliding_window_view(x, (k, k), axis=(1, 2))  # (n, h, w, c, k, k)
    n, h, w, c = windows.shape[:4]
    return np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3)).reshape(n * h * w, k * k * c), (n, h, w)


def _pool(a):
    n, h, w, c = a.shape
    v = a[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c)
    p = v.max(axis=(2, 4))
    return p, v == p[:, :, None, :, None]


def _unpool(dp, mask, shape):
    n, h, _, w, _, c = mask.shape
    d = np.zeros(shape, np.float32)
    d[:, :2 * h, :2 * w] = (mask * dp[:, :, None, :, None]).reshape(n, 2 * h, 2 * w, c)
    return d


def numpy_loss(params, x, y):
    W1, b1, W2, b2, W3, b3 = params
    cols, (n, h, w) = _im2col(x)
    p1, _ = _pool(np.maximum(cols @ W1.reshape(9, 32) + b1, 0).reshape(n, h, w, 32))
    cols, (n, h, w) = _im2col(p1)
    p2, _ = _pool(np.maximum(cols @ W2.reshape(288, 64) + b2, 0).reshape(n, h, w, 64))
    logits = p2.reshape(n, -1) @ W3 + b3
    logits = logits - logits.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(n), y]))


def check(loss, args) -> None:
    x, y = batch(args.batch)
    expected = numpy_loss(init_params(), x, y)
    assert abs(loss - expected) <= 1e-4 * abs(expected), (loss, expected)


def build_numpy(args):
    params = [a.copy() for a in init_params()]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    x, y = batch(args.batch)
    n = len(y)
    onehot = np.eye(10, dtype=np.float32)[y]
    cols1, _ = _im2col(x)
    t = [0]

    def step():
        W1, b1, W2, b2, W3, b3 = params
        z1 = (cols1 @ W1.reshape(9, 32) + b1).reshape(n, 26, 26, 32)
        a1 = np.maximum(z1, 0)
        p1, m1 = _pool(a1)
        cols2, _ = _im2col(p1)
        z2 = (cols2 @ W2.reshape(288, 64) + b2).reshape(n, 11, 11, 64)
        a2 = np.maximum(z2, 0)
        p2, m2 = _pool(a2)
        flat = p2.reshape(n, 1600)
        logits = flat @ W3 + b3
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        s = e.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(s[:, 0]) - logits[np.arange(n), y]))
        d3 = (e / s - onehot) * np.float32(1.0 / n)
        da2 = _unpool((d3 @ W3.T).reshape(n, 5, 5, 64), m2, a2.shape)
        dz2 = (da2 * (z2 > 0)).reshape(-1, 64)
        dcols2 = (dz2 @ W2.reshape(288, 64).T).reshape(n, 11, 11, 3, 3, 32)
        dp1 = np.zeros((n, 13, 13, 32), np.float32)
        for i in range(3):
            for j in range(3):
                dp1[:, i:i + 11, j:j + 11] += dcols2[:, :, :, i, j]
        dz1 = (_unpool(dp1, m1, a1.shape) * (z1 > 0)).reshape(-1, 32)
        grads = [(cols1.T @ dz1).reshape(3, 3, 1, 32), dz1.sum(0), (cols2.T @ dz2).reshape(3, 3, 32, 64),
                 dz2.sum(0), flat.T @ d3, d3.sum(0)]
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
    L = nn.layers
    layers = [L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2), L.Conv2D(64, 3, activation="relu"),
              L.MaxPooling2D(2), L.Flatten(), L.Dense(10)]
    x, y = batch(args.batch)
    h = x
    for layer in layers:
        h = layer(h)
    W1, b1, W2, b2, W3, b3 = init_params()
    for layer, weights in zip((layers[0], layers[2], layers[5]), ([W1, b1], [W2, b2], [W3, b3])):
        layer.set_weights(weights)
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

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(1600, 10))
    W1, b1, W2, b2, W3, b3 = init_params()
    W3_chw = W3.reshape(5, 5, 64, 10).transpose(2, 0, 1, 3).reshape(1600, 10)  # torch flattens C, H, W
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(W1.transpose(3, 2, 0, 1).copy()))
        model[0].bias.copy_(torch.from_numpy(b1))
        model[3].weight.copy_(torch.from_numpy(W2.transpose(3, 2, 0, 1).copy()))
        model[3].bias.copy_(torch.from_numpy(b2))
        model[7].weight.copy_(torch.from_numpy(W3_chw.T.copy()))
        model[7].bias.copy_(torch.from_numpy(b3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    x, y = batch(args.batch)
    tx, ty = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = functional.cross_entropy(model(tx), ty)
        loss.backward()
        optimizer.step()
        return loss.item()

    check(step(), args)
    return step


FRAMEWORKS = {"tapegrad": build_tapegrad, "tapegrad_function": build_tapegrad_function, "torch": build_torch,
              "numpy": build_numpy}


def faults(args) -> None:
    """Minor page faults per step in steady state (after 20 warm-up steps) and the peak RSS,
    each framework in a fresh process (malloc settings are per process)."""
    import subprocess

    for name in [f for f in args.framework.split(",") if f]:
        cmd = [sys.executable, __file__, "--faults-worker", "--framework", name, "--batch", str(args.batch)]
        print(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip(), flush=True)


def faults_worker(args) -> None:
    step = FRAMEWORKS[args.framework](args)
    for _ in range(20):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step()
    per_step = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  {args.framework:20s} {per_step:8.1f} page faults per step   peak RSS {peak:.0f} MB")


def _extra(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--faults", action="store_true", help="page faults per step and peak RSS")


if __name__ == "__main__":
    if "--faults" in sys.argv or "--faults-worker" in sys.argv:
        ap = argparse.ArgumentParser()
        ap.add_argument("--framework", default="tapegrad,tapegrad_function,torch,numpy")
        ap.add_argument("--faults-worker", action="store_true")
        _extra(ap)
        parsed = ap.parse_args()
        (faults_worker if parsed.faults_worker else faults)(parsed)
    else:
        harness.main(sys.modules[__name__], _extra)
