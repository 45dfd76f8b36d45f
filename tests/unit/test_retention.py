"""Events older than the log store's retention are refused at ingest (#16 item 4): the
store's TTL would delete them at once, after they had been acknowledged and counted as
stored. They go to the dead-letter topic with a reason naming the retention and the
cutoff, are counted apart (``older_than_retention`` on ``/healthz`` and ``/metrics``),
and never reach the store.

No test here depends on the day it runs: the normalizer's clock is injected where dates
are fixed, and events are built relative to the real clock where it is not (the
children's clock cannot be injected; under tests/clock/shifted-clock.sh both move)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from authtrail.health import ProbeServer
from pipeline.batch import BatchProcessor, IngestStats, RawRecord
from pipeline.enrich import Enricher
from pipeline.metrics import IngestCollector, ingest_counters
from pipeline.normalize import Normalizer, Rejection
from pipeline.normalizers import InProcessNormalizer, NormalizerStats, ProcessNormalizer, RawValue
from pipeline.outputs import OutRecord
from pipeline.store import Row
from schemas import topics as topic_names
from schemas.events import NormalizedEvent
from schemas.topics import Topics

# The injected "now" of the normalizer, and a record's broker timestamp a little before.
NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
RECEIVED = NOW - timedelta(seconds=2)


def at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def raw(occurred_at: datetime | str | int, **fields: Any) -> bytes:
    if isinstance(occurred_at, datetime):
        occurred_at = occurred_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return orjson.dumps({"event_key": "login.completed", "occurred_at": occurred_at, **fields})


def test_an_event_older_than_the_retention_is_refused_saying_so() -> None:
    normalizer = Normalizer(Enricher(), retention_days=90, clock=at(NOW))
    result = normalizer.normalize(raw("2026-08-27T11:59:59.999Z"), RECEIVED)
    assert result == Rejection(
        "occurred_at 2026-08-27T11:59:59.999Z is older than the log store's retention of "
        "90 days (AUTHTRAIL_RETENTION_DAYS; cutoff 2026-08-28T12:00:00.000Z): the store "
        "would delete it at once, so it is not stored",
        "occurred_at",
        older_than_retention=True,
    )


def test_the_cutoff_is_now_minus_the_retention_to_the_millisecond() -> None:
    normalizer = Normalizer(Enricher(), retention_days=90, clock=at(NOW))
    cutoff = NOW - timedelta(days=90)
    assert isinstance(normalizer.normalize(raw(cutoff), RECEIVED), NormalizedEvent)
    late = normalizer.normalize(raw(cutoff - timedelta(milliseconds=1)), RECEIVED)
    assert isinstance(late, Rejection) and late.older_than_retention


@pytest.mark.parametrize(
    "event",
    [
        raw("2026-07-01T00:00:00Z"),  # the fast path (canonical v1)
        raw(1782864000, account_id="acc_1", user_email="ana@acme.io"),  # flat, epoch seconds
        orjson.dumps({"event_key": "login.completed", "ts": "2026-07-01T00:00:00+02:00"}),
    ],
    ids=["canonical", "flat", "alias"],
)
def test_both_paths_refuse_it_alike(event: bytes) -> None:
    normalizer = Normalizer(Enricher(), retention_days=90, clock=at(NOW))
    general = normalizer.normalize_general(event, RECEIVED)
    assert isinstance(general, Rejection) and general.older_than_retention
    assert normalizer.normalize(event, RECEIVED) == general


def test_the_broker_timestamp_does_not_move_the_cutoff() -> None:
    """A record produced long ago (a backlog, or a replay that kept its CreateTime) is
    judged on the ingest's clock: the store's TTL runs on the store's clock."""
    normalizer = Normalizer(Enricher(), retention_days=30, clock=at(NOW))
    occurred = NOW - timedelta(days=31)
    result = normalizer.normalize(raw(occurred), occurred + timedelta(seconds=1))
    assert isinstance(result, Rejection) and "retention of 30 days" in result.reason


def test_a_shortened_retention_refuses_what_the_longer_one_stored() -> None:
    late = raw(NOW - timedelta(days=45))
    before = Normalizer(Enricher(), retention_days=90, clock=at(NOW))
    after = Normalizer(Enricher(), retention_days=30, clock=at(NOW))
    assert isinstance(before.normalize(late, RECEIVED), NormalizedEvent)
    refused = after.normalize(late, RECEIVED)
    assert isinstance(refused, Rejection) and refused.older_than_retention
    assert "retention of 30 days" in refused.reason
    assert "cutoff 2026-10-27T12:00:00.000Z" in refused.reason


def test_one_day_is_worded_as_one() -> None:
    normalizer = Normalizer(Enricher(), retention_days=1, clock=at(NOW))
    result = normalizer.normalize(raw(NOW - timedelta(days=2)), RECEIVED)
    assert isinstance(result, Rejection) and "retention of 1 day (" in result.reason


def test_the_other_rules_speak_first() -> None:
    """A field error is reported before the time, and the contract's fixed floor before
    the retention, as before."""
    normalizer = Normalizer(Enricher(), retention_days=30, clock=at(NOW))
    old = NOW - timedelta(days=400)
    bad_ip = normalizer.normalize(raw(old, ip="not-an-ip"), RECEIVED)
    assert isinstance(bad_ip, Rejection) and bad_ip.field == "ip"
    assert not bad_ip.older_than_retention
    ancient = normalizer.normalize(raw("1999-12-31T23:59:59Z"), RECEIVED)
    assert ancient == Rejection("occurred_at is before 2000-01-01", "occurred_at")


