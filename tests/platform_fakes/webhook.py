"""Local stand-in for a webhook endpoint that verifies Standard Webhooks signatures.

Contract enforced (standardwebhooks.com, specification v1), with the specification's own
``standardwebhooks`` package doing the verification (not authtrail's code):

* ``POST /hooks/{name}``: ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``
  must verify against one of the receiver's ``secrets`` (a timestamp more than five
  minutes from the receiver's clock, a missing header or no matching signature → 401);
  ``required_headers`` must all be present with their values (else 401).
* Body: never compressed (a ``Content-Encoding`` → 415); over ``max_body_bytes`` → 413;
  ``Content-Type: application/json`` with a JSON array of objects, or
  ``application/x-ndjson`` with one object a line, or one JSON object (a notification);
  anything else → 400.
* Success: 204. A ``webhook-id`` seen before is answered 204 and stored again only in
  ``ids`` (``duplicates`` counts it): receivers dedupe on it, and so does this one.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.platform_fakes.base import Receiver

MAX_BODY_BYTES = 1_048_576


@dataclass(frozen=True)
class Attempt:
    """One request as it arrived, answered or not: its id, its timestamp, the status."""

    msg_id: str
    timestamp: int
    status: int


class WebhookReceiver(Receiver):
    """A Standard Webhooks endpoint; see the module docstring for the contract."""

    media_type: ClassVar[str] = "text/plain"
    success_body: ClassVar[bytes] = b""

    def __init__(
        self,
        secrets: list[str],
        *,
        required_headers: dict[str, str] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        keep_events: bool = True,
    ) -> None:
        self.verifiers = [Webhook(secret) for secret in secrets]
        self.required_headers = {k.lower(): v for k, v in (required_headers or {}).items()}
        self.max_body_bytes = max_body_bytes
        self._lock = threading.Lock()
        self.ids: list[str] = []  # every verified webhook-id, in arrival order
        self.signatures: list[str] = []  # every verified webhook-signature header
        self.bodies: list[bytes] = []  # every verified body, as received
        self.duplicates = 0
        self.attempts: list[Attempt] = []  # every request, failed ones included
        super().__init__(keep_events=keep_events)

    @property
    def endpoint(self) -> str:
        return f"{self.url}/hooks/audit"

    def use_secrets(self, secrets: list[str]) -> None:
        """The receiver now verifies with these secrets only (a rotation on its side)."""
        self.verifiers = [Webhook(secret) for secret in secrets]

    def routes(self) -> list[BaseRoute]:
        endpoint = self._recorded(self.ingest_endpoint(self._ingest))
        return [Route("/hooks/{name}", endpoint, methods=["POST"])]

    def _recorded(
        self, endpoint: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def recorded(request: Request) -> Response:
            response = await endpoint(request)
            stamp = request.headers.get("webhook-timestamp", "")
            attempt = Attempt(
                request.headers.get("webhook-id", ""),
                int(stamp) if stamp.isdigit() else -1,
                response.status_code,
            )
            with self._lock:
                self.attempts.append(attempt)
            return response

        return recorded

    def error(self, status: int, message: str) -> Response:
        return Response(message.encode(), status_code=status, media_type="text/plain")

    def auth_failure(self) -> Response:
        return self.error(401, "signature not verified")

    def _verified(self, request: Request, raw: bytes) -> bool:
        headers = dict(request.headers)
        for name, value in self.required_headers.items():
            if headers.get(name) != value:
                return False
        for verifier in self.verifiers:
            try:
                verifier.verify(raw, headers, json_parse=False)
            except (WebhookVerificationError, UnicodeDecodeError, ValueError):
                continue
            return True
        return False

    def _ingest(self, request: Request, raw: bytes) -> Response:
        if request.headers.get("content-encoding"):
            return self.error(415, "compressed bodies are not signed as sent")
        body = self.read_body(request, raw, self.max_body_bytes, check_marker=False)
        if isinstance(body, Response):
            return body
        if not self._verified(request, body):
            return self.auth_failure()
        if self.faults.outage_in(body):
            return self.error(503, "Service Unavailable")
        if self.faults.marker_in(body):
            return self.invalid_data(body)
        events = _events(request.headers.get("content-type", ""), raw)
        if events is None:
            return self.error(400, "not a JSON array of objects or NDJSON objects")
        msg_id = request.headers["webhook-id"]
        with self._lock:
            seen = msg_id in self.ids
            self.ids.append(msg_id)
            self.signatures.append(request.headers["webhook-signature"])
            self.bodies.append(raw)
            if seen:
                self.duplicates += 1
        if not seen:
            self.store.accept(events, len(raw))
        return Response(b"", status_code=204)


def _events(content_type: str, raw: bytes) -> list[Any] | None:
    kind = content_type.split(";")[0].strip().lower()
    try:
        if kind == "application/json":
            events = orjson.loads(raw)
            if isinstance(events, dict):  # one message (a notification)
                events = [events]
            if not isinstance(events, list):
                return None
        elif kind == "application/x-ndjson":
            events = [orjson.loads(line) for line in raw.split(b"\n") if line.strip()]
        else:
            return None
    except orjson.JSONDecodeError:
        return None
    return events if all(isinstance(e, dict) for e in events) else None
