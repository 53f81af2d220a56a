"""Losses: Keras 3 semantics, built from tapegrad primitives.

``loss(trues, predicts, sample_weight=None) -> Variable`` (``loss.forward`` is the same
call). A loss first computes one value per sample, then reduces them:

* ``reduction="mean"`` (the default; Keras' ``"sum_over_batch_size"``, also accepted, as
  is ``"auto"``): the mean of the per-sample values, a scalar;
* ``"sum"``: their sum, a scalar;
* ``"none"`` (or None): the per-sample values.

Per-sample values follow Keras: MeanSquaredError, MeanAbsoluteError, Huber and
BinaryCrossentropy average over the last axis (so ``(batch, d)`` predictions give
``(batch,)`` values, and 1-D predictions give one scalar, exactly as in Keras); the
categorical cross-entropies sum over the class axis. A ``sample_weight`` multiplies the
per-sample values before the reduction ("mean" still divides by the number of values).

``trues`` are constants: Variables or arrays, never differentiated. ``predicts`` are
differentiated: every operation on them is a tapegrad primitive, so tapes record the
loss and compiled Functions trace it. Integer predictions are cast to float32; float
predictions keep their dtype, and float ``trues`` take the predictions' dtype.

Numerics: the ``from_logits=True`` cross-entropies go through fused, stable primitives
(:mod:`tapegrad.ops.loss_ops`: log-sum-exp with the row maximum subtracted, and
``max(x, 0) - x t + log1p(exp(-|x|))``), finite with finite gradients for logits of
1e4 and beyond; probability inputs (``from_logits=False``) are clipped to
``[EPSILON, 1 - EPSILON]`` with Keras' ``EPSILON = 1e-7`` (categorical ones are first
normalised to sum to 1, as Keras does).

Labels are checked, with errors that name the loss, the argument and the shapes or
dtypes: sparse labels must be integers (float arrays holding whole numbers are accepted,
as in Keras), in ``[0, classes)``, of shape ``predicts.shape[:-1]`` or that plus a
trailing 1; other trues must have the predictions' shape (Keras' rule for a trailing
axis of length 1 applies: ``(batch,)`` trues fit ``(batch, 1)`` predictions). Binary and
categorical trues must lie in [0, 1]; ``from_logits=False`` with predictions that are not
probabilities warns (see :mod:`tapegrad.nn.loss_checks`).

``get(identifier)`` turns a name (``"mse"``, ``"sparse_categorical_crossentropy"``, a
class name, ...), a config dict, a Loss class or instance, or a callable into a loss.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np

from .. import _dtypes
from ..autodiff import state as _state
from ..autodiff.broadcast import astype_p
from ..autodiff.variable import Variable, wrap
from ..errors import OpTypeError, OpValueError
from ..ops.elementwise import (
    abs_p,
    clip_p,
    div_p,
    less_equal_p,
    log_p,
    maximum_p,
    mul_p,
    neg_p,
    not_equal_p,
    square_p,
    sub_p,
    where_p,
)
from ..ops.loss_ops import sce_p, sigmoid_ce_p, softmax_ce_p, take_class_p
from ..ops.reduction import reduce_mean_p, reduce_sum_p
from ..ops.shape import reshape_p
from . import hyperparams, loss_masks, metrics_base
from .loss_checks import (
    check_class_labels,
    check_probability_trues,
    warn_unless_probabilities,
)

__all__ = [
    "EPSILON", "Loss", "LossFunctionWrapper", "MeanSquaredError", "MeanAbsoluteError", "Huber",
    "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy",
    "mean_squared_error", "mean_absolute_error", "huber", "sparse_categorical_crossentropy",
    "categorical_crossentropy", "binary_crossentropy", "mse", "mae", "get", "serialize", "deserialize",
]

EPSILON = 1e-7  # Keras' backend epsilon: probabilities are clipped to [EPSILON, 1 - EPSILON]

_REDUCTIONS = {"mean": "mean", "sum_over_batch_size": "mean", "auto": "mean", "sum": "sum", "none": "none",
               None: "none"}


# ---------------------------------------------------------------------------------------
# Argument handling.
# ---------------------------------------------------------------------------------------
def _shape(x: Any) -> tuple[int, ...]:
    return x._value.shape if x.__class__ is Variable else np.shape(x)


def _predicts(op: str, predicts: Any, dtype: np.dtype | None = None) -> Any:
    """The predictions as a float Variable or ndarray (int and bool become float32)."""
    if predicts.__class__ is Variable:
        kind = predicts._value.dtype.kind
        target = dtype if dtype is not None else (None if kind == "f" else _dtypes.DEFAULT_FLOAT)
        if target is None or predicts._value.dtype == target:
            return predicts
        if kind not in "biuf":
            raise OpTypeError(f"{op}: predicts has dtype {predicts._value.dtype}; expected a float dtype")
        return astype_p.apply(predicts, dtype=target)
    arr = predicts if predicts.__class__ is np.ndarray else _dtypes.to_array(
        predicts, None, _dtypes.DEFAULT_FLOAT, op, "predicts")
    if arr.dtype.kind not in "biuf":
        raise OpTypeError(f"{op}: predicts has dtype {arr.dtype}; expected a float dtype")
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    return arr if arr.dtype.kind == "f" else arr.astype(_dtypes.DEFAULT_FLOAT)


def _value(x: Any) -> np.ndarray:
    """The array of a Variable (also of one being traced: its value is there) or an array."""
    return x._value if x.__class__ is Variable else x


def _dtype(x: Any) -> np.dtype:
    return x._value.dtype if x.__class__ is Variable else x.dtype


def _constant(x: Any) -> Any:
    """trues as a constant: outside a compiled Function a Variable is unwrapped (it is never
    differentiated); while tracing it stays a Variable, so the graph reads it at every call."""
    if x.__class__ is Variable and not _state.tracing():
        return x._value
    return x


def _float_trues(op: str, trues: Any, dtype: np.dtype, arg: str = "trues") -> Any:
    """trues (or another constant argument) as a constant of the predictions' float dtype."""
    trues = _constant(trues)
    if trues.__class__ is Variable:
        if trues._value.dtype.kind not in "biuf":
            raise OpTypeError(f"{op}: {arg} has dtype {trues._value.dtype}; expected numbers")
        return trues if trues._value.dtype == dtype else astype_p.apply(trues, dtype=dtype)
    arr = _dtypes.to_array(trues, None, dtype, op, arg)
    return arr if arr.dtype == dtype else arr.astype(dtype)


