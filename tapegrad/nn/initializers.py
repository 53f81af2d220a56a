"""Weight initializers: ``fn(shape, dtype) -> ndarray``.

Names, classes and defaults follow Keras 3:

====================  ===========================  ==========================================
name                  class                        values
====================  ===========================  ==========================================
``glorot_uniform``    ``GlorotUniform(seed)``      U(-l, l), l = sqrt(6 / (fan_in + fan_out))
``glorot_normal``     ``GlorotNormal(seed)``       truncated normal (at 2 sd),
                                                   sd = sqrt(2 / (fan_in + fan_out)) / .8796
``he_uniform``        ``HeUniform(seed)``          U(-l, l), l = sqrt(6 / fan_in)
``he_normal``         ``HeNormal(seed)``           truncated normal, sd = sqrt(2 / fan_in) / .8796
``lecun_uniform``     ``LecunUniform(seed)``       U(-l, l), l = sqrt(3 / fan_in)
``lecun_normal``      ``LecunNormal(seed)``        truncated normal, sd = sqrt(1 / fan_in) / .8796
``random_uniform``    ``RandomUniform(minval=-0.05, maxval=0.05, seed)``  (alias ``uniform``)
``random_normal``     ``RandomNormal(mean=0.0, stddev=0.05, seed)``      (alias ``normal``)
``truncated_normal``  ``TruncatedNormal(mean=0.0, stddev=0.05, seed)``   redrawn outside 2 sd
``orthogonal``        ``Orthogonal(gain=1.0, seed)``  an orthogonal matrix (QR of a normal one)
``zeros``, ``ones``   ``Zeros()``, ``Ones()``      ``Constant(value)`` for any value
====================  ===========================  ==========================================

Fans (Keras rules): a vector has fan_in = fan_out = its length; a matrix
``(fan_in, fan_out)``; a convolution kernel ``(*receptive_field, in, out)`` has
fan_in = in x receptive field and fan_out = out x receptive field.

Randomness: an initializer built with ``seed=`` draws from its own
``np.random.default_rng(seed)`` on every call, so it gives the same values each
time (as in Keras 3). Without a seed it draws from the library generator
``tapegrad.nn.random.generator()`` (see ``tapegrad.set_seed``).

``get`` accepts a name (snake case, or the class name), an :class:`Initializer`,
a config dict ``{"class_name": ..., "config": {...}}`` (what :func:`serialize`
returns), or any callable ``(shape, dtype) -> array``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .. import _dtypes
from ..errors import OpTypeError, OpValueError
from . import random as _random

InitializerFn = Callable[[tuple, np.dtype], np.ndarray]

# The standard deviation of a standard normal truncated to [-2, 2].
_TRUNCATED_STD = 0.87962566103423978


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape``, by Keras' rules."""
    shape = tuple(int(n) for n in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _as_dtype(dtype: Any) -> np.dtype:
    return _dtypes.DEFAULT_FLOAT if dtype is None else _dtypes.as_dtype(dtype, "initializer")


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    try:
        out = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise OpTypeError(f"initializer: shape must be a sequence of ints, got {shape!r}") from None
    if any(n < 0 for n in out):
        raise OpValueError(f"initializer: shape {out} has a negative dimension")
    return out


class Initializer:
    """Base class: ``init(shape, dtype=float32) -> ndarray``; ``get_config()``."""

    def __call__(self, shape: Any, dtype: Any = None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class RandomInitializer(Initializer):
    """An initializer that draws random numbers: from ``default_rng(seed)`` if it has a seed
    (the same values on every call), else from ``tapegrad.nn.random.generator()``."""

    def __init__(self, seed: int | None = None) -> None:
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise OpTypeError(f"{type(self).__name__}: seed must be an int or None, got {type(seed).__name__}")
        self.seed = None if seed is None else int(seed)

    def _rng(self) -> np.random.Generator:
        return _random.generator() if self.seed is None else np.random.default_rng(self.seed)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], mean: float, stddev: float) -> np.ndarray:
    """Normal values redrawn until they lie within two standard deviations of the mean."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * stddev + mean


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape: Any, dtype: Any = None) -> np.ndarray:
        return np.zeros(_shape(shape), dtype=_as_dtype(dtype))


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape: Any, dtype: Any = None) -> np.ndarray:
        return np.ones(_shape(shape), dtype=_as_dtype(dtype))


class Constant(Initializer):
    """Every element equal to ``value``."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = float(value)

    def __call__(self, shape: Any, dtype: Any = None) -> np.ndarray:
        return np.full(_shape(shape), self.value, dtype=_as_dtype(dtype))

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class RandomUniform(RandomInitializer):
    """Uniform in [minval, maxval) (Keras defaults -0.05, 0.05)."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape: Any, dtype: Any = None) -> np.ndarray:
        dt = _as_dtype(dtype)
        return self._rng().uniform(self.minval, self.maxval, _shape(shape)).astype(dt)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class RandomNormal(RandomInitializer):
    """Normal with ``mean`` and ``stddev`` (Keras defaults 0.0, 0.05)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape: Any, dtype: Any = None) -> np.ndarray:
        dt = _as_dtype(dtype)
        return (self._rng().standard_normal(_shape(shape)) * self.stddev + self.mean).astype(dt)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class TruncatedNormal(RandomNormal):
    """Normal with ``mean`` and ``stddev``, values beyond two standard deviations redrawn."""

    def __call__(self, shape: Any, dtype: Any = None) -> np.ndarray:
        dt = _as_dtype(dtype)
        return _truncated_normal(self._rng(), _shape(shape), self.mean, self.stddev).astype(dt)


