"""The metrics that do not depend on the losses: the :class:`Metric` base classes, the
per-sample metric functions, the accuracies and the mean errors. :mod:`tapegrad.nn.metrics`
re-exports all of them and adds the cross-entropy metrics and ``get()`` (which need the
losses); see its docstring for the semantics."""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np

from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError
from . import loss_masks

_SMALL_CLASSES = 64


# ---------------------------------------------------------------------------------------
# NumPy helpers.
# ---------------------------------------------------------------------------------------
def _array(x: Any, op: str, arg: str) -> np.ndarray:
    if isinstance(x, Variable):
        x = x._value
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise OpTypeError(f"{op}: {arg} has dtype {arr.dtype}; expected numbers")
    return arr


def _match(op: str, t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras' squeeze-or-expand rule for a trailing axis of length 1, then equal shapes."""
    if t.shape == p.shape:
        return t, p
    if t.ndim == p.ndim + 1 and t.shape[-1] == 1 and t.shape[:-1] == p.shape:
        return (t, p[..., None]) if p.ndim == 1 else (t[..., 0], p)
    if p.ndim == t.ndim + 1 and p.shape[-1] == 1 and p.shape[:-1] == t.shape:
        return (t[..., None], p) if t.ndim == 1 else (t, p[..., 0])
    raise OpValueError(f"{op}: trues of shape {t.shape} do not match predicts of shape {p.shape} "
                       f"(they must have the same shape)")


def _row_argmax(x: np.ndarray) -> np.ndarray:
    """argmax over the last axis (first index on ties). For few classes, on the transposed
    copy: reducing a short last axis is ~10x slower in NumPy."""
    if x.ndim >= 2 and x.shape[-1] <= _SMALL_CLASSES and x.size > x.shape[-1]:
        x2 = x.reshape(-1, x.shape[-1])
        return x2.T.copy().argmax(axis=0).reshape(x.shape[:-1])
    return np.argmax(x, axis=-1)


def _mean_last(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1) if x.ndim else x


# ---------------------------------------------------------------------------------------
# Per-sample metric functions (NumPy).
# ---------------------------------------------------------------------------------------
def accuracy(trues: Any, predicts: Any) -> np.ndarray:
    """1.0 where ``trues == predicts`` (Keras' Accuracy: predictions are already labels)."""
    t, p = _match("accuracy", _array(trues, "accuracy", "trues"), _array(predicts, "accuracy", "predicts"))
    return (t == p).astype(np.float64)


def binary_accuracy(trues: Any, predicts: Any, threshold: float = 0.5) -> np.ndarray:
    """Per sample, the fraction of ``(predicts > threshold) == trues`` over the last axis."""
    op = "binary_accuracy"
    t, p = _match(op, _array(trues, op, "trues"), _array(predicts, op, "predicts"))
    return _mean_last((t == (p > threshold)).astype(np.float64))


def categorical_accuracy(trues: Any, predicts: Any) -> np.ndarray:
    """1.0 where the argmax of the one-hot ``trues`` equals that of ``predicts``."""
    op = "categorical_accuracy"
    t, p = _array(trues, op, "trues"), _array(predicts, op, "predicts")
    if t.shape != p.shape or p.ndim == 0:
        hint = " (integer labels need SparseCategoricalAccuracy)" if p.ndim and t.shape in (
            p.shape[:-1], p.shape[:-1] + (1,)) else ""
        raise OpValueError(f"{op}: trues of shape {t.shape} do not match predicts of shape {p.shape}: "
                           f"categorical trues are one-hot vectors of the predictions' shape{hint}")
    return (_row_argmax(t) == _row_argmax(p)).astype(np.float64)


def sparse_categorical_accuracy(trues: Any, predicts: Any) -> np.ndarray:
    """1.0 where the integer label equals the argmax of ``predicts`` over the last axis."""
    op = "sparse_categorical_accuracy"
    t, p = _array(trues, op, "trues"), _array(predicts, op, "predicts")
    if p.ndim == 0:
        raise OpValueError(f"{op}: predicts must have a class axis (shape (batch, classes)), got shape ()")
    if t.shape != p.shape[:-1]:
        if t.shape == p.shape[:-1] + (1,):
            t = t.reshape(p.shape[:-1])
        else:
            raise OpValueError(f"{op}: trues of shape {t.shape} do not match predicts of shape {p.shape}: "
                               f"integer labels must have shape {p.shape[:-1]} or {p.shape[:-1] + (1,)}")
    return (t == _row_argmax(p)).astype(np.float64)


def mean_squared_error(trues: Any, predicts: Any) -> np.ndarray:
    """Per sample, the mean of ``(predicts - trues) ** 2`` over the last axis."""
    op = "mean_squared_error"
    t, p = _match(op, _array(trues, op, "trues"), _array(predicts, op, "predicts"))
    d = p.astype(np.float64) - t
    return _mean_last(d * d)


def mean_absolute_error(trues: Any, predicts: Any) -> np.ndarray:
    """Per sample, the mean of ``|predicts - trues|`` over the last axis."""
    op = "mean_absolute_error"
    t, p = _match(op, _array(trues, op, "trues"), _array(predicts, op, "predicts"))
    return _mean_last(np.abs(p.astype(np.float64) - t))


# ---------------------------------------------------------------------------------------
# Metric objects.
# ---------------------------------------------------------------------------------------
def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class Metric:
    """Base class: ``update_state``, ``result``, ``reset_state``, ``name``."""

    def __init__(self, name: str | None = None) -> None:
        self.name: str = name if name is not None else _snake_case(type(self).__name__)

    def update_state(self, trues: Any, predicts: Any, sample_weight: Any = None) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement update_state(trues, predicts)")

    def result(self) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement result()")

    def reset_state(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement reset_state()")

    def reset_states(self) -> None:
        """The same as :meth:`reset_state` (the Keras 2 name)."""
        self.reset_state()

    def __call__(self, trues: Any, predicts: Any, sample_weight: Any = None) -> float:
        """Update the state with a batch and return the result."""
        self.update_state(trues, predicts, sample_weight)
        return self.result()

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON values)."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} result={self.result():.6g}>"


class Mean(Metric):
    """The (weighted) mean of the values passed to ``update_state(values, sample_weight=None)``.

    Values of rank 2 or more are first averaged over all but the first axis (one value per
    sample), as in Keras.
    """

    def __init__(self, name: str | None = "mean") -> None:
        super().__init__(name)
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values: Any, sample_weight: Any = None, *_: Any) -> None:  # type: ignore[override]
        self._add(_array(values, self.name, "values").astype(np.float64, copy=False), sample_weight)

    def _add(self, values: np.ndarray, sample_weight: Any, batch: int | None = None) -> None:
        if values.ndim > 1:
            values = values.reshape(values.shape[0], -1).mean(axis=1)
        if sample_weight is None:
            if values.ndim == 0:
                n = 1 if batch is None else batch
                self.total += float(values) * n
                self.count += n
            else:
                self.total += float(values.sum())
                self.count += values.size
            return
        w = _array(sample_weight, self.name, "sample_weight").astype(np.float64)
        if w.ndim > values.ndim:
            w = w.reshape(w.shape[:values.ndim] + (-1,)).mean(axis=-1)
        try:
            w = np.broadcast_to(w, values.shape) if values.ndim else w
        except ValueError:
            raise OpValueError(f"{self.name}: sample_weight of shape {w.shape} does not fit the per-sample values "
                               f"of shape {values.shape}") from None
        if values.ndim == 0:
            self.total += float(values) * float(w.sum())
            self.count += float(w.sum())
        else:
            self.total += float((values * w).sum())
            self.count += float(w.sum())

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0


