"""Local stand-in for the Datadog Logs API v2 intake.

Contract enforced (docs.datadoghq.com/api/latest/logs/send-logs/):

* ``POST /api/v2/logs``; header ``DD-API-KEY`` must equal the configured key,
  otherwise 403 ``{"errors":["Forbidden"]}`` (also while
  ``faults.set_credentials_valid(False)``).
* ``Content-Encoding`` gzip or deflate (zstd too, harmlessly); a body that does
  not decompress is 400, an unknown coding 415.
* Body: a JSON array of JSON objects, otherwise 400 ``{"errors":["..."]}``.
* More than 1,000 entries, or more than 5 MB uncompressed: 413.
* A single log over 1 MB is truncated, not refused: the stored entry has its
  ``message`` shortened until the log fits (a log whose bulk is not in
  ``message`` is stored as ``{"message": <its JSON text, shortened>}``), and
  ``store.truncated`` counts it.
* Success: 202 ``{}``; each entry is stored as the dict that was sent.
* Error bodies follow Datadog's ``{"errors": [<text>]}`` shape; planned 429s
  (``faults.throttle``) answer ``{"errors":["Too Many Requests"]}``.

Limits use decimal megabytes (5,000,000 and 1,000,000 bytes): the stricter reading
of "5 MB", so a sender that passes here passes Datadog.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.platform_fakes.base import JSON_MEDIA_TYPE, Receiver

MAX_ENTRIES = 1_000
MAX_PAYLOAD_BYTES = 5_000_000
MAX_LOG_BYTES = 1_000_000

_ACCEPTED = b"{}"


def _fit_text(base: dict[str, Any], text: str, limit: int) -> dict[str, Any]:
    """`base` plus the longest prefix of `text` as "message" that serialises within `limit`."""
    encoded = text.encode()

    def build(keep: int) -> tuple[dict[str, Any], int]:
        candidate = {**base, "message": encoded[:keep].decode("utf-8", "ignore")}
        return candidate, len(orjson.dumps(candidate))

    # JSON escaping makes the serialised size depend on which characters are kept,
    # so the cut is found by bisection rather than computed; this runs only for the
    # rare log over the limit.
    best, _ = build(0)
    low, high = 0, len(encoded)
    while low < high:
        middle = (low + high + 1) // 2
        candidate, size = build(middle)
        if size <= limit:
            best, low = candidate, middle
        else:
            high = middle - 1
    return best


def truncate_log(entry: dict[str, Any], size: int, limit: int = MAX_LOG_BYTES) -> dict[str, Any]:
    """Shorten a log that serialises to `size` bytes so that it fits in `limit`."""
    message = entry.get("message")
    if isinstance(message, str):
        rest = {k: v for k, v in entry.items() if k != "message"}
        if len(orjson.dumps(rest)) + 16 < limit:
            return _fit_text(rest, message, limit)
    return _fit_text({}, orjson.dumps(entry).decode(), limit)


class DatadogReceiver(Receiver):
    """Datadog Logs API v2 stand-in; see the module docstring for the contract."""

    success_body: ClassVar[bytes] = _ACCEPTED

    def __init__(
        self,
        api_key: str,
        *,
        max_entries: int = MAX_ENTRIES,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        max_log_bytes: int = MAX_LOG_BYTES,
        keep_events: bool = True,
    ) -> None:
        self.api_key = api_key
        self.max_entries = max_entries
        self.max_payload_bytes = max_payload_bytes
        self.max_log_bytes = max_log_bytes
        super().__init__(keep_events=keep_events)

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/v2/logs", self.ingest_endpoint(self._ingest), methods=["POST"])]

    def error(self, status: int, message: str) -> Response:
        return self.json_reply(status, {"errors": [message]})

    def auth_failure(self) -> Response:
        return self.error(403, "Forbidden")

    def _ingest(self, request: Request, raw: bytes) -> Response:
        if request.headers.get("dd-api-key") != self.api_key:
            return self.auth_failure()
        body = self.read_body(request, raw, self.max_payload_bytes)
        if isinstance(body, Response):
            return body
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return self.error(400, f"Malformed JSON: {exc}")
        if not isinstance(payload, list):
            return self.error(400, "Body must be a JSON array of log objects")
        if len(payload) > self.max_entries:
            return self.error(
                413, f"Too many logs in one request: {len(payload)} > {self.max_entries}"
            )
        for index, entry in enumerate(payload):
            if type(entry) is not dict:
                return self.error(400, f"Log #{index} is not a JSON object")
        truncated = 0
        # No log can exceed the per-log limit when the whole body is within it, which
        # spares re-serialising every entry on the common path.
        if len(body) > self.max_log_bytes:
            for index, entry in enumerate(payload):
                size = len(orjson.dumps(entry))
                if size > self.max_log_bytes:
                    payload[index] = truncate_log(entry, size, self.max_log_bytes)
                    truncated += 1
        self.store.accept(payload, len(body), truncated=truncated)
        return Response(_ACCEPTED, status_code=202, media_type=JSON_MEDIA_TYPE)
