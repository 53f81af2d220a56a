"""Averaging gradients over the ranks: fused into a few flat buffers (buckets), each
summed with one non-blocking allreduce as soon as backprop has produced all its gradients.

Layout (a :class:`_Plan`, made once per list of parameter shapes and dtypes): the
parameters are taken in reverse order, the order in which backprop completes their
gradients, and laid end to end in buckets of one dtype and about ``bucket_bytes`` each (a
larger parameter has a bucket of its own). A step (:class:`AveragingStep`) copies each
gradient into its place as it arrives (``put``); when a bucket is full, it and every full
bucket after it start their ``Iallreduce`` -- in bucket order, so that every rank starts the
same collectives in the same order whatever order its gradients came in. Each ``put`` also
lets MPI progress the sums already started (MPICH progresses only inside MPI calls).
``finish`` starts a small float64 header (the step's weight, the weighted loss, one
"has a gradient" count per parameter), waits for everything and divides by the total
weight.

Weights: a rank multiplies its gradients and loss by its weight (1 by default; ``fit``
uses the rank's number of samples), so the result is ``sum(w_r g_r) / sum(w_r)``: the
plain mean over ranks, or, weighted by samples, the gradient of the mean loss over every
sample of the step, as one process would compute it. A parameter without a gradient on
any rank stays None (an optimizer then skips it, as it would in one process); a rank
without a gradient for it contributes zeros.

Buffers: the averaged gradients returned are views of a bucket buffer set. A set is
reused by a later step only when nothing outside the plan still holds one of its views
(reference counts), so gradients kept across steps (accumulation) are never overwritten;
a training loop that drops its gradients after the update runs on one or two sets, with
no allocation per step.
"""

from __future__ import annotations

import math
import sys
from time import perf_counter
from typing import Any, Sequence

import numpy as np

from ..autodiff.variable import Variable
from ..errors import OpValueError
from . import comm as _comm

DEFAULT_BUCKET_BYTES = 4 << 20  # at most; a small model is cut into about 4 buckets
_MIN_BUCKET_BYTES = 256 << 10   # but not into buckets smaller than this (each sum costs a latency)
_ALIGN = 64

# id -> view for the views of every buffer set: recognises gradients that are averages
# already (DistributedOptimizer must not average them again).
_AVERAGED: dict[int, np.ndarray] = {}


def is_averaged(grads: Sequence[Any]) -> bool:
    """Whether every gradient that is not None is a view returned by an averaging step."""
    found = False
    for g in grads:
        if g is None:
            continue
        arr = g._value if isinstance(g, Variable) else g
        if _AVERAGED.get(id(arr)) is not arr:
            return False
        found = True
    return found


