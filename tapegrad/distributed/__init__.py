"""Data-parallel training on MPI (API.md section 10): one process per rank, each with its
own shard of the data, gradients averaged over the ranks at every step.

    mpirun -np 4 python train.py

``fit`` does everything by itself under ``mpirun`` (sharding, rank 0's weights and
optimizer state broadcast at the start, gradients and metrics averaged, output and
checkpoints from rank 0). A custom training loop uses the pieces::

    import tapegrad.distributed as dist

    dist.init()
    dist.broadcast_variables(model.variables(), root=0)
    optimizer = dist.DistributedOptimizer(nn.optimizers.Adam())
    for inputs, trues in dist.shard(dataset):
        with dist.GradientTape() as tape:      # gradient() averages over the ranks
            loss = lossfunc(trues, model(g.Variable(inputs), True))
        params = model.trainable_variables()
        optimizer.update(params, tape.gradient(loss, params))

MPI comes from mpi4py (the ``mpi`` extra: ``pip install "tapegrad[mpi]"``), imported only
when the process was launched by ``mpirun`` (or the program imported ``mpi4py.MPI``
itself); otherwise the process is rank 0 of 1 and every collective is the identity.
``import tapegrad`` never imports this package. See docs/distributed.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .buckets import GradientAverager
    from .collectives import allreduce, broadcast_object, broadcast_optimizer_state, broadcast_variables
    from .comm import DistributedError, barrier, init, is_main, rank, size
    from .optimizer import DistributedOptimizer
    from .sharding import shard
    from .tape import GradientTape

# Imported on first use: ``fit`` looks at ``tapegrad.distributed._launch`` on every call,
# which must not cost a plain process the whole package.
_LAZY = {
    "GradientAverager": "buckets",
    "allreduce": "collectives",
    "broadcast_object": "collectives",
    "broadcast_optimizer_state": "collectives",
    "broadcast_variables": "collectives",
    "DistributedError": "comm",
    "barrier": "comm",
    "init": "comm",
    "is_main": "comm",
    "rank": "comm",
    "size": "comm",
    "DistributedOptimizer": "optimizer",
    "shard": "sharding",
    "GradientTape": "tape",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tapegrad.distributed' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DistributedError",
    "DistributedOptimizer",
    "GradientAverager",
    "GradientTape",
    "allreduce",
    "barrier",
    "broadcast_object",
    "broadcast_optimizer_state",
    "broadcast_variables",
    "init",
    "is_main",
    "rank",
    "shard",
    "size",
]
