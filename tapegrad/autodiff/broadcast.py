"""The primitives the autodiff machinery itself needs.

``sum_to`` sums a broadcast cotangent back to a shape and ``broadcast_to`` is its
transpose; ``sum_like``/``broadcast_like`` do the same to the shape of a second input, read
at run time (the tape sums the cotangents of broadcasting primitives with ``sum_like``);
``astype`` converts between float dtypes so that a gradient has its source's dtype.
Each one's VJP is written with the others, so all of them are differentiable.
"""

from __future__ import annotations

import numpy as np

from .primitive import Primitive


def _sum_axes(shape: tuple[int, ...], target: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of ``shape`` to sum so that the result broadcasts back from ``target``."""
    lead = len(shape) - len(target)
    return tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(target) if n == 1 and shape[i + lead] != 1
    )


_ones_cache: dict[tuple[int, np.dtype], np.ndarray] = {}


def _sum_to(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    xshape = x.shape
    if xshape == shape:
        return x
    if len(xshape) == 2 and shape == xshape[1:] and x.dtype.kind == "f":
        # a bias gradient: column sums as a BLAS product with ones, ~3x faster than a reduce
        key = (xshape[0], x.dtype)
        ones = _ones_cache.get(key)
        if ones is None:
            if len(_ones_cache) > 64:
                _ones_cache.clear()
            ones = _ones_cache[key] = np.ones(xshape[0], x.dtype)
        return ones @ x
    return np.add.reduce(x, axis=_sum_axes(xshape, shape), keepdims=False).reshape(shape)


sum_to_p = Primitive("sum_to", _sum_to)
broadcast_to_p = Primitive("broadcast_to", lambda x, shape: np.broadcast_to(x, shape))
astype_p = Primitive("astype", lambda x, dtype: np.asarray(x).astype(dtype, copy=False))

sum_to_p.defvjp(lambda g, out, x, shape: broadcast_to_p(g, shape=np.shape(x)))
broadcast_to_p.defvjp(lambda g, out, x, shape: sum_to_p(g, shape=np.shape(x)))

# The same pair with the target shape read, at run time, from a second input: graphs made of
# these stay valid when a (batch) dimension changes size (see compiler.compiled._Entry).
sum_like_p = Primitive("sum_like", lambda x, like: _sum_to(x, np.shape(like)), ("x", "like"))
broadcast_like_p = Primitive("broadcast_like", lambda x, like: np.broadcast_to(x, np.shape(like)), ("x", "like"))
sum_like_p.defvjp(lambda g, out, x, like: broadcast_like_p(g, x), lambda g, out, x, like: None)
broadcast_like_p.defvjp(lambda g, out, x, like: sum_like_p(g, x), lambda g, out, x, like: None)
astype_p.defvjp(lambda g, out, x, dtype: astype_p(g, dtype=x.dtype))
for _prim in (sum_to_p, broadcast_to_p, sum_like_p, broadcast_like_p, astype_p):  # linear in x
    _prim.defjvp_linear()


def unbroadcast(g: object, shape: tuple[int, ...]) -> object:
    """Sum ``g`` to ``shape`` (the transpose of NumPy broadcasting); differentiable."""
    if np.shape(g) == shape:
        return g
    return sum_to_p(g, shape=shape)
