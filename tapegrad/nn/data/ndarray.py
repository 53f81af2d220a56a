"""NDArrayDataset: batches of in-memory arrays, as Rindow's ``$nn->data->NDArrayDataset``."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ...errors import OpValueError
from .base import (
    Batch,
    Dataset,
    as_array_list,
    as_filter,
    check_batch_size,
    library_generator,
    make_generator,
    names,
)


class NDArrayDataset(Dataset):
    """Batches of in-memory arrays: ``for inputs, trues in dataset: ...``.

    Args:
        inputs: an array (or Variable, or nested list of numbers), or a list/tuple of arrays
            for a model with several inputs; then each batch's ``inputs`` is a list.
        tests: the targets, in the same forms, or None (each batch's ``trues`` is then None).
        batch_size: samples per batch. The last batch holds the remainder (it is smaller
            when the batch size does not divide the number of samples).
        shuffle: draw a new permutation of all the samples at the start of every epoch
            (every new iteration) and cut the batches from it.
        filter: a :class:`DatasetFilter` (an object with ``translate(inputs, tests)``) or a
            callable ``(inputs, tests) -> (inputs, tests)``, applied to each batch.
        seed: an int (a private generator: the same sequence of epochs for the same seed),
            a ``numpy.random.Generator``, or None to draw from the library's generator
            (:func:`tapegrad.nn.random.generator`, seeded by ``tapegrad.set_seed``).

    Every array must have the same first dimension (the number of samples). Batches share
    memory with the arrays: without shuffling they are slices (views); with shuffling each
    batch is one gather of its rows (``array[indices]``), nothing more. Python lists are
    converted once, floats to float32.

    ``len(dataset)`` is the number of batches, ``dataset.dataset_size()`` the number of
    samples.
    """

    def __init__(
        self,
        inputs: Any,
        tests: Any = None,
        batch_size: int = 32,
        shuffle: bool = True,
        filter: Any = None,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        owner = "NDArrayDataset"
        self._multi_inputs, self._inputs = as_array_list(inputs, owner, "inputs")
        if tests is None:
            self._multi_tests, self._tests = False, None
        else:
            self._multi_tests, self._tests = as_array_list(tests, owner, "tests")
        arrays = list(self._inputs) + list(self._tests or [])
        labels = list(names("inputs", self._multi_inputs, len(self._inputs)))
        if self._tests is not None:
            labels += names("tests", self._multi_tests, len(self._tests))
        for arr, label in zip(arrays, labels):
            if arr.ndim == 0:
                raise OpValueError(f"{owner}: {label} is a scalar; it needs a first dimension (the samples)")
        sizes = [arr.shape[0] for arr in arrays]
        if len(set(sizes)) > 1:
            detail = ", ".join(f"{label} has {size}" for label, size in zip(labels, sizes))
            raise OpValueError(
                f"{owner}: all arrays must have the same first dimension (the number of samples): {detail}"
            )
        self._size = sizes[0]
        self._batch_size = check_batch_size(batch_size, owner)
        self._shuffle = bool(shuffle)
        self._generator = make_generator(seed, owner)
        self._seed = seed
        self._filter = filter
        self._filter_fn = as_filter(filter, owner)

    # -- properties -------------------------------------------------------------------
    @property
    def inputs(self) -> Any:
        """The inputs: an array, or a list of arrays."""
        return list(self._inputs) if self._multi_inputs else self._inputs[0]

    @property
    def tests(self) -> Any:
        """The targets: an array, a list of arrays, or None."""
        if self._tests is None:
            return None
        return list(self._tests) if self._multi_tests else self._tests[0]

    @property
    def shuffle(self) -> bool:
        return self._shuffle

    @property
    def filter(self) -> Any:
        """The filter given to the constructor or :meth:`set_filter` (None if none)."""
        return self._filter

    def set_filter(self, filter: Any) -> None:
        """Replace the per-batch filter (None removes it)."""
        self._filter_fn = as_filter(filter, "NDArrayDataset")
        self._filter = filter

    def dataset_size(self) -> int:
        """The number of samples."""
        return self._size

    def __len__(self) -> int:
        """The number of batches of an epoch."""
        return -(-self._size // self._batch_size)

    def __repr__(self) -> str:
        return (
            f"NDArrayDataset(dataset_size={self._size}, batch_size={self._batch_size}, "
            f"batches={len(self)}, shuffle={self._shuffle})"
        )

    # -- iteration --------------------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        if self._shuffle and self._size > 1:
            return self._shuffled()
        return self._in_order()

    def _in_order(self) -> Iterator[Batch]:
        xs, ts = self._inputs, self._tests
        n, bs, fn = self._size, self._batch_size, self._filter_fn
        multi_x, multi_t = self._multi_inputs, self._multi_tests
        x0 = xs[0]
        t0 = ts[0] if ts is not None else None
        if n == 0:
            return
        if n <= bs:  # one batch: the arrays themselves
            x = list(xs) if multi_x else x0
            t = None if ts is None else (list(ts) if multi_t else t0)
            yield fn(x, t) if fn is not None else (x, t)
            return
        for start in range(0, n, bs):
            stop = start + bs
            x = [a[start:stop] for a in xs] if multi_x else x0[start:stop]
            if ts is None:
                t = None
            else:
                t = [a[start:stop] for a in ts] if multi_t else t0[start:stop]
            yield fn(x, t) if fn is not None else (x, t)

    def _shuffled(self) -> Iterator[Batch]:
        xs, ts = self._inputs, self._tests
        n, bs, fn = self._size, self._batch_size, self._filter_fn
        multi_x, multi_t = self._multi_inputs, self._multi_tests
        x0 = xs[0]
        t0 = ts[0] if ts is not None else None
        rng = self._generator if self._generator is not None else library_generator()
        perm = rng.permutation(n)
        for start in range(0, n, bs):
            idx = perm[start:start + bs] if n > bs else perm
            x = [a[idx] for a in xs] if multi_x else x0[idx]
            if ts is None:
                t = None
            else:
                t = [a[idx] for a in ts] if multi_t else t0[idx]
            yield fn(x, t) if fn is not None else (x, t)
