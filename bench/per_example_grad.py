"""Per-example gradients of the bench MLP (784-256-256-10, ReLU, softmax cross-entropy,
float32, batch 64): vmap(grad(loss), in_axes=(None, 0, 0)) against one batched gradient
of the same loss, in tapegrad and in PyTorch (torch.func.vmap of torch.func.grad), each in
fresh processes, in alternation. Reported: milliseconds per call.

    python bench/per_example_grad.py                      # every variant
    python bench/per_example_grad.py --framework tapegrad_vmap,tapegrad_batch --rounds 5

Variants: tapegrad_vmap (per-example gradients), tapegrad_batch (one gradient of the batch
mean), torch_vmap (torch.func.vmap(torch.func.grad(loss))), torch_batch (one batched
backward). The figure the issue asks for is tapegrad_vmap / tapegrad_batch (at most 3x),
beside torch_vmap / torch_batch.
"""

from __future__ import annotations

import argparse

import harness
import numpy as np

NAME = "per_example_grad"
UNIT = "ms"
SIZES = (784, 256, 256, 10)


def per_call_scale(args: argparse.Namespace) -> float:
    return 1e3


def data(batch: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        params += [(rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(np.float32),
                   np.zeros(n_out, np.float32)]
    x = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], batch).astype(np.int64)
    return params, x, y


def _tapegrad(args: argparse.Namespace, per_example: bool):
    import tapegrad as tg
    from tapegrad.ops.loss_ops import sparse_softmax_cross_entropy

    arrays, x, y = data(args.batch)
    params = [tg.Variable(p) for p in arrays]

    def loss(params, x, y):
        h = x
        for k in range(0, len(params), 2):
            h = h @ params[k] + params[k + 1]
            if k < len(params) - 2:
                h = tg.relu(h)
        return sparse_softmax_cross_entropy(h, y, "mean")

    if per_example:
        fn = tg.vmap(tg.grad(loss), in_axes=(None, 0, 0))
        grads = fn(params, x, y)
        assert grads[0].shape == (args.batch, 784, 256)
        return lambda: fn(params, x, y)
    fn = tg.grad(loss)
    return lambda: fn(params, x, y)


def _torch(args: argparse.Namespace, per_example: bool):
    import torch
    from torch.func import grad, vmap

    torch.set_num_threads(2)
    arrays, x, y = data(args.batch)
    params = [torch.from_numpy(p) for p in arrays]
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def loss(params, x, y):
        h = x
        for k in range(0, len(params), 2):
            h = h @ params[k] + params[k + 1]
            if k < len(params) - 2:
                h = torch.relu(h)
        return torch.nn.functional.cross_entropy(h, y)

    if per_example:
        fn = vmap(grad(lambda p, xi, yi: loss(p, xi[None], yi[None])), in_dims=(None, 0, 0))
        return lambda: fn(params, tx, ty)
    fn = grad(loss)
    return lambda: fn(params, tx, ty)


FRAMEWORKS = {
    "tapegrad_vmap": lambda a: _tapegrad(a, True),
    "tapegrad_batch": lambda a: _tapegrad(a, False),
    "torch_vmap": lambda a: _torch(a, True),
    "torch_batch": lambda a: _torch(a, False),
}


if __name__ == "__main__":
    harness.main(__import__(__name__), lambda ap: ap.add_argument("--batch", type=int, default=64))
