"""The compiler: trace a function into a graph of the eager primitives, optimise it,
and generate straight-line code (``Function``, ``g.Function``)."""

from .compiled import Function, TensorSpec, function
from .tracing import TracingError

__all__ = ["Function", "TensorSpec", "TracingError", "function"]
