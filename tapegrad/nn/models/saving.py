"""Saving and loading models: what the tapegrad file holds (see :mod:`tapegrad.io` for
the container: JSON header + raw arrays + SHA-256, no pickle).

A model file (``model.save(path)``) has the header::

    {"format": "tapegrad", "kind": "model", "tapegrad_version": "...",
     "model": {"class_name": "Sequential", "config": {...}, "name": "...", "dtype": "float32",
               "input_spec": {"shape": [...], "dtype": "..."} | [...] | null, "trues_spec": ...},
     "weights": [{"name": "dense/kernel", "array": "weights/0", "trainable": true}, ...],
     "compile": null | {"optimizer": {"class_name", "config"}, "loss": ..., "metrics": [...]},
     "optimizer_state": [{"key": "...", "array": "optimizer/0"}, ...],
     "arrays": [...]}

and a weights file (``save_weights``) the same without ``model``, ``compile`` and
``optimizer_state`` (``"kind": "weights"``).

A file is data, never code, and may come from anyone (its checksum proves nothing:
whoever edits a file can recompute it). Loading therefore

* imports and evaluates nothing named in the file: model classes come from a registry
  (``@register_model``), ``custom_objects`` or tapegrad's own classes; layer, loss,
  optimizer and metric classes from tapegrad's modules and ``custom_objects``, each
  entry of which is used only in the roles its kind allows (:mod:`.custom_objects`);
* rebuilds every object through its constructor, whose checks refuse NaN, infinite,
  negative or out-of-range hyperparameters, and within the limits of
  :mod:`.file_limits` (nesting depth, layer count, header size, and no more bytes of
  weights than the file holds);
* checks, before returning, what training would otherwise find out at its first step:
  the optimizer state against the model's trainable variables, the learning rate at the
  restored step, the loss, and the metrics' arguments.

Any problem raises :class:`~tapegrad.io.ModelFileError` (a ``ValueError``) naming the
file and the field.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import numpy as np

from ... import __version__
from ...autodiff.primitive import active_tapes
from ...errors import OpValueError
from ...io.container import DTYPES, ModelFileError, read_container, write_container
from ..layers.base import Layer
from . import custom_objects as roles
from .file_limits import check_spec, check_structure, guarded_rebuild
from .model import Model

_REGISTRY: dict[str, type] = {}

#: What a rebuild may raise for a bad file besides ModelFileError (all become one).
_REBUILD_ERRORS = (ValueError, TypeError, LookupError, AttributeError, ArithmeticError, RecursionError)

#: Extensions of other libraries' model files: saving under them is refused.
FOREIGN_EXTENSIONS = {
    ".keras": "Keras", ".h5": "Keras/HDF5", ".hdf5": "HDF5", ".pt": "PyTorch", ".pth": "PyTorch",
    ".pkl": "pickle", ".pickle": "pickle", ".npz": "NumPy", ".npy": "NumPy", ".safetensors": "safetensors",
    ".onnx": "ONNX", ".pb": "TensorFlow", ".ckpt": "TensorFlow",
}
EXTENSION = ".tgm"


def register_model(cls: Any = None, *, name: str | None = None) -> Any:
    """Register a model class so that :func:`load_model` can rebuild it by name.

    Use as ``@register_model``, ``@register_model(name="MyModel")`` or
    ``register_model(MyModel)``. Registering another class under a taken name replaces
    it."""

    def register(klass: type) -> type:
        if not (isinstance(klass, type) and issubclass(klass, Layer)):
            raise TypeError(f"register_model: expected a Model (or Layer) subclass, got {klass!r}")
        _REGISTRY[name or klass.__name__] = klass
        return klass

    if cls is None:
        return register
    if isinstance(cls, str):  # @register_model("Name")
        name = cls
        return register
    return register(cls)


def registered_models() -> dict[str, type]:
    """A copy of the registry (name -> class)."""
    return dict(_REGISTRY)


# -- class lookup (no imports by name) ------------------------------------------------------
def _model_class(name: str, custom_objects: dict[str, Any] | None) -> type:
    from .sequential import Sequential

    cls = roles.require_class(custom_objects, name, "model", "model.class_name")
    cls = cls or _REGISTRY.get(name) or {"Sequential": Sequential}.get(name)
    if cls is None:
        raise ValueError(f"unknown model class {name!r}: register it with @tapegrad.register_model "
                         f"or pass custom_objects={{{name!r}: {name}}}")
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise ValueError(f"the registered class {name!r} is not a Model class")
    return cls


def _layer_class(name: str, custom_objects: dict[str, Any] | None) -> type:
    from .. import layers

    cls = roles.require_class(custom_objects, name, "layer", "the layer's class_name") or _REGISTRY.get(name)
    if cls is None and name == "Sequential":
        from .sequential import Sequential

        cls = Sequential
    if cls is None:
        try:
            cls = layers.get_class(name)
        except ValueError:
            raise ValueError(f"unknown layer class {name!r}: pass it in custom_objects={{{name!r}: ...}}") from None
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise ValueError(f"{name!r} is not a Layer class")
    return cls


def _entry(entry: Any, what: str) -> tuple[str, dict[str, Any]]:
    if not (isinstance(entry, dict) and isinstance(entry.get("class_name"), str)
            and isinstance(entry.get("config", {}), dict)):
        raise ValueError(f"{what}: expected {{'class_name': str, 'config': dict}}, got {_cut(entry)}")
    return entry["class_name"], dict(entry.get("config", {}))


def _cut(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def deserialize_layer(entry: Any, custom_objects: dict[str, Any] | None = None) -> Layer:
    """A layer (or nested model) from ``{"class_name": ..., "config": ...}``."""
    from .abstract import AbstractModel
    from .sequential import Sequential

    name, config = _entry(entry, "layer")
    cls = _layer_class(name, custom_objects)
    try:
        if issubclass(cls, Sequential):
            return cls.from_config(config, custom_objects)
        if issubclass(cls, AbstractModel):
            return cls.from_config(config, _builder(config.get("dtype")))
        return cls.from_config(config)
    except TypeError as exc:
        raise ValueError(f"cannot rebuild layer {name} from its config: {exc}") from None


def _builder(dtype: Any) -> Any:
    from ...builder import NeuralNetworks

    if dtype is not None and dtype not in DTYPES:
        raise ValueError(f"invalid dtype {_cut(dtype, 40)}")
    return NeuralNetworks(dtype or "float32")


def _serialize(obj: Any, module: str, what: str) -> Any:
    """A compile-time object as JSON: a name as given, else its module's ``serialize``
    (``{"class_name", "config"}``)."""
    import importlib

    if obj is None or isinstance(obj, str):
        return obj
    try:
        return importlib.import_module(module).serialize(obj)
    except TypeError:
        raise ValueError(f"model.save: cannot save the {what} {obj!r}: it is not a tapegrad {what} "
                         f"(wrap functions in the module's classes, or subclass them)") from None


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


# -- save ----------------------------------------------------------------------------------------
def _weights_meta(model: Model) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    entries, arrays = [], {}
    trainable = {id(v) for v in model.trainable_variables()}
    for i, v in enumerate(model.variables()):
        key = f"weights/{i}"
        arrays[key] = v.value()
        entries.append({"name": v.name or f"#{i}", "array": key, "trainable": id(v) in trainable})
    return entries, arrays


def _compile_meta(model: Model) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, np.ndarray]]:
    if model.optimizer is None:
        return None, [], {}
    config = model._compile_config or {}
    loss = config.get("loss")
    meta = {
        "optimizer": _serialize(model.optimizer, "tapegrad.nn.optimizers", "optimizer"),
        "loss": _serialize(loss if loss is None or isinstance(loss, str) else model._loss_fn,
                           "tapegrad.nn.losses", "loss"),
        "metrics": [m if isinstance(m, str) else _serialize(obj, "tapegrad.nn.metrics", "metric")
                    for m, obj in zip(config.get("metrics", []), model._metrics)],
        "jit": bool(getattr(model, "jit", True)),
    }
    state_entries, arrays = [], {}
    get_state = getattr(model.optimizer, "get_state", None)
    state = get_state() if get_state is not None else {}
    for i, (key, value) in enumerate(state.items()):
        name = f"optimizer/{i}"
        arrays[name] = np.asarray(value)
        state_entries.append({"key": str(key), "array": name})
    return meta, state_entries, arrays


def _model_meta(model: Model) -> dict[str, Any]:
    return {
        "class_name": _class_name(model),
        "config": model.get_config(),
        "name": model.name,
        "dtype": str(model.dtype),
        "input_spec": model._input_spec,
        "trues_spec": model._trues_spec,
    }


def _class_name(model: Model) -> str:
    cls = type(model)
    for name, registered in _REGISTRY.items():
        if registered is cls:
            return name
    return cls.__name__


def check_extension(path: str | os.PathLike, who: str) -> None:
    """Refuse a path with another library's model-file extension (``.keras``, ``.h5``,
    ``.pt``, ...): tapegrad writes its own format, which those libraries cannot read."""
    shown = os.fspath(path)
    ext = os.path.splitext(shown)[1].lower()
    if ext in FOREIGN_EXTENSIONS:
        raise OpValueError(f"{who}: {shown!r} has the extension of a {FOREIGN_EXTENSIONS[ext]} file, but tapegrad "
                           f"writes its own format (read back by tapegrad.load_model / load_weights): use the "
                           f"extension {EXTENSION}, e.g. {os.path.splitext(shown)[0] + EXTENSION!r}")


def save_model(model: Model, path: str | os.PathLike) -> None:
    """Write ``model`` (config, weights, compile config, optimizer state) to ``path``
    (extension ``.tgm`` or any but another library's: see :func:`check_extension`),
    atomically; a model beyond the limits of :mod:`.file_limits` is refused and nothing
    is written."""
    check_extension(path, "model.save")
    model_meta = _model_meta(model)
    check_structure(model_meta, "model.save", OpValueError)
    weights, arrays = _weights_meta(model)
    compile_meta, state_entries, state_arrays = _compile_meta(model)
    arrays.update(state_arrays)
    meta = {
        "format": "tapegrad", "kind": "model", "tapegrad_version": __version__,
        "model": model_meta, "weights": weights,
        "compile": compile_meta, "optimizer_state": state_entries,
    }
    _write(path, meta, arrays)


def save_weights(model: Model, path: str | os.PathLike) -> None:
    """Write only the weights of ``model`` to ``path``."""
    check_extension(path, "model.save_weights")
    weights, arrays = _weights_meta(model)
    meta = {"format": "tapegrad", "kind": "weights", "tapegrad_version": __version__,
            "model_class": _class_name(model), "weights": weights}
    _write(path, meta, arrays)


def _write(path: str | os.PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    try:
        write_container(path, meta, arrays)
    except TypeError as exc:  # json.dumps
        raise ValueError(f"save {os.fspath(path)}: a config holds a value that is not JSON ({exc}); "
                         f"get_config() must return JSON values only") from None


# -- load ----------------------------------------------------------------------------------------
def _read(path: str | os.PathLike, kinds: tuple[str, ...]) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    shown = os.fspath(path)
    meta, arrays = read_container(path)
    if meta.get("format") != "tapegrad":
        raise ModelFileError(f"{shown}: not a tapegrad model file (format {_cut(meta.get('format'), 40)})")
    kind = meta.get("kind")
    if kind not in kinds:
        hint = " (a weights-only file: use model.load_weights)" if kind == "weights" else ""
        raise ModelFileError(f"{shown}: expected a {' or '.join(kinds)} file, got kind {_cut(kind, 40)}{hint}")
    return shown, meta, arrays


def _array_of(entry: Any, arrays: dict[str, np.ndarray]) -> np.ndarray | None:
    name = entry.get("array") if isinstance(entry, dict) else None
    return arrays.get(name) if isinstance(name, str) else None


def _weight_arrays(shown: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    entries = meta.get("weights")
    if not isinstance(entries, list):
        raise ModelFileError(f"{shown}: corrupt header: 'weights' must be a list")
    out = []
    for i, e in enumerate(entries):
        arr = _array_of(e, arrays)
        if arr is None or not isinstance(e.get("name"), str):
            raise ModelFileError(f"{shown}: corrupt header: weights[{i}] is invalid or names a missing array "
                                 f"({_cut(e, 80)})")
        out.append((e["name"], arr))
    return out


def _assign(model: Model, saved: list[tuple[str, np.ndarray]], shown: str) -> None:
    variables = model.variables()
    if len(saved) != len(variables):
        def names(items: list[str]) -> str:
            return ", ".join(items[:8]) + (", ..." if len(items) > 8 else "")

        raise ModelFileError(
            f"{shown}: the file holds {len(saved)} weights ({names([n for n, _ in saved])}), but model "
            f"{model.name!r} has {len(variables)} ({names([v.name or '?' for v in variables])})"
            + ("" if model.built else "; the model is not built: call it once or give an input_shape")
        )
    for i, ((name, arr), var) in enumerate(zip(saved, variables)):
        if arr.shape != var.shape:
            raise ModelFileError(f"{shown}: weight #{i} {name!r} has shape {arr.shape} in the file, but the "
                                 f"model's weight {var.name!r} has shape {var.shape}")
        if arr.dtype.kind != var.dtype.kind:
            raise ModelFileError(f"{shown}: weight #{i} {name!r} has dtype {arr.dtype} in the file, but the "
                                 f"model's weight {var.name!r} has dtype {var.dtype}")
    for (_, arr), var in zip(saved, variables):
        var.assign(arr.astype(var.dtype, copy=False))


def load_weights(model: Model, path: str | os.PathLike) -> None:
    """Assign the weights stored in ``path`` (a weights or model file) to ``model``."""
    shown, meta, arrays = _read(path, ("weights", "model"))
    saved = _weight_arrays(shown, meta, arrays)
    if not model.built and saved:
        spec = model._input_spec
        if spec is None and meta.get("kind") == "model":
            model_meta = meta.get("model")
            spec = check_spec(model_meta.get("input_spec") if isinstance(model_meta, dict) else None, shown)
        if spec is not None:
            try:
                with guarded_rebuild(sum(a.nbytes for _, a in saved), shown):
                    model._build_from_spec(spec)
            except ModelFileError:
                raise
            except _REBUILD_ERRORS as exc:
                raise ModelFileError(f"{shown}: cannot build the model from the file's input spec: "
                                     f"{type(exc).__name__}: {exc}") from exc
    _assign(model, saved, shown)


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
    from .abstract import AbstractModel
    from .sequential import Sequential

    name, config = _entry(model_meta, "model")
    dtype = model_meta.get("dtype")
    if dtype is not None and dtype not in DTYPES:
        raise ModelFileError(f"{shown}: corrupt header: invalid model dtype {_cut(dtype, 40)}")
    cls = _model_class(name, custom_objects)
    spec = check_spec(model_meta.get("input_spec"), shown)
    trues_spec = check_spec(model_meta.get("trues_spec"), shown)
    try:
        if issubclass(cls, Sequential):
            model = cls.from_config(config, custom_objects)
        elif issubclass(cls, AbstractModel):
            model = cls.from_config(config, _builder(dtype))
        else:
            model = cls.from_config(config)
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
    saved = active_tapes[:]
    active_tapes.clear()
    try:
        trues = None if trues_spec is None else _zeros(trues_spec)
        predictions = model(_zeros(spec), False, trues)
        if trues is None:
            trues = _trues_for(model._loss_fn, predictions)
            if trues is None:
                return
        model.compute_loss(trues, predictions)
        for metric in getattr(model, "_metrics", []):
            copy.deepcopy(metric).update_state(trues, predictions)
    finally:
        active_tapes[:] = saved


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
