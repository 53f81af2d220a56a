"""The cache directory of the datasets, the download of missing files, and the errors.

Files live in ``$TAPEGRAD_DATASETS/<name>/`` when the environment variable is set, else in
``~/.tapegrad/datasets/<name>/``. A missing file is downloaded from the first mirror that
answers (a short socket timeout, a temporary file in the same directory, its MD5 checked
against the published one, then an atomic rename); where none answers, or with
``download=False``, :class:`DatasetNotFoundError` lists the exact files and directory.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from ...errors import TapegradError

ENV_VAR = "TAPEGRAD_DATASETS"
TIMEOUT = 10.0  # seconds without an answer from the server before a mirror is given up


class DatasetNotFoundError(TapegradError, FileNotFoundError):
    """The files of a dataset are not in the cache directory and could not be downloaded."""


class CorruptDatasetError(TapegradError, ValueError):
    """A dataset file that is not what its name says (truncated, bad magic number, wrong size)."""


class MissingDependencyError(TapegradError, ImportError):
    """An optional package that a dataset needs is not installed."""


def dataset_dir(name: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """The directory of dataset ``name``: ``directory`` if given, else
    ``$TAPEGRAD_DATASETS/<name>`` or ``~/.tapegrad/datasets/<name>``."""
    if directory is not None:
        return Path(directory).expanduser()
    root = os.environ.get(ENV_VAR)
    base = Path(root).expanduser() if root else Path.home() / ".tapegrad" / "datasets"
    return base / name


def download_file(url: str, dest: Path, md5: str | None, timeout: float = TIMEOUT) -> None:
    """Download ``url`` to ``dest`` atomically: a temporary file beside it, fsync, MD5 check, rename.
    Raises OSError (including urllib's URLError) on any failure, leaving ``dest`` untouched."""
    import urllib.request

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if md5 is not None and digest.hexdigest() != md5:
            raise OSError(f"{url}: MD5 {digest.hexdigest()} is not the published {md5} (corrupt download)")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _is_http_error(exc: BaseException) -> bool:
    import urllib.error

    return isinstance(exc, urllib.error.HTTPError)


def fetch(
    dataset: str,
    directory: Path,
    files: Sequence[str],
    mirrors: Sequence[str],
    md5s: dict[str, str],
    download: bool,
    alternatives: str = "",
    present: Callable[[Path], bool] = Path.is_file,
    explain_directory: bool = True,
) -> None:
    """Make sure every file of ``files`` is in ``directory``, downloading the missing ones
    (from ``mirror + name``) when ``download``; else raise :class:`DatasetNotFoundError`.
    ``present(path)`` says whether a file is there (it may accept an alternative form)."""
    missing = [name for name in files if not present(directory / name)]
    failures: list[str] = []
    new_dirs = [d for d in (directory, *directory.parents) if not d.exists()]  # child first
    if missing and download:
        unreachable: set[str] = set()  # mirrors not to try again for the next files
        for name in list(missing):
            for mirror in mirrors:
                if mirror in unreachable:
                    continue
                url = mirror + name
                print(f"{dataset}: downloading {url} to {directory}", file=sys.stderr)
                try:
                    download_file(url, directory / name, md5s.get(name))
                except Exception as exc:  # URLError, timeouts, HTTP errors, bad MD5, broken connections
                    failures.append(f"{url}: {exc}")
                    if not _is_http_error(exc):  # the server answered: keep it for the other files
                        unreachable.add(mirror)
                    continue
                missing.remove(name)
                break
    if not missing:
        return
    try:  # leave none of the directories made for a failed download behind
        for d in new_dirs:
            d.rmdir()  # only if empty
    except OSError:
        pass
    lines = [
        f"{dataset}: missing dataset file(s) {', '.join(missing)} in {directory}",
        f"Put {'these files' if len(files) > 1 else 'this file'} in the directory {directory}:",
        *(f"    {name}" for name in files),
    ]
    if alternatives:
        lines.append(alternatives)
    lines.append(f"They can be downloaded from {' or '.join(mirrors)}.")
    if explain_directory:
        lines.append(f"(The directory is ${ENV_VAR}/{dataset} when the environment variable {ENV_VAR} is set, "
                     f"else ~/.tapegrad/datasets/{dataset}; or pass cache_dir=...)")
    if failures:
        lines.append("The download failed: " + "; ".join(failures))
    elif not download:
        lines.append("(download=False: nothing was downloaded)")
    raise DatasetNotFoundError("\n".join(lines))
