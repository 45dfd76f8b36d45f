"""Local stand-in for a Sumo Logic HTTP Logs source.

Contract enforced (github.com/SumoLogic/sumologic-documentation,
docs/send-data/hosted-collectors/http-source/: upload-logs.md, troubleshooting.md):

* ``POST /receiver/v1/http/{code}``: the URL is the secret; another code (or any
  code while ``faults.set_credentials_valid(False)``) → 401.
* Body: UTF-8 log lines, split on "\\n" (a trailing "\\r" is dropped), empty lines
  skipped. Content-Encoding gzip, deflate or zstd. A body that does not
  decompress, or is not UTF-8, → 400; over 1 MB (1,000,000 bytes) uncompressed →
  413.
* A line over 64 KB (65,536 bytes of UTF-8) is stored as several records, split on
  character boundaries, as Sumo splits such messages; ``store.split`` counts the
  extra records.
* Success: 200 with an empty body. Every line is stored as
  ``{"line", "category", "name", "host", "fields"}``, the last four being the raw
  ``X-Sumo-Category``, ``X-Sumo-Name``, ``X-Sumo-Host`` and ``X-Sumo-Fields``
  header values (None when absent).
* Sumo documents statuses, not bodies: error replies carry a short plain-text
  reason. ``faults.throttle`` gives 429 with Retry-After (Sumo drops throttled
  data: the sender must re-send); ``faults.fail_next(n, 200)`` answers 200 and
  stores nothing, as an account over its ingest budget does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.platform_fakes.base import Receiver

MAX_BODY_BYTES = 1_000_000
MAX_MESSAGE_BYTES = 65_536
_TEXT_MEDIA_TYPE = "text/plain"


def split_message(line: str, limit: int = MAX_MESSAGE_BYTES) -> list[str]:
    """Cut a line into pieces of at most `limit` UTF-8 bytes, never inside a character."""
    encoded = line.encode()
    if len(encoded) <= limit:
        return [line]
    pieces: list[str] = []
    start = 0
    total = len(encoded)
    while start < total:
        end = min(start + limit, total)
        # Back off continuation bytes (10xxxxxx) so the cut falls between characters.
        while end < total and encoded[end] & 0xC0 == 0x80:
            end -= 1
        pieces.append(encoded[start:end].decode())
        start = end
    return pieces


class SumoReceiver(Receiver):
    """Sumo Logic HTTP source stand-in; see the module docstring for the contract."""

    media_type: ClassVar[str] = _TEXT_MEDIA_TYPE
    success_body: ClassVar[bytes] = b""

    def __init__(
        self,
        code: str,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        keep_events: bool = True,
    ) -> None:
        self.code = code
        self.max_body_bytes = max_body_bytes
        self.max_message_bytes = max_message_bytes
        super().__init__(keep_events=keep_events)

    @property
    def endpoint(self) -> str:
        """The full upload URL, as Sumo shows it for a source."""
        return f"{self.url}/receiver/v1/http/{self.code}"

    def routes(self) -> list[BaseRoute]:
        return [
            Route(
                "/receiver/v1/http/{code:path}",
                self.ingest_endpoint(self._ingest),
                methods=["POST"],
            )
        ]

    def error(self, status: int, message: str) -> Response:
        return Response(message.encode(), status_code=status, media_type=_TEXT_MEDIA_TYPE)

    def auth_failure(self) -> Response:
        return self.error(401, "Unauthorized")

    def _ingest(self, request: Request, raw: bytes) -> Response:
        if request.path_params["code"] != self.code:
            return self.auth_failure()
        body = self.read_body(request, raw, self.max_body_bytes)
        if isinstance(body, Response):
            return body
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return self.error(400, "Body must be UTF-8 text")
        headers = request.headers
        category = headers.get("x-sumo-category")
        name = headers.get("x-sumo-name")
        host = headers.get("x-sumo-host")
        fields = headers.get("x-sumo-fields")
        # A character is at most 4 UTF-8 bytes, so shorter lines need no byte count.
        short = self.max_message_bytes // 4
        records: list[dict[str, Any]] = []
        split = 0
        for line in text.split("\n"):
            if line.endswith("\r"):
                line = line[:-1]
            if not line:
                continue
            if len(line) > short:
                pieces = split_message(line, self.max_message_bytes)
                split += len(pieces) - 1
            else:
                pieces = [line]
            for piece in pieces:
                records.append(
                    {
                        "line": piece,
                        "category": category,
                        "name": name,
                        "host": host,
                        "fields": fields,
                    }
                )
        self.store.accept(records, len(body), split=split)
        return Response(b"", status_code=200, media_type=_TEXT_MEDIA_TYPE)
