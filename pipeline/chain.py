"""The ingest path in one place, in the order a record takes it (cf. snuba's strategy
factories): ``ingest_chain`` wires the steps and nothing else.

1. **consume**: faust's consumer hands each fetch on as one batch
   (``pipeline.consumer.BatchDispatchConsumer``, in the faust app of ``pipeline.app``);
2. **normalize**: in child processes (``pipeline.normalizers``): the contract's checks
   (``pipeline.normalize``) and enrichment (``pipeline.enrich``); a record that fails
   becomes a dead letter with its reason;
3. **store**: the rows into the log store (``pipeline.store.EventWriter``);
4. **forward**: normalized events and dead letters to Kafka
   (``pipeline.outputs.OutputProducer``);
5. **commit**: ``pipeline.batch.BatchProcessor`` marks the batch durable in the consumer's
   ``CommitLedger`` only after steps 3 and 4; faust's periodic commit carries only durable
   offsets, so a record is never committed past before it is stored and forwarded."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import faust

from infra.clickhouse.client import connect
from pipeline.app import create_app
from pipeline.batch import BatchProcessor
from pipeline.normalizers import BatchNormalizer, batch_normalizer
from pipeline.outputs import OutputProducer
from pipeline.store import EventWriter
from schemas.erasure import ErasureSet
from schemas.log_store import StoreLocation
from schemas.settings import Settings


@dataclass(frozen=True, slots=True)
class IngestChain:
    """The ingest path's parts a process runs and reports on."""

    app: faust.App
    processor: BatchProcessor
    normalizer: BatchNormalizer


def ingest_chain(
    settings: Settings,
    location: StoreLocation,
    retention_days: int | None = None,
    erasures: Callable[[], ErasureSet] | None = None,
) -> IngestChain:
    """The ingest path for ``settings`` into the (migrated) log store at ``location``.
    Events older than ``retention_days`` (default: ``AUTHTRAIL_RETENTION_DAYS``, what the
    migration gave the table's TTL) are refused at ingest; ``erasures`` gives the
    erasures in force, whose people's late events are erased before they are stored."""
    normalizer = batch_normalizer(
        settings.max_event_bytes,
        settings.ingest_normalizer_processes,
        retention_days or settings.retention_days,
    )
    processor = BatchProcessor(
        normalizer,
        writer_factory=lambda: EventWriter(connect(location), location),
        producer_factory=lambda: OutputProducer(
            settings.kafka_client_config(), f"authtrail-ingest-{os.getpid()}"
        ),
        topics=settings.topics,
        erasures=erasures,
    )
    return IngestChain(create_app(settings, processor), processor, normalizer)