def _aligned(size: int, dtype: np.dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    raw = np.zeros(size + _ALIGN // dtype.itemsize, dtype)
    start = (-raw.ctypes.data % _ALIGN) // dtype.itemsize
    return raw[start:start + size]


def _max_refs(views: list[np.ndarray]) -> int:
    getrefcount = sys.getrefcount
    most = 0
    for v in views:
        n = getrefcount(v)
        if n > most:
            most = n
    return most


class _BufferSet:
    """One bucket buffer per bucket, the views of the parameters in them, the header."""

    def __init__(self, plan: _Plan) -> None:
        self.buffers = [_aligned(n, dt) for n, dt in zip(plan.bucket_sizes, plan.bucket_dtypes)]
        self.views: list[np.ndarray] = [None] * len(plan.shapes)  # type: ignore[list-item]
        for b, members in enumerate(plan.members):
            for pos, (start, stop) in zip(members, plan.spans[b]):
                self.views[pos] = self.buffers[b][start:stop].reshape(plan.shapes[pos])
        self.header = np.zeros(2 + len(plan.shapes), np.float64)
        self.busy = False
        _AVERAGED.update((id(view), view) for view in self.views)
        self.baseline = _max_refs(self.views)

    def free(self) -> bool:
        return not self.busy and _max_refs(self.views) <= self.baseline


class _Plan:
    """Which bucket each parameter goes to (see the module docstring)."""

    def __init__(self, shapes: list[tuple[int, ...]], dtypes: list[np.dtype], bucket_bytes: int | None) -> None:
        self.shapes = shapes
        self.dtypes = dtypes
        sizes = [math.prod(s) for s in shapes]
        total = sum(n * dt.itemsize for n, dt in zip(sizes, dtypes))
        if bucket_bytes is None:
            target = max(min(DEFAULT_BUCKET_BYTES, total // 4), _MIN_BUCKET_BYTES)
        else:
            target = bucket_bytes
        self.members: list[list[int]] = []
        self.spans: list[list[tuple[int, int]]] = []
        self.bucket_sizes: list[int] = []
        self.bucket_dtypes: list[np.dtype] = []
        self.bucket_of = [0] * len(shapes)
        for pos in range(len(shapes) - 1, -1, -1):
            n, dt = sizes[pos], dtypes[pos]
            if not self.members or dt != self.bucket_dtypes[-1] or (
                    self.bucket_sizes[-1] and (self.bucket_sizes[-1] + n) * dt.itemsize > target):
                self.members.append([])
                self.spans.append([])
                self.bucket_sizes.append(0)
                self.bucket_dtypes.append(dt)
            start = self.bucket_sizes[-1]
            self.members[-1].append(pos)
            self.spans[-1].append((start, start + n))
            self.bucket_sizes[-1] = start + n
            self.bucket_of[pos] = len(self.members) - 1
        self.counts = [len(m) for m in self.members]
        self.sets: list[_BufferSet] = []

    @property
    def bucket_bytes(self) -> list[int]:
        return [n * dt.itemsize for n, dt in zip(self.bucket_sizes, self.bucket_dtypes)]

    def acquire(self) -> _BufferSet:
        for s in self.sets:
            if s.free():
                s.busy = True
                return s
        s = _BufferSet(self)
        self.sets.append(s)
        s.busy = True
        return s


class AveragingStep:
    """One averaging of a list of gradients: ``put(i, gradient)`` for each position as it
    becomes available (any order; None for no gradient), then ``finish(loss)``."""

    def __init__(self, plan: _Plan, buffers: _BufferSet, weight: float, world: Any, owner: str,
                 averager: GradientAverager | None = None) -> None:
        self._averager = averager
        self._plan = plan
        self._set = buffers
        self._weight = float(weight)
        self._world = world
        self._owner = owner
        self._filled = [0] * len(plan.members)
        self._seen = [False] * len(plan.shapes)
        self._next = 0
        self._requests: list[Any] = []
        header = buffers.header
        header.fill(0.0)
        header[0] = self._weight

    def put(self, i: int, gradient: Any) -> None:
        """Copy the gradient of parameter ``i`` (a Variable, an array or None) into its bucket."""
        if self._seen[i]:
            return
        view = self._set.views[i]
        if gradient is None:
            view.fill(0)
        else:
            arr = gradient._value if isinstance(gradient, Variable) else gradient
            if np.shape(arr) != view.shape:
                raise OpValueError(
                    f"{self._owner}: the gradient of parameter {i} has shape {tuple(np.shape(arr))}, but the "
                    f"parameter has shape {view.shape}"
                )
            if self._weight == 1.0:
                np.copyto(view, arr, casting="same_kind")
            else:
                np.multiply(arr, self._weight, out=view, casting="same_kind")
            self._set.header[2 + i] = 1.0
        self._seen[i] = True
        b = self._plan.bucket_of[i]
        self._filled[b] += 1
        if b == self._next and self._filled[b] == self._plan.counts[b]:
            self._start_full()
        elif self._requests:
            self._world.test_all(self._requests)

    def _start_full(self) -> None:
        plan, filled = self._plan, self._filled
        while self._next < len(plan.members) and filled[self._next] == plan.counts[self._next]:
            self._requests.append(self._world.start_sum(self._set.buffers[self._next]))
            self._next += 1

    def abandon(self) -> None:
        """Give the buffers back after an error before any sum started (after one started,
        the other ranks are inconsistent anyway and the job ends)."""
        if not self._requests:
            self._set.busy = False

    def finish(self, loss: float | None = None) -> tuple[list[np.ndarray | None], float, float]:
        """Wait for the sums; returns ``(gradients, loss, total weight)``: the averaged
        gradients (views, None where no rank had one), the weighted mean of the ranks'
        losses (NaN if any is NaN) and the sum of the weights."""
        for i, seen in enumerate(self._seen):
            if not seen:
                self.put(i, None)
        header = self._set.header
        if loss is not None:
            header[1] = self._weight * loss if self._weight else 0.0
        self._requests.append(self._world.start_sum(header))
        start = perf_counter()
        self._world.wait_all(self._requests)
        if self._averager is not None:
            self._averager.waited += perf_counter() - start
        self._requests = []
        total = float(header[0])
        if not total > 0.0:
            self._set.busy = False
            raise _comm.DistributedError(f"{self._owner}: no rank contributed to the step (total weight {total})")
        if total != 1.0:
            for buffer in self._set.buffers:
                np.divide(buffer, total, out=buffer)
        views = self._set.views
        grads = [views[i] if header[2 + i] > 0.0 else None for i in range(len(views))]
        self._set.busy = False
        return grads, float(header[1]) / total, total


class GradientAverager:
    """Averages lists of gradients over the ranks (see the module docstring).
    ``bucket_bytes`` caps a bucket's size (None: about a quarter of the gradients, between
    256 KiB and 4 MiB). ``steps`` counts the averagings done, ``waited`` the seconds spent
    waiting for their sums after the last gradient was in (the communication not hidden)."""

    def __init__(self, bucket_bytes: int | None = None) -> None:
        if bucket_bytes is not None and (isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, int)
                                         or bucket_bytes <= 0):
            raise OpValueError(f"GradientAverager: bucket_bytes must be a positive int or None, got {bucket_bytes!r}")
        self.bucket_bytes = bucket_bytes
        self._plans: dict[tuple, _Plan] = {}
        self.steps = 0
        self.waited = 0.0

    def plan(self, params: Sequence[Variable]) -> _Plan:
        key = tuple((p._value.shape, p._value.dtype) for p in params)
        plan = self._plans.get(key)
        if plan is None:
            plan = _Plan([k[0] for k in key], [np.dtype(k[1]) for k in key], self.bucket_bytes)
            self._plans[key] = plan
        return plan

    def begin(self, params: Sequence[Variable], weight: float = 1.0,
              owner: str = "tapegrad.distributed") -> AveragingStep:
        """Start averaging the gradients of ``params``; this rank's gradients count
        ``weight`` times (see the module docstring)."""
        plan = self.plan(params)
        self.steps += 1
        return AveragingStep(plan, plan.acquire(), weight, _comm.world(), owner, self)

    def average(self, params: Sequence[Variable], grads: Sequence[Any], weight: float = 1.0,
                loss: float | None = None, owner: str = "tapegrad.distributed") -> tuple[list, float, float]:
        """All of ``grads`` at once: ``begin``, ``put`` each (buckets start as they fill), ``finish``."""
        if len(grads) != len(params):
            raise OpValueError(f"{owner}: got {len(params)} parameters but {len(grads)} gradients")
        step = self.begin(params, weight, owner)
        for i in range(len(grads) - 1, -1, -1):
            step.put(i, grads[i])
        return step.finish(loss)


_default: GradientAverager | None = None


def default_averager() -> GradientAverager:
    """The averager shared by the distributed tape, DistributedOptimizer and fit; its cap
    on a bucket's size is ``$TAPEGRAD_MPI_BUCKET_MB`` megabytes when set (see
    docs/distributed.md: tens of MB pay on many nodes)."""
    global _default
    if _default is None:
        _default = GradientAverager(_bucket_bytes_from_environment())
    return _default


def _bucket_bytes_from_environment() -> int | None:
    import os

    value = os.environ.get("TAPEGRAD_MPI_BUCKET_MB")
    if value is None:
        return None
    try:
        megabytes = float(value)
    except ValueError:
        megabytes = -1.0
    if not megabytes > 0:
        raise OpValueError(f"TAPEGRAD_MPI_BUCKET_MB must be a number of megabytes > 0, got {value!r}")
    return max(1, int(megabytes * (1 << 20)))
