"""Optional native kernels: small C loops built on first use with the system compiler.

Some updates are one fused loop in C but several whole-array passes in NumPy: Adam is
ten passes over the parameters in NumPy and one in C, about three times faster on
large models. ``kernels.c`` holds such loops. The first time one is needed,
:func:`library` compiles the file with the C compiler (``$CC``, else ``cc`` or
``gcc``) into a per-user cache directory and loads it with ctypes; later processes
load the cached library (about 1 ms). Nothing is compiled at install time, and
tapegrad needs no compiler: where none is found, the build fails, or
``TAPEGRAD_NATIVE=0`` is set, :func:`library` returns None and every caller runs its
NumPy twin, which gives the same bits (``kernels.c`` keeps the NumPy order of
operations and rounding).

Environment:

* ``TAPEGRAD_NATIVE``: ``0`` turns the native kernels off.
* ``TAPEGRAD_CACHE_DIR``: where built libraries are kept (default
  ``$XDG_CACHE_HOME/tapegrad``, else ``~/.cache/tapegrad``).
* ``CC``: the C compiler.

:func:`status` says whether the library is loaded, from where, or why not.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from typing import Any

__all__ = ["library", "reset", "status"]

ABI_VERSION = 3  # must match tg_abi_version() in kernels.c
_HERE = os.path.dirname(os.path.abspath(__file__))
# kernels.c (optimizer updates, the thread pool), window_kernels.c (convolution and
# pooling) and recurrent_kernels.c (LSTM and GRU cell steps), compiled into one library.
_SOURCES = tuple(os.path.join(_HERE, name) for name in ("kernels.c", "window_kernels.c", "recurrent_kernels.c"))
WINDOW_ABI_VERSION = 3  # must match tg_window_abi_version() in window_kernels.c
RECURRENT_ABI_VERSION = 1  # must match tg_recurrent_abi_version() in recurrent_kernels.c
# -ffp-contract=off keeps one rounding per operation, as NumPy's passes do;
# -fno-math-errno lets sqrt vectorise. No -march=native: the library may be shared
# by machines of one home directory, and the loops are memory-bound anyway.
_FLAGS = ("-O3", "-fno-math-errno", "-ffp-contract=off", "-fPIC", "-shared", "-pthread")

_lock = threading.Lock()
_state: dict[str, Any] = {"done": False, "lib": None, "path": None, "reason": "not built yet"}


def _cache_dir() -> str:
    env = os.environ.get("TAPEGRAD_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tapegrad")


def _compiler() -> str | None:
    cc = os.environ.get("CC")
    if cc:
        return shutil.which(cc.split()[0]) and cc
    return shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def _source_bytes() -> bytes:
    """Every source file, concatenated (what the library's name is a hash of)."""
    parts = []
    for name in _SOURCES:
        with open(name, "rb") as f:
            parts.append(f.read())
    return b"\0".join(parts)


def _library_name(source: bytes, cc: str) -> str:
    key = hashlib.sha256()
    for part in (source, cc.encode(), " ".join(_FLAGS).encode(), platform.machine().encode(), sys.platform.encode()):
        key.update(part)
        key.update(b"\0")
    return f"tapegrad_kernels_{key.hexdigest()[:16]}.so"


def _build(cc: str, target: str) -> str | None:
    """Compile the sources into ``target`` (atomically); None, or the error."""
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=folder)
    os.close(fd)
    try:
        proc = subprocess.run(
            [*cc.split(), *_FLAGS, *_SOURCES, "-o", tmp, "-lm"], capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            return f"{cc} failed: {(proc.stderr or proc.stdout).strip()[:500]}"
        # Another process may have built the same file meanwhile: the rename replaces it
        # with identical bytes, and a loaded library keeps its own mapping.
        os.replace(tmp, target)
        tmp = ""
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{cc} could not be run: {exc}"
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def _load() -> tuple[Any, str | None, str]:
    if os.environ.get("TAPEGRAD_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None, None, "turned off by TAPEGRAD_NATIVE"
    if sys.platform == "win32":
        return None, None, "not built on Windows"
    cc = _compiler()
    if cc is None:
        return None, None, "no C compiler found (set CC)"
    try:
        source = _source_bytes()
    except OSError as exc:
        return None, None, f"a kernel source is missing: {exc}"
    path = os.path.join(_cache_dir(), _library_name(source, cc))
    import ctypes  # only once a native kernel is wanted (1 ms of import)

    for attempt in (0, 1):
        if not os.path.exists(path) or attempt == 1:
            try:
                error = _build(cc, path)
            except OSError as exc:
                error = f"cannot write to the cache directory {os.path.dirname(path)!r}: {exc}"
            if error is not None:
                return None, None, error
        try:
            lib = ctypes.CDLL(path)
            if (lib.tg_abi_version() != ABI_VERSION or lib.tg_window_abi_version() != WINDOW_ABI_VERSION
                    or lib.tg_recurrent_abi_version() != RECURRENT_ABI_VERSION):
                raise OSError("wrong interface version")
        except (OSError, AttributeError) as exc:
            if attempt == 0:
                continue  # a damaged or stale cached file: build it again
            return None, None, f"cannot load {path}: {exc}"
        _declare(lib, ctypes)
        return lib, path, "loaded"
    raise AssertionError("unreachable")


def _declare(lib: Any, ctypes: Any) -> None:
    pointer, integer, real = ctypes.c_void_p, ctypes.c_int, ctypes.c_double
    for name in ("tg_adam_f32", "tg_adam_f64"):
        # (p, m, v, grads: pointer array, starts: ptrdiff_t array, pieces, beta_1, beta_2,
        #  scale, eps, parts)
        fn = getattr(lib, name)
        fn.argtypes = [pointer, pointer, pointer, pointer, pointer, integer, real, real, real, real, integer]
        fn.restype = None
    lib.tg_warm.argtypes = [integer]  # (parts): wake the helper threads before a split
    lib.tg_warm.restype = None
    for suffix in ("f32", "f64"):  # window_kernels.c: arrays, then the geometry (17 int64)
        for name, arrays in (("tg_scatter_patches_", 2), ("tg_max_pool_grad_", 5)):
            fn = getattr(lib, name + suffix)
            fn.argtypes = [pointer] * (arrays + 1)
            fn.restype = None
    size = ctypes.c_ssize_t
    for name, arrays in (("tg_lstm_step_f32", 7), ("tg_lstm_step_grad_f32", 7), ("tg_gru_step_f32", 7),
                         ("tg_gru_step_grad_f32", 8)):  # recurrent_kernels.c: arrays, then rows and units
        fn = getattr(lib, name)
        fn.argtypes = [pointer] * arrays + [size, size]
        fn.restype = None


def library() -> Any:
    """The loaded kernel library (a ``ctypes.CDLL``), built on the first call; None
    where it cannot be had (see :func:`status`)."""
    if _state["done"]:
        return _state["lib"]
    with _lock:
        if not _state["done"]:
            lib, path, reason = _load()
            _state.update(lib=lib, path=path, reason=reason, done=True)
    return _state["lib"]


def status() -> dict[str, Any]:
    """``{"loaded": bool, "path": library file or None, "reason": text}``."""
    library()
    return {"loaded": _state["lib"] is not None, "path": _state["path"], "reason": _state["reason"]}


def reset() -> None:
    """Forget the loaded library, so that the next :func:`library` call looks again
    (after a change of ``TAPEGRAD_NATIVE``, ``CC`` or the cache directory)."""
    with _lock:
        _state.update(lib=None, path=None, reason="not built yet", done=False)
