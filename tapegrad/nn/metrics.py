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

from typing import Any, Callable

import numpy as np

from ..errors import OpTypeError, OpValueError
from . import losses
from .metrics_base import (
    Accuracy,
    AutoAccuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    Mean,
    MeanAbsoluteError,
    MeanMetricWrapper,
    MeanSquaredError,
    Metric,
    SparseCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    mean_absolute_error,
    mean_squared_error,
    sparse_categorical_accuracy,
)

__all__ = [
    "Metric", "Mean", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy",
    "SparseCategoricalAccuracy", "AutoAccuracy", "MeanSquaredError", "MeanAbsoluteError",
    "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy",
    "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "mean_squared_error", "mean_absolute_error", "get", "serialize", "deserialize",
]


def _loss_values(fn_name: str) -> Callable[..., np.ndarray]:
    def values(trues: Any, predicts: Any, **kwargs: Any) -> np.ndarray:
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


# ---------------------------------------------------------------------------------------
# Lookup.
# ---------------------------------------------------------------------------------------
_CLASSES: dict[str, type[Metric]] = {
    cls.__name__: cls
    for cls in (Mean, MeanMetricWrapper, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                AutoAccuracy, MeanSquaredError, MeanAbsoluteError, SparseCategoricalCrossentropy,
                CategoricalCrossentropy, BinaryCrossentropy)
}
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

    if isinstance(loss, (str, dict)) or (isinstance(loss, type) and issubclass(loss, losses.Loss)):
        try:
            return losses.get(loss)
        except (ValueError, TypeError):
            return None
    return loss


def _loss_kind(loss: Any) -> tuple[str | None, bool]:
    """("binary" | "sparse" | "categorical" | None, from_logits) for a loss object or function."""

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
