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

Loading never imports or evaluates anything named in the file: model classes come from
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
from typing import Any, Callable, Iterator

import numpy as np

from ... import __version__
from ...io.container import DTYPES, ModelFileError, read_container, write_container
from ..layers.base import Layer
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
def _model_class(name: str, custom_objects: dict[str, Any] | None) -> type:
    from .sequential import Sequential

    cls = (custom_objects or {}).get(name) or _REGISTRY.get(name) or {"Sequential": Sequential}.get(name)
    if cls is None:
        raise ValueError(f"unknown model class {name!r}: register it with @tapegrad.register_model "
                         f"or pass custom_objects={{{name!r}: {name}}}")
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise ValueError(f"custom_objects[{name!r}] is not a Model class")
    return cls


def _layer_class(name: str, custom_objects: dict[str, Any] | None) -> type:
    from .. import layers

    cls = (custom_objects or {}).get(name) or _REGISTRY.get(name)
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
        raise ValueError(f"{what}: expected {{'class_name': str, 'config': dict}}, got {str(entry)[:120]}")
    return entry["class_name"], dict(entry.get("config", {}))


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


def _deserialize(ident: Any, module: str, custom_objects: dict[str, Any] | None, what: str) -> Any:
    """The inverse of :func:`_serialize`: names stay names (the module's ``get`` resolves
    them in ``compile``); dicts go through the module's ``deserialize``, which looks
    classes up in its own table and ``custom_objects`` only."""
    import importlib

    if ident is None or isinstance(ident, str):
        return ident
    if not isinstance(ident, dict):
        raise ValueError(f"invalid {what} entry {str(ident)[:80]}")
    try:
        return importlib.import_module(module).deserialize(ident, custom_objects)
    except TypeError as exc:
        raise ValueError(f"cannot rebuild the {what} from {str(ident)[:120]}: {exc}") from None


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


def load_model(
    path: str | os.PathLike,
    custom_objects: dict[str, Any] | None = None,
    compile: bool = True,
) -> Model:
    """Load a model written by ``model.save(path)``: its architecture, weights and, with
    ``compile`` (default), its optimizer (with its state), loss and metrics, so that
    ``fit`` continues exactly where it stopped.

    ``Sequential`` models load as they are; other model classes must be registered with
    :func:`register_model` or given in ``custom_objects`` (name -> class), which also
    supplies custom layers, losses, metrics and optimizers. Any problem with the file
    raises :class:`~tapegrad.io.ModelFileError` (a ``ValueError``) naming the file.
    """
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError("load_model: custom_objects must be a dict of name -> class")
    shown, meta, arrays = _read(path, ("model",))
    saved = _weight_arrays(shown, meta, arrays)
    model_meta = meta.get("model")
    if not isinstance(model_meta, dict):
        raise ModelFileError(f"{shown}: corrupt header: 'model' must be an object")
    try:
        with _weight_budget(sum(a.nbytes for _, a in saved), shown):
            model = _rebuild(model_meta, custom_objects, shown, bool(saved))
    except ModelFileError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFileError(f"{shown}: cannot rebuild the model: {exc}") from exc
    _assign(model, saved, shown)
    compile_meta = meta.get("compile")
    if compile and compile_meta is not None:
        _restore_compile(model, compile_meta, meta.get("optimizer_state"), arrays, custom_objects, shown)
    return model


def _rebuild(model_meta: dict[str, Any], custom_objects: dict[str, Any] | None, shown: str,
             needs_build: bool) -> Model:
    from .abstract import AbstractModel
    from .sequential import Sequential

    name, config = _entry(model_meta, "model")
    dtype = model_meta.get("dtype")
    if dtype is not None and dtype not in DTYPES:
        raise ModelFileError(f"{shown}: corrupt header: invalid model dtype {str(dtype)[:40]!r}")
    cls = _model_class(name, custom_objects)
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
    spec = _check_spec(model_meta.get("input_spec"), shown)
    trues_spec = _check_spec(model_meta.get("trues_spec"), shown)
    if needs_build and spec is not None and not _fully_built(model):
        model._build_from_spec(spec, trues_spec)
    elif spec is not None and model._input_spec is None:
        model._input_spec = spec
    return model


def _fully_built(model: Model) -> bool:
    return model.built and all(layer.built for layer in model.layers)


def _restore_compile(model: Model, compile_meta: Any, state_entries: Any, arrays: dict[str, np.ndarray],
                     custom_objects: dict[str, Any] | None, shown: str) -> None:
    if not isinstance(compile_meta, dict):
        raise ModelFileError(f"{shown}: corrupt header: 'compile' must be an object")
    try:
        optimizer = _deserialize(compile_meta.get("optimizer"), "tapegrad.nn.optimizers", custom_objects, "optimizer")
        loss = _deserialize(compile_meta.get("loss"), "tapegrad.nn.losses", custom_objects, "loss")
        metrics = compile_meta.get("metrics") or []
        if not isinstance(metrics, list):
            raise ValueError("'metrics' must be a list")
        metrics = [_deserialize(m, "tapegrad.nn.metrics", custom_objects, "metric") for m in metrics]
        jit = compile_meta.get("jit", True)
        if not isinstance(jit, bool):
            raise ValueError("'jit' must be true or false")
        model.compile(optimizer=optimizer if optimizer is not None else "rmsprop", loss=loss, metrics=metrics,
                      jit=jit)
    except ModelFileError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFileError(f"{shown}: cannot restore the compile configuration: {exc}") from exc
    if state_entries:
        if not isinstance(state_entries, list):
            raise ModelFileError(f"{shown}: corrupt header: 'optimizer_state' must be a list")
        state = {}
        for i, e in enumerate(state_entries):
            if not (isinstance(e, dict) and isinstance(e.get("key"), str) and e.get("array") in arrays):
                raise ModelFileError(f"{shown}: corrupt header: optimizer state entry #{i} is invalid")
            state[e["key"]] = arrays[e["array"]]
        try:
            model.optimizer.set_state(state)
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelFileError(f"{shown}: cannot restore the optimizer state: {exc}") from exc
