"""Loading whole models: :func:`load_model` rebuilds a model from the file that
``model.save(path)`` wrote (the format and the safety rules are in :mod:`.saving`), assigns
its weights and restores its compile configuration and optimizer state.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ...io.container import DTYPES, ModelFileError
from ..layers.base import Layer
from .model import Model
from .saving import _REGISTRY, _assign, _check_spec, _entry, _read, _weight_arrays, _weight_budget
from .sequential import Sequential

# tapegrad's own model classes, found by name after custom_objects and the registry
_MODELS: dict[str, type] = {"Sequential": Sequential}


def _model_class(name: str, custom_objects: dict[str, Any] | None) -> type:
    cls = (custom_objects or {}).get(name) or _REGISTRY.get(name) or _MODELS.get(name)
    if cls is None:
        raise ValueError(f"unknown model class {name!r}: register it with @tapegrad.register_model "
                         f"or pass custom_objects={{{name!r}: {name}}}")
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise ValueError(f"custom_objects[{name!r}] is not a Model class")
    return cls


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
    name, config = _entry(model_meta, "model")
    dtype = model_meta.get("dtype")
    if dtype is not None and dtype not in DTYPES:
        raise ModelFileError(f"{shown}: corrupt header: invalid model dtype {str(dtype)[:40]!r}")
    cls = _model_class(name, custom_objects)
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
