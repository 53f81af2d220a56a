"""What each entry of ``load_model(..., custom_objects=...)`` may be used for.

A file names the classes and functions it needs; ``custom_objects`` maps such names to
the caller's objects. A file must not be able to route one of them into a role it was
not written for (a layer class used as the optimizer, a loss function called as a
learning-rate schedule), so every entry is used only in the roles its kind allows:

=========================  ======================================================
role in the file           what the entry must be
=========================  ======================================================
the model                  a ``Model`` subclass (``AbstractModel``, ``Sequential``)
a layer                    a ``Layer`` subclass (models are layers too)
the optimizer              an ``Optimizer`` subclass
a learning-rate schedule   a ``LearningRateSchedule`` subclass
a learning-rate function   a function of the step (one argument, or none)
the loss                   a ``Loss`` subclass, or a loss function
a loss function            a function of ``(trues, predicts)``
a metric                   a ``Metric`` subclass, or a metric function
a metric function          a function of ``(trues, predicts)``
=========================  ======================================================

"Function" means a callable that is not a class; its signature is checked where Python
can tell it. :func:`check` raises for a name the file uses in a role its entry does not
fit; :func:`for_role` gives a deserializer only the entries that fit its roles.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from ...errors import OpTypeError


def _is_class(base: Callable[[], type]) -> Callable[[Any], bool]:
    return lambda obj: isinstance(obj, type) and issubclass(obj, base())


def _is_model(obj: Any) -> bool:
    # A Model class is a Layer that rebuilds itself from a saved config (Model._from_saved_config);
    # told by that mark, not by importing the model module, which imports saving, which imports this.
    return isinstance(obj, type) and issubclass(obj, _layer()) and hasattr(obj, "_from_saved_config")


def _layer() -> type:
    from ..layers.base import Layer

    return Layer


def _optimizer() -> type:
    from ..optimizers.base import Optimizer

    return Optimizer


def _schedule() -> type:
    from ..optimizers.schedules import LearningRateSchedule

    return LearningRateSchedule


def _loss() -> type:
    from ..losses import Loss

    return Loss


def _metric() -> type:
    from ..metrics import Metric

    return Metric


def _binds(fn: Any, *args: Any) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to read (some builtins): give it the benefit of the doubt
        return True
    try:
        sig.bind(*args)
        return True
    except TypeError:
        return False


def _function(*calls: tuple) -> Callable[[Any], bool]:
    def fits(obj: Any) -> bool:
        return callable(obj) and not isinstance(obj, type) and any(_binds(obj, *args) for args in calls)

    return fits


_trues_predicts = _function((None, None))
_step_function = _function((0,), ())

#: role -> (what the entry must be, test)
ROLES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "model": ("a Model subclass", _is_model),
    "layer": ("a Layer subclass", _is_class(_layer)),
    "optimizer": ("an Optimizer subclass", _is_class(_optimizer)),
    "schedule": ("a LearningRateSchedule subclass", _is_class(_schedule)),
    "schedule function": ("a function of the step", _step_function),
    "loss": ("a Loss subclass or a function of (trues, predicts)",
             lambda obj: _is_class(_loss)(obj) or _trues_predicts(obj)),
    "loss function": ("a function of (trues, predicts)", _trues_predicts),
    "metric": ("a Metric subclass or a function of (trues, predicts)",
               lambda obj: _is_class(_metric)(obj) or _trues_predicts(obj)),
    "metric function": ("a function of (trues, predicts)", _trues_predicts),
}


def describe(obj: Any) -> str:
    """What an entry is, for an error message."""
    if isinstance(obj, type):
        if _is_model(obj):
            return f"the Model subclass {obj.__name__}"
        for base in (_layer, _optimizer, _schedule, _loss, _metric):
            if issubclass(obj, base()):
                return f"the {base().__name__} subclass {obj.__name__}"
        return f"the class {obj.__name__}"
    if callable(obj):
        try:
            return f"the function {getattr(obj, '__name__', type(obj).__name__)}{inspect.signature(obj)}"
        except (TypeError, ValueError):
            return f"the callable {getattr(obj, '__name__', type(obj).__name__)}"
    return f"a {type(obj).__name__}"


def check(custom_objects: dict[str, Any] | None, name: Any, role: str, where: str) -> None:
    """Raise if the file uses ``custom_objects[name]`` (at ``where``) in a ``role`` its
    kind does not allow. Names not in ``custom_objects`` are not checked here."""
    if not custom_objects or not isinstance(name, str) or name not in custom_objects:
        return
    what, fits = ROLES[role]
    obj = custom_objects[name]
    if not fits(obj):
        raise OpTypeError(f"{where}: the file uses custom_objects[{name!r}] as {_article(role)}, which must be "
                          f"{what}, but it is {describe(obj)}")


def for_role(custom_objects: dict[str, Any] | None, *roles: str) -> dict[str, Any]:
    """The entries of ``custom_objects`` that fit one of ``roles``."""
    if not custom_objects:
        return {}
    tests = [ROLES[r][1] for r in roles]
    return {name: obj for name, obj in custom_objects.items() if any(t(obj) for t in tests)}


def _article(role: str) -> str:
    return f"the {role}" if role in ("model", "optimizer", "loss") else f"a {role}"


def check_compile_references(compile_meta: dict[str, Any], custom_objects: dict[str, Any] | None) -> None:
    """Check every name the file's compile section looks up in ``custom_objects``."""
    if not custom_objects:
        return
    opt = compile_meta.get("optimizer")
    if isinstance(opt, dict):
        check(custom_objects, opt.get("class_name"), "optimizer", "compile.optimizer.class_name")
        lr = opt.get("config", {}).get("learning_rate") if isinstance(opt.get("config"), dict) else None
        if isinstance(lr, dict):
            if lr.get("class_name") == "function":
                inner = lr.get("config")
                check(custom_objects, inner.get("name") if isinstance(inner, dict) else None, "schedule function",
                      "compile.optimizer.config.learning_rate.config.name")
            else:
                check(custom_objects, lr.get("class_name"), "schedule",
                      "compile.optimizer.config.learning_rate.class_name")
    entries = [("loss", "compile.loss", compile_meta.get("loss"), "LossFunctionWrapper", "loss function")]
    metrics = compile_meta.get("metrics")
    if isinstance(metrics, list):
        entries += [("metric", f"compile.metrics[{i}]", m, "MeanMetricWrapper", "metric function")
                    for i, m in enumerate(metrics)]
    for role, where, entry, wrapper, fn_role in entries:
        if not isinstance(entry, dict):
            continue
        check(custom_objects, entry.get("class_name"), role, f"{where}.class_name")
        config = entry.get("config")
        if entry.get("class_name") == wrapper and isinstance(config, dict):
            check(custom_objects, config.get("fn"), fn_role, f"{where}.config.fn")


def require_class(custom_objects: dict[str, Any] | None, name: str, role: str, where: str) -> Any:
    """``custom_objects[name]`` if it is there (checked for ``role``), else None."""
    if not custom_objects or name not in custom_objects:
        return None
    check(custom_objects, name, role, where)
    return custom_objects[name]


__all__ = ["ROLES", "check", "check_compile_references", "describe", "for_role", "require_class"]
