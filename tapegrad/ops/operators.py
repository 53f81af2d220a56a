"""Python operators and ndarray-like methods of Variable, installed on the class.

Arithmetic operators are differentiable ops; ``< <= > >=`` return bool Variables.
``==`` and ``hash`` stay identity-based (use ``equal``). Reflected operators make
``ndarray - Variable`` and ``2.0 * Variable`` differentiable too.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..autodiff.primitive import _make_apply2
from ..autodiff.variable import Variable
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
from .linalg import matmul
from .reduction import reduce_max, reduce_mean, reduce_min, reduce_sum
from .shape import getitem, reshape, transpose


def _install() -> None:
    cls = Variable
    # The operators are the primitives' specialised appliers themselves (plain
    # functions, so they bind as methods): no extra call per operator.
    for name, prim in (("add", add_p), ("sub", sub_p), ("mul", mul_p), ("truediv", div_p), ("pow", pow_p)):
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

    def _reshape(self: Variable, *shape: Any) -> Variable:
        return reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)

    cls.reshape = _reshape
    cls.T = property(lambda self: transpose(self))
    cls.transpose = lambda self, perm=None: transpose(self, perm)
    cls.sum = lambda self, axis=None, keepdims=False: reduce_sum(self, axis, keepdims)
    cls.mean = lambda self, axis=None, keepdims=False: reduce_mean(self, axis, keepdims)
    cls.max = lambda self, axis=None, keepdims=False: reduce_max(self, axis, keepdims)
    cls.min = lambda self, axis=None, keepdims=False: reduce_min(self, axis, keepdims)


_install()
