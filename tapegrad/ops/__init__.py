"""The differentiable ops. Every op takes Variables, NumPy arrays or numbers and returns
a Variable; the primitives (``*_p``) are what VJP rules and the compiler use."""

from . import operators as _operators  # noqa: F401 - installs Variable's operators
from . import variable_methods as _variable_methods  # noqa: F401 - installs Variable's ndarray-like methods
from .activation import log_softmax, relu, sigmoid, softmax, softplus
from .constant import bandpart, cast, one_hot, ones, ones_like, shape, stop_gradient, zeros, zeros_like
from .conv import conv, conv_transpose
from .elementwise import (
    abs,
    add,
    clip_by_value,
    cos,
    div,
    equal,
    exp,
    expm1,
    greater,
    greater_equal,
    increment,
    isfinite,
    isnan,
    less,
    less_equal,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    maximum,
    minimum,
    mul,
    neg,
    nop,
    not_equal,
    pow,
    reciprocal,
    scale,
    sign,
    sin,
    sqrt,
    square,
    sub,
    tan,
    tanh,
    where,
)
from .elementwise_math import (
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    ceil,
    cosh,
    exp2,
    floor,
    log2,
    log10,
    logaddexp,
    mod,
    round,
    sinh,
)
from .indexing import gather, getitem
from .linalg import matmul
from .manipulation import (
    argsort,
    diag,
    diagonal,
    diff,
    flip,
    moveaxis,
    pad,
    roll,
    sort,
    swapaxes,
    take_along_axis,
    tile,
    trace,
    tril,
    triu,
)
from .nn_ops import dropout, elu, erf, erfc, gelu, leaky_relu, silu
from .norms import norm
from .pooling import avg_pool, max_pool
from .products import cross, dot, einsum, inner, kron, outer, tensordot
from .reduction import argmax, argmin, logsumexp, prod, reduce_max, reduce_mean, reduce_min, reduce_sum
from .scans import cumprod, cumsum, std, var
from .shape import broadcast_to, concat, expand_dims, reshape, split, squeeze, stack, transpose
from .tiling import repeat

__all__ = [
    "abs", "add", "argmax", "argmin", "bandpart", "broadcast_to", "cast", "clip_by_value", "concat", "cos",
    "div", "equal", "exp", "expand_dims", "expm1", "gather", "getitem", "greater", "greater_equal",
    "increment", "isfinite", "isnan", "less", "less_equal", "log", "log1p", "log_softmax", "logical_and",
    "logical_not", "logical_or", "logsumexp", "matmul", "maximum", "minimum", "mul", "neg", "nop",
    "not_equal", "one_hot", "ones", "ones_like", "pow", "prod", "reciprocal", "reduce_max", "reduce_mean",
    "reduce_min", "reduce_sum", "relu", "repeat", "reshape", "scale", "shape", "sigmoid", "sign", "sin",
    "softmax", "softplus", "split", "sqrt", "square", "squeeze", "stack", "stop_gradient", "sub", "tan",
    "tanh", "transpose", "where", "zeros", "zeros_like",
    # neural-network ops (nn_ops.py)
    "dropout", "elu", "erf", "erfc", "gelu", "leaky_relu", "silu",
    # convolution and pooling (conv.py, pooling.py)
    "avg_pool", "conv", "conv_transpose", "max_pool",
    # NumPy's differentiable core: elementwise_math.py, scans.py, products.py, manipulation.py, norms.py
    "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh", "ceil", "cosh", "exp2", "floor",
    "log2", "log10", "logaddexp", "mod", "round", "sinh",
    "cumprod", "cumsum", "std", "var",
    "cross", "dot", "einsum", "inner", "kron", "outer", "tensordot",
    "argsort", "diag", "diagonal", "diff", "flip", "moveaxis", "norm", "pad", "roll", "sort", "swapaxes",
    "take_along_axis", "tile", "trace", "tril", "triu",
]
