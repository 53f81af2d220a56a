"""Activation functions: ``get(identifier)`` and ``serialize(fn)``.

Every activation takes a Variable (or an array) and returns a Variable computed
with tapegrad ops, so it is recorded by tapes, traced by the compiler and
differentiable to any order. Defaults are Keras 3's:

========================  ==============================================================
``relu``                  max(x, 0) (derivative 0 at 0)
``sigmoid``               1 / (1 + exp(-x))
``softmax``               along ``axis=-1``
``log_softmax``           along ``axis=-1``, stable for logits of 1e4
``tanh``                  hyperbolic tangent
``linear``                the identity: returns its input unchanged, no op
``gelu``                  ``approximate=False``: x * Phi(x) with the exact erf;
                          ``approximate=True``: the tanh form
``silu`` (``swish``)      x * sigmoid(x)
``leaky_relu``            ``negative_slope=0.2``
``elu``                   ``alpha=1.0``
``softplus``              log(1 + exp(x)), stable
========================  ==============================================================

``get(None)`` is ``linear``; ``get(callable)`` returns the callable; an unknown name
raises a ``ValueError`` listing the known ones.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import ops
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError

Activation = Callable[[Any], Variable]


# The activations are the ops themselves (their defaults are Keras 3's), so a layer's
# activation costs exactly one op call.
relu = ops.relu
sigmoid = ops.sigmoid
softmax = ops.softmax
log_softmax = ops.log_softmax
tanh = ops.tanh
gelu = ops.gelu
silu = ops.silu
swish = silu
leaky_relu = ops.leaky_relu
elu = ops.elu
softplus = ops.softplus


def linear(x: Any) -> Any:
    """The identity: returns ``x`` itself (no op is recorded)."""
    return x


_BY_NAME: dict[str, Activation] = {
    "relu": relu,
    "sigmoid": sigmoid,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "tanh": tanh,
    "linear": linear,
    "gelu": gelu,
    "silu": silu,
    "swish": silu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "softplus": softplus,
}
# The canonical name of each function (swish serialises as "silu", as in Keras 3).
_NAME_OF: dict[Any, str] = {}
for _name, _fn in _BY_NAME.items():
    _NAME_OF.setdefault(_fn, _name)


def get(identifier: str | Activation | None) -> Activation:
    """The activation function for a name, a callable (returned as is) or None (linear)."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        fn = _BY_NAME.get(identifier) or _BY_NAME.get(identifier.lower())
        if fn is None:
            raise OpValueError(
                f"activations.get: unknown activation {identifier!r}; known: {', '.join(sorted(_BY_NAME))}"
            )
        return fn
    if callable(identifier):
        return identifier
    raise OpTypeError(
        f"activations.get: expected a name, a callable or None, got {type(identifier).__name__}"
    )


def serialize(activation: Activation | str | None) -> str:
    """The name of an activation (for configs): built-ins by their canonical name,
    other callables by their ``__name__``."""
    if activation is None:
        return "linear"
    if isinstance(activation, str):
        return _NAME_OF[get(activation)]
    name = _NAME_OF.get(activation)
    if name is not None:
        return name
    name = getattr(activation, "__name__", None)
    if not name:
        raise OpValueError(f"activations.serialize: cannot name the activation {activation!r}")
    return name


def deserialize(name: str) -> Activation:
    """The inverse of :func:`serialize` for the built-in activations."""
    return get(name)


__all__ = [
    "elu", "gelu", "get", "leaky_relu", "linear", "log_softmax", "relu", "serialize", "deserialize", "sigmoid",
    "silu", "softmax", "softplus", "swish", "tanh",
]
