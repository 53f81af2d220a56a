"""How each primitive is emitted by the code generator.

A kernel writes its result into a preallocated output buffer (``out``) with NumPy's
``out=`` arguments, so a compiled call allocates nothing for its intermediates. The
fusion backend was chosen by measurement on the target machine: NumPy ``out=`` calls;
numexpr was slower for these sizes (and is not a dependency).

* ``emit(args, out, params)`` returns Python statements that compute the result into
  the buffer named ``out``;
* ``inplace`` lists the argument positions that may be the output buffer itself;
* view kernels return an expression for a view of their input (no buffer).
Primitives without a kernel are called through their NumPy forward and allocate.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..ops.activation import sigmoid_into

ALL = (0, 1, 2)

# name -> (ufunc, arity)
_UFUNCS: dict[str, tuple[np.ufunc, int]] = {
    "add": (np.add, 2), "sub": (np.subtract, 2), "mul": (np.multiply, 2), "div": (np.true_divide, 2),
    "pow": (np.power, 2), "maximum": (np.maximum, 2), "minimum": (np.minimum, 2),
    "equal": (np.equal, 2), "not_equal": (np.not_equal, 2), "greater": (np.greater, 2),
    "greater_equal": (np.greater_equal, 2), "less": (np.less, 2), "less_equal": (np.less_equal, 2),
    "logical_and": (np.logical_and, 2), "logical_or": (np.logical_or, 2),
    "neg": (np.negative, 1), "exp": (np.exp, 1), "log": (np.log, 1), "log1p": (np.log1p, 1),
    "expm1": (np.expm1, 1), "sin": (np.sin, 1), "cos": (np.cos, 1), "tan": (np.tan, 1), "tanh": (np.tanh, 1),
    "sqrt": (np.sqrt, 1), "square": (np.square, 1), "abs": (np.absolute, 1), "sign": (np.sign, 1),
    "reciprocal": (np.reciprocal, 1), "logical_not": (np.logical_not, 1), "isfinite": (np.isfinite, 1),
    "isnan": (np.isnan, 1),
}


class Kernel:
    __slots__ = ("emit", "inplace", "names")

    def __init__(self, emit: Callable[[list[str], str, dict], list[str]], inplace: tuple[int, ...],
                 names: dict[str, Any]) -> None:
        self.emit = emit
        self.inplace = inplace
        self.names = names  # what the emitted code refers to


def _ufunc_kernel(name: str, ufunc: np.ufunc) -> Kernel:
    fn = f"np_{ufunc.__name__}"
    # out is passed by position (a little faster), except where NumPy deprecates it
    out_arg = "out=" if ufunc in (np.maximum, np.minimum) else ""
    return Kernel(lambda a, out, p: [f"{fn}({', '.join(a)}, {out_arg}{out})"], ALL, {fn: ufunc})


KERNELS: dict[str, Kernel] = {name: _ufunc_kernel(name, uf) for name, (uf, _) in _UFUNCS.items()}

KERNELS["relu"] = Kernel(lambda a, out, p: [f"np_maximum({a[0]}, 0, out={out})"], ALL, {"np_maximum": np.maximum})
KERNELS["softplus"] = Kernel(lambda a, out, p: [f"np_logaddexp(0, {a[0]}, {out})"], ALL,
                             {"np_logaddexp": np.logaddexp})  # (in place: one call beats the eager 4-pass form)
# sigmoid: the eager forward's in-place routine, writing into the buffer
KERNELS["sigmoid"] = Kernel(lambda a, out, p: [f"sigmoid_into({a[0]}, {out})"], ALL, {"sigmoid_into": sigmoid_into})


KERNELS["clip_by_value"] = Kernel(
    lambda a, out, p: [f"np_maximum({a[0]}, {a[1]}, out={out})", f"np_minimum({out}, {a[2]}, out={out})"],
    (0,), {"np_maximum": np.maximum, "np_minimum": np.minimum})
# where(c, x, y): start from y, then copy x where c holds (the buffer may only be y itself).
# Against a constant 0 (the VJPs of relu, clip, max) it multiplies by the mask, as the
# eager forward does, and falls back to the exact select only if that left a NaN.
KERNELS["where"] = Kernel(
    lambda a, out, p: ([] if a[2] == out else [f"np_copyto({out}, {a[2]})"])
    + [f"np_copyto({out}, {a[1]}, where={a[0]})"],
    (2,), {"np_copyto": np.copyto, "np_multiply": np.multiply, "np_isnan": np.isnan,
           "np_add_reduce": np.add.reduce})


def _where(a: list[str], out: str, p: dict, inputs: list) -> list[str]:
    y = inputs[2]
    if (getattr(y, "kind", None) == "const" and np.ndim(y.payload) == 0 and y.payload == 0
            and inputs[1] is not ACC_MARK[0] and inputs[1].dtype.kind == "f" and inputs[0].dtype.kind == "b"):
        return [f"np_multiply({a[1]}, {a[0]}, {out})",
                f"if np_isnan(np_add_reduce({out}, None)): np_copyto({out}, {a[2]}); "
                f"np_copyto({out}, {a[1]}, where={a[0]})"]
    return KERNELS["where"].emit(a, out, p)


ACC_MARK: list = [None]  # set by codegen: the running-value marker of fused chains
KERNELS["astype"] = Kernel(lambda a, out, p: [f"np_copyto({out}, {a[0]}, casting='unsafe')"], (),
                           {"np_copyto": np.copyto})


def _matmul(a: list[str], out: str, p: dict, inputs: list) -> list[str]:
    x = f"{a[0]}.swapaxes(-1, -2)" if p.get("transpose_a") else a[0]
    y = f"{a[1]}.swapaxes(-1, -2)" if p.get("transpose_b") else a[1]
    xshape = inputs[0].shape
    contracted = (xshape[-2] if p.get("transpose_a") else xshape[-1]) if len(xshape) >= 2 else None
    if contracted == 1 and len(xshape) > 2:  # outer products: the broadcast product (see ops.linalg)
        return [f"np_multiply({x}, {y}, {out})"]
    return [f"np_matmul({x}, {y}, {out})"]


KERNELS["matmul"] = Kernel(None, (), {"np_matmul": np.matmul, "np_multiply": np.multiply})


def _reduce(ufunc_name: str) -> Callable[[list[str], str, dict], list[str]]:
    def emit(a: list[str], out: str, p: dict) -> list[str]:
        return [f"{ufunc_name}({a[0]}, {p['axis']!r}, None, {out}, {p['keepdims']!r})"]

    return emit


KERNELS["reduce_sum"] = Kernel(_reduce("np_add_reduce"), (), {"np_add_reduce": np.add.reduce})
KERNELS["reduce_mean"] = Kernel(
    lambda a, out, p: [f"np_mean({a[0]}, axis={p['axis']!r}, keepdims={p['keepdims']!r}, out={out})"], (),
    {"np_mean": np.mean})


def _sum_to(a: list[str], out: str, p: dict, inputs: list) -> list[str]:
    # sum the broadcast axes with keepdims, into a view of the output of the keepdims shape
    # (sum_like: the target shape is its second input's, known when the graph is specialised)
    in_shape = inputs[0].shape
    shape = p["shape"] if "shape" in p else inputs[1].shape
    if len(in_shape) == 2 and shape == in_shape[1:] and inputs[0].dtype.kind == "f":
        # a bias gradient: the column sums of a matrix, as a BLAS product with ones (~3x faster)
        return [f"np_matmul(ones_{in_shape[0]}_{inputs[0].dtype.str[1:]}, {a[0]}, {out})"]
    lead = len(in_shape) - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and in_shape[i + lead] != 1)
    kept = tuple(1 if i in axes else n for i, n in enumerate(in_shape))
    target = out if kept == shape else f"{out}.reshape({kept!r})"
    return [f"np_add_reduce({a[0]}, {axes!r}, None, {target}, True)"]


KERNELS["sum_to"] = Kernel(None, (), {"np_add_reduce": np.add.reduce, "np_matmul": np.matmul})
# Emitters that look at the input values (shapes, constants): emit(args, out, params, inputs).
KERNELS["sum_like"] = KERNELS["sum_to"]
SHAPED_EMITTERS = {"sum_to": _sum_to, "sum_like": _sum_to, "where": _where, "matmul": _matmul}
KERNELS["reduce_max"] = Kernel(_reduce("np_maximum_reduce"), (), {"np_maximum_reduce": np.maximum.reduce})
KERNELS["reduce_min"] = Kernel(_reduce("np_minimum_reduce"), (), {"np_minimum_reduce": np.minimum.reduce})

# Elementwise kernels may be fused into a chain that runs in one buffer.
ELEMENTWISE = frozenset(set(_UFUNCS) | {"relu", "softplus", "sigmoid", "clip_by_value", "where"})
# A fused chain may also start with a matmul (matmul + bias + activation).
FUSION_HEADS = frozenset({"matmul"})

# 0-d values are NumPy scalars: these run as Python operators (NumPy's scalar fast path).
SCALAR_OPERATORS = {"add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
                    "pow": "{0} ** {1}", "neg": "-{0}"}

# Kernels that return a view of their first input (no buffer, no copy).
VIEWS: dict[str, Callable[[list[str], dict, dict], str]] = {
    "reshape": lambda a, p, ns: f"{a[0]}.reshape({p['shape']!r})",
    "expand_dims": lambda a, p, ns: f"np_expand_dims({a[0]}, {p['axes']!r})",
    "squeeze": lambda a, p, ns: f"np_squeeze({a[0]}, {p['axes']!r})",
    "broadcast_like": lambda a, p, ns: f"np_broadcast_to({a[0]}, {a[1]}.shape)",
    "transpose": lambda a, p, ns: f"{a[0]}.transpose({p['perm']!r})" if p["perm"] is not None
    else f"{a[0]}.transpose()",
    "broadcast_to": lambda a, p, ns: f"np_broadcast_to({a[0]}, {p['shape']!r})",
}
VIEW_NAMES = {"np_broadcast_to": np.broadcast_to, "np_expand_dims": np.expand_dims, "np_squeeze": np.squeeze}
