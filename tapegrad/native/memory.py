"""Keeping freed memory mapped, so that a training step does not page-fault.

An eager training step of a convolutional network allocates and frees tens of
megabytes of temporaries (patch matrices, activations and their gradients) every
step. glibc's malloc serves arrays above its mmap threshold with fresh ``mmap``
calls, and returns freed memory at the top of the heap to the system once more than
its trim threshold is free; either way the next step touches new pages, and the page
faults cost more than the arithmetic (measured: 40 -> 27 ms of CPU per step of the
reference CNN, 4,000-5,000 faults per step -> 0). PyTorch keeps a caching allocator
for the same reason.

:func:`retain_freed_memory` raises both thresholds once (glibc only): allocations up
to ``MMAP_THRESHOLD`` come from the heap, and up to ``TRIM_THRESHOLD`` of freed heap
stays mapped for reuse. The convolution and pooling ops call it the first time they
work on a large array. It changes the process's malloc settings; set
``TAPEGRAD_KEEP_MEMORY=0`` to leave them alone.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["retain_freed_memory", "retained"]

MMAP_THRESHOLD = 32 << 20  # the largest value glibc accepts on 64-bit systems
TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters

_lock = threading.Lock()
_state = {"done": False, "applied": False}


def retain_freed_memory() -> bool:
    """Apply the malloc settings once; True if they are in effect."""
    if _state["done"]:
        return _state["applied"]
    with _lock:
        if not _state["done"]:
            _state["applied"] = _apply()
            _state["done"] = True
    return _state["applied"]


def retained() -> bool:
    """Whether :func:`retain_freed_memory` changed the malloc settings."""
    return _state["applied"]


def _apply() -> bool:
    if os.environ.get("TAPEGRAD_KEEP_MEMORY", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    if not (hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt")):
        return False  # glibc only (musl has no such thresholds)
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # the mmap threshold first: setting either one turns off glibc's dynamic adjustment
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
