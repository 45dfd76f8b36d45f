"""Giving the C heap's free pages back to the kernel.

CPython allocates a batch's objects (records, rows, encoded JSON) through glibc's
``malloc``; when the batch is done they are freed, but glibc keeps the freed pages in
its free lists for reuse instead of returning them, so a process that once held a few
large batches in flight keeps their size as resident memory for good. ``malloc_trim(0)``
returns every whole free page. It walks the heap (a few milliseconds) holding each
arena's lock in turn, so it is called every few seconds, never per batch.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable

TRIM_EVERY_S = 10.0


def _glibc_trim() -> Callable[[int], object] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None)
    except OSError:
        return None


_TRIM = _glibc_trim()


def release_free_heap() -> bool:
    """Returns glibc's free heap pages to the kernel; False where there is no glibc
    (musl, macOS), where it does nothing."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class PeriodicTrim:
    """``maybe()`` releases the free heap when ``every_s`` has passed since it last did:
    cheap enough to call after every batch."""

    def __init__(self, every_s: float = TRIM_EVERY_S) -> None:
        self._every = every_s
        self._last = time.monotonic()

    def maybe(self) -> None:
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            release_free_heap()
