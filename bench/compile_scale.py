"""Compiling long graphs: the first call of a g.Function over a chain of N elementwise ops
(x*w, x+b, tanh, repeating, on float64 vectors of shape (16,)), under a tape, then its
gradient, which traces and compiles the backward graph too. Each N runs in a fresh process.

Reported per N: seconds and microseconds per op for that first call and gradient; what the
Function keeps afterwards (tracemalloc, bytes per op: its graphs and generated code); the
peak during compilation (tracemalloc); the process's RSS growth (which includes freed
memory the allocator keeps). The eager tape of the same chain is the reference.

    python bench/compile_scale.py                      # N = 1000, 10000, 100000
    python bench/compile_scale.py --n 3000,30000
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import tracemalloc


def chain(x, w, b, n, tanh):
    for i in range(n):
        k = i % 3
        x = x * w if k == 0 else (x + b if k == 1 else tanh(x))
    return x


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def measure(n: int, memory: bool) -> dict:
    import numpy as np

    import tapegrad as tg

    x0, w, b = np.linspace(-1, 1, 16), np.full(16, 1.01), np.full(16, 0.01)
    f = tg.Function(lambda x, w, b: tg.reduce_sum(chain(x, w, b, n, tg.tanh)))
    gc.collect()
    if memory:
        tracemalloc.start()
    r0 = rss()
    t0 = time.perf_counter()
    x = tg.Variable(x0)
    with tg.GradientTape() as tape:
        y = f(x, w, b)
    tape.gradient(y, x)
    elapsed = time.perf_counter() - t0
    del tape, y, x
    gc.collect()
    result = {"n": n, "first_call_and_gradient_s": elapsed, "us_per_op": elapsed / n * 1e6,
              "rss_growth_bytes_per_op": (rss() - r0) / n}
    if memory:
        kept, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        x = tg.Variable(x0)
        with tg.GradientTape() as tape:
            y = tg.reduce_sum(chain(x, w, b, n, tg.tanh))
        tape.gradient(y, x)
        eager_peak = tracemalloc.get_traced_memory()[1] - base
        result.update(kept_bytes_per_op=kept / n, peak_bytes_per_op=peak / n,
                      eager_tape_peak_bytes_per_op=eager_peak / n)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="1000,10000,100000")
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.memory)), flush=True)
        return
    print(f"{'ops':>8} {'time s':>8} {'us/op':>7} {'kept B/op':>10} {'peak B/op':>10} {'RSS B/op':>9} "
          f"{'eager tape peak B/op':>21}")
    for n in (int(v) for v in args.n.split(",")):
        # time without tracemalloc (it slows allocation), memory in a second process
        timing = json.loads(subprocess.run([sys.executable, __file__, "--worker", str(n)], check=True,
                                           capture_output=True, text=True).stdout)
        mem = json.loads(subprocess.run([sys.executable, __file__, "--worker", str(n), "--memory"], check=True,
                                        capture_output=True, text=True).stdout)
        print(f"{n:>8} {timing['first_call_and_gradient_s']:>8.2f} {timing['us_per_op']:>7.0f} "
              f"{mem['kept_bytes_per_op']:>10.0f} {mem['peak_bytes_per_op']:>10.0f} "
              f"{timing['rss_growth_bytes_per_op']:>9.0f} {mem['eager_tape_peak_bytes_per_op']:>21.0f}", flush=True)


if __name__ == "__main__":
    main()
