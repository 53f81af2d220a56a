"""nn.datasets: MNIST / Fashion-MNIST (IDX) and CIFAR-10 (binary version) read from small files
written in the real formats, the cache directory, the download path (faked: no network in
tests), the errors for missing and damaged files, and scikit-learn's digits."""

import gzip
import io
import struct
import sys
import tarfile
import urllib.request

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.nn import datasets
from tapegrad.nn.datasets import CorruptDatasetError, DatasetNotFoundError, MissingDependencyError, _files, _mnist

MNIST_NAMES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
               "t10k-labels-idx1-ubyte.gz"]
CIFAR_MEMBERS = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
REAL_DOWNLOAD_FILE = _files.download_file


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Every download fails, and the default cache lives in the test's directory."""
    calls = []

    def refuse(url, dest, md5, timeout=_files.TIMEOUT):
        calls.append(url)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(_files, "download_file", refuse)

    def no_urlopen(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", no_urlopen)
    monkeypatch.setenv("TAPEGRAD_DATASETS", str(tmp_path / "cache"))
    return calls


def idx_bytes(array, magic=None):
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x0800 | array.ndim
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_mnist(directory, n_train=3, n_test=2, seed=0, compress=True):
    rng = np.random.default_rng(seed)
    data = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in data.items():
        raw = idx_bytes(array)
        if compress:
            (directory / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (directory / name).write_bytes(raw)
    return data


def check_mnist(result, data):
    (x_train, y_train), (x_test, y_test) = result
    for got, name in [(x_train, "train-images-idx3-ubyte"), (y_train, "train-labels-idx1-ubyte"),
                      (x_test, "t10k-images-idx3-ubyte"), (y_test, "t10k-labels-idx1-ubyte")]:
        assert got.dtype == np.uint8 and got.flags.writeable
        np.testing.assert_array_equal(got, data[name])
    assert x_train.shape == (len(y_train), 28, 28)


# -- MNIST / Fashion-MNIST ------------------------------------------------------------------------
def test_mnist_reads_idx_gz_from_the_env_var_cache(tmp_path):
    data = write_mnist(tmp_path / "cache" / "mnist")
    check_mnist(datasets.mnist(), data)
    fashion = write_mnist(tmp_path / "cache" / "fashion_mnist", n_train=4, seed=1)
    result = datasets.fashion_mnist()
    check_mnist(result, fashion)
    assert len(result[0][0]) == 4  # its own directory, not mnist's
    check_mnist(datasets.mnist.load_data(), data)
    check_mnist(tg.NeuralNetworks().datasets.mnist(), data)


def test_default_cache_dir_without_the_env_var(monkeypatch, tmp_path):
    monkeypatch.delenv("TAPEGRAD_DATASETS")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".tapegrad" / "datasets" / "mnist"
    assert datasets.dataset_dir("mnist") == expected
    data = write_mnist(expected)
    check_mnist(datasets.mnist(), data)
    monkeypatch.setenv("TAPEGRAD_DATASETS", str(tmp_path / "elsewhere"))
    assert datasets.dataset_dir("cifar10") == tmp_path / "elsewhere" / "cifar10"


def test_mnist_explicit_cache_dir_and_uncompressed_files(tmp_path):
    data = write_mnist(tmp_path / "raw", compress=False)
    check_mnist(datasets.mnist(cache_dir=tmp_path / "raw"), data)


def test_missing_files_error_lists_exact_names_and_directory(tmp_path, no_network):
    directory = tmp_path / "cache" / "mnist"
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.mnist(download=False)
    message = str(info.value)
    for name in MNIST_NAMES:
        assert f"\n    {name}" in message
    assert f"Put these files in the directory {directory}:" in message
    assert "download=False" in message and no_network == []
    assert isinstance(info.value, FileNotFoundError)
    # With downloads allowed (and failing): every mirror is tried, the reason is reported,
    # no directory is left behind, and an unreachable mirror is not retried for each file.
    with pytest.raises(DatasetNotFoundError, match="network disabled in tests") as info:
        datasets.mnist()
    assert no_network == [m + MNIST_NAMES[0] for m in _mnist.MNIST_MIRRORS]
    assert not directory.exists() and not (tmp_path / "cache").exists()
    # Only the missing ones are named missing.
    write_mnist(directory)
    (directory / MNIST_NAMES[3]).unlink()
    with pytest.raises(DatasetNotFoundError, match=f"missing dataset file\\(s\\) {MNIST_NAMES[3]} in"):
        datasets.fashion_mnist(cache_dir=directory, download=False)


def test_download_fills_the_cache(monkeypatch, tmp_path):
    source = tmp_path / "server"
    data = write_mnist(source, n_train=5)
    fetched = []

    def fake_download(url, dest, md5, timeout=_files.TIMEOUT):
        fetched.append((url, dest.name, md5))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((source / dest.name).read_bytes())

    monkeypatch.setattr(_files, "download_file", fake_download)
    check_mnist(datasets.mnist(), data)
    assert [f[1] for f in fetched] == MNIST_NAMES
    assert fetched[0] == (_mnist.MNIST_MIRRORS[0] + MNIST_NAMES[0], MNIST_NAMES[0],
                          "f68b3c2dcbeaaa9fbdd348bbdeb94873")
    check_mnist(datasets.mnist(), data)
    assert len(fetched) == 4  # cached: not downloaded again


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_file_checks_md5_and_renames_atomically(monkeypatch, tmp_path):
    import hashlib

    download_file = REAL_DOWNLOAD_FILE
    payload = b"x" * 3_000_000
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: FakeResponse(payload))
    dest = tmp_path / "d" / "file.gz"
    download_file("https://example.invalid/file.gz", dest, hashlib.md5(payload).hexdigest())
    assert dest.read_bytes() == payload
    dest2 = tmp_path / "d" / "other.gz"
    with pytest.raises(OSError, match="MD5 .* is not the published 0123"):
        download_file("https://example.invalid/other.gz", dest2, "0123")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["file.gz"]  # no partial file left


def test_corrupt_idx_files_name_the_file(tmp_path):
    directory = tmp_path / "cache" / "mnist"
    data = write_mnist(directory)
    labels = directory / "train-labels-idx1-ubyte.gz"
    images = directory / "train-images-idx3-ubyte.gz"

    def expect(path, pattern):
        with pytest.raises(CorruptDatasetError, match=pattern) as info:
            datasets.mnist()
        assert str(path) in str(info.value)

    good_images = images.read_bytes()
    images.write_bytes(good_images[: len(good_images) // 2])  # truncated gzip stream
    expect(images, "not a valid gzip file")
    images.write_bytes(b"this is not gzip at all")
    expect(images, "not a valid gzip file")
    raw = idx_bytes(data["train-images-idx3-ubyte"])
    images.write_bytes(gzip.compress(raw[:-100]))  # valid gzip, short payload
    expect(images, r"2252 bytes of data, but the header's shape \(3, 28, 28\) needs 2352")
    images.write_bytes(gzip.compress(idx_bytes(data["train-images-idx3-ubyte"], magic=0x0801)))
    expect(images, "magic number 0x00000801 is not 0x00000803")
    images.write_bytes(gzip.compress(b"\x00\x00"))
    expect(images, "too short")
    images.write_bytes(gzip.compress(idx_bytes(np.zeros((3, 27, 27)))))
    expect(images, "27x27 pixels, expected 28x28")
    images.write_bytes(good_images)
    labels.write_bytes(gzip.compress(idx_bytes([1, 2])))
    expect(labels, "holds 3 images but .* holds 2 labels")
    labels.write_bytes(gzip.compress(idx_bytes([1, 12, 3])))
    expect(labels, "label 12 at index 1 is not a class 0-9")
    labels.write_bytes(gzip.compress(idx_bytes(data["train-labels-idx1-ubyte"])))
    check_mnist(datasets.mnist(), data)  # repaired


# -- CIFAR-10 -------------------------------------------------------------------------------------
def cifar_records(n, seed):
    """(bytes, images NHWC, labels) of n records in the binary format."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    planes = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)  # R, G, B planes
    blob = b"".join(bytes([labels[i]]) + planes[i].tobytes() for i in range(n))
    return blob, planes.transpose(0, 2, 3, 1), labels


def cifar_files(n_per_file=2):
    return {name: cifar_records(n_per_file + (k == 5), seed=k) for k, name in enumerate(CIFAR_MEMBERS)}


def check_cifar(result, files):
    (x_train, y_train), (x_test, y_test) = result
    train = [files[name] for name in CIFAR_MEMBERS[:5]]
    assert x_train.shape == (10, 32, 32, 3) and x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    np.testing.assert_array_equal(x_train, np.concatenate([f[1] for f in train]))
    np.testing.assert_array_equal(y_train, np.concatenate([f[2] for f in train]))
    np.testing.assert_array_equal(x_test, files["test_batch.bin"][1])
    np.testing.assert_array_equal(y_test, files["test_batch.bin"][2])
    assert y_test.shape == (3,)


def write_archive(path, files, skip=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, (blob, _, _) in files.items():
            if name in skip:
                continue
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        meta = b"airplane\nautomobile\n"
        info = tarfile.TarInfo("cifar-10-batches-bin/batches.meta.txt")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))


def test_cifar10_from_extracted_bin_files(tmp_path):
    files = cifar_files()
    folder = tmp_path / "cache" / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name, (blob, _, _) in files.items():
        (folder / name).write_bytes(blob)
    result = datasets.cifar10()
    check_cifar(result, files)
    x = result[0][0]
    blob = files["data_batch_1.bin"][0]
    # record 0: byte 1 + 32*r + c is red at (r, c); +1024 green; +2048 blue
    assert x[0, 3, 5, 0] == blob[1 + 32 * 3 + 5] and x[0, 3, 5, 2] == blob[1 + 2048 + 32 * 3 + 5]


def test_cifar10_from_the_archive_keeps_the_members_extracted(tmp_path):
    files = cifar_files()
    directory = tmp_path / "cache" / "cifar10"
    write_archive(directory / "cifar-10-binary.tar.gz", files)
    check_cifar(datasets.cifar10(), files)
    folder = directory / "cifar-10-batches-bin"
    assert sorted(p.name for p in folder.iterdir()) == sorted(CIFAR_MEMBERS)
    (directory / "cifar-10-binary.tar.gz").unlink()
    check_cifar(datasets.cifar10(), files)  # now from the extracted files


def test_cifar10_missing_files_error(tmp_path, no_network):
    directory = tmp_path / "cache" / "cifar10"
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.cifar10()
    message = str(info.value)
    assert f"Put this file in the directory {directory}:\n    cifar-10-binary.tar.gz" in message
    for name in CIFAR_MEMBERS:
        assert f"cifar-10-batches-bin/{name}" in message
    assert no_network == ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]


def test_cifar10_corrupt_files_name_the_file(tmp_path):
    files = cifar_files()
    directory = tmp_path / "cache" / "cifar10"
    archive = directory / "cifar-10-binary.tar.gz"
    write_archive(archive, files, skip=("data_batch_3.bin",))
    with pytest.raises(CorruptDatasetError, match="lacks cifar-10-batches-bin/data_batch_3.bin") as info:
        datasets.cifar10()
    assert str(archive) in str(info.value)
    write_archive(archive, files)
    good = archive.read_bytes()
    archive.write_bytes(good[: len(good) // 2])
    with pytest.raises(CorruptDatasetError, match="not a readable tar.gz archive") as info:
        datasets.cifar10()
    assert str(archive) in str(info.value)
    assert not (directory / "cifar-10-batches-bin").exists()  # nothing kept from a bad archive
    folder = directory / "cifar-10-batches-bin"
    folder.mkdir()
    for name, (blob, _, _) in files.items():
        (folder / name).write_bytes(blob)
    (folder / "data_batch_2.bin").write_bytes(files["data_batch_2.bin"][0][:-10])
    with pytest.raises(CorruptDatasetError, match="6136 bytes is not a whole number of 3073-byte records") as info:
        datasets.cifar10()
    assert str(folder / "data_batch_2.bin") in str(info.value)
    bad = bytearray(files["test_batch.bin"][0])
    bad[3073] = 200
    (folder / "data_batch_2.bin").write_bytes(files["data_batch_2.bin"][0])
    (folder / "test_batch.bin").write_bytes(bytes(bad))
    with pytest.raises(CorruptDatasetError, match="test_batch.bin: record 1 has label 200"):
        datasets.cifar10()


# -- digits (scikit-learn) ------------------------------------------------------------------------
def test_digits_needs_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(MissingDependencyError, match="pip install scikit-learn") as info:
        datasets.digits()
    assert isinstance(info.value, ImportError)


def test_digits_fixed_stratified_split():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    bunch = sklearn_datasets.load_digits()
    (x_train, y_train), (x_test, y_test) = datasets.digits()
    assert x_train.shape == (1438, 8, 8) and x_test.shape == (359, 8, 8)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0 and x_test.max() <= 1.0
    counts = np.bincount(bunch.target)
    np.testing.assert_array_equal(np.bincount(y_test), np.round(0.2 * counts).astype(int))
    np.testing.assert_array_equal(np.bincount(y_train) + np.bincount(y_test), counts)
    # Together the two sets are the source, each sample once, scaled by 1/16.
    both = np.concatenate([x_train, x_test]).reshape(1797, 64) * 16
    keys = sorted(map(bytes, np.concatenate([both.astype(np.uint8), np.concatenate([y_train, y_test])[:, None]
                                             .astype(np.uint8)], axis=1)))
    ref = sorted(map(bytes, np.concatenate([bunch.data.astype(np.uint8), bunch.target[:, None].astype(np.uint8)],
                                           axis=1)))
    assert keys == ref
    (x2, y2), (xt2, yt2) = datasets.digits(flatten=True)
    np.testing.assert_array_equal(x2, x_train.reshape(-1, 64))
    np.testing.assert_array_equal(yt2, y_test)  # the same split every call
    (_, _), (x_other, y_other) = datasets.digits(seed=1)
    np.testing.assert_array_equal(np.bincount(y_other), np.bincount(y_test))
    assert not np.array_equal(x_other, x_test)  # another draw from each class
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.digits(test_fraction=1.5)
