"""A destination's dead letters (``auth-events.dlq.<id>``, stored by
``connectors.runtime.dead_letters``): listing them page by page, and redriving them
(re-sending them to the platform once a mapping, a limit or the platform is fixed).

Headers of a dead letter: ``authtrail-reason``, ``authtrail-destination``,
``authtrail-platform``, ``authtrail-platform-status``, ``authtrail-platform-code``,
``authtrail-platform-reply``, ``authtrail-source`` (``topic/partition/offset`` it came
from) and ``authtrail-dead-lettered-at`` (RFC 3339)."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer, TopicPartition

from connectors.runtime.dead_letters import Letter, store_letters
from connectors.runtime.delivery import AuthFailedError, Delivery
from connectors.sinks import build_sink
from connectors.sinks.base import Reply, read_event
from infra.kafka.clients import kafka_consumer
from infra.kafka.dead_letters import DeadLetter, pending_ranges, read
from schemas.destinations import Destination
from schemas.settings import Settings

log = logging.getLogger(__name__)

REDRIVE_LIMIT = 10_000  # letters per redrive call; the reply says how many remain


def page(
    settings: Settings, destination_id: str, starts: dict[int, int], limit: int
) -> tuple[list[DeadLetter], dict[int, int] | None]:
    """Up to ``limit`` dead letters from ``starts`` (partition -> offset; empty: the
    beginning), and where the next page starts (None: no more). Commits nothing."""
    consumer = kafka_consumer(settings, f"authtrail-dlq-page-{uuid.uuid4()}")
    topic = settings.topics.destination_dlq(destination_id)
    letters: list[DeadLetter] = []
    try:
        for letter in read(consumer, topic, from_committed=False, starts=starts):
            if len(letters) == limit:
                following = dict(starts)
                for seen in letters:
                    following[seen.partition] = seen.offset + 1
                return letters, following
            letters.append(letter)
        return letters, None
    finally:
        consumer.close()


@dataclass(frozen=True, slots=True)
class RedriveResult:
    redriven: int  # letters read and re-sent
    delivered: int
    dead_lettered_again: int
    remaining: int  # letters left for another call (over REDRIVE_LIMIT)


class RedriveError(RuntimeError):
    """Nothing was committed: the platform refused the credentials or did not take the
    letters within the time given."""


def redrive(settings: Settings, destination: Destination, timeout_s: float = 60.0) -> RedriveResult:
    """Re-sends the destination's dead letters not redriven before (its redrive group
    ``authtrail.redrive.<id>`` keeps the place), through the same delivery as the connector:
    those the platform takes are delivered, those it refuses again go back to the
    dead-letter topic with the new reply. The group's offsets are committed only after
    that. Raises ``RedriveError`` (nothing committed) on refused credentials or when the
    platform keeps failing past ``timeout_s``."""
    topic = settings.topics.destination_dlq(destination.id)
    consumer = kafka_consumer(settings, f"authtrail.redrive.{destination.id}")
    sink = build_sink(destination)
    producer = Producer({**settings.kafka_client_config(), "acks": "all"})
    deadline = time.monotonic() + timeout_s
    try:
        ranges = pending_ranges(consumer, topic, from_committed=True)
        letters: list[DeadLetter] = []
        for letter in read(consumer, topic, from_committed=True, ranges=ranges):
            letters.append(letter)
            if len(letters) == REDRIVE_LIMIT:
                break  # the rest waits for the next call: no need to read it now
        remaining = sum(end - start for start, end in ranges.values()) - len(letters)
        if not letters:
            return RedriveResult(0, 0, 0, remaining)
        entries: list[Any] = []  # the sink's own entry type
        unreadable: list[Letter] = []
        readable: list[DeadLetter] = []
        for letter in letters:
            try:
                entries.append(sink.encode(read_event(letter.value), letter.value))
                readable.append(letter)
            except ValueError as exc:
                unreadable.append(
                    Letter(
                        letter.value,
                        letter.key,
                        letter.source,
                        str(exc),
                        Reply(None, "unreadable", ""),
                    )
                )
        delivery = Delivery(sink, lambda: time.monotonic() > deadline)
        try:
            dead = delivery.deliver(entries)
        except AuthFailedError as exc:
            raise RedriveError(f"credentials refused: {exc.reply.describe()}") from None
        except InterruptedError:
            raise RedriveError(
                f"the platform did not take them within {timeout_s:.0f} s "
                f"({delivery.stats.last_error or 'no reply'})"
            ) from None
        again = unreadable + [
            Letter(
                readable[d.index].value,
                readable[d.index].key,
                readable[d.index].source,
                d.reason,
                d.reply,
            )
            for d in dead
        ]
        if again:
            store_letters(producer, destination, topic, again, lambda: False)
        last: dict[int, int] = {}
        for letter in letters:
            last[letter.partition] = letter.offset
        consumer.commit(
            offsets=[TopicPartition(topic, p, o + 1) for p, o in last.items()], asynchronous=False
        )
        return RedriveResult(len(letters), len(readable) - len(dead), len(again), remaining)
    finally:
        consumer.close()
        sink.close()
        producer.flush(10)
