"""Normalization in child processes gives what normalization in-process gives, and
survives a child that dies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from authtrail.demo import DemoTraffic
from pipeline.normalize import Rejection
from pipeline.normalizers import InProcessNormalizer, ProcessNormalizer, RawValue
from pipeline.store import Row
from tests.processes import alive

# Every record's broker timestamp; the events are made at the same instant, so the
# contract's "not more than 24 h after it was received" holds on any day the suite runs.
STAMP = 1_795_694_400_000
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def values() -> list[RawValue]:
    traffic = DemoTraffic(seed=5, clock=lambda: STAMP / 1000).events()
    batch: list[RawValue] = [(next(traffic), STAMP) for _ in range(500)]
    batch += [(b"{not json", STAMP), (None, STAMP), (b'{"event_key": "x"}', None)]
    return batch


@pytest.fixture(scope="module")
def processes() -> Iterator[ProcessNormalizer]:
    # No retention cutoff: the events are of a fixed day (the cutoff has its own tests).
    normalizer = ProcessNormalizer(262_144, None, processes=1)
    yield normalizer
    normalizer.close()


def test_child_process_and_in_process_agree(
    processes: ProcessNormalizer, values: list[RawValue]
) -> None:
    here = asyncio.run(InProcessNormalizer(262_144, None).normalize(values))
    there = asyncio.run(processes.normalize(values))
    assert there == here
    assert sum(isinstance(r, Row) for r in there) == 500
    assert [r.reason[:12] for r in there[500:] if isinstance(r, Rejection)] == [
        "not valid JS",
        "empty record",
        "occurred_at:",
    ]


def test_a_dead_child_is_replaced(processes: ProcessNormalizer, values: list[RawValue]) -> None:
    for child in list(processes._pool._processes.values()):  # type: ignore[union-attr]
        os.kill(child.pid, signal.SIGKILL)
    results = asyncio.run(processes.normalize(values[:10]))
    assert all(isinstance(r, Row) for r in results)


# A worker stand-in: starts two normalizer children, says their pids, then waits.
HOST = """
import os, sys, time
from pipeline.normalizers import ProcessNormalizer
normalizer = ProcessNormalizer(262_144, None, processes=2)
print(" ".join(str(pid) for pid in normalizer._pool._processes), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
def test_children_end_when_their_parent_dies(sig: signal.Signals) -> None:
    host = subprocess.Popen(
        [sys.executable, "-c", HOST], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert host.stdout is not None
        children = [int(pid) for pid in host.stdout.readline().split()]
        assert len(children) == 2 and alive(children) == children
        host.send_signal(sig)
        host.wait(30)
        deadline = time.monotonic() + 30
        while alive(children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(children), "normalizer children outlived their parent"
    finally:
        host.kill()
        host.wait()
