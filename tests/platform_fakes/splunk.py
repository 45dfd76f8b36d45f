"""Local stand-in for the Splunk HTTP Event Collector (HEC).

Contract enforced (help.splunk.com: Format events for HTTP Event Collector; HTTP
Event Collector REST API endpoints; Troubleshoot HTTP Event Collector):

* ``POST /services/collector/event``, ``/services/collector`` and
  ``/services/collector/event/1.0``. Any Content-Type is accepted, since Splunk's
  own libraries send ``application/x-www-form-urlencoded``.
* ``Authorization: Splunk <token>``: missing → 401 ``{"text":"Token is required",
  "code":2}``; another form → 401 ``{"text":"Invalid authorization","code":3}``;
  unknown token (or any token while ``faults.set_credentials_valid(False)``) →
  403 ``{"text":"Invalid token","code":4}``; a token switched off with
  ``disable_token`` → 403 ``{"text":"Token disabled","code":1}``.
* With ``require_ack``: a request without ``X-Splunk-Request-Channel`` (or the
  ``channel`` query parameter) → 400 ``{"text":"Data channel is missing",
  "code":10}``; a channel that is not a UUID → 400 ``{"text":"Invalid data
  channel","code":11}``.
* Body: one or more JSON objects, concatenated, optionally separated by
  whitespace; not an array. Content-Encoding gzip/deflate accepted.
  Empty → 400 code 5 "No data"; over ``max_content_length`` bytes uncompressed →
  413 ``{"text":"Content too large","code":413}`` (Splunk documents no body for
  this reply; 413 is not one of HEC's codes, so it cannot be mistaken for one);
  unparseable, or a value that is not an object → 400 code 6 "Invalid data
  format"; no ``event`` → 400 code 12 "Event field is required"; ``event`` null,
  "" or {} → 400 code 13 "Event field cannot be blank"; ``index`` outside
  ``indexes`` (when given) → 400 code 7 "Incorrect index"; ``fields`` not a flat
  object → 400 code 15 "Error in handling indexed fields". Each 400 about an event
  carries ``"invalid-event-number"`` (0-based), and none of the request's events
  is kept: a request is accepted whole or not at all.
* Success: 200 ``{"text":"Success","code":0}``, plus ``"ackId"`` (a counter per
  channel, from 0) when ``require_ack``. Each event object is stored whole.
* ``POST /services/collector/ack`` with ``{"acks":[ids]}`` and the channel answers
  ``{"acks":{"<id>":true|false}}``; an id turns true ``ack_delay`` seconds after
  its request was accepted and, as in Splunk, is forgotten once reported true.
  Without ``require_ack`` the endpoint answers 400 code 14 "ACK is disabled".
* ``GET /services/collector/health`` → 200 ``{"text":"HEC is healthy","code":17}``.
* Planned faults: 503 defaults to ``{"text":"Server is busy","code":9}``, 500 to
  ``{"text":"Internal server error","code":8}``, 429 (``faults.throttle``) to
  code 9 as well.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from http import HTTPStatus
from typing import Any, ClassVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.platform_fakes.base import JSON_MEDIA_TYPE, Receiver

MAX_CONTENT_LENGTH = 1_000_000
# A channel header value is short; this bounds the ack request body generously.
_MAX_ACK_BODY = 1_000_000

_SUCCESS = b'{"text":"Success","code":0}'
_HEALTHY = b'{"text":"HEC is healthy","code":17}'

# Codes Splunk documents for replies the receiver may be asked to produce.
_STATUS_CODES: dict[int, tuple[str, int]] = {
    400: ("Invalid data format", 6),
    401: ("Token is required", 2),
    403: ("Invalid token", 4),
    413: ("Content too large", 413),
    429: ("Server is busy", 9),
    500: ("Internal server error", 8),
    503: ("Server is busy", 9),
}

_WHITESPACE = re.compile(r"[ \t\n\r]+")


def _skip_whitespace(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return pos if match is None else match.end()


class EventParseError(ValueError):
    """The body is not a sequence of JSON values; `index` is the first bad one."""

    def __init__(self, index: int) -> None:
        super().__init__(f"invalid data at event {index}")
        self.index = index


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (and orjson, the fast path) does not.
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_slow(body: bytes) -> list[Any]:
    """Parse concatenated JSON values however they are laid out."""
    events: list[Any] = []
    bad_tail = False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Everything before the first bad byte may still be good events; the event
        # holding the bad byte is the one to report.
        text = body[: exc.start].decode("utf-8")
        bad_tail = True
    pos = _skip_whitespace(text, 0)
    end = len(text)
    while pos < end:
        try:
            value, pos = _DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            raise EventParseError(len(events)) from exc
        events.append(value)
        pos = _skip_whitespace(text, pos)
    if bad_tail:
        raise EventParseError(len(events))
    return events


def parse_events(body: bytes) -> list[Any]:
    """Parse a HEC body: JSON values concatenated, optionally whitespace separated.

    Senders nearly always put one event per line, and a raw newline cannot occur
    inside a JSON value's strings, so each line is parsed with orjson first; any
    other layout (several events on a line, pretty-printed events) falls back to
    an incremental parser that also locates the first invalid event.
    """
    events: list[Any] = []
    try:
        for line in body.split(b"\n"):
            if line and not line.isspace():
                events.append(orjson.loads(line))
    except orjson.JSONDecodeError:
        return _parse_slow(body)
    return events


def _is_blank(value: Any) -> bool:
    return value is None or ((type(value) is str or type(value) is dict) and not value)


class SplunkReceiver(Receiver):
    """Splunk HEC stand-in; see the module docstring for the contract."""

    success_body: ClassVar[bytes] = _SUCCESS

    def __init__(
        self,
        tokens: set[str] | str,
        indexes: set[str] | None = None,
        max_content_length: int = MAX_CONTENT_LENGTH,
        require_ack: bool = False,
        ack_delay: float = 0.0,
        *,
        keep_events: bool = True,
    ) -> None:
        self.tokens: frozenset[str] = frozenset({tokens} if isinstance(tokens, str) else tokens)
        self.indexes: frozenset[str] | None = None if indexes is None else frozenset(indexes)
        self.max_content_length = max_content_length
        self.require_ack = require_ack
        self.ack_delay = ack_delay
        self._disabled: set[str] = set()
        self._ack_lock = threading.Lock()
        self._next_ack: dict[str, int] = {}
        # channel -> ackId -> monotonic time at which the ack turns true
        self._acks: dict[str, dict[int, float]] = {}
        self.ack_requests = 0
        super().__init__(keep_events=keep_events)

    def routes(self) -> list[BaseRoute]:
        ingest = self.ingest_endpoint(self._ingest)
        return [
            Route("/services/collector/event", ingest, methods=["POST"]),
            Route("/services/collector", ingest, methods=["POST"]),
            Route("/services/collector/event/1.0", ingest, methods=["POST"]),
            Route("/services/collector/ack", self._ack, methods=["POST"]),
            Route("/services/collector/health", self._health, methods=["GET"]),
            Route("/services/collector/health/1.0", self._health, methods=["GET"]),
        ]

    def disable_token(self, token: str) -> None:
        """Switch a known token off: it then gets 403 code 1 "Token disabled"."""
        if token not in self.tokens:
            raise ValueError("only a configured token can be disabled")
        self._disabled.add(token)

    def enable_token(self, token: str) -> None:
        self._disabled.discard(token)

    def reset(self) -> None:
        """Forget accepted data and acks, clear every fault, re-enable every token."""
        super().reset()
        self._disabled.clear()
        with self._ack_lock:
            self._next_ack.clear()
            self._acks.clear()
            self.ack_requests = 0

    # Replies.

    def _reply(
        self, status: int, text: str, code: int, event_number: int | None = None
    ) -> Response:
        payload: dict[str, Any] = {"text": text, "code": code}
        if event_number is not None:
            payload["invalid-event-number"] = event_number
        return self.json_reply(status, payload)

    def error(self, status: int, message: str) -> Response:
        # Splunk answers with its own fixed texts; `message` is used only for
        # statuses HEC has no code for.
        known = _STATUS_CODES.get(status)
        if known is None:
            return self.json_reply(status, {"text": message or HTTPStatus(status).phrase})
        text, code = known
        if status == 400:
            return self._reply(400, text, code, 0)
        return self._reply(status, text, code)

    def auth_failure(self) -> Response:
        return self._reply(403, "Invalid token", 4)

    def invalid_data(self, body: bytes) -> Response:
        return self._reply(400, "Invalid data format", 6, self._marker_event(body))

    def _marker_event(self, body: bytes) -> int:
        """The number of the first event holding the rejection marker."""
        marker = self.faults.marker
        if marker is None:
            return 0
        try:
            events = parse_events(body)
        except EventParseError as exc:
            return exc.index
        needle = marker.encode()
        for number, event in enumerate(events):
            if needle in orjson.dumps(event):
                return number
        return 0

    # Checks shared by the ingestion and ack endpoints.

    def _check_auth(self, request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if not header:
            return self._reply(401, "Token is required", 2)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme != "Splunk" or not token:
            return self._reply(401, "Invalid authorization", 3)
        if token in self._disabled:
            return self._reply(403, "Token disabled", 1)
        if token not in self.tokens:
            return self._reply(403, "Invalid token", 4)
        return None

    def _channel(self, request: Request) -> str | Response:
        channel = request.headers.get("x-splunk-request-channel") or request.query_params.get(
            "channel"
        )
        if not channel:
            return self._reply(400, "Data channel is missing", 10)
        try:
            uuid.UUID(channel)
        except ValueError:
            return self._reply(400, "Invalid data channel", 11)
        return channel

    # Endpoints.

    def _ingest(self, request: Request, raw: bytes) -> Response:
        problem = self._check_auth(request)
        if problem is not None:
            return problem
        channel: str | None = None
        if self.require_ack:
            found = self._channel(request)
            if isinstance(found, Response):
                return found
            channel = found
        if not raw:
            return self._reply(400, "No data", 5)
        body = self.read_body(request, raw, self.max_content_length)
        if isinstance(body, Response):
            return body
        if not body or body.isspace():
            return self._reply(400, "No data", 5)
        try:
            events = parse_events(body)
        except EventParseError as exc:
            return self._reply(400, "Invalid data format", 6, exc.index)
        problem = self._validate(events)
        if problem is not None:
            return problem
        self.store.accept(events, len(body))
        if channel is None:
            return Response(_SUCCESS, status_code=200, media_type=JSON_MEDIA_TYPE)
        return self.json_reply(200, {"text": "Success", "code": 0, "ackId": self._issue(channel)})

    def _validate(self, events: list[Any]) -> Response | None:
        indexes = self.indexes
        for number, event in enumerate(events):
            if type(event) is not dict:
                return self._reply(400, "Invalid data format", 6, number)
            if "event" not in event:
                return self._reply(400, "Event field is required", 12, number)
            if _is_blank(event["event"]):
                return self._reply(400, "Event field cannot be blank", 13, number)
            if indexes is not None:
                index = event.get("index")
                if index is not None and index not in indexes:
                    return self._reply(400, "Incorrect index", 7, number)
            fields = event.get("fields")
            if fields is not None and (
                type(fields) is not dict or any(type(v) is dict for v in fields.values())
            ):
                return self._reply(400, "Error in handling indexed fields", 15, number)
        return None

    def _issue(self, channel: str) -> int:
        with self._ack_lock:
            ack_id = self._next_ack.get(channel, 0)
            self._next_ack[channel] = ack_id + 1
            self._acks.setdefault(channel, {})[ack_id] = time.monotonic() + self.ack_delay
            return ack_id

    async def _ack(self, request: Request) -> Response:
        raw = await request.body()
        with self._ack_lock:
            self.ack_requests += 1
        if not self.faults.credentials_valid:
            return self.auth_failure()
        problem = self._check_auth(request)
        if problem is not None:
            return problem
        if not self.require_ack:
            return self._reply(400, "ACK is disabled", 14)
        channel = self._channel(request)
        if isinstance(channel, Response):
            return channel
        body = self.read_body(request, raw, _MAX_ACK_BODY, check_marker=False)
        if isinstance(body, Response):
            return body
        try:
            query = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._reply(400, "Invalid data format", 6)
        ids = query.get("acks") if isinstance(query, dict) else None
        if not isinstance(ids, list) or not all(
            type(ack_id) is int and ack_id >= 0 for ack_id in ids
        ):
            return self._reply(400, "Invalid data format", 6)
        now = time.monotonic()
        statuses: dict[str, bool] = {}
        with self._ack_lock:
            pending = self._acks.get(channel, {})
            for ack_id in ids:
                ready_at = pending.get(ack_id)
                done = ready_at is not None and ready_at <= now
                if done:
                    del pending[ack_id]
                statuses[str(ack_id)] = done
        return self.json_reply(200, {"acks": statuses})

    async def _health(self, request: Request) -> Response:
        return Response(_HEALTHY, status_code=200, media_type=JSON_MEDIA_TYPE)
