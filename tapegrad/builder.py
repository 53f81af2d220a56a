"""The builder facade of the seeds: ``nn = NeuralNetworks()``, ``g = nn.gradient()``,
``K = nn.backend()``. Thin: it forwards to the packages and applies ``nn``'s dtype."""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any, Callable

import numpy as np

from . import _dtypes
from .autodiff.tape import GradientTape
from .autodiff.variable import Variable
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

    def gradient(self) -> Gradient:
        """The builder of Variables, tapes, Functions and ops (``g``)."""
        return self._gradient

    def backend(self) -> Backend:
        """NumPy helpers for user code (``K``)."""
        return self._backend

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
    """``g``: Variable, GradientTape and every op of :mod:`tapegrad.ops`, in ``nn``'s dtype."""

    def __init__(self, nn: NeuralNetworks) -> None:
        self._nn = nn
        self.GradientTape = GradientTape

    def Variable(self, value: Any, *, name: str | None = None, trainable: bool = True, dtype: Any = None) -> Variable:  # noqa: N802
        """A Variable; Python numbers and lists take ``nn``'s float dtype."""
        if dtype is None and not isinstance(value, (np.ndarray, np.generic, Variable)):
            arr = _dtypes.to_array(value, None, self._nn.dtype, "Variable", "value")
            return Variable(arr, name=name, trainable=trainable)
        return Variable(value, name=name, trainable=trainable, dtype=dtype)

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
                    "TensorSpec", "linalg"):
            return getattr(tapegrad, name)
        raise AttributeError(f"the gradient builder has no op {name!r}")


class Backend:
    """``K``: NumPy helpers that take Variables or arrays and return NumPy values."""

    def __init__(self, nn: NeuralNetworks) -> None:
        self._nn = nn

    @property
    def dtype(self) -> np.dtype:
        return self._nn.dtype

    @staticmethod
    def _v(x: Any) -> Any:
        return x.value() if isinstance(x, Variable) else x

    def scalar(self, x: Any) -> float | int | bool:
        """A size-1 array or Variable as a Python number."""
        value = np.asarray(self._v(x))
        if value.size != 1:
            raise OpTypeError(f"scalar: expected a single value, got shape {value.shape}")
        return value.reshape(()).item()

    def array(self, x: Any, dtype: Any = None) -> np.ndarray:
        """A new ndarray; Python numbers and lists take ``nn``'s float dtype."""
        x = self._v(x)
        dt = None if dtype is None else _dtypes.as_dtype(dtype, "array")
        return np.array(_dtypes.to_array(x, dt, self._nn.dtype, "array", "x"), copy=True)

    def zeros(self, shape: Any, dtype: Any = None) -> np.ndarray:
        return np.zeros(shape, dtype=self._nn.dtype if dtype is None else dtype)

    def ones(self, shape: Any, dtype: Any = None) -> np.ndarray:
        return np.ones(shape, dtype=self._nn.dtype if dtype is None else dtype)

    def zeros_like(self, x: Any) -> np.ndarray:
        return np.zeros_like(self._v(x))

    def ones_like(self, x: Any) -> np.ndarray:
        return np.ones_like(self._v(x))

    def fill(self, shape: Any, value: Any, dtype: Any = None) -> np.ndarray:
        return np.full(shape, value, dtype=self._nn.dtype if dtype is None else dtype)

    def cast(self, x: Any, dtype: Any) -> np.ndarray:
        return np.asarray(self._v(x)).astype(_dtypes.as_dtype(dtype, "cast"))

    def copy(self, x: Any) -> np.ndarray:
        return np.array(self._v(x), copy=True)

    def shape(self, x: Any) -> tuple[int, ...]:
        return tuple(np.shape(self._v(x)))

    def ndim(self, x: Any) -> int:
        return int(np.ndim(self._v(x)))

    def argmax(self, x: Any, axis: int | None = -1) -> np.ndarray:
        return np.argmax(self._v(x), axis=axis)

    def argmin(self, x: Any, axis: int | None = -1) -> np.ndarray:
        return np.argmin(self._v(x), axis=axis)

    def sum(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return np.sum(self._v(x), axis=axis, keepdims=keepdims)

    def mean(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return np.mean(self._v(x), axis=axis, keepdims=keepdims)

    def max(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return np.max(self._v(x), axis=axis, keepdims=keepdims)

    def min(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return np.min(self._v(x), axis=axis, keepdims=keepdims)

    def equal(self, x: Any, y: Any) -> np.ndarray:
        return np.equal(self._v(x), self._v(y))

    def onehot(self, x: Any, depth: int, dtype: Any = None) -> np.ndarray:
        idx = np.asarray(self._v(x))
        out = np.zeros(idx.shape + (int(depth),), dtype=self._nn.dtype if dtype is None else dtype)
        np.put_along_axis(out, idx[..., None].astype(np.intp), 1, axis=-1)
        return out

    one_hot = onehot

    def random_uniform(self, shape: Any, low: float = 0.0, high: float = 1.0, dtype: Any = None,
                       seed: int | None = None) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.uniform(low, high, shape).astype(self._nn.dtype if dtype is None else dtype)

    def random_normal(self, shape: Any, mean: float = 0.0, scale: float = 1.0, dtype: Any = None,
                      seed: int | None = None) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.normal(mean, scale, shape).astype(self._nn.dtype if dtype is None else dtype)

    def to_string(self, x: Any) -> str:
        from .format import to_string

        return to_string(x)

    def __getattr__(self, name: str) -> Any:
        # Anything else NumPy offers (K.sqrt, K.exp, K.dot, ...), on unwrapped values.
        fn = getattr(np, name, None)
        if fn is None or not callable(fn):
            raise AttributeError(f"the backend has no function {name!r}")

        def call(*args: Any, **kwargs: Any) -> Any:
            return fn(*[self._v(a) for a in args], **kwargs)

        return call