def _reshape(x: Any, shape: tuple[int, ...]) -> Any:
    return reshape_p.apply(x, shape=shape) if x.__class__ is Variable else np.reshape(x, shape)


def _match_shapes(op: str, trues: Any, predicts: Any) -> tuple[Any, Any]:
    """Keras' squeeze-or-expand rule for a trailing axis of length 1, then equal shapes."""
    ts, ps = _shape(trues), _shape(predicts)
    if ts == ps:
        return trues, predicts
    if len(ts) == len(ps) + 1 and ts[-1] == 1 and ts[:-1] == ps:
        if len(ps) == 1:
            return trues, _reshape(predicts, ts)
        return _reshape(trues, ps), predicts
    if len(ps) == len(ts) + 1 and ps[-1] == 1 and ps[:-1] == ts:
        if len(ts) == 1:
            return _reshape(trues, ps), predicts
        return trues, _reshape(predicts, ts)
    raise OpValueError(f"{op}: trues of shape {ts} do not match predicts of shape {ps} "
                       f"(they must have the same shape)")


def _axis(op: str, axis: int, shape: tuple[int, ...]) -> int:
    if not -len(shape) <= axis < len(shape):
        raise OpValueError(f"{op}: axis {axis} is out of range for predicts of shape {shape}")
    return axis % len(shape)


def _mean_axis(x: Variable, axis: int = -1) -> Variable:
    """The mean over ``axis`` (Keras' per-sample reduction); a 0-d value is returned as is."""
    ndim = x._value.ndim
    if ndim == 0:
        return x
    return reduce_mean_p.apply(x, axis=(axis % ndim,), keepdims=False)


