"""The flat-buffer layout of an optimizer's parameters: for each dtype a group whose
parameters lie end to end in one 64-byte aligned buffer, with slot buffers of the
same layout (see :mod:`.flat_engine`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...autodiff.variable import Variable
from . import _parallel

__all__ = ["_Group", "_Layout", "_aligned_empty"]


def _aligned_empty(size: int, dtype: np.dtype, fill: float | None = None) -> np.ndarray:
    """A 1-D array whose data starts on a 64-byte boundary (full vector loads)."""
    dtype = np.dtype(dtype)
    extra = 64 // dtype.itemsize
    raw = np.empty(size + extra, dtype)
    start = (-raw.ctypes.data % 64) // dtype.itemsize
    out = raw[start : start + size]
    if fill is not None:
        out.fill(fill)
    return out


class _Group:
    """The parameters of one dtype, laid end to end in flat buffers."""

    def __init__(self, dtype: np.dtype, members: list[int], shapes: list[tuple[int, ...]]) -> None:
        self.dtype = dtype
        # Slots and scratch at least float32: float16 moments would overflow.
        self.sdtype = np.promote_types(dtype, np.float32)
        self.members = members
        self.shapes = shapes
        sizes = [math.prod(s) for s in shapes]
        self.offsets = [0]
        for n in sizes:
            self.offsets.append(self.offsets[-1] + n)
        self.size = self.offsets[-1]
        self.scalars = [j for j, s in enumerate(shapes) if s == ()]
        self.param: np.ndarray = np.empty(0, dtype)
        self.views: list[np.ndarray] = []
        self.slots: dict[str, np.ndarray] = {}
        self.slot_list: list[np.ndarray] = []
        self.tmp: list[np.ndarray] = []
        self.gbuf: np.ndarray | None = None
        self.gviews: list[np.ndarray] = []
        self.decay: list[bool] = [True] * len(members)
        self.decay_all = True
        self.parts: dict[int, tuple] = {}  # threads -> views of the buffers cut in parts
        self.chooser = _parallel.Chooser()
        self.native_chooser = _parallel.Chooser()  # threads or not for a native kernel (see Adam)
        self.native_last: tuple[int, float] | None = None  # (way, start) of the last native update

    def grad_buffer(self) -> np.ndarray:
        if self.gbuf is None:
            self.gbuf = _aligned_empty(self.size, self.dtype, 0.0)
            self.gviews = [
                self.gbuf[a:b].reshape(s) for a, b, s in zip(self.offsets, self.offsets[1:], self.shapes)
            ]
        return self.gbuf


class _Layout:
    """Where each parameter lives: its group and index in it, and what it is bound to."""

    def __init__(self, shapes: list[tuple[int, ...]], dtypes: list[np.dtype]) -> None:
        self.shapes = shapes
        self.dtypes = dtypes
        self.groups: list[_Group] = []
        self.where: list[tuple[_Group, int]] = [None] * len(shapes)  # type: ignore[list-item]
        order: dict[np.dtype, list[int]] = {}
        for pos, dt in enumerate(dtypes):
            order.setdefault(dt, []).append(pos)
        for dt, members in order.items():
            group = _Group(dt, members, [shapes[pos] for pos in members])
            self.groups.append(group)
            for j, pos in enumerate(members):
                self.where[pos] = (group, j)
        # bound[pos]: the object params[pos]._value must be (its view, or for a 0-d
        # parameter the scalar last written back); variables: the adopted Variables.
        self.bound: list[Any] = [None] * len(shapes)
        self.variables: list[Variable] = []

    def signature(self) -> list[tuple[tuple[int, ...], np.dtype]]:
        return list(zip(self.shapes, self.dtypes))

