"""The autodiff core: Variable, primitives and their recording, GradientTape, and the
functional helpers built on them."""

from .primitive import Primitive
from .tape import GradientTape
from .variable import Variable

__all__ = ["GradientTape", "Primitive", "Variable"]
