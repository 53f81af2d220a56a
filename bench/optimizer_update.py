"""Adam.update on the 784-256-256-10 MLP's parameters (269,322 float32 in 6 arrays)
against a per-parameter NumPy Adam, in one process.

    python bench/optimizer_update.py                 # all variants, 5 interleaved rounds
    python bench/optimizer_update.py --rounds 9 --json

Variants (each times one update of all six parameters from fixed gradients):

* ``numpy_per_param``: the Keras Adam formula written per parameter in NumPy
  float32 with ``out=`` where it is free (12 array operations per parameter); the
  reference of the issue.
* ``numpy_flat12``: the same formula in 12 whole-buffer passes over flat float32
  buffers (``out=`` everywhere), gradients already flat.
* ``kernel``: ``tapegrad.nn.optimizers.kernels.adam_kernel`` on flat buffers, the
  gradients given as the six arrays (what ``update`` runs, without the checks): the
  fused C loop of ``tapegrad.native`` on one thread where a C compiler is found.
* ``kernel_numpy``: the same with the native loop turned off (its NumPy twin, ten
  whole-buffer passes).
* ``tapegrad``: ``tapegrad.nn.optimizers.Adam().update(params, grads)`` on six
  Variables, everything included (checks, adoption check, coefficients), with the
  default threads (2 on a machine with two or more CPUs; the optimizer times the
  threaded and the single-thread way now and then and runs the faster, since the
  threads only help when the other core is free: here, updates back to back take
  the threads, a training loop whose BLAS keeps the other core busy does not).
* ``tapegrad_1thread``: the same with ``set_num_threads(1)`` (the buffers are run in
  L2-sized chunks).

Each figure is the median over rounds of a median over repeats (bench/harness.py's
``time_call``); the rounds interleave the variants so that machine noise falls on
all alike. Before timing, the tapegrad trajectory is checked against the
per-parameter reference over 20 steps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from typing import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SHAPES = [(784, 256), (256,), (256, 256), (256,), (256, 10), (10,)]
LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-7


def make_data(seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(np.float32) * np.float32(0.05) for s in SHAPES]
    grads = [rng.standard_normal(s).astype(np.float32) * np.float32(1e-2) for s in SHAPES]
    return params, grads


class PerParamAdam:
    """Keras's Adam, one parameter at a time, float32, ``out=`` where it is free."""

    def __init__(self, params: list[np.ndarray]) -> None:
        self.params = params
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        dt = self.params[0].dtype.type
        alpha = dt(LR * math.sqrt(1 - B2**self.t) / (1 - B1**self.t))
        c1, c2, eps = dt(1 - B1), dt(1 - B2), dt(EPS)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m += (g - m) * c1
            v += (g * g - v) * c2
            p -= (m * alpha) / (np.sqrt(v) + eps)


class Flat12Adam:
    """The same formula in 12 passes over flat buffers (gradient already flat)."""

    def __init__(self, params: list[np.ndarray]) -> None:
        n = sum(p.size for p in params)
        self.p = np.concatenate([p.ravel() for p in params])
        self.m, self.v, self.t1, self.t2 = (np.zeros(n, np.float32) for _ in range(4))
        self.t = 0

    def step(self, g: np.ndarray) -> None:
        self.t += 1
        alpha = LR * math.sqrt(1 - B2**self.t) / (1 - B1**self.t)
        m, v, t1, t2, p = self.m, self.v, self.t1, self.t2, self.p
        np.subtract(g, m, out=t1); np.multiply(t1, 1 - B1, out=t1); np.add(m, t1, out=m)  # noqa: E702
        np.multiply(g, g, out=t1); np.subtract(t1, v, out=t1); np.multiply(t1, 1 - B2, out=t1)  # noqa: E702
        np.add(v, t1, out=v)
        np.sqrt(v, out=t2); np.add(t2, EPS, out=t2); np.multiply(m, alpha, out=t1)  # noqa: E702
        np.divide(t1, t2, out=t1); np.subtract(p, t1, out=p)  # noqa: E702


