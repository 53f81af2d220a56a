"""CSVDataset: batches streamed from a CSV file of numbers, one batch of rows in memory at a time."""

from __future__ import annotations

import csv
import math
import os
from typing import Any, Iterator, Sequence

import numpy as np

from ... import _dtypes
from ...errors import OpTypeError, OpValueError, TapegradError
from .base import (
    Batch,
    Dataset,
    as_filter,
    check_batch_size,
    check_shuffle_buffer,
    library_generator,
    make_generator,
    shuffle_buffer,
)

Row = tuple[int, list[str]]  # (line number, fields)


class CSVFormatError(TapegradError, ValueError):
    """A row of a CSV file that can not be read; the message names the file and the line."""


class CSVDataset(Dataset):
    """Batches of a CSV file of numbers, read lazily: the file is never loaded whole.

    Args:
        path: the CSV file.
        batch_size: rows per batch; the last batch holds the remainder.
        label_column: the target column(s): an index (negative counts from the end), a name
            from the header row, or a list of them; None for no targets (``trues`` is None).
            The other columns are the inputs, in file order.
        delimiter: the field separator.
        skip_header: whether the first line is a header. Default: True when a column is
            given by name, else False.
        dtype: the dtype of the inputs (float32).
        label_dtype: the dtype of the targets; default ``dtype``. Use ``"int64"`` for class
            indices (a value such as ``3.0`` is accepted for an integer dtype, ``3.5`` not).
        shuffle_buffer: None or 0 to keep the file order; N > 0 shuffles rows through a
            buffer of N rows, as ``tf.data.Dataset.shuffle(N)``.
        seed: an int, a ``numpy.random.Generator``, or None for the library's generator.
        filter: a :class:`DatasetFilter` or callable ``(inputs, tests) -> (inputs, tests)``
            applied to each batch.
        encoding: the file's text encoding.

    Batches: ``inputs`` has shape ``(rows, input columns)``; ``trues`` has shape ``(rows,)``
    for one label column, ``(rows, k)`` for a list of k. Blank lines are skipped. A row with
    another number of fields than the first, or a field that is not a number, raises
    :class:`CSVFormatError` naming the file, the line and the column. ``len(dataset)`` and
    ``dataset_size()`` count the rows with one streaming pass over the file (cached while the
    file is unchanged).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        batch_size: int = 32,
        label_column: int | str | Sequence[int | str] | None = None,
        *,
        delimiter: str = ",",
        skip_header: bool | None = None,
        dtype: Any = np.float32,
        label_dtype: Any = None,
        shuffle_buffer: int | None = None,
        seed: int | np.random.Generator | None = None,
        filter: Any = None,
        encoding: str = "utf-8",
    ) -> None:
        owner = "CSVDataset"
        self._path = os.fspath(path)
        if not os.path.isfile(self._path):
            raise FileNotFoundError(f"{owner}: no such file: {self._path!r}")
        self._batch_size = check_batch_size(batch_size, owner)
        self._delimiter = delimiter
        self._encoding = encoding
        self._dtype = _dtypes.as_dtype(dtype, f"{owner} dtype")
        self._label_dtype = (self._dtype if label_dtype is None
                             else _dtypes.as_dtype(label_dtype, f"{owner} label_dtype"))
        self._shuffle_buffer = check_shuffle_buffer(shuffle_buffer, owner)
        self._generator = make_generator(seed, owner)
        self._filter = filter
        self._filter_fn = as_filter(filter, owner)

        if label_column is None:
            spec: list[int | str] = []
            self._multi_label = False
        elif isinstance(label_column, (list, tuple)):
            spec = list(label_column)
            self._multi_label = True
            if not spec:
                raise OpValueError(f"{owner}: label_column is an empty list")
        else:
            spec = [label_column]
            self._multi_label = False
        for c in spec:
            if isinstance(c, bool) or not isinstance(c, (int, np.integer, str)):
                raise OpTypeError(f"{owner}: label_column must be a column index, a column name or a list of "
                                  f"them, got {c!r}")
        self._has_labels = bool(spec)
        if skip_header is None:
            skip_header = any(isinstance(c, str) for c in spec)
        self._skip_header = bool(skip_header)
        self._header: list[str] | None = None
        self._n_columns: int | None = None
        if self._skip_header:
            self._header = self._read_header()
            self._n_columns = len(self._header)
        if any(isinstance(c, str) for c in spec) and not self._skip_header:
            raise OpValueError(f"{owner}: label_column given by name needs the header row: skip_header=True")
        self._label_spec = spec
        self._label_idx: list[int] | None = None
        self._input_idx: list[int] | None = None
        if self._n_columns is not None:
            self._resolve_columns(self._n_columns, 1)
        self._size_cache: tuple[tuple[int, int], int] | None = None

    # -- properties -------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self._path

    @property
    def header(self) -> list[str] | None:
        """The header row (with ``skip_header``), else None."""
        return None if self._header is None else list(self._header)

    @property
    def filter(self) -> Any:
        return self._filter

    def set_filter(self, filter: Any) -> None:
        """Replace the per-batch filter (None removes it)."""
        self._filter_fn = as_filter(filter, "CSVDataset")
        self._filter = filter

    def dataset_size(self) -> int:
        """The number of data rows (one streaming pass, cached while the file is unchanged)."""
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            raise FileNotFoundError(f"CSVDataset: no such file: {self._path!r}") from None
        key = (st.st_mtime_ns, st.st_size)
        if self._size_cache is None or self._size_cache[0] != key:
            count = sum(1 for _ in self._rows())
            self._size_cache = (key, count)
        return self._size_cache[1]

    def __len__(self) -> int:
        return math.ceil(self.dataset_size() / self._batch_size)

    def __repr__(self) -> str:
        return f"CSVDataset({self._path!r}, batch_size={self._batch_size}, label_column={self._label_spec!r})"

    # -- reading ----------------------------------------------------------------------
    def _open(self) -> Any:
        try:
            return open(self._path, newline="", encoding=self._encoding)
        except FileNotFoundError:
            raise FileNotFoundError(f"CSVDataset: no such file: {self._path!r}") from None

    def _read_header(self) -> list[str]:
        with self._open() as f:
            reader = csv.reader(f, delimiter=self._delimiter)
            for row in reader:
                if row and any(field.strip() for field in row):
                    return [field.strip() for field in row]
        raise CSVFormatError(f"{self._path}: the file is empty, but skip_header=True expects a header row")

    def _resolve_columns(self, n_columns: int, line: int) -> None:
        where = f"{self._path}, line {line}"
        label_idx: list[int] = []
        for c in self._label_spec:
            if isinstance(c, str):
                assert self._header is not None
                if c not in self._header:
                    raise OpValueError(f"CSVDataset: label_column {c!r} is not in the header of {self._path}: "
                                       f"{self._header}")
                label_idx.append(self._header.index(c))
            else:
                i = int(c)
                if not -n_columns <= i < n_columns:
                    raise OpValueError(f"CSVDataset: label_column {i} is out of range for {n_columns} columns "
                                       f"({where})")
                label_idx.append(i % n_columns)
        if len(set(label_idx)) != len(label_idx):
            raise OpValueError(f"CSVDataset: label_column {self._label_spec!r} names a column twice")
        self._label_idx = label_idx
        self._input_idx = [i for i in range(n_columns) if i not in set(label_idx)]
        if not self._input_idx:
            raise OpValueError(f"CSVDataset: every column of {self._path} is a label column; no inputs are left")

    def _rows(self) -> Iterator[Row]:
        """The data rows with their line numbers, checked for their number of fields."""
        with self._open() as f:
            reader = csv.reader(f, delimiter=self._delimiter)
            skip = self._skip_header
            n_columns = self._n_columns  # from the header, else from the first data row
            origin = "the header"
            try:
                for row in reader:
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue  # blank line
                    if skip:
                        skip = False
                        continue
                    line = reader.line_num
                    if n_columns is None:
                        n_columns, origin = len(row), f"line {line}"
                        self._resolve_columns(n_columns, line)
                    elif len(row) != n_columns:
                        raise CSVFormatError(f"{self._path}, line {line}: expected {n_columns} fields (as "
                                             f"{origin}), got {len(row)}")
                    yield line, row
            except csv.Error as exc:
                raise CSVFormatError(f"{self._path}, line {reader.line_num}: {exc}") from None
            except UnicodeDecodeError as exc:
                raise CSVFormatError(f"{self._path}: not {self._encoding} text after line {reader.line_num}: "
                                     f"{exc.reason}") from None

    def __iter__(self) -> Iterator[Batch]:
        rows: Iterator[Row] = self._rows()
        if self._shuffle_buffer:
            rng = self._generator if self._generator is not None else library_generator()
            rows = shuffle_buffer(rows, self._shuffle_buffer, rng)
        return self._batches(rows)

    def _batches(self, rows: Iterator[Row]) -> Iterator[Batch]:
        pending: list[Row] = []
        fn = self._filter_fn
        bs = self._batch_size
        for row in rows:
            pending.append(row)
            if len(pending) == bs:
                x, t = self._convert(pending)
                pending = []
                yield fn(x, t) if fn is not None else (x, t)
        if pending:
            x, t = self._convert(pending)
            yield fn(x, t) if fn is not None else (x, t)

    def _convert(self, rows: list[Row]) -> Batch:
        assert self._input_idx is not None and self._label_idx is not None
        table = np.array([r for _, r in rows], dtype=str)
        inputs = self._parse(table[:, self._input_idx], self._dtype, rows, self._input_idx)
        if not self._has_labels:
            return inputs, None
        labels = self._parse(table[:, self._label_idx], self._label_dtype, rows, self._label_idx)
        return inputs, (labels if self._multi_label else labels[:, 0])

    def _parse(self, table: np.ndarray, dtype: np.dtype, rows: list[Row], columns: list[int]) -> np.ndarray:
        try:
            return table.astype(dtype)
        except ValueError:
            pass
        if dtype.kind in "iu":
            try:  # integers written as floats (3.0)
                values = table.astype(np.float64)
            except ValueError:
                pass
            else:
                if np.all(np.isfinite(values)) and np.all(values == np.round(values)):
                    return values.astype(dtype)
                r, c = np.argwhere(~np.isfinite(values) | (values != np.round(values)))[0]
                raise CSVFormatError(f"{self._path}, line {rows[r][0]}, column {columns[c] + 1}"
                                     f"{self._column_name(columns[c])}: {str(table[r, c])!r} is not an integer "
                                     f"(label_dtype {dtype})")
        kind = float if dtype.kind == "f" else int
        for r in range(table.shape[0]):
            for c in range(table.shape[1]):
                try:
                    kind(table[r, c])
                except ValueError:
                    raise CSVFormatError(
                        f"{self._path}, line {rows[r][0]}, column {columns[c] + 1}{self._column_name(columns[c])}: "
                        f"{str(table[r, c])!r} is not a number ({dtype})"
                    ) from None
        raise CSVFormatError(f"{self._path}, lines {rows[0][0]}-{rows[-1][0]}: can not convert to {dtype}")

    def _column_name(self, index: int) -> str:
        return f" ({self._header[index]!r})" if self._header is not None else ""
