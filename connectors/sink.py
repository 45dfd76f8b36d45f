"""The shape every destination platform has (after Vector's sinks): settings -> an encoder
that turns a normalized event into the platform's entry -> a service that sends a batch of
entries and classifies the platform's reply -> a healthcheck.

A platform module provides a ``Sink``; batching, retries, splitting, dead-lettering and
offsets are shared (``connectors.delivery``, ``connectors.worker``), so a sixth platform is
its encoder, its request and its reply classification."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import orjson

ResultKind = Literal["ok", "retry", "too_large", "invalid", "auth", "partial"]


@dataclass(frozen=True, slots=True)
class Limits:
    """A platform's batch limits: entries per request, bytes per request (uncompressed),
    bytes per entry; whether requests are gzipped."""

    max_entries: int
    max_bytes: int
    max_entry_bytes: int
    gzip: bool = True


@dataclass(frozen=True, slots=True)
class Reply:
    """What a platform said, for status, errors and dead-letter headers (never secrets)."""

    status: int | None  # HTTP status; None when there was no reply (timeout, refused)
    code: str = ""  # the platform's own code (Splunk 6, EventBridge MalformedDetail, ...)
    message: str = ""

    def describe(self) -> str:
        parts = [f"HTTP {self.status}" if self.status is not None else "no reply"]
        if self.code:
            parts.append(f"code {self.code}")
        if self.message:
            parts.append(self.message[:300])
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The classified outcome of sending one batch.

    * ``ok``: every entry accepted;
    * ``retry``: nothing accepted, may pass (``retry_after`` seconds when the platform said);
    * ``too_large``: the request is over a limit: split it;
    * ``invalid``: the platform refused the data: bisect to find the entries at fault;
    * ``auth``: credentials refused: stop and re-check slowly;
    * ``partial``: per-entry results in ``entries`` (index -> "ok" | "retry" | "invalid").
    """

    kind: ResultKind
    reply: Reply
    retry_after: float | None = None
    entries: dict[int, Literal["ok", "retry", "invalid"]] = field(default_factory=dict)
    entry_replies: dict[int, Reply] = field(default_factory=dict)


class Sink(Protocol):
    """One platform's encoder and service. Instances are used from one thread."""

    platform: str
    limits: Limits

    def encode(self, event: dict[str, Any], raw: bytes | None = None) -> bytes:
        """The platform's entry for one normalized event (serialized). ``raw``, when given,
        is ``event`` as it was read (JSON): platforms that embed the whole event splice it
        in instead of serializing it again (the dearest part of encoding)."""
        ...

    def send(self, entries: Sequence[bytes]) -> SendResult:
        """Sends one batch (within ``limits``) and classifies the reply. Never raises for
        a platform or network failure: that is a ``SendResult``."""
        ...

    def healthcheck(self) -> SendResult:
        """Checks reachability and credentials without delivering an event, where the
        platform allows it (else sends nothing and answers ``ok``)."""
        ...

    def close(self) -> None: ...


def embed(head: dict[str, Any], key: str, event: dict[str, Any], raw: bytes | None) -> bytes:
    """``head`` serialized with ``key`` set to the event: ``raw`` spliced in when given."""
    if raw is None:
        return orjson.dumps({**head, key: event})
    return orjson.dumps(head)[:-1] + b',"' + key.encode() + b'":' + raw + b"}"


def occurred_seconds(event: dict[str, Any]) -> float | None:
    """The event's ``occurred_at`` as epoch seconds (ms precision), None if unreadable."""
    value = event.get("occurred_at")
    if not isinstance(value, str):
        return None
    try:
        return round(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp(), 3)
    except ValueError:
        return None
