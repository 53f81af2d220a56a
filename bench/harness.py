"""Benchmark harness: time a workload in this process, or compare frameworks in fresh
processes run in alternation (A B C A B C ...) so that machine noise falls on all alike.

A workload module defines ``FRAMEWORKS: dict[str, Callable[[argparse.Namespace], Callable]]``:
each entry builds a zero-argument step function (and checks its result). Timing: a few
warm-up calls, then ``repeats`` blocks of ``number`` calls; the figure is the median
per-call time over the blocks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable


def time_call(fn: Callable[[], object], repeats: int = 7, target_s: float = 0.2, warmup: int = 3) -> dict:
    for _ in range(warmup):
        fn()
    number = 1
    while True:  # calibrate: a block should last about target_s
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= target_s / 4 or number >= 1 << 20:
            break
        number *= 2
    number = max(1, int(number * target_s / max(elapsed, 1e-9)))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return {"median_s": statistics.median(samples), "min_s": min(samples), "number": number, "repeats": repeats}


def worker(module: object, args: argparse.Namespace) -> None:
    """Run one framework of a workload module and print one JSON line."""
    build = module.FRAMEWORKS[args.framework]
    fn = build(args)
    result = time_call(fn, repeats=args.repeats)
    import resource

    result.update(bench=module.NAME, framework=args.framework, unit=getattr(module, "UNIT", "s"),
                  peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    scale = getattr(module, "per_call_scale", lambda a: 1.0)(args)
    result["value"] = result["median_s"] * scale
    print(json.dumps(result), flush=True)


def compare(script: str, frameworks: list[str], rounds: int, extra: list[str]) -> dict[str, list[float]]:
    """Run each framework ``rounds`` times in fresh processes, interleaved; return values
    (and the peak RSS of each framework's processes in ``compare.peak_rss``)."""
    values: dict[str, list[float]] = {f: [] for f in frameworks}
    compare.peak_rss = {f: 0.0 for f in frameworks}
    for _ in range(rounds):
        for fw in frameworks:
            cmd = [sys.executable, script, "--worker", "--framework", fw, *extra]
            p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
            if p.returncode != 0:
                raise SystemExit(f"{fw} failed:\n{p.stderr[-2000:]}")
            record = json.loads(p.stdout.strip().splitlines()[-1])
            values[fw].append(record["value"])
            compare.peak_rss[fw] = max(compare.peak_rss[fw], record["peak_rss_mb"])
    return values


def main(module: object, extra_args: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    ap = argparse.ArgumentParser(description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--framework", default=",".join(module.FRAMEWORKS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    if extra_args:
        extra_args(ap)
    args, _ = ap.parse_known_args()
    if args.worker:
        worker(module, args)
        return
    frameworks = [f for f in args.framework.split(",") if f]
    passthrough = [a for a in sys.argv[1:] if not a.startswith("--framework") and a not in frameworks
                   and not a.startswith("--rounds")]
    values = compare(sys.modules[module.__name__].__file__, frameworks, args.rounds, passthrough)
    base = frameworks[0]
    unit = getattr(module, "UNIT", "s")
    print(f"{module.NAME} ({unit}, median of {args.rounds} fresh processes, interleaved)")
    for fw, vals in values.items():
        ratio = statistics.median(a / b for a, b in zip(values[base], vals))
        print(f"  {fw:24s} {statistics.median(vals):10.3f}   {base}/{fw} = {ratio:.2f}"
              f"   (peak RSS {compare.peak_rss[fw]:.0f} MB)")
    print(json.dumps({"bench": module.NAME, "unit": unit, "values": values}))
