"""A rank that raises ends the whole job, never a hang.

An uncaught exception on one rank would leave the others waiting forever in their next
collective. After :func:`install` (done by ``init()`` when there are several ranks) the
exception is printed as usual on stderr, followed by a line naming the rank, and then the
whole MPI job is aborted (``MPI_Abort`` on ``COMM_WORLD``): ``mpirun`` ends every rank and
exits with a non-zero status.

Before aborting, the output is flushed and given to the launcher: ``mpirun`` reads each
rank's stdout and stderr through pipes and stops forwarding them once the job is aborted,
so the hook waits (at most ``DRAIN_SECONDS``) until the pipes are empty. ``sys.exit`` with
a non-zero status is not an exception and is not covered: raise instead.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from typing import Any

DRAIN_SECONDS = 2.0
# After a pipe is empty the launcher still has to pass the text on to mpirun.
_FORWARD_SECONDS = 0.1


def _unread_bytes(fd: int) -> int:
    import fcntl
    import termios

    buf = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return int.from_bytes(buf, sys.byteorder)


def drain_output() -> None:
    """Flush Python's stdout and stderr, then wait until the launcher has read them."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or broken stream: nothing to drain
            pass
    pipes = []
    for fd in (1, 2):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                pipes.append(fd)
        except OSError:
            continue
    if not pipes:
        return
    deadline = time.monotonic() + DRAIN_SECONDS
    try:
        while any(_unread_bytes(fd) for fd in pipes) and time.monotonic() < deadline:
            time.sleep(0.005)
    except (OSError, ImportError):  # no FIONREAD here: wait the whole budget's tenth instead
        time.sleep(DRAIN_SECONDS / 10)
    time.sleep(_FORWARD_SECONDS)


def _announce(rank: int, size: int, kind: type[BaseException]) -> None:
    sys.stderr.write(f"tapegrad.distributed: rank {rank} of {size} raised {kind.__name__}; aborting the job on "
                     f"every rank\n")


def install(world: Any) -> None:
    """Make an uncaught exception in this rank abort the whole job (see the module docstring)."""
    previous = sys.excepthook
    if getattr(previous, "_tapegrad_abort", None) == "started":
        return
    if getattr(previous, "_tapegrad_abort", None) == "early":
        previous = previous._tapegrad_previous  # type: ignore[attr-defined]

    def abort_on_exception(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        try:
            previous(kind, value, tb)
            _announce(world.rank, world.size, kind)
            drain_output()
        finally:
            try:
                world.abort(1)
            finally:
                os._exit(1)

    abort_on_exception._tapegrad_abort = "started"  # type: ignore[attr-defined]
    sys.excepthook = abort_on_exception


def install_before_init() -> None:
    """Under mpirun, before MPI is started (``import tapegrad`` does this): an uncaught
    exception starts MPI, then aborts the job. Starting MPI waits until every rank starts it
    too, which the other ranks do in their first collective (``fit``, ``init()``): the job
    ends then, instead of those ranks waiting forever for this one. If they have not started
    MPI after ``$TAPEGRAD_MPI_ABORT_WAIT`` seconds (default 120: a program that runs under
    mpirun without using MPI), this rank exits alone."""
    from . import _launch

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
            _announce(world.rank, world.size, kind)
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

    from . import comm

    quiet = open(os.devnull, "w")  # noqa: SIM115 - kept open until the process exits
    faulthandler.dump_traceback_later(wait, exit=True, file=quiet)
    world = comm.init()
    faulthandler.cancel_dump_traceback_later()
    return world
