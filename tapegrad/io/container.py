"""The tapegrad file container: JSON metadata plus raw arrays, and nothing executable.

Layout (all integers little-endian)::

    offset  size  what
    0       12    magic  b"\\x89TGMODEL\\r\\n\\x1a\\n"
    12      4     format version (uint32), currently 1
    16      8     header length H (uint64)
    24      H     header: UTF-8 JSON object
    ...           zero padding up to a multiple of 64 bytes: the data section starts here
    ...           array data, each array at a 64-byte aligned offset, raw little-endian
    end-32  32    SHA-256 of every byte before it

The header holds the caller's metadata and an ``"arrays"`` list of
``{"name", "dtype", "shape", "offset", "nbytes"}`` (offset relative to the data section).

Reading is defensive, for files that are truncated, corrupted or written by an attacker:

1. the size, magic and version are checked, then the SHA-256 of the whole file is
   verified (streamed in chunks) before anything else is parsed;
2. the header length is bounded by the file size (and 16 MiB); the JSON is parsed
   with duplicate keys rejected and nested at most 256 levels deep; nothing in it is
   ever imported, evaluated or called;
3. every array entry is checked: a plain name, a dtype from a fixed whitelist of
   numeric dtypes (no object, string or void dtypes), a shape of at most 32
   non-negative ints whose byte count equals ``nbytes``, and a byte range inside the
   data section that overlaps no other array. Declared sizes are therefore bounded by
   the real size of the file, so a hostile header cannot make the reader allocate
   more memory than the file holds.

Every problem raises :class:`ModelFileError` (a ``ValueError``) naming the file and what
is wrong. There is no pickle anywhere.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
from typing import IO, Any

import numpy as np

from ..errors import OpValueError
from .atomic import atomic_write

MAGIC = b"\x89TGMODEL\r\n\x1a\n"
VERSION = 1
_PREFIX = struct.Struct("<12sIQ")  # magic, version, header length
_ALIGN = 64
_DIGEST = 32
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 256
MAX_NDIM = 32
MAX_ARRAYS = 100_000
_CHUNK = 1 << 20

#: The only dtypes a file may declare (NumPy names; stored little-endian).
DTYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/\-]{0,255}$")


class ModelFileError(OpValueError):
    """A model or weights file that cannot be read: truncated, corrupt, hostile or
    incompatible. The message names the file and the problem."""


def _align(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def check_name(name: Any) -> bool:
    """Array names are plain identifiers joined by ``/``: no empty, ``.`` or ``..``
    segments, no leading ``/``, no control characters."""
    if not isinstance(name, str) or not _NAME.match(name):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def _write_array(f: IO[bytes], array: np.ndarray) -> None:
    """Write one array's raw bytes (a separate function so tests can interrupt a save)."""
    f.write(memoryview(array).cast("B") if array.size else b"")