def _batch_size(trues: Any, predicts: Any) -> int | None:
    for x in (predicts, trues):
        shape = np.shape(x._value if isinstance(x, Variable) else x)
        if shape:
            return int(shape[0])
    return None


class MeanMetricWrapper(Mean):
    """The mean of ``fn(trues, predicts, **kwargs)`` over all samples seen.

    ``fn`` returns per-sample values (an array, or a Variable), or one number for the
    batch, which then counts for each of the batch's samples.
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None, **kwargs: Any) -> None:
        if not callable(fn):
            raise OpTypeError(f"MeanMetricWrapper: fn must be callable, got {type(fn).__name__}")
        super().__init__(name if name is not None else getattr(fn, "__name__", "metric"))
        self.fn = fn
        self.fn_kwargs = kwargs

    def update_state(self, trues: Any, predicts: Any, sample_weight: Any = None) -> None:  # type: ignore[override]
        values = self.fn(trues, predicts, **self.fn_kwargs)
        values = _array(values, self.name, "the function's result").astype(np.float64, copy=False)
        # masked positions are skipped (a function that reduced the batch itself, to one number, masks it itself)
        if predicts.__class__ is Variable and predicts.mask is not None and values.ndim:
            values, sample_weight = loss_masks.masked_metric_values(self.name, values, sample_weight, predicts.mask)
        self._add(values, sample_weight, _batch_size(trues, predicts) if values.ndim == 0 else None)

    def get_config(self) -> dict[str, Any]:
        config = {"name": self.name, **self.fn_kwargs}
        if type(self) is MeanMetricWrapper:
            config["fn"] = getattr(self.fn, "__name__", repr(self.fn))
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Metric:
        if cls is not MeanMetricWrapper:
            return cls(**config)
        config = dict(config)
        fn_name = config.pop("fn")
        fn = (custom_objects or {}).get(fn_name) or _FUNCTIONS.get(fn_name)
        if fn is None:
            raise OpValueError(f"MeanMetricWrapper: unknown metric function {fn_name!r}; pass it in custom_objects")
        return cls(fn, **config)


class Accuracy(MeanMetricWrapper):
    """How often predictions equal the trues (both already labels)."""

    def __init__(self, name: str | None = "accuracy") -> None:
        super().__init__(accuracy, name)


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``predicts > threshold`` matches binary trues (mean over the last axis)."""

    def __init__(self, name: str | None = "binary_accuracy", threshold: float = 0.5) -> None:
        super().__init__(binary_accuracy, name, threshold=float(threshold))

    @property
    def threshold(self) -> float:
        return self.fn_kwargs["threshold"]


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of the predictions matches the argmax of one-hot trues."""

    def __init__(self, name: str | None = "categorical_accuracy") -> None:
        super().__init__(categorical_accuracy, name)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of the predictions matches integer labels."""

    def __init__(self, name: str | None = "sparse_categorical_accuracy") -> None:
        super().__init__(sparse_categorical_accuracy, name)