def _sparse_labels(op: str, trues: Any, predicts: Any, ignore_class: int | None = None) -> Any:
    """Check integer class labels against predictions of shape (..., classes) and return them
    with the shape ``predicts.shape[:-1]`` and an integer dtype."""
    trues = _constant(trues)
    ps = _shape(predicts)
    if not ps:
        raise OpValueError(f"{op}: predicts must have a class axis (shape (batch, classes)), got shape ()")
    if trues.__class__ is Variable:
        value = trues._value
    else:
        if trues.__class__ is not np.ndarray:
            if isinstance(trues, (list, tuple, int, float, np.generic)):
                trues = np.asarray(trues)
            else:
                raise OpTypeError(f"{op}: trues must be an array of integer class labels, got {type(trues).__name__}")
        value = trues
    dtype = value.dtype
    if dtype.kind not in "iuf":
        raise OpTypeError(f"{op}: trues must be integer class labels, got dtype {dtype} "
                          f"(shape {value.shape}; predicts of shape {ps})")
    expected = ps[:-1]
    if value.shape != expected:
        if value.shape == expected + (1,):
            trues = _reshape(trues, expected)
            value = value.reshape(expected)
        else:
            hint = " (one-hot trues need CategoricalCrossentropy)" if value.shape == ps else ""
            raise OpValueError(f"{op}: trues of shape {value.shape} do not match predicts of shape {ps}: "
                               f"integer labels must have shape {expected} or {expected + (1,)}{hint}")
    check_class_labels(op, value, ps[-1], ignore_class, ps)
    if dtype.kind == "f":
        trues = astype_p.apply(trues, dtype=np.int64) if trues.__class__ is Variable else value.astype(np.int64)
    return trues


def _reduce(values: Any, reduction: str) -> Variable:
    if values.__class__ is not Variable:
        values = wrap(np.asarray(values))
    if reduction == "none" or values._value.ndim == 0:
        return values
    prim = reduce_mean_p if reduction == "mean" else reduce_sum_p
    return prim.apply(values, axis=None, keepdims=False)


def _weighted(op: str, values: Variable, sample_weight: Any) -> Variable:
    """values * sample_weight, the weights brought to the values' rank as Keras does."""
    w = _float_trues(op, sample_weight, values._value.dtype, "sample_weight")
    ws, vs = _shape(w), values._value.shape
    if len(ws) == len(vs) + 1 and ws and ws[-1] == 1:
        w = _reshape(w, ws[:-1])
        ws = ws[:-1]
    if len(ws) < len(vs):
        w = _reshape(w, ws + (1,) * (len(vs) - len(ws)))
        ws = _shape(w)
    try:
        fits = np.broadcast_shapes(ws, vs) == vs
    except ValueError:
        fits = False
    if not fits:
        raise OpValueError(f"{op}: sample_weight of shape {_shape(sample_weight)} does not fit the per-sample "
                           f"losses of shape {vs}")
    return mul_p.apply2(values, w)


# ---------------------------------------------------------------------------------------
# Per-sample loss functions (Keras' functional forms): trues, predicts -> Variable.
# ---------------------------------------------------------------------------------------
def _regression(op: str, trues: Any, predicts: Any, dtype: np.dtype | None) -> tuple[Any, Any]:
    predicts = _predicts(op, predicts, dtype)
    trues = _float_trues(op, trues, _dtype(predicts))
    return _match_shapes(op, trues, predicts)


def _mse(op: str, trues: Any, predicts: Any, dtype: np.dtype | None = None) -> Variable:
    trues, predicts = _regression(op, trues, predicts, dtype)
    return _mean_axis(square_p.apply1(sub_p.apply2(predicts, trues)))


def _mae(op: str, trues: Any, predicts: Any, dtype: np.dtype | None = None) -> Variable:
    trues, predicts = _regression(op, trues, predicts, dtype)
    return _mean_axis(abs_p.apply1(sub_p.apply2(predicts, trues)))


def _huber(op: str, trues: Any, predicts: Any, delta: float, dtype: np.dtype | None = None) -> Variable:
    trues, predicts = _regression(op, trues, predicts, dtype)
    error = sub_p.apply2(predicts, trues)
    abs_error = abs_p.apply1(error)
    quadratic = mul_p.apply2(square_p.apply1(error), 0.5)
    linear = sub_p.apply2(mul_p.apply2(abs_error, delta), 0.5 * delta * delta)
    return _mean_axis(where_p.apply(less_equal_p.apply2(abs_error, delta), quadratic, linear))


