"""What forward mode costs: jvp of the bench MLP's forward pass (784-256-256-10, ReLU,
float32, batch 64) along a tangent of all its parameters, against the forward pass alone,
in tapegrad and in PyTorch (torch.func.jvp), each in fresh processes, in alternation.
Reported: milliseconds per call.

    python bench/jvp_cost.py
    python bench/jvp_cost.py --framework tapegrad_forward,tapegrad_jvp --rounds 5

A JVP costs about one more forward pass: each matmul gets two more of the same size
(t_x @ W and x @ t_W), so the ideal ratio jvp / forward is about 3 for a matmul-bound network
and 2 for an elementwise one.
"""

from __future__ import annotations

import argparse

import harness
import numpy as np
from per_example_grad import data

NAME = "jvp_cost"
UNIT = "ms"


def per_call_scale(args: argparse.Namespace) -> float:
    return 1e3


def _forward(h, params, relu):
    for k in range(0, len(params), 2):
        h = h @ params[k] + params[k + 1]
        if k < len(params) - 2:
            h = relu(h)
    return h


def _tapegrad(args: argparse.Namespace, with_jvp: bool):
    import tapegrad as tg

    arrays, x, _ = data(args.batch)
    rng = np.random.default_rng(1)
    tangents = tuple(rng.standard_normal(p.shape).astype(np.float32) for p in arrays)
    f = lambda *params: _forward(x, params, tg.relu)  # noqa: E731
    if with_jvp:
        return lambda: tg.jvp(f, tuple(arrays), tangents)
    params = [tg.Variable(p) for p in arrays]
    return lambda: f(*params)


def _torch(args: argparse.Namespace, with_jvp: bool):
    import torch
    from torch.func import jvp

    torch.set_num_threads(2)
    arrays, x, _ = data(args.batch)
    rng = np.random.default_rng(1)
    params = tuple(torch.from_numpy(p) for p in arrays)
    tangents = tuple(torch.from_numpy(rng.standard_normal(p.shape).astype(np.float32)) for p in arrays)
    tx = torch.from_numpy(x)
    f = lambda *ps: _forward(tx, ps, torch.relu)  # noqa: E731
    if with_jvp:
        return lambda: jvp(f, params, tangents)
    return lambda: f(*params)


FRAMEWORKS = {
    "tapegrad_forward": lambda a: _tapegrad(a, False),
    "tapegrad_jvp": lambda a: _tapegrad(a, True),
    "torch_forward": lambda a: _torch(a, False),
    "torch_jvp": lambda a: _torch(a, True),
}


if __name__ == "__main__":
    harness.main(__import__(__name__), lambda ap: ap.add_argument("--batch", type=int, default=64))
