"""Recording state: the tapes and tracers that record in the current thread.

The state is per thread (and per asyncio task): a ``ContextVar`` that holds ``None``
while nothing records, so the per-op hot path pays one lookup and one test when no
tape is active. A new thread starts with nothing recording, so two threads never see
each other's tapes or tracers.

The state is an immutable ``Recording``; every change (a tape entered or left, a
tracer started) sets a new one in the current context. Code that runs with other
recording state for a while (tracing, a paused tape) uses :func:`scope`, which puts
the previous state back on exit whatever happened in between.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Iterator


class Recording:
    """What records in this thread: tapes and tracers, innermost last."""

    __slots__ = ("tapes", "tracers")

    def __init__(self, tapes: tuple, tracers: tuple) -> None:
        self.tapes = tapes
        self.tracers = tracers


_recording: contextvars.ContextVar[Recording | None] = contextvars.ContextVar("tapegrad_recording", default=None)

# The hot path: ``current()`` is None when nothing records in this thread.
current = _recording.get


def _make(tapes: tuple, tracers: tuple) -> Recording | None:
    return Recording(tapes, tracers) if tapes or tracers else None


def active_tapes() -> tuple:
    """The tapes recording in this thread, innermost last."""
    state = current()
    return state.tapes if state is not None else ()


def tracer() -> Any:
    """The innermost tracer of this thread, or None."""
    state = current()
    return state.tracers[-1] if state is not None and state.tracers else None


def tracing() -> bool:
    state = current()
    return state is not None and bool(state.tracers)


def push_tape(tape: Any) -> None:
    state = current()
    if state is None:
        _recording.set(Recording((tape,), ()))
    else:
        _recording.set(Recording(state.tapes + (tape,), state.tracers))


def remove_tape(tape: Any) -> bool:
    """Stop ``tape`` recording in this thread; False if it was not recording here."""
    state = current()
    if state is None:
        return False
    tapes = state.tapes
    for i in range(len(tapes) - 1, -1, -1):
        if tapes[i] is tape:
            _recording.set(_make(tapes[:i] + tapes[i + 1:], state.tracers))
            return True
    return False


def insert_tape(tape: Any, position: int) -> None:
    """Put ``tape`` back where :func:`remove_tape` took it from (its nesting order matters)."""
    state = current()
    tapes, tracers = (state.tapes, state.tracers) if state is not None else ((), ())
    _recording.set(Recording(tapes[:position] + (tape,) + tapes[position:], tracers))


def tape_position(tape: Any) -> int:
    tapes = active_tapes()
    for i in range(len(tapes) - 1, -1, -1):
        if tapes[i] is tape:
            return i
    return -1


@contextmanager
def scope(tapes: tuple = (), tracers: tuple | None = None) -> Iterator[None]:
    """Run a block with exactly ``tapes`` recording (and ``tracers``, or the current
    ones when None); the previous state comes back on exit."""
    if tracers is None:
        tracers = current().tracers if current() is not None else ()
    token = _recording.set(_make(tuple(tapes), tuple(tracers)))
    try:
        yield
    finally:
        _recording.reset(token)


@contextmanager
def tracing_scope(new_tracer: Any) -> Iterator[None]:
    """Run a block traced by ``new_tracer`` alone: no tape records it (an outer tape sees
    a compiled call as one node, recorded by the caller)."""
    state = current()
    tracers = state.tracers if state is not None else ()
    token = _recording.set(Recording((), tracers + (new_tracer,)))
    try:
        yield
    finally:
        _recording.reset(token)


@contextmanager
def paused() -> Iterator[None]:
    """Run a block with nothing recording: no tape, no tracer."""
    token = _recording.set(None)
    try:
        yield
    finally:
        _recording.reset(token)
