"""What the API allows one caller: a request rate per token (token bucket) and a request
body size. A per-process limit: with N API replicas a token gets N times the rate, which
bounds the damage of a leaked or runaway token without shared state."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.settings import Settings


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """The API's limits (``AUTHTRAIL_API_*`` settings)."""

    rate: float = 20.0  # requests per second per key, sustained; 0: unlimited
    burst: int = 100
    max_body_bytes: int = 1_048_576

    @classmethod
    def of(cls, settings: Settings) -> ApiLimits:
        return cls(
            settings.api_rate_limit,
            settings.api_rate_burst,
            settings.api_max_body_bytes,
        )


class RateLimitedError(HTTPException):
    """429 with ``Retry-After``: whole seconds until the caller may ask again."""

    def __init__(self, wait_s: float, what: str) -> None:
        super().__init__(
            429,
            detail={"parameter": "Authorization", "in": "header", "message": what},
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )


class RateLimiter:
    """A token bucket per key (a token id, or a client address for failed sign-ins):
    ``burst`` requests at once, refilled at ``rate`` per second. Thread-safe; memory is
    bounded by forgetting buckets that have refilled."""

    _PRUNE_AT = 10_000

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def wait_needed(self, key: str) -> float:
        """Takes one request from ``key``'s bucket: 0.0 when allowed, else the seconds
        until it would be (nothing is taken then)."""
        if self._rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self._burst), now))
            tokens = min(float(self._burst), tokens + (now - at) * self._rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / self._rate
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self._PRUNE_AT:
                self._prune(now)
            return 0.0

    def check(self, key: str, what: str) -> None:
        """Takes one request from ``key``'s bucket; raises ``RateLimitedError`` when
        it is empty."""
        wait = self.wait_needed(key)
        if wait > 0:
            raise RateLimitedError(wait, what)

    def _prune(self, now: float) -> None:
        full_after = self._burst / self._rate
        self._buckets = {
            key: (tokens, at)
            for key, (tokens, at) in self._buckets.items()
            if now - at < full_after
        }


class BodyTooLargeError(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            detail={
                "parameter": "body",
                "in": "body",
                "message": f"request body larger than {limit} bytes",
            },
        )


class BodySizeLimit:
    """ASGI middleware: a declared ``Content-Length`` over the limit is answered 413 before
    the body is read; a chunked body is counted as it arrives and refused (413) once it
    passes the limit, so no route ever buffers more than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises HTTPExceptions from body parsing: the app's
                    # handler answers it like any other 4xx.
                    raise BodyTooLargeError(self.max_bytes)
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, send: Send) -> None:
        error = BodyTooLargeError(self.max_bytes)
        body = orjson.dumps({"errors": [error.detail]})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
