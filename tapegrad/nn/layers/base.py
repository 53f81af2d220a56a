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

import inspect
import itertools
import re
import threading
import weakref
from typing import Any, Callable

import numpy as np

from ... import _dtypes
from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError
from .. import hyperparams
from ._masks import pass_mask

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
    """Keras' default layer names: Dense -> dense, SimpleRNN -> simple_rnn,
    Conv2D -> conv2d, Conv2DTranspose -> conv2d_transpose."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[0-9A-Z])(?=[A-Z][a-z])", "_", name).lower()


Shape = tuple  # a shape without the batch axis; entries may be None (free)


def _shape_of(x: Any) -> tuple[int, ...]:
    if isinstance(x, Variable):
        return x.shape
    return np.shape(x)


class _ConstructorSignature:
    """``inspect.signature(SomeLayer)`` (and so ``help()`` and IDEs): the parameters of
    the class's ``__init__`` with its ``**kwargs`` replaced by the keyword parameters of the
    ``__init__`` it passes them to (the next one up the MRO, to Layer's ``name``,
    ``input_shape``, ``dtype`` and ``trainable``), instead of ``(*args, **kwargs)``."""

    def __get__(self, instance: Any, owner: type) -> inspect.Signature | None:
        if instance is not None:
            return None  # an instance's signature is that of __call__
        signature = _signatures.get(owner)
        if signature is None:
            signature = _signatures[owner] = _merged_signature(owner)
        return signature


_signatures: weakref.WeakKeyDictionary[type, inspect.Signature] = weakref.WeakKeyDictionary()


def _merged_signature(cls: type) -> inspect.Signature:
    mro = [c for c in cls.__mro__ if "__init__" in vars(c) and c is not object]
    params: list[inspect.Parameter] = []
    for depth, klass in enumerate(mro):
        own = list(inspect.signature(klass.__init__).parameters.values())[1:]  # self
        if depth:  # reached through **kwargs: only its keyword parameters, not given above
            taken = {p.name for p in params}
            own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind != inspect.Parameter.VAR_KEYWORD else p
                   for p in own if p.kind not in (inspect.Parameter.VAR_POSITIONAL,) and p.name not in taken]
        forwards = own and own[-1].kind == inspect.Parameter.VAR_KEYWORD
        params.extend(own[:-1] if forwards else own)
        if not forwards:
            break
    else:
        params.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    return inspect.Signature(params)


class Layer:
    """Base class of layers (and models). See the module docstring for the contract."""

    __signature__ = _ConstructorSignature()
    _expected_input = "a float array"  # said when the input holds strings or other non-numbers
    _shape_inspection = True  # set_shape_inspection(False) stops checking the shapes of later calls
    # True for a layer that keeps the time axis: its output carries its input's sequence
    # mask (see _masks.py).
    supports_masking = False

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
                outputs = self.call(inputs, training=training, **kwargs)
                return pass_mask(inputs, outputs) if self.supports_masking else outputs
        else:
            full = None
        shape = self._input_shape_of(inputs)
        if not self.built:
            declared = self.input_shape
            if declared is not None:
                self._check_shape(declared, shape)
            self.input_shape = shape if declared is None else declared
            try:
                self.build(self.input_shape)
            except BaseException:
                self.input_shape = declared  # a rejected input leaves the layer as it was
                raise
            self.built = True
        elif self._shape_inspection:
            self._check_shape(self.input_shape, shape)
        outputs = self.call(inputs, training=training, **kwargs)
        if self.output_shape is None:
            self.output_shape = _output_shape(outputs)
        self._last_shape = full  # checked: the next call with this shape goes straight to call()
        return pass_mask(inputs, outputs) if self.supports_masking else outputs

    forward = __call__

    def _input_shape_of(self, inputs: Any) -> Any:
        # Also where inputs of another dtype kind are refused: it runs on the first call and
        # whenever the input shape changes, never on the fast path above.
        if isinstance(inputs, (list, tuple)):
            for i, x in enumerate(inputs):
                self._check_input_dtype(x, f"input #{i}")
            return [tuple(_shape_of(x)[1:]) for x in inputs]
        self._check_input_dtype(inputs, "input")
        shape = _shape_of(inputs)
        if len(shape) == 0:
            raise OpValueError(f"{self.name}: inputs must have a batch axis, got a scalar")
        return tuple(shape[1:])

    def _check_input_dtype(self, x: Any, which: str) -> None:
        dtype = getattr(x, "dtype", None)
        if dtype is None or dtype.kind in "biuf":
            return
        what = _KIND_NAMES.get(dtype.kind, "not numbers")
        raise OpTypeError(f"{type(self).__name__}: {which} has dtype {dtype} ({what}) of shape {_shape_of(x)} in "
                          f"layer {self.name!r}; expected {self._expected_input}")

    def _check_shape(self, expected: Any, got: Any) -> None:
        if isinstance(expected, list) != isinstance(got, list) or not _compatible(expected, got):
            raise OpValueError(
                f"{self.name}: expected inputs of shape {_show(expected)} (batch axis excluded), got {_show(got)}"
            )

    def set_shape_inspection(self, enable: bool) -> None:
        """Whether a built layer checks that each input has the shape it was built for (on
        by default). Off, the layer and the layers it holds take other shapes, e.g. one
        token at a time for greedy decoding (Rindow's ``setShapeInspection``)."""
        for layer in _self_and_sublayers(self):
            layer._shape_inspection = bool(enable)

    def shape_inspection(self) -> bool:
        """Whether the input shapes are checked (see :meth:`set_shape_inspection`)."""
        return self._shape_inspection

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


def _self_and_sublayers(layer: Layer) -> list[Layer]:
    """``layer`` and the layers held by its attributes (in lists, tuples and dicts too), to any depth."""
    found: list[Layer] = []
    seen: set[int] = set()

    def visit(obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, Layer):
            found.append(obj)
            for value in list(vars(obj).values()):
                if isinstance(value, (Layer, list, tuple, dict)):
                    visit(value)
        elif isinstance(obj, (list, tuple, dict)):
            for value in list(obj.values() if isinstance(obj, dict) else obj):
                if isinstance(value, (Layer, list, tuple, dict)):
                    visit(value)

    visit(layer)
    return found


_KIND_NAMES = {"U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers", "M": "dates",
               "m": "time deltas", "V": "raw records"}


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
