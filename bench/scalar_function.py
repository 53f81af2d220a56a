"""Seed 004's scalar function f(a, b, c) = log((sin(a*b) + exp(c - a/b))^2) * c at
(43, 3, 2), float64: one evaluation = forward + gradient with respect to a, b and c;
reported in microseconds.

    python bench/scalar_function.py              # every framework, in alternation

Frameworks: tapegrad (eager), tapegrad_function (compiled with g.Function), torch
(eager), numpy (hand-derived gradient on NumPy scalars), jax_jit (jax.jit(jax.grad)).
"""

from __future__ import annotations

import math

import harness
import numpy as np

NAME = "scalar_function"
UNIT = "us"
A, B, C = 43.0, 3.0, 2.0
EXPECTED = (60.85353612046653, 872.2331479536114, -3.2853671032530305)


def per_call_scale(args) -> float:
    return 1e6


def check(grads) -> None:
    assert all(math.isclose(float(g), e, rel_tol=1e-9) for g, e in zip(grads, EXPECTED)), grads


def build_tapegrad(args):
    import tapegrad as tg

    a, b, c = (tg.Variable(v, dtype="float64") for v in (A, B, C))

    def step():
        with tg.GradientTape() as tape:
            f = tg.log((tg.sin(a * b) + tg.exp(c - a / b)) ** 2) * c
        return tape.gradient(f, [a, b, c])

    check(step())
    return step


def build_tapegrad_function(args):
    """The same evaluation (tape and gradient) compiled with g.Function."""
    import tapegrad as tg

    a, b, c = (tg.Variable(v, dtype="float64") for v in (A, B, C))

    @tg.NeuralNetworks().gradient().Function
    def step():
        with tg.GradientTape() as tape:
            f = tg.log((tg.sin(a * b) + tg.exp(c - a / b)) ** 2) * c
        return tape.gradient(f, [a, b, c])

    check(step())
    return step


def build_jax_jit(args):
    import os

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    grad = jax.jit(jax.grad(lambda a, b, c: jnp.log((jnp.sin(a * b) + jnp.exp(c - a / b)) ** 2) * c,
                            argnums=(0, 1, 2)))
    a, b, c = (jnp.asarray(v, dtype=jnp.float64) for v in (A, B, C))
    check(grad(a, b, c))

    def step():
        out = grad(a, b, c)
        jax.block_until_ready(out)
        return out

    return step


def build_torch(args):
    import torch

    a, b, c = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (A, B, C))

    def step():
        f = torch.log((torch.sin(a * b) + torch.exp(c - a / b)) ** 2) * c
        return torch.autograd.grad(f, (a, b, c))

    check(step())
    return step


def build_numpy(args):
    """Forward and hand-derived backward on NumPy float64 scalars."""
    a, b, c = np.float64(A), np.float64(B), np.float64(C)

    def step():
        ab = a * b
        q = c - a / b
        s = np.sin(ab) + np.exp(q)
        f_inner = s * s
        dlog = c / f_inner * 2 * s  # d/ds of log(s^2) * c
        ds_dab, ds_dq = np.cos(ab), np.exp(q)
        da = dlog * (ds_dab * b - ds_dq / b)
        db = dlog * (ds_dab * a + ds_dq * a / (b * b))
        dc = np.log(f_inner) + dlog * ds_dq
        return da, db, dc

    check(step())
    return step


FRAMEWORKS = {"tapegrad": build_tapegrad, "torch": build_torch, "numpy": build_numpy,
              "tapegrad_function": build_tapegrad_function, "jax_jit": build_jax_jit}

if __name__ == "__main__":
    harness.main(__import__(__name__))
