"""Normalization in child processes gives what normalization in-process gives, and
survives a child that dies."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from authtrail.demo import DemoTraffic
from pipeline.normalizers import InProcessNormalizer, ProcessNormalizer, RawValue, Refusal
from pipeline.store import Row

STAMP = 1_795_694_400_000


@pytest.fixture(scope="module")
def values() -> list[RawValue]:
    traffic = DemoTraffic(seed=5).events()
    batch: list[RawValue] = [(next(traffic), STAMP) for _ in range(500)]
    batch += [(b"{not json", STAMP), (None, STAMP), (b'{"event_key": "x"}', None)]
    return batch


@pytest.fixture(scope="module")
def processes() -> Iterator[ProcessNormalizer]:
    normalizer = ProcessNormalizer(262_144, processes=1)
    yield normalizer
    normalizer.close()


def test_child_process_and_in_process_agree(
    processes: ProcessNormalizer, values: list[RawValue]
) -> None:
    here = asyncio.run(InProcessNormalizer(262_144).normalize(values))
    there = asyncio.run(processes.normalize(values))
    assert there == here
    assert sum(isinstance(r, Row) for r in there) == 500
    assert [r.reason[:12] for r in there[500:] if isinstance(r, Refusal)] == [
        "not valid JS",
        "empty record",
        "occurred_at:",
    ]


def test_a_dead_child_is_replaced(processes: ProcessNormalizer, values: list[RawValue]) -> None:
    for child in list(processes._pool._processes.values()):  # type: ignore[union-attr]
        os.kill(child.pid, signal.SIGKILL)
    results = asyncio.run(processes.normalize(values[:10]))
    assert all(isinstance(r, Row) for r in results)
