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

import numpy  # noqa: F401 - first: imported inside the package import it takes ~15 ms longer (measured, cause unknown)

from . import ops
from .autodiff.primitive import Primitive
from .autodiff.tape import GradientTape
from .autodiff.variable import Variable
from .errors import GradcheckError, OpTypeError, OpValueError, TapegradError
from .ops import *  # noqa: F403

__version__ = "0.1.0"

# Launched by mpirun: an uncaught exception on one rank ends the whole job, also before
# tapegrad.distributed has started MPI (tapegrad/distributed/faults.py). This reads the
# environment only; MPI is imported if such an exception happens.
if not __import__("os").environ.keys().isdisjoint(
        ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")):
    from .distributed import early as _early

    _early.install_before_init()

# The neural-network package is imported on first use, so that `import tapegrad`
# stays as cheap as `import numpy`.
_LAZY = {
    "NeuralNetworks": ("tapegrad.builder", "NeuralNetworks"),
    "Gradient": ("tapegrad.builder", "Gradient"),
    "Backend": ("tapegrad.builder", "Backend"),
    "grad": ("tapegrad.autodiff.functional", "grad"),
    "value_and_grad": ("tapegrad.autodiff.functional", "value_and_grad"),
    "jacobian": ("tapegrad.autodiff.functional", "jacobian"),
    "hessian": ("tapegrad.autodiff.functional", "hessian"),
    "jvp": ("tapegrad.autodiff.functional", "jvp"),
    "vjp": ("tapegrad.autodiff.functional", "vjp"),
    "jacfwd": ("tapegrad.autodiff.functional", "jacfwd"),
    "jacrev": ("tapegrad.autodiff.functional", "jacrev"),
    "vmap": ("tapegrad.compiler.vmap", "vmap"),
    "draw": ("tapegrad.drawing", "draw"),
    "linalg": ("tapegrad.linalg", None),
    "gradcheck": ("tapegrad.autodiff.gradcheck", "gradcheck"),
    "custom_gradient": ("tapegrad.autodiff.custom", "custom_gradient"),
    "to_string": ("tapegrad.format", "to_string"),
    "Function": ("tapegrad.compiler", "Function"),
    "function": ("tapegrad.compiler", "function"),
    "TensorSpec": ("tapegrad.compiler", "TensorSpec"),
    "layers": ("tapegrad.nn.layers", None),
    "losses": ("tapegrad.nn.losses", None),
    "optimizers": ("tapegrad.nn.optimizers", None),
    "metrics": ("tapegrad.nn.metrics", None),
    "activations": ("tapegrad.nn.activations", None),
    "initializers": ("tapegrad.nn.initializers", None),
    "callbacks": ("tapegrad.nn.models.callbacks", None),
    "data": ("tapegrad.nn.data", None),
    "datasets": ("tapegrad.nn.datasets", None),
    "models": ("tapegrad.nn.models", None),
    "Model": ("tapegrad.nn.models", "Model"),
    "AbstractModel": ("tapegrad.nn.models", "AbstractModel"),
    "Sequential": ("tapegrad.nn.models", "Sequential"),
    "History": ("tapegrad.nn.models", "History"),
    "load_model": ("tapegrad.nn.models", "load_model"),
    "register_model": ("tapegrad.nn.models", "register_model"),
    "set_seed": ("tapegrad.nn.random", "set_seed"),
    "distributed": ("tapegrad.distributed", None),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tapegrad' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "GradcheckError", "GradientTape", "OpTypeError", "OpValueError", "Primitive", "TapegradError", "Variable",
    *_LAZY, *ops.__all__,
]
