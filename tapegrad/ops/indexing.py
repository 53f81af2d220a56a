"""Indexing primitives: ``v[...]``, gather, and their transpose scatter_add.

Index arrays are data, not parameters: an index is split into a static template (ints,
slices, None, Ellipsis, and the marker ``ARRAY`` where an array goes) and the arrays
themselves, which are inputs of the primitive. So a compiled Function that takes the
indices as an argument reads them at every call, as it reads any other input.

Indexing and ``gather`` are paired with ``scatter_add``: each one's VJP is the other, so
both are differentiable to any order. The index arrays get no gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff import state as _state
from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpTypeError, TracingError
from ._arguments import operand
from ._axis import axis_index

ArrayLike = Any


class _ArraySlot:
    """Where an index array sits in an index template."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<array>"


ARRAY = _ArraySlot()


def _place(template: tuple, arrays: tuple) -> tuple:
    """The NumPy index: the template with its ARRAY slots filled, in order."""
    if not arrays:
        return template
    it = iter(arrays)
    return tuple(next(it) if item is ARRAY else item for item in template)


def _value(x: Any) -> Any:
    return x._value if x.__class__ is Variable else x


def _is_bool(a: Any) -> bool:
    return np.result_type(_value(a)).kind == "b"


def split_index(index: Any, op: str = "getitem") -> tuple[tuple, tuple]:
    """An index as (template, arrays): Variables, arrays and lists in it become inputs."""
    items = index if isinstance(index, tuple) else (index,)
    template: list[Any] = []
    arrays: list[Any] = []
    for item in items:
        if isinstance(item, list):
            item = np.asarray(item)
            if item.size == 0:
                item = item.astype(np.intp)
        if isinstance(item, (Variable, np.ndarray)):
            dtype = item.dtype
            if dtype.kind not in "biu":
                raise OpTypeError(f"{op}: an index array must have an integer or bool dtype, got {dtype}")
            if dtype.kind == "b" and isinstance(item, Variable) and _state.tracing():
                raise TracingError(
                    f"{op}: a boolean mask Variable inside a compiled Function: the result's shape depends on "
                    f"the mask's values, which are not known when the graph is built. Use tapegrad.where "
                    f"(a result of the full shape), or index outside the Function")
            template.append(ARRAY)
            arrays.append(item)
        elif isinstance(item, np.generic) and item.dtype.kind in "iu":
            template.append(int(item))
        elif isinstance(item, (bool, np.bool_)):
            template.append(bool(item))
        elif isinstance(item, (int, slice)) or item is None or item is Ellipsis:
            template.append(item)
        else:
            raise OpTypeError(f"{op}: cannot index with {type(item).__name__} {item!r}")
    return tuple(template), tuple(arrays)


def _getitem_impl(x: Any, *arrays: Any, index: tuple) -> Any:
    return np.asarray(x)[_place(index, arrays)]


def _scatter_add_impl(g: Any, *arrays: Any, index: tuple, shape: tuple[int, ...]) -> np.ndarray:
    z = np.zeros(shape, dtype=np.result_type(g))
    if arrays:
        np.add.at(z, _place(index, arrays), g)  # repeated indices accumulate
    else:
        z[index] = g  # ints and slices select each element at most once
    return z


getitem_p = Primitive("getitem", _getitem_impl, ("x", "index"))
scatter_add_p = Primitive("scatter_add", _scatter_add_impl, ("g", "index"))


def _getitem_rule(g: Any, out: Any, needs: tuple, inputs: tuple, params: dict) -> list:
    x, *arrays = inputs
    grad = scatter_add_p(g, *arrays, index=params["index"], shape=np.shape(x)) if needs[0] else None
    return [grad] + [None] * len(arrays)


def _scatter_add_rule(g: Any, out: Any, needs: tuple, inputs: tuple, params: dict) -> list:
    _, *arrays = inputs
    grad = getitem_p(g, *arrays, index=params["index"]) if needs[0] else None
    return [grad] + [None] * len(arrays)


getitem_p.defvjp_joint(_getitem_rule)
scatter_add_p.defvjp_joint(_scatter_add_rule)
getitem_p.defjvp_linear()  # (linear in x; the index arrays have no tangent)
scatter_add_p.defjvp_linear()


def getitem(x: ArrayLike, index: Any) -> Variable:
    """x[index] with NumPy semantics (slices, ints, None, Ellipsis, int and bool arrays)."""
    template, arrays = split_index(index)
    x = operand(x, "getitem")
    return getitem_p.apply(x, *arrays, index=template)


def _gather_impl(x: Any, indices: Any, axis: int) -> Any:
    return np.take(x, indices, axis=axis)


gather_p = Primitive("gather", _gather_impl, ("x", "indices"))
gather_p.defvjp(
    lambda g, out, x, indices, axis: scatter_add_p(g, indices, index=(slice(None),) * axis + (ARRAY,),
                                                   shape=np.shape(x)),
    lambda g, out, x, indices, axis: None,
)
gather_p.defjvp_linear()


def gather(x: ArrayLike, indices: ArrayLike, axis: int = 0) -> Variable:
    """Take the slices of x at ``indices`` along ``axis`` (NumPy's take)."""
    if isinstance(indices, (list, tuple)):
        indices = np.asarray(indices)
        if indices.size == 0:
            indices = indices.astype(np.intp)
    dtype = np.result_type(_value(indices))
    if dtype.kind not in "iu":
        raise OpTypeError(f"gather: indices must be integers, got dtype {dtype}")
    x = operand(x, "gather")
    shape = np.shape(_value(x))
    return gather_p.apply(x, indices, axis=axis_index(axis, len(shape), "gather", shape=shape))
