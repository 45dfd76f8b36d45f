"""Reading a dead-letter topic (the ingest one, or a destination's): each record with the
headers that say why it is there. Shared by ``authtrail dlq`` and the Stream API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as _field
from typing import cast

from confluent_kafka import Consumer, KafkaError, TopicPartition

from schemas import topics


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
    headers: dict[str, str] = _field(default_factory=dict)  # every header, as text


def pending_ranges(
    consumer: Consumer,
    topic: str,
    from_committed: bool,
    timeout_s: float = 30.0,
    starts: dict[int, int] | None = None,
) -> dict[int, tuple[int, int]]:
    """Partition -> (first offset to read, end offset now) of the partitions with letters
    to read: from the group's committed offsets (or ``starts``, or the beginning)."""
    metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
    if metadata.error is not None:
        raise RuntimeError(f"{topic}: {metadata.error.str()}")
    partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
    committed = consumer.committed(partitions, timeout=timeout_s) if from_committed else []
    starts = {
        **(starts or {}),
        **{tp.partition: tp.offset for tp in committed if tp.offset >= 0},
    }
    ranges: dict[int, tuple[int, int]] = {}
    for tp in partitions:
        low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
        start = max(starts.get(tp.partition, low), low)
        if start < high:
            ranges[tp.partition] = (start, high)
    return ranges


def read(
    consumer: Consumer,
    topic: str,
    from_committed: bool,
    timeout_s: float = 30.0,
    starts: dict[int, int] | None = None,
    ranges: dict[int, tuple[int, int]] | None = None,
) -> Iterator[DeadLetter]:
    """The dead letters present when called, from the group's committed offsets (or
    ``starts``, or the beginning; or ``ranges`` from ``pending_ranges``), up to each
    partition's end at call time: records dead-lettered while we read (a replayed letter
    failing again, say) are left for the next call. Partition by partition, each in
    offset order."""
    if ranges is None:
        ranges = pending_ranges(consumer, topic, from_committed, timeout_s, starts)
    ends = {partition: end for partition, (_start, end) in ranges.items()}
    assignment = [TopicPartition(topic, p, start) for p, (start, _end) in ranges.items()]
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
            headers=headers,
        )


def _text_headers(raw: object) -> dict[str, str]:
    pairs = raw.items() if isinstance(raw, dict) else raw or []
    out = {}
    for name, value in cast(list[tuple[str, str | bytes | None]], pairs):
        out[name] = value.decode(errors="replace") if isinstance(value, bytes) else value or ""
    return out