def _sparse_cce(op: str, trues: Any, predicts: Any, from_logits: bool, ignore_class: int | None,
                reduction: str, dtype: np.dtype | None = None) -> Variable:
    """The sparse categorical cross-entropy, reduced with ``reduction``."""
    predicts = _predicts(op, predicts, dtype)
    labels = _sparse_labels(op, trues, predicts, ignore_class)
    valid = None
    if ignore_class is not None:
        valid = not_equal_p(labels, ignore_class)
        labels = where_p(valid, labels, 0)
    if from_logits:
        if valid is None:
            return sce_p.apply(predicts, labels, reduction=reduction)
        values = sce_p.apply(predicts, labels, reduction="none")
    else:
        axis = len(_shape(predicts)) - 1
        warn_unless_probabilities(op, _value(predicts), axis)
        probs = div_p.apply2(predicts, reduce_sum_p.apply(predicts, axis=(axis,), keepdims=True))
        probs = clip_p.apply(probs, EPSILON, 1.0 - EPSILON)
        values = neg_p.apply1(take_class_p.apply2(log_p.apply1(probs), labels))
    if valid is None:
        return _reduce(values, reduction)
    # ignored labels: no loss, and "mean" averages over the others only (as Keras' mask does)
    values = where_p.apply(valid, values, 0.0)
    if reduction != "mean" or values._value.ndim == 0:
        return _reduce(values, reduction)
    count = reduce_sum_p(astype_p(valid, dtype=values._value.dtype), axis=None, keepdims=False)
    return div_p.apply2(reduce_sum_p.apply(values, axis=None, keepdims=False), maximum_p(count, 1))


def _categorical_trues(op: str, trues: Any, predicts: Any) -> Any:
    ps = _shape(predicts)
    if not ps:
        raise OpValueError(f"{op}: predicts must have a class axis (shape (batch, classes)), got shape ()")
    trues = _float_trues(op, trues, _dtype(predicts))
    ts = _shape(trues)
    if ts != ps:
        hint = ""
        if ts in (ps[:-1], ps[:-1] + (1,)):
            hint = " (integer class labels need SparseCategoricalCrossentropy)"
        raise OpValueError(f"{op}: trues of shape {ts} do not match predicts of shape {ps}: categorical trues "
                           f"are one-hot or probability vectors of the predictions' shape{hint}")
    return trues


def _cce(op: str, trues: Any, predicts: Any, from_logits: bool, label_smoothing: float, axis: int,
         dtype: np.dtype | None = None) -> Variable:
    predicts = _predicts(op, predicts, dtype)
    trues = _categorical_trues(op, trues, predicts)
    shape = _shape(predicts)
    axis = _axis(op, axis, shape)
    check_probability_trues(op, _value(trues))
    if label_smoothing:
        trues = trues * (1.0 - label_smoothing) + label_smoothing / shape[axis]
    if from_logits:
        return softmax_ce_p.apply(predicts, trues, axis=axis)
    warn_unless_probabilities(op, _value(predicts), axis)
    probs = div_p.apply2(predicts, reduce_sum_p.apply(predicts, axis=(axis,), keepdims=True))
    probs = clip_p.apply(probs, EPSILON, 1.0 - EPSILON)
    return neg_p.apply1(reduce_sum_p.apply(mul_p.apply2(trues, log_p.apply1(probs)), axis=(axis,), keepdims=False))


def _bce(op: str, trues: Any, predicts: Any, from_logits: bool, label_smoothing: float, axis: int,
         dtype: np.dtype | None = None) -> Variable:
    trues, predicts = _regression(op, trues, predicts, dtype)
    check_probability_trues(op, _value(trues))
    if label_smoothing:
        trues = trues * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        values = sigmoid_ce_p.apply2(predicts, trues)
    else:
        warn_unless_probabilities(op, _value(predicts), None)
        p = clip_p.apply(predicts, EPSILON, 1.0 - EPSILON)
        positive = mul_p.apply2(trues, log_p.apply1(p))
        negative = mul_p.apply2(1.0 - trues, log_p.apply1(sub_p.apply2(1.0, p)))
        values = neg_p.apply1(positive + negative)
    shape = _shape(predicts)
    return _mean_axis(values, _axis(op, axis, shape)) if shape else values


def mean_squared_error(trues: Any, predicts: Any) -> Variable:
    """Per-sample mean of ``(predicts - trues) ** 2`` over the last axis."""
    return _mse("mean_squared_error", trues, predicts)


def mean_absolute_error(trues: Any, predicts: Any) -> Variable:
    """Per-sample mean of ``|predicts - trues|`` over the last axis."""
    return _mae("mean_absolute_error", trues, predicts)


