"""The Faust ingest app: consumes the raw topic and hands each fetch, as one batch, to the
``BatchProcessor`` (see ``pipeline.consumer`` for why batches rather than an agent's
per-event stream).

Offsets: a batch's messages are acked only after ``BatchProcessor.process`` made every
record durable, and faust commits acked offsets only. If processing is cancelled
(shutdown) and does not finish within ``SHUTDOWN_GRACE_S``, nothing of the batch is
acked: the records are read again by the next worker (at-least-once; the store collapses
the duplicates)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Mapping
from typing import cast

import faust
from faust.types import Message

from pipeline.batch import BatchProcessor, RawRecord
from pipeline.consumer import BatchDispatchConsumer
from schemas.settings import Settings

log = logging.getLogger(__name__)

# How long a shutdown waits for the batch in flight before abandoning it.
SHUTDOWN_GRACE_S = 10.0


def to_raw_record(message: Message) -> RawRecord:
    timestamp = message.timestamp
    headers = message.headers
    return RawRecord(
        value=message.value,
        key=message.key,
        timestamp_ms=int(timestamp * 1000) if timestamp else None,
        headers=list(headers.items()) if isinstance(headers, Mapping) else list(headers or ()),
        origin=f"{message.topic}/{message.partition}/{message.offset}",
    )


async def process_then_ack(
    processor: BatchProcessor, records: list[RawRecord], ack: Callable[[], None]
) -> None:
    """Runs one batch to completion, then calls ``ack``. On cancellation (shutdown) the
    batch gets ``SHUTDOWN_GRACE_S`` to finish and is acked if it does; either way the
    cancellation is re-raised. An abandoned batch is never acked."""
    work = asyncio.ensure_future(processor.process(records))
    try:
        await asyncio.shield(work)
    except asyncio.CancelledError:
        try:
            await asyncio.wait_for(asyncio.shield(work), SHUTDOWN_GRACE_S)
        except (TimeoutError, asyncio.CancelledError):
            work.cancel()
            log.warning(
                "stopped with a batch of %d events not yet stored; their offsets are not "
                "committed and they will be processed again on restart",
                len(records),
            )
        else:
            ack()
        raise
    ack()


class IngestApp(faust.App):
    """A faust app whose consumer dispatches whole fetches (``BatchDispatchConsumer``)."""

    def _new_consumer(self) -> BatchDispatchConsumer:
        transport = self.transport
        return BatchDispatchConsumer(
            transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=transport.loop,
        )


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """faust's view of the Kafka security settings (the confluent clients get the same
    from ``Settings.kafka_client_config``)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol.endswith("SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None
        )
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    assert settings.kafka_sasl_username and settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        ssl_context=context,
        mechanism=settings.kafka_sasl_mechanism,
    )


def create_app(settings: Settings, processor: BatchProcessor) -> faust.App:
    """The faust app for ``settings``, consuming the raw topic into ``processor``.
    Topics must exist already (``authtrail topics create``)."""
    brokers = [f"kafka://{host.strip()}" for host in settings.bootstrap_servers.split(",")]
    app = IngestApp(
        settings.ingest_group,
        broker=brokers,
        broker_credentials=broker_credentials(settings),
        datadir=str(settings.data_dir / "faust"),
        web_enabled=False,
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        broker_max_poll_records=settings.ingest_batch_size,
        producer_acks=-1,
        loghandlers=[],
    )
    raw_topic = app.topic(
        settings.topics.raw,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    app.topics.add(raw_topic)
    consumer = cast(BatchDispatchConsumer, app.consumer)

    async def ingest(messages: list[Message]) -> None:
        def ack() -> None:
            for message in messages:
                consumer.ack(message)

        await process_then_ack(processor, [to_raw_record(m) for m in messages], ack)

    consumer.batch_handler = ingest
    return app
