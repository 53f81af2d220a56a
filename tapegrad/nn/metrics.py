"""Metrics: stateful objects computed with NumPy on raw values (no tape), Keras 3 semantics.

A metric accumulates over ``update_state(trues, predicts)`` calls; ``result()`` is a
float (0.0 before any update), ``reset_state()`` starts over, ``metric(trues, predicts)``
updates and returns the result. Arguments may be Variables, arrays or nested lists.

Most metrics are means of per-sample values (:class:`MeanMetricWrapper`): accuracy (1.0
or 0.0 per sample; the mean over the last axis for BinaryAccuracy), squared or absolute
error averaged over the last axis, or any function ``fn(trues, predicts)``. Each
sample counts once, so the result over several batches is the mean over all samples. A
function that returns one number per batch has that number count for each sample of the
batch (a batch-size-weighted mean; Keras would count it once per batch).

``get(identifier, loss=None)``: ``"accuracy"`` (or ``"acc"``) picks the variant that fits
the loss, as Keras does: BinaryAccuracy for BinaryCrossentropy (with the threshold at 0
for ``from_logits=True``, where Keras keeps 0.5 and so measures the wrong thing),
SparseCategoricalAccuracy for SparseCategoricalCrossentropy, CategoricalAccuracy for
CategoricalCrossentropy. For any other loss (or none), the choice is made from the shapes
of the first batch: predictions with a last axis of length 1 (or 1-D ones) are binary;
trues of lower rank, or with a last axis of length 1, are sparse labels; otherwise
categorical. The metric is named after the identifier (``"accuracy"``, ``"acc"``,
``"mse"``), as in Keras.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np

from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError
from . import loss_masks

__all__ = [
    "Metric", "Mean", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy",
    "SparseCategoricalAccuracy", "AutoAccuracy", "MeanSquaredError", "MeanAbsoluteError",
    "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy",
    "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "mean_squared_error", "mean_absolute_error", "get", "serialize", "deserialize",
]

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
        if predicts.__class__ is Variable and predicts.mask is not None:  # masked positions are skipped
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


def _loss_values(fn_name: str) -> Callable[..., np.ndarray]:
    def values(trues: Any, predicts: Any, **kwargs: Any) -> np.ndarray:
        from . import losses

        return getattr(losses, fn_name)(trues, predicts, **kwargs)._value

    values.__name__ = fn_name
    return values


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """The mean sparse categorical cross-entropy (see :mod:`tapegrad.nn.losses`)."""

    def __init__(self, name: str | None = "sparse_categorical_crossentropy", from_logits: bool = False) -> None:
        super().__init__(_loss_values("sparse_categorical_crossentropy"), name, from_logits=bool(from_logits))


class CategoricalCrossentropy(MeanMetricWrapper):
    """The mean categorical cross-entropy (see :mod:`tapegrad.nn.losses`)."""

    def __init__(self, name: str | None = "categorical_crossentropy", from_logits: bool = False,
                 label_smoothing: float = 0.0) -> None:
        super().__init__(_loss_values("categorical_crossentropy"), name, from_logits=bool(from_logits),
                         label_smoothing=float(label_smoothing))


class BinaryCrossentropy(MeanMetricWrapper):
    """The mean binary cross-entropy (see :mod:`tapegrad.nn.losses`)."""

    def __init__(self, name: str | None = "binary_crossentropy", from_logits: bool = False,
                 label_smoothing: float = 0.0) -> None:
        super().__init__(_loss_values("binary_crossentropy"), name, from_logits=bool(from_logits),
                         label_smoothing=float(label_smoothing))


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


# ---------------------------------------------------------------------------------------
# Lookup.
# ---------------------------------------------------------------------------------------
_CLASSES: dict[str, type[Metric]] = {
    cls.__name__: cls
    for cls in (Mean, MeanMetricWrapper, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                AutoAccuracy, MeanSquaredError, MeanAbsoluteError, SparseCategoricalCrossentropy,
                CategoricalCrossentropy, BinaryCrossentropy)
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    fn.__name__: fn
    for fn in (accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, mean_squared_error,
               mean_absolute_error)
}
# names (lower case, without underscores) -> class; "accuracy"/"acc" are handled by get()
_NAMES: dict[str, type[Metric]] = {
    "binaryaccuracy": BinaryAccuracy,
    "categoricalaccuracy": CategoricalAccuracy,
    "sparsecategoricalaccuracy": SparseCategoricalAccuracy,
    "mse": MeanSquaredError, "meansquarederror": MeanSquaredError,
    "mae": MeanAbsoluteError, "meanabsoluteerror": MeanAbsoluteError,
    "sparsecategoricalcrossentropy": SparseCategoricalCrossentropy,
    "categoricalcrossentropy": CategoricalCrossentropy,
    "binarycrossentropy": BinaryCrossentropy,
}
_KNOWN = ("accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "mse",
          "mean_squared_error", "mae", "mean_absolute_error", "sparse_categorical_crossentropy",
          "categorical_crossentropy", "binary_crossentropy")


def _resolve_loss(loss: Any) -> Any:
    if loss is None:
        return None
    from . import losses

    if isinstance(loss, (str, dict)) or (isinstance(loss, type) and issubclass(loss, losses.Loss)):
        try:
            return losses.get(loss)
        except (ValueError, TypeError):
            return None
    return loss


def _loss_kind(loss: Any) -> tuple[str | None, bool]:
    """("binary" | "sparse" | "categorical" | None, from_logits) for a loss object or function."""
    from . import losses

    loss = _resolve_loss(loss)
    if isinstance(loss, losses.LossFunctionWrapper):
        fn, kwargs = loss.fn, loss.fn_kwargs
    elif isinstance(loss, losses.Loss):
        fn, kwargs = None, {}
    else:
        fn, kwargs = loss, {}
    from_logits = bool(getattr(loss, "from_logits", kwargs.get("from_logits", False)))
    if isinstance(loss, losses.BinaryCrossentropy) or fn is losses.binary_crossentropy:
        return "binary", from_logits
    if isinstance(loss, losses.SparseCategoricalCrossentropy) or fn is losses.sparse_categorical_crossentropy:
        return "sparse", from_logits
    if isinstance(loss, losses.CategoricalCrossentropy) or fn is losses.categorical_crossentropy:
        return "categorical", from_logits
    return None, from_logits


def _accuracy_for(name: str, loss: Any) -> Metric:
    kind, from_logits = _loss_kind(loss)
    if kind == "binary":
        return BinaryAccuracy(name, threshold=0.0 if from_logits else 0.5)
    if kind == "sparse":
        return SparseCategoricalAccuracy(name)
    if kind == "categorical":
        return CategoricalAccuracy(name)
    return AutoAccuracy(name)


def serialize(metric: Metric) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for :func:`deserialize`."""
    if not isinstance(metric, Metric):
        raise OpTypeError(f"metrics.serialize: expected a Metric, got {type(metric).__name__}")
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Metric:
    """The metric described by :func:`serialize`'s output; user classes or functions are
    looked up in ``custom_objects``."""
    try:
        class_name, cfg = config["class_name"], dict(config.get("config") or {})
    except (KeyError, TypeError):
        raise OpValueError(f"metrics.deserialize: expected {{'class_name': ..., 'config': ...}}, "
                           f"got {config!r}") from None
    custom = custom_objects or {}
    cls = custom.get(class_name) or _CLASSES.get(class_name)
    if cls is None:
        raise OpValueError(f"metrics.deserialize: unknown metric class {class_name!r}; pass it in custom_objects")
    if cls is MeanMetricWrapper:
        return MeanMetricWrapper.from_config(cfg, custom)
    if isinstance(cls, type) and issubclass(cls, Metric):
        return cls.from_config(cfg)
    if callable(cls):
        return MeanMetricWrapper(cls, name=cfg.get("name"))
    raise OpTypeError(f"metrics.deserialize: {class_name!r} is not a Metric class")


def get(identifier: Any, loss: Any = None) -> Metric:
    """A metric from a name, a config dict, a Metric class or instance, or a callable.

    ``"accuracy"`` / ``"acc"`` pick the variant that fits ``loss`` (a Loss, a loss name or
    function), or, without a decisive loss, from the shapes of the first batch. Names are
    matched without regard to case and underscores; the metric is named after the
    identifier. A cross-entropy name takes ``from_logits`` from a loss of the same kind.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower().replace("_", "")
        if key in ("accuracy", "acc"):
            return _accuracy_for(identifier, loss)
        cls = _NAMES.get(key)
        if cls is None:
            raise OpValueError(f"metrics.get: unknown metric {identifier!r}; known names: {', '.join(_KNOWN)} "
                               f"(or a class name)")
        if cls in (SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy):
            kind, from_logits = _loss_kind(loss)
            same = {"sparse": SparseCategoricalCrossentropy, "categorical": CategoricalCrossentropy,
                    "binary": BinaryCrossentropy}.get(kind or "")
            return cls(identifier, from_logits=from_logits and same is cls)
        return cls(identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise OpTypeError(f"metrics.get: cannot make a metric from {type(identifier).__name__} {identifier!r}")
