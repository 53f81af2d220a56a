"""Run one optimizer kernel over parts of the flat buffers on several threads.

NumPy releases the GIL inside its ufunc loops, so the kernel run on the two halves
of a buffer by two threads takes 0.55-0.65 of the time when a second core is free
(measured on the 2-CPU machine; more with a busy core, as the threads then take
turns). Every kernel is elementwise, so the result is bit for bit the same
for any split. Buffers of fewer than ``SPLIT_MIN`` elements are not split: the
handoff costs a few microseconds. With one thread, large buffers are run in chunks
of ``CHUNK`` elements instead (see ``Optimizer._run_group``).

Whether the threads help depends on the machine's load at the time, so the
optimizer times the threaded and the single-thread way now and then and runs the
faster (``Chooser``). ``set_num_threads(n)`` (or the environment variable
``TAPEGRAD_OPTIMIZER_THREADS``) sets the number of parts; the default is 2 when the
process may run on two or more CPUs, else 1.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any, Callable

import numpy as np

from ...errors import OpValueError

__all__ = ["Chooser", "bounds", "cut_grad", "cut_plan", "get_num_threads", "run_parts", "set_num_threads"]

SPLIT_MIN = 1 << 16  # elements
CHUNK = 1 << 16  # elements per chunk when one thread runs a large buffer in chunks
_ALIGN = 16  # part boundaries on multiples of 16 elements (64 bytes of float32)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _default_threads() -> int:
    env = os.environ.get("TAPEGRAD_OPTIMIZER_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    return 2 if _available_cpus() >= 2 else 1


_threads = _default_threads()
_workers: list[_Worker] = []
_busy = threading.Lock()  # held while the workers run a call's parts


def set_num_threads(n: int) -> None:
    """Split large optimizer updates over ``n`` threads (1: no threads)."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise OpValueError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    _threads = n


def get_num_threads() -> int:
    """The number of threads large optimizer updates are split over."""
    return _threads


class _Worker:
    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="tapegrad-optimizer", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            fn, args = self.jobs.get()
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self.done.put(exc)
            else:
                self.done.put(None)


def _reset_after_fork() -> None:
    global _busy
    _workers.clear()  # the threads do not exist in the child
    _busy = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def run_parts(fn: Callable[..., None], parts: list[tuple]) -> None:
    """``fn(*part)`` for every part: the first on this thread, the others on workers.
    Waits for all; re-raises the first error. While another thread's call is using
    the workers, the parts run one after the other on this thread."""
    if not _busy.acquire(blocking=False):
        for args in parts:
            fn(*args)
        return
    try:
        _run_parts(fn, parts)
    finally:
        _busy.release()


def _run_parts(fn: Callable[..., None], parts: list[tuple]) -> None:
    while len(_workers) < len(parts) - 1:
        _workers.append(_Worker())
    for worker, args in zip(_workers, parts[1:]):
        worker.jobs.put((fn, args))
    error: BaseException | None = None
    try:
        fn(*parts[0])
    except BaseException as exc:  # noqa: BLE001 - re-raised after the workers finish
        error = exc
    for worker, _ in zip(_workers, parts[1:]):
        result = worker.done.get()
        if result is not None and error is None:
            error = result
    if error is not None:
        raise error


class Chooser:
    """Picks the faster of two ways (0 and 1) to run the same computation: it times
    each call, keeps a moving average per way, runs the faster one and, now and then,
    the other one (the machine's load changes). It tries the other way every
    ``EXPLORE``-th call, and half as often after each try that did not change the
    choice (down to every ``EXPLORE << MAX_BACKOFF``-th call), so that a way that
    stays slower costs almost nothing."""

    EXPLORE = 16
    MAX_BACKOFF = 6

    def __init__(self) -> None:
        self.average: list[float | None] = [None, None]
        self.calls = 0
        self.backoff = 0
        self.trying: int | None = None  # the way being tried against the choice

    def best(self) -> int:
        first, second = self.average
        return 0 if second is None or (first is not None and first <= second) else 1

    def pick(self) -> int:
        self.calls += 1
        first, second = self.average
        if first is None:
            return 0
        if second is None:
            return 1
        best = self.best()
        if self.calls % (self.EXPLORE << self.backoff) == 0:
            self.trying = 1 - best
            return 1 - best
        return best

    def record(self, way: int, seconds: float) -> None:
        old = self.average[way]
        self.average[way] = seconds if old is None else 0.75 * old + 0.25 * seconds
        if self.trying == way:
            self.trying = None
            if self.best() == way:
                self.backoff = 0
            else:
                self.backoff = min(self.backoff + 1, self.MAX_BACKOFF)


def bounds(size: int, n: int) -> list[int]:
    """``n + 1`` part boundaries of ``range(size)``, inner ones on multiples of 16."""
    inner = [(size * k // n) // _ALIGN * _ALIGN for k in range(1, n)]
    return [0, *inner, size]


def cut_plan(offsets: list[int], cuts: list[int]) -> list[list[tuple[int, int | None, int | None]]]:
    """For gradients laid end to end at ``offsets``, cut at the element boundaries
    ``cuts``: per part, ``(index, start, stop)`` of the pieces (``start`` None: the
    whole gradient; else a slice of it raveled)."""
    plan = []
    for a, b in zip(cuts, cuts[1:]):
        part: list[tuple[int, int | None, int | None]] = []
        for k in range(len(offsets) - 1):
            lo, hi = max(a, offsets[k]), min(b, offsets[k + 1])
            if lo >= hi:
                continue
            if lo == offsets[k] and hi == offsets[k + 1]:
                part.append((k, None, None))
            else:
                part.append((k, lo - offsets[k], hi - offsets[k]))
        plan.append(part)
    return plan


def cut_grad(g: Any, plan: list, cuts: list[int]) -> list[Any]:
    """The gradient argument of a kernel (one flat array, or one array per parameter)
    cut into parts by :func:`cut_plan`'s ``plan`` (a flat array at ``cuts``)."""
    if isinstance(g, np.ndarray):
        return [g[a:b] for a, b in zip(cuts, cuts[1:])]
    parts = []
    for part in plan:
        pieces = []
        for k, lo, hi in part:
            if lo is None:
                pieces.append(g[k])
            else:
                gk = g[k]
                pieces.append((gk if gk.ndim == 1 else np.asarray(gk).reshape(-1))[lo:hi])
        parts.append(pieces)
    return parts
