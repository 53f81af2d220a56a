"""Loading whole models: :func:`load_model` rebuilds a model from the file that
``model.save(path)`` wrote (the format and the safety rules are in :mod:`.saving`), assigns
its weights, restores its compile configuration and optimizer state, and checks what the
first training step would otherwise find out.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import numpy as np

from ...autodiff import state as _state
from ...io.container import DTYPES, ModelFileError
from . import custom_objects as roles
from .file_limits import check_spec, check_structure, guarded_rebuild
from .model import Model
from .saving import _REBUILD_ERRORS, _REGISTRY, _array_of, _assign, _cut, _entry, _read, _weight_arrays
from .sequential import Sequential

# tapegrad's own model classes, found by name after custom_objects and the registry
_MODELS: dict[str, type] = {"Sequential": Sequential}


def _model_class(name: str, custom_objects: dict[str, Any] | None) -> type:
    cls = roles.require_class(custom_objects, name, "model", "model.class_name")
    cls = cls or _REGISTRY.get(name) or _MODELS.get(name)
    if cls is None:
        raise ValueError(f"unknown model class {name!r}: register it with @tapegrad.register_model "
                         f"or pass custom_objects={{{name!r}: {name}}}")
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise ValueError(f"the registered class {name!r} is not a Model class")
    return cls


def _deserialize(ident: Any, module: str, custom_objects: dict[str, Any], what: str) -> Any:
    """The inverse of :func:`_serialize`: names stay names (the module's ``get`` resolves
    them in ``compile``); dicts go through the module's ``deserialize``, which looks
    classes up in its own table and the ``custom_objects`` given (already cut down to
    the entries that fit the role)."""
    import importlib

    if ident is None or isinstance(ident, str):
        return ident
    if not isinstance(ident, dict):
        raise ValueError(f"invalid {what} entry {_cut(ident, 80)}")
    try:
        return importlib.import_module(module).deserialize(ident, custom_objects)
    except TypeError as exc:
        raise ValueError(f"cannot rebuild the {what} from {_cut(ident)}: {exc}") from None


def load_model(
    path: str | os.PathLike,
    custom_objects: dict[str, Any] | None = None,
    compile: bool = True,
) -> Model:
    """Load a model written by ``model.save(path)``: its architecture, weights and, with
    ``compile`` (default), its optimizer (with its state), loss and metrics, so that
    ``fit`` continues exactly where it stopped.

    ``Sequential`` models load as they are; other model classes must be registered with
    :func:`register_model` or given in ``custom_objects`` (name -> class or function),
    which also supplies custom layers, losses, metrics, optimizers and learning-rate
    schedules. Each entry is used only in the roles its kind allows, whatever the file
    says: a ``Model`` subclass as the model or a layer, a ``Layer`` subclass as a layer,
    an ``Optimizer`` subclass as the optimizer, a ``LearningRateSchedule`` subclass as a
    schedule, a ``Loss`` subclass (or a function of ``(trues, predicts)``) as the loss,
    a ``Metric`` subclass (or such a function) as a metric, a function of the step as a
    learning rate (see :mod:`tapegrad.nn.models.custom_objects`).

    A file is read as untrusted data: nothing named in it is imported or run, every
    hyperparameter goes through its constructor's checks, and the file's limits are
    enforced: models nested at most 32 deep, at most 10,000 layers, a header of at most
    16 MiB nested at most 256 levels, no more bytes of weights created than the file
    holds. What the first training step would need is checked now: the optimizer state
    must fit the model's trainable variables, the learning rate at the restored step
    must be a finite number >= 0, the compile section must name a loss (a model saved
    compiled without a loss loads with ``compile=False``). Any problem raises
    :class:`~tapegrad.io.ModelFileError` (a ``ValueError``) naming the file and the field.
    """
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError("load_model: custom_objects must be a dict of name -> class or function")
    shown, meta, arrays = _read(path, ("model",))
    saved = _weight_arrays(shown, meta, arrays)
    model_meta = meta.get("model")
    if not isinstance(model_meta, dict):
        raise ModelFileError(f"{shown}: corrupt header: 'model' must be an object")
    check_structure(model_meta, f"{shown}: model")
    try:
        with guarded_rebuild(sum(a.nbytes for _, a in saved), shown):
            model = _rebuild(model_meta, custom_objects, shown)
    except ModelFileError:
        raise
    except _REBUILD_ERRORS as exc:
        raise ModelFileError(f"{shown}: cannot rebuild the model: {exc}") from exc
    _assign(model, saved, shown)
    compile_meta = meta.get("compile")
    if compile and compile_meta is not None:
        _restore_compile(model, compile_meta, meta.get("optimizer_state"), arrays, custom_objects, shown)
    return model


def _rebuild(model_meta: dict[str, Any], custom_objects: dict[str, Any] | None, shown: str) -> Model:
    name, config = _entry(model_meta, "model")
    dtype = model_meta.get("dtype")
    if dtype is not None and dtype not in DTYPES:
        raise ModelFileError(f"{shown}: corrupt header: invalid model dtype {_cut(dtype, 40)}")
    cls = _model_class(name, custom_objects)
    spec = check_spec(model_meta.get("input_spec"), shown)
    trues_spec = check_spec(model_meta.get("trues_spec"), shown)
    try:
        rebuild = getattr(cls, "_from_saved_config", None)
        model = rebuild(config, custom_objects, dtype) if rebuild is not None else cls.from_config(config)
    except TypeError as exc:
        raise ValueError(f"cannot rebuild {name} from its config ({exc}); if its constructor takes "
                         f"arguments, return them from get_config()") from None
    if not isinstance(model, Model):
        raise ValueError(f"{name}.from_config did not return a Model")
    saved_name = model_meta.get("name")
    if isinstance(saved_name, str):
        model.name = saved_name
    if spec is not None and not _fully_built(model):
        # built now even without weights: a config that cannot run fails here, not at the first call
        model._build_from_spec(spec, trues_spec)
    elif spec is not None and (model._input_spec is None or _narrows(spec, model._input_spec)):
        model._input_spec = spec  # the inputs it was saved with (its layers also take others)
    if trues_spec is not None and model._trues_spec is None:
        model._trues_spec = trues_spec
    return model


def _narrows(spec: Any, declared: Any) -> bool:
    """Whether the input spec of a file fits the spec a model declares, with sizes where
    the model has None."""
    if isinstance(spec, list) or isinstance(declared, list):
        return (isinstance(spec, list) and isinstance(declared, list) and len(spec) == len(declared)
                and all(_narrows(s, d) for s, d in zip(spec, declared)))
    return (spec["dtype"] == declared["dtype"] and len(spec["shape"]) == len(declared["shape"])
            and all(d is None or d == s for s, d in zip(spec["shape"], declared["shape"])))


def _fully_built(model: Model) -> bool:
    return model.built and all(layer.built for layer in model.layers)


def _restore_compile(model: Model, compile_meta: Any, state_entries: Any, arrays: dict[str, np.ndarray],
                     custom_objects: dict[str, Any] | None, shown: str) -> None:
    if not isinstance(compile_meta, dict):
        raise ModelFileError(f"{shown}: corrupt header: 'compile' must be an object")
    if compile_meta.get("loss") is None:
        raise ModelFileError(f"{shown}: compile.loss is {'null' if 'loss' in compile_meta else 'missing'}: "
                             "the model cannot be trained as saved; load it with compile=False and compile it")
    try:
        roles.check_compile_references(compile_meta, custom_objects)
        optimizer = _deserialize(compile_meta.get("optimizer"), "tapegrad.nn.optimizers",
                                 roles.for_role(custom_objects, "optimizer", "schedule", "schedule function"),
                                 "optimizer")
        loss = _deserialize(compile_meta.get("loss"), "tapegrad.nn.losses",
                            roles.for_role(custom_objects, "loss", "loss function"), "loss")
        metrics = compile_meta.get("metrics") or []
        if not isinstance(metrics, list):
            raise ValueError("'metrics' must be a list")
        metric_objects = roles.for_role(custom_objects, "metric", "metric function")
        metrics = [_deserialize(m, "tapegrad.nn.metrics", metric_objects, "metric") for m in metrics]
        jit = compile_meta.get("jit", True)
        if not isinstance(jit, bool):
            raise ValueError("'jit' must be true or false")
        model.compile(optimizer=optimizer if optimizer is not None else "rmsprop", loss=loss, metrics=metrics,
                      jit=jit)
        _check_loss_axis(model)
        _check_metric_calls(model)
    except ModelFileError:
        raise
    except _REBUILD_ERRORS as exc:
        raise ModelFileError(f"{shown}: cannot restore the compile configuration: {exc}") from exc
    state = _optimizer_state(state_entries, arrays, shown)
    try:
        if state:
            model.optimizer.set_state(state)
            model.optimizer._check_state_for(model.trainable_variables())
        model.optimizer.learning_rate  # noqa: B018 - raises for a schedule that gives no valid rate now
    except _REBUILD_ERRORS as exc:
        raise ModelFileError(f"{shown}: cannot restore the optimizer state: {exc}") from exc
    try:
        _dry_run(model)
    except _REBUILD_ERRORS as exc:
        raise ModelFileError(f"{shown}: the loss or a metric cannot take the model's outputs and the trues it was "
                             f"trained with: {exc}") from exc


def _optimizer_state(entries: Any, arrays: dict[str, np.ndarray], shown: str) -> dict[str, np.ndarray]:
    if not entries:
        return {}
    if not isinstance(entries, list):
        raise ModelFileError(f"{shown}: corrupt header: 'optimizer_state' must be a list")
    state = {}
    for i, e in enumerate(entries):
        arr = _array_of(e, arrays)
        if arr is None or not isinstance(e.get("key"), str) or e["key"] in state:
            raise ModelFileError(f"{shown}: corrupt header: optimizer_state[{i}] is invalid ({_cut(e, 80)})")
        state[e["key"]] = arr
    return state


def _dry_run(model: Model) -> None:
    """One sample of zeros through the model (inference), the loss and copies of the
    metrics, recorded by no tape and changing nothing: a loss or metric that cannot take
    the model's outputs and trues of the spec it was trained with (or, without one, of
    the form its built-in loss takes) fails at load, not at the first training step."""
    spec, trues_spec = model._input_spec, model._trues_spec
    if spec is None:
        return
    with _state.scope(()):  # recorded by no tape of the caller's
        trues = None if trues_spec is None else _zeros(trues_spec)
        predictions = model(_zeros(spec), False, trues)
        if trues is None:
            trues = _trues_for(model._loss_fn, predictions)
            if trues is None:
                return
        model.compute_loss(trues, predictions)
        for metric in getattr(model, "_metrics", []):
            copy.deepcopy(metric).update_state(trues, predictions)


def _trues_for(loss: Any, predictions: Any) -> np.ndarray | None:
    """Zero trues of the form a built-in loss takes for ``predictions`` (None for others)."""
    from .. import losses

    shape = np.shape(predictions.value() if hasattr(predictions, "value") else predictions)
    fn = loss.fn if isinstance(loss, losses.LossFunctionWrapper) else None
    if isinstance(loss, losses.SparseCategoricalCrossentropy) or fn is losses.sparse_categorical_crossentropy:
        return np.zeros(shape[:-1], np.int32) if shape else None
    if type(loss) in (losses.CategoricalCrossentropy, losses.BinaryCrossentropy, losses.MeanSquaredError,
                      losses.MeanAbsoluteError, losses.Huber) or fn in (
            losses.categorical_crossentropy, losses.binary_crossentropy, losses.mean_squared_error,
            losses.mean_absolute_error, losses.huber):
        return np.zeros(shape, np.float32)
    return None


def _zeros(spec: Any) -> Any:
    if isinstance(spec, list):
        return [_zeros(s) for s in spec]
    return np.zeros((1, *(1 if n is None else n for n in spec["shape"])), dtype=spec["dtype"])


def _check_loss_axis(model: Model) -> None:
    """A loss whose class axis the model's outputs do not have fails now."""
    axis = getattr(model._loss_fn, "axis", None)
    shape = model.output_shape
    if isinstance(axis, int) and isinstance(shape, tuple):
        rank = len(shape) + 1
        if not -rank <= axis < rank:
            raise ValueError(f"{type(model._loss_fn).__name__}: axis {axis} is out of range for the model's "
                             f"outputs of rank {rank} (shape {('batch', *shape)})")


def _check_metric_calls(model: Model) -> None:
    """A metric function that cannot take the arguments the file gives it fails now."""
    from ..losses import _check_call
    from ..metrics import MeanMetricWrapper

    for metric in getattr(model, "_metrics", []):
        if isinstance(metric, MeanMetricWrapper):
            _check_call(metric.fn, metric.fn_kwargs, f"metric {metric.name!r}")
