"""The ingest step: one batch of raw records -> log store + normalized topic + DLQ.

A batch goes through two steps, and several batches can be in flight at once (one in
the normalizer process, the one before in the store, the one before that on its way to
Kafka):

* ``await BatchProcessor.prepare(records)``: validates, normalizes, enriches and encodes
  (see ``pipeline.normalizers`` for where); bad records become dead letters with a
  reason. Never raises for bad input.
* ``await BatchProcessor.finish(prepared)``: returns only when every record is durable
  somewhere: stored in the log store *and* produced to ``auth-events.normalized``, or
  produced to ``auth-events.dlq`` with a reason (invalid input, or refused by the store).
  Only then may the caller commit its offsets. Store or broker outages are retried with
  backoff for as long as it takes (lag, not loss); the retry is abandoned only by
  cancellation, which the caller must treat as "nothing of this batch was processed".
  Each stage has one thread, so batches enter the store and Kafka in the order they were
  finished; a batch that is retried may be overtaken by the next one.

``process(records)`` is both.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from infra.backoff import Backoff
from pipeline.erasure import erased_row
from pipeline.normalize import Rejection
from pipeline.normalizers import BatchNormalizer
from pipeline.outputs import DeliveryError, Headers, OutputProducer, OutRecord
from pipeline.store import EventWriter, Row, TransientStoreError
from schemas import topics as topic_names
from schemas.erasure import ErasureSet
from schemas.events import rfc3339_ms
from schemas.topics import Topics

log = logging.getLogger(__name__)
# A store or broker outage: retried for as long as it lasts, at most 30 s apart.
RETRY = Backoff(0.2, 30.0)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class RawRecord:
    """One record of the raw topic, as consumed. (Not frozen: a frozen dataclass's
    ``__init__`` costs 3x, and one is built per event.)"""

    value: bytes | None
    key: bytes | None
    timestamp_ms: int | None
    headers: Sequence[tuple[str, bytes]]
    topic: str
    partition: int
    offset: int

    @property
    def origin(self) -> str:
        """``<topic>/<partition>/<offset>``: where a dead letter came from."""
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(slots=True)
class PreparedBatch:
    """A normalized batch waiting to be made durable: its rows (each with the record it
    came from) and its dead letters."""

    records: int
    good: list[tuple[Row, RawRecord]]
    dead: list[OutRecord]


@dataclass(slots=True)
class IngestStats:
    """Counters since the process started; served by ``/healthz``."""

    received: int = 0
    stored: int = 0
    dead_lettered: int = 0
    duplicates_skipped: int = 0
    erased_at_ingest: int = 0  # late events of an erased person, erased before storing
    batches: int = 0
    retries: int = 0
    last_batch_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    started_at: float = field(default_factory=time.time)


class RecentIds:
    """A bounded, insertion-ordered set of recently stored event ids. It spares the
    normalized topic the duplicates a producer's own retries create; the store collapses
    every other duplicate by itself."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add_all(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            self._ids[event_id] = None
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


def _dlq_record(topics: Topics, record: RawRecord, reason: str, field_name: str) -> OutRecord:
    now = rfc3339_ms(datetime.now(UTC))
    headers: Headers = [
        *record.headers,
        (topic_names.DLQ_REASON_HEADER, reason.encode()),
        (topic_names.DLQ_SOURCE_HEADER, record.origin.encode()),
        (topic_names.DLQ_TIME_HEADER, now.encode()),
    ]
    if field_name:
        headers.append((topic_names.DLQ_FIELD_HEADER, field_name.encode()))
    return OutRecord(topics.dlq, record.value or b"", record.key, headers)