class MeanSquaredError(MeanMetricWrapper):
    """The mean squared error (per sample over the last axis, then over samples)."""

    def __init__(self, name: str | None = "mean_squared_error") -> None:
        super().__init__(mean_squared_error, name)


class MeanAbsoluteError(MeanMetricWrapper):
    """The mean absolute error (per sample over the last axis, then over samples)."""

    def __init__(self, name: str | None = "mean_absolute_error") -> None:
        super().__init__(mean_absolute_error, name)


def _pick_by_shapes(trues: Any, predicts: Any, name: str) -> MeanMetricWrapper:
    """Keras' choice of accuracy from the shapes of a batch."""
    ts = np.shape(trues._value if isinstance(trues, Variable) else trues)
    ps = np.shape(predicts._value if isinstance(predicts, Variable) else predicts)
    if len(ps) <= 1 or ps[-1] == 1:
        return BinaryAccuracy(name)
    if len(ts) < len(ps) or (ts and ts[-1] == 1):
        return SparseCategoricalAccuracy(name)
    return CategoricalAccuracy(name)


class AutoAccuracy(Metric):
    """``"accuracy"`` without a loss to decide by: the binary, sparse or categorical variant,
    chosen from the shapes of the first batch (see the module docstring) and then kept."""

    def __init__(self, name: str | None = "accuracy") -> None:
        super().__init__(name)
        self.metric: MeanMetricWrapper | None = None

    def update_state(self, trues: Any, predicts: Any, sample_weight: Any = None) -> None:
        if self.metric is None:
            self.metric = _pick_by_shapes(trues, predicts, self.name)
        self.metric.update_state(trues, predicts, sample_weight)

    def result(self) -> float:
        return self.metric.result() if self.metric is not None else 0.0

    def reset_state(self) -> None:
        if self.metric is not None:
            self.metric.reset_state()


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    fn.__name__: fn
    for fn in (accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, mean_squared_error,
               mean_absolute_error)
}
