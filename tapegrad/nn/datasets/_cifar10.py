"""CIFAR-10 from its binary version (``cifar-10-binary.tar.gz``), never from the pickled one.

Each ``.bin`` file is a sequence of 3073-byte records: one label byte (0-9), then the
32x32 image as 1024 red, 1024 green and 1024 blue bytes, rows in order.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import zlib
from pathlib import Path

import numpy as np

from ._files import CorruptDatasetError, dataset_dir, fetch
from ._loaded import Cifar10Dataset

ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
MEMBERS = (*TRAIN_FILES, TEST_FILE)
MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
MD5 = {ARCHIVE: "c32a1d4ab5d03f1284b67883e8d87530"}
RECORD = 1 + 3 * 32 * 32
CLASSES = 10

Split = tuple[np.ndarray, np.ndarray]


def parse_batch(data: bytes, where: str) -> Split:
    """The images ``(n, 32, 32, 3)`` and labels ``(n,)`` (both uint8) of one ``.bin`` file."""
    if not data or len(data) % RECORD:
        raise CorruptDatasetError(f"{where}: {len(data)} bytes is not a whole number of {RECORD}-byte records "
                                  "(1 label byte + 3072 pixel bytes): truncated or corrupt file")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].copy()
    if labels.max() >= CLASSES:
        i = int(np.argmax(labels >= CLASSES))
        raise CorruptDatasetError(f"{where}: record {i} has label {labels[i]}, not a class 0-{CLASSES - 1} "
                                  "(corrupt file)")
    images = np.ascontiguousarray(records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


def _read_archive(path: Path) -> dict[str, bytes]:
    import tarfile

    wanted = {f"{FOLDER}/{name}": name for name in MEMBERS}
    blobs: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = wanted.get(posixpath.normpath(member.name))
                if name is None or not member.isfile():
                    continue
                f = tar.extractfile(member)
                assert f is not None
                blobs[name] = f.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise CorruptDatasetError(f"{path}: not a readable tar.gz archive ({exc}); delete it and download it "
                                  "again") from None
    missing = [f"{FOLDER}/{name}" for name in MEMBERS if name not in blobs]
    if missing:
        raise CorruptDatasetError(f"{path}: the archive lacks {', '.join(missing)}")
    return blobs


def _keep_extracted(blobs: dict[str, bytes], folder: Path) -> None:
    """Write the members beside the archive (atomically), so the next call skips the
    decompression; a read-only cache is not an error."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in blobs.items():
            fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=folder)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, folder / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    except OSError:
        pass


def cifar10(*, download: bool = True, cache_dir: str | os.PathLike[str] | None = None) -> Cifar10Dataset:
    """CIFAR-10: ``((x_train, y_train), (x_test, y_test))``.

    ``x`` are uint8 images of shape ``(n, 32, 32, 3)`` (channels last, as Keras), ``y``
    uint8 class labels 0-9 of shape ``(n,)`` (Keras gives ``(n, 1)``); 50,000 training and
    10,000 test samples. Classes: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog,
    6 frog, 7 horse, 8 ship, 9 truck.

    Read from the binary version in ``cache_dir`` (default ``$TAPEGRAD_DATASETS/cifar10/``
    or ``~/.tapegrad/datasets/cifar10/``): the extracted
    ``cifar-10-batches-bin/data_batch_1.bin`` ... ``data_batch_5.bin`` and ``test_batch.bin``
    if all are there, else the archive ``cifar-10-binary.tar.gz`` (whose members are then
    kept extracted beside it). The archive is downloaded when missing, if ``download`` and
    the network allow; otherwise :class:`DatasetNotFoundError` lists the files and the
    directory. A damaged file raises :class:`CorruptDatasetError` naming it.

    ``cifar10().load_data()`` is Rindow's: ``(train, test)``, each an iterable of
    ``(images, labels)`` chunks, one per batch file (five for training, one for testing),
    for ``nn.data.SequentialDataset``.
    """
    directory = dataset_dir("cifar10", cache_dir)
    folder = directory / FOLDER
    extracted = all((folder / name).is_file() for name in MEMBERS)
    if extracted:
        blobs = {name: (folder / name).read_bytes() for name in MEMBERS}
        where = {name: str(folder / name) for name in MEMBERS}
    else:
        fetch("cifar10", directory, [ARCHIVE], MIRRORS, MD5, download,
              alternatives=f"(or its extracted files {', '.join(f'{FOLDER}/{name}' for name in MEMBERS)})",
              explain_directory=cache_dir is None)
        archive = directory / ARCHIVE
        blobs = _read_archive(archive)
        where = {name: f"{archive}: {FOLDER}/{name}" for name in MEMBERS}
    parts = [parse_batch(blobs[name], where[name]) for name in MEMBERS]
    if not extracted:
        _keep_extracted(blobs, folder)
    return Cifar10Dataset.of(parts[:5], parts[5:])
