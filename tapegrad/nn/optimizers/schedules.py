"""Learning-rate schedules: callables of the step (Keras 3 semantics).

The schedules defined here are called with the number of updates the optimizer has
done so far (``optimizer.iterations`` before the update): the first update uses
``schedule(0)``, as in Keras. Any callable of the step works as a learning rate; a
user-defined one (a function, or a ``LearningRateSchedule`` subclass written by the
user) is called with the 1-based step number, as in Rindow, whose samples divide by
it (:func:`schedule_step`). The classes here add ``get_config``/``from_config`` so
that an optimizer using them can be saved (see :func:`serialize` and :func:`deserialize`).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ...errors import OpTypeError, OpValueError
from .. import hyperparams

__all__ = [
    "CosineDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "deserialize",
    "serialize",
]


class LearningRateSchedule:
    """Base class: ``schedule(step) -> float``; subclasses implement ``__call__`` and
    ``get_config`` (the constructor arguments, JSON values)."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(step)")

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement get_config()")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def schedule_step(schedule: Any, step: int) -> int:
    """The step ``schedule`` is called with for the update after ``step`` updates: ``step``
    for the schedules of this module (Keras), ``step + 1`` for user-defined ones (Rindow)."""
    return step if type(schedule).__module__ == __name__ else step + 1


def _positive(owner: str, arg: str, value: Any) -> float:
    return hyperparams.real(owner, arg, value, low=0.0, low_open=True)


def _rate(owner: str, arg: str, value: Any) -> float:
    return hyperparams.real(owner, arg, value, low=0.0)


def _name(cls: type, name: Any) -> str:
    if name is None:
        return cls.__name__
    if not isinstance(name, str):
        raise OpTypeError(f"{cls.__name__}: name must be a string, got {type(name).__name__} {hyperparams.show(name)}")
    return name


class _StepDecay(LearningRateSchedule):
    """A rate that decays with ``p = step / decay_steps`` (floored with ``staircase``)."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str | None = None,
    ) -> None:
        name = _name(type(self), name)
        self.initial_learning_rate = _rate(name, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _positive(name, "decay_steps", decay_steps)
        self.decay_rate = _positive(name, "decay_rate", decay_rate)
        self.staircase = hyperparams.flag(name, "staircase", staircase)
        self.name = name

    def __call__(self, step: int) -> float:
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self._rate(p)

    def _rate(self, p: float) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": _int_if_whole(self.decay_steps),
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class ExponentialDecay(_StepDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with ``staircase``
    the exponent is floored, so the rate drops every ``decay_steps`` steps."""

    def _rate(self, p: float) -> float:
        try:
            return self.initial_learning_rate * self.decay_rate**p
        except OverflowError:  # decay_rate > 1 after very many steps
            return math.inf


