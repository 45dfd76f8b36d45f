"""The Faust ingest app: consumes the raw topic in batches and hands each batch to the
``BatchProcessor``.

Offsets: faust commits an event's offset once it is acked; ``take_events`` acks a batch
after our loop body returns, i.e. after ``BatchProcessor.process`` made every record
durable. If the body is cancelled (shutdown) before that, the batch's messages are
marked so that faust never acks them: their offsets stay uncommitted and the records are
read again by the next worker (at-least-once; the store collapses the duplicates)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from typing import Any, cast

import faust

from pipeline.batch import BatchProcessor, RawRecord
from schemas.settings import Settings

log = logging.getLogger(__name__)

# How long a shutdown waits for the batch in flight before abandoning it.
SHUTDOWN_GRACE_S = 10.0


def to_raw_record(event: Any) -> RawRecord:
    message = event.message
    timestamp = message.timestamp
    headers = message.headers
    return RawRecord(
        value=event.value,
        key=message.key,
        timestamp_ms=int(timestamp * 1000) if timestamp else None,
        headers=list(headers.items() if isinstance(headers, dict) else headers or []),
        origin=f"{message.topic}/{message.partition}/{message.offset}",
    )


def _never_ack(events: Sequence[Any]) -> None:
    # faust skips the consumer-side ack of a message already flagged as acked, so its
    # offset never becomes committable (faust commits up to the first gap).
    for event in events:
        event.message.acked = True


async def process_or_abandon(processor: BatchProcessor, events: Sequence[Any]) -> None:
    """Runs one batch; on cancellation gives it ``SHUTDOWN_GRACE_S`` to finish, else
    makes sure none of its offsets is committed, then re-raises."""
    work = asyncio.ensure_future(processor.process([to_raw_record(e) for e in events]))
    try:
        await asyncio.shield(work)
    except asyncio.CancelledError:
        try:
            await asyncio.wait_for(asyncio.shield(work), SHUTDOWN_GRACE_S)
        except (TimeoutError, asyncio.CancelledError):
            work.cancel()
            _never_ack(events)
            log.warning(
                "stopped with a batch of %d events not yet stored; their offsets are not "
                "committed and they will be processed again on restart",
                len(events),
            )
        raise
    except BaseException:
        _never_ack(events)
        raise


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
    """The faust app for ``settings``, with the ingest agent bound to ``processor``.
    Topics must exist already (``authtrail topics create``)."""
    brokers = [f"kafka://{host.strip()}" for host in settings.bootstrap_servers.split(",")]
    app = faust.App(
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
        stream_buffer_maxsize=max(4096, settings.ingest_batch_size * 2),
        broker_max_poll_records=max(500, settings.ingest_batch_size),
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

    async def ingest(stream: faust.StreamT[bytes]) -> None:
        # take_events is on faust.Stream, not (yet) on the StreamT interface.
        async for events in cast(faust.Stream[bytes], stream).take_events(
            settings.ingest_batch_size, within=settings.ingest_flush_seconds
        ):
            await process_or_abandon(processor, events)

    app.agent(raw_topic, name="ingest", concurrency=1)(ingest)
    return app
