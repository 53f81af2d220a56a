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
file and the field. This module writes files and reads weights; :mod:`.loading` rebuilds
whole models (``load_model``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ... import __version__
from ...errors import OpValueError
from ...io.container import DTYPES, ModelFileError, read_container, write_container
from ..layers.base import Layer
from . import custom_objects as roles
from .file_limits import check_spec, check_structure, guarded_rebuild

if TYPE_CHECKING:
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
def _layer_class(name: str, custom_objects: dict[str, Any] | None, models: dict[str, type] | None) -> type:
    from .. import layers

    cls = roles.require_class(custom_objects, name, "layer", "the layer's class_name") or _REGISTRY.get(name)
    cls = cls or (models or {}).get(name)
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


def deserialize_layer(entry: Any, custom_objects: dict[str, Any] | None = None,
                      models: dict[str, type] | None = None) -> Layer:
    """A layer (or nested model) from ``{"class_name": ..., "config": ...}``. ``models``
    names tapegrad's model classes (``{"Sequential": Sequential}``), looked up after
    ``custom_objects`` and the registry; a model class rebuilds itself with
    ``_from_saved_config`` (Sequential needs ``custom_objects``, AbstractModel a builder)."""
    name, config = _entry(entry, "layer")
    cls = _layer_class(name, custom_objects, models)
    dtype = config.get("dtype")
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(f"layer {name}: invalid dtype {_cut(dtype, 40)}")
    try:
        rebuild = getattr(cls, "_from_saved_config", None)
        if rebuild is not None:
            return rebuild(config, custom_objects, dtype)
        return cls.from_config(config)
    except TypeError as exc:
        raise ValueError(f"cannot rebuild layer {name} from its config: {exc}") from None


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
