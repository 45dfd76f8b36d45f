"""The shape every destination platform has (after Vector's sinks): settings -> an encoder
that turns a normalized event into the platform's entry -> a service that sends a batch of
entries and classifies the platform's reply -> a healthcheck.

A platform module provides a ``Sink``; batching, retries, splitting, dead-lettering and
offsets are shared (``connectors.runtime.delivery``, ``connectors.runtime.worker``), so a
sixth platform is its encoder, its request and its reply classification."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

import msgspec
import orjson

ResultKind = Literal["ok", "retry", "too_large", "invalid", "auth", "partial"]

# A platform's entry for one event, in the form its service sends: the serialized bytes for
# the HTTP platforms, a PutEvents request entry for EventBridge.
Entry = TypeVar("Entry")


@dataclass(frozen=True, slots=True)
class Limits:
    """A platform's batch limits: entries per request, bytes per request (uncompressed),
    bytes per entry (an entry's size as ``Sink.size`` counts it); whether requests are
    gzipped.

    A request of entries e1..en is counted as ``framing_bytes + sum(size(ei) +
    separator_bytes)``: for a JSON array that is exact (brackets, commas), for lines one
    byte over; EventBridge counts entries alone (both 0)."""

    max_entries: int
    max_bytes: int
    max_entry_bytes: int
    gzip: bool = True
    separator_bytes: int = 1
    framing_bytes: int = 1


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


class EventHead(msgspec.Struct, frozen=True, gc=False):
    """The fields of a normalized event that filters and the platforms' envelopes need.
    The whole event travels as the JSON it was read as; decoding only these (msgspec skips
    the rest) is a third of the cost of decoding it all, the dearest step of a connector."""

    event_key: str = ""
    outcome: str = ""
    account_id: str = ""
    description: str = ""
    occurred_at: datetime | None = None

    def occurred_utc(self) -> datetime | None:
        """When it happened, in UTC (a time without zone is UTC)."""
        moment = self.occurred_at
        if moment is None:
            return None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    def occurred_seconds(self) -> float | None:
        """Epoch seconds with ms precision."""
        moment = self.occurred_utc()
        return None if moment is None else round(moment.timestamp(), 3)


_read_head = msgspec.json.Decoder(EventHead).decode


def read_event(raw: bytes) -> EventHead:
    """The head of a normalized event (JSON). Raises ``ValueError`` naming what is wrong
    (not JSON, not an object, a field of the wrong type) when ``raw`` is not one."""
    try:
        return _read_head(raw)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a normalized event: {exc}") from exc


def encode_event(sink: Sink[Entry], event: dict[str, Any]) -> Entry:
    """``sink``'s entry for an event held as a dict (tests, benchmarks, the test event)."""
    raw = orjson.dumps(event)
    return sink.encode(read_event(raw), raw)


StopCheck = Callable[[], bool]


def never() -> bool:
    """A ``StopCheck`` for callers that never stop a send (tests, the test event)."""
    return False


# The longest single sleep of ``pause`` between looks at its ``StopCheck``.
STOP_CHECK_S = 0.25


def pause(
    seconds: float, should_stop: StopCheck, sleep: Callable[[float], None] = time.sleep
) -> bool:
    """Waits ``seconds`` in slices of at most ``STOP_CHECK_S``; False as soon as
    ``should_stop`` is true (checked before the first slice too), True once waited.
    The wait is the sum of the slices ``sleep`` was asked for (at least ``seconds`` of
    real time with ``time.sleep``), so a caller's own ``sleep`` sets the pace."""
    waited = 0.0
    while not should_stop():
        remaining = seconds - waited
        if remaining <= 0:
            return True
        step = min(remaining, STOP_CHECK_S)
        sleep(step)
        waited += step
    return False


class Sink(Protocol[Entry]):
    """One platform's encoder and service, generic over its entry type. ``encode`` is
    called from one thread; ``send`` from several at once (one per batch in flight), so a
    sink keeps no per-request state."""

    platform: str
    limits: Limits

    def encode(self, head: EventHead, raw: bytes) -> Entry:
        """The platform's entry for one normalized event: ``raw`` is the event as read
        (JSON), spliced in by platforms that embed it whole; ``head`` its fields."""
        ...

    def size(self, entry: Entry) -> int:
        """An entry's size as the platform counts it against ``limits`` (bytes)."""
        ...

    def send(self, entries: Sequence[Entry], should_stop: StopCheck = ...) -> SendResult:
        """Sends one batch (within ``limits``) and classifies the reply. Never raises for
        a platform or network failure: that is a ``SendResult``. A sink that waits after
        the request (Splunk's indexer acknowledgment) checks ``should_stop`` at least
        every quarter second and, once it is true, returns a ``retry`` at once."""
        ...

    def healthcheck(self) -> SendResult:
        """Checks reachability and credentials without delivering an event, where the
        platform allows it (else sends nothing and answers ``ok``)."""
        ...

    def close(self) -> None: ...


def embed(head: dict[str, Any], key: str, value: bytes) -> bytes:
    """``head`` serialized with ``key`` set to ``value``, a JSON value spliced in as it is
    (the event as read: no re-encoding).

    Entries wait in batches, so they must be exactly their size: orjson reserves the worst
    case for strings and keeps it (16 KB for a 1.2 KB string); the join copies exactly."""
    return b"".join((orjson.dumps(head)[:-1], b',"', key.encode(), b'":', value, b"}"))


def json_string(raw: bytes) -> bytes:
    """``raw`` (UTF-8 text) as a JSON string value, for ``embed``."""
    return orjson.dumps(raw.decode())


class FileSink(Protocol):
    """A platform written in files rather than requests (the S3 archive): the connector
    gathers encoded events into files (``connectors.runtime.archive``), closes them at
    ``max_file_bytes`` or ``max_file_seconds``, and puts each with ``put``."""

    platform: str
    max_file_bytes: int
    max_file_seconds: float

    def file(self, path: str, name: str, lines: Sequence[bytes]) -> Any:
        """The closed file of ``lines`` under ``path`` (what ``put`` takes)."""
        ...

    def size(self, entry: Any) -> int: ...

    def put(self, file: Any) -> SendResult:
        """Puts one closed file; never raises for a platform or network failure."""
        ...

    def healthcheck(self) -> SendResult: ...
