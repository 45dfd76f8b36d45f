"""``Idempotency-Key`` for ``POST /api/v1/events``: the first answer to a (token, key)
is kept for 24 hours and given again to every retry, which produces nothing.

The answers live in the log store's ``ingest_requests`` table (a primary-key lookup; its
TTL forgets them after a day), so every API process sees them. Two requests with the same
key at once in one process: the second is answered 409 until the first has its answer. A
key reused with a different body is refused (422): it would otherwise hide the new events.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from schemas.events import utc_now_ms
from schemas.log_store import INGEST_REQUESTS_TABLE, StoreLocation

log = logging.getLogger(__name__)

KEY_HEADER = "Idempotency-Key"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces


class IdempotencyError(ValueError):
    """A key that cannot be honoured: ``status`` 400 (malformed), 409 (the same key is in
    flight), 422 (reused with another body)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def check_key(key: str) -> str:
    """``key`` when it is 1-255 printable ASCII characters; raises ``IdempotencyError``."""
    if not _KEY_RE.fullmatch(key):
        raise IdempotencyError(400, "must be 1 to 255 printable ASCII characters, no spaces")
    return key


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class IdempotencyLedger:
    """The answers given per (token id, key), read and written through ``borrow`` (a
    client of the log store for the calling thread)."""

    def __init__(
        self, location: StoreLocation, borrow: Callable[[], AbstractContextManager[Client]]
    ) -> None:
        self._table = f"{location.database}.{INGEST_REQUESTS_TABLE}"
        self._borrow = borrow
        self._in_flight: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @contextmanager
    def claimed(self, token_id: str, key: str) -> Iterator[None]:
        """Holds (token, key) for one request of this process; raises ``IdempotencyError``
        (409) while another holds it."""
        slot = (token_id, key)
        with self._lock:
            if slot in self._in_flight:
                raise IdempotencyError(409, "a request with this key is still being answered")
            self._in_flight.add(slot)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight.discard(slot)

    def answer(self, token_id: str, key: str, digest: str) -> dict[str, Any] | None:
        """The answer first given to (token, key) within 24 hours, else None. Raises
        ``IdempotencyError`` (422) when that answer was for a different body."""
        with self._borrow() as client:
            rows = client.query(
                f"SELECT request_sha256, answer FROM {self._table} FINAL "
                "WHERE token_id = {t:String} AND key = {k:String} "
                "AND created_at > now64(3) - INTERVAL 1 DAY LIMIT 1",
                parameters={"t": token_id, "k": key},
            ).result_rows
        if not rows:
            return None
        stored_digest, answer = rows[0]
        if stored_digest != digest:
            raise IdempotencyError(
                422, "this key was used in the last 24 hours with a different body"
            )
        result: dict[str, Any] = orjson.loads(answer)
        return result

    def remember(self, token_id: str, key: str, digest: str, answer: dict[str, Any]) -> None:
        """Keeps ``answer`` for 24 hours. A store that cannot take it is logged, not
        raised: the events are written already, and a retry then writes them again under
        the same event ids, which the store collapses."""
        try:
            with self._borrow() as client:
                client.insert(
                    self._table,
                    [[token_id, key, digest, orjson.dumps(answer).decode(), utc_now_ms()]],
                    column_names=["token_id", "key", "request_sha256", "answer", "created_at"],
                )
        except Exception as exc:
            log.warning("could not keep the answer of an idempotency key: %s", exc)
