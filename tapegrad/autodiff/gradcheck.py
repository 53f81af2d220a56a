"""gradcheck: compare tape gradients with central differences, in float64.

``order=1`` checks first derivatives. ``order=2`` checks the derivatives of the
gradient itself: random projections of the gradient, differentiated by nested
tapes, against central differences of the analytic gradient.

A non-scalar ``f`` is reduced to a scalar with fixed random weights, so that every
output element is checked. On failure it raises :class:`GradcheckError` naming the
worst element: which input, its index, and the analytic and numerical values.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import GradcheckError, OpTypeError, OpValueError
from .tape import GradientTape
from .variable import Variable, wrap


def _scalarize(f: Callable, inputs: list[np.ndarray], seed: int) -> Callable[..., Variable]:
    from ..ops import reduce_sum

    probe = f(*[wrap(x.copy()) for x in inputs])
    if not isinstance(probe, Variable):
        raise OpTypeError(f"gradcheck: f must return a Variable, got {type(probe).__name__}")
    if probe.dtype.kind != "f":
        raise OpTypeError(f"gradcheck: f returned dtype {probe.dtype}; it must return floats")
    weights = np.random.default_rng(seed).uniform(0.5, 1.5, probe.shape)

    def scalar_f(*xs: Any) -> Variable:
        return reduce_sum(f(*xs) * weights)

    return scalar_f


def _gradients(fn: Callable[..., Variable], inputs: list[np.ndarray]) -> list[np.ndarray]:
    xs = [Variable(x, dtype=np.float64) for x in inputs]
    with GradientTape() as tape:
        for x in xs:
            tape.watch(x)
        y = fn(*xs)
    return [np.asarray(g, dtype=np.float64) for g in tape.gradient(y, xs, unconnected_gradients="zero")]


def _numerical(fn: Callable[..., float], inputs: list[np.ndarray], eps: float) -> list[np.ndarray]:
    grads = []
    for x in inputs:
        g = np.zeros_like(x)
        flat = x.reshape(-1)
        for k in range(flat.size):
            old = flat[k]
            flat[k] = old + eps
            plus = fn(*inputs)
            flat[k] = old - eps
            minus = fn(*inputs)
            flat[k] = old
            g.reshape(-1)[k] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def _compare(analytic: list[np.ndarray], numeric: list[np.ndarray], atol: float, rtol: float, what: str) -> None:
    worst = None
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        err = np.abs(a - n) - (atol + rtol * np.abs(n))
        both_nan = np.isnan(a) & np.isnan(n)
        err = np.where(both_nan, -np.inf, np.where(np.isnan(err), np.inf, err))
        if err.size and (worst is None or err.max() > worst[0]):
            k = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
            worst = (float(err.max()), i, k, a[k], n[k])
    if worst is not None and worst[0] > 0:
        _, i, k, a, n = worst
        index = tuple(int(j) for j in k)
        raise GradcheckError(
            f"gradcheck: {what} of input {i} differs at index {index}: analytic {a!r}, numerical {n!r} "
            f"(|difference| {abs(a - n):.3g} > atol {atol:g} + rtol {rtol:g} * |numerical|)"
        )


def gradcheck(
    f: Callable[..., Variable],
    inputs: Any,
    order: int = 1,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
) -> bool:
    """Check the gradients of ``f`` at ``inputs`` (one array or a sequence of arrays).

    Inputs are converted to float64. Returns True, or raises GradcheckError.
    """
    if order not in (1, 2):
        raise OpValueError(f"gradcheck: order must be 1 or 2, got {order!r}")
    seq: Sequence[Any] = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    xs = []
    for x in seq:
        arr = np.array(x._value if isinstance(x, Variable) else x, dtype=np.float64)
        xs.append(arr)
    scalar_f = _scalarize(f, xs, seed)

    if order == 1:
        analytic = _gradients(scalar_f, xs)
        numeric = _numerical(lambda *a: float(scalar_f(*[wrap(v) for v in a])), xs, eps)
        _compare(analytic, numeric, atol, rtol, "gradient")
        return True

    # order 2: G(x) = sum_i <grad_i f(x), v_i> with fixed random v; check dG/dx.
    rng = np.random.default_rng(seed + 1)
    directions = [rng.uniform(0.5, 1.5, x.shape) for x in xs]

    def projected_gradient(*vs: Variable) -> Variable:
        from ..ops import reduce_sum

        with GradientTape() as inner:
            for v in vs:
                inner.watch(v)
            y = scalar_f(*vs)
        grads = inner.gradient(y, list(vs), unconnected_gradients="zero")
        total = None
        for g, d in zip(grads, directions):
            term = reduce_sum(g * d)
            total = term if total is None else total + term
        return total

    analytic = _gradients(projected_gradient, xs)
    numeric = _numerical(lambda *a: float(projected_gradient(*[Variable(v, dtype=np.float64) for v in a])),
                         xs, eps)
    _compare(analytic, numeric, atol, rtol, "second derivative")
    return True
