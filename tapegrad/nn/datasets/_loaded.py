"""What ``mnist()``, ``fashion_mnist()`` and ``cifar10()`` return: the Keras tuple
``((x_train, y_train), (x_test, y_test))``, with a ``load_data()`` method as well, since
Rindow writes ``$nn->datasets()->mnist()->loadData()``."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

Split = tuple[np.ndarray, np.ndarray]


class LoadedDataset(tuple):
    """``((x_train, y_train), (x_test, y_test))``; ``load_data()`` returns the same pair."""

    def load_data(self) -> tuple[Split, Split]:
        return tuple(self)  # type: ignore[return-value]


class Chunks:
    """Rindow's CIFAR-10 iterables: each iteration yields ``(images, labels)`` once per
    batch file (10,000 samples each), as ``SequentialDataset`` reads them."""

    def __init__(self, parts: list[Split]) -> None:
        self._parts = parts

    def __iter__(self) -> Iterator[Split]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def dataset_size(self) -> int:
        """The number of samples of all the chunks."""
        return int(sum(len(y) for _, y in self._parts))

    def __repr__(self) -> str:
        return f"<CIFAR-10 chunks: {len(self._parts)} files, {self.dataset_size()} samples>"


class Cifar10Dataset(LoadedDataset):
    """The Keras tuple of CIFAR-10 whose ``load_data()`` is Rindow's: ``(train, test)``,
    each an iterable of ``(images, labels)`` chunks, one per batch file."""

    _train: list[Split]
    _test: list[Split]

    @classmethod
    def of(cls, train: list[Split], test: list[Split]) -> Cifar10Dataset:
        whole = ((np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
                 (np.concatenate([x for x, _ in test]), np.concatenate([y for _, y in test])))
        out = cls(whole)
        out._train, out._test = train, test
        return out

    def load_data(self) -> tuple[Any, Any]:  # type: ignore[override]
        return Chunks(self._train), Chunks(self._test)