class _HashingWriter:
    """A file wrapper that hashes what is written through it."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.sha = hashlib.sha256()

    def write(self, data: Any) -> int:
        self.sha.update(data)
        return self._f.write(data)

    def fileno(self) -> int:
        return self._f.fileno()

    def flush(self) -> None:
        self._f.flush()


def write_container(path: str | os.PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write ``meta`` (JSON-serialisable; must not contain ``"arrays"``) and ``arrays``
    to ``path`` atomically."""
    if "arrays" in meta:
        raise ValueError("write_container: meta must not have an 'arrays' key")
    entries = []
    prepared = []
    offset = 0
    for name, value in arrays.items():
        if not check_name(name):
            raise ValueError(f"write_container: invalid array name {name!r}")
        arr = np.asarray(value)
        if arr.dtype.name not in DTYPES:
            raise ValueError(f"write_container: array {name!r} has dtype {arr.dtype}, which cannot be saved")
        arr = np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")
        if not arr.flags.c_contiguous:
            arr = arr.copy(order="C")
        offset = _align(offset)
        entries.append({"name": name, "dtype": arr.dtype.name, "shape": list(arr.shape),
                        "offset": offset, "nbytes": arr.nbytes})
        prepared.append((offset, arr))
        offset += arr.nbytes
    if len(entries) > MAX_ARRAYS:
        raise ValueError(f"write_container: {len(entries)} arrays, more than the {MAX_ARRAYS} a file may hold")
    header = json.dumps({**meta, "arrays": entries}, separators=(",", ":")).encode("utf-8")
    if len(header) > MAX_HEADER_BYTES:
        raise ValueError(f"write_container: the header (the JSON metadata) takes {len(header)} bytes, more than "
                         f"the {MAX_HEADER_BYTES} a file may hold")
    depth = json_depth(meta)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"write_container: the metadata is nested {depth} levels deep, more than the "
                         f"{MAX_JSON_DEPTH} a file may hold")
    data_start = _align(_PREFIX.size + len(header))

    def write(raw: IO[bytes]) -> None:
        f = _HashingWriter(raw)
        f.write(_PREFIX.pack(MAGIC, VERSION, len(header)))
        f.write(header)
        f.write(b"\0" * (data_start - _PREFIX.size - len(header)))
        pos = 0
        for off, arr in prepared:
            if off > pos:
                f.write(b"\0" * (off - pos))
            _write_array(f, arr)
            pos = off + arr.nbytes
        raw.write(f.sha.digest())

    atomic_write(path, write)


def read_container(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a file written by :func:`write_container`: ``(meta, arrays)``. The arrays are
    fresh, writable, native-order copies."""
    shown = os.fspath(path)
    try:
        f = open(shown, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"{shown}: no such file") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size < _PREFIX.size + _DIGEST:
            raise ModelFileError(f"{shown}: not a tapegrad file: it is {size} bytes long, too short "
                                 f"(truncated or empty?)")
        magic, version, header_len = _PREFIX.unpack(f.read(_PREFIX.size))
        if magic != MAGIC:
            raise ModelFileError(f"{shown}: not a tapegrad model/weights file (wrong magic bytes {magic[:12]!r})"
                                 + _foreign_format(magic))
        if version != VERSION:
            newer = "; the file is corrupt or from a newer tapegrad" if version > VERSION else ""
            raise ModelFileError(f"{shown}: unsupported format version {version} (this tapegrad reads "
                                 f"version {VERSION}){newer}")
        _verify_digest(f, size, shown)
        body = size - _DIGEST
        if header_len > min(body - _PREFIX.size, MAX_HEADER_BYTES):
            raise ModelFileError(f"{shown}: corrupt header: declared header length {header_len} exceeds "
                                 f"the file ({size} bytes) or the limit of {MAX_HEADER_BYTES} bytes")
        data_start = _align(_PREFIX.size + header_len)
        if data_start > body:
            raise ModelFileError(f"{shown}: corrupt file: the data section starts at {data_start}, after the end")
        f.seek(_PREFIX.size)
        meta = _parse_header(f.read(header_len), shown)
        entries = _check_entries(meta.pop("arrays", None), body - data_start, shown)
        arrays = {}
        for name, dtype, shape, offset, nbytes in entries:
            f.seek(data_start + offset)
            buf = bytearray(nbytes)
            if f.readinto(buf) != nbytes:
                raise ModelFileError(f"{shown}: array {name!r} is cut short (the file changed while reading?)")
            arr = np.frombuffer(buf, dtype=dtype).reshape(shape)
            arrays[name] = arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))
    return meta, arrays


_FOREIGN = (
    (b"PK\x03\x04", "a zip archive, e.g. a Keras .keras file"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file, e.g. a Keras .h5 file"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x80", "a Python pickle, e.g. a PyTorch .pt file"),
)


def _foreign_format(magic: bytes) -> str:
    for start, what in _FOREIGN:
        if magic.startswith(start):
            return f"; it looks like {what}: tapegrad reads only files written by tapegrad's save"
    return ""


def json_depth(value: Any) -> int:
    """How deeply lists and dicts nest in a JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))
    return deepest


