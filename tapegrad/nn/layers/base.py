"""Layer: the base of every layer and model.

A layer builds its weights lazily, from the shape of its first input (without the
batch axis), or from ``input_shape`` when given. After that an input of another
shape is an error that names the layer and both shapes.

Subclasses implement:

* ``build(input_shape)``: create weights with :meth:`add_weight`;
* ``call(inputs, training=None)``: the forward computation with tapegrad ops;
* ``get_config()``: the constructor arguments, JSON-serialisable (call super's);
* optionally ``compute_output_shape(input_shape)``.

Multi-input layers receive a list of inputs and a list of shapes. Convolution,
recurrent and attention layers fit the same contract: they only add weights in
``build`` and ops in ``call``; a layer that needs extra call arguments (masks,
states) declares them as keyword arguments of ``call``.
"""

from __future__ import annotations

import itertools
import re
import threading
from typing import Any, Callable

import numpy as np

from ... import _dtypes
from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError
from .. import hyperparams

_name_counters: dict[str, itertools.count] = {}


class _Guard(threading.local):
    """Per thread: the limits of a model file being rebuilt (``active`` has
    ``layer(layer)`` and ``weight(layer, name, shape, dtype)``, which raise when the
    file asks for more than it may), or None. Set by :mod:`tapegrad.nn.models.saving`."""

    active: Any = None


rebuild_guard = _Guard()


def unique_name(base: str) -> str:
    """Rindow/Keras default names: dense, dense_1, dense_2, ..."""
    counter = _name_counters.setdefault(base, itertools.count())
    n = next(counter)
    return base if n == 0 else f"{base}_{n}"


def reset_names() -> None:
    """Restart default layer names (dense, dense_1, ...) from the beginning."""
    _name_counters.clear()


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


Shape = tuple  # a shape without the batch axis; entries may be None (free)


def _shape_of(x: Any) -> tuple[int, ...]:
    if isinstance(x, Variable):
        return x.shape
    return np.shape(x)


