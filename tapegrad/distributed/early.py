"""Faults before MPI started: a hook that ``import tapegrad`` installs under ``mpirun``
(reading the environment only), so that an uncaught exception on one rank ends the whole
job even before tapegrad.distributed started MPI (see :func:`install_before_init`; the
hook for the time after is :mod:`.faults`)."""

from __future__ import annotations

import os
import sys
from typing import Any

from . import _launch, comm
from .faults import announce, drain_output


def install_before_init() -> None:
    """Under mpirun, before MPI is started (``import tapegrad`` does this): an uncaught
    exception starts MPI, then aborts the job. Starting MPI waits until every rank starts it
    too, which the other ranks do in their first collective (``fit``, ``init()``): the job
    ends then, instead of those ranks waiting forever for this one. If they have not started
    MPI after ``$TAPEGRAD_MPI_ABORT_WAIT`` seconds (default 120: a program that runs under
    mpirun without using MPI), this rank exits alone."""
    size = _launch.launched_size()
    if size is None or size < 2 or getattr(sys.excepthook, "_tapegrad_abort", None):
        return
    previous = sys.excepthook

    def abort_on_early_exception(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        try:
            previous(kind, value, tb)
            wait = _abort_wait()
            sys.stderr.write(f"tapegrad.distributed: rank {_launch.launched_rank()} of {size} raised {kind.__name__} "
                             f"before MPI started; starting MPI to abort the job (this rank exits alone if the "
                             f"others do not start MPI within {wait:g} s)\n")
            drain_output()
            world = _start_mpi(wait)
            announce(world.rank, world.size, kind)
            drain_output()
            world.abort(1)
        finally:
            os._exit(1)

    abort_on_early_exception._tapegrad_abort = "early"  # type: ignore[attr-defined]
    abort_on_early_exception._tapegrad_previous = previous  # type: ignore[attr-defined]
    sys.excepthook = abort_on_early_exception


def _abort_wait() -> float:
    try:
        return float(os.environ.get("TAPEGRAD_MPI_ABORT_WAIT", "120"))
    except ValueError:
        return 120.0


def _start_mpi(wait: float) -> Any:
    """Start MPI (it waits for the other ranks to start it too); exit with status 1 after
    ``wait`` seconds. (Starting MPI holds the GIL: only faulthandler's C watchdog can
    interrupt it.)"""
    import faulthandler

    quiet = open(os.devnull, "w")  # noqa: SIM115 - kept open until the process exits
    faulthandler.dump_traceback_later(wait, exit=True, file=quiet)
    world = comm.init()
    faulthandler.cancel_dump_traceback_later()
    return world
