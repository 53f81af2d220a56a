"""atomic_write: errors name the target, and the temporary files of killed writers are
removed by the next save to the same path, never those of a live writer."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tapegrad.io import atomic, write_container
from tapegrad.io.atomic import STALE_AFTER, remove_stale_temporaries, temporary_name


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def touch(path, age: float = 0.0) -> None:
    path.write_bytes(b"half a model")
    if age:
        t = time.time() - age
        os.utime(path, (t, t))


def test_stale_temporaries_of_the_target_are_removed_and_nothing_else(tmp_path):
    gone = dead_pid()
    stale = tmp_path / temporary_name("m.tgm", gone)
    live = tmp_path / temporary_name("m.tgm", os.getpid())  # this process: could be another thread's save
    other_target = tmp_path / temporary_name("other.tgm", gone)
    prefix_target = tmp_path / temporary_name("m.tgm.bak", gone)  # ".m.tgm.bak.<pid>-..." starts like ours
    old_style = tmp_path / ".m.tgm.k2j4_x9a.tmp"  # mkstemp's names: not ours to judge
    not_ours = tmp_path / f".m.tgm.{gone}-nothexnothex.tmp"
    for p in (stale, live, other_target, prefix_target, old_style, not_ours):
        touch(p)
    link = tmp_path / temporary_name("m.tgm", gone)
    link.symlink_to(tmp_path / "elsewhere")
    assert remove_stale_temporaries(str(tmp_path), "m.tgm") == [str(stale)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, other_target, prefix_target, old_style, not_ours, link))


def test_a_locked_temporary_is_never_removed(tmp_path):
    # a writer whose pid means nothing here (another host, another pid namespace) holds its lock
    locked = tmp_path / temporary_name("m.tgm", dead_pid())
    touch(locked, age=2 * STALE_AFTER)
    fd = os.open(locked, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert remove_stale_temporaries(str(tmp_path), "m.tgm") == []
        write_container(tmp_path / "m.tgm", {}, {"w": np.ones(3)})
        assert locked.exists()
    finally:
        os.close(fd)
    assert remove_stale_temporaries(str(tmp_path), "m.tgm") == [str(locked)]


def test_an_old_unlocked_temporary_of_a_live_pid_is_removed(tmp_path):
    # the pid was reused by another process: after STALE_AFTER seconds without a write it is stale
    reused = tmp_path / temporary_name("m.tgm", os.getpid())
    fresh = tmp_path / temporary_name("m.tgm", os.getpid())
    touch(reused, age=2 * STALE_AFTER)
    touch(fresh, age=STALE_AFTER / 2)
    assert remove_stale_temporaries(str(tmp_path), "m.tgm") == [str(reused)]
    assert fresh.exists()


def test_the_writer_locks_its_temporary_while_it_writes(tmp_path):
    seen = []

    def write(f):
        (tmp,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert tmp.name.startswith(f".m.tgm.{os.getpid()}-")
        fd = os.open(tmp, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        seen.append(tmp)
        f.write(b"data")

    atomic.atomic_write(tmp_path / "m.tgm", write)
    assert seen and not seen[0].exists() and (tmp_path / "m.tgm").read_bytes() == b"data"


@pytest.mark.parametrize("where, error, words", [
    ("missing/m.tgm", FileNotFoundError, "does not exist"),
    ("missing/deeper/m.tgm", FileNotFoundError, "does not exist"),
    ("folder/", IsADirectoryError, "ends with '/'"),
    ("missing/", IsADirectoryError, "ends with '/'"),
    ("folder", IsADirectoryError, "it is a folder"),
    ("afile/m.tgm", NotADirectoryError, "is not a folder"),
    ("", FileNotFoundError, "the path is empty"),
])
def test_errors_name_the_target_not_the_temporary_file(tmp_path, monkeypatch, where, error, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_bytes(b"")
    with pytest.raises(error) as info:
        write_container(where, {}, {"w": np.ones(3)})
    message = str(info.value)
    assert words in message and repr(where) in message and ".tmp" not in message, message
    assert info.value.filename == where
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["afile", "folder"]


def test_a_failing_rename_names_the_target(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", src, None, dst)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError) as info:
        write_container(tmp_path / "m.tgm", {}, {"w": np.ones(3)})
    assert str(tmp_path / "m.tgm") in str(info.value) and ".tmp" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
