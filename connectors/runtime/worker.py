"""One destination's consumer: its own consumer group on ``auth-events.normalized``, its own
offsets, retries and dead-letter topic.

Contract of ``DestinationWorker``:
* consumes batches (up to the platform's entry limit, or what arrived within the linger)
  and sends up to ``max_in_flight`` of them at once;
* events the destination's filter excludes count as done without a request;
* commits by the commit rule (``infra.kafka.offsets``): per partition, up to the end of
  the longest prefix of the records read that are delivered or dead-lettered
  (``auth-events.dlq.<id>``, with headers naming the platform's status, code and reply);
  a batch that fails, is interrupted (a stop, a pause, an edit) or is abandoned holds
  everything after it on its partitions uncommitted, whatever was delivered later;
* never skips: while the platform fails it retries (the destination shows ``failing`` and
  its lag grows); refused credentials make it ``auth_failed``: the batch is re-read and
  retried every ``connector_auth_recheck_seconds`` until the credentials work again;
* keeps its group membership while it waits (it polls its paused partitions), so a long
  outage does not trigger a rebalance storm; a rebalance at any point loses nothing: what
  was not committed is delivered again (duplicates carry the same ``event_id``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from connectors.runtime.dead_letters import Letter, store_letters
from connectors.runtime.delivery import AuthFailedError, Delivery, DeliveryStats
from connectors.runtime.throttle import RequestGate
from connectors.sinks import build_sink, event_reader
from connectors.sinks.base import Reply, Sink
from infra.kafka.clients import (
    CONNECTOR_MAX_POLL_INTERVAL_MS,
    SESSION_TIMEOUT_MS,
    close_consumer,
    kafka_consumer,
)
from infra.kafka.offsets import Batch, CommitLedger
from schemas.destinations import Destination, WorkerState
from schemas.erasure import ErasureSet
from schemas.settings import Settings

log = logging.getLogger(__name__)

State = WorkerState
_T = TypeVar("_T")
REPLICA = f"{socket.gethostname()}:{os.getpid()}"


KEEPALIVE_AFTER_S = 5.0  # a send slower than this is waiting on retries
# A stall is shown at least this long (then until a batch is delivered), so that what looks
# every few seconds (the status topic, the notifier, a page) sees it even when the
# replacement is quick.
STALLED_SHOWN_S = 10.0
SHUTDOWN_GRACE_S = 30.0  # how long a stop waits for the batches in flight, together


@dataclass(slots=True)
class _Prepared:
    batch: list[Message]
    ticket: Batch
    # With each message its entry (opaque here: the sink's own type).
    wanted: list[tuple[Message, Any]] = field(default_factory=list)
    unreadable: list[tuple[Message, str]] = field(default_factory=list)  # with the reason
    filtered: int = 0


_InFlight = tuple[_Prepared, "Future[list[Letter]]"]
_CARRIED = (
    "delivered",
    "dead_lettered",
    "filtered",
    "last_success",
    "last_error",
    "last_error_at",
    "stalls",
)


@dataclass(slots=True)
class WorkerStatus:
    """What the Stream tab shows of one destination in this process."""

    destination_id: str
    replica: str = REPLICA
    state: State = "starting"
    delivered: int = 0
    dead_lettered: int = 0
    filtered: int = 0
    retries: int = 0
    events_per_s: float = 0.0  # delivered, over the last status interval
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    failing_since: float | None = None  # when every request began to fail, while it lasts
    partitions: list[int] = field(default_factory=list)  # this replica's share
    stalls: int = 0  # times its consumer was found stalled and replaced (``stall``)
    updated_at: float = field(default_factory=time.time)

    def to_json(self) -> bytes:
        return orjson.dumps({k: getattr(self, k) for k in self.__slots__})


class DestinationWorker(threading.Thread):
    """See the module docstring. ``stop()`` ends it after the batch in hand (a batch
    waiting to be retried is abandoned uncommitted: it is delivered again later)."""

    def __init__(
        self,
        settings: Settings,
        destination: Destination,
        erasures: Callable[[], ErasureSet] | None = None,
    ) -> None:
        super().__init__(name=f"connector-{destination.id}", daemon=True)
        self.destination = destination
        # The erasures in force: an erased person's event still in the topic (a backlog,
        # a replay) leaves erased.
        self._erasures = erasures
        self._settings = settings
        self._linger = settings.connector_linger_seconds
        self._auth_recheck = settings.connector_auth_recheck_seconds
        self._max_in_flight = settings.connector_max_in_flight
        self._generation = 0  # bumped to make the deliveries in flight give up
        self._stopping = threading.Event()
        self.status = WorkerStatus(destination.id)
        self._dlq_topic = settings.topics.destination_dlq(destination.id)
        self._consumer: Consumer | None = None
        self._stats = DeliveryStats()
        self._paused = False
        self._ledger = CommitLedger()
        # Per partition held, the offset after the last record read: what the stall watch
        # (``connectors.runtime.stall``) counts as reading progress.
        self._read_to: dict[int, int] = {}
        self._member_id: str | None = None
        self._stalled_until = 0.0  # monotonic: ``stalled`` is not left before
        self._recovered = False  # delivered while ``stalled`` was still shown
        # Shared by the batches in flight: a Retry-After holds them all.
        self._gate = RequestGate(self._max_in_flight)

    def stop(self) -> None:
        self._stopping.set()

    def read_to(self) -> dict[int, int]:
        """Per partition held, the offset after the last record read (a copy)."""
        return dict(self._read_to)

    def member_id(self) -> str | None:
        """Its consumer's member id in the group, as of its last assignment (None before
        one). Kept by the worker's own thread: a call on the consumer from another thread
        waits for the worker's ``consume`` to return."""
        return self._member_id

    def stalled(self, reason: str) -> None:
        """Shows this worker ``stalled`` (found so by the supervisor's stall watch)."""
        self.status.stalls += 1
        self._set_state("stalled", reason)
        self._hold_stalled()

    def carry_on(self, earlier: WorkerStatus, state: State) -> None:
        """Before it starts, a replacement takes over the counters and last error of the
        worker it replaces, in ``state`` (``stalled`` stays until it delivers a batch)."""
        for name in _CARRIED:
            setattr(self.status, name, getattr(earlier, name))
        self.status.state = state
        if state == "stalled":
            self._hold_stalled()

    def _hold_stalled(self) -> None:
        self._stalled_until = time.monotonic() + STALLED_SHOWN_S

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        try:
            sink = build_sink(self.destination)
        except Exception as exc:
            self._set_state("failing", f"cannot start: {type(exc).__name__}: {exc}")
            log.error("destination %s cannot start: %s", self.destination.id, exc)
            self.status.state = "stopped"
            return
        stats = self._stats = DeliveryStats()
        consumer = self._open_consumer()
        self._consumer = consumer
        producer = Producer(
            {
                **self._settings.kafka_client_config(),
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
            }
        )
        # Up to ``max_in_flight`` batches are sent (in sender threads) while the next is read
        # and encoded here; they are committed in order, here, once delivered.
        sender = ThreadPoolExecutor(
            self._max_in_flight, thread_name_prefix=f"send-{self.destination.id}"
        )
        try:
            self._consume(sink, producer, sender)
        except Exception as exc:  # the supervisor restarts the worker
            log.exception("destination %s stopped on an error", self.destination.id)
            self._set_state("failing", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self._generation += 1
            sender.shutdown(wait=True)
            self.status.retries = stats.retries
            if self._consumer is not None:
                # No commit here: only delivered batches are committed.
                close_consumer(self._consumer, self.destination.id)
            producer.flush(10)
            sink.close()
            self.status.state = "stopped"

    def _consume(self, sink: Sink[Any], producer: Producer, sender: ThreadPoolExecutor) -> None:
        """The loop, until a stop: read, deliver in the sender threads, commit in order."""
        consumer = self._consumer
        assert consumer is not None
        stats = self._stats
        in_flight: deque[_InFlight] = deque()
        while not self._stopping.is_set():
            self._show_recovered()
            batch = self._collect(consumer, sink.limits.max_entries)
            try:
                if batch:
                    prepared = self._prepare(batch, sink)
                    while len(in_flight) >= self._max_in_flight:
                        self._finish(consumer, *in_flight.popleft())
                    delivery = self._delivery(sink, stats)
                    in_flight.append(
                        (prepared, sender.submit(self._send, prepared, delivery, producer))
                    )
                while in_flight and in_flight[0][1].done():
                    self._finish(consumer, *in_flight.popleft())
                if in_flight:
                    # A batch retrying with no traffic behind it is never awaited:
                    # the status shows its failure all the same.
                    self._show_failing()
            except AuthFailedError as exc:
                # Neither the refused batch nor those after it are committed.
                self._abandon(future for _, future in in_flight)
                in_flight.clear()
                self._wait_for_credentials(sink, exc)
                # A fresh consumer re-reads from the committed offsets: nothing of the
                # refused batches is skipped (seeking back is not reliable on partitions
                # paused meanwhile).
                consumer = self._fresh_consumer(consumer)
            except InterruptedError:
                break
        # Stopping: batches that complete in time count; one interrupted while it waited
        # for a retry never does, so the ledger commits nothing after it on its
        # partitions (they are handed back to the group uncommitted).
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        while in_flight:
            prepared, future = in_flight.popleft()
            try:
                letters = future.result(timeout=max(deadline - time.monotonic(), 0.0))
            except (InterruptedError, AuthFailedError, FutureTimeout):
                continue
            self._finish(consumer, prepared, future, letters)

    def _delivery(self, sink: Sink[Any], stats: DeliveryStats) -> Delivery[Any]:
        """A delivery that gives up (``InterruptedError``) when the worker stops or abandons
        the batches in flight."""
        generation = self._generation
        return Delivery(
            sink,
            lambda: self._stopping.is_set() or self._generation != generation,
            stats=stats,
            sleep=self._nap,
            gate=self._gate,
        )

    def _abandon(self, futures: Iterable[Future[Any]]) -> None:
        """Gives up the deliveries in flight (uncommitted: they are read again) and waits
        for their senders to let go, keeping the group membership meanwhile."""
        self._generation += 1
        for future in futures:
            while not future.done():
                self._keepalive(0.2)

    def _open_consumer(self) -> Consumer:
        consumer = kafka_consumer(
            self._settings,
            self.destination.group_id,
            {
                "client.id": f"authtrail-connector-{self.destination.id}",
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "max.poll.interval.ms": CONNECTOR_MAX_POLL_INTERVAL_MS,
                "fetch.wait.max.ms": 100,
                # A small prefetch keeps memory flat over a large backlog; librdkafka then
                # backs off fetching whenever it is full, by default for a whole second,
                # which starved the sender (60k/s instead of 650k/s consumed alone).
                "queued.max.messages.kbytes": 8_192,
                "fetch.queue.backoff.ms": 10,
                "on_commit": self._on_commit,
            },
        )
        self.status.partitions = []
        self._read_to = {}
        self._member_id = None
        consumer.subscribe(
            [self._settings.topics.normalized],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        return consumer

    def _collect(self, consumer: Consumer, max_entries: int) -> list[Message]:
        batch: list[Message] = []
        deadline: float | None = None
        while len(batch) < max_entries and not self._stopping.is_set():
            if deadline is None:
                timeout = 0.5
            else:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
            messages = consumer.consume(num_messages=max_entries - len(batch), timeout=timeout)
            for message in messages:
                error = message.error()
                if error is None:
                    batch.append(message)
                    self._read_to[message.partition() or 0] = (message.offset() or 0) + 1
                else:
                    log.warning("destination %s: %s", self.destination.id, error.str())
            if not batch:
                break  # idle: let the caller check whether to stop
            if deadline is None:
                deadline = time.monotonic() + self._linger
        return batch

    def _prepare(self, batch: list[Message], sink: Sink[Any]) -> _Prepared:
        """Filters and encodes a batch and enters it in the ledger (in the consumer
        thread)."""
        ticket = self._ledger.track(
            ((m.topic() or "", m.partition() or 0), m.offset() or 0) for m in batch
        )
        prepared = _Prepared(batch, ticket)
        matches = self.destination.filter.matches
        read = event_reader(sink)
        erasures = self._erasures() if self._erasures is not None else None
        for message in batch:
            value = message.value() or b""
            if erasures:
                value = erasures.erased_value(value)
            try:
                head = read(value)
            except ValueError as exc:
                prepared.unreadable.append((message, str(exc)))
                continue
            if matches(head.event_key, head.outcome, head.account_id):
                prepared.wanted.append((message, sink.encode(head, value)))
            else:
                prepared.filtered += 1
        return prepared

    def _send(
        self, prepared: _Prepared, delivery: Delivery[Any], producer: Producer
    ) -> list[Letter]:
        """Delivers a prepared batch and stores its dead letters (in the sender thread).
        Raises ``AuthFailedError`` / ``InterruptedError`` as ``Delivery`` does."""
        refused = (
            delivery.deliver([entry for _, entry in prepared.wanted]) if prepared.wanted else []
        )
        letters = [Letter.of(prepared.wanted[r.index][0], r.reason, r.reply) for r in refused]
        letters += [
            Letter.of(message, reason, Reply(None, "unreadable", ""))
            for message, reason in prepared.unreadable
        ]
        if letters:
            self._dead_letter(producer, letters)
        return letters

    def _await(self, future: Future[_T]) -> _T:
        """The sender's result; while it takes long (retries), keeps the group membership
        by polling the paused partitions and shows the destination as failing."""
        waited = 0.0
        while True:
            try:
                return future.result(timeout=0.5)
            except FutureTimeout:
                waited += 0.5
            self._show_failing()
            if waited >= KEEPALIVE_AFTER_S:
                self._keepalive(0.2)

    def _show_failing(self) -> None:
        """The status follows the deliveries in flight: ``failing`` (and since when) once
        every request of one has failed."""
        self.status.retries = self._stats.retries
        self.status.failing_since = self._stats.failing_since
        if self._stats.failing_since is not None:
            self._set_state("failing", self._stats.last_error)

    def _finish(
        self,
        consumer: Consumer,
        prepared: _Prepared,
        future: Future[list[Letter]],
        letters: list[Letter] | None = None,
    ) -> None:
        """Waits for a batch's delivery (``_await``), marks it durable, commits what the
        ledger allows, and counts it. Raises what the delivery raised (the batch then never
        becomes durable)."""
        if letters is None:
            letters = self._await(future)
        self._resume(consumer)
        self._ledger.durable(prepared.ticket)
        self._commit(consumer)
        dead_from_platform = len(letters) - len(prepared.unreadable)
        self.status.delivered += len(prepared.wanted) - dead_from_platform
        self.status.dead_lettered += len(letters)
        self.status.filtered += prepared.filtered
        self.status.retries = self._stats.retries
        self.status.last_success = time.time()
        self.status.failing_since = None
        self._set_state("healthy", None)

    def _dead_letter(self, producer: Producer, letters: list[Letter]) -> None:
        store_letters(
            producer,
            self.destination,
            self._dlq_topic,
            letters,
            self._stopping.is_set,
            self._nap,  # in a sender thread: the consumer is not ours to poll
        )

    def _commit(self, consumer: Consumer) -> None:
        ready = self._ledger.take_all()
        if not ready:
            return
        offsets = [
            TopicPartition(topic, partition, end) for (topic, partition), end in ready.items()
        ]
        try:
            # Asynchronous: the commit is still sent only after the batch was delivered, in
            # order; librdkafka finishes outstanding commits when the consumer closes, and a
            # commit lost in a crash means duplicates, never loss. A synchronous commit per
            # batch cost a fifth of the consumer thread.
            consumer.commit(offsets=offsets, asynchronous=True)
        except Exception as exc:
            # The partitions moved to another replica during the batch: it delivers them
            # again from the last commit (duplicates, never loss).
            log.info(
                "destination %s: commit after a rebalance refused (%s)", self.destination.id, exc
            )

    def _keepalive(self, seconds: float) -> None:
        consumer = self._consumer
        if consumer is None:
            time.sleep(seconds)
            return
        # Waiting to retry: pause the partitions (pausing drops the prefetched queue, so it
        # is only done once a wait is needed) and poll to serve the group protocol.
        if not self._paused:
            consumer.pause(consumer.assignment())
            self._paused = True
        # A negative timeout would make poll block for good.
        message = consumer.poll(max(seconds, 0.0))
        if message is not None and message.error() is None:
            consumer.seek(
                TopicPartition(
                    message.topic() or "", message.partition() or 0, message.offset() or 0
                )
            )

    def _wait_for_credentials(self, sink: Any, refused: AuthFailedError) -> None:
        """Shows ``auth_failed`` and re-checks slowly with the platform's healthcheck (no
        events sent) until it no longer refuses the credentials; the refused batch is then
        sent again."""
        self._set_state("auth_failed", f"credentials refused: {refused.reply.describe()}")
        log.warning(
            "destination %s: credentials refused (%s); re-checking every %.0fs",
            self.destination.id,
            refused.reply.describe(),
            self._auth_recheck,
        )
        while not self._stopping.is_set():
            self._wait(self._auth_recheck)
            if self._stopping.is_set() or sink.healthcheck().kind != "auth":
                return

    def _on_commit(self, error: Any, _partitions: list[TopicPartition]) -> None:
        if error is not None:
            # Typically the partitions moved to another replica meanwhile: it delivers them
            # again from the last commit (duplicates, never loss).
            log.info("destination %s: commit refused (%s)", self.destination.id, error)

    def _fresh_consumer(self, consumer: Consumer) -> Consumer:
        """Closes ``consumer`` (committing nothing) and opens a new member of the group,
        which reads on from the committed offsets."""
        close_consumer(consumer, self.destination.id)
        self._ledger.forget_all()
        self._paused = False
        self._consumer = self._open_consumer()
        return self._consumer

    # Cooperative rebalancing hands partitions over incrementally.
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.status.partitions = sorted(
            {*self.status.partitions, *(tp.partition for tp in partitions)}
        )
        if consumer is not None:  # None in the model tests
            self._member_id = consumer.memberid() or None

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Batches in flight on these partitions no longer count here: their new owner reads
        # them again from the last commit.
        self._ledger.forget((tp.topic, tp.partition) for tp in partitions)
        gone = {tp.partition for tp in partitions}
        self.status.partitions = [p for p in self.status.partitions if p not in gone]
        for partition in gone:
            self._read_to.pop(partition, None)

    def _show_recovered(self) -> None:
        """``healthy`` once a stall's display time is over, if a batch was delivered."""
        if self._recovered and time.monotonic() >= self._stalled_until:
            self._recovered = False
            if self.status.state == "stalled":
                self._set_state("healthy", None)

    def _nap(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _resume(self, consumer: Consumer) -> None:
        if self._paused:
            consumer.resume(consumer.assignment())
            self._paused = False

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._keepalive(min(0.5, remaining))

    def _set_state(self, state: State, error: str | None) -> None:
        if (
            self.status.state == "stalled"
            and state == "healthy"
            and time.monotonic() < self._stalled_until
        ):
            state = "stalled"  # shown a while longer: see ``STALLED_SHOWN_S``
            self._recovered = True
        self.status.state = state
        if error is not None:
            self.status.last_error = error
            self.status.last_error_at = time.time()
        self.status.updated_at = time.time()
