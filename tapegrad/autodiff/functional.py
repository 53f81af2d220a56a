"""Function transformations: grad, value_and_grad, vjp (reverse mode, on GradientTape),
jvp (forward mode, on autodiff.forward), jacobian, jacfwd, jacrev, hessian.

They nest: the inner transformation runs while the outer one records, so ``grad(grad(f))``,
``jvp(grad(f))`` and ``hessian(f)`` come out of the same rules.
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


def _as_variables(x: Any, name: str, i: int) -> tuple[Any, list[Variable], Callable[[list], Any]]:
    """An argument to differentiate: a Variable (or array, number), or a list, tuple or dict of
    them (e.g. a model's parameters). Returns the argument as Variables, its Variables in order,
    and how to rebuild its structure from a list (of gradients)."""
    if isinstance(x, (list, tuple, dict)):
        items = list(x.values()) if isinstance(x, dict) else list(x)
        parts = [_as_variables(item, name, i) for item in items]
        leaves = [leaf for _, part_leaves, _ in parts for leaf in part_leaves]
        sizes = [len(part_leaves) for _, part_leaves, _ in parts]
        structure = [p for p, _, _ in parts]
        value = dict(zip(x.keys(), structure)) if isinstance(x, dict) else type(x)(structure) if type(x) in (
            list, tuple) else list(structure)

        def rebuild(grads: list) -> Any:
            out, start = [], 0
            for (_, _, part_rebuild), n in zip(parts, sizes):
                out.append(part_rebuild(grads[start:start + n]))
                start += n
            if isinstance(x, dict):
                return dict(zip(x.keys(), out))
            return type(x)(out) if type(x) in (list, tuple) else list(out)

        return value, leaves, rebuild
    v = _as_variable(x, name, i)
    return v, [v], lambda grads: grads[0]


def _call_watched(f: Callable, args: tuple, kwargs: dict, nums: tuple[int, ...], name: str,
                  persistent: bool = False) -> tuple[GradientTape, Any, list[Variable]]:
    tape, out, watched, _ = _call_watched_structured(f, args, kwargs, nums, name, persistent)
    return tape, out, watched


def _call_watched_structured(f: Callable, args: tuple, kwargs: dict, nums: tuple[int, ...], name: str,
                             persistent: bool = False) -> tuple[GradientTape, Any, list[Variable], Callable]:
    """Call ``f`` under a tape that watches the arguments ``nums``. Returns the tape, f's result,
    the watched Variables, and ``regroup(grads)``: the gradients in the arguments' structures."""
    args = list(args)
    watched: list[Variable] = []
    rebuilds = []
    tape = GradientTape(persistent=persistent)
    with tape:
        for n in nums:
            args[n], leaves, rebuild = _as_variables(args[n], name, n)
            for leaf in leaves:
                tape.watch(leaf)
            rebuilds.append((len(leaves), rebuild))
            watched.extend(leaves)
        out = f(*args, **kwargs)

    def regroup(grads: list) -> list:
        result, start = [], 0
        for n, rebuild in rebuilds:
            result.append(rebuild(list(grads[start:start + n])))
            start += n
        return result

    return tape, out, watched, regroup


def value_and_grad(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """``value_and_grad(f)(*args)`` returns ``(f(*args), df/dargs[argnums])``.

    ``f`` must return a scalar (size-1) Variable. With an int ``argnums`` the gradient
    is one Variable, with a sequence it is a tuple. An argument may be a list, tuple or dict
    of arrays (a model's parameters): its gradient has the same structure. With
    ``has_aux=True``, ``f`` returns
    ``(value, aux)`` and the result is ``((value, aux), gradient)``, as in JAX.
    """

    @functools.wraps(f)
    def value_and_grad_f(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        nums = _argnums(argnums, len(args), "value_and_grad")
        tape, result, watched, regroup = _call_watched_structured(f, args, kwargs, nums, "grad")
        out = _split_aux(result, has_aux, "grad")[0]
        if not isinstance(out, Variable):
            raise OpTypeError(f"grad: f must return a Variable, got {type(out).__name__}")
        if out.size != 1:
            raise OpValueError(f"grad: f must return a scalar, got shape {out.shape}; use jacobian() "
                               f"for non-scalar outputs")
        grads = regroup(tape.gradient(out, watched, unconnected_gradients="zero"))
        return result, grads[0] if isinstance(argnums, int) else tuple(grads)

    return value_and_grad_f


def _split_aux(result: Any, has_aux: bool, name: str) -> tuple[Any, Any]:
    if not has_aux:
        return result, None
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise OpTypeError(f"{name}: with has_aux=True, f must return a pair (value, aux), got "
                          f"{type(result).__name__}")
    return result[0], result[1]


def grad(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """``grad(f)(*args)``: the gradient of scalar-valued ``f`` with respect to ``args[argnums]``.
    With ``has_aux=True``, ``f`` returns ``(value, aux)`` and the result is ``(gradient, aux)``."""
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def grad_f(*args: Any, **kwargs: Any) -> Any:
        result, grads = vg(*args, **kwargs)
        return (grads, result[1]) if has_aux else grads

    return grad_f


def _primal_list(values: Any, name: str, what: str) -> list[Any]:
    if not isinstance(values, (tuple, list)):
        raise OpTypeError(f"{name}: {what} must be a tuple or list (one entry per argument of f), "
                          f"got {type(values).__name__}")
    return list(values)


def jvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """Forward mode: ``(f(*primals), J @ tangents)``, the directional derivative of ``f`` at
    ``primals`` along ``tangents``, in one pass that carries a tangent with every value.

    ``primals`` and ``tangents`` are tuples with one entry per argument of ``f`` (as in JAX);
    the tangent result has the structure of ``f``'s result (a Variable, or a list/tuple of them),
    with zeros where an output does not depend on the arguments.
    """
    from .forward import as_tangent, run_forward
    from .tape import flatten

    xs = _primal_list(primals, "jvp", "primals")
    ts = _primal_list(tangents, "jvp", "tangents")
    if len(xs) != len(ts):
        raise OpValueError(f"jvp: {len(xs)} primal(s) but {len(ts)} tangent(s)")
    variables = [_as_variable(x, "jvp", i) for i, x in enumerate(xs)]
    ts = [as_tangent(t, v, "jvp") for t, v in zip(ts, variables)]
    out, trace = run_forward(f, variables, ts)
    flat, rebuild = flatten(out, "jvp", "f's result")
    tangent_out = []
    for o in flat:
        t = trace.tangent_of(o)
        if t is None:
            t = np.zeros(o.shape, o.dtype)
        tangent_out.append(t if isinstance(t, Variable) else wrap(np.asarray(t)))
    return out, rebuild(tangent_out)


def _leaves(structure: Any) -> list[Any]:
    """The arrays of a (nested) list, tuple or dict, in order."""
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in _leaves(item)]
    if isinstance(structure, dict):
        return [leaf for item in structure.values() for leaf in _leaves(item)]
    return [structure]


def vjp(f: Callable, *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """Reverse mode: ``(f(*primals), vjp_fn)``; ``vjp_fn(cotangent)`` returns a tuple with the
    cotangent of each primal (``cotangent`` has the structure of ``f``'s result). ``vjp_fn`` may be
    called many times. With ``has_aux=True`` the result is ``(out, vjp_fn, aux)``."""
    from .tape import flatten

    args = [_as_variable(x, "vjp", i) for i, x in enumerate(primals)]
    tape = GradientTape(persistent=True, watch_accessed_variables=False)
    with tape:
        for v in args:
            tape.watch(v)
        result = f(*args)
    out, aux = _split_aux(result, has_aux, "vjp")
    flat, _ = flatten(out, "vjp", "f's result")

    def vjp_fn(cotangent: Any) -> tuple:
        seeds = _leaves(cotangent)
        if len(seeds) != len(flat):
            raise OpValueError(f"vjp: the cotangent has {len(seeds)} part(s), f's result {len(flat)}")
        grads = tape.gradient(flat, args, output_gradients=seeds, unconnected_gradients="zero")
        return tuple(grads)

    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


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


def _vmap(f: Callable, in_axes: Any = 0) -> Callable:
    from ..compiler.vmap import vmap  # (a transformation over traced graphs: the compiler's)

    return vmap(f, in_axes)


def _basis(n: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The n unit vectors of a space of ``shape``, stacked: shape (n,) + shape."""
    return np.eye(n, dtype=dtype).reshape((n,) + shape)


def jacrev(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """``jacrev(f)(*args)``: the Jacobian by reverse mode, of shape out.shape + arg.shape: one
    forward pass and the backward passes of all output elements at once (vmap of the VJP)."""

    @functools.wraps(f)
    def jacrev_f(*args: Any, **kwargs: Any) -> Any:
        from ..ops import reshape

        nums = _argnums(argnums, len(args), "jacrev")
        args = list(args)
        primals = [_as_variable(args[n], "jacrev", n) for n in nums]

        def g(*xs: Any) -> Any:
            call = list(args)
            for n, x in zip(nums, xs):
                call[n] = x
            return f(*call, **kwargs)

        out, vjp_fn = vjp(g, *primals)
        if not isinstance(out, Variable):
            raise OpTypeError(f"jacrev: f must return a Variable, got {type(out).__name__}")
        basis = _basis(out.size, out.shape, out.dtype)
        rows = _vmap(lambda c: list(vjp_fn(c)))(basis)
        jacs = [reshape(r, out.shape + p.shape) for r, p in zip(rows, primals)]
        return jacs[0] if isinstance(argnums, int) else tuple(jacs)

    return jacrev_f


def jacfwd(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """``jacfwd(f)(*args)``: the Jacobian by forward mode, of shape out.shape + arg.shape: the
    tangents of all input directions in one batched pass (vmap of the JVP)."""

    @functools.wraps(f)
    def jacfwd_f(*args: Any, **kwargs: Any) -> Any:
        from ..ops import reshape, transpose

        nums = _argnums(argnums, len(args), "jacfwd")
        args = list(args)
        primals = [_as_variable(args[n], "jacfwd", n) for n in nums]
        jacs = []
        for k, p in enumerate(primals):
            def directional(t: Any, k: int = k) -> Any:
                tangents = [t if j == k else np.zeros(q.shape, q.dtype) for j, q in enumerate(primals)]

                def g(*xs: Any) -> Any:
                    call = list(args)
                    for n, x in zip(nums, xs):
                        call[n] = x
                    return f(*call, **kwargs)

                return jvp(g, tuple(primals), tuple(tangents))[1]

            columns = _vmap(directional)(_basis(p.size, p.shape, p.dtype))  # (p.size,) + out.shape
            out_shape = columns.shape[1:]
            columns = reshape(columns, p.shape + out_shape)  # then the input's axes go last
            jacs.append(transpose(columns, tuple(range(p.ndim, p.ndim + len(out_shape))) + tuple(range(p.ndim))))
        return jacs[0] if isinstance(argnums, int) else tuple(jacs)

    return jacfwd_f


def hessian(f: Callable, argnums: int = 0) -> Callable:
    """``hessian(f)(*args)``: second derivatives of scalar ``f``, of shape arg.shape * 2,
    forward over reverse: the Jacobian of the gradient by forward mode (``jacfwd(grad(f))``)."""
    if not isinstance(argnums, int):
        raise OpTypeError("hessian: argnums must be an int")
    return jacfwd(grad(f, argnums), argnums)
