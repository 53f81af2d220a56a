"""Whether this process is one of several MPI ranks, read from the environment that the
launchers set, without importing MPI: ``fit`` asks this on every call, and a process that
was not launched by ``mpirun`` must never pay for (or fail on) an MPI import."""

from __future__ import annotations

import os
import sys

# The world size as the launchers export it: MPICH's and Intel MPI's Hydra (and Slurm's
# PMI-2), Open MPI, PMIx launchers, MVAPICH2.
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")


def launched_size() -> int | None:
    """The number of ranks the launcher started (None when no launcher's variable is set)."""
    for name in SIZE_VARIABLES:
        value = os.environ.get(name)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                continue
    return None


def launched_rank() -> int | None:
    """This process's rank as the launcher exported it (None when no launcher's variable is set)."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                continue
    return None


def launched_by_mpirun() -> bool:
    return launched_size() is not None


def mpi_imported() -> bool:
    """Whether the program imported mpi4py's MPI module itself (then MPI is used even
    without a launcher's variables, e.g. under a launcher that sets none of them)."""
    return "mpi4py.MPI" in sys.modules


def several_ranks() -> bool:
    """Whether ``fit`` must train data-parallel: the process was launched as one of
    several ranks, or :func:`tapegrad.distributed.init` found more than one."""
    size = launched_size()
    if size is not None and size > 1:
        return True
    comm = sys.modules.get("tapegrad.distributed.comm")
    current = getattr(comm, "_world", None)
    return current is not None and current.size > 1
