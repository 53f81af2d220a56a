"""Function transformations built on GradientTape: grad, value_and_grad, jacobian, hessian.

They nest: the inner transformation runs while the outer one's tape records, so
``grad(grad(f))`` and ``hessian(f)`` come out of the same VJP rules.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import OpTypeError, OpValueError
from .tape import GradientTape
from .variable import Variable, wrap


def _argnums(argnums: int | Sequence[int], nargs: int, name: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not -nargs <= n < nargs:
            raise OpValueError(f"{name}: argnums {argnums!r} is out of range for {nargs} positional argument(s)")
    return tuple(n % nargs for n in nums)


def _as_variable(x: Any, name: str, i: int) -> Variable:
    v = x if isinstance(x, Variable) else Variable(x)
    if v.dtype.kind != "f":
        raise OpTypeError(f"{name}: argument {i} has dtype {v.dtype}; only float arguments can be differentiated")
    return v


def _call_watched(f: Callable, args: tuple, kwargs: dict, nums: tuple[int, ...], name: str,
                  persistent: bool = False) -> tuple[GradientTape, Any, list[Variable]]:
    args = list(args)
    watched = []
    tape = GradientTape(persistent=persistent)
    with tape:
        for n in nums:
            args[n] = _as_variable(args[n], name, n)
            tape.watch(args[n])
            watched.append(args[n])
        out = f(*args, **kwargs)
    return tape, out, watched


def value_and_grad(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """``value_and_grad(f)(*args)`` returns ``(f(*args), df/dargs[argnums])``.

    ``f`` must return a scalar (size-1) Variable. With an int ``argnums`` the gradient
    is one Variable, with a sequence it is a tuple.
    """

    @functools.wraps(f)
    def value_and_grad_f(*args: Any, **kwargs: Any) -> tuple[Variable, Any]:
        nums = _argnums(argnums, len(args), "value_and_grad")
        tape, out, watched = _call_watched(f, args, kwargs, nums, "grad")
        if not isinstance(out, Variable):
            raise OpTypeError(f"grad: f must return a Variable, got {type(out).__name__}")
        if out.size != 1:
            raise OpValueError(f"grad: f must return a scalar, got shape {out.shape}; use jacobian() "
                               f"for non-scalar outputs")
        grads = tape.gradient(out, watched, unconnected_gradients="zero")
        return out, grads[0] if isinstance(argnums, int) else tuple(grads)

    return value_and_grad_f


def grad(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """``grad(f)(*args)``: the gradient of scalar-valued ``f`` with respect to ``args[argnums]``."""
    vg = value_and_grad(f, argnums)

    @functools.wraps(f)
    def grad_f(*args: Any, **kwargs: Any) -> Any:
        return vg(*args, **kwargs)[1]

    return grad_f


def jacobian(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """``jacobian(f)(*args)``: d f(args) / d args[argnums], of shape out.shape + arg.shape.

    Computed by reverse mode, one backward pass per output element; differentiable,
    so ``jacobian(grad(f))`` is the Hessian.
    """

    @functools.wraps(f)
    def jacobian_f(*args: Any, **kwargs: Any) -> Any:
        from ..ops import reshape, stack

        nums = _argnums(argnums, len(args), "jacobian")
        tape, out, watched = _call_watched(f, args, kwargs, nums, "jacobian", persistent=True)
        if not isinstance(out, Variable):
            raise OpTypeError(f"jacobian: f must return a Variable, got {type(out).__name__}")
        rows: list[list[Variable]] = [[] for _ in watched]
        for k in range(out.size):
            seed = np.zeros(out.size, dtype=out.dtype)
            seed[k] = 1
            grads = tape.gradient(out, watched, output_gradients=seed.reshape(out.shape),
                                  unconnected_gradients="zero")
            for row, g in zip(rows, grads):
                row.append(g)
        jacs = []
        for v, row in zip(watched, rows):
            if not row:
                jacs.append(wrap(np.zeros(out.shape + v.shape, dtype=v.dtype)))
            else:
                jacs.append(reshape(stack(row, axis=0), out.shape + v.shape))
        return jacs[0] if isinstance(argnums, int) else tuple(jacs)

    return jacobian_f


def hessian(f: Callable, argnums: int = 0) -> Callable:
    """``hessian(f)(*args)``: second derivatives of scalar ``f``, of shape arg.shape * 2."""
    if not isinstance(argnums, int):
        raise OpTypeError("hessian: argnums must be an int")
    return jacobian(grad(f, argnums), argnums)