class InverseTimeDecay(_StepDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``; with
    ``staircase`` the quotient ``step / decay_steps`` is floored."""

    def _rate(self, p: float) -> float:
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, and ``values[-1]`` after the last
    boundary (Keras semantics); ``len(values) == len(boundaries) + 1``."""

    def __init__(self, boundaries: list[int], values: list[float], name: str = "PiecewiseConstantDecay") -> None:
        name = _name(type(self), name)
        for arg, seq in (("boundaries", boundaries), ("values", values)):
            if not isinstance(seq, (list, tuple)):
                raise OpTypeError(f"{name}: {arg} must be a list of numbers, got {hyperparams.show(seq)}")
        boundaries = [_int_if_whole(hyperparams.real(name, "each boundary", b)) for b in boundaries]
        values = [_rate(name, "each value", v) for v in values]
        if len(values) != len(boundaries) + 1:
            raise OpValueError(
                f"{name}: values must have one more element than boundaries, got {len(values)} values "
                f"and {len(boundaries)} boundaries"
            )
        if any(b2 <= b1 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise OpValueError(f"{name}: boundaries must be increasing, got {boundaries}")
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step: int) -> float:
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": list(self.boundaries), "values": list(self.values), "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay (Loshchilov & Hutter), optionally after a linear warmup (Keras 3).

    Without warmup: ``initial_learning_rate * ((1 - alpha) * c + alpha)`` with
    ``c = 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps))``. With
    ``warmup_steps`` and ``warmup_target``, the rate first rises linearly from
    ``initial_learning_rate`` to ``warmup_target`` and then decays from there.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        name: str = "CosineDecay",
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ) -> None:
        name = _name(type(self), name)
        self.initial_learning_rate = _rate(name, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _positive(name, "decay_steps", decay_steps)
        self.alpha = hyperparams.real(name, "alpha", alpha, low=0.0, high=1.0)
        self.name = name
        self.warmup_target = None if warmup_target is None else _rate(name, "warmup_target", warmup_target)
        self.warmup_steps = hyperparams.integer(name, "warmup_steps", warmup_steps, low=0, high=2**62)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None or self.warmup_steps == 0:
            start = self.initial_learning_rate
        elif step < self.warmup_steps:
            frac = step / self.warmup_steps
            return self.initial_learning_rate + frac * (self.warmup_target - self.initial_learning_rate)
        else:
            start = self.warmup_target
            step = step - self.warmup_steps
        frac = min(step, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * frac))
        return start * ((1.0 - self.alpha) * cosine + self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": _int_if_whole(self.decay_steps),
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


def _int_if_whole(x: float) -> Any:
    return int(x) if float(x).is_integer() else x


_SCHEDULES: dict[str, type[LearningRateSchedule]] = {
    cls.__name__: cls for cls in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, CosineDecay)
}


def serialize(schedule: Callable[[int], float]) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for a schedule (JSON values).

    A plain function is stored by name (``{"class_name": "function", "config":
    {"name": ...}}``); loading it needs ``custom_objects={name: fn}``.
    """
    if isinstance(schedule, LearningRateSchedule):
        return {"class_name": type(schedule).__name__, "config": schedule.get_config()}
    name = getattr(schedule, "__name__", None)
    if not callable(schedule) or name is None or name == "<lambda>":
        raise OpTypeError(
            f"cannot serialize the learning rate {schedule!r}: use a LearningRateSchedule subclass "
            "(with get_config) or a named function (loaded back through custom_objects)"
        )
    return {"class_name": "function", "config": {"name": name}}


def deserialize(
    config: dict[str, Any], custom_objects: dict[str, Any] | None = None
) -> Callable[[int], float]:
    """Rebuild a schedule from :func:`serialize`'s output."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise OpValueError(f"a schedule config must be a dict with 'class_name' and 'config', got {config!r}")
    custom_objects = custom_objects or {}
    class_name = config["class_name"]
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise OpValueError(f"a schedule's config must be a dict, got {hyperparams.show(inner)}")
    inner = dict(inner)
    if class_name == "function":
        name = inner.get("name")
        if not isinstance(name, str) or name not in custom_objects:
            raise OpValueError(
                f"the learning rate is the function {hyperparams.show(name)}: pass it as "
                f"custom_objects={{{hyperparams.show(name)}: fn}}"
            )
        fn = custom_objects[name]
        if isinstance(fn, type) or not callable(fn):
            raise OpTypeError(f"the learning rate is the function {name!r}, but custom_objects[{name!r}] is "
                              f"{'the class ' + fn.__name__ if isinstance(fn, type) else type(fn).__name__}, "
                              "not a function of the step")
        return fn
    if not isinstance(class_name, str):
        raise OpValueError(f"a schedule's class_name must be a string, got {hyperparams.show(class_name)}")
    cls = custom_objects.get(class_name) or _SCHEDULES.get(class_name)
    if cls is None:
        raise OpValueError(
            f"unknown learning-rate schedule {class_name!r}; known: {sorted(_SCHEDULES)} "
            "(pass a custom class through custom_objects)"
        )
    if not (isinstance(cls, type) and issubclass(cls, LearningRateSchedule)):
        raise OpTypeError(f"custom_objects[{class_name!r}] is used as a learning-rate schedule but is not a "
                          f"LearningRateSchedule subclass (got {hyperparams.show(cls)})")
    return cls.from_config(inner)
