"""Local stand-in for the Coralogix log ingestion REST API.

Contract enforced (coralogix.com/docs/developer-portal/apis/log-ingestion/,
.../apis/limitations):

* ``POST /logs/v1/singles`` and ``POST /logs/v1/bulk``, same body shape.
* ``Authorization: Bearer <Send-Your-Data API key>``: missing or wrong (or any
  key while ``faults.set_credentials_valid(False)``) → 401
  ``{"error":"Unauthorized"}``.
* Content-Encoding gzip/deflate accepted; a body that does not decompress → 400;
  over 2 MB (2,000,000 bytes) uncompressed → 413.
* Body: a JSON array of objects. Required: ``applicationName`` and
  ``subsystemName`` (non-empty strings), ``text`` (string). Optional:
  ``severity`` (integer 1..6), ``timestamp`` (number, ms since epoch, may be
  fractional), ``computerName``, ``category``, ``className``, ``methodName``,
  ``threadId`` (strings). Any other problem, an unknown field included, → 400
  ``{"error": "<what is wrong>", "index": <0-based entry>}``; none of the
  request's entries is kept then.
* Success: 200 ``{}``; each entry is stored as the dict that was sent.

Coralogix documents no status codes: the replies above are this receiver's
choice, in line with "429 and 5xx are retryable, other 4xx permanent". Rejecting
unknown fields is deliberate: a misspelt field name (``subSystemName``) would
otherwise be lost silently by the real platform.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.platform_fakes.base import JSON_MEDIA_TYPE, Receiver

MAX_BODY_BYTES = 2_000_000

_REQUIRED_NAMES = ("applicationName", "subsystemName")
_OPTIONAL_STRINGS = ("computerName", "category", "className", "methodName", "threadId")
_ALLOWED = frozenset((*_REQUIRED_NAMES, "text", "severity", "timestamp", *_OPTIONAL_STRINGS))


def entry_problem(entry: Any) -> str | None:
    """What is wrong with one log entry, or None when it is valid."""
    if type(entry) is not dict:
        return "entry must be a JSON object"
    if not entry.keys() <= _ALLOWED:
        unknown = sorted(str(key) for key in entry.keys() - _ALLOWED)
        return f"unknown field(s): {', '.join(unknown)}"
    for key in _REQUIRED_NAMES:
        value = entry.get(key)
        if type(value) is not str or not value:
            return f"'{key}' is required and must be a non-empty string"
    if type(entry.get("text")) is not str:
        return "'text' is required and must be a string"
    if "severity" in entry:
        severity = entry["severity"]
        if type(severity) is not int or not 1 <= severity <= 6:
            return "'severity' must be an integer from 1 to 6"
    if "timestamp" in entry:
        timestamp = entry["timestamp"]
        if type(timestamp) not in (int, float) or timestamp < 0:
            return "'timestamp' must be a non-negative number of milliseconds since the epoch"
    checked = 3 + ("severity" in entry) + ("timestamp" in entry)
    # Most entries carry none of the optional string fields; skip the loop for them.
    if len(entry) > checked:
        for key in _OPTIONAL_STRINGS:
            if key in entry and type(entry[key]) is not str:
                return f"'{key}' must be a string"
    return None


class CoralogixReceiver(Receiver):
    """Coralogix log ingestion stand-in; see the module docstring for the contract."""

    def __init__(
        self,
        api_key: str,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        keep_events: bool = True,
    ) -> None:
        self.api_key = api_key
        self._expected_auth = f"Bearer {api_key}"
        self.max_body_bytes = max_body_bytes
        super().__init__(keep_events=keep_events)

    def routes(self) -> list[BaseRoute]:
        ingest = self.ingest_endpoint(self._ingest)
        return [
            Route("/logs/v1/singles", ingest, methods=["POST"]),
            Route("/logs/v1/bulk", ingest, methods=["POST"]),
        ]

    def error(self, status: int, message: str) -> Response:
        return self.json_reply(status, {"error": message})

    def auth_failure(self) -> Response:
        return self.error(401, "Unauthorized")

    def _ingest(self, request: Request, raw: bytes) -> Response:
        if request.headers.get("authorization") != self._expected_auth:
            return self.auth_failure()
        body = self.read_body(request, raw, self.max_body_bytes)
        if isinstance(body, Response):
            return body
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return self.error(400, f"body is not valid JSON: {exc}")
        if not isinstance(payload, list):
            return self.error(400, "body must be a JSON array of log entries")
        for index, entry in enumerate(payload):
            problem = entry_problem(entry)
            if problem is not None:
                return self.json_reply(400, {"error": problem, "index": index})
        self.store.accept(payload, len(body))
        return Response(b"{}", status_code=200, media_type=JSON_MEDIA_TYPE)