class VarianceScaling(RandomInitializer):
    """Keras' VarianceScaling: variance ``scale / n`` with n = fan_in, fan_out or their mean
    (``mode``), drawn from a truncated normal, an untruncated normal or a uniform
    distribution (``distribution``)."""

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if scale <= 0:
            raise OpValueError(f"{type(self).__name__}: scale must be positive, got {scale}")
        if mode not in self._MODES:
            raise OpValueError(f"{type(self).__name__}: mode must be one of {self._MODES}, got {mode!r}")
        distribution = "truncated_normal" if distribution == "normal" else distribution
        if distribution not in self._DISTRIBUTIONS:
            raise OpValueError(
                f"{type(self).__name__}: distribution must be one of {self._DISTRIBUTIONS}, got {distribution!r}"
            )
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape: Any, dtype: Any = None) -> np.ndarray:
        shape, dt = _shape(shape), _as_dtype(dtype)
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            values = rng.uniform(-limit, limit, shape)
        elif self.distribution == "untruncated_normal":
            values = rng.standard_normal(shape) * math.sqrt(variance)
        else:
            values = _truncated_normal(rng, shape, 0.0, math.sqrt(variance) / _TRUNCATED_STD)
        return values.astype(dt)

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, **super().get_config()}


class _FixedVarianceScaling(VarianceScaling):
    """A VarianceScaling preset whose only argument is the seed."""

    _PRESET: tuple[float, str, str] = (1.0, "fan_in", "truncated_normal")

    def __init__(self, seed: int | None = None) -> None:
        scale, mode, distribution = self._PRESET
        super().__init__(scale, mode, distribution, seed)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


class GlorotUniform(_FixedVarianceScaling):
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) (Xavier uniform)."""

    _PRESET = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal with sd sqrt(2 / (fan_in + fan_out)) (before truncation)."""

    _PRESET = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """U(-l, l) with l = sqrt(6 / fan_in)."""

    _PRESET = (2.0, "fan_in", "uniform")