def _verify_digest(f: IO[bytes], size: int, shown: str) -> None:
    sha = hashlib.sha256()
    f.seek(0)
    remaining = size - _DIGEST
    while remaining:
        chunk = f.read(min(_CHUNK, remaining))
        if not chunk:
            raise ModelFileError(f"{shown}: the file is shorter than its size (it changed while reading?)")
        sha.update(chunk)
        remaining -= len(chunk)
    stored = f.read(_DIGEST)
    if stored != sha.digest():
        raise ModelFileError(f"{shown}: checksum mismatch: the file is corrupt or truncated "
                             f"(SHA-256 of its contents does not match the one stored at its end)")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _parse_header(raw: bytes, shown: str) -> dict[str, Any]:
    try:
        meta = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{shown}: corrupt header: not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{shown}: corrupt header: expected a JSON object, got {type(meta).__name__}")
    depth = json_depth(meta)
    if depth > MAX_JSON_DEPTH:
        raise ModelFileError(f"{shown}: corrupt header: its JSON is nested {depth} levels deep (the limit is "
                             f"{MAX_JSON_DEPTH})")
    return meta


def _check_entries(entries: Any, data_len: int, shown: str) -> list[tuple[str, np.dtype, tuple, int, int]]:
    if not isinstance(entries, list):
        raise ModelFileError(f"{shown}: corrupt header: 'arrays' must be a list")
    if len(entries) > MAX_ARRAYS:
        raise ModelFileError(f"{shown}: corrupt header: {len(entries)} arrays declared (limit {MAX_ARRAYS})")
    out = []
    seen = set()
    for i, e in enumerate(entries):
        where = f"{shown}: array entry #{i}"
        if not isinstance(e, dict) or set(e) != {"name", "dtype", "shape", "offset", "nbytes"}:
            raise ModelFileError(f"{where}: expected the keys name, dtype, shape, offset, nbytes")
        name = e["name"]
        if not check_name(name):
            raise ModelFileError(f"{where}: invalid array name {str(name)[:80]!r}")
        if name in seen:
            raise ModelFileError(f"{where}: duplicate array name {name!r}")
        seen.add(name)
        if e["dtype"] not in DTYPES:
            raise ModelFileError(f"{where} ({name!r}): dtype {str(e['dtype'])[:40]!r} is not allowed "
                                 f"(allowed: {', '.join(DTYPES)})")
        dtype = np.dtype(e["dtype"]).newbyteorder("<")
        shape = e["shape"]
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(type(n) is int and n >= 0 for n in shape)):
            raise ModelFileError(f"{where} ({name!r}): invalid shape {str(shape)[:80]} "
                                 f"(expected a list of at most {MAX_NDIM} non-negative ints)")
        offset, nbytes = e["offset"], e["nbytes"]
        if type(offset) is not int or type(nbytes) is not int or offset < 0 or nbytes < 0:
            raise ModelFileError(f"{where} ({name!r}): invalid offset or byte count")
        expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        if nbytes != expected:
            raise ModelFileError(f"{where} ({name!r}): shape {tuple(shape)} of {dtype.name} needs {expected} "
                                 f"bytes, but {nbytes} are declared")
        if offset + nbytes > data_len:
            raise ModelFileError(f"{where} ({name!r}): its {nbytes} bytes at offset {offset} lie outside the "
                                 f"data section ({data_len} bytes)")
        out.append((name, dtype, tuple(shape), offset, nbytes))
    spans = sorted((o, o + n, name) for name, _, _, o, n in out if n)
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        if start < end:
            raise ModelFileError(f"{shown}: corrupt header: arrays {a!r} and {b!r} overlap")
    return out
