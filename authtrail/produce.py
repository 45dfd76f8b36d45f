"""Produces raw events to the raw topic (``authtrail produce`` and the demo)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import orjson
from confluent_kafka import KafkaError, Message, Producer

from schemas.settings import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ProduceReport:
    accepted: int = 0
    failed: int = 0
    first_error: str | None = None


def event_key(value: bytes) -> bytes | None:
    """The partition key of a raw event: its account id, else its actor id (so one
    account's events stay in order). None when the value is not a JSON object."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return key_of(obj)


def key_of(obj: object) -> bytes | None:
    """``event_key`` of an event already decoded."""
    if not isinstance(obj, dict):
        return None
    for container, field in (("account", "id"), ("actor", "id")):
        inner = obj.get(container)
        if isinstance(inner, dict) and isinstance(inner.get(field), str):
            return str(inner[field]).encode()
    for flat in ("account_id", "user_id"):
        if isinstance(obj.get(flat), str):
            return str(obj[flat]).encode()
    return None


class RawProducer:
    """A producer for the raw topic that counts what the broker accepted."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topics.raw
        self.report = ProduceReport()
        self._producer = Producer(
            {
                **settings.kafka_client_config(),
                "enable.idempotence": True,
                "linger.ms": 10,
                "compression.type": "lz4",
                "logger": cast(Any, log),
            }
        )

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.report.accepted += 1
        else:
            self.report.failed += 1
            self.report.first_error = self.report.first_error or err.str()

    def send(self, value: bytes, key: bytes | None = None) -> None:
        while True:
            try:
                self._producer.produce(
                    self.topic,
                    value=value,
                    key=key or event_key(value),
                    on_delivery=self._on_delivery,
                )
                break
            except BufferError:
                self._producer.poll(0.1)
        self._producer.poll(0)

    def send_all(self, values: Iterable[bytes]) -> None:
        for value in values:
            self.send(value)

    def flush(self, timeout_s: float = 30.0) -> ProduceReport:
        remaining = self._producer.flush(timeout_s)
        if remaining:
            self.report.failed += remaining
            self.report.first_error = self.report.first_error or "delivery timed out"
        return self.report


def json_lines(lines: Iterable[bytes]) -> Iterable[bytes]:
    """Non-blank lines, stripped: one raw event each (validated by the pipeline, not here,
    so a bad line still reaches the DLQ with its reason)."""
    for line in lines:
        stripped = line.strip()
        if stripped:
            yield stripped
