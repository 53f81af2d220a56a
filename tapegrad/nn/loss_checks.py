"""Checks of what the cross-entropy losses are given: values that would give a wrong
loss without any error.

* Binary and categorical trues are probabilities: a value outside [0, 1] (or NaN) is an
  error naming the loss, how many values are wrong and where the first one is.
  Categorical rows that do not sum to 1 (all-zero padding rows, several positive
  classes) are accepted, as Keras and PyTorch do: the loss is ``-sum(trues * log(p))``.
* Class labels are integers in ``[0, classes)`` (``ignore_class`` aside).
* With ``from_logits=False`` the predictions must be probabilities; logits are clipped to
  ``[1e-7, 1 - 1e-7]`` and give a meaningless loss, so values outside [0, 1] (or rows
  of a categorical loss not summing to 1) give a ``UserWarning`` suggesting
  ``from_logits=True``, once per loss kind and process (as Keras does).

Each check is a few NumPy reductions over the array, never a Python loop over elements;
the details of an error are computed only when it is raised. The losses run them where
the values are there: eagerly, and while a compiled function is traced. ``fit`` and
``evaluate`` also check all the targets once, before any (compiled) step
(``Loss._check_trues``).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import OpValueError

_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_ROW_SUM_TOLERANCE = 1e-3
_warned_not_probabilities: set[str] = set()


def _first(bad: np.ndarray, value: np.ndarray, what: str = "values") -> str:
    """How many of the values ``bad`` marks, and the first of them with its index."""
    flat = int(np.argmax(bad))
    index = np.unravel_index(flat, value.shape) if value.ndim else ()
    where = f" at index {tuple(int(i) for i in index)}" if value.ndim else ""
    return f"{int(bad.sum())} of {value.size} {what} (the first: {value.flat[flat].item()!r}{where})"


def check_probability_trues(op: str, value: np.ndarray) -> None:
    """Binary or categorical ``trues`` must lie in [0, 1]."""
    if not value.size or value.dtype.kind == "b":
        return
    if value.min() >= 0 and value.max() <= 1:  # False for NaN too
        return
    bad = ~((value >= 0) & (value <= 1))
    raise OpValueError(f"{op}: trues must be probabilities in [0, 1] (labels 0 and 1, or soft labels); "
                       f"{_first(bad, value)} are not (trues of shape {value.shape})")


def check_class_labels(op: str, value: np.ndarray, classes: int | None, ignore_class: int | None,
                       predicts_shape: tuple[int, ...] | None = None) -> None:
    """Integer class labels in ``[0, classes)`` (no upper bound when ``classes`` is None);
    float labels must hold whole numbers."""
    if value.dtype.kind == "f":
        bad = ~np.isfinite(value) | (value != np.floor(value))
        if bad.any():
            raise OpValueError(f"{op}: trues must be integer class labels; dtype {value.dtype} labels hold the "
                               f"non-integral value {value[bad].flat[0].item()!r}: {_first(bad, value, 'labels')} "
                               f"are not whole numbers")
    if not value.size:
        return
    checked = value if ignore_class is None else value[value != ignore_class]
    if not checked.size:
        return
    if classes is not None and checked.dtype.kind == "i":
        # one reduction: viewed as unsigned, negative labels are huge
        if checked.view(_UNSIGNED[checked.dtype.itemsize]).max() < classes:
            return
    lo, hi = checked.min(), checked.max()
    too_big = classes is not None and hi >= classes
    if lo >= 0 and not too_big:
        return
    bad = (value < 0) | (value >= classes) if classes is not None else value < 0
    if ignore_class is not None:
        bad &= value != ignore_class
    label = lo if lo < 0 else hi
    where = f"outside the range [0, {classes}) of predicts with {classes} classes" if classes is not None else \
        "but class labels are >= 0"
    if predicts_shape is not None:
        where += f" (predicts of shape {predicts_shape}, trues of shape {value.shape})"
    raise OpValueError(f"{op}: trues hold the label {label:g}, {where}: {_first(bad, value, 'labels')} "
                       f"are out of range")


def _first_row_sum(predicts: np.ndarray, axis: int) -> float:
    # Only the first row is summed on every call: summing every row costs more than the rest
    # of the check, and scores in [0, 1] that are not normalised are rarely so in one row only.
    if axis % predicts.ndim != predicts.ndim - 1:
        predicts = np.moveaxis(predicts, axis, -1)
    return float(predicts[(0,) * (predicts.ndim - 1)].sum())


def warn_unless_probabilities(op: str, predicts: np.ndarray, axis: int | None) -> None:
    """With ``from_logits=False``: predictions outside [0, 1], or (``axis`` given) rows not
    summing to 1, are probably logits."""
    if op in _warned_not_probabilities or not predicts.size:
        return
    reason = ""
    if not (predicts.min() >= 0 and predicts.max() <= 1):
        reason = f"{_first(~((predicts >= 0) & (predicts <= 1)), predicts)} are outside [0, 1]"
    elif axis is not None and predicts.ndim and abs(_first_row_sum(predicts, axis) - 1.0) > _ROW_SUM_TOLERANCE:
        sums = predicts.sum(axis=axis)
        reason = f"the sums of {_first(np.abs(sums - 1.0) > _ROW_SUM_TOLERANCE, sums, 'rows')} are not 1"
    if reason:
        _warned_not_probabilities.add(op)
        warnings.warn(f"{op}: from_logits=False, but predicts are not probabilities ({reason}); if they are "
                      f"logits (no softmax or sigmoid at the end of the model), pass from_logits=True: "
                      f"probabilities are clipped to [1e-7, 1 - 1e-7], so logits give a wrong loss",
                      UserWarning, stacklevel=4)
