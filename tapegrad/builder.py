"""The builder facade of the seeds: ``nn = NeuralNetworks()``, ``g = nn.gradient()``,
``K = nn.backend()``. Thin: it forwards to the packages and applies ``nn``'s dtype."""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any, Callable

import numpy as np

from . import _dtypes
from .autodiff import state as _state
from .autodiff.tape import GradientTape
from .autodiff.variable import Variable, wrap
from .backend import Backend
from .errors import OpTypeError

_ops = None


def _ops_module() -> Any:
    global _ops
    if _ops is None:
        _ops = importlib.import_module("tapegrad.ops")
    return _ops


def _float_dtype(dtype: Any) -> np.dtype:
    dt = _dtypes.as_dtype(dtype, "NeuralNetworks")
    if dt.kind != "f":
        raise OpTypeError(f"NeuralNetworks: dtype must be a float dtype, got {dt}")
    return dt


class NeuralNetworks:
    """Entry point of the seed API: ``nn = NeuralNetworks(dtype="float32")``."""

    def __init__(self, dtype: Any = "float32") -> None:
        self.dtype = _float_dtype(dtype)
        self._gradient = Gradient(self)
        self._backend = Backend(self)

    @property
    def gradient(self) -> Gradient:
        """The builder of Variables, tapes, Functions and ops (``g``). ``nn.gradient()``
        and ``nn.gradient`` are the same object, as ``$nn->gradient()`` and
        ``$nn->gradient`` are in Rindow."""
        return self._gradient

    @property
    def backend(self) -> Backend:
        """NumPy helpers for user code (``K``): ``nn.backend()`` or ``nn.backend``."""
        return self._backend

    def device_type(self) -> str:
        """Where the computations run: always ``"CPU"`` (NumPy)."""
        return "CPU"

    def with_(self, tape: GradientTape, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` inside ``tape`` and return its result (Rindow's ``$nn->with``)."""
        with tape:
            return fn()

    # Builders of the neural-network package: nn.layers.Dense(...), nn.losses.X(), ...
    @property
    def layers(self) -> ModuleBuilder:
        return ModuleBuilder(self, "tapegrad.nn.layers", pass_dtype=True)

    @property
    def losses(self) -> ModuleBuilder:
        return ModuleBuilder(self, "tapegrad.nn.losses")

    @property
    def optimizers(self) -> ModuleBuilder:
        return ModuleBuilder(self, "tapegrad.nn.optimizers")

    @property
    def metrics(self) -> ModuleBuilder:
        return ModuleBuilder(self, "tapegrad.nn.metrics")

    @property
    def data(self) -> ModuleBuilder:
        return ModuleBuilder(self, "tapegrad.nn.data")

    @property
    def datasets(self) -> ModuleBuilder:
        return ModuleBuilder(self, "tapegrad.nn.datasets")

    @property
    def models(self) -> ModuleBuilder:
        return ModuleBuilder(self, "tapegrad.nn.models", pass_dtype=True)


@functools.lru_cache(maxsize=256)
def _signature_with_dtype(cls: type, dtype: np.dtype) -> inspect.Signature | None:
    """The class's signature with ``dtype`` defaulting to the builder's dtype."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return None
    param = signature.parameters.get("dtype")
    if param is None:
        return signature
    return signature.replace(parameters=[p.replace(default=dtype.name) if p is param else p
                                         for p in signature.parameters.values()])


class ModuleBuilder:
    """``nn.layers`` and friends: attribute access gives the module's classes; with
    ``pass_dtype`` the constructors get ``dtype=nn.dtype`` unless it is given. Calling the
    builder returns it, so Rindow's ``$nn->layers()->Dense(...)`` reads
    ``nn.layers().Dense(...)``."""

    def __init__(self, nn: NeuralNetworks, module: str, pass_dtype: bool = False) -> None:
        self._nn = nn
        self._module = module
        self._pass_dtype = pass_dtype

    def __call__(self) -> ModuleBuilder:
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        target = getattr(importlib.import_module(self._module), name)
        if not (self._pass_dtype and isinstance(target, type)):
            return target
        dtype = self._nn.dtype

        def build(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("dtype", dtype)
            return target(*args, **kwargs)

        build.__name__ = build.__qualname__ = name
        build.__module__ = target.__module__
        build.__doc__ = target.__doc__
        build.__signature__ = _signature_with_dtype(target, dtype)  # help() and IDEs: the real parameters
        return build

    def __dir__(self) -> list[str]:
        return list(getattr(importlib.import_module(self._module), "__all__", []))


class Gradient:
    """``g``: Variable, GradientTape and every op of :mod:`tapegrad.ops`, in ``nn``'s dtype.
    ``g()`` returns ``g``; Rindow's helpers ``get``, ``ndarray``, ``constant``, ``modules``
    and ``ArraySpec`` (:class:`~tapegrad.TensorSpec`) are here too."""

    def __init__(self, nn: NeuralNetworks) -> None:
        self._nn = nn
        self.GradientTape = GradientTape

    def __call__(self) -> Gradient:
        return self

    def Variable(self, value: Any, *, name: str | None = None, trainable: bool = True,  # noqa: N802
                 dtype: Any = None, unbackpropagatable: bool = False) -> Variable:
        """A Variable; Python numbers and lists take ``nn``'s float dtype.
        ``unbackpropagatable=True`` (Rindow) makes a constant: no gradient reaches it."""
        if unbackpropagatable:
            trainable = False
        if dtype is None and not isinstance(value, (np.ndarray, np.generic, Variable)):
            arr = _dtypes.to_array(value, None, self._nn.dtype, "Variable", "value")
            return Variable(arr, name=name, trainable=trainable)
        return Variable(value, name=name, trainable=trainable, dtype=dtype)

    def constant(self, value: Any, dtype: Any = None) -> np.ndarray:
        """A NumPy array of ``value`` (``nn``'s float dtype for Python numbers and lists)."""
        dt = None if dtype is None else _dtypes.as_dtype(dtype, "constant")
        return np.array(_dtypes.to_array(value, dt, self._nn.dtype, "constant", "value"), copy=True)

    def ndarray(self, x: Any) -> np.ndarray:
        """The NumPy array of a Variable (an array is returned as it is)."""
        return x.value() if isinstance(x, Variable) else np.asarray(x)

    def get(self, x: Any, offset: Any, count: Any = None) -> Any:
        """Rindow's ``get``: ``x[offset]`` when ``count`` is None or 0, else the ``count``
        items from ``offset`` (a negative count stops ``-count - 1`` items before the end).
        ``x`` is a Variable, an array, or a shape (a tuple or a Variable from ``g.shape``);
        ``offset`` and ``count`` may be 0-d Variables."""
        offset = _index(offset, "get", "offset")
        count = 0 if count is None else _index(count, "get", "count")
        if count < 0:
            count = len(x) + count + 1
        key = offset if count == 0 else slice(offset, offset + count)
        if isinstance(x, Variable) and x.dtype.kind in "iub" and not _traced(x):
            # a shape (g.shape gives a constant, also in a compiled Function) or indices: read
            # now, so that the result can size a slice in a compiled Function too
            return wrap(np.array(x.value()[key]))
        return x[key]

    def modules(self, modules: Any = None, name: str | None = None) -> Any:
        """A list of layers and models that a model owns (Rindow's ``Modules``): ``add(m)``,
        indexing, ``len``, iteration, ``variables()``, ``trainable_variables()``."""
        from .nn.modules import Modules

        return Modules(modules, name=name)

    def zeros(self, shape: Any, dtype: Any = None) -> Variable:
        return _ops_module().zeros(shape, self._nn.dtype if dtype is None else dtype)

    def ones(self, shape: Any, dtype: Any = None) -> Variable:
        return _ops_module().ones(shape, self._nn.dtype if dtype is None else dtype)

    def __getattr__(self, name: str) -> Any:
        ops = _ops_module()
        if name in ops.__all__:
            return getattr(ops, name)
        import tapegrad

        if name in ("grad", "value_and_grad", "jacobian", "hessian", "gradcheck", "custom_gradient", "Function",
                    "TensorSpec", "draw", "linalg"):
            return getattr(tapegrad, name)
        if name == "ArraySpec":  # Rindow's name of TensorSpec
            return tapegrad.TensorSpec
        raise AttributeError(f"the gradient builder has no op {name!r}")


def _traced(x: Variable) -> bool:
    """Whether ``x`` is a value of the compiled Function being traced (not known yet)."""
    tracer = _state.tracer()
    return tracer is not None and tracer.is_traced(x)


def _index(value: Any, fn: str, arg: str) -> int:
    if isinstance(value, Variable):
        value = value.value()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, np.ndarray)) \
            or getattr(value, "dtype", np.dtype(int)).kind not in "iu":
        raise OpTypeError(f"{fn}: {arg} must be an int, got {value!r}")
    return int(value)
