"""MNIST and Fashion-MNIST from their standard IDX files (``*-idx3-ubyte.gz``, ``*-idx1-ubyte.gz``).

The IDX format: a big-endian header ``0x00 0x00 <type> <ndim>`` (type 0x08 is unsigned
byte), then ``ndim`` big-endian uint32 dimensions, then the values in C order.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ._files import CorruptDatasetError, dataset_dir, fetch
from ._loaded import LoadedDataset

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

FASHION_MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # plain HTTP only; MD5 checked
)
FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}

IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
SIDE = 28
CLASSES = 10

Split = tuple[np.ndarray, np.ndarray]


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile, truncated stream, bad CRC
        raise CorruptDatasetError(f"{path}: not a valid gzip file ({exc}); delete it and download it again") from None


def read_idx(path: str | os.PathLike[str], magic: int) -> np.ndarray:
    """The array of an IDX file of unsigned bytes (gzip-compressed when the name ends in .gz),
    checked: magic number ``magic`` and a payload of exactly the size the header gives."""
    path = Path(path)
    data = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptDatasetError(f"{path}: {len(data)} bytes is too short for an IDX header of {header} bytes")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise CorruptDatasetError(f"{path}: magic number 0x{found:08x} is not 0x{magic:08x} (an IDX file of "
                                  f"{ndim}-dimensional unsigned bytes)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != expected:
        raise CorruptDatasetError(f"{path}: {len(data) - header} bytes of data, but the header's shape {dims} needs "
                                  f"{expected} (truncated or corrupt file)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def _resolve(directory: Path, name: str) -> Path:
    """The file, or its uncompressed form (the name without .gz) if only that is present."""
    path = directory / name
    if not path.is_file() and (directory / name[:-3]).is_file():
        return directory / name[:-3]
    return path


def _present(path: Path) -> bool:
    return path.is_file() or path.with_suffix("").is_file()


def _split(directory: Path, images_name: str, labels_name: str) -> Split:
    images_path = _resolve(directory, images_name)
    labels_path = _resolve(directory, labels_name)
    images = read_idx(images_path, IMAGE_MAGIC)
    labels = read_idx(labels_path, LABEL_MAGIC)
    if images.shape[1:] != (SIDE, SIDE):
        raise CorruptDatasetError(f"{images_path}: images of {images.shape[1]}x{images.shape[2]} pixels, "
                                  f"expected {SIDE}x{SIDE}")
    if len(images) != len(labels):
        raise CorruptDatasetError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                                  f"{len(labels)} labels")
    if labels.size and labels.max() >= CLASSES:
        i = int(np.argmax(labels >= CLASSES))
        raise CorruptDatasetError(f"{labels_path}: label {labels[i]} at index {i} is not a class 0-{CLASSES - 1}")
    return images, labels


def _load(name: str, mirrors: tuple[str, ...], md5s: dict[str, str], directory: str | os.PathLike[str] | None,
          download: bool) -> LoadedDataset:
    folder = dataset_dir(name, directory)
    fetch(name, folder, FILES, mirrors, md5s, download, alternatives="(or the same files uncompressed, without .gz)",
          present=_present, explain_directory=directory is None)
    return LoadedDataset((_split(folder, FILES[0], FILES[1]), _split(folder, FILES[2], FILES[3])))


def mnist(*, download: bool = True, cache_dir: str | os.PathLike[str] | None = None) -> LoadedDataset:
    """The MNIST handwritten digits: ``((x_train, y_train), (x_test, y_test))``.

    ``x`` are uint8 images of shape ``(n, 28, 28)`` (0 = background, 255 = ink), ``y`` uint8
    class labels 0-9 of shape ``(n,)`` (60,000 training and 10,000 test samples), as
    ``keras.datasets.mnist.load_data()``. Read from the four standard files
    ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
    ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (or the same files
    uncompressed) in ``cache_dir``, by default ``$TAPEGRAD_DATASETS/mnist/`` or
    ``~/.tapegrad/datasets/mnist/``. Missing files are downloaded when ``download`` and the
    network allows; otherwise :class:`DatasetNotFoundError` lists the files and the
    directory. A damaged file raises :class:`CorruptDatasetError` naming it. The result
    also has ``load_data()``, returning the same pair (Rindow: ``mnist()->loadData()``).
    """
    return _load("mnist", MNIST_MIRRORS, MNIST_MD5, cache_dir, download)


def fashion_mnist(*, download: bool = True, cache_dir: str | os.PathLike[str] | None = None) -> LoadedDataset:
    """Zalando's Fashion-MNIST: ``((x_train, y_train), (x_test, y_test))``, as :func:`mnist`
    (the same four file names and shapes) from ``$TAPEGRAD_DATASETS/fashion_mnist/`` or
    ``~/.tapegrad/datasets/fashion_mnist/``. Classes: 0 T-shirt/top, 1 Trouser, 2 Pullover,
    3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot."""
    return _load("fashion_mnist", FASHION_MIRRORS, FASHION_MD5, cache_dir, download)
