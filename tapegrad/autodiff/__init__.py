"""The autodiff core: Variable, primitives and their recording, GradientTape, and the
functional helpers built on them."""

from . import forward as _forward  # noqa: F401 - installs the forward-mode hook of the primitives
from .primitive import Primitive
from .tape import GradientTape
from .variable import Variable

__all__ = ["GradientTape", "Primitive", "Variable"]
