"""How ``model(...)`` calls the user's ``call``: the arguments it declares, by name.

``call``'s positional parameters without a default that are not named ``training`` or
``trues`` are its inputs (Rindow's transformer: ``call(self, context, x, training=None)``
has two). ``model(*args, training=..., trues=..., **kwargs)`` gives the first positional
arguments to the inputs; one list or tuple of as many arrays as there are inputs is
spread over them (what ``fit``, ``evaluate`` and ``predict`` pass for a list of input
arrays). The positional arguments after the inputs are ``training`` and then ``trues``
(the seeds write ``model(x, True, t)``). ``training`` and ``trues`` reach ``call`` by name,
and only if it declares them (or takes ``**kwargs``), as Rindow's ``isAwareOf`` does; a
required parameter of another name left without a value receives them by position
(``call(self, inputs, is_training)``). Other keyword arguments pass through unchanged.
"""

from __future__ import annotations

import inspect
from typing import Any

from ...errors import OpTypeError

_SPECS: dict[type, CallSpec] = {}
_UNSET: Any = object()


class CallSpec:
    """What ``cls.call`` declares, read once per class."""

    __slots__ = ("n_inputs", "required", "max_positional", "var_positional", "training", "trues")

    def __init__(self, cls: type) -> None:
        try:
            params = list(inspect.signature(cls.call).parameters.values())[1:]  # self
        except (TypeError, ValueError):
            params = []
        kinds = inspect.Parameter
        positional = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
        named = {p.name for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)}
        var_keyword = any(p.kind == kinds.VAR_KEYWORD for p in params)
        self.var_positional = any(p.kind == kinds.VAR_POSITIONAL for p in params)
        inputs = [p for p in positional if p.name not in ("training", "trues") and p.default is p.empty]
        self.n_inputs = max(len(inputs), 1)
        # required positional parameters before the first one named training/trues
        self.required = 0
        for p in positional:
            if p.name in ("training", "trues") or p.default is not p.empty:
                break
            self.required += 1
        self.max_positional = len(positional)
        self.training = var_keyword or "training" in named
        self.trues = var_keyword or "trues" in named


def call_spec(cls: type) -> CallSpec:
    spec = _SPECS.get(cls)
    if spec is None:
        spec = _SPECS[cls] = CallSpec(cls)
    return spec


def bind(spec: CallSpec, args: tuple, kwargs: dict[str, Any], owner: str) -> tuple[list[Any], dict[str, Any], Any, Any]:
    """``(positional arguments, keyword arguments, inputs, trues)`` for ``call``, from
    ``model(*args, **kwargs)``; ``inputs`` is the input (a list for several)."""
    training = kwargs.pop("training", _UNSET)
    trues = kwargs.pop("trues", _UNSET)
    n = spec.n_inputs
    if spec.var_positional:
        n = max(len(args) - 2, 1) if (training is _UNSET and trues is _UNSET) else len(args)
    if len(args) == 1 and n >= 2 and isinstance(args[0], (list, tuple)) and len(args[0]) == n:
        args = tuple(args[0])
    if not args:
        raise OpTypeError(f"{owner}: call() needs its input(s); got no positional argument")
    inputs, extras = list(args[:n]), list(args[n:])
    if extras:
        if training is not _UNSET:
            raise OpTypeError(f"{owner}: training given by position (after {n} input(s)) and by keyword")
        training = extras.pop(0)
    if extras:
        if trues is not _UNSET:
            raise OpTypeError(f"{owner}: trues given by position (after {n} input(s) and training) and by keyword")
        trues = extras.pop(0)
    if extras:
        raise OpTypeError(f"{owner}: call() takes {n} input(s), then training and trues; got {len(args)} "
                          f"positional arguments")
    training = None if training is _UNSET else training
    trues = None if trues is _UNSET else trues
    call_args = list(inputs)
    pending = [(spec.training, "training", training), (spec.trues, "trues", trues)]
    if spec.var_positional and not (spec.training or spec.trues):
        call_args += [training, trues]  # call(self, inputs, *args): the seeds' order
        pending = []
    # Required parameters of other names get (training, trues) by position (old Rindow rule).
    while len(call_args) < spec.required and pending:
        call_args.append(pending.pop(0)[2])
    for declared, name, value in pending:
        if declared:
            kwargs[name] = value
    return call_args, kwargs, (inputs if len(inputs) > 1 else inputs[0]), trues
