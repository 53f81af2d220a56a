"""The compiler: trace a function into a graph of the eager primitives, optimise it,
and generate straight-line code (``Function``, ``g.Function``)."""

from ..errors import TracingError
from .compiled import Function, TensorSpec, function

__all__ = ["Function", "TensorSpec", "TracingError", "function"]
