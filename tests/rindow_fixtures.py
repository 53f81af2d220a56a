"""Small datasets written in the real file formats, for the Rindow sample ports and their tests:
MNIST IDX files (gzip), CIFAR-10 binary batches, an aclImdb folder tree and a tab-separated file of
sentence pairs. The data are learnable: each class is a prototype plus noise (images; or a stripe
texture, for the convolutional samples) or has its own words (reviews), so that a model trained on
them reaches a known accuracy."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Callable

import numpy as np


def _idx(array: np.ndarray) -> bytes:
    array = np.asarray(array, np.uint8)
    return struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def class_images(n: int, shape: tuple[int, ...], classes: int, rng: np.random.Generator,
                 contrast: float = 30.0, noise: float = 70.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images: the prototype of a random class (fixed by the seed: grey 128 plus
    ``contrast`` times a normal pattern) plus noise of deviation ``noise``."""
    prototypes = 128.0 + contrast * np.random.default_rng(1234).normal(size=(classes, *shape))
    labels = rng.integers(0, classes, n).astype(np.uint8)
    images = prototypes[labels] + rng.normal(0.0, noise, (n, *shape))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels


def class_stripes(n: int, shape: tuple[int, ...], classes: int, rng: np.random.Generator,
                  contrast: float = 50.0, noise: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images of stripes (the same in every channel) plus noise of deviation ``noise``:
    class ``k`` has stripes of width ``(1, 2, 3, 5, 8, ...)[k // 2]``, horizontal for even ``k`` and
    vertical for odd, at a random phase, ``128 +/- contrast``. Shifts and flips keep the class, so
    the classes suit convolution, global pooling and Rindow's ImageDataGenerator."""
    labels = rng.integers(0, classes, n).astype(np.uint8)
    widths = np.array([1, 2, 3, 5, 8, 13, 21, 34])[labels // 2]
    phase = rng.integers(0, 2 * widths)
    rows = np.arange(shape[0])[None, :, None]
    columns = np.arange(shape[1])[None, None, :]
    across = np.where((labels % 2 == 0)[:, None, None], rows, columns) + phase[:, None, None]
    stripes = np.where((across // widths[:, None, None]) % 2 == 0, 1.0, -1.0)
    stripes = stripes.reshape(n, shape[0], shape[1], *([1] * (len(shape) - 2)))
    images = 128.0 + contrast * stripes + rng.normal(0.0, noise, (n, *shape))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels


ImageMaker = Callable[[int, tuple[int, ...], int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def write_mnist(directory: Path, n_train: int = 300, n_test: int = 100, seed: int = 0,
                images: ImageMaker = class_images) -> dict[str, np.ndarray]:
    """The four IDX files of MNIST (or Fashion-MNIST) in ``directory``; ``images`` makes them
    (:func:`class_images` or :func:`class_stripes`)."""
    rng = np.random.default_rng(seed)
    x, y = images(n_train, (28, 28), 10, rng)
    xt, yt = images(n_test, (28, 28), 10, rng)
    data = {"train_images": x, "train_labels": y, "test_images": xt, "test_labels": yt}
    files = {"train-images-idx3-ubyte.gz": x, "train-labels-idx1-ubyte.gz": y, "t10k-images-idx3-ubyte.gz": xt,
             "t10k-labels-idx1-ubyte.gz": yt}
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in files.items():
        (directory / name).write_bytes(gzip.compress(_idx(array), compresslevel=1))
    return data


def write_cifar10(directory: Path, per_file: int = 100, seed: int = 0,
                  images: ImageMaker = class_images) -> dict[str, np.ndarray]:
    """``cifar-10-batches-bin/data_batch_{1..5}.bin`` and ``test_batch.bin`` in ``directory``:
    records of one label byte and the red, green and blue 32x32 planes; ``images`` makes the
    images (:func:`class_images` or :func:`class_stripes`)."""
    rng = np.random.default_rng(seed)
    folder = directory / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        pictures, labels = images(per_file, (32, 32, 3), 10, rng)
        planes = pictures.transpose(0, 3, 1, 2).reshape(per_file, -1)
        records = np.concatenate([labels[:, None], planes], axis=1)
        (folder / name).write_bytes(records.astype(np.uint8).tobytes())
        data[name] = (pictures, labels)
    return data


POSITIVE = "great wonderful superb moving brilliant charming delightful masterpiece enjoyable touching".split()
NEGATIVE = "awful boring dreadful terrible dull tedious clumsy disappointing mediocre painful".split()


def _filler_words(count: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "su", "do", "fa"]
    return [a + b + c for a in syllables for b in syllables for c in syllables][:count]


def write_imdb(root: Path, per_class: int = 150, test_per_class: int = 50, seed: int = 0, fillers: int = 400) -> Path:
    """An ``aclImdb`` tree: ``train/{pos,neg}/<id>_<rating>.txt`` and ``test/...`` (plus an
    unlabelled ``train/unsup`` folder and a README, as in the real archive). Each review is
    neutral filler words with a few words of its sentiment."""
    rng = np.random.default_rng(seed)
    filler = _filler_words(fillers)
    base = root / "aclImdb"
    for split, count in (("train", per_class), ("test", test_per_class)):
        for label, words, ratings in (("pos", POSITIVE, (7, 11)), ("neg", NEGATIVE, (1, 5))):
            folder = base / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                text = list(rng.choice(filler, rng.integers(20, 40)))
                for _ in range(rng.integers(4, 9)):
                    text.insert(int(rng.integers(0, len(text))), str(rng.choice(words)))
                review = " ".join(text).capitalize() + ". <br /><br />The end!"
                (folder / f"{i}_{rng.integers(*ratings)}.txt").write_text(review)
    (base / "train" / "unsup").mkdir(parents=True, exist_ok=True)
    (base / "train" / "unsup" / "0_0.txt").write_text("unlabelled")
    (base / "README").write_text("Large Movie Review Dataset (a small stand-in)")
    return base


def write_sentence_pairs(path: Path, count: int = 200, seed: int = 0) -> Path:
    """A tab-separated file of sentence pairs as in the Anki/ManyThings ``spa-eng`` files:
    ``English<TAB>Spanish<TAB>attribution``."""
    rng = np.random.default_rng(seed)
    subjects = [("I", "Yo"), ("You", "Tú"), ("He", "Él"), ("She", "Ella"), ("We", "Nosotros")]
    verbs = [("eat", "como"), ("see", "veo"), ("want", "quiero"), ("have", "tengo")]
    objects = [("bread", "pan"), ("water", "agua"), ("a cat", "un gato"), ("a book", "un libro")]
    lines = []
    for _ in range(count):
        s, v, o = (pair[int(rng.integers(len(pair)))] for pair in (subjects, verbs, objects))
        lines.append(f"{s[0]} {v[0]} {o[0]}.\t{s[1]} {v[1]} {o[1]}.\tCC-BY 2.0 (France) Attribution: tatoeba.org")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
