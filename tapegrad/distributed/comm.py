"""The communicator: MPI through mpi4py when the process is an MPI rank, else a
single-process stand-in with the same interface, so that code written for several ranks
runs unchanged (and without mpi4py) in one process.

``init()`` decides once: MPI when the process was launched by ``mpirun`` (its
environment says so, see :mod:`._launch`) or when the program imported ``mpi4py.MPI``
itself; otherwise one process, no MPI import. tapegrad's collectives run on a duplicate
of ``MPI.COMM_WORLD``, so they never match a collective of the user's own code.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import _launch


class DistributedError(RuntimeError):
    """The MPI environment cannot run what was asked (no mpi4py under mpirun, ...)."""


# While non-blocking sums are in flight, a helper thread can let MPI progress them every
# PROGRESS_SECONDS: MPICH moves a collective on only inside MPI calls, and during backprop
# the main thread is in NumPy (which releases the GIL in its large operations) between one
# gradient and the next, for milliseconds. It runs when the ranks span several machines,
# where a network transfer can go on while the CPU computes. On one machine the sums are
# memory copies done by the ranks' own CPUs, so there is nothing to hide, and the thread's
# wake-ups cost compute: measured on 2 ranks of 1 core each (bench/distributed.py), the
# eager MLP step took 14.5 ms with it and 12.1 ms without. $TAPEGRAD_MPI_PROGRESS (seconds;
# 0: no thread) decides instead when set.
PROGRESS_SECONDS = 0.0002


class _Progress:
    """The helper thread: calls ``MPI_Iprobe`` on the communicator (a call that runs
    MPI's progress engine and touches no request) while :meth:`busy`."""

    def __init__(self, comm: Any, mpi: Any, interval: float) -> None:
        import threading

        self._wanted = threading.Event()
        self._interval = interval
        self._probe = comm.Iprobe
        self._source, self._tag = mpi.ANY_SOURCE, mpi.ANY_TAG
        threading.Thread(target=self._run, name="tapegrad-mpi-progress", daemon=True).start()

    def _run(self) -> None:
        import time

        wanted, probe, source, tag, interval = self._wanted, self._probe, self._source, self._tag, self._interval
        while True:
            wanted.wait()
            probe(source, tag)
            time.sleep(interval)

    def busy(self) -> None:
        self._wanted.set()

    def idle(self) -> None:
        self._wanted.clear()


def _progress_interval(several_machines: Callable[[], bool]) -> float:
    import os

    value = os.environ.get("TAPEGRAD_MPI_PROGRESS")
    if value is None:
        return PROGRESS_SECONDS if several_machines() else 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        from ..errors import OpValueError

        raise OpValueError(f"TAPEGRAD_MPI_PROGRESS must be a number of seconds (0: no progress thread), "
                           f"got {value!r}") from None


class Communicator:
    """What tapegrad.distributed needs of MPI: in-place sums (blocking or not), buffer and
    object broadcasts, an object allgather, and abort. ``rank`` and ``size`` are ints."""

    def __init__(self, comm: Any, mpi: Any) -> None:
        self._comm = comm
        self._mpi = mpi
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        self._ops = {"sum": mpi.SUM, "max": mpi.MAX, "min": mpi.MIN, "prod": mpi.PROD}
        self._waitall = mpi.Request.Waitall
        self._testall = mpi.Request.Testall
        self._progress: _Progress | None = None
        if self.size > 1:
            interval = _progress_interval(self._several_machines)
            if interval > 0 and mpi.Query_thread() == mpi.THREAD_MULTIPLE:
                self._progress = _Progress(comm, mpi, interval)

    def _several_machines(self) -> bool:
        """Whether the ranks span several machines (a collective: every rank calls it in init)."""
        local = self._comm.Split_type(self._mpi.COMM_TYPE_SHARED)
        try:
            return local.Get_size() < self.size
        finally:
            local.Free()

    @property
    def mpi_comm(self) -> Any:
        """The mpi4py communicator (a duplicate of COMM_WORLD)."""
        return self._comm

    def start_sum(self, buffer: np.ndarray) -> Any:
        """Start summing ``buffer`` over the ranks in place (non-blocking); returns a request."""
        request = self._comm.Iallreduce(self._mpi.IN_PLACE, buffer, self._mpi.SUM)
        if self._progress is not None:
            self._progress.busy()
        return request

    def test_all(self, requests: list) -> bool:
        """Let MPI progress the requests (MPICH progresses only inside MPI calls)."""
        return self._testall(requests)

    def wait_all(self, requests: list) -> None:
        self._waitall(requests)
        if self._progress is not None:
            self._progress.idle()

    def reduce_in_place(self, buffer: np.ndarray, op: str) -> None:
        self._comm.Allreduce(self._mpi.IN_PLACE, buffer, self._ops[op])

    def broadcast_buffer(self, buffer: np.ndarray, root: int) -> None:
        self._comm.Bcast(buffer, root=root)

    def broadcast(self, obj: Any, root: int) -> Any:
        return self._comm.bcast(obj, root=root)

    def allgather(self, obj: Any) -> list:
        return self._comm.allgather(obj)

    def barrier(self) -> None:
        self._comm.Barrier()

    def abort(self, code: int) -> None:
        self._mpi.COMM_WORLD.Abort(code)


class _Done:
    """A finished request of the single-process communicator."""


class SingleProcess:
    """The communicator of a process that is the only rank: every collective is the
    identity, nothing is imported."""

    rank = 0
    size = 1
    mpi_comm = None

    def start_sum(self, buffer: np.ndarray) -> Any:
        return _Done()

    def test_all(self, requests: list) -> bool:
        return True

    def wait_all(self, requests: list) -> None:
        pass

    def reduce_in_place(self, buffer: np.ndarray, op: str) -> None:
        pass

    def broadcast_buffer(self, buffer: np.ndarray, root: int) -> None:
        pass

    def broadcast(self, obj: Any, root: int) -> Any:
        return obj

    def allgather(self, obj: Any) -> list:
        return [obj]

    def barrier(self) -> None:
        pass

    def abort(self, code: int) -> None:
        import os

        os._exit(code)


_world: Communicator | SingleProcess | None = None


def init() -> Communicator | SingleProcess:
    """Start tapegrad's communication (idempotent) and return the communicator.

    Under ``mpirun`` (or after ``from mpi4py import MPI``) this initialises MPI through
    mpi4py and, when there are several ranks, makes an uncaught exception on any rank
    end the whole job (see :mod:`.faults`); otherwise the process is rank 0 of 1 and
    MPI is not imported."""
    global _world
    if _world is not None:
        return _world
    if _launch.launched_by_mpirun() or _launch.mpi_imported():
        try:
            from mpi4py import MPI
        except ImportError as exc:
            size = _launch.launched_size()
            raise DistributedError(
                f"tapegrad.distributed: this process was launched by mpirun as one of {size} ranks, but mpi4py "
                f"cannot be imported ({exc}); install the mpi extra: pip install 'tapegrad[mpi]' "
                f"(mpi4py and an MPI library)"
            ) from None
        world = Communicator(MPI.COMM_WORLD.Dup(), MPI)
        if world.size > 1:
            from . import faults

            faults.install(world)
    else:
        world = SingleProcess()
    _world = world
    return world


def world() -> Communicator | SingleProcess:
    """The communicator, initialising on first use."""
    return _world if _world is not None else init()


def rank() -> int:
    """This process's rank, 0 to ``size() - 1`` (initialises on first use)."""
    return world().rank


def size() -> int:
    """The number of ranks (1 when the process was not launched by mpirun)."""
    return world().size


def is_main() -> bool:
    """Whether this is rank 0: the rank that prints, logs and writes checkpoints."""
    return world().rank == 0


def barrier() -> None:
    """Wait until every rank reaches this call."""
    world().barrier()
