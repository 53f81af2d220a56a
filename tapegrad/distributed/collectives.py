"""Collectives on arrays and Variables: ``allreduce``, ``broadcast_variables``, and the
broadcasts of Python objects and optimizer state. Arrays are fused into one buffer per
dtype, so a call is one MPI operation per dtype whatever the number of arrays."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autodiff.tape import flatten
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError
from . import comm as _comm

_OPS = ("mean", "sum", "max", "min", "prod")


def _check_root(root: Any, owner: str, size: int) -> int:
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < size:
        raise OpValueError(f"{owner}: root must be a rank, an int in [0, {size}), got {root!r}")
    return int(root)


def _as_array(x: Any, owner: str, position: str) -> np.ndarray:
    if isinstance(x, Variable):
        return np.asarray(x._value)
    if isinstance(x, (str, bytes)) or x is None:
        raise OpTypeError(f"{owner}: {position} must be an array, a Variable or a number, got {type(x).__name__}")
    arr = np.asarray(x)
    if arr.dtype.kind not in "iuf":
        raise OpTypeError(f"{owner}: {position} has dtype {arr.dtype}; only integer and float arrays can be "
                          f"reduced (convert bools with astype)")
    return arr


def allreduce(arrays: Any, op: str = "mean") -> Any:
    """Reduce arrays over the ranks: ``op`` is ``"mean"`` (default), ``"sum"``, ``"max"``,
    ``"min"`` or ``"prod"``. ``arrays`` is an array, a Variable or a number (the result is
    one NumPy array) or a list or tuple of them (the result is a list). Every rank must pass
    the same shapes and dtypes in the same order. The mean of integers is float64; other
    results keep the dtype of their input. Arrays of one dtype travel in one buffer."""
    if op not in _OPS:
        raise OpValueError(f"allreduce: op must be one of {', '.join(map(repr, _OPS))}, got {op!r}")
    single = not isinstance(arrays, (list, tuple))
    items = [arrays] if single else list(arrays)
    values = [_as_array(x, "allreduce", "the array" if single else f"arrays[{i}]") for i, x in enumerate(items)]
    world = _comm.world()
    results: list[np.ndarray] = [None] * len(values)  # type: ignore[list-item]
    groups: dict[np.dtype, list[int]] = {}
    for i, v in enumerate(values):
        groups.setdefault(v.dtype, []).append(i)
    for dtype, members in groups.items():
        sizes = [values[i].size for i in members]
        buffer = np.empty(sum(sizes), dtype)
        start = 0
        for i, n in zip(members, sizes):
            buffer[start:start + n] = values[i].reshape(-1)
            start += n
        world.reduce_in_place(buffer, "sum" if op == "mean" else op)
        if op == "mean":
            buffer = buffer / world.size if dtype.kind != "f" else np.divide(buffer, world.size, out=buffer)
        start = 0
        for i, n in zip(members, sizes):
            results[i] = buffer[start:start + n].reshape(values[i].shape)
            start += n
    return results[0] if single else results


def _variables(variables: Any, owner: str) -> list[Variable]:
    if not isinstance(variables, (Variable, list, tuple, dict)) and callable(getattr(variables, "variables", None)):
        variables = variables.variables()  # a model or layer
    return flatten(variables, owner, "variables")[0]


def broadcast_variables(variables: Any, root: int = 0) -> None:
    """Give every rank ``root``'s values of ``variables`` (a Variable, a list, tuple or dict of
    them, or a model or layer: all its ``variables()``), in place. Every rank must pass
    Variables of the same shapes and dtypes in the same order: this is checked on every
    rank before anything is sent (all ranks raise the same error otherwise)."""
    world = _comm.world()
    root = _check_root(root, "broadcast_variables", world.size)
    flat = _variables(variables, "broadcast_variables")
    signature = [(tuple(v._value.shape), str(v._value.dtype)) for v in flat]
    if world.size == 1:
        return
    signatures = world.allgather(signature)
    for r, other in enumerate(signatures):
        if other != signatures[root]:
            raise OpValueError(_mismatch("broadcast_variables", root, signatures[root], r, other))
    groups: dict[np.dtype, list[int]] = {}
    for i, v in enumerate(flat):
        groups.setdefault(v._value.dtype, []).append(i)
    for dtype, members in groups.items():
        sizes = [math.prod(flat[i]._value.shape) for i in members]
        buffer = np.empty(sum(sizes), dtype)
        if world.rank == root:
            start = 0
            for i, n in zip(members, sizes):
                buffer[start:start + n] = np.reshape(flat[i]._value, -1)
                start += n
        world.broadcast_buffer(buffer, root)
        if world.rank != root:
            start = 0
            for i, n in zip(members, sizes):
                flat[i].assign(buffer[start:start + n].reshape(flat[i]._value.shape))
                start += n


def _mismatch(owner: str, root: int, expected: list, rank: int, got: list) -> str:
    if len(expected) != len(got):
        return (f"{owner}: rank {rank} passed {len(got)} Variables but rank {root} (the root) passed "
                f"{len(expected)}; every rank must pass the same Variables")
    for i, (a, b) in enumerate(zip(expected, got)):
        if a != b:
            return (f"{owner}: Variable {i} has shape {b[0]} and dtype {b[1]} on rank {rank}, but shape {a[0]} "
                    f"and dtype {a[1]} on rank {root} (the root); every rank must pass the same Variables")
    return f"{owner}: the Variables differ between rank {rank} and rank {root}"


def broadcast_object(obj: Any, root: int = 0) -> Any:
    """``root``'s ``obj`` on every rank (pickled: for small Python values, not arrays in a loop)."""
    world = _comm.world()
    root = _check_root(root, "broadcast_object", world.size)
    return world.broadcast(obj, root)


def broadcast_optimizer_state(optimizer: Any, root: int = 0) -> None:
    """Give every rank ``root``'s optimizer state (``get_state()``: the iteration count and
    the slots, such as Adam's moments), so that training continues identically on all."""
    if not (callable(getattr(optimizer, "get_state", None)) and callable(getattr(optimizer, "set_state", None))):
        raise OpTypeError(f"broadcast_optimizer_state: expects an optimizer (with get_state and set_state), got "
                          f"{type(optimizer).__name__}")
    world = _comm.world()
    root = _check_root(root, "broadcast_optimizer_state", world.size)
    if world.size == 1:
        return
    state = world.broadcast(optimizer.get_state() if world.rank == root else None, root)
    if world.rank != root:
        optimizer.set_state(state)
