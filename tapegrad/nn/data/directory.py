"""Datasets of files sorted into one folder per class: :class:`ClassifiedDirectoryDataset`
and :class:`TextClassifiedDataset` (Rindow's; ``aclImdb/train/pos/*.txt`` and the like).

The class of a file is the name of the first folder under ``path`` that holds it; files
directly in ``path`` are skipped. Files are listed recursively in sorted order, matched
against ``pattern`` (a regular expression searched in the whole path; Rindow's
PHP-delimited form ``'@[0-9_]*\\.txt@'`` is accepted too).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ...errors import OpTypeError, OpValueError
from .base import Dataset, as_filter, check_batch_size, library_generator, make_generator
from .text import DEFAULT_FILTERS, Preprocessor, TextFilter, Tokenizer

_PHP_PATTERN = re.compile(r"^([/@#~%!])(.*)\1([imsxu]*)$", re.DOTALL)


def compile_pattern(pattern: str | None, owner: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise OpTypeError(f"{owner}: pattern must be a regular expression string, got {type(pattern).__name__}")
    flags = 0
    php = _PHP_PATTERN.match(pattern)
    if php:
        pattern = php.group(2)
        for f in php.group(3):
            flags |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X, "u": 0}[f]
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise OpValueError(f"{owner}: pattern {pattern!r} is not a valid regular expression ({exc})") from None


class ClassifiedDirectoryDataset(Dataset):
    """Batches ``(contents, class names)`` of the files under ``path`` (one folder per
    class). ``batch_size=0`` streams one ``(content, class name)`` per file. ``filter``
    (a DatasetFilter or callable) turns each batch into arrays; ``unclassified`` yields
    the contents alone; ``shuffle`` shuffles the file list once (``seed``), ``limit``
    keeps its first files and ``restricted_by_class`` only the classes named."""

    _owner = "ClassifiedDirectoryDataset"

    def __init__(
        self,
        path: str | os.PathLike[str],
        pattern: str | None = None,
        batch_size: int = 32,
        filter: Any = None,
        unclassified: bool = False,
        shuffle: bool = False,
        limit: int | None = None,
        restricted_by_class: Sequence[str] | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        owner = self._owner
        self.path = Path(path)
        self._pattern = compile_pattern(pattern, owner)
        self._batch_size = 0 if batch_size == 0 else check_batch_size(batch_size, owner)
        self._filter = filter
        self._filter_fn = as_filter(filter, owner)
        self.unclassified = bool(unclassified)
        self.shuffle = bool(shuffle)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0):
            raise OpValueError(f"{owner}: limit must be None or an int >= 0, got {limit!r}")
        self.limit = limit
        self.restricted_by_class = None if restricted_by_class is None else [str(c) for c in restricted_by_class]
        self._generator = make_generator(seed, owner)
        self._files: list[tuple[Path, str]] | None = None

    @property
    def filter(self) -> Any:
        return self._filter

    def set_filter(self, filter: Any) -> None:
        self._filter_fn = as_filter(filter, self._owner)
        self._filter = filter

    def files(self) -> list[tuple[Path, str]]:
        """``(path, class name)`` of every file, in the order they are read (listed once)."""
        if self._files is not None:
            return self._files
        if not self.path.is_dir():
            raise OpValueError(f"{self._owner}: the directory {self.path} does not exist")
        found = []
        for root, dirs, names in os.walk(self.path):
            dirs.sort()
            rel = Path(root).relative_to(self.path)
            if not rel.parts:
                continue  # files directly in path have no class
            label = rel.parts[0]
            if self.restricted_by_class is not None and label not in self.restricted_by_class:
                continue
            for name in sorted(names):
                full = Path(root) / name
                if self._pattern is None or self._pattern.search(str(full)):
                    found.append((full, label))
        if self.shuffle and found:
            rng = self._generator if self._generator is not None else library_generator()
            found = [found[i] for i in rng.permutation(len(found))]
        if self.limit is not None:
            found = found[: self.limit]
        self._files = found
        return found

    def dataset_size(self) -> int:
        return len(self.files())

    def __len__(self) -> int:
        n = self.dataset_size()
        return n if self._batch_size == 0 else -(-n // self._batch_size)

    def read_contents(self, path: Path) -> Any:
        """The content of one file (bytes here; subclasses decode it)."""
        return path.read_bytes()

    def make_batch_inputs(self, contents: list[Any]) -> Any:
        return contents

    def make_batch_tests(self, labels: list[str]) -> Any:
        return labels

    def __iter__(self) -> Iterator[Any]:
        files = self.files()
        if self._batch_size == 0:
            for path, label in files:
                content = self.read_contents(path)
                yield content if self.unclassified else (content, label)
            return
        for start in range(0, len(files), self._batch_size):
            chunk = files[start:start + self._batch_size]
            inputs = self.make_batch_inputs([self.read_contents(p) for p, _ in chunk])
            tests = self.make_batch_tests([label for _, label in chunk])
            if self._filter_fn is not None:
                inputs, tests = self._filter_fn(inputs, tests)
            yield inputs if self.unclassified else (inputs, tests)


class TextClassifiedDataset(ClassifiedDirectoryDataset):
    """Text files sorted into class folders, as ``(padded sequences, class ids)`` batches
    through a :class:`~tapegrad.nn.data.text.TextFilter` (made from the text arguments
    unless ``filter`` is given). ``load_data()`` reads every file and returns
    ``(sequences, class ids)`` arrays, fitting the tokenizer first if it has no vocabulary
    yet; ``get_tokenizer()`` gives the tokenizer to reuse for the test set."""

    _owner = "TextClassifiedDataset"

    def __init__(
        self,
        path: str | os.PathLike[str],
        pattern: str | None = None,
        batch_size: int = 32,
        filter: Any = None,
        unclassified: bool = False,
        shuffle: bool = False,
        limit: int | None = None,
        restricted_by_class: Sequence[str] | None = None,
        seed: int | np.random.Generator | None = None,
        verbose: int = 0,
        tokenizer: Tokenizer | None = None,
        classnames: Sequence[str] | None = None,
        analyzer: Callable[[str], Iterable[str]] | None = None,
        num_words: int | None = None,
        tokenizer_filters: str | None = DEFAULT_FILTERS + "\r",
        specials: str | None = None,
        lower: bool = True,
        split: str = " ",
        char_level: bool = False,
        oov_token: str | None = None,
        preprocessor: Preprocessor | None = None,
        maxlen: int | None = None,
        dtype: Any = "int32",
        padding: str = "post",
        truncating: str = "post",
        value: Any = 0,
        encoding: str = "utf-8",
    ) -> None:
        super().__init__(path, pattern=pattern, batch_size=batch_size, filter=filter, unclassified=unclassified,
                         shuffle=shuffle, limit=limit, restricted_by_class=restricted_by_class, seed=seed)
        self.verbose = int(verbose)
        self.encoding = encoding
        self.text_filter = filter if isinstance(filter, TextFilter) else TextFilter(
            tokenizer=tokenizer, classnames=classnames, analyzer=analyzer, num_words=num_words,
            tokenizer_filters=tokenizer_filters,
            specials=specials, lower=lower, split=split, char_level=char_level, oov_token=oov_token,
            preprocessor=preprocessor, maxlen=maxlen, dtype=dtype, padding=padding, truncating=truncating,
            value=value)
        if filter is None:
            self.set_filter(self.text_filter)

    def read_contents(self, path: Path) -> str:
        return path.read_text(encoding=self.encoding, errors="replace")

    def get_tokenizer(self) -> Tokenizer:
        return self.text_filter.get_tokenizer()

    def get_preprocessor(self) -> Preprocessor:
        return self.text_filter.get_preprocessor()

    def classnames(self) -> list[str]:
        """The class names in the order of their ids."""
        return self.text_filter.classnames()

    def get_labels(self) -> dict[str, int]:
        return dict(self.text_filter.labels)

    def _log(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr, flush=True)

    def fit_on_texts(self) -> tuple[list[str], list[str]]:
        """Read every file and fit the tokenizer on the texts; returns ``(texts, class names)``."""
        texts, labels = self._read_all()
        self.get_tokenizer().fit_on_texts(texts)
        return texts, labels

    def _read_all(self) -> tuple[list[str], list[str]]:
        files = self.files()
        self._log(f"{self._owner}: reading {len(files)} files under {self.path}")
        texts = [self.read_contents(p) for p, _ in files]
        labels = [label for _, label in files]
        for label in labels:
            self.text_filter.class_id(label)
        return texts, labels

    def load_data(self) -> tuple[np.ndarray, np.ndarray]:
        """``(sequences, class ids)`` of every file."""
        texts, labels = self._read_all()
        if not self.get_tokenizer().word_counts:
            self._log(f"{self._owner}: fitting the tokenizer")
            self.get_tokenizer().fit_on_texts(texts)
        return self.text_filter.translate(texts, labels)
