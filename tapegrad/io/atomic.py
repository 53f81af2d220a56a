"""Atomic file replacement: a reader sees the old file or the new one, never a mix.

``atomic_write(path, write)`` creates a temporary file in the directory of ``path``
(so that the final rename stays on one filesystem), lets ``write(f)`` fill it, then
flushes and fsyncs it, renames it over ``path`` with :func:`os.replace` (atomic on
POSIX and Windows) and fsyncs the directory so that the rename itself is durable.
If anything fails, or the process is killed before the rename, ``path`` is left
exactly as it was; an exception also removes the temporary file.

Temporary files are named ``.<name>.<pid>-<12 hex digits>.tmp`` and their writer holds
an exclusive ``flock`` on them until it is done. A process killed midway leaves its
temporary file behind; the next ``atomic_write`` to the same ``path`` removes such
leftovers of that target (and only of that target): a file is removed only if no
process holds its lock, and its writer's process is gone (same host) or it has not
been written to for :data:`STALE_AFTER` seconds. So a save running in another live
process is never disturbed. (Without ``fcntl``, e.g. on Windows, only the age counts,
and Windows refuses to delete a file that is still open.)

Errors name the target: saving into a missing folder, to a folder, or to a path that
ends with ``/`` raises an :class:`OSError` whose message and ``filename`` are the path
given, not the temporary file's.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import time
from typing import IO, Callable

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

#: Seconds without a write after which a temporary file whose lock nobody holds is
#: stale even if a process with its writer's pid exists (the pid may have been reused).
STALE_AFTER = 600.0

_TEMP = re.compile(r"^\.(?P<target>.+)\.(?P<pid>[0-9]{1,10})-(?P<token>[0-9a-f]{12})\.tmp$")


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


def temporary_name(name: str, pid: int | None = None, token: str | None = None) -> str:
    """The name of a temporary file for the target file ``name``."""
    return f".{name}.{os.getpid() if pid is None else pid}-{token or secrets.token_hex(6)}.tmp"


def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (True when that cannot be told)."""
    if os.name == "nt":  # os.kill would terminate it
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, ValueError):
        return False
    except OSError:  # EPERM: it exists, owned by another user
        return True
    return True


def remove_stale_temporaries(directory: str, name: str) -> list[str]:
    """Remove the temporary files that killed writers of ``directory/name`` left behind
    (see the module docstring for when a file counts as left behind). Returns the
    paths removed; errors are ignored (another process may be cleaning up too)."""
    prefix = f".{name}."
    removed: list[str] = []
    try:
        entries = os.scandir(directory)
    except OSError:
        return removed
    now = time.time()
    with entries:
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            match = _TEMP.match(entry.name)
            if match is None or match["target"] != name:
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER
            except OSError:
                continue
            if not old and (fcntl is None or _pid_alive(int(match["pid"]))):
                continue
            if _remove_unlocked(entry.path, locks=fcntl is not None, old=old):
                removed.append(entry.path)
    return removed


def _remove_unlocked(path: str, locks: bool, old: bool) -> bool:
    if not locks:
        try:
            os.unlink(path)  # Windows refuses while a writer has it open
            return True
        except OSError:
            return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer holds it
        except OSError:  # no locks on this filesystem: its age alone must tell
            if not old:
                return False
        try:
            os.unlink(path)
            return True
        except OSError:
            return False
    finally:
        os.close(fd)


def _target_error(exc: OSError, path: str, what: str) -> OSError:
    """``exc`` again, naming the target ``path`` instead of a temporary file."""
    code = exc.errno if exc.errno is not None else errno.EIO
    return type(exc)(code, f"cannot save {path!r}: {what}: {exc.strerror or exc}", path)


def _check_target(path: str) -> tuple[str, str]:
    """(directory, file name) of the target; raises naming it if it cannot be written."""
    if not path:
        raise FileNotFoundError(errno.ENOENT, "cannot save: the path is empty", path)
    seps = (os.sep, os.altsep) if os.altsep else (os.sep,)
    if path.endswith(seps):
        raise IsADirectoryError(errno.EISDIR, f"cannot save {path!r}: the path ends with {path[-1]!r}, so it names "
                                f"a folder; add a file name, e.g. {path}model.tgm", path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"cannot save {path!r}: it is a folder; add a file name, e.g. "
                                f"{os.path.join(path, 'model.tgm')}", path)
    if not os.path.isdir(directory):
        if os.path.exists(directory):
            raise NotADirectoryError(errno.ENOTDIR, f"cannot save {path!r}: {directory!r} is not a folder", path)
        raise FileNotFoundError(errno.ENOENT, f"cannot save {path!r}: the folder {directory!r} does not exist",
                                path)
    return directory, os.path.basename(path)


def _create_temporary(directory: str, name: str, path: str) -> tuple[int, str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = os.path.join(directory, temporary_name(name))
        try:
            fd = os.open(tmp, flags, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _target_error(exc, path, f"cannot create a temporary file in {directory!r}") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # no locks on this filesystem: cleaners go by pid and age
                pass
        return fd, tmp
    raise FileExistsError(errno.EEXIST, f"cannot save {path!r}: no free temporary file name", path)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Replace the file at ``path`` atomically with what ``write(f)`` writes to ``f``."""
    path = os.fspath(path)
    directory, name = _check_target(path)
    remove_stale_temporaries(directory, name)
    fd, tmp = _create_temporary(directory, name, path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:  # the file was created 0600; give it the mode a plain open() would
            mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o666 & ~_umask()
            os.chmod(tmp, mode)
        except OSError:
            pass
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise _target_error(exc, path, "cannot replace it") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_directory(directory)