class Layer:
    """Base class of layers (and models). See the module docstring for the contract."""

    def __init__(
        self,
        *,
        name: str | None = None,
        input_shape: Any = None,
        dtype: Any = None,
        trainable: bool = True,
    ) -> None:
        if name is not None and not isinstance(name, str):
            raise OpTypeError(f"{type(self).__name__}: name must be a string, got {type(name).__name__} "
                              f"{hyperparams.show(name)}")
        self.name = name if name is not None else unique_name(snake_case(type(self).__name__))
        owner = f"{type(self).__name__} {self.name!r}"
        self.dtype = _dtypes.DEFAULT_FLOAT if dtype is None else _dtypes.as_dtype(dtype, owner)
        self.input_shape: Any = None if input_shape is None else _as_shape(input_shape, owner)
        self.output_shape: Any = None
        self.built = False
        self._trainable = hyperparams.flag(owner, "trainable", trainable)
        self._weights: list[Variable] = []
        self._last_shape: tuple | None = None  # the full shape of the last checked input
        guard = rebuild_guard.active
        if guard is not None:
            guard.layer(self)

    # -- weights ----------------------------------------------------------------------
    def add_weight(
        self,
        name: str,
        shape: Any,
        initializer: Any = "zeros",
        trainable: bool = True,
        dtype: Any = None,
    ) -> Variable:
        """Create a weight Variable owned by this layer."""
        from .. import initializers

        shape = tuple(int(n) for n in shape)
        dt = self.dtype if dtype is None else _dtypes.as_dtype(dtype, self.name)
        guard = rebuild_guard.active
        if guard is not None:
            guard.weight(self, name, shape, dt)
        value = initializers.get(initializer)(shape, dt)
        var = Variable(np.asarray(value, dtype=dt), name=f"{self.name}/{name}", trainable=trainable)
        self._weights.append(var)
        return var

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, flag: bool) -> None:
        self._trainable = bool(flag)

    def variables(self) -> list[Variable]:
        """Every weight of this layer (trainable and not), in creation order."""
        return list(self._weights)

    def trainable_variables(self) -> list[Variable]:
        return [v for v in self._weights if v.trainable] if self._trainable else []

    def non_trainable_variables(self) -> list[Variable]:
        return [v for v in self.variables() if v not in self.trainable_variables()]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights' values."""
        return [v.value().copy() for v in self.variables()]

    def set_weights(self, weights: list[Any]) -> None:
        """Assign values to the weights, in the order of :meth:`get_weights`."""
        variables = self.variables()
        if len(weights) != len(variables):
            raise OpValueError(
                f"{self.name}: set_weights got {len(weights)} arrays, but the layer has {len(variables)} weights"
                + ("" if self.built else " (it is not built yet: call it once, or give input_shape)")
            )
        arrays = []
        for var, value in zip(variables, weights):
            arr = np.asarray(value.value() if isinstance(value, Variable) else value)
            if arr.shape != var.shape:
                raise OpValueError(f"{self.name}: weight {var.name} has shape {var.shape}, got {arr.shape}")
            arrays.append(arr.astype(var.dtype, copy=False))
        # Every array is checked before any is assigned: a failed call changes no weight.
        for var, arr in zip(variables, arrays):
            var.assign(arr)

    def count_params(self) -> int:
        return int(sum(v.size for v in self.variables()))

    # -- building and calling ---------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        """Create the weights for inputs of ``input_shape`` (batch axis excluded)."""

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement call()")

    def compute_output_shape(self, input_shape: Any) -> Any:
        return None  # unknown until the first call

    def __call__(self, inputs: Any, training: bool | None = None, **kwargs: Any) -> Any:
        # Fast path: a single input of the sample shape seen last time (the common case of a
        # training loop) skips the shape check.
        if inputs.__class__ is Variable:
            full = inputs._value.shape
            if full == self._last_shape:
                return self.call(inputs, training=training, **kwargs)
        else:
            full = None
        shape = self._input_shape_of(inputs)
        if not self.built:
            if self.input_shape is not None:
                self._check_shape(self.input_shape, shape)
            self.input_shape = shape if self.input_shape is None else self.input_shape
            self.build(self.input_shape)
            self.built = True
        else:
            self._check_shape(self.input_shape, shape)
        outputs = self.call(inputs, training=training, **kwargs)
        if self.output_shape is None:
            self.output_shape = _output_shape(outputs)
        self._last_shape = full  # checked: the next call with this shape goes straight to call()
        return outputs

    forward = __call__

    def _input_shape_of(self, inputs: Any) -> Any:
        if isinstance(inputs, (list, tuple)):
            return [tuple(_shape_of(x)[1:]) for x in inputs]
        shape = _shape_of(inputs)
        if len(shape) == 0:
            raise OpValueError(f"{self.name}: inputs must have a batch axis, got a scalar")
        return tuple(shape[1:])

    def _check_shape(self, expected: Any, got: Any) -> None:
        if isinstance(expected, list) != isinstance(got, list) or not _compatible(expected, got):
            raise OpValueError(
                f"{self.name}: expected inputs of shape {_show(expected)} (batch axis excluded), got {_show(got)}"
            )

    # -- configuration ----------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as JSON-serialisable values."""
        config: dict[str, Any] = {"name": self.name, "dtype": str(self.dtype), "trainable": self._trainable}
        if self.input_shape is not None:
            config["input_shape"] = _jsonable_shape(self.input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


def _as_shape(shape: Any, owner: str = "Layer") -> Any:
    """A declared input shape (batch axis excluded), or a list of them for several inputs."""
    if isinstance(shape, np.ndarray):
        shape = shape.tolist()
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple, np.ndarray)):
        if len(shape) > hyperparams.MAX_INPUTS:
            raise OpValueError(f"{owner}: input_shape lists {len(shape)} inputs, more than {hyperparams.MAX_INPUTS}")
        return [hyperparams.shape(owner, f"input_shape[{i}]", s.tolist() if isinstance(s, np.ndarray) else s)
                for i, s in enumerate(shape)]
    return hyperparams.shape(owner, "input_shape", shape)


def _compatible(expected: Any, got: Any) -> bool:
    if isinstance(expected, list):
        return len(expected) == len(got) and all(_compatible(e, s) for e, s in zip(expected, got))
    return len(expected) == len(got) and all(e is None or e == s for e, s in zip(expected, got))


def _show(shape: Any) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_show(s) for s in shape) + "]"
    return str(tuple(shape))


def _jsonable_shape(shape: Any) -> Any:
    if isinstance(shape, list):
        return [_jsonable_shape(s) for s in shape]
    return list(shape)


def _output_shape(outputs: Any) -> Any:
    if isinstance(outputs, (list, tuple)):
        return [tuple(_shape_of(o)[1:]) for o in outputs]
    return tuple(_shape_of(outputs)[1:])


LayerFactory = Callable[..., Layer]
