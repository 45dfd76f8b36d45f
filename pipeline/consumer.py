"""faust's Kafka consumer with one change: each fetch is handed on as one batch.

faust delivers every message on its own: through ``Service.wait_first`` (two tasks per
message), the conductor, a channel queue, a stream and an ``Event``. On this machine that
costs about 160 µs per message, which caps an agent that does nothing at 6,000 events/s
(``make bench`` measures it). The ingest step is batch-shaped anyway (one insert and one
produce per batch), so this consumer keeps everything else faust does (group membership
and rebalancing through aiokafka, flow control, offset gap tracking, committing acked
offsets on faust's interval) and replaces only the per-message dispatch, and which offsets
those commits carry: the commit rule's, from a ``CommitLedger``, not faust's acks (faust
commits the first consecutive run of acked offsets, which can pass an offset never acked
while a partition has no committed offset yet, or when the gap is a single offset).

Written against faust-streaming 0.15 (``pyproject.toml`` pins the minor version): it
overrides ``Consumer._drain_messages`` (keeping its read-offset bookkeeping line for line),
``_filter_tps_with_pending_acks`` and ``_new_offset`` (what a commit carries),
``on_partitions_revoked`` (the ledger forgets what the partition's next owner re-reads)
and ``_new_consumer_thread`` (a shorter fetch wait, ``FETCH_MAX_WAIT_MS``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, cast

from aiokafka import AIOKafkaConsumer as KafkaClientConsumer
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP, Message
from mode import Service, ServiceT

from infra.kafka.offsets import CommitLedger

BatchHandler = Callable[[list[Message]], Awaitable[None]]

# How long the broker may hold a fetch that finds nothing new. faust asks aiokafka for
# 1.5 s. aiokafka fetches only the partitions with nothing buffered: when those are idle
# ones (keyed producers leave partitions idle; the busy ones all hold buffered records),
# the broker holds that fetch the whole wait, and the busy partitions, drained meanwhile,
# cannot be fetched until it returns: a 1.5 s stall each time ingest is behind. 100 ms
# bounds the stall; an idle worker sends ten empty fetches a second instead of one.
FETCH_MAX_WAIT_MS = 100


class ShortFetchWaitThread(AIOKafkaConsumerThread):
    """faust's consumer thread, with ``FETCH_MAX_WAIT_MS`` for the aiokafka consumer it
    creates (faust hard-codes the wait; aiokafka reads it when the consumer starts)."""

    def _create_worker_consumer(self, transport: Any) -> KafkaClientConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class BatchDispatchConsumer(AIOKafkaConsumer):
    """Hands the messages of each fetch, in partition order, to ``batch_handler``.

    Contract: ``batch_handler(messages)`` is awaited before the next fetch is dispatched
    (aiokafka keeps prefetching meanwhile, in faust's consumer thread); it may return
    before the batch is durable, to overlap batches. The handler enters each batch in
    ``ledger`` and marks it durable there, in any order; faust's periodic commit carries
    only the ledger's offsets, so a record never durable is never committed past and is
    read again after a restart or a rebalance (at-least-once). A handler that raises
    stops the worker, as an agent crash does in faust.
    """

    batch_handler: BatchHandler | None = None
    ledger: CommitLedger

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ledger = CommitLedger()

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return ShortFetchWaitThread(self, loop=self.loop, beacon=self.beacon)

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[TP]:
        for topic, partition in self.ledger.pending():
            if topics is None or topic in topics or (topic, partition) in topics:
                yield TP(topic, partition)

    def _new_offset(self, tp: TP) -> int | None:
        return self.ledger.take(tp)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        await super().on_partitions_revoked(revoked)
        self.ledger.forget(revoked)

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        handler = self.batch_handler
        if handler is None:
            raise RuntimeError("BatchDispatchConsumer started without a batch_handler")
        consumer_stopped = cast(Service, self)._stopped.is_set
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                batch: list[Message] = []
                await self.sleep(0)
                if self.should_stop:
                    break
                async for tp, message in cast(Any, self.getmany(timeout=1.0)):
                    offset = message.offset
                    last = read_offset[tp]
                    if last is not None and offset < last:
                        continue  # re-fetched after a seek: already dispatched
                    # Transaction markers and compaction leave holes in the offsets;
                    # faust must know them to commit past them.
                    if last and offset - last > 1 and acks_enabled_for(message.topic):
                        await self._add_gap(tp, last + 1, offset)
                    read_offset[tp] = offset
                    batch.append(message)
                self.diag.unset_flag(CONSUMER_FETCHING)
                if batch:
                    await handler(batch)
                    commit_every = self._commit_every
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)
