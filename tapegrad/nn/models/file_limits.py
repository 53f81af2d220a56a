"""The limits of a model file, checked when it is saved and when it is loaded.

* :data:`MAX_MODEL_DEPTH` models nested in one another (a Sequential in a Sequential
  counts one level);
* :data:`MAX_LAYERS` layers in all (every level counted, and every layer a model's code
  creates while it is rebuilt);
* a header of at most :data:`tapegrad.io.container.MAX_HEADER_BYTES` bytes, nested at
  most :data:`tapegrad.io.container.MAX_JSON_DEPTH` levels deep;
* weights created while rebuilding a model: no more bytes than the file holds, plus
  :data:`WEIGHT_SLACK` (a hostile ``Dense(units=10**9)`` fails before it allocates).

``save`` refuses a model beyond the limits (so that nothing is written that cannot be
read back); ``load_model`` refuses a file beyond them with a :class:`ModelFileError`.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

import numpy as np

from ...errors import OpValueError
from ...io.container import DTYPES, ModelFileError
from ..layers import base as layer_base

MAX_MODEL_DEPTH = 32
MAX_LAYERS = 10_000
MAX_SPEC_ELEMENTS = 1 << 24  # a build input (one sample) larger than this is refused
WEIGHT_SLACK = 1 << 20  # bytes of weights a rebuilt model may create beyond those in the file


def check_structure(entry: Any, where: str, error: type[ValueError] = ModelFileError) -> None:
    """Count the layers of a serialized model (``{"class_name", "config": {"layers": [...]}}``,
    nested to any depth) without recursion; raise ``error`` beyond the limits."""
    stack = [(entry, where, 0)]
    count = 0
    while stack:
        node, path, depth = stack.pop()
        config = node.get("config") if isinstance(node, dict) else None
        layers = config.get("layers") if isinstance(config, dict) else None
        if not isinstance(layers, list):
            continue
        if depth + 1 > MAX_MODEL_DEPTH:
            raise error(f"{path}: models are nested more than {MAX_MODEL_DEPTH} deep (the limit of a model file)")
        count += len(layers)
        if count > MAX_LAYERS:
            raise error(f"{path}: the model has more than {MAX_LAYERS} layers (the limit of a model file)")
        stack.extend((layer, f"{path}.config.layers[{i}]", depth + 1) for i, layer in enumerate(layers))


class RebuildGuard:
    """Active (through ``tapegrad.nn.layers.base.rebuild_guard``) while this thread
    rebuilds a model from a file: counts the layers created and the bytes of the
    weights, and refuses more than the file can justify."""

    def __init__(self, weight_bytes: int, shown: str) -> None:
        self.limit = weight_bytes + WEIGHT_SLACK
        self.file_bytes = weight_bytes
        self.used = 0
        self.layers = 0
        self.shown = shown

    def layer(self, layer: Any) -> None:
        self.layers += 1
        if self.layers > MAX_LAYERS:
            raise ModelFileError(f"{self.shown}: rebuilding the model creates more than {MAX_LAYERS} layers "
                                 f"(the limit of a model file)")

    def weight(self, layer: Any, name: str, shape: tuple, dtype: np.dtype) -> None:
        if any(n < 0 for n in shape):
            raise ModelFileError(f"{self.shown}: rebuilding the model creates weight {layer.name}/{name} of "
                                 f"negative shape {shape}")
        self.used += math.prod(shape) * dtype.itemsize
        if self.used > self.limit:
            raise ModelFileError(
                f"{self.shown}: rebuilding the model creates weight {layer.name}/{name} of shape {shape}, more "
                f"than the {self.file_bytes} bytes of weights the file holds: its config does not match its "
                f"weights (corrupt or hostile file)")


@contextlib.contextmanager
def guarded_rebuild(weight_bytes: int, shown: str) -> Iterator[RebuildGuard]:
    """Rebuild a model in this thread under a :class:`RebuildGuard` (nests: the outer
    guard stays in force)."""
    outer = layer_base.rebuild_guard.active
    if outer is not None:
        yield outer
        return
    guard = RebuildGuard(weight_bytes, shown)
    layer_base.rebuild_guard.active = guard
    try:
        yield guard
    finally:
        layer_base.rebuild_guard.active = None


def check_spec(spec: Any, shown: str) -> Any:
    """An input spec from a file (``{"shape", "dtype"}`` or a list of them), checked."""
    if spec is None:
        return None
    if isinstance(spec, list):
        if len(spec) > 1024 or not all(isinstance(s, dict) for s in spec):
            raise ModelFileError(f"{shown}: corrupt header: invalid input spec {_cut(spec)}")
        specs = [check_spec(s, shown) for s in spec]
        if sum(math.prod(1 if n is None else n for n in s["shape"]) for s in specs) > MAX_SPEC_ELEMENTS:
            raise ModelFileError(f"{shown}: the input spec is too large to build the model")
        return specs
    if not (isinstance(spec, dict) and isinstance(spec.get("shape"), list) and spec.get("dtype") in DTYPES
            and len(spec["shape"]) <= 32
            and all(n is None or (type(n) is int and n >= 0) for n in spec["shape"])):
        raise ModelFileError(f"{shown}: corrupt header: invalid input spec {_cut(spec)}")
    if math.prod(1 if n is None else n for n in spec["shape"]) > MAX_SPEC_ELEMENTS:
        raise ModelFileError(f"{shown}: input spec {_cut(spec['shape'])} is too large to build the model")
    return {"shape": list(spec["shape"]), "dtype": spec["dtype"]}


def _cut(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def check_savable(model_meta: dict[str, Any]) -> None:
    """Refuse to save a model that :func:`load_model` would refuse (nothing is written)."""
    check_structure(model_meta, "model", OpValueError)
