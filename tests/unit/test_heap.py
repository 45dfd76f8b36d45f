"""``infra.heap``: the free C heap goes back to the kernel, at most every few seconds."""

from __future__ import annotations

import ctypes
import platform

import pytest

from infra import heap


def _resident_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")
def test_freed_heap_pages_go_back_to_the_kernel() -> None:
    """Many small blocks (below glibc's mmap threshold, so from the heap), all but the
    last freed: without a trim the heap keeps the pages, since the last block pins its
    top; with one they go back."""
    malloc = ctypes.CDLL(None).malloc
    malloc.restype = ctypes.c_void_p
    free = ctypes.CDLL(None).free
    free.argtypes = [ctypes.c_void_p]
    blocks = [malloc(64 * 1024) for _ in range(3000)]  # ~190 MB
    for block in blocks:
        ctypes.memset(block, 1, 64 * 1024)  # resident only once written
    for block in blocks[:-1]:
        free(block)
    before = _resident_kb()
    assert heap.release_free_heap() is True
    released_mb = (before - _resident_kb()) / 1024
    free(blocks[-1])
    assert released_mb > 100


def test_the_periodic_trim_runs_at_most_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    calls: list[float] = []
    monkeypatch.setattr(heap.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(heap, "release_free_heap", lambda: calls.append(clock[0]) or True)
    trim = heap.PeriodicTrim(every_s=10)
    for step in range(60):  # a batch every second for a minute
        clock[0] = 1000.0 + step
        trim.maybe()
    assert calls == [1010.0, 1020.0, 1030.0, 1040.0, 1050.0]
