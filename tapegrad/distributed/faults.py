"""A rank that raises ends the whole job, never a hang (after MPI started; before, see
:mod:`.early`).

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


def announce(rank: int, size: int, kind: type[BaseException]) -> None:
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
            announce(world.rank, world.size, kind)
            drain_output()
        finally:
            try:
                world.abort(1)
            finally:
                os._exit(1)

    abort_on_exception._tapegrad_abort = "started"  # type: ignore[attr-defined]
    sys.excepthook = abort_on_exception
