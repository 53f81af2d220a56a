"""Data-parallel training on MPI: the MLP step of the reference benchmark
(../shared/bench-reference/mlp_train.py: 784-256-256-10, ReLU, softmax cross-entropy from
logits, Adam, float32, eager) at batch 512 per rank, as 2 ranks x 1 BLAS thread and as
1 process x 2 threads; the allreduce time per step; what overlapping it with the backward
pass saves; and the latency and bandwidth of an allreduce here, for the cost model of
docs/distributed.md.

    python bench/distributed.py                  # both layouts, prints a table and JSON lines
    python bench/distributed.py --steps 20 --repeats 9 --rounds 5

On the 2 ranks (``mpirun -np 2``, OMP/OPENBLAS_NUM_THREADS=1, optimizer threads 1), per
step, median over ``repeats`` blocks of ``steps`` steps (all ranks start each block
together; the slower rank's figure is kept):

  local      the step without communication (each rank trains alone)
  overlap    tapegrad.distributed.GradientTape + DistributedOptimizer: each bucket's
             allreduce starts as soon as backprop has produced its gradients
  after      the same buckets, summed only after the whole backward pass
  compiled   the step in one g.Function with DistributedOptimizer (averaging in the update effect)
  allreduce  the averaging alone on ready gradients (copy in, sums, divide)
  mpi        one blocking MPI Allreduce of the 269,322 float32 gradients (1.08 MB)

and, for the variants that average, the time spent waiting for the sums after the last
gradient was in: the communication the step did not hide.

The rank layout runs twice: as it is by default on one machine (no MPI progress thread)
and with the progress thread (TAPEGRAD_MPI_PROGRESS=0.0002), for what the overlap saves
either way.

The 1-process figures run the same step (no communication) with 2 BLAS threads at batch
1024 (the same samples per step as the 2 ranks) and 512.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from mlp_step import SIZES, batch, init_params  # noqa: E402

PER_RANK = 512
RANK_VARIANTS = ["local", "overlap", "after", "compiled", "allreduce", "mpi"]


def build_mlp(batch_size: int):
    import tapegrad

    nn = tapegrad.NeuralNetworks()
    g = nn.gradient()
    layers = [nn.layers.Dense(256, input_shape=[784], activation="relu"), nn.layers.Dense(256, activation="relu"),
              nn.layers.Dense(10)]
    x, y = batch(batch_size)
    h = x[:1]
    for layer in layers:
        h = layer(h)
    for layer, (W, b) in zip(layers, init_params()):
        layer.set_weights([W, b])
    params = [v for layer in layers for v in layer.trainable_variables()]
    lossf = nn.losses.SparseCategoricalCrossentropy(from_logits=True)

    def forward(xb, yb):
        h = xb
        for layer in layers:
            h = layer(h, training=True)
        return lossf(yb, h)

    return nn, g, params, forward, x, y


def rank_steps() -> dict:
    """The step functions of the rank layout and the averager each averages with, by variant."""
    import tapegrad.distributed as dist

    steps = {}
    nn, g, params, forward, x, y = build_mlp(PER_RANK)
    optimizer = nn.optimizers.Adam()

    def local():
        with g.GradientTape() as tape:
            loss = forward(x, y)
        optimizer.update(params, tape.gradient(loss, params))
    steps["local"] = (local, None)

    nn, g, params_o, forward_o, x, y = build_mlp(PER_RANK)
    averager_o = dist.GradientAverager()
    averaged = dist.DistributedOptimizer(nn.optimizers.Adam(), averager=averager_o)

    def overlap():
        with dist.GradientTape(averager=averager_o) as tape:
            loss = forward_o(x, y)
        averaged.update(params_o, tape.gradient(loss, params_o))
    steps["overlap"] = (overlap, averager_o)

    nn, g, params_a, forward_a, x, y = build_mlp(PER_RANK)
    averager_a = dist.GradientAverager()
    averaged_after = dist.DistributedOptimizer(nn.optimizers.Adam(), averager=averager_a)

    def after():
        with g.GradientTape() as tape:
            loss = forward_a(x, y)
        averaged_after.update(params_a, tape.gradient(loss, params_a))
    steps["after"] = (after, averager_a)

    nn, g, params_c, forward_c, x, y = build_mlp(PER_RANK)
    averager_c = dist.GradientAverager()
    averaged_c = dist.DistributedOptimizer(nn.optimizers.Adam(), averager=averager_c)

    def compiled_step(xb, yb):
        with g.GradientTape() as tape:
            loss = forward_c(xb, yb)
        averaged_c.update(params_c, tape.gradient(loss, params_c))
        return loss
    compiled = g.Function(compiled_step)
    steps["compiled"] = (lambda: compiled(x, y), averager_c)

    averager = dist.GradientAverager()
    ready = [np.full(p.shape, 1e-3, p.dtype) for p in params]
    steps["allreduce"] = (lambda: averager.average(params, ready), averager)

    world = dist.init()
    flat = np.ones(sum(p.value().size for p in params), np.float32)
    steps["mpi"] = (lambda: world.reduce_in_place(flat, "sum"), None)
    return steps


def timed(fn, steps: int, world) -> float:
    world.barrier()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def rank_worker(args) -> None:
    import tapegrad.distributed as dist
    from tapegrad.nn.optimizers import set_num_threads

    world = dist.init()
    set_num_threads(1)  # one core per rank
    steps = rank_steps()
    for fn, _ in steps.values():  # warm up (and trace the compiled step)
        for _ in range(3):
            fn()
    samples = {name: [] for name in steps}
    waits = {name: [] for name, (_, averager) in steps.items() if averager is not None}
    for _ in range(args.repeats):
        for name, (fn, averager) in steps.items():
            waited = averager.waited if averager is not None else 0.0
            samples[name].append(timed(fn, args.steps, world))
            if averager is not None:
                waits[name].append((averager.waited - waited) / args.steps)
    medians = {name: statistics.median(v) for name, v in samples.items()}
    wait_medians = {name: statistics.median(v) for name, v in waits.items()}
    slowest = {name: max(values) for name, values in zip(medians, zip(*world.allgather(list(medians.values()))))}
    longest_wait = {name: max(values)
                    for name, values in zip(wait_medians, zip(*world.allgather(list(wait_medians.values()))))}
    sweep = allreduce_sweep(world, args.repeats)
    buckets_bytes = dist.GradientAverager().plan(build_mlp(1)[2]).bucket_bytes
    if world.rank == 0:
        print(json.dumps({"bench": "distributed", "layout": "2 ranks x 1 thread", "batch_per_rank": PER_RANK,
                          "ms": {k: v * 1e3 for k, v in slowest.items()},
                          "wait_ms": {k: v * 1e3 for k, v in longest_wait.items()}, "sweep": sweep,
                          "buckets_bytes": buckets_bytes}), flush=True)


def allreduce_sweep(world, repeats: int) -> list[tuple[int, float]]:
    """(bytes, median seconds) of blocking float32 allreduces from 1 KB to 64 MB."""
    out = []
    for exponent in range(10, 27, 2):
        buffer = np.ones((1 << exponent) // 4, np.float32)
        calls = max(3, min(200, (1 << 22) // (1 << exponent) * 10))
        times = []
        for _ in range(repeats):
            times.append(timed(lambda buffer=buffer: world.reduce_in_place(buffer, "sum"), calls, world))
        local = statistics.median(times)
        out.append((1 << exponent, max(world.allgather(local))))
    return out


def single_worker(args) -> None:
    from tapegrad.nn.optimizers import get_num_threads

    results = {}
    for size in (2 * PER_RANK, PER_RANK):
        nn, g, params, forward, x, y = build_mlp(size)
        optimizer = nn.optimizers.Adam()

        def step():
            with g.GradientTape() as tape:
                loss = forward(x, y)
            optimizer.update(params, tape.gradient(loss, params))

        class NoWorld:
            def barrier(self):
                pass

        for _ in range(3):
            step()
        results[size] = statistics.median(timed(step, args.steps, NoWorld()) for _ in range(args.repeats)) * 1e3
    print(json.dumps({"bench": "distributed", "layout": "1 process x 2 threads", "ms": results,
                      "optimizer_threads": get_num_threads()}), flush=True)


def fit_line(sweep: list[tuple[int, float]]) -> tuple[float, float]:
    """The model t = a + bytes * b: a is the time of the smallest allreduce (the latency
    term), b the least-squares slope over 256 KB to 4 MB, around the MLP's 1.08 MB (the
    bandwidth term; larger buffers leave the caches and go at memory speed)."""
    a = sweep[0][1]
    large = [(s, t) for s, t in sweep if 1 << 18 <= s <= 1 << 22]
    sizes = np.array([s for s, _ in large], float)
    times = np.array([t for _, t in large])
    b = float(np.polyfit(sizes, times, 1)[0])
    return float(a), b


def launcher() -> list[str]:
    beside = Path(sys.executable).parent / "mpirun"
    return [str(beside) if beside.exists() else "mpirun", "-np", "2"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20, help="steps per timed block")
    ap.add_argument("--repeats", type=int, default=7, help="timed blocks per figure")
    ap.add_argument("--rounds", type=int, default=3, help="jobs per layout, run in alternation")
    ap.add_argument("--rank-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--single-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rank_worker:
        rank_worker(args)
        return 0
    if args.single_worker:
        single_worker(args)
        return 0
    common = ["--steps", str(args.steps), "--repeats", str(args.repeats)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    one_thread = dict(env, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    jobs = {
        "ranks": ([*launcher(), sys.executable, __file__, "--rank-worker", *common], one_thread),
        "thread": ([*launcher(), sys.executable, __file__, "--rank-worker", *common],
                   dict(one_thread, TAPEGRAD_MPI_PROGRESS="0.0002")),
        "single": ([sys.executable, __file__, "--single-worker", *common],
                   dict(env, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2")),
    }
    records: dict[str, list[dict]] = {name: [] for name in jobs}
    for _ in range(args.rounds):  # the layouts in alternation, so that the host's noise falls on all alike
        for name, (command, job_env) in jobs.items():
            done = subprocess.run(command, capture_output=True, text=True, env=job_env, check=True)
            records[name].append(json.loads(done.stdout.strip().splitlines()[-1]))

    def median_ms(name: str, field: str = "ms") -> dict:
        keys = records[name][0][field]
        return {k: statistics.median(rec[field][k] for rec in records[name]) for k in keys}

    r = dict(records["ranks"][-1])
    ms, mq = median_ms("ranks"), median_ms("thread")
    one = {int(k): v for k, v in median_ms("single").items()}
    r["sweep"] = [(size, statistics.median(rec["sweep"][i][1] for rec in records["ranks"]))
                  for i, (size, _) in enumerate(r["sweep"])]
    a, b = fit_line(r["sweep"])
    gradient_bytes = 4 * sum(i * o + o for i, o in zip(SIZES[:-1], SIZES[1:]))
    print(f"medians over {args.rounds} rounds of fresh jobs, in alternation")
    print("2 ranks x 1 BLAS thread, batch 512 per rank (1024 samples per step), ms per step:")
    for name in RANK_VARIANTS:
        print(f"  {name:10s} {ms[name]:8.3f}")
    wait, wq = median_ms("ranks", "wait_ms"), median_ms("thread", "wait_ms")
    print(f"  step minus local: overlap {ms['overlap'] - ms['local']:.3f}, after {ms['after'] - ms['local']:.3f}; "
          f"the overlap saves {ms['after'] - ms['overlap']:.3f} ms per step")
    print(f"  waiting for the sums once the last gradient is in: overlap {wait['overlap']:.3f}, after "
          f"{wait['after']:.3f}, compiled {wait['compiled']:.3f}, allreduce alone {wait['allreduce']:.3f}")
    print(f"  with the progress thread (TAPEGRAD_MPI_PROGRESS=0.0002): local {mq['local']:.3f}, overlap "
          f"{mq['overlap']:.3f}, after {mq['after']:.3f} (the overlap saves {mq['after'] - mq['overlap']:.3f} ms); "
          f"waiting: overlap {wq['overlap']:.3f}, after {wq['after']:.3f}")
    print(f"  buckets (bytes, in the order they start): {r['buckets_bytes']}")
    print("1 process x 2 BLAS threads, ms per step:")
    for size, value in one.items():
        print(f"  batch {size:5d} {value:8.3f}")
    print(f"samples per second: 2 ranks {2 * PER_RANK / ms['overlap'] * 1e3:,.0f} (overlap), "
          f"1 process at batch 1024 {2 * PER_RANK / one[2 * PER_RANK] * 1e3:,.0f}")
    print(f"allreduce here (2 ranks, shared memory): t = {a * 1e6:.1f} us + bytes / {1 / b / 1e9:.2f} GB/s; "
          f"predicts {1e3 * (a + b * gradient_bytes):.3f} ms for the MLP's {gradient_bytes:,} bytes "
          f"(measured: mpi {ms['mpi']:.3f}, allreduce {ms['allreduce']:.3f})")
    for size, t in r["sweep"]:
        print(f"    {size:>10,d} B  {t * 1e6:10.1f} us  (model {1e6 * (a + b * size):10.1f} us)")
    print(json.dumps({"ranks": records["ranks"], "progress_thread": records["thread"],
                      "single": records["single"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
