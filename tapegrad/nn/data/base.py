"""What every dataset shares: the :class:`Dataset` contract, Rindow's :class:`DatasetFilter`,
and the small helpers that check arguments and turn user values into arrays."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError

Batch = tuple[Any, Any]
"""One batch: ``(inputs, trues)``. ``inputs`` is an array, or a list of arrays for a model
with several inputs; ``trues`` likewise, or None for a dataset without tests."""

FilterFn = Callable[[Any, Any], tuple[Any, Any]]


class Dataset:
    """An iterable of ``(inputs, trues)`` batches; each new iteration is a new epoch.

    ``len(dataset)`` is the number of batches of one epoch, ``dataset.batch_size`` the
    batch size and ``dataset.dataset_size()`` the number of samples. Datasets that can
    not know their size before reading their source raise ``TypeError`` from ``len``
    (so ``list(dataset)`` still works) and from ``dataset_size``.
    """

    _batch_size: int = 32

    @property
    def batch_size(self) -> int:
        """The number of samples of a full batch (the last batch may be smaller)."""
        return self._batch_size

    def __iter__(self) -> Iterator[Batch]:
        raise NotImplementedError

    def dataset_size(self) -> int:
        """The number of samples of one epoch."""
        raise NotImplementedError

    def __len__(self) -> int:
        return math.ceil(self.dataset_size() / self._batch_size)


class DatasetFilter:
    """Rindow's DatasetFilter: transforms each batch after it is cut (augmentation,
    normalisation, one-hot encoding, ...). Subclasses implement :meth:`translate`.
    A plain callable ``fn(inputs, tests) -> (inputs, tests)`` works as well."""

    def translate(self, inputs: Any, tests: Any = None) -> tuple[Any, Any]:
        raise NotImplementedError


def as_filter(filter: Any, owner: str) -> FilterFn | None:
    """A DatasetFilter (anything with ``translate``) or a callable, as a callable."""
    if filter is None:
        return None
    translate = getattr(filter, "translate", None)
    if callable(translate):
        fn = translate
    elif callable(filter):
        fn = filter
    else:
        raise OpTypeError(
            f"{owner}: filter must be a DatasetFilter (an object with translate(inputs, tests)) "
            f"or a callable (inputs, tests) -> (inputs, tests), got {type(filter).__name__}"
        )

    def apply(inputs: Any, tests: Any) -> tuple[Any, Any]:
        result = fn(inputs, tests)
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise OpTypeError(
                f"{owner}: the filter must return a pair (inputs, tests), got {type(result).__name__}"
                + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
            )
        return result[0], result[1]

    return apply


def check_batch_size(batch_size: Any, owner: str) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise OpValueError(f"{owner}: batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)


def check_shuffle_buffer(size: Any, owner: str) -> int:
    """0 (no shuffling) for None, else a non-negative int."""
    if size is None:
        return 0
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise OpValueError(f"{owner}: shuffle_buffer must be None or an int >= 0, got {size!r}")
    return int(size)


T = TypeVar("T")


def shuffle_buffer(items: Iterable[T], size: int, rng: np.random.Generator) -> Iterator[T]:
    """tf.data's shuffle buffer: fill a buffer of ``size`` items; then each item out is drawn
    uniformly from the buffer and replaced by the next item in. A buffer as large as the
    stream is a uniform shuffle; only ``size`` items are held at once."""
    buffer: list[T] = []
    draws: Iterator[int] = iter(())
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = next(draws, None)
        if j is None:
            draws = iter(rng.integers(0, size, 1024).tolist())
            j = next(draws)
        yield buffer[j]
        buffer[j] = item
    for j in rng.permutation(len(buffer)).tolist():
        yield buffer[j]


def make_generator(seed: Any, owner: str) -> np.random.Generator | None:
    """A private generator for an int seed, the given Generator, or None (use the library's)."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise OpTypeError(f"{owner}: seed must be an int, a numpy.random.Generator or None, got {seed!r}")
    return np.random.default_rng(int(seed))


def library_generator() -> np.random.Generator:
    from .. import random

    return random.generator()


def is_array_like(value: Any) -> bool:
    """An array or Variable (anything with a shape), as opposed to a nested list of numbers."""
    return isinstance(value, (np.ndarray, Variable))


def as_array(value: Any, owner: str, arg: str) -> np.ndarray:
    """An ndarray view of ``value``, never a copy of an ndarray. Variables give their value;
    Python numbers and nested lists go through ``np.asarray``, floats as float32 (the
    library's default float), integers and bools unchanged."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, Variable):
        return value.value()
    if isinstance(value, (str, bytes)) or value is None:
        raise OpTypeError(f"{owner}: {arg} must be an array, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except ValueError as exc:
        raise OpTypeError(f"{owner}: {arg} is a ragged nested list: {exc}") from None
    if arr.dtype == np.float64 and not isinstance(value, np.generic):
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in "biuf":
        raise OpTypeError(f"{owner}: {arg} must hold numbers, got dtype {arr.dtype}")
    return arr


def as_array_list(value: Any, owner: str, arg: str) -> tuple[bool, list[np.ndarray]]:
    """``(several, arrays)``: a list or tuple of arrays is several arrays (a model with several
    inputs or outputs); anything else is one array (a nested list of numbers included)."""
    if isinstance(value, (list, tuple)) and value and all(is_array_like(v) for v in value):
        return True, [as_array(v, owner, f"{arg}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (list, tuple)) and not value:
        raise OpValueError(f"{owner}: {arg} is empty")
    return False, [as_array(value, owner, arg)]


def names(arg: str, several: bool, count: int) -> Sequence[str]:
    return [f"{arg}[{i}]" for i in range(count)] if several else [arg]
