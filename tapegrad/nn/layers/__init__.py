"""Layers. Each builds its weights from the shape of its first input.

Every layer is a :class:`Layer` subclass with ``get_config()`` / ``from_config()``;
:func:`serialize` and :func:`deserialize` turn a layer into a JSON-ready dict and back.
"""

from __future__ import annotations

from typing import Any

from ...errors import OpTypeError, OpValueError
from .attention import Attention, MultiHeadAttention
from .base import Layer, reset_names, unique_name
from .bidirectional import Bidirectional
from .conv import Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D, Conv3DTranspose
from .core import Activation, Dense, Input
from .embedding import Embedding
from .gather import Gather
from .masking import InheritMask
from .merging import Add, Concatenate
from .normalization import BatchNormalization, LayerNormalization
from .pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from .recurrent import GRU, LSTM, SimpleRNN
from .regularization import Dropout
from .reshaping import ExpandDims, Flatten, RepeatVector, Reshape
from .resizing import UpSampling1D, UpSampling2D, UpSampling3D, ZeroPadding1D, ZeroPadding2D, ZeroPadding3D

# convolution, pooling and resizing (conv.py, pooling.py, resizing.py)
_IMAGE_LAYERS = (
    Conv1D, Conv2D, Conv3D, Conv1DTranspose, Conv2DTranspose, Conv3DTranspose,
    MaxPooling1D, MaxPooling2D, MaxPooling3D, AveragePooling1D, AveragePooling2D, AveragePooling3D,
    GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D,
    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D,
    UpSampling1D, UpSampling2D, UpSampling3D, ZeroPadding1D, ZeroPadding2D, ZeroPadding3D,
)

_CLASSES: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (Input, Dense, Activation, Flatten, Reshape, ExpandDims, RepeatVector, Concatenate, Add, Gather,
                Embedding, Dropout, BatchNormalization, LayerNormalization, *_IMAGE_LAYERS)
}
# sequences: recurrent and attention layers, masks
_CLASSES.update({cls.__name__: cls for cls in (SimpleRNN, LSTM, GRU, Bidirectional, Attention, MultiHeadAttention,
                                               InheritMask)})


def get_class(name: str, custom_objects: dict[str, Any] | None = None) -> type[Layer]:
    """The layer class called ``name`` (``custom_objects`` first)."""
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    cls = _CLASSES.get(name)
    if cls is None:
        raise OpValueError(f"layers: unknown layer class {name!r}; known: {', '.join(sorted(_CLASSES))} "
                           f"(pass other classes in custom_objects)")
    return cls


def serialize(layer: Layer) -> dict[str, Any]:
    """``{"class_name": ..., "config": layer.get_config()}``."""
    if not isinstance(layer, Layer):
        raise OpTypeError(f"layers.serialize: expected a Layer, got {type(layer).__name__}")
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Layer:
    """A new (unbuilt) layer from :func:`serialize`'s dict."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise OpValueError(f"layers.deserialize: expected {{'class_name': ..., 'config': ...}}, got {config!r}")
    return get_class(config["class_name"], custom_objects).from_config(dict(config.get("config") or {}))


__all__ = [
    "Activation", "Add", "BatchNormalization", "Concatenate", "Dense", "Dropout", "Embedding", "ExpandDims",
    "Flatten", "Gather", "Input", "Layer", "LayerNormalization", "RepeatVector", "Reshape", "deserialize",
    "get_class", "reset_names", "serialize", "unique_name",
    *(cls.__name__ for cls in _IMAGE_LAYERS),
    # sequences
    "Attention", "Bidirectional", "GRU", "InheritMask", "LSTM", "MultiHeadAttention", "SimpleRNN",
]
