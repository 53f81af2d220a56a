"""tapegrad: automatic differentiation and deep learning on NumPy.

The seed API (Rindow Neural Networks, in Python)::

    import tapegrad
    nn = tapegrad.NeuralNetworks()
    g = nn.gradient()
    a, b = g.Variable(2.0), g.Variable(3.0)
    with g.GradientTape() as tape:
        c = g.mul(a, b)
    da, db = tape.gradient(c, [a, b])

Every op is also a module function (``tapegrad.mul``) and every class is importable
from the package.
"""

from . import ops
from .autodiff.custom import custom_gradient
from .autodiff.functional import grad, hessian, jacobian, value_and_grad
from .autodiff.gradcheck import gradcheck
from .autodiff.primitive import Primitive
from .autodiff.tape import GradientTape
from .autodiff.variable import Variable
from .builder import Backend, Gradient, NeuralNetworks
from .errors import GradcheckError, OpTypeError, OpValueError, TapegradError
from .format import to_string
from .ops import *  # noqa: F403

__version__ = "0.1.0"

__all__ = [
    "Backend", "GradcheckError", "Gradient", "GradientTape", "NeuralNetworks", "OpTypeError", "OpValueError",
    "Primitive", "TapegradError", "Variable", "custom_gradient", "grad", "gradcheck", "hessian", "jacobian",
    "to_string", "value_and_grad", *ops.__all__,
]
