"""Storing a destination's dead letters (``auth-events.dlq.<id>``) with the headers that
say why: ``authtrail-reason``, ``authtrail-destination``, ``authtrail-platform``,
``authtrail-platform-status``, ``authtrail-platform-code``, ``authtrail-platform-reply``,
``authtrail-source`` (``topic/partition/offset`` it came from) and
``authtrail-dead-lettered-at`` (RFC 3339). Reading and redriving them is
in ``connectors.admin.dead_letters``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message, Producer

from connectors.sinks.base import Reply
from schemas import topics
from schemas.destinations import Destination
from schemas.events import rfc3339_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Letter:
    """One record bound for the dead-letter topic, and why."""

    value: bytes
    key: bytes | None
    source: str  # "<topic>/<partition>/<offset>" it came from
    reason: str
    reply: Reply

    @classmethod
    def of(cls, message: Message, reason: str, reply: Reply) -> Letter:
        """The letter of a consumed record."""
        return cls(
            message.value() or b"",
            message.key(),
            f"{message.topic()}/{message.partition()}/{message.offset()}",
            reason,
            reply,
        )


def store_letters(
    producer: Producer,
    destination: Destination,
    topic: str,
    letters: Sequence[Letter],
    should_stop: Callable[[], bool],
    nap: Callable[[float], None] = time.sleep,
) -> None:
    """Produces ``letters`` and returns once the broker has every one; retries every 2 s
    while it does not. Raises ``InterruptedError`` when ``should_stop`` turns true first
    (the caller must then not commit what they came from)."""
    now = rfc3339_ms(datetime.now(UTC))
    while True:
        errors: list[str] = []

        def on_delivery(err: Any, _msg: Any, errors: list[str] = errors) -> None:
            if err is not None:
                errors.append(err.str())

        for letter in letters:
            reply = letter.reply
            status = "" if reply.status is None else str(reply.status)
            headers: list[tuple[str, str | bytes | None]] = [
                (topics.DLQ_REASON_HEADER, letter.reason.encode()),
                (topics.DLQ_DESTINATION_HEADER, destination.id.encode()),
                (topics.DLQ_PLATFORM_HEADER, destination.platform.encode()),
                (topics.DLQ_PLATFORM_STATUS_HEADER, status.encode()),
                (topics.DLQ_PLATFORM_CODE_HEADER, reply.code.encode()),
                (topics.DLQ_PLATFORM_REPLY_HEADER, reply.message[:1000].encode()),
                (topics.DLQ_SOURCE_HEADER, letter.source.encode()),
                (topics.DLQ_TIME_HEADER, now.encode()),
            ]
            producer.produce(
                topic, value=letter.value, key=letter.key, headers=headers, on_delivery=on_delivery
            )
        if producer.flush(30) == 0 and not errors:
            return
        log.warning(
            "destination %s: dead letters not stored (%s); retrying",
            destination.id,
            errors[:1] or "timeout",
        )
        nap(2.0)
        if should_stop():
            raise InterruptedError("stopping before dead letters were stored")