def check_trajectory(steps: int = 20) -> float:
    """Largest relative difference between tapegrad's Adam and the reference."""
    import tapegrad as tg

    params, _ = make_data(1)
    rng = np.random.default_rng(2)
    ref = PerParamAdam([p.copy() for p in params])
    variables = [tg.Variable(p) for p in params]
    opt = tg.optimizers.Adam(LR, B1, B2, EPS)
    for _ in range(steps):
        grads = [rng.standard_normal(s).astype(np.float32) * np.float32(1e-2) for s in SHAPES]
        ref.step(grads)
        opt.update(variables, grads)
    worst = 0.0
    for v, p in zip(variables, ref.params):
        scale = float(np.max(np.abs(p)))
        worst = max(worst, float(np.max(np.abs(v.numpy() - p))) / scale)
    return worst


def build_variants() -> dict[str, Callable[[], object]]:
    import tapegrad as tg
    from tapegrad.nn.optimizers import kernels

    variants = {}
    params, grads = make_data()

    ref = PerParamAdam([p.copy() for p in params])
    variants["numpy_per_param"] = lambda: ref.step(grads)

    flat = Flat12Adam([p.copy() for p in params])
    gflat = np.concatenate([g.ravel() for g in grads])
    variants["numpy_flat12"] = lambda: flat.step(gflat)

    n = gflat.size
    kp = np.concatenate([p.ravel() for p in params])
    km, kv, kt = (np.zeros(n, np.float32) for _ in range(3))
    scale, eps = kernels.adam_coefficients(LR, 0, B1, B2, EPS)
    variants["kernel"] = lambda: kernels.adam_kernel(kp, grads, km, kv, None, kt, scale, eps, B1, B2)

    def numpy_kernel() -> None:  # the NumPy twin of the native loop (ten passes)
        native_adam = kernels.native_adam
        kernels.native_adam = lambda *a: None
        try:
            kernels.adam_kernel(kp, grads, km, kv, None, kt, scale, eps, B1, B2)
        finally:
            kernels.native_adam = native_adam

    variants["kernel_numpy"] = numpy_kernel

    threads = tg.optimizers.get_num_threads()
    for name, n in (("tapegrad", threads), ("tapegrad_1thread", 1)):
        variables = [tg.Variable(p) for p in params]
        opt = tg.optimizers.Adam(LR, B1, B2, EPS)

        def step(opt=opt, variables=variables, n=n):
            tg.optimizers.set_num_threads(n)
            opt.update(variables, grads)

        variants[name] = step
    tg.optimizers.set_num_threads(threads)
    return variants


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--target", type=float, default=0.1, help="seconds per timing block")
    ap.add_argument("--json", action="store_true", help="also print one JSON line")
    args = ap.parse_args()

    worst = check_trajectory()
    assert worst < 1e-4, f"tapegrad's Adam differs from the reference by {worst:.2e} (relative)"
    variants = build_variants()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            times[name].append(harness.time_call(fn, repeats=args.repeats, target_s=args.target)["median_s"])
    n = sum(math.prod(s) for s in SHAPES)
    base = statistics.median(times["numpy_per_param"])
    print(f"Adam update, {n:,} float32 parameters in {len(SHAPES)} arrays "
          f"(median of {args.rounds} interleaved rounds; trajectory check: max rel. diff {worst:.1e}; "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs)")
    for name, vals in times.items():
        med = statistics.median(vals)
        print(f"  {name:18s} {med * 1e3:7.3f} ms   {base / med:5.2f}x vs numpy_per_param"
              f"   [{min(vals) * 1e3:.3f} .. {max(vals) * 1e3:.3f}]")
    if args.json:
        print(json.dumps({"bench": "optimizer_update", "unit": "s", "values": times}))


if __name__ == "__main__":
    main()
