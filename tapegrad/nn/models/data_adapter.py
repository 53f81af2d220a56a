"""The data path of ``fit``, ``evaluate`` and ``predict``: the arguments ``x``, ``y`` and
``validation_data`` turned into datasets of NumPy batches, checked once, before any step.

Arrays (or Variables, or nested lists of numbers; a list of arrays for several inputs)
become NumPy arrays once, floats in the model's dtype, and are batched by an
:class:`~tapegrad.nn.data.NDArrayDataset`. A user dataset (any other iterable of
``(inputs, trues)`` batches) is wrapped so that its float batches take the model's dtype.
Strings, ragged lists and empty arrays are refused with errors that name the method and
the argument.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError

_VERBS = {"fit": "train on", "evaluate": "evaluate", "predict": "predict"}


def is_dataset(x: Any) -> bool:
    return (x is not None and not isinstance(x, (np.ndarray, Variable, list, tuple, dict, str, bytes))
            and hasattr(x, "__iter__"))


class CastDataset:
    """A user dataset whose float inputs are cast to the model's dtype."""

    def __init__(self, dataset: Any, dtype: np.dtype) -> None:
        self.dataset = dataset
        self.dtype = dtype

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        dtype = self.dtype
        for batch in self.dataset:
            if isinstance(batch, tuple) and len(batch) == 2:
                x, y = batch
            else:
                x, y = batch, None
            yield cast_to(x, dtype), cast_to(y, dtype)


def cast_to(x: Any, dtype: np.dtype) -> Any:
    if isinstance(x, list):
        return [cast_to(a, dtype) for a in x]
    if isinstance(x, Variable):
        x = x.value()
    elif x is not None and not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x is not None and x.dtype.kind == "f" and x.dtype != dtype:
        x = x.astype(dtype)
    return x


def length(data: Any) -> int | None:
    try:
        return len(data)
    except TypeError:
        return None


def batch_len(x: Any) -> int:
    if isinstance(x, (list, tuple)):
        x = x[0]
    return x.shape[0] if x.ndim else 1


def to_numpy(x: Any) -> Any:
    if x.__class__ is Variable:
        return x.value()
    if isinstance(x, (list, tuple)):
        return [to_numpy(a) for a in x]
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    return x


def _not_numbers(x: Any, arr: np.ndarray, owner: str, arg: str) -> OpTypeError:
    what = {"U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers"}.get(arr.dtype.kind,
                                                                                          f"{arr.dtype} values")
    if isinstance(x, (list, tuple)):
        first = type(x[0]).__name__ if len(x) else "?"
        given = f"a {type(x).__name__} of {len(x)} {first} (an array of dtype {arr.dtype})"
    else:
        given = f"an array of dtype {arr.dtype} and shape {arr.shape}"
    return OpTypeError(f"{owner}: {arg} holds {what}, not numbers: got {given}; expected a float array of "
                       f"shape (samples, ...) (or a list of such arrays for a model with several inputs)")


def as_arrays(x: Any, dtype: np.dtype, owner: str, arg: str) -> Any:
    """``x`` as NumPy (a list of arrays for several inputs), floats in ``dtype`` (once, not
    per batch). Anything that is not numbers is refused here, naming ``owner`` and ``arg``."""
    if x is None:
        return None
    if isinstance(x, (list, tuple)) and x and all(isinstance(a, (np.ndarray, Variable)) for a in x):
        return [as_arrays(a, dtype, owner, f"{arg}[{i}]") for i, a in enumerate(x)]
    if isinstance(x, Variable):
        arr = x.value()
    else:
        try:
            arr = np.asarray(x)
        except ValueError as exc:  # ragged nested lists
            raise OpValueError(f"{owner}: {arg} is a nested {type(x).__name__} whose rows differ in length "
                               f"({exc}); expected an array of shape (samples, ...)") from None
    if arr.dtype.kind not in "biuf":
        raise _not_numbers(x, arr, owner, arg)
    if arr.dtype.kind == "f" and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr


def _check_not_empty(x: Any, owner: str, arg: str) -> None:
    first = x[0] if isinstance(x, list) else x
    if first.ndim and first.shape[0] == 0:
        shapes = [a.shape for a in x] if isinstance(x, list) else first.shape
        raise OpValueError(f"{owner}: {arg} has 0 samples (shape {shapes}): there is nothing to "
                           f"{_VERBS.get(owner, owner)}")


def make_dataset(x: Any, y: Any, dtype: np.dtype, batch_size: int, shuffle: bool, owner: str,
                 arg: str = "x") -> tuple[Any, Any]:
    """A dataset of ``(inputs, trues)`` batches from ``fit``'s, ``evaluate``'s or
    ``predict``'s arguments, and all its targets as one array (None for a user dataset),
    for checking them once. Arrays must hold at least one sample."""
    from ..data import NDArrayDataset

    if is_dataset(x):
        if y is not None:
            raise OpValueError(f"{owner}: y must be None when x is a dataset (it yields (inputs, trues))")
        if length(x) == 0:
            raise OpValueError(f"{owner}: the dataset given as {arg} has no batches: there is nothing to "
                               f"{_VERBS.get(owner, owner)}")
        return CastDataset(x, dtype), None
    if x is None:
        raise OpValueError(f"{owner}: {arg} is required")
    x = as_arrays(x, dtype, owner, arg)
    _check_not_empty(x, owner, arg)
    y = as_arrays(y, dtype, owner, "y" if arg == "x" else f"the targets of {arg}")
    return NDArrayDataset(x, tests=y, batch_size=batch_size, shuffle=shuffle), y


def split_validation(x: Any, y: Any, split: float, dtype: np.dtype) -> tuple[Any, Any, Any]:
    """``fit``'s ``validation_split``: the last ``split`` of the samples (before shuffling)
    as ``(x_val, y_val)``."""
    if not 0.0 < split < 1.0:
        raise OpValueError(f"fit: validation_split must be in (0, 1), got {split!r}")
    if is_dataset(x):
        raise OpValueError("fit: validation_split works on arrays only; pass validation_data with a dataset")
    x, y = as_arrays(x, dtype, "fit", "x"), as_arrays(y, dtype, "fit", "y")
    _check_not_empty(x, "fit", "x")
    n = batch_len(x)
    cut = int(n * (1.0 - split))
    if cut <= 0 or cut >= n:
        raise OpValueError(f"fit: validation_split={split} of {n} samples leaves an empty training "
                           f"or validation set")

    def part(a: Any, sl: slice) -> Any:
        if a is None:
            return None
        return [b[sl] for b in a] if isinstance(a, list) else a[sl]

    return part(x, slice(0, cut)), part(y, slice(0, cut)), (part(x, slice(cut, None)), part(y, slice(cut, None)))


def validation_dataset(data: Any, dtype: np.dtype, batch_size: int) -> tuple[Any, Any]:
    if is_dataset(data):
        return make_dataset(data, None, dtype, batch_size, False, "fit", "validation_data")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return make_dataset(data[0], data[1], dtype, batch_size, False, "fit", "validation_data")
    raise OpValueError("fit: validation_data must be (x_val, y_val) or a dataset"
                       + (" (sample weights are not supported)" if isinstance(data, (tuple, list)) else ""))

