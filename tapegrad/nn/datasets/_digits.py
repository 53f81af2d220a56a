"""The 8x8 handwritten digits bundled with scikit-learn (an optional dependency): a small
real dataset that needs no network."""

from __future__ import annotations

import numpy as np

from ._files import MissingDependencyError
from ._loaded import LoadedDataset

Split = tuple[np.ndarray, np.ndarray]


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)``: from each class, ``round(test_fraction * count)`` samples
    drawn with ``numpy.random.default_rng(seed)`` go to the test set; both index arrays are
    sorted (the samples keep the order of the source)."""
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = int(round(test_fraction * len(members)))
        test.append(rng.permutation(members)[:k])
    test_idx = np.sort(np.concatenate(test))
    train_mask = np.ones(len(labels), dtype=bool)
    train_mask[test_idx] = False
    return np.flatnonzero(train_mask), test_idx


def digits(*, test_fraction: float = 0.2, seed: int = 0, flatten: bool = False) -> LoadedDataset:
    """scikit-learn's copy of the UCI handwritten digits: ``((x_train, y_train), (x_test, y_test))``.

    1,797 images of 8x8 pixels, classes 0-9. ``x`` is float32 of shape ``(n, 8, 8)`` (or
    ``(n, 64)`` with ``flatten``), the original 0-16 intensities divided by 16, so in
    [0, 1]; ``y`` is int64 of shape ``(n,)``.

    The split is fixed and stratified: from each class, 20 % (``test_fraction``) of its
    samples, drawn with ``numpy.random.default_rng(0)`` (``seed``), form the test set, the
    rest the training set; both keep the source order. With the defaults: 1,438 training
    and 359 test samples, always the same.

    Needs scikit-learn (``pip install scikit-learn``); works offline, as scikit-learn ships
    the data.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"digits: test_fraction must be in (0, 1), got {test_fraction!r}")
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise MissingDependencyError(
            "digits() reads the copy of the UCI handwritten digits that scikit-learn ships, but scikit-learn is "
            "not installed: pip install scikit-learn"
        ) from exc
    bunch = load_digits()
    images = (np.asarray(bunch.images, dtype=np.float32) / np.float32(16.0)).astype(np.float32)
    labels = np.asarray(bunch.target, dtype=np.int64)
    if flatten:
        images = images.reshape(len(images), -1)
    train, test = stratified_split(labels, test_fraction, seed)
    return LoadedDataset(((images[train], labels[train]), (images[test], labels[test])))