def huber(trues: Any, predicts: Any, delta: float = 1.0) -> Variable:
    """Per-sample mean over the last axis of ``0.5 e**2`` where ``|e| <= delta``, else
    ``delta * (|e| - 0.5 delta)``, with ``e = predicts - trues``."""
    return _huber("huber", trues, predicts, float(delta))


def sparse_categorical_crossentropy(trues: Any, predicts: Any, from_logits: bool = False,
                                    ignore_class: int | None = None) -> Variable:
    """Per-sample cross-entropy of integer labels against class scores on the last axis."""
    return _sparse_cce("sparse_categorical_crossentropy", trues, predicts, bool(from_logits), ignore_class, "none")


def categorical_crossentropy(trues: Any, predicts: Any, from_logits: bool = False, label_smoothing: float = 0.0,
                             axis: int = -1) -> Variable:
    """Per-sample ``-sum(trues * log(probabilities))`` over the class axis."""
    return _cce("categorical_crossentropy", trues, predicts, bool(from_logits), float(label_smoothing), axis)


def binary_crossentropy(trues: Any, predicts: Any, from_logits: bool = False, label_smoothing: float = 0.0,
                        axis: int = -1) -> Variable:
    """Per-sample mean over ``axis`` of the elementwise binary cross-entropy."""
    return _bce("binary_crossentropy", trues, predicts, bool(from_logits), float(label_smoothing), axis)


mse = mean_squared_error
mae = mean_absolute_error