class HeNormal(_FixedVarianceScaling):
    """Truncated normal with sd sqrt(2 / fan_in) (before truncation)."""

    _PRESET = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """U(-l, l) with l = sqrt(3 / fan_in)."""

    _PRESET = (1.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal with sd sqrt(1 / fan_in) (before truncation)."""

    _PRESET = (1.0, "fan_in", "truncated_normal")


class Orthogonal(RandomInitializer):
    """A (semi-)orthogonal matrix times ``gain``: the Q of the QR decomposition of a normal
    matrix, signs fixed so that the distribution is uniform (Haar). A weight of rank > 2 is
    flattened to ``(prod(shape[:-1]), shape[-1])`` first, as in Keras."""

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        self.gain = float(gain)

    def __call__(self, shape: Any, dtype: Any = None) -> np.ndarray:
        shape, dt = _shape(shape), _as_dtype(dtype)
        if len(shape) < 2:
            raise OpValueError(f"Orthogonal: the shape must have at least 2 dimensions, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        d = np.diagonal(r)
        q = q * np.where(d < 0, -1.0, 1.0)
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dt)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain, **super().get_config()}


_CLASSES: dict[str, type[Initializer]] = {
    cls.__name__: cls
    for cls in (Zeros, Ones, Constant, RandomUniform, RandomNormal, TruncatedNormal, VarianceScaling,
                GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal, Orthogonal)
}
_NAMES: dict[str, type[Initializer]] = {
    "zeros": Zeros, "ones": Ones, "constant": Constant,
    "random_uniform": RandomUniform, "uniform": RandomUniform,
    "random_normal": RandomNormal, "normal": RandomNormal,
    "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "xavier_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "xavier_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal,
}


def get(identifier: Any) -> InitializerFn:
    """An initializer from a name, a class name, an Initializer, a config dict or a callable."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier) or _NAMES.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            known = ", ".join(sorted(_NAMES))
            raise OpValueError(f"initializers.get: unknown initializer {identifier!r}; known: {known}")
        return cls()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        cls = _CLASSES.get(name) if isinstance(name, str) else None
        if cls is None:
            raise OpValueError(f"initializers.get: unknown initializer config {identifier!r}")
        return cls.from_config(dict(identifier.get("config") or {}))
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise OpTypeError(
        f"initializers.get: expected a name, an Initializer, a config dict or a callable (shape, dtype) -> array, "
        f"got {type(identifier).__name__}"
    )


def serialize(initializer: Any) -> Any:
    """A JSON value for configs: names stay names; an Initializer becomes
    ``{"class_name": ..., "config": ...}``; another callable is named by ``__name__``."""
    if isinstance(initializer, str):
        get(initializer)  # validate
        return initializer
    if isinstance(initializer, Initializer):
        return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
    if isinstance(initializer, dict):
        return initializer
    name = getattr(initializer, "__name__", None)
    if not name:
        raise OpValueError(f"initializers.serialize: cannot name the initializer {initializer!r}")
    return name


def deserialize(config: Any) -> InitializerFn:
    """The inverse of :func:`serialize`."""
    return get(config)


# Function-style names, as in Keras (``initializers.glorot_uniform(seed=1)``).
zeros, ones, constant = Zeros, Ones, Constant
random_uniform, random_normal, truncated_normal = RandomUniform, RandomNormal, TruncatedNormal
glorot_uniform, glorot_normal, he_uniform, he_normal = GlorotUniform, GlorotNormal, HeUniform, HeNormal
lecun_uniform, lecun_normal, orthogonal, variance_scaling = LecunUniform, LecunNormal, Orthogonal, VarianceScaling

__all__ = [
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Initializer", "LecunNormal",
    "LecunUniform", "Ones", "Orthogonal", "RandomInitializer", "RandomNormal", "RandomUniform", "TruncatedNormal",
    "VarianceScaling", "Zeros", "compute_fans", "constant", "deserialize", "get", "glorot_normal",
    "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform", "ones", "orthogonal",
    "random_normal", "random_uniform", "serialize", "truncated_normal", "variance_scaling", "zeros",
]
