"""Atomic file replacement: a reader sees the old file or the new one, never a mix.

``atomic_write(path, write)`` creates a temporary file in the directory of ``path``
(so that the final rename stays on one filesystem), lets ``write(f)`` fill it, then
flushes and fsyncs it, renames it over ``path`` with :func:`os.replace` (atomic on
POSIX and Windows) and fsyncs the directory so that the rename itself is durable.
If anything fails, or the process is killed before the rename, ``path`` is left
exactly as it was; an exception also removes the temporary file (a killed process
leaves it behind, named ``.<name>.<random>.tmp``, which is harmless).
"""

from __future__ import annotations

import os
import tempfile
from typing import IO, Callable


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no portable read-only query: set and restore
    os.umask(mask)
    return mask


def fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    flags = getattr(os, "O_DIRECTORY", 0) | os.O_RDONLY
    try:
        fd = os.open(directory, flags)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Replace the file at ``path`` atomically with what ``write(f)`` writes to ``f``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:  # mkstemp makes the file 0600; give it the mode a plain open() would
            mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o666 & ~_umask()
            os.chmod(tmp, mode)
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_directory(directory)
