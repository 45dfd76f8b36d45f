"""Where normalization runs: in the worker's own process, or in child processes.

The ingest worker is GIL-bound, not core-bound: its event loop thread (faust, batching,
acks) and normalization (~20 µs of Python per event) share one interpreter while a
quarter of the machine's CPU sits idle. ``ProcessNormalizer`` moves normalization into
child processes; a batch crosses as a list of raw values and comes back as one msgpack
blob of ``Row``/``Rejection`` (C-speed both ways), so the loop thread keeps only faust's
work and the bookkeeping.

Both kinds share one contract: ``await normalize(values)`` takes ``(raw value, broker
timestamp ms)`` pairs and returns, index-aligned, a ``Row`` (valid, normalized, encoded)
or a ``Rejection`` (why it goes to the dead-letter topic) for each. It never raises for bad
input. Results are deterministic (``received_at`` is the broker timestamp), so a batch
normalized twice gives the same rows, except for events crossing the log store's
retention cutoff in between (see ``Normalizer``): the retention (``retention_days``) is
the setting the worker started with, and reaches the child processes as their
initializer's argument, like the size limit.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import msgspec

from infra.heap import PeriodicTrim
from pipeline.enrich import Enricher
from pipeline.normalize import Normalizer, Rejection
from pipeline.store import Row

log = logging.getLogger(__name__)

RawValue = tuple[bytes | None, int | None]  # (record value, broker timestamp in ms)


Result = Row | Rejection
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[Result])


def received_at(timestamp_ms: int | None) -> datetime:
    """The record's broker timestamp (now, if it has none), at millisecond precision."""
    if timestamp_ms is None or timestamp_ms <= 0:
        timestamp_ms = int(time.time() * 1000)
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)


def normalize_all(normalizer: Normalizer, values: Sequence[RawValue]) -> list[Result]:
    out: list[Result] = []
    for value, timestamp_ms in values:
        result = normalizer.normalize(value, received_at(timestamp_ms))
        out.append(result if isinstance(result, Rejection) else Row.of(result))
    return out


@dataclass(slots=True)
class NormalizerStats:
    """Refusals counted by kind, since the process started (beside ``IngestStats``, on
    ``/healthz`` and ``/metrics``). Counted when a batch is normalized, as ``received``
    is; ``dead_lettered`` counts the same records again once their dead letters are
    delivered."""

    older_than_retention: int = 0

    def count(self, results: Sequence[Result]) -> None:
        self.older_than_retention += sum(
            1 for r in results if isinstance(r, Rejection) and r.older_than_retention
        )


class BatchNormalizer(Protocol):
    stats: NormalizerStats

    async def normalize(self, values: Sequence[RawValue]) -> list[Result]: ...

    def close(self) -> None: ...


class InProcessNormalizer:
    """Normalizes on the calling thread (``AUTHTRAIL_INGEST_NORMALIZER_PROCESSES=0``).
    ``retention_days``: the log store's retention, or None for no such check (see
    ``Normalizer``)."""

    def __init__(self, max_event_bytes: int, retention_days: int | None) -> None:
        self._normalizer = Normalizer(Enricher(), max_event_bytes, retention_days)
        self.stats = NormalizerStats()

    async def normalize(self, values: Sequence[RawValue]) -> list[Result]:
        results = normalize_all(self._normalizer, values)
        self.stats.count(results)
        return results

    def close(self) -> None:
        pass


_child: Normalizer | None = None
_child_trim = PeriodicTrim()
# How a child reports that its parent is gone (distinct from a crash, for whoever reads it).
ORPHANED_EXIT_CODE = 70


def exit_with_parent() -> None:
    """Ends this child process within a second of its parent's end, however the parent
    ends (``kill -9`` included, where nothing in the parent runs to stop its children).

    A daemon thread waits on the sentinel multiprocessing gives every child it spawns: the
    child's end of a pipe whose other end only the parent holds, so the kernel closes it
    when the parent dies. Outside multiprocessing (no sentinel) the thread polls the
    parent's pid instead. Must be called in the child; returns at once."""
    parent = multiprocessing.parent_process()
    parent_pid = os.getppid()

    def watch() -> None:
        if parent is not None:
            multiprocessing.connection.wait([parent.sentinel])
        else:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
        os._exit(ORPHANED_EXIT_CODE)

    threading.Thread(target=watch, name="authtrail-exit-with-parent", daemon=True).start()


def _start_child(max_event_bytes: int, retention_days: int | None) -> None:
    global _child
    exit_with_parent()
    _child = Normalizer(Enricher(), max_event_bytes, retention_days)


def _normalize_in_child(values: list[RawValue]) -> bytes:
    assert _child is not None, "the pool initializer builds the normalizer"
    blob = _ENCODER.encode(normalize_all(_child, values))
    _child_trim.maybe()  # a burst's batches would otherwise stay resident for good
    return blob


class ProcessNormalizer:
    """Normalizes in ``processes`` child processes (spawned, not forked: the worker has
    librdkafka and chDB threads that a fork would copy mid-flight).

    A child that dies (OOM-killed, a crash in a C extension) breaks the pool: it is
    replaced and the batch tried once more; if that breaks too, the batch is normalized
    in this process, so one poisonous record cannot stop ingestion.

    ``retention_days`` as for ``InProcessNormalizer``; each child gets it (spawned
    children inherit nothing of the parent's state but their initializer's arguments),
    and judges the cutoff on its own clock, the same machine's."""

    def __init__(
        self, max_event_bytes: int, retention_days: int | None, processes: int = 1
    ) -> None:
        self._max_event_bytes = max_event_bytes
        self._retention_days = retention_days
        self._processes = processes
        self.stats = NormalizerStats()
        self._pool = self._new_pool()
        self._fallback: Normalizer | None = None
        self._start_children()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self._processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_child,
            initargs=(self._max_event_bytes, self._retention_days),
        )

    def _start_children(self) -> None:
        """Starts every child now, not on the first batches (imports take a second or
        two). The pool spawns a child per task submitted while none is idle, so one task
        per child, submitted together, starts them all."""
        warmups = [self._pool.submit(_normalize_in_child, []) for _ in range(self._processes)]
        for warmup in warmups:
            warmup.result()

    async def normalize(self, values: Sequence[RawValue]) -> list[Result]:
        loop = asyncio.get_running_loop()
        batch = list(values)
        for attempt in (1, 2):
            try:
                blob = await loop.run_in_executor(self._pool, _normalize_in_child, batch)
                results = _DECODER.decode(blob)
                self.stats.count(results)
                return results
            except BrokenProcessPool:
                log.error("a normalizer process died (attempt %d); replacing it", attempt)
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
        log.error("normalizing a batch of %d in the worker process instead", len(batch))
        if self._fallback is None:
            self._fallback = Normalizer(Enricher(), self._max_event_bytes, self._retention_days)
        results = normalize_all(self._fallback, batch)
        self.stats.count(results)
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def batch_normalizer(max_event_bytes: int, processes: int, retention_days: int) -> BatchNormalizer:
    """The normalizer for ``AUTHTRAIL_INGEST_NORMALIZER_PROCESSES`` (0: in-process),
    refusing events older than ``retention_days`` (``AUTHTRAIL_RETENTION_DAYS``)."""
    if processes <= 0:
        return InProcessNormalizer(max_event_bytes, retention_days)
    return ProcessNormalizer(max_event_bytes, retention_days, processes)
