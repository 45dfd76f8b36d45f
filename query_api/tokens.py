"""The API token log: the compacted ``authtrail.tokens`` topic, written by the CLI
(``authtrail token create|revoke``) and tailed by every API process, so a token created or
revoked anywhere takes effect everywhere within a moment, embedded or on a cluster."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from pydantic import ValidationError

from schemas.events import utc_now_ms
from schemas.settings import Settings
from schemas.tokens import Role, TokenRecord, new_token, parse_token, verify

log = logging.getLogger(__name__)


class TokenLogError(RuntimeError):
    """The token topic cannot be read or written; the message says why."""


def write_record(settings: Settings, record: TokenRecord, timeout_s: float = 30.0) -> None:
    """Stores ``record`` (durably: waits for the broker's acknowledgement)."""
    producer = Producer(
        {
            **settings.kafka_client_config(),
            "acks": "all",
            "enable.idempotence": True,
            "logger": cast(Any, log),
        }
    )
    errors: list[str] = []
    producer.produce(
        settings.topics.tokens,
        key=record.id.encode(),
        value=record.model_dump_json().encode(),
        on_delivery=lambda err, _m: errors.append(err.str()) if err else None,
    )
    if producer.flush(timeout_s) or errors:
        raise TokenLogError(f"storing token {record.id} failed: {errors or 'timed out'}")


def create_token(
    settings: Settings, role: Role, name: str, account: str | None = None
) -> tuple[str, TokenRecord]:
    """Creates and stores a token; returns (plaintext, record). Show the plaintext once."""
    plaintext, record = new_token(role, name, account)
    write_record(settings, record)
    return plaintext, record


class TokenLog:
    """An in-memory view of the token topic, kept current by a background thread.

    ``authenticate`` is read-your-writes: a token id it has not seen makes it catch up to
    the topic's end first, so a token used right after ``token create`` is known."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = settings.topics.tokens
        self._records: dict[str, TokenRecord] = {}
        self._positions: dict[int, int] = {}
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                **settings.kafka_client_config(),
                "group.id": "authtrail-token-reader",  # never commits
                "enable.auto.commit": False,
                "logger": cast(Any, log),
            }
        )
        # A second handle for watermark look-ups from request threads while the first polls.
        self._probe = Consumer(
            {
                **settings.kafka_client_config(),
                "group.id": "authtrail-token-reader",
                "enable.auto.commit": False,
                "logger": cast(Any, log),
            }
        )
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self, timeout_s: float = 30.0) -> TokenLog:
        metadata = self._consumer.list_topics(self._topic, timeout=timeout_s).topics[self._topic]
        if metadata.error is not None:
            raise TokenLogError(
                f"token topic {self._topic}: {metadata.error.str()} (run 'authtrail topics create')"
            )
        self._partitions = sorted(metadata.partitions)
        self._consumer.assign(
            [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in self._partitions]
        )
        self._thread = threading.Thread(target=self._run, name="authtrail-tokens", daemon=True)
        self._thread.start()
        self.catch_up(timeout_s)
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
            except Exception as exc:  # keep serving the tokens we know
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
            self._apply(message.value(), message.partition() or 0, message.offset() or 0)

    def _apply(self, value: bytes | None, partition: int, offset: int) -> None:
        record = None
        if value:
            try:
                record = TokenRecord.model_validate_json(value)
            except ValidationError as exc:
                log.error(
                    "ignoring malformed token record at offset %d: %s",
                    offset,
                    exc.errors()[0]["msg"],
                )
        with self._lock:
            if record is not None:
                self._records[record.id] = record
            self._positions[partition] = offset + 1
            self._lock.notify_all()

    def catch_up(self, timeout_s: float = 5.0) -> bool:
        """Waits until every record written before this call is applied."""
        deadline = time.monotonic() + timeout_s
        ends = {}
        for partition in self._partitions:
            ends[partition] = self._end_offset(partition, deadline)
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
                    raise TokenLogError(f"reading {self._topic}: {exc}") from None
                time.sleep(0.2)

    def get(self, token_id: str) -> TokenRecord | None:
        with self._lock:
            return self._records.get(token_id)

    def records(self) -> list[TokenRecord]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.created_at)

    def authenticate(self, token_text: str) -> TokenRecord | None:
        """The active record of a presented token, or None (unknown, wrong, revoked)."""
        parsed = parse_token(token_text)
        if parsed is None:
            return None
        token_id, secret = parsed
        record = self.get(token_id)
        if record is None and self.catch_up(3.0):
            record = self.get(token_id)
        if record is None or not verify(record, secret):
            return None
        return record

    def active(self, token_id: str) -> TokenRecord | None:
        record = self.get(token_id)
        return record if record is not None and record.active else None


def revoke_token(settings: Settings, log_view: TokenLog, token_id: str) -> TokenRecord:
    """Marks a token revoked (it stops working everywhere within a moment)."""
    record = log_view.get(token_id)
    if record is None:
        raise TokenLogError(f"no token with id {token_id}")
    revoked = record.model_copy(update={"revoked_at": record.revoked_at or utc_now_ms()})
    write_record(settings, revoked)
    return revoked
