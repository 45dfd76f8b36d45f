"""The ingest worker's counters: as Prometheus metrics, read at scrape time, and as the
``ingest`` object of ``/healthz``.

authtrail_ingest_received_total, authtrail_ingest_stored_total,
authtrail_ingest_dead_lettered_total, authtrail_ingest_older_than_retention_total,
authtrail_ingest_duplicates_skipped_total, authtrail_ingest_erased_at_ingest_total,
authtrail_ingest_retries_total,
authtrail_ingest_batches_total, authtrail_ingest_last_batch_timestamp_seconds
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pipeline.batch import IngestStats
from pipeline.normalizers import NormalizerStats


def ingest_counters(stats: IngestStats, refusals: NormalizerStats) -> dict[str, Any]:
    """``/healthz``'s ``ingest``: every ``IngestStats`` field, with
    ``older_than_retention`` (records dead-lettered because the log store's retention
    would delete them at once; a part of ``dead_lettered``) after ``dead_lettered``."""
    counters: dict[str, Any] = {}
    for name, value in dataclasses.asdict(stats).items():
        counters[name] = value
        if name == "dead_lettered":
            counters["older_than_retention"] = refusals.older_than_retention
    return counters


class IngestCollector(Collector):
    def __init__(self, stats: IngestStats, refusals: NormalizerStats) -> None:
        self._stats = stats
        self._refusals = refusals

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        s = self._stats
        for name, value, help_text in (
            ("received", s.received, "Raw records read from the raw topic."),
            ("stored", s.stored, "Events stored in the log store."),
            ("dead_lettered", s.dead_lettered, "Records sent to the ingest dead-letter topic."),
            (
                "older_than_retention",
                self._refusals.older_than_retention,
                "Events refused (dead-lettered) as older than the log store's retention.",
            ),
            ("duplicates_skipped", s.duplicates_skipped, "Redelivered events skipped."),
            (
                "erased_at_ingest",
                s.erased_at_ingest,
                "Late events of an erased person, erased before they were stored.",
            ),
            ("retries", s.retries, "Batches retried after a store or Kafka failure."),
            ("batches", s.batches, "Batches processed."),
        ):
            yield CounterMetricFamily(f"authtrail_ingest_{name}", help_text, value=value)
        if s.last_batch_at is not None:
            yield GaugeMetricFamily(
                "authtrail_ingest_last_batch_timestamp_seconds",
                "When a batch was last stored.",
                value=s.last_batch_at,
            )