def test_no_retention_no_cutoff() -> None:
    """Events built outside ingest (test data, benchmarks) keep any age."""
    normalizer = Normalizer(Enricher(), clock=at(NOW))
    assert isinstance(normalizer.normalize(raw("2001-01-01T00:00:00Z"), RECEIVED), NormalizedEvent)


def test_the_default_clock_is_the_wall_clock() -> None:
    normalizer = Normalizer(Enricher(), retention_days=30)
    now = datetime.now(UTC)
    assert isinstance(normalizer.normalize(raw(now - timedelta(days=29)), now), NormalizedEvent)
    refused = normalizer.normalize(raw(now - timedelta(days=31)), now)
    assert isinstance(refused, Rejection) and refused.older_than_retention


# -- batches: in the worker's process and in the normalizer children -----------------------


def batch_around_now() -> list[RawValue]:
    """Two events within a 30-day retention, two beyond it and one invalid, as records
    received now (by the test process's clock, which the children share)."""
    now_ms = int(time.time() * 1000)
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    return [
        (raw(now - timedelta(days=1)), now_ms),
        (raw(now - timedelta(days=31)), now_ms),
        (raw(now - timedelta(days=29)), now_ms),
        (raw(now - timedelta(days=400)), now_ms),
        (b"{not json", now_ms),
    ]


def kinds(results: Sequence[Row | Rejection]) -> list[str]:
    return [
        "row"
        if isinstance(r, Row)
        else "old"
        if r.older_than_retention and "retention of 30 days" in r.reason
        else "refused"
        for r in results
    ]


@pytest.fixture(scope="module")
def children() -> Iterator[ProcessNormalizer]:
    normalizer = ProcessNormalizer(262_144, 30, processes=1)
    yield normalizer
    normalizer.close()


def test_in_process_batches_refuse_and_count_them() -> None:
    normalizer = InProcessNormalizer(262_144, 30)
    for _ in range(2):
        results = asyncio.run(normalizer.normalize(batch_around_now()))
        assert kinds(results) == ["row", "old", "row", "old", "refused"]
    assert normalizer.stats.older_than_retention == 4


def test_the_retention_reaches_the_children(children: ProcessNormalizer) -> None:
    results = asyncio.run(children.normalize(batch_around_now()))
    assert kinds(results) == ["row", "old", "row", "old", "refused"]
    assert children.stats.older_than_retention == 2


# -- the batch step: dead-lettered, never stored, counted ----------------------------------


class RecordingWriter:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def write(self, rows: Sequence[Row]) -> list[tuple[Row, str]]:
        self.rows += rows
        return []


class RecordingProducer:
    def __init__(self) -> None:
        self.records: list[OutRecord] = []

    def deliver(self, records: Sequence[OutRecord]) -> None:
        self.records += records

    def close(self) -> None:
        pass


def test_the_batch_step_dead_letters_it_and_stores_the_rest() -> None:
    writer, producer = RecordingWriter(), RecordingProducer()
    normalizer = InProcessNormalizer(262_144, 30)
    topics = Topics.with_prefix("")
    processor = BatchProcessor(
        normalizer,
        writer_factory=lambda: writer,  # type: ignore[arg-type,return-value]
        producer_factory=lambda: producer,  # type: ignore[arg-type,return-value]
        topics=topics,
    )
    try:
        values = batch_around_now()
        records = [
            RawRecord(value, None, stamp, [], topics.raw, 0, offset)
            for offset, (value, stamp) in enumerate(values)
        ]
        asyncio.run(processor.process(records))
    finally:
        processor.close()
    stored = {orjson.loads(row.json)["occurred_at"] for row in writer.rows}
    assert len(stored) == 2
    dead = [r for r in producer.records if r.topic == topics.dlq]
    assert [r.value for r in dead] == [values[1][0], values[3][0], values[4][0]]
    reasons = [dict(r.headers)[topic_names.DLQ_REASON_HEADER] for r in dead]
    assert all(b"older than the log store's retention of 30 days" in r for r in reasons[:2])
    assert all(dict(r.headers)[topic_names.DLQ_FIELD_HEADER] == b"occurred_at" for r in dead[:2])
    counters = ingest_counters(processor.stats, normalizer.stats)
    assert (counters["stored"], counters["dead_lettered"]) == (2, 3)
    assert counters["older_than_retention"] == 2


# -- where the count is read: /healthz and /metrics ----------------------------------------


def test_healthz_and_metrics_report_the_count() -> None:
    stats, refusals = IngestStats(received=7, stored=4, dead_lettered=3), NormalizerStats(2)
    counters = ingest_counters(stats, refusals)
    names = list(counters)
    assert names.index("older_than_retention") == names.index("dead_lettered") + 1
    assert counters["older_than_retention"] == 2 and counters["dead_lettered"] == 3

    registry = CollectorRegistry()
    registry.register(IngestCollector(stats, refusals))
    assert "authtrail_ingest_older_than_retention_total 2.0" in generate_latest(registry).decode()

    # The standalone worker's /healthz (no API in the process) carries the same counters.
    probes = ProbeServer(
        "127.0.0.1",
        0,
        registry,
        lambda: None,
        lambda: None,
        healthz_details=lambda: {"ingest": ingest_counters(stats, refusals)},
    ).start()
    try:
        base = f"http://127.0.0.1:{probes.port}"
        health = httpx.get(f"{base}/healthz", timeout=5).json()
        assert health["status"] == "ok" and health["ingest"]["older_than_retention"] == 2
        assert httpx.get(f"{base}/readyz", timeout=5).json() == {"status": "ok"}
    finally:
        probes.stop()