# ---------------------------------------------------------------------------------------
# Loss objects.
# ---------------------------------------------------------------------------------------
def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class Loss:
    """Base class of losses.

    Subclasses implement ``call(trues, predicts) -> Variable`` (the per-sample values);
    ``__call__`` applies ``sample_weight`` and the reduction. ``dtype``, when given, is the
    float dtype the predictions are cast to (default: keep theirs).
    """

    def __init__(self, reduction: str | None = "mean", name: str | None = None, dtype: Any = None) -> None:
        label = type(self).__name__
        if not (reduction is None or isinstance(reduction, str)) or reduction not in _REDUCTIONS:
            raise OpValueError(f"{label}: reduction must be one of 'mean' (or 'sum_over_batch_size'), 'sum' or "
                               f"'none', got {reduction!r}")
        self.reduction: str = _REDUCTIONS[reduction]
        if name is not None and not isinstance(name, str):
            raise OpTypeError(f"{label}: name must be a string, got {type(name).__name__} {hyperparams.show(name)}")
        self.name: str = name if name is not None else _snake_case(label)
        self.dtype: np.dtype | None = None
        if dtype is not None:
            dt = _dtypes.as_dtype(dtype, label)
            if dt.kind != "f":
                raise OpTypeError(f"{label}: dtype must be a float dtype, got {dt}")
            self.dtype = dt

    @property
    def _op(self) -> str:
        return type(self).__name__

    def call(self, trues: Any, predicts: Any) -> Variable:
        """The per-sample loss values (no reduction)."""
        raise NotImplementedError(f"{type(self).__name__} must implement call(trues, predicts)")

    def _reduced(self, trues: Any, predicts: Any) -> Variable:
        return _reduce(self.call(trues, predicts), self.reduction)

    def __call__(self, trues: Any, predicts: Any, sample_weight: Any = None) -> Variable:
        """The loss of ``predicts`` against ``trues``: a scalar for "mean" and "sum", the
        per-sample values for "none"."""
        if predicts.__class__ is Variable and predicts.mask is not None:  # masked positions are skipped
            values = self.call(trues, predicts)
            if sample_weight is None and values.__class__ is Variable and values.ndim == 0:
                return values  # a function that reduced the batch itself (Rindow's custom losses) masks it itself
            if sample_weight is not None:
                values = _weighted(self._op, values, sample_weight)
            return loss_masks.masked_reduction(self._op, values, predicts.mask, self.reduction)
        if sample_weight is None:
            return self._reduced(trues, predicts)
        values = self.call(trues, predicts)
        if values.__class__ is not Variable:
            values = wrap(np.asarray(values))
        return _reduce(_weighted(self._op, values, sample_weight), self.reduction)

    def forward(self, trues: Any, predicts: Any, sample_weight: Any = None) -> Variable:
        """The same as calling the loss (Rindow's name)."""
        return self(trues, predicts, sample_weight)

    def _check_trues(self, trues: np.ndarray, classes: int | None) -> None:
        """Refuse targets this loss cannot take (all of them at once: ``fit`` and ``evaluate``
        call it before the first step, since a compiled step runs no Python). ``classes``
        is the length of the model's last output axis when known."""

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON values)."""
        config: dict[str, Any] = {"name": self.name, "reduction": self.reduction}
        if self.dtype is not None:
            config["dtype"] = self.dtype.name
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class LossFunctionWrapper(Loss):
    """A loss from a function ``fn(trues, predicts, **kwargs)`` that returns per-sample values
    (a Variable, an array or a number); the wrapper adds the reduction and sample weights."""

    def __init__(self, fn: Callable[..., Any], reduction: str | None = "mean", name: str | None = None,
                 dtype: Any = None, **kwargs: Any) -> None:
        if not callable(fn) or isinstance(fn, type):
            raise OpTypeError(f"LossFunctionWrapper: fn must be a function of (trues, predicts), got "
                              f"{type(fn).__name__} {hyperparams.show(fn)}")
        super().__init__(reduction, name if name is not None else getattr(fn, "__name__", "loss"), dtype)
        _check_call(fn, kwargs)
        self.fn = fn
        self.fn_kwargs = kwargs

    def _check_trues(self, trues: np.ndarray, classes: int | None) -> None:
        if self.fn is binary_crossentropy or self.fn is categorical_crossentropy:
            check_probability_trues(self.name, trues)
        elif self.fn is sparse_categorical_crossentropy:
            check_class_labels(self.name, trues, classes, self.fn_kwargs.get("ignore_class"))

    def call(self, trues: Any, predicts: Any) -> Variable:
        if self.dtype is not None:
            predicts = _predicts(self.name, predicts, self.dtype)
        values = self.fn(trues, predicts, **self.fn_kwargs)
        return values if values.__class__ is Variable else wrap(np.asarray(values))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fn": getattr(self.fn, "__name__", repr(self.fn)), **self.fn_kwargs}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Loss:
        config = dict(config)
        fn_name = config.pop("fn", None)
        if not isinstance(fn_name, str):
            raise OpValueError(f"LossFunctionWrapper: the config's 'fn' must be a function name, got "
                               f"{hyperparams.show(fn_name)}")
        fn = (custom_objects or {}).get(fn_name) or _FUNCTIONS.get(fn_name)
        if fn is None:
            raise OpValueError(f"LossFunctionWrapper: unknown loss function {fn_name!r}; pass it in custom_objects")
        return cls(fn, **config)


def _check_call(fn: Callable[..., Any], kwargs: dict[str, Any], owner: str = "LossFunctionWrapper") -> None:
    """Raise now, not at the first training step, if ``fn(trues, predicts, **kwargs)``
    cannot be called."""
    import inspect

    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to read: nothing to check
        return
    try:
        signature.bind(None, None, **kwargs)
    except TypeError as exc:
        raise OpTypeError(f"{owner}: {getattr(fn, '__name__', 'fn')}{signature} cannot be called as "
                          f"fn(trues, predicts{''.join(f', {k}=...' for k in kwargs)}): {exc}") from None


class MeanSquaredError(Loss):
    """Mean of the squared errors over the last axis, then the reduction (Keras' default name
    "mean_squared_error")."""

    def __init__(self, reduction: str | None = "mean", name: str | None = "mean_squared_error",
                 dtype: Any = None) -> None:
        super().__init__(reduction, name, dtype)

    def call(self, trues: Any, predicts: Any) -> Variable:
        return _mse(self._op, trues, predicts, self.dtype)


class MeanAbsoluteError(Loss):
    """Mean of the absolute errors over the last axis, then the reduction."""

    def __init__(self, reduction: str | None = "mean", name: str | None = "mean_absolute_error",
                 dtype: Any = None) -> None:
        super().__init__(reduction, name, dtype)

    def call(self, trues: Any, predicts: Any) -> Variable:
        return _mae(self._op, trues, predicts, self.dtype)


class Huber(Loss):
    """Huber loss: quadratic for errors up to ``delta``, linear beyond; mean over the last axis."""

    def __init__(self, delta: float = 1.0, reduction: str | None = "mean", name: str | None = "huber_loss",
                 dtype: Any = None) -> None:
        super().__init__(reduction, name, dtype)
        self.delta = hyperparams.real("Huber", "delta", delta, low=0.0, low_open=True)

    def call(self, trues: Any, predicts: Any) -> Variable:
        return _huber(self._op, trues, predicts, self.delta, self.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "delta": self.delta}


class _Crossentropy(Loss):
    """Shared by the cross-entropies: ``from_logits`` and Rindow's ``accuracy()``."""

    from_logits: bool

    def accuracy(self, trues: Any, predicts: Any) -> float:
        """The accuracy of ``predicts`` against ``trues`` that fits this loss (Rindow's loss
        API; the metric ``metrics.get("accuracy", loss=self)`` picks)."""
        metric = self._accuracy_metric()
        metric.update_state(trues, predicts)
        return metric.result()

    def _accuracy_metric(self) -> metrics_base.Metric:
        raise NotImplementedError


