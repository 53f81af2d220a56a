"""Started by the MPI tests as ``mpirun -np 2 python run.py <mode> <directory>``; each rank
writes what it saw to ``<directory>/<mode>-rank<r>.npz`` (and prints what it is told to).

Modes: ``main`` (collectives, sharding, custom loops, fit eager and compiled, the
uninterrupted checkpointed run), ``crash`` (the checkpointed run, rank 1 raising in its
third epoch), ``resume`` (the checkpointed run resumed from the crash's last checkpoint),
``early`` (rank 1 raising before tapegrad.distributed started MPI).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenarios  # noqa: E402

import tapegrad  # noqa: E402
import tapegrad.distributed as dist  # noqa: E402


class Batches:
    """A plain iterable dataset of 7 numbered batches (dealt round-robin by shard)."""

    def __len__(self) -> int:
        return 7

    def __iter__(self):
        for i in range(7):
            yield np.full((2, 1), float(i)), np.array([i, i])


def collectives(out: dict) -> None:
    r = dist.rank()
    a = np.arange(6.0).reshape(2, 3) * (r + 1)
    b = np.array([r + 1, 10 * (r + 1)], np.int64)
    c = np.float32(r + 0.5)
    for op in ("mean", "sum", "max", "min"):
        ra, rb, rc = dist.allreduce([a, b, c], op=op)
        out[f"allreduce_{op}_a"], out[f"allreduce_{op}_b"], out[f"allreduce_{op}_c"] = ra, rb, rc
    out["allreduce_single"] = dist.allreduce(tapegrad.Variable(a))
    v0 = tapegrad.Variable(np.full((2, 2), r + 1.0))
    v1 = tapegrad.Variable(np.float32(r + 2))
    v2 = tapegrad.Variable(np.arange(3) + 10 * r)  # integers too
    dist.broadcast_variables({"a": v0, "b": [v1, v2]}, root=1)
    out["broadcast_v0"], out["broadcast_v1"], out["broadcast_v2"] = v0.value(), v1.value(), v2.value()
    out["object"] = np.array(dist.broadcast_object({"rank": r}, root=1)["rank"])


def sharding(out: dict) -> None:
    nn = tapegrad.NeuralNetworks(dtype="float64")
    ids = np.arange(22)
    dataset = nn.data.NDArrayDataset(ids[:, None].astype(float), tests=ids, batch_size=3, seed=3)
    shards = dist.shard(dataset)
    out["shard_steps"] = np.array(len(shards))
    for epoch in range(2):
        batches = [t for _, t in shards]
        out[f"shard_epoch{epoch}"] = np.concatenate(batches)
        out[f"shard_sizes{epoch}"] = np.array([len(t) for t in batches])
    out["round_robin"] = np.array([int(t[0]) for _, t in dist.shard(Batches())])


def main(directory: Path) -> None:
    out: dict = {}
    collectives(out)
    sharding(out)
    for averaging_tape in (True, False):
        weights, averagings = scenarios.custom_loop(True, averaging_tape)
        key = "tape" if averaging_tape else "optimizer"
        out.update({f"custom_{key}_w{i}": w for i, w in enumerate(weights)})
        out[f"custom_{key}_averagings"] = np.array(averagings)
    histories = {}
    for jit in (False, True):
        nn = tapegrad.NeuralNetworks(dtype="float64")
        ckpt = nn.models.callbacks.ModelCheckpoint(str(directory / f"fit-{jit}-{{epoch}}.tgm"))
        said = nn.models.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: print(f"callback on rank {dist.rank()}, epoch {epoch + 1}"))
        history, weights = scenarios.fit_run(jit, scenarios.BATCH, callbacks=[ckpt, said], verbose=2)
        histories[str(jit)] = history
        out.update({f"fit_{jit}_w{i}": w for i, w in enumerate(weights)})
        out[f"fit_{jit}_saved"] = np.array(len(ckpt.saved))
    (directory / f"main-histories-rank{dist.rank()}.json").write_text(json.dumps(histories))
    out.update({f"dataset_w{i}": w for i, w in enumerate(scenarios.dataset_fit(merged=False))})
    weights = scenarios.checkpointed_fit(directory / "full", scenarios.BATCH, epochs=4)
    out.update({f"full_w{i}": w for i, w in enumerate(weights)})
    np.savez(directory / f"main-rank{dist.rank()}.npz", **out)


def crash(directory: Path) -> None:
    def fail(batch, logs=None):
        if dist.rank() == 1 and failer.epoch == 2 and batch == 1:
            raise RuntimeError("injected failure on rank 1")

    nn = tapegrad.NeuralNetworks(dtype="float64")
    failer = nn.models.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: setattr(failer, "epoch", epoch), on_train_batch_begin=fail)
    scenarios.checkpointed_fit(directory / "crash", scenarios.BATCH, epochs=4, callbacks=[failer])
    print("the crash run finished: it should not have", flush=True)


def resume(directory: Path) -> None:
    weights = scenarios.checkpointed_fit(directory / "resumed", scenarios.BATCH, epochs=4,
                                         initial=directory / "crash" / "ckpt-2.tgm")
    np.savez(directory / f"resume-rank{dist.rank()}.npz", **{f"w{i}": w for i, w in enumerate(weights)})


def early(directory: Path) -> None:
    """Rank 1 raises before anything of tapegrad.distributed ran; rank 0 goes on to its first
    collective."""
    if dist._launch.launched_rank() == 1:
        raise RuntimeError("early failure on rank 1")
    print("rank 0 reached its allreduce", dist.allreduce(np.ones(2)), flush=True)
    print("the early run finished: it should not have", flush=True)


if __name__ == "__main__":
    mode, where = sys.argv[1], Path(sys.argv[2])
    {"main": main, "crash": crash, "resume": resume, "early": early}[mode](where)
