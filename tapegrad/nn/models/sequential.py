"""Sequential: a plain stack of layers, each feeding the next.

``Sequential([Dense(64, input_shape=[784], activation="relu"), Dense(10)])`` or
``model.add(layer)``. The input shape comes from the first layer's ``input_shape`` or
from an ``Input`` layer (which is not listed among the layers, as in Keras); when it is
known the weights are created right away (``summary()``, ``save`` and ``get_weights``
work before training), else on the first call.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ...errors import OpTypeError, OpValueError
from ..layers.base import Layer
from .model import Model, _spec_from_shape

# Layers whose inputs are integer indices: their build input is int32 zeros.
_INDEX_INPUT_LAYERS = ("Embedding",)


def _is_input_layer(layer: Any) -> bool:
    return type(layer).__name__ in ("Input", "InputLayer")


class Sequential(Model):
    """A linear stack of layers."""

    def __init__(
        self,
        layers: Iterable[Layer] | None = None,
        *,
        name: str | None = None,
        input_shape: Any = None,
        dtype: Any = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        self._layers: list[Layer] = []
        self._declared_spec: Any = None
        if input_shape is not None:
            self._declared_spec = _spec_from_shape(list(input_shape) if not isinstance(input_shape, list)
                                                   else input_shape, self.dtype)
        if layers is not None:
            if isinstance(layers, Layer):
                raise OpTypeError("Sequential: pass a list of layers, e.g. Sequential([layer])")
            for layer in layers:
                self.add(layer)

    def add(self, layer: Layer) -> None:
        """Append a layer (or set the input shape with an ``Input`` layer)."""
        if _is_input_layer(layer):
            if self._layers:
                raise OpValueError(f"{self.name}: an Input layer must come first")
            shape = getattr(layer, "shape", None) or layer.input_shape
            if shape is None:
                raise OpValueError(f"{self.name}: the Input layer has no shape")
            self._declared_spec = _spec_from_shape(list(shape), getattr(layer, "dtype", self.dtype))
            return
        if not isinstance(layer, Layer):
            raise OpTypeError(f"{self.name}: add() expects a Layer, got {type(layer).__name__}")
        if layer is self:
            raise OpValueError(f"{self.name}: a model cannot contain itself")
        if not self._layers and self._declared_spec is None and layer.input_shape is not None:
            self._declared_spec = _spec_from_shape(layer.input_shape, self._input_dtype(layer))
        self._layers.append(layer)
        grown = self.built and isinstance(self.output_shape, tuple) and not isinstance(self._input_spec, list)
        previous = self.output_shape
        self.output_shape = None
        if grown:
            # Only the new layer is built, on the previous output shape: adding n layers
            # (or loading a file of n layers) costs n builds, not n^2 / 2.
            out = self._build_layer(layer, previous)
            if out is not None:
                self.output_shape = out
                return
        if self._declared_spec is not None or self._input_spec is not None:
            self.built = False
            self._build_from_spec(self._input_spec or self._declared_spec)

    def _input_dtype(self, layer: Layer) -> Any:
        """The dtype of the inputs a first layer takes: integer indices for an Embedding,
        what a nested Sequential takes, else the model's float dtype."""
        if isinstance(layer, Sequential):
            spec = layer._input_spec or layer._declared_spec
            if isinstance(spec, dict):
                return spec["dtype"]
            return self._input_dtype(layer._layers[0]) if layer._layers else self.dtype
        return "int32" if type(layer).__name__ in _INDEX_INPUT_LAYERS else self.dtype

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._layers:
            raise OpValueError(f"{self.name}: pop() on an empty Sequential")
        layer = self._layers.pop()
        self.output_shape = self._layers[-1].output_shape if self._layers else None
        return layer

    def _build_from_spec(self, spec: Any, trues_spec: Any = None) -> None:
        """Create the weights from the input spec through the layers' ``build`` and
        ``compute_output_shape`` (no computation on data, nothing large allocated); a
        layer that cannot tell its output shape makes the rest build by a forward pass
        on one sample of zeros."""
        if isinstance(spec, list) or self._build_layers(tuple(spec["shape"])) is None:
            super()._build_from_spec(spec, trues_spec)
            return
        self._input_spec = spec
        self._trues_spec = trues_spec
        self.input_shape = tuple(spec["shape"])
        self.output_shape = self._layers[-1].output_shape if self._layers else self.input_shape
        self.built = True

    def _build_layers(self, shape: tuple) -> tuple | None:
        for layer in self._layers:
            out = self._build_layer(layer, shape)
            if out is None:
                return None
            shape = out
        return shape

    @staticmethod
    def _build_layer(layer: Layer, shape: tuple) -> tuple | None:
        """Build ``layer`` (if it is not built) for inputs of ``shape`` and return its output
        shape, or None if it cannot tell without running on data."""
        if isinstance(layer, Sequential):
            out = layer._build_layers(shape)
            if out is None:
                return None
            layer._input_spec = {"shape": list(shape), "dtype": np.dtype(layer.dtype).name}
            layer.input_shape, layer.output_shape, layer.built = shape, out, True
            return out
        if isinstance(layer, Model):
            return None
        if not layer.built:
            if layer.input_shape is not None:
                layer._check_shape(layer.input_shape, shape)
            else:
                layer.input_shape = shape
            layer.build(layer.input_shape)
            layer.built = True
        else:
            layer._check_shape(layer.input_shape, shape)
        out = layer.compute_output_shape(shape)
        if out is None or isinstance(out, list):
            return None
        out = tuple(out)
        if layer.output_shape is None:
            layer.output_shape = out
        return out

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = inputs
        for layer in self._layers:
            x = layer(x, training)
        return x

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Sequential:
        """Rebuild from :meth:`get_config`; layer classes are looked up among tapegrad's
        layers and ``custom_objects`` (never imported by name)."""
        from ...io.container import ModelFileError
        from .saving import deserialize_layer

        config = dict(config)
        entries = config.pop("layers", [])
        if not isinstance(entries, list):
            raise OpTypeError(f"Sequential: 'layers' must be a list of layer configs, got {type(entries).__name__}")
        layers = []
        for i, entry in enumerate(entries):
            try:
                layers.append(deserialize_layer(entry, custom_objects, {"Sequential": Sequential}))
            except ModelFileError:
                raise
            except (ValueError, TypeError, LookupError, ArithmeticError) as exc:
                kind = entry.get("class_name") if isinstance(entry, dict) else None
                where = f"layers[{i}]" + (f" ({kind})" if isinstance(kind, str) else "")
                raise (OpTypeError if isinstance(exc, TypeError) else OpValueError)(f"{where}: {exc}") from exc
        return cls(layers, **config)

    @classmethod
    def _from_saved_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None,
                           dtype: Any) -> Sequential:
        return cls.from_config(config, custom_objects)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("input_shape", None)
        config["layers"] = [{"class_name": type(layer).__name__, "config": layer.get_config()}
                            for layer in self._layers]
        return config
