"""The Faust ingest app: consumes the raw topic and hands each fetch, as one batch, to the
``BatchProcessor`` (see ``pipeline.consumer`` for why batches rather than an agent's
per-event stream).

Offsets follow the commit rule (``infra.kafka.offsets``): a batch counts as durable only
once every record of it is stored and produced, and faust's periodic commit is given, per
partition, the end of the longest durable prefix (``BatchDispatchConsumer`` asks the
ledger instead of faust's acks). Batches still in flight at shutdown get
``SHUTDOWN_GRACE_S`` to finish; the rest never count, so nothing after them is committed,
and their records are read again by the next worker (at-least-once; the store collapses
the duplicates)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Mapping
from typing import cast

import faust
from faust.types import Message

from infra.kafka.offsets import Batch, CommitLedger
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
        message.value,
        message.key,
        int(timestamp * 1000) if timestamp else None,
        list(headers.items()) if isinstance(headers, Mapping) else headers or (),
        message.topic,
        message.partition,
        message.offset,
    )


# How often acked offsets are committed (faust's default), and how many batches may be
# between fetched and durable. A crashed worker's successor re-reads at most that much:
# the bound on duplicates the fault suite checks.
COMMIT_INTERVAL_S = 2.8
IN_FLIGHT_BATCHES = 3


class InFlight:
    """Batches between fetched and durable, at most ``depth`` of them, so normalizing
    batch N+1 overlaps storing batch N and producing batch N-1.

    Contract of ``submit(messages)``: enters the batch in the ledger, starts processing
    it and returns; waits first while ``depth`` batches are in flight. A batch is marked
    durable in the ledger when every record of it is stored and produced; batches may
    finish out of order (one retried while the next is stored), and the ledger commits
    nothing past one that has not. A batch that failed re-raises from the next ``submit``,
    which stops the worker. Cancellation (shutdown) gives the batches in flight
    ``SHUTDOWN_GRACE_S`` to finish; the rest are abandoned, never durable, and read again
    by the next worker."""

    def __init__(
        self,
        processor: BatchProcessor,
        ledger: CommitLedger,
        depth: int = IN_FLIGHT_BATCHES,
    ) -> None:
        self._processor = processor
        self._ledger = ledger
        self._depth = depth
        self._tasks: deque[asyncio.Future[None]] = deque()

    async def submit(self, messages: list[Message]) -> None:
        try:
            while self._tasks and (self._tasks[0].done() or len(self._tasks) >= self._depth):
                await asyncio.shield(self._tasks[0])
                self._tasks.popleft().result()
        except asyncio.CancelledError:
            await self._abandon()
            raise
        ticket = self._ledger.track((m.tp, m.offset) for m in messages)
        task = asyncio.ensure_future(self._processor.process([to_raw_record(m) for m in messages]))
        task.add_done_callback(lambda done: self._on_done(done, ticket))
        self._tasks.append(task)

    def _on_done(self, task: asyncio.Future[None], ticket: Batch) -> None:
        if not task.cancelled() and task.exception() is None:
            self._ledger.durable(ticket)

    async def _abandon(self) -> None:
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_S)
            for task in late:
                task.cancel()
            if late:
                log.warning(
                    "stopped with %d batches not yet stored; their offsets are not committed "
                    "and they will be processed again on restart",
                    len(late),
                )
        self._tasks.clear()


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
        # No leader election topic: nothing here runs on_leader, and its one partition,
        # always empty, is in every fetch. While the raw partitions all hold buffered
        # records aiokafka's fetch asks for that partition alone, the broker holds it for
        # faust's fetch_max_wait of 1.5 s, and the raw partitions wait behind it: stalls
        # of 1.5 s whenever the worker is behind (at start, after a burst).
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        broker_max_poll_records=settings.ingest_batch_size,
        # A worker that died (kill -9, a lost node) holds its partitions until its session
        # times out: 15 s rather than faust's 60 bounds that stall, as for the connectors.
        # aiokafka heartbeats from its own task, which a batch in flight does not block.
        broker_session_timeout=15.0,
        broker_commit_interval=COMMIT_INTERVAL_S,
        broker_heartbeat_interval=3.0,
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
    consumer.batch_handler = InFlight(processor, consumer.ledger).submit
    return app
