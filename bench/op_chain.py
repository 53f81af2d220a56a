"""Per-op overhead: a chain of N elementwise ops (x*w, x+b, tanh, repeating) on float32
vectors of shape (16,), forward plus backward (gradient with respect to the input);
reported in microseconds per op. w and b are constants (non-trainable Variables).

    python bench/op_chain.py                     # every framework, in alternation
    python bench/op_chain.py --framework tapegrad,torch --rounds 5

Frameworks: tapegrad (eager), tapegrad_function (the step compiled with g.Function),
torch (eager), numpy (hand-written forward and backward), jax_jit (jax.jit(jax.grad)).
"""

from __future__ import annotations

import argparse

import harness
import numpy as np

NAME = "op_chain"
UNIT = "us/op"


def per_call_scale(args: argparse.Namespace) -> float:
    return 1e6 / args.n


def data(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.uniform(-1, 1, size).astype(np.float32), rng.uniform(0.9, 1.1, size).astype(np.float32),
            rng.uniform(-0.05, 0.05, size).astype(np.float32))


def chain(x, w, b, n, tanh):
    for i in range(n):
        k = i % 3
        x = x * w if k == 0 else (x + b if k == 1 else tanh(x))
    return x


def reference(args: argparse.Namespace) -> np.ndarray:
    x0, w, b = data(args.size)
    return numpy_step(x0.astype(np.float64), w, b, args.n)


def numpy_step(x0, w, b, n):
    """Hand-written NumPy forward and backward (the floor for a NumPy library)."""
    saved = []
    x = x0
    for i in range(n):
        k = i % 3
        if k == 0:
            x = x * w
        elif k == 1:
            x = x + b
        else:
            x = np.tanh(x)
            saved.append(x)
    g = np.ones_like(x)
    for i in reversed(range(n)):
        k = i % 3
        if k == 0:
            g = g * w
        elif k == 2:
            y = saved.pop()
            g = g * (1.0 - y * y)
    return g


def build_numpy(args):
    x0, w, b = data(args.size)
    return lambda: numpy_step(x0, w, b, args.n)


def build_tapegrad(args):
    import tapegrad as tg

    x0, w, b = data(args.size)
    x, tw, tb = tg.Variable(x0), tg.Variable(w, trainable=False), tg.Variable(b, trainable=False)

    def step():
        with tg.GradientTape() as tape:
            y = tg.reduce_sum(chain(x, tw, tb, args.n, tg.tanh))
        return tape.gradient(y, x)

    assert np.allclose(step().value(), reference(args), rtol=1e-3, atol=1e-5)
    return step


def build_tapegrad_function(args):
    """The same step (tape and gradient) compiled with g.Function."""
    import tapegrad as tg

    x0, w, b = data(args.size)
    x, tw, tb = tg.Variable(x0), tg.Variable(w, trainable=False), tg.Variable(b, trainable=False)

    @tg.NeuralNetworks().gradient().Function
    def step():
        with tg.GradientTape() as tape:
            y = tg.reduce_sum(chain(x, tw, tb, args.n, tg.tanh))
        return tape.gradient(y, x)

    assert np.allclose(step().value(), reference(args), rtol=1e-3, atol=1e-5)
    return step


def build_jax_jit(args):
    import os

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp

    x0, w, b = data(args.size)
    jx, jw, jb = map(jnp.asarray, (x0, w, b))
    grad = jax.jit(jax.grad(lambda x: chain(x, jw, jb, args.n, jnp.tanh).sum()))
    assert np.allclose(np.asarray(grad(jx)), reference(args), rtol=1e-3, atol=1e-5)
    return lambda: grad(jx).block_until_ready()


def build_torch(args):
    import torch

    x0, w, b = data(args.size)
    x = torch.from_numpy(x0).requires_grad_(True)
    tw, tb = torch.from_numpy(w), torch.from_numpy(b)

    def step():
        y = chain(x, tw, tb, args.n, torch.tanh).sum()
        return torch.autograd.grad(y, x)[0]

    assert np.allclose(step().numpy(), reference(args), rtol=1e-3, atol=1e-5)
    return step


FRAMEWORKS = {"tapegrad": build_tapegrad, "torch": build_torch, "numpy": build_numpy,
              "tapegrad_function": build_tapegrad_function, "jax_jit": build_jax_jit}


def options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, default=16)


if __name__ == "__main__":
    harness.main(__import__(__name__), options)
