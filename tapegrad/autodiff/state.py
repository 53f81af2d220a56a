"""Recording state: the tapes, tracers and forward-mode traces active in the current thread.

The state is per thread (and per asyncio task): a ``ContextVar`` that holds ``None``
while nothing records, so the per-op hot path pays one lookup and one test when no
tape is active. A new thread starts with nothing recording, so two threads never see
each other's tapes or tracers.

Three kinds of interpreters watch primitive applications, each kind innermost last:

* tapes (reverse mode) record the ops on Variables they watch;
* tracers (compiled Functions) record every op into a graph;
* forward traces (``jvp``) compute each op's tangent as it runs.

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
    """What records in this thread: tapes, tracers and forward traces, innermost last."""

    __slots__ = ("tapes", "tracers", "forward")

    def __init__(self, tapes: tuple, tracers: tuple, forward: tuple = ()) -> None:
        self.tapes = tapes
        self.tracers = tracers
        self.forward = forward


_recording: contextvars.ContextVar[Recording | None] = contextvars.ContextVar("tapegrad_recording", default=None)

# The hot path: ``current()`` is None when nothing records in this thread.
current = _recording.get


def _make(tapes: tuple, tracers: tuple, forward: tuple) -> Recording | None:
    return Recording(tapes, tracers, forward) if tapes or tracers or forward else None


def _parts() -> tuple[tuple, tuple, tuple]:
    state = current()
    return (state.tapes, state.tracers, state.forward) if state is not None else ((), (), ())


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
    tapes, tracers, forward = _parts()
    _recording.set(Recording(tapes + (tape,), tracers, forward))


def remove_tape(tape: Any) -> bool:
    """Stop ``tape`` recording in this thread; False if it was not recording here."""
    tapes, tracers, forward = _parts()
    for i in range(len(tapes) - 1, -1, -1):
        if tapes[i] is tape:
            _recording.set(_make(tapes[:i] + tapes[i + 1:], tracers, forward))
            return True
    return False


def insert_tape(tape: Any, position: int) -> None:
    """Put ``tape`` back where :func:`remove_tape` took it from (its nesting order matters)."""
    tapes, tracers, forward = _parts()
    _recording.set(Recording(tapes[:position] + (tape,) + tapes[position:], tracers, forward))


def tape_position(tape: Any) -> int:
    tapes = active_tapes()
    for i in range(len(tapes) - 1, -1, -1):
        if tapes[i] is tape:
            return i
    return -1


@contextmanager
def scope(tapes: tuple = (), tracers: tuple | None = None, forward: tuple | None = None) -> Iterator[None]:
    """Run a block with exactly ``tapes`` recording (and ``tracers`` and ``forward`` traces,
    or the current ones when None); the previous state comes back on exit."""
    _, current_tracers, current_forward = _parts()
    token = _recording.set(_make(tuple(tapes), current_tracers if tracers is None else tuple(tracers),
                                 current_forward if forward is None else tuple(forward)))
    try:
        yield
    finally:
        _recording.reset(token)


@contextmanager
def tracing_scope(new_tracer: Any) -> Iterator[None]:
    """Run a block traced by ``new_tracer`` alone: no tape or forward trace sees it (they see
    a compiled call as one op, applied by the caller)."""
    _, tracers, _ = _parts()
    token = _recording.set(Recording((), tracers + (new_tracer,), ()))
    try:
        yield
    finally:
        _recording.reset(token)


@contextmanager
def forward_scope(trace: Any) -> Iterator[None]:
    """Run a block under one more forward trace (innermost)."""
    tapes, tracers, forward = _parts()
    token = _recording.set(Recording(tapes, tracers, forward + (trace,)))
    try:
        yield
    finally:
        _recording.reset(token)


@contextmanager
def paused() -> Iterator[None]:
    """Run a block with nothing recording: no tape, no tracer, no forward trace."""
    token = _recording.set(None)
    try:
        yield
    finally:
        _recording.reset(token)
