"""Reading ``POST /api/v1/events`` bodies: a JSON object, a JSON array of them, or NDJSON,
optionally gzip-compressed; and what an account-bound producer may write.

Each event leaves here as the JSON text a Kafka producer would have sent for it: an NDJSON
line or a lone object as received, an array's element as orjson writes it. Nothing here
validates an event against the contract: the normalizer decides that, and an invalid event
reaches the dead-letter topic with its reason exactly as one produced to Kafka would."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from authtrail.produce import key_of
from pipeline.fast_decode import Refused, valid_event_id
from pipeline.normalize import derive_event_id

NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})
JSON_TYPES = frozenset({"application/json", ""})


class IntakeError(ValueError):
    """A body that cannot be taken; ``status`` is the HTTP answer, ``parameter`` the field
    it is about (``body``, ``body[3]``, ``line 7``, ``Content-Type``, ...)."""

    def __init__(self, status: int, parameter: str, message: str, where: str = "body") -> None:
        super().__init__(message)
        self.status, self.parameter, self.message, self.where = status, parameter, message, where


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """One event of a request: its bytes for the raw topic, its partition key (the same
    rule as ``authtrail produce``), its id (given, or the contract's id derived from the
    content, so a retry maps to the same stored event) and its account id."""

    index: int
    value: bytes
    key: bytes | None
    event_id: str | None
    account: str | None


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """``body`` inflated when ``Content-Encoding: gzip``; the inflated size is held to
    ``max_bytes`` as the compressed one is (413), so a small bomb cannot fill memory."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise IntakeError(
            415, "Content-Encoding", f"{encoding!r} is not accepted: gzip or none", "header"
        )
    inflater = zlib.decompressobj(wbits=31)
    try:
        inflated = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise IntakeError(400, "body", f"not valid gzip: {exc}") from None
    if len(inflated) > max_bytes or inflater.unconsumed_tail:
        raise IntakeError(413, "body", f"the inflated body is larger than {max_bytes} bytes")
    if not inflater.eof:
        raise IntakeError(400, "body", "the gzip stream is truncated")
    return inflated


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _account_of(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    account = obj.get("account")
    if isinstance(account, dict) and isinstance(account.get("id"), str):
        return str(account["id"])
    flat = obj.get("account_id")
    return flat if isinstance(flat, str) else None


def _event_id(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    given = obj.get("event_id")
    if given is None:
        return derive_event_id(obj)
    if isinstance(given, str):
        try:
            return valid_event_id(given)
        except Refused:
            return None  # the normalizer dead-letters it with the reason
    return None


def _incoming(index: int, value: bytes, obj: Any) -> IncomingEvent:
    return IncomingEvent(index, value, key_of(obj), _event_id(obj), _account_of(obj))


def _json_error(exc: orjson.JSONDecodeError, line_offset: int = 0) -> str:
    return f"line {exc.lineno + line_offset}, column {exc.colno}: not JSON ({exc.msg})"


def parse_events(body: bytes, content_type: str | None) -> list[IncomingEvent]:
    """The events of a (decompressed) body, in order. Raises ``IntakeError``: 400 naming
    the line (and column) of text that is not JSON, or a body with no event; 415 for a
    media type other than JSON or NDJSON."""
    media = _media_type(content_type)
    if media in NDJSON_TYPES:
        events: list[IncomingEvent] = []
        for number, line in enumerate(body.split(b"\n"), start=1):
            text = line.strip()
            if not text:
                continue
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise IntakeError(
                    400, f"line {number}", f"line {number}: not JSON ({exc.msg})"
                ) from None
            events.append(_incoming(len(events), text, obj))
    elif media in JSON_TYPES:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise IntakeError(400, f"line {exc.lineno}", _json_error(exc)) from None
        if isinstance(document, list):
            events = [
                _incoming(i, orjson.dumps(element), element) for i, element in enumerate(document)
            ]
        else:
            events = [_incoming(0, body.strip(), document)]
    else:
        raise IntakeError(
            415,
            "Content-Type",
            f"{media!r} is not accepted: application/json (an object or an array of "
            "objects) or application/x-ndjson (one object per line)",
            "header",
        )
    if not events:
        raise IntakeError(400, "body", "no event in the body")
    return events


def check_account(events: list[IncomingEvent], account: str | None) -> None:
    """For a producer bound to ``account``: raises ``IntakeError`` (403, naming the first
    event) unless every event is of that account. Nothing of the request is written then."""
    if account is None:
        return
    for event in events:
        if event.account != account:
            found = f"account {event.account!r}" if event.account is not None else "no account"
            raise IntakeError(
                403,
                f"body[{event.index}].account.id",
                f"this token writes account {account!r} only; event {event.index} has {found}",
            )
