"""Python operators of Variable, installed on the class (its ndarray-like methods are in
:mod:`.variable_methods`).

Arithmetic operators (``+ - * / ** % @``) are differentiable ops; ``< <= > >=`` return bool Variables.
``==`` and ``hash`` stay identity-based (use ``equal``). Reflected operators make
``ndarray - Variable`` and ``2.0 * Variable`` differentiable too. ``bool(v)`` of a
non-scalar and ``v[i] = x`` are refused with messages that say what to use instead.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..autodiff.primitive import _make_apply2
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError
from .elementwise import (
    abs_p,
    add_p,
    div_p,
    greater_equal_p,
    greater_p,
    less_equal_p,
    less_p,
    mul_p,
    neg_p,
    pow_p,
    sub_p,
)
from .elementwise_math import mod_p
from .linalg import matmul
from .shape import getitem


def _install() -> None:
    cls = Variable
    # The operators are the primitives' specialised appliers themselves (plain
    # functions, so they bind as methods): no extra call per operator.
    for name, prim in (("add", add_p), ("sub", sub_p), ("mul", mul_p), ("truediv", div_p), ("pow", pow_p),
                      ("mod", mod_p)):
        setattr(cls, f"__{name}__", prim.apply2)
        setattr(cls, f"__r{name}__", _make_apply2(prim, reflected=True))
    cls.__matmul__ = lambda self, other: matmul(self, other)
    cls.__rmatmul__ = lambda self, other: matmul(other, self)
    cls.__neg__ = neg_p.apply1
    cls.__pos__ = lambda self: self
    cls.__abs__ = abs_p.apply1
    cls.__lt__ = less_p.apply2
    cls.__le__ = less_equal_p.apply2
    cls.__gt__ = greater_p.apply2
    cls.__ge__ = greater_equal_p.apply2
    cls.__getitem__ = getitem

    def iterate(self: Variable) -> Iterator[Variable]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d Variable")
        for i in range(self.shape[0]):
            yield getitem(self, i)

    cls.__iter__ = iterate

    numpy_truth = cls.__bool__

    def truth(self: Variable) -> bool:
        try:
            return numpy_truth(self)
        except ValueError:  # NumPy's "truth value of an array ... is ambiguous"
            if self._value.size == 1:
                raise
            raise OpValueError(
                f"bool(): the truth value of a Variable of shape {self._value.shape} is ambiguous (in an if, "
                f"while, and/or or assert): use v.any() or v.all() to ask whether any or all elements are "
                f"true, or tapegrad.where(condition, x, y) to choose elementwise"
            ) from None

    cls.__bool__ = truth

    def refuse_item_assignment(self: Variable, index: Any, value: Any) -> None:
        shown = repr(index)
        if len(shown) > 40:
            shown = f"<{type(index).__name__}>"
        raise OpTypeError(
            f"Variable does not support item assignment (v[{shown}] = ...): Variables are immutable. "
            f"Use v.assign(new_value) to replace the whole value in place, or make a new Variable with "
            f"tapegrad.where(mask, new_values, v) (a functional, differentiable update)"
        )

    cls.__setitem__ = refuse_item_assignment


_install()
