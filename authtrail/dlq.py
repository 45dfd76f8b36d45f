"""Reads and replays the ingest dead-letter topic (``authtrail dlq show|replay``)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, TopicPartition

from authtrail.produce import RawProducer
from schemas import topics
from schemas.settings import Settings

log = logging.getLogger(__name__)

REPLAY_GROUP_SUFFIX = "dlq-replay"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    value: bytes
    key: bytes | None
    reason: str
    field: str
    source: str
    dead_lettered_at: str
    offset: int
    partition: int


def _consumer(settings: Settings, group: str, commit: bool) -> Consumer:
    return Consumer(
        {
            **settings.kafka_client_config(),
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "logger": cast(Any, log),
            "client.id": "authtrail-dlq" + ("-replay" if commit else ""),
        }
    )


def read(
    consumer: Consumer, topic: str, from_committed: bool, timeout_s: float = 30.0
) -> Iterator[DeadLetter]:
    """The dead letters present when called, from the group's committed offsets (or the
    beginning), up to each partition's end at call time: records dead-lettered while we
    read (a replayed letter failing again, say) are left for the next call."""
    metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
    if metadata.error is not None:
        raise RuntimeError(f"{topic}: {metadata.error.str()}")
    partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
    committed = consumer.committed(partitions, timeout=timeout_s) if from_committed else []
    starts = {tp.partition: tp.offset for tp in committed if tp.offset >= 0}
    ends: dict[int, int] = {}
    assignment = []
    for tp in partitions:
        low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
        start = max(starts.get(tp.partition, low), low)
        if start < high:
            ends[tp.partition] = high
            assignment.append(TopicPartition(topic, tp.partition, start))
    consumer.assign(assignment)
    deadline = time.monotonic() + timeout_s
    while ends:
        message = consumer.poll(0.5)
        if message is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"reading {topic} timed out")
            continue
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                continue
            raise RuntimeError(f"reading {topic}: {error.str()}")
        partition, offset = message.partition() or 0, message.offset() or 0
        if offset >= ends.get(partition, 0):
            continue
        if offset + 1 >= ends[partition]:
            del ends[partition]
        deadline = time.monotonic() + timeout_s
        headers = _text_headers(message.headers())
        yield DeadLetter(
            value=message.value() or b"",
            key=message.key(),
            reason=headers.get(topics.DLQ_REASON_HEADER, ""),
            field=headers.get(topics.DLQ_FIELD_HEADER, ""),
            source=headers.get(topics.DLQ_SOURCE_HEADER, ""),
            dead_lettered_at=headers.get(topics.DLQ_TIME_HEADER, ""),
            offset=offset,
            partition=partition,
        )


def _text_headers(raw: object) -> dict[str, str]:
    pairs = raw.items() if isinstance(raw, dict) else raw or []
    out = {}
    for name, value in cast(list[tuple[str, str | bytes | None]], pairs):
        out[name] = value.decode(errors="replace") if isinstance(value, bytes) else value or ""
    return out


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
