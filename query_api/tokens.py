"""The API token log: the compacted ``authtrail.tokens`` topic, written by the CLI
(``authtrail token create|revoke``) and tailed by every API process, so a token created or
revoked anywhere takes effect everywhere within a moment, embedded or on a cluster."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from pydantic import ValidationError

from infra.kafka.compacted import CompactedView, ConfigTopicError, ViewedTopic, publish
from schemas.events import utc_now_ms
from schemas.settings import Settings
from schemas.tokens import Role, TokenRecord, new_token, parse_token, verify

log = logging.getLogger(__name__)

TokenLogError = ConfigTopicError


def write_record(settings: Settings, record: TokenRecord) -> None:
    """Stores ``record`` durably (waits for the broker's acknowledgement)."""
    publish(
        settings.kafka_client_config(),
        settings.topics.tokens,
        record.id,
        record.model_dump_json().encode(),
    )


def create_token(
    settings: Settings,
    role: Role,
    name: str,
    account: str | None = None,
    expires_at: datetime | None = None,
    read_only: bool = False,
) -> tuple[str, TokenRecord]:
    """Creates and stores a token; returns (plaintext, record). Show the plaintext once.
    Raises ``ValueError`` for an admin token scoped to an account."""
    plaintext, record = new_token(role, name, account, expires_at, read_only)
    write_record(settings, record)
    return plaintext, record


def _decode(_key: str, value: bytes) -> TokenRecord | None:
    try:
        return TokenRecord.model_validate_json(value)
    except ValidationError as exc:
        log.error("ignoring a malformed token record: %s", exc.errors()[0]["msg"])
        return None


class TokenLog(ViewedTopic[TokenRecord]):
    """The tokens, kept current from the topic. ``authenticate`` is read-your-writes: a
    token id it has not seen makes it catch up to the topic's end first, so a token used
    right after ``token create`` is known."""

    def __init__(self, settings: Settings) -> None:
        self._view: CompactedView[TokenRecord] = CompactedView(
            settings.kafka_client_config(), settings.topics.tokens, _decode
        )

    def records(self) -> list[TokenRecord]:
        return sorted(self._view.items().values(), key=lambda r: r.created_at)

    def authenticate(
        self, token_text: str, before_reading: Callable[[], None] | None = None
    ) -> TokenRecord | None:
        """The active record of a presented token, or None (unknown, wrong, revoked,
        expired). A token id not yet seen makes it read the topic to its end (it may have
        just been created); ``before_reading`` is called first and may raise to refuse
        that (a caller limited per address). Raises ``ConfigTopicError`` when the topic
        cannot be read (the broker is down)."""
        parsed = parse_token(token_text)
        if parsed is None:
            return None
        token_id, secret = parsed
        record = self.get(token_id)
        if record is None:
            if before_reading is not None:
                before_reading()
            if self.catch_up(3.0):
                record = self.get(token_id)
        if record is None or not verify(record, secret):
            return None
        return record

    def active(self, token_id: str) -> TokenRecord | None:
        record = self.get(token_id)
        return record if record is not None and record.active else None


def revoke_token(settings: Settings, view: TokenLog, token_id: str) -> TokenRecord:
    """Marks a token revoked (it stops working everywhere within a moment)."""
    record = view.get(token_id)
    if record is None:
        raise TokenLogError(f"no token with id {token_id}")
    revoked = record.model_copy(update={"revoked_at": record.revoked_at or utc_now_ms()})
    write_record(settings, revoked)
    return revoked
