"""Configuration topics: compacted Kafka topics whose latest record per key is the state
(API tokens, destinations, connector status). Every process that needs the state tails the
topic into memory, so one written anywhere is seen everywhere, embedded or on a cluster.

``CompactedView`` is that tail: a background thread applies every record (a tombstone,
``None``, deletes the key) and ``catch_up`` gives read-your-writes. ``publish`` writes a
record durably."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from infra.kafka.clients import kafka_consumer

log = logging.getLogger(__name__)
T = TypeVar("T")


class ConfigTopicError(RuntimeError):
    """A configuration topic cannot be read or written; the message says why."""


def publish(
    client_config: dict[str, str],
    topic: str,
    key: str,
    value: bytes | None,
    timeout_s: float = 30.0,
) -> None:
    """Writes one record (``None``: a tombstone) and waits for the brokers to have it."""
    producer = Producer(
        {**client_config, "acks": "all", "enable.idempotence": True, "logger": cast(Any, log)}
    )
    errors: list[str] = []
    producer.produce(
        topic,
        key=key.encode(),
        value=value,
        on_delivery=lambda err, _m: errors.append(err.str()) if err else None,
    )
    if producer.flush(timeout_s) or errors:
        raise ConfigTopicError(f"writing {key} to {topic} failed: {errors or 'timed out'}")


# How long a reachability probe's answer is remembered (see ``CompactedView.reachable``).
_PROBE_MEMORY_S = 2.0


class CompactedView(Generic[T]):
    """The current state of a compacted topic, kept by a background thread.

    ``decode(key, value)`` turns a record into a value (or None for a record it cannot
    read, e.g. a malformed one, which it logs: the key is then absent, as after a
    tombstone); ``on_change(key, old, new)`` is called after each
    applied record, from the view's thread."""

    def __init__(
        self,
        client_config: dict[str, str],
        topic: str,
        decode: Callable[[str, bytes], T | None],
        on_change: Callable[[str, T | None, T | None], None] | None = None,
    ) -> None:
        self._topic = topic
        self._decode = decode
        self._on_change = on_change
        self._state: dict[str, T] = {}
        self._positions: dict[int, int] = {}
        self._lock = threading.Condition()
        self._stop = threading.Event()
        group = "authtrail-config-reader"  # assigned partitions, never commits
        self._consumer = kafka_consumer(client_config, group)
        # A second handle for watermark look-ups from other threads while the first polls.
        self._probe = kafka_consumer(client_config, group)
        self._probe_lock = threading.Lock()
        self._unreachable_until = 0.0
        self._answered_until = 0.0
        self._partitions: list[int] = []
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self, timeout_s: float = 30.0) -> CompactedView[T]:
        deadline = time.monotonic() + timeout_s
        while True:
            metadata = self._consumer.list_topics(self._topic, timeout=timeout_s).topics
            topic = metadata.get(self._topic)
            if topic is not None and topic.error is None and topic.partitions:
                break
            if time.monotonic() > deadline:
                reason = topic.error.str() if topic is not None and topic.error else "missing"
                raise ConfigTopicError(
                    f"topic {self._topic}: {reason} (run 'authtrail topics create')"
                )
            time.sleep(0.2)
        self._partitions = sorted(topic.partitions)
        self._consumer.assign(
            [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in self._partitions]
        )
        self._thread = threading.Thread(target=self._run, name=f"view-{self._topic}", daemon=True)
        self._thread.start()
        if not self.catch_up(max(1.0, deadline - time.monotonic())):
            raise ConfigTopicError(f"topic {self._topic}: could not read it to its end")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._consumer.close()
        self._probe.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._consumer.poll(0.2)
            except Exception as exc:  # keep serving the state we have
                self.error = str(exc)
                time.sleep(1)
                continue
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self.error = error.str()
                continue
            key = (message.key() or b"").decode(errors="replace")
            value = message.value()
            new = self._decode(key, value) if value is not None else None
            with self._lock:
                old = self._state.get(key)
                # A record it cannot decode removes the key too: the last good value is
                # no longer the truth (a token since revoked, a destination since moved
                # or sealed with a key this process lacks). Fail closed.
                if new is None:
                    self._state.pop(key, None)
                else:
                    self._state[key] = new
                self._positions[message.partition() or 0] = (message.offset() or 0) + 1
                self._lock.notify_all()
            if self._on_change is not None and (new is not None or old is not None):
                try:
                    self._on_change(key, old, new)
                except Exception:
                    log.exception("applying %s/%s failed", self._topic, key)

    def catch_up(self, timeout_s: float = 5.0) -> bool:
        """Waits until every record written before this call is applied."""
        deadline = time.monotonic() + timeout_s
        ends = {p: self._end_offset(p, deadline) for p in self._partitions}
        with self._lock:
            while any(self._positions.get(p, 0) < end for p, end in ends.items()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def _end_offset(self, partition: int, deadline: float) -> int:
        # Right after the topic is created its leader may not be elected yet: retry.
        while True:
            try:
                _low, high = self._probe.get_watermark_offsets(
                    TopicPartition(self._topic, partition),
                    timeout=max(0.5, deadline - time.monotonic()),
                    cached=False,
                )
                return int(high)
            except KafkaException as exc:
                if time.monotonic() >= deadline:
                    raise ConfigTopicError(f"reading {self._topic}: {exc}") from None
                time.sleep(0.2)

    def reachable(self, timeout_s: float = 5.0) -> None:
        """Returns once the broker answers a metadata request for the topic; raises
        ``ConfigTopicError`` after ``timeout_s`` without an answer. A caller about to
        write or read beyond the view checks this first, to fail in seconds rather than
        after a write's full delivery timeout."""
        # One probe at a time; callers queued behind a failed one share its answer for a
        # moment rather than each waiting out a timeout of their own.
        with self._probe_lock:
            now = time.monotonic()
            if now < self._answered_until:
                return  # answered a moment ago: pages that poll need not ask each time
            if now < self._unreachable_until:
                raise ConfigTopicError(f"{self._topic}: the broker does not answer")
            try:
                self._probe.list_topics(self._topic, timeout=timeout_s)
            except KafkaException as exc:
                self._unreachable_until = time.monotonic() + _PROBE_MEMORY_S
                raise ConfigTopicError(
                    f"{self._topic}: the broker does not answer ({exc})"
                ) from None
            self._answered_until = time.monotonic() + _PROBE_MEMORY_S

    def get(self, key: str) -> T | None:
        with self._lock:
            return self._state.get(key)

    def items(self) -> dict[str, T]:
        with self._lock:
            return dict(self._state)


class ViewedTopic(Generic[T]):
    """Base of the stores kept in a configuration topic (destinations, tokens): their
    ``start``, ``stop``, ``catch_up`` and ``get`` are their view's; ``with`` starts and
    stops it."""

    _view: CompactedView[T]

    def start(self, timeout_s: float = 30.0) -> Self:
        self._view.start(timeout_s)
        return self

    def stop(self) -> None:
        self._view.stop()

    def catch_up(self, timeout_s: float = 5.0) -> bool:
        return self._view.catch_up(timeout_s)

    def reachable(self, timeout_s: float = 5.0) -> None:
        self._view.reachable(timeout_s)

    def get(self, key: str) -> T | None:
        return self._view.get(key)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
