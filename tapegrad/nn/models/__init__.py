"""Models: :class:`Model` (compile / fit / evaluate / predict / summary / save),
:class:`AbstractModel` (the seeds' base class for models written as code),
:class:`Sequential`, the :mod:`callbacks`, :class:`History` and its plots, and
:func:`load_model` / :func:`register_model`.

Only :class:`Model` and :class:`AbstractModel` are imported with the package (the
seeds' custom training loop needs nothing else); the rest on first use.
"""

from .abstract import AbstractModel
from .model import Model, NonFiniteLossError

_LAZY = {
    "Sequential": ("sequential", "Sequential"),
    "callbacks": ("callbacks", None),
    "Callback": ("callbacks", "Callback"),
    "EarlyStopping": ("callbacks", "EarlyStopping"),
    "LambdaCallback": ("callbacks", "LambdaCallback"),
    "LearningRateScheduler": ("callbacks", "LearningRateScheduler"),
    "ModelCheckpoint": ("callbacks", "ModelCheckpoint"),
    "TerminateOnNaN": ("callbacks", "TerminateOnNaN"),
    "History": ("history", "History"),
    "plot_history": ("history", "plot_history"),
    "plot_loss": ("history", "plot_loss"),
    "load_model": ("loading", "load_model"),
    "register_model": ("saving", "register_model"),
    "registered_models": ("saving", "registered_models"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        mod = importlib.import_module(f"{__name__}.{module}")
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["AbstractModel", "Model", "NonFiniteLossError", *_LAZY]