class BatchProcessor:
    """See the module docstring for the contract. One instance per agent; ``process`` is
    not re-entrant (batches are processed one after another, in order)."""

    def __init__(
        self,
        normalizer: BatchNormalizer,
        writer_factory: Callable[[], EventWriter],
        producer_factory: Callable[[], OutputProducer],
        topics: Topics,
        stats: IngestStats | None = None,
        erasures: Callable[[], ErasureSet] | None = None,
    ) -> None:
        self._normalizer = normalizer
        self._erasures = erasures
        self._topics = topics
        self.stats = stats or IngestStats()
        self._recent = RecentIds()
        # One thread owns the store client, one the producer: both block, and each must
        # only ever be used from one thread.
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="authtrail-store")
        self._kafka_thread = ThreadPoolExecutor(1, thread_name_prefix="authtrail-produce")
        self._writer = self._store_thread.submit(writer_factory).result()
        self._producer = self._kafka_thread.submit(producer_factory).result()

    async def prepare(self, records: Sequence[RawRecord]) -> PreparedBatch:
        """Normalizes ``records`` (see the module docstring)."""
        self.stats.received += len(records)
        results = await self._normalizer.normalize([(r.value, r.timestamp_ms) for r in records])
        good: list[tuple[Row, RawRecord]] = []
        dead: list[OutRecord] = []
        seen_in_batch: set[str] = set()
        recent = self._recent
        erasures = self._erasures() if self._erasures is not None else None
        for record, result in zip(records, results, strict=True):
            if erasures and not isinstance(result, Rejection):
                # A late event of an erased person: stored and forwarded erased already.
                erased = erased_row(result, erasures)
                if erased is not None:
                    result, record = erased, dataclasses.replace(record, key=None)
                    self.stats.erased_at_ingest += 1
            if isinstance(result, Rejection):
                dead.append(_dlq_record(self._topics, record, result.reason, result.field))
            elif result.event_id in recent or result.event_id in seen_in_batch:
                self.stats.duplicates_skipped += 1
            else:
                seen_in_batch.add(result.event_id)
                good.append((result, record))
        return PreparedBatch(len(records), good, dead)

    async def finish(self, batch: PreparedBatch) -> None:
        """Makes a prepared batch durable (see the module docstring)."""
        good, dead = batch.good, batch.dead
        rows = [row for row, _ in good]
        refused = await self._retrying("log store", self._store_thread, self._writer.write, rows)
        refused_ids = {row.event_id for row, _ in refused}
        if refused:
            by_id = {row.event_id: record for row, record in good}
            for row, reason in refused:
                dead.append(_dlq_record(self._topics, by_id[row.event_id], reason, ""))
        normalized = self._topics.normalized
        schema: Headers = [("authtrail-schema", b"1")]  # one list for all: librdkafka copies
        outputs = [
            OutRecord(normalized, row.json, record.key or row.key.encode(), schema)
            for row, record in good
            if not refused_ids or row.event_id not in refused_ids
        ]
        await self._retrying("Kafka", self._kafka_thread, self._producer.deliver, outputs + dead)

        stored_ids = [row.event_id for row, _ in good if row.event_id not in refused_ids]
        self._recent.add_all(stored_ids)
        self.stats.stored += len(stored_ids)
        self.stats.dead_lettered += len(dead)
        self.stats.batches += 1
        self.stats.last_batch_at = time.time()
        if dead:
            log.info("dead-lettered %d of %d records", len(dead), batch.records)

    async def process(self, records: Sequence[RawRecord]) -> None:
        """``prepare`` then ``finish``: one batch, start to durable."""
        await self.finish(await self.prepare(records))

    async def _retrying(
        self,
        what: str,
        thread: ThreadPoolExecutor,
        fn: Callable[[list[T]], R],
        items: list[T],
    ) -> R:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                return await loop.run_in_executor(thread, fn, items)
            except (TransientStoreError, DeliveryError) as exc:
                self._on_retry(what, exc)
                await asyncio.sleep(RETRY.delay(attempt))
                attempt += 1

    def _on_retry(self, what: str, exc: Exception) -> None:
        self.stats.retries += 1
        self.stats.last_error = f"{what}: {exc}"
        self.stats.last_error_at = time.time()
        log.warning(
            "%s unavailable, retrying the batch (lag grows, nothing is lost): %s", what, exc
        )

    def close(self) -> None:
        self._normalizer.close()
        self._kafka_thread.submit(self._producer.close).result()
        self._store_thread.shutdown(wait=True)
        self._kafka_thread.shutdown(wait=True)
