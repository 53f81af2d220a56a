"""SequentialDataset: batches the samples (or chunks of samples) that an iterable yields.

The pipeline of one epoch: read items from the source, cut them into fields (the arrays
of the inputs and of the targets), optionally pass the samples through a shuffle buffer,
stack them into batches, stop at ``total_size`` samples, then apply the filter.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError
from .base import (
    Batch,
    Dataset,
    as_array,
    as_filter,
    check_batch_size,
    check_shuffle_buffer,
    library_generator,
    make_generator,
    shuffle_buffer,
)

Fields = list  # the arrays of one sample or one batch: inputs first, then targets

_ARRAYS = (np.ndarray, np.generic, Variable)


class _Layout:
    """Where the fields of an item go: how many inputs and targets, and whether each side is
    a list (several arrays) or one array. Fixed by the first item of the source."""

    __slots__ = ("multi_x", "n_x", "multi_t", "n_t")

    def __init__(self, multi_x: bool, n_x: int, multi_t: bool | None, n_t: int) -> None:
        self.multi_x, self.n_x, self.multi_t, self.n_t = multi_x, n_x, multi_t, n_t

    def assemble(self, fields: Fields) -> Batch:
        xs = fields[: self.n_x]
        x = xs if self.multi_x else xs[0]
        if self.multi_t is None:
            return x, None
        ts = fields[self.n_x:]
        return x, (ts if self.multi_t else ts[0])


def _side(value: Any) -> tuple[bool, list[Any]]:
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, _ARRAYS) for v in value):
        return True, list(value)
    return False, [value]


class SequentialDataset(Dataset):
    """Batches of the items of an iterable, read lazily (nothing is loaded ahead).

    Args:
        source: an iterable, or a callable that returns a new iterable for every epoch (a
            generator function). A one-shot iterator (a generator object) can be read for
            one epoch only; pass its function to iterate several epochs.
        batch_size: samples per batch; the last batch holds the remainder.
        chunked: False: each item is one sample. True: each item is a chunk of samples
            along its first axis (Rindow's SequentialDataset), re-batched across the chunk
            boundaries. The default is False, or True when ``inputs_filter`` or ``shuffle``
            (Rindow's arguments, which work on chunks) is given.
        shuffle_buffer: None or 0 for the source's order; N > 0 shuffles through a buffer of N
            samples, as ``tf.data.Dataset.shuffle(N)``: a buffer as large as the dataset is
            a full shuffle.
        seed: an int, a ``numpy.random.Generator``, or None for the library's generator.
        filter: a :class:`DatasetFilter` or callable ``(inputs, tests) -> (inputs, tests)``
            applied to each batch.
        inputs_filter: the same, applied to each item (each chunk) as it is read, before it
            is cut into batches (Rindow: normalising a CIFAR-10 file at a time).
        shuffle: shuffle the samples of each chunk (Rindow's ``shuffle``; needs chunks).
        total_size: stop after this many samples; also makes ``len()`` and
            ``dataset_size()`` known for sources without ``len``.

    Items: a sample (an array, a number or a nested list) without targets, or a tuple
    ``(inputs, trues)``. ``inputs`` (or ``trues``) may be a list or tuple of arrays for
    a model with several inputs (outputs); a batch then holds a list. A tuple of two
    arrays is always ``(inputs, trues)``: write several inputs without targets as
    ``([a, b], None)``. Every item must have the layout of the first, and samples the
    same shapes. Python floats become float32.
    """

    def __init__(
        self,
        source: Iterable[Any] | Callable[[], Iterable[Any]],
        batch_size: int = 32,
        *,
        chunked: bool | None = None,
        shuffle_buffer: int | None = None,
        seed: int | np.random.Generator | None = None,
        filter: Any = None,
        total_size: int | None = None,
        inputs_filter: Any = None,
        shuffle: bool | None = None,
    ) -> None:
        owner = "SequentialDataset"
        if chunked is None:
            chunked = inputs_filter is not None or shuffle is not None
        if shuffle and not chunked:
            raise OpValueError(f"{owner}: shuffle=True shuffles the samples of each chunk (chunked=True); to shuffle "
                               "a stream of single samples, pass shuffle_buffer=N")
        self._factory = not hasattr(source, "__iter__")  # a callable returning an iterable per epoch
        if self._factory and not callable(source):
            raise OpTypeError(f"{owner}: source must be an iterable or a callable returning one, "
                              f"got {type(source).__name__}")
        self._source = source
        self._batch_size = check_batch_size(batch_size, owner)
        self._chunked = bool(chunked)
        self._shuffle_buffer = check_shuffle_buffer(shuffle_buffer, owner)
        self._generator = make_generator(seed, owner)
        if total_size is not None and (isinstance(total_size, bool) or not isinstance(total_size, (int, np.integer))
                                       or total_size < 0):
            raise OpValueError(f"{owner}: total_size must be None or an int >= 0, got {total_size!r}")
        self._total_size = None if total_size is None else int(total_size)
        self._filter = filter
        self._filter_fn = as_filter(filter, owner)
        self._inputs_filter_fn = as_filter(inputs_filter, owner)
        self._shuffle = bool(shuffle)
        self._one_shot = not self._factory and iter(source) is source
        self._epochs = 0

    @property
    def filter(self) -> Any:
        return self._filter

    def set_filter(self, filter: Any) -> None:
        """Replace the per-batch filter (None removes it)."""
        self._filter_fn = as_filter(filter, "SequentialDataset")
        self._filter = filter

    def dataset_size(self) -> int:
        """``len(source)`` for a source of samples that has a length, at most ``total_size``;
        else ``total_size``; otherwise unknown before reading: ``TypeError``."""
        if not self._chunked and not self._factory and hasattr(self._source, "__len__"):
            n = len(self._source)  # type: ignore[arg-type]
            return n if self._total_size is None else min(n, self._total_size)
        if self._total_size is not None:
            return self._total_size
        raise TypeError("SequentialDataset: the number of samples is unknown before reading the source; "
                        "pass total_size=... to give it")

    def __repr__(self) -> str:
        return (f"SequentialDataset(batch_size={self._batch_size}, chunked={self._chunked}, "
                f"shuffle={self._shuffle}, shuffle_buffer={self._shuffle_buffer}, total_size={self._total_size})")

    # -- iteration --------------------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        if self._one_shot and self._epochs:
            raise RuntimeError(
                "SequentialDataset: the source is an iterator (e.g. a generator object), which can be "
                "read only once; pass a callable that returns a new iterable (e.g. the generator "
                "function itself) to iterate several epochs"
            )
        self._epochs += 1
        source = self._source() if self._factory else self._source
        return self._epoch(source)

    def _epoch(self, source: Iterable[Any]) -> Iterator[Batch]:
        layout: list[_Layout] = []  # filled by the first item
        items = self._items(source, layout)
        if self._chunked and not self._shuffle_buffer:
            batches = _rebatch_chunks(items, self._batch_size)
        else:
            samples = _rows(items) if self._chunked else items
            if self._shuffle_buffer:
                rng = self._generator if self._generator is not None else library_generator()
                samples = shuffle_buffer(samples, self._shuffle_buffer, rng)
            batches = _stack_samples(samples, self._batch_size)
        remaining = self._total_size
        fn = self._filter_fn
        for fields in batches:
            if remaining is not None:
                if remaining <= 0:
                    return
                size = len(fields[0])
                if size > remaining:
                    fields = [f[:remaining] for f in fields]
                    size = remaining
                remaining -= size
            x, t = layout[0].assemble(fields)
            yield fn(x, t) if fn is not None else (x, t)

    def _items(self, source: Iterable[Any], layout: list[_Layout]) -> Iterator[Fields]:
        """The items of the source as lists of arrays, checked against the first item's layout."""
        owner = "SequentialDataset"
        what = "chunk" if self._chunked else "sample"
        inputs_filter = self._inputs_filter_fn
        rng = (self._generator if self._generator is not None else library_generator()) if self._shuffle else None
        for k, item in enumerate(source):
            if isinstance(item, tuple):
                if len(item) != 2:
                    raise OpValueError(f"{owner}: item {k} is a tuple of {len(item)} values; an item with "
                                       "targets is a pair (inputs, trues)")
                x, t = item
            else:
                x, t = item, None
            if inputs_filter is not None:
                x, t = inputs_filter(x, t)
            multi_x, xs = _side(x)
            if t is None:
                multi_t, ts = None, []
            else:
                multi_t, ts = _side(t)
            if not layout:
                layout.append(_Layout(multi_x, len(xs), multi_t, len(ts)))
            lay = layout[0]
            if (multi_x, len(xs), multi_t, len(ts)) != (lay.multi_x, lay.n_x, lay.multi_t, lay.n_t):
                raise OpValueError(f"{owner}: item {k} has {_describe(multi_x, len(xs), multi_t, len(ts))}, "
                                   f"but the first item has {_describe(lay.multi_x, lay.n_x, lay.multi_t, lay.n_t)}")
            fields = [as_array(v, owner, f"{what} {k}") for v in xs + ts]
            if self._chunked:
                for f in fields:
                    if f.ndim == 0:
                        raise OpValueError(f"{owner}: chunk {k} holds a scalar; chunks need a first "
                                           "dimension (the samples)")
                sizes = {f.shape[0] for f in fields}
                if len(sizes) > 1:
                    raise OpValueError(f"{owner}: the arrays of chunk {k} have different first dimensions "
                                       f"{[f.shape[0] for f in fields]}")
                if rng is not None:
                    order = rng.permutation(len(fields[0]))
                    fields = [f[order] for f in fields]
            yield fields


def _describe(multi_x: bool, n_x: int, multi_t: bool | None, n_t: int) -> str:
    inputs = f"a list of {n_x} inputs" if multi_x else "one input"
    if multi_t is None:
        return f"{inputs} and no targets"
    return f"{inputs} and " + (f"a list of {n_t} targets" if multi_t else "one target")


def _rows(chunks: Iterator[Fields]) -> Iterator[Fields]:
    for fields in chunks:
        for i in range(len(fields[0])):
            yield [f[i] for f in fields]


def _stack(parts: list[np.ndarray], field: int, first_item: int) -> np.ndarray:
    try:
        return np.stack(parts)
    except ValueError:
        shape0 = parts[0].shape
        k = next(i for i, p in enumerate(parts) if p.shape != shape0)
        raise OpValueError(
            f"SequentialDataset: the samples of a batch must have the same shapes, but field {field} has "
            f"shape {shape0} in sample {first_item} of the batch and {parts[k].shape} in sample "
            f"{first_item + k}"
        ) from None


def _stack_samples(samples: Iterator[Fields], batch_size: int) -> Iterator[Fields]:
    pending: list[Fields] = []
    count = 0
    for sample in samples:
        pending.append(sample)
        if len(pending) == batch_size:
            yield [_stack(list(parts), i, count) for i, parts in enumerate(zip(*pending))]
            count += batch_size
            pending = []
    if pending:
        yield [_stack(list(parts), i, count) for i, parts in enumerate(zip(*pending))]


def _concat(parts: list[np.ndarray], field: int) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    try:
        return np.concatenate(parts)
    except ValueError:
        shapes = [p.shape[1:] for p in parts]
        raise OpValueError(f"SequentialDataset: chunks must have the same sample shape, but field {field} has "
                           f"sample shapes {sorted(set(shapes))}") from None


def _rebatch_chunks(chunks: Iterator[Fields], batch_size: int) -> Iterator[Fields]:
    """Full batches cut across chunk boundaries; slices (views) of a chunk where a batch lies
    inside one chunk, one concatenation where it spans several."""
    pending: list[Fields] = []
    count = 0
    for fields in chunks:
        m = len(fields[0])
        start = 0
        if count:
            take = min(batch_size - count, m)
            pending.append([f[:take] for f in fields])
            count += take
            start = take
            if count < batch_size:
                continue
            yield [_concat(list(parts), i) for i, parts in enumerate(zip(*pending))]
            pending, count = [], 0
        while m - start >= batch_size:
            yield [f[start:start + batch_size] for f in fields]
            start += batch_size
        if start < m:
            pending.append([f[start:] for f in fields])
            count = m - start
    if count:
        yield [_concat(list(parts), i) for i, parts in enumerate(zip(*pending))]