class SparseCategoricalCrossentropy(_Crossentropy):
    """Cross-entropy of integer class labels (shape ``(batch,)`` or ``(batch, 1)``) against
    class scores ``(batch, classes)``: logits with ``from_logits=True``, else probabilities.
    Labels equal to ``ignore_class`` add no loss and are left out of the mean."""

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None, reduction: str | None = "mean",
                 name: str | None = "sparse_categorical_crossentropy", dtype: Any = None) -> None:
        super().__init__(reduction, name, dtype)
        label = type(self).__name__
        self.from_logits = hyperparams.flag(label, "from_logits", from_logits)
        self.ignore_class = None if ignore_class is None else hyperparams.integer(
            label, "ignore_class", ignore_class, low=-(2**63), high=2**63 - 1)

    def _accuracy_metric(self) -> metrics_base.Metric:
        return metrics_base.SparseCategoricalAccuracy("accuracy")

    def _check_trues(self, trues: np.ndarray, classes: int | None) -> None:
        check_class_labels(self._op, trues, classes, self.ignore_class)

    def call(self, trues: Any, predicts: Any) -> Variable:
        return _sparse_cce(self._op, trues, predicts, self.from_logits, self.ignore_class, "none", self.dtype)

    def _reduced(self, trues: Any, predicts: Any) -> Variable:
        # The reduction is fused into the cross-entropy primitive (one node forward, one backward).
        return _sparse_cce(self._op, trues, predicts, self.from_logits, self.ignore_class, self.reduction,
                           self.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits, "ignore_class": self.ignore_class}


class _SmoothedCrossentropy(_Crossentropy):
    """The dense cross-entropies: ``from_logits``, ``label_smoothing`` and the class ``axis``."""

    _compute: Any  # _cce or _bce

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "mean", name: str | None = None, dtype: Any = None) -> None:
        super().__init__(reduction, name, dtype)
        label = type(self).__name__
        self.from_logits = hyperparams.flag(label, "from_logits", from_logits)
        self.label_smoothing = hyperparams.real(label, "label_smoothing", label_smoothing, low=0.0, high=1.0)
        self.axis = hyperparams.axis(label, "axis", axis)

    def call(self, trues: Any, predicts: Any) -> Variable:
        return self._compute(self._op, trues, predicts, self.from_logits, self.label_smoothing, self.axis,
                             self.dtype)

    def _check_trues(self, trues: np.ndarray, classes: int | None) -> None:
        check_probability_trues(self._op, trues)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": self.axis}


class CategoricalCrossentropy(_SmoothedCrossentropy):
    """Cross-entropy of one-hot (or probability) trues against class scores of the same shape;
    ``label_smoothing`` mixes the trues with the uniform distribution."""

    _compute = staticmethod(_cce)

    def _accuracy_metric(self) -> metrics_base.Metric:
        return metrics_base.CategoricalAccuracy("accuracy")

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "mean", name: str | None = "categorical_crossentropy",
                 dtype: Any = None) -> None:
        super().__init__(from_logits, label_smoothing, axis, reduction, name, dtype)


