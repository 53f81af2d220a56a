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

This module writes files and reads weights; :mod:`.loading` rebuilds whole models
(``load_model``). Loading never imports or evaluates anything named in the file: model classes come from
a registry (``@register_model``), ``custom_objects`` or tapegrad's own classes; layer,
loss, optimizer and metric classes from tapegrad's modules' exported names and
``custom_objects``. While a model is rebuilt, the weights its layers create are counted
against the bytes the file actually holds, so a hostile configuration (say
``Dense(units=10**12)``) is refused before anything large is allocated.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from ... import __version__
from ...io.container import DTYPES, ModelFileError, read_container, write_container
from ..layers.base import Layer

if TYPE_CHECKING:
    from .model import Model

_REGISTRY: dict[str, type] = {}
_MAX_SPEC_ELEMENTS = 1 << 24  # a build input (one sample) larger than this is refused
_SLACK = 1 << 20  # bytes of weights a rebuilt model may create beyond those in the file


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

    cls = (custom_objects or {}).get(name) or _REGISTRY.get(name) or (models or {}).get(name)
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
        raise ValueError(f"{what}: expected {{'class_name': str, 'config': dict}}, got {str(entry)[:120]}")
    return entry["class_name"], dict(entry.get("config", {}))


def deserialize_layer(entry: Any, custom_objects: dict[str, Any] | None = None,
                      models: dict[str, type] | None = None) -> Layer:
    """A layer (or nested model) from ``{"class_name": ..., "config": ...}``. ``models``
    names tapegrad's model classes (``{"Sequential": Sequential}``), looked up after
    ``custom_objects`` and the registry; a model class rebuilds itself with
    ``_from_saved_config`` (Sequential needs ``custom_objects``, AbstractModel a builder)."""
    name, config = _entry(entry, "layer")
    cls = _layer_class(name, custom_objects, models)
    try:
        rebuild = getattr(cls, "_from_saved_config", None)
        if rebuild is not None:
            return rebuild(config, custom_objects, config.get("dtype"))
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


def save_model(model: Model, path: str | os.PathLike) -> None:
    """Write ``model`` (config, weights, compile config, optimizer state) to ``path``."""
    weights, arrays = _weights_meta(model)
    compile_meta, state_entries, state_arrays = _compile_meta(model)
    arrays.update(state_arrays)
    meta = {
        "format": "tapegrad", "kind": "model", "tapegrad_version": __version__,
        "model": _model_meta(model), "weights": weights,
        "compile": compile_meta, "optimizer_state": state_entries,
    }
    _write(path, meta, arrays)


def save_weights(model: Model, path: str | os.PathLike) -> None:
    """Write only the weights of ``model`` to ``path``."""
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
        raise ModelFileError(f"{shown}: not a tapegrad model file (format {str(meta.get('format'))[:40]!r})")
    kind = meta.get("kind")
    if kind not in kinds:
        hint = " (a weights-only file: use model.load_weights)" if kind == "weights" else ""
        raise ModelFileError(f"{shown}: expected a {' or '.join(kinds)} file, got kind {str(kind)[:40]!r}{hint}")
    return shown, meta, arrays


def _weight_arrays(shown: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    entries = meta.get("weights")
    if not isinstance(entries, list):
        raise ModelFileError(f"{shown}: corrupt header: 'weights' must be a list")
    out = []
    for i, e in enumerate(entries):
        if not (isinstance(e, dict) and isinstance(e.get("name"), str) and e.get("array") in arrays):
            raise ModelFileError(f"{shown}: corrupt header: weight entry #{i} is invalid or names a missing array")
        out.append((e["name"], arrays[e["array"]]))
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
        if arr.dtype != var.dtype:
            if arr.dtype.kind != var.dtype.kind:
                raise ModelFileError(f"{shown}: weight #{i} {name!r} has dtype {arr.dtype} in the file, but the "
                                     f"model's weight {var.name!r} has dtype {var.dtype}")
            arr = arr.astype(var.dtype)
    for (_, arr), var in zip(saved, variables):
        var.assign(arr.astype(var.dtype, copy=False))


def load_weights(model: Model, path: str | os.PathLike) -> None:
    """Assign the weights stored in ``path`` (a weights or model file) to ``model``."""
    shown, meta, arrays = _read(path, ("weights", "model"))
    saved = _weight_arrays(shown, meta, arrays)
    if not model.built and saved:
        spec = model._input_spec
        if spec is None and meta.get("kind") == "model":
            spec = _check_spec((meta.get("model") or {}).get("input_spec"), shown)
        if spec is not None:
            with _weight_budget(sum(a.nbytes for _, a in saved), shown):
                model._build_from_spec(spec)
    _assign(model, saved, shown)


def _check_spec(spec: Any, shown: str) -> Any:
    if spec is None:
        return None
    if isinstance(spec, list):
        if len(spec) > 1024 or not all(isinstance(s, dict) for s in spec):
            raise ModelFileError(f"{shown}: corrupt header: invalid input spec {str(spec)[:120]}")
        specs = [_check_spec(s, shown) for s in spec]
        if sum(math.prod(1 if n is None else n for n in s["shape"]) for s in specs) > _MAX_SPEC_ELEMENTS:
            raise ModelFileError(f"{shown}: the input spec is too large to build the model")
        return specs
    if not (isinstance(spec, dict) and isinstance(spec.get("shape"), list) and spec.get("dtype") in DTYPES
            and len(spec["shape"]) <= 32
            and all(n is None or (type(n) is int and n >= 0) for n in spec["shape"])):
        raise ModelFileError(f"{shown}: corrupt header: invalid input spec {str(spec)[:120]}")
    if math.prod(1 if n is None else n for n in spec["shape"]) > _MAX_SPEC_ELEMENTS:
        raise ModelFileError(f"{shown}: input spec {spec['shape']} is too large to build the model")
    return {"shape": list(spec["shape"]), "dtype": spec["dtype"]}


_budget_lock = threading.Lock()


@contextlib.contextmanager
def _weight_budget(nbytes: int, shown: str) -> Iterator[None]:
    """While rebuilding a model in this thread, refuse to create weights beyond the bytes
    the file holds (plus a little): a hostile config cannot make us allocate much."""
    limit = nbytes + _SLACK
    used = [0]
    me = threading.get_ident()
    with _budget_lock:
        original: Callable[..., Any] = Layer.add_weight

        def add_weight(self: Layer, name: str, shape: Any, initializer: Any = "zeros",
                       trainable: bool = True, dtype: Any = None) -> Any:
            if threading.get_ident() == me:
                try:
                    itemsize = np.dtype(self.dtype if dtype is None else dtype).itemsize
                    size = math.prod(int(n) for n in shape) * itemsize
                except (TypeError, ValueError):
                    size = 0
                used[0] += size
                if size < 0 or used[0] > limit:
                    raise ModelFileError(
                        f"{shown}: rebuilding the model creates weight {self.name}/{name} of shape "
                        f"{tuple(shape)}, more than the {nbytes} bytes of weights the file holds: its config "
                        f"does not match its weights (corrupt or hostile file)")
            return original(self, name, shape, initializer, trainable, dtype)

        Layer.add_weight = add_weight  # type: ignore[method-assign]
    try:
        yield
    finally:
        with _budget_lock:
            if Layer.add_weight is add_weight:
                Layer.add_weight = original  # type: ignore[method-assign]
