"""Reads and replays the ingest dead-letter topic (``authtrail dlq show|replay``)."""

from __future__ import annotations

import logging
import uuid

from confluent_kafka import Consumer, TopicPartition

from authtrail.produce import RawProducer
from infra.kafka.clients import kafka_consumer
from infra.kafka.dead_letters import DeadLetter, read
from schemas.settings import Settings

log = logging.getLogger(__name__)

REPLAY_GROUP_SUFFIX = "dlq-replay"


def _consumer(settings: Settings, group: str, commit: bool) -> Consumer:
    return kafka_consumer(
        settings, group, {"client.id": "authtrail-dlq" + ("-replay" if commit else "")}
    )


def show(settings: Settings, limit: int) -> list[DeadLetter]:
    """Up to ``limit`` dead letters, oldest first (reads without committing anything)."""
    consumer = _consumer(settings, f"authtrail-dlq-show-{uuid.uuid4()}", commit=False)
    try:
        letters = []
        for letter in read(consumer, settings.topics.dlq, from_committed=False):
            letters.append(letter)
            if len(letters) >= limit:
                break
        return letters
    finally:
        consumer.close()


def replay(settings: Settings) -> tuple[int, int]:
    """Re-produces every dead letter not replayed before to the raw topic (after the
    producer was fixed, say). Returns (replayed, accepted). The replay group's offsets are
    committed only after the broker accepted the re-produced events: a crash replays some
    twice (the log store collapses them), never none."""
    group = f"{settings.ingest_group}.{REPLAY_GROUP_SUFFIX}"
    consumer = _consumer(settings, group, commit=True)
    producer = RawProducer(settings)
    replayed = 0
    last: dict[int, int] = {}
    try:
        for letter in read(consumer, settings.topics.dlq, from_committed=True):
            producer.send(letter.value, key=letter.key)
            last[letter.partition] = letter.offset
            replayed += 1
        report = producer.flush()
        if report.failed:
            raise RuntimeError(
                f"{report.failed} dead letters were not re-produced "
                f"({report.first_error}); nothing was committed"
            )
        if last:
            consumer.commit(
                offsets=[TopicPartition(settings.topics.dlq, p, o + 1) for p, o in last.items()],
                asynchronous=False,
            )
        return replayed, report.accepted
    finally:
        consumer.close()