class BinaryCrossentropy(_SmoothedCrossentropy):
    """Binary cross-entropy of trues in [0, 1] against probabilities (or logits with
    ``from_logits=True``), averaged over ``axis`` (the last) per sample;
    ``label_smoothing`` moves the trues towards 0.5."""

    _compute = staticmethod(_bce)

    def _accuracy_metric(self) -> metrics_base.Metric:
        return metrics_base.BinaryAccuracy("accuracy", threshold=0.0 if self.from_logits else 0.5)

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "mean", name: str | None = "binary_crossentropy",
                 dtype: Any = None) -> None:
        super().__init__(from_logits, label_smoothing, axis, reduction, name, dtype)


# ---------------------------------------------------------------------------------------
# Lookup.
# ---------------------------------------------------------------------------------------
_CLASSES: dict[str, type[Loss]] = {
    cls.__name__: cls
    for cls in (MeanSquaredError, MeanAbsoluteError, Huber, SparseCategoricalCrossentropy,
                CategoricalCrossentropy, BinaryCrossentropy, LossFunctionWrapper)
}
_FUNCTIONS: dict[str, Callable[..., Variable]] = {
    fn.__name__: fn
    for fn in (mean_squared_error, mean_absolute_error, huber, sparse_categorical_crossentropy,
               categorical_crossentropy, binary_crossentropy)
}
# names (lower case, without underscores) -> class
_NAMES: dict[str, type[Loss]] = {
    "mse": MeanSquaredError, "meansquarederror": MeanSquaredError,
    "mae": MeanAbsoluteError, "meanabsoluteerror": MeanAbsoluteError,
    "huber": Huber, "huberloss": Huber,
    "sparsecategoricalcrossentropy": SparseCategoricalCrossentropy,
    "categoricalcrossentropy": CategoricalCrossentropy,
    "binarycrossentropy": BinaryCrossentropy,
}
_KNOWN = ("mse", "mean_squared_error", "mae", "mean_absolute_error", "huber", "sparse_categorical_crossentropy",
          "categorical_crossentropy", "binary_crossentropy")


def serialize(loss: Loss) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for :func:`deserialize` (JSON values only)."""
    if not isinstance(loss, Loss):
        raise OpTypeError(f"losses.serialize: expected a Loss, got {type(loss).__name__}")
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Loss:
    """The loss described by :func:`serialize`'s output. User classes are found in
    ``custom_objects`` (a dict from names to classes or functions)."""
    try:
        class_name, cfg = config["class_name"], dict(config.get("config") or {})
    except (KeyError, TypeError):
        raise OpValueError(f"losses.deserialize: expected {{'class_name': ..., 'config': ...}}, "
                           f"got {config!r}") from None
    custom = custom_objects or {}
    cls = custom.get(class_name) or _CLASSES.get(class_name)
    if cls is None:
        raise OpValueError(f"losses.deserialize: unknown loss class {class_name!r}; pass it in custom_objects")
    if cls is LossFunctionWrapper:
        return LossFunctionWrapper.from_config(cfg, custom)
    if isinstance(cls, type) and issubclass(cls, Loss):
        return cls.from_config(cfg)
    if callable(cls):  # a custom function registered under that name
        return LossFunctionWrapper(cls, **{k: v for k, v in cfg.items() if k in ("reduction", "name")})
    raise OpTypeError(f"losses.deserialize: {class_name!r} is not a Loss class")


def get(identifier: Any) -> Loss | None:
    """A loss from a name (``"mse"``, ``"mean_squared_error"``, ``"MeanSquaredError"``,
    ``"sparse_categorical_crossentropy"``, ``"huber"``, ...; a new instance with the
    defaults), a config dict, a Loss class (instantiated) or instance (returned as is), or a
    callable ``fn(trues, predicts)`` returning per-sample values (wrapped in a
    :class:`LossFunctionWrapper` that averages them). None gives None."""
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier.lower().replace("_", ""))
        if cls is None:
            raise OpValueError(f"losses.get: unknown loss {identifier!r}; known names: {', '.join(_KNOWN)} "
                               f"(or a class name)")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise OpTypeError(f"losses.get: cannot make a loss from {type(identifier).__name__} {identifier!r}")


# Rindow's spellings of the cross-entropy classes (``$nn->losses()->SparseCategoricalCrossEntropy()``).
SparseCategoricalCrossEntropy = SparseCategoricalCrossentropy
CategoricalCrossEntropy = CategoricalCrossentropy
BinaryCrossEntropy = BinaryCrossentropy
__all__ += ["SparseCategoricalCrossEntropy", "CategoricalCrossEntropy", "BinaryCrossEntropy"]
