"""Prometheus metrics of the ingest worker, read from its counters at scrape time.

authtrail_ingest_received_total, authtrail_ingest_stored_total,
authtrail_ingest_dead_lettered_total, authtrail_ingest_duplicates_skipped_total,
authtrail_ingest_retries_total, authtrail_ingest_batches_total,
authtrail_ingest_last_batch_timestamp_seconds
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pipeline.batch import IngestStats


class IngestCollector(Collector):
    def __init__(self, stats: IngestStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        s = self._stats
        for name, value, help_text in (
            ("received", s.received, "Raw records read from the raw topic."),
            ("stored", s.stored, "Events stored in the log store."),
            ("dead_lettered", s.dead_lettered, "Records sent to the ingest dead-letter topic."),
            ("duplicates_skipped", s.duplicates_skipped, "Redelivered events skipped."),
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
