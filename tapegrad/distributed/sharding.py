"""``shard(dataset)``: this rank's part of every step of a dataset.

An :class:`~tapegrad.nn.data.NDArrayDataset` with batch size ``b`` becomes, on N ranks,
global batches of ``N*b`` samples cut from one shuffled order that every rank draws alike
(from a copy of rank 0's generator: the dataset's own, or the library's), each rank taking
its contiguous ``b`` samples of each. So N ranks with batch ``b`` see exactly the batches
one process with batch ``N*b`` would see, and each sample once per epoch. A last global
batch of ``m < N*b`` samples is split as evenly as possible.

Any other dataset (an iterable of batches) is dealt round-robin: rank r takes batches r,
r+N, r+2N, ... Every rank reads the whole dataset, so it must yield the same batches on
every rank; a tapegrad dataset that shuffles is made to shuffle alike on all (its
generator is set to rank 0's).

A step in which some rank would have no data (the last global batch holds fewer than N
samples, or the last group fewer than N batches) is dropped by ``shard``: a training loop
always has something to compute. ``fit`` keeps it (:data:`NO_BATCH` on the ranks without
data, which contribute nothing but take part in the step), so that it trains on every
sample.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ..errors import OpTypeError
from . import comm as _comm


class _NoBatch:
    """This rank has no samples in this step (``fit`` only). Looks like an empty batch."""

    shape = (0,)
    ndim = 1

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "NO_BATCH"


NO_BATCH = _NoBatch()


def _shared_generator(generator: np.random.Generator | None, world: Any) -> np.random.Generator:
    """A new generator in rank 0's state of ``generator`` (None: the library's)."""
    if generator is None:
        from ..nn import random

        generator = random.generator()
    state = world.broadcast(generator.bit_generator.state if world.rank == 0 else None, 0)
    bits = type(generator.bit_generator)()
    bits.state = state
    return np.random.Generator(bits)


def _cast(arrays: Any, dtype: np.dtype) -> Any:
    if isinstance(arrays, list):
        return [_cast(a, dtype) for a in arrays]
    if arrays is not None and arrays.dtype.kind == "f" and arrays.dtype != dtype:
        return arrays.astype(dtype)
    return arrays


def _take(arrays: Any, several: bool, index: Any) -> Any:
    if arrays is None:
        return None
    return [a[index] for a in arrays] if several else arrays[index]


class ShardedArrays:
    """This rank's part of each global batch of an NDArrayDataset (see the module docstring)."""

    def __init__(self, dataset: Any, world: Any, keep_partial: bool = False, skip_epochs: int = 0,
                 dtype: np.dtype | None = None) -> None:
        from ..nn.data.base import as_filter

        inputs, tests = dataset.inputs, dataset.tests
        self._several_inputs = isinstance(inputs, list)
        self._several_tests = isinstance(tests, list)
        if dtype is not None:  # fit's model dtype for the float arrays, once
            inputs, tests = _cast(inputs, dtype), _cast(tests, dtype)
        self._inputs, self._tests = inputs, tests
        self._filter = as_filter(dataset.filter, "shard")
        self._size = dataset.dataset_size()
        self._batch_size = dataset.batch_size
        self._rank, self._ranks = world.rank, world.size
        self._keep_partial = keep_partial
        self._shuffle = bool(dataset.shuffle) and self._size > 1
        self._generator = _shared_generator(getattr(dataset, "_generator", None), world) if self._shuffle else None
        for _ in range(skip_epochs if self._shuffle else 0):  # the orders of the epochs already trained
            self._generator.permutation(self._size)  # type: ignore[union-attr]

    @property
    def batch_size(self) -> int:
        """This rank's samples per full step."""
        return self._batch_size

    def dataset_size(self) -> int:
        """The samples of an epoch over all ranks."""
        return self._size

    def __len__(self) -> int:
        step = self._batch_size * self._ranks
        steps = -(-self._size // step)
        if not self._keep_partial and self._size % step and self._size % step < self._ranks:
            steps -= 1
        return steps

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        n, ranks, rank = self._size, self._ranks, self._rank
        step = self._batch_size * ranks
        order = self._generator.permutation(n) if self._generator is not None else None
        for k in range(len(self)):
            start = k * step
            base, extra = divmod(min(step, n - start), ranks)
            lo = start + rank * base + min(rank, extra)
            hi = lo + base + (rank < extra)
            if lo == hi:
                yield NO_BATCH, None
                continue
            index = order[lo:hi] if order is not None else slice(lo, hi)
            x = _take(self._inputs, self._several_inputs, index)
            t = _take(self._tests, self._several_tests, index)
            yield self._filter(x, t) if self._filter is not None else (x, t)

    def __repr__(self) -> str:
        return (f"<ShardedArrays rank {self._rank} of {self._ranks}: {self._size} samples, {self._batch_size} per "
                f"rank and step, {len(self)} steps>")


class ShardedBatches:
    """Batches r, r+N, r+2N, ... of a dataset (see the module docstring)."""

    def __init__(self, dataset: Any, world: Any, keep_partial: bool = False) -> None:
        self._dataset = dataset
        self._rank, self._ranks = world.rank, world.size
        self._keep_partial = keep_partial
        # fit hands over the user's dataset wrapped (cast to the model's dtype): look inside too
        for inner in (dataset, getattr(dataset, "dataset", None)):
            if world.size > 1 and hasattr(inner, "_generator") and getattr(inner, "shuffle", False):
                inner._generator = _shared_generator(inner._generator, world)

    def __len__(self) -> int:
        n = len(self._dataset)
        return -(-n // self._ranks) if self._keep_partial else n // self._ranks

    def __iter__(self) -> Iterator[Any]:
        rank, ranks = self._rank, self._ranks
        mine: Any = NO_BATCH
        i = -1
        for i, batch in enumerate(self._dataset):
            if i % ranks == rank:
                mine = batch
            if i % ranks == ranks - 1:
                yield mine
                mine = NO_BATCH
        if self._keep_partial and (i + 1) % ranks:
            yield (NO_BATCH, None) if mine is NO_BATCH else mine

    def __repr__(self) -> str:
        return f"<ShardedBatches rank {self._rank} of {self._ranks} of {self._dataset!r}>"


def shard(dataset: Any) -> Any:
    """This rank's part of ``dataset``: an iterable of this rank's batches, the same number
    of steps on every rank (see the module docstring). In one process, the dataset itself."""
    from ..nn.data import NDArrayDataset

    if isinstance(dataset, (np.ndarray, list, tuple, dict, str, bytes)) or not hasattr(dataset, "__iter__"):
        raise OpTypeError(f"shard: expects a dataset (an iterable of batches, such as an NDArrayDataset), got "
                          f"{type(dataset).__name__}; wrap arrays in nn.data.NDArrayDataset(x, tests=y, "
                          f"batch_size=...)")
    world = _comm.world()
    if world.size == 1:
        return dataset
    if isinstance(dataset, NDArrayDataset):
        return ShardedArrays(dataset, world)
    return ShardedBatches(dataset, world)

