"""Shared machinery for the local stand-ins of the log-ingestion platforms.

A receiver is a small Starlette app served by uvicorn on 127.0.0.1 in a background
thread. It enforces one platform's ingestion contract (auth, body shape, size
limits, error replies, as each vendor documents them), records what it accepted
in a `Store`, and consults a `Faults` plan on every ingestion request so tests can
make the platform fail, throttle, stall, reject data or refuse credentials.

Order of checks on an ingestion request, the same on every platform:

1. the body is read in full (its wire size is counted);
2. the configured delay is slept (`Faults.set_delay`);
3. a planned reply (`Faults.fail_next` / `Faults.throttle`), first planned first,
   is answered without looking at the request: a proxy or load balancer in front
   of the platform answers 5xx/429 before any auth happens;
4. `Faults.set_credentials_valid(False)` answers the platform's auth failure;
5. the platform's own checks: auth, then the body is decompressed (`decode_body`),
   then the size limit (413), then `Faults.reject_marker` (400), then the body's
   shape. A request is accepted whole or not at all.

Faults and the request counters concern ingestion endpoints only; auxiliary
endpoints (Splunk's ack and health) answer normally so that a planned fault is
consumed by the request it was meant for.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, ClassVar, Self, cast

import orjson
import uvicorn
import zstandard
from isal import isal_zlib
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

LOCALHOST = "127.0.0.1"
# isal's stubs declare its error as an instance, not a class.
_INFLATE_ERROR = cast(type[Exception], isal_zlib.error)
JSON_MEDIA_TYPE = "application/json"

ReplyBody = bytes | dict[str, Any] | None
IngestHandler = Callable[[Request, bytes], Response]

# A bounded step keeps a zstd "bomb" from expanding far past the size limit before
# the limit is noticed: one compressed kilobyte cannot inflate to more than a few
# tens of megabytes.
_ZSTD_INPUT_STEP = 1024
# How quickly a delayed request notices down(); well under uvicorn's 0.1 s shutdown grace.
_PAUSE_SLICE = 0.02


class BodyDecodeError(ValueError):
    """The body does not decompress with the declared Content-Encoding."""


class UnsupportedEncodingError(ValueError):
    """The Content-Encoding names a coding the receivers do not implement."""


def _inflate(raw: bytes, wbits: int, cap: int, *, multi_member: bool) -> bytes:
    """Inflate zlib/gzip/raw-deflate data, stopping once more than `cap` bytes came out."""
    parts: list[bytes] = []
    total = 0
    data = raw
    while True:
        # ISA-L inflates twice as fast as zlib: the receivers stand in for platforms in
        # benchmarks, on the connector's machine, so their CPU is the connector's loss.
        inflater = isal_zlib.decompressobj(wbits)
        try:
            chunk = inflater.decompress(data, cap + 1 - total)
        except _INFLATE_ERROR as exc:
            raise BodyDecodeError(f"body does not decompress: {exc}") from exc
        parts.append(chunk)
        total += len(chunk)
        if total > cap:
            break
        if not inflater.eof:
            raise BodyDecodeError("compressed body is truncated")
        data = inflater.unused_data
        # gzip allows several members back to back (what `cat a.gz b.gz` produces).
        if not data or (multi_member and not data.strip(b"\0")):
            break
        if not multi_member:
            raise BodyDecodeError("trailing data after the compressed body")
    return b"".join(parts)


def _unzstd(raw: bytes, cap: int) -> bytes:
    """Decompress one or more zstd frames, stopping once more than `cap` bytes came out."""
    parts: list[bytes] = []
    total = 0
    data = raw
    dctx = zstandard.ZstdDecompressor()
    try:
        while data:
            frame = dctx.decompressobj()
            pos = 0
            while not frame.eof and pos < len(data):
                chunk = frame.decompress(data[pos : pos + _ZSTD_INPUT_STEP])
                pos += _ZSTD_INPUT_STEP
                parts.append(chunk)
                total += len(chunk)
                if total > cap:
                    return b"".join(parts)
            if not frame.eof:
                raise BodyDecodeError("compressed body is truncated")
            data = frame.unused_data + data[pos:]
    except zstandard.ZstdError as exc:
        raise BodyDecodeError(f"body does not decompress: {exc}") from exc
    return b"".join(parts)


def decode_body(raw: bytes, content_encoding: str | None, cap: int) -> bytes:
    """Undo the request's Content-Encoding (gzip, deflate, zstd, identity).

    At most `cap + 1` bytes are produced: the caller compares the length with its
    limit and answers 413, and a small compressed body cannot make the receiver
    inflate gigabytes first. Raises `BodyDecodeError` for a body that does not
    decompress and `UnsupportedEncodingError` for an unknown coding.
    """
    if not content_encoding:
        return raw
    body = raw
    # Codings are listed in the order they were applied, so they are undone backwards.
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    for coding in reversed(codings):
        if coding in ("", "identity"):
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS, cap, multi_member=True)
        elif coding == "deflate":
            # HTTP's "deflate" is zlib-wrapped, but many clients send raw deflate.
            try:
                body = _inflate(body, zlib.MAX_WBITS, cap, multi_member=False)
            except BodyDecodeError:
                body = _inflate(body, -zlib.MAX_WBITS, cap, multi_member=False)
        elif coding == "zstd":
            body = _unzstd(body, cap)
        else:
            raise UnsupportedEncodingError(f"unsupported Content-Encoding: {coding}")
    return body


def retry_after_value(seconds: float) -> str:
    """Render Retry-After as whole seconds when possible, else as a decimal string."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return repr(float(seconds))


@dataclass(frozen=True, slots=True)
class PlannedReply:
    """A reply a test asked for, answered instead of normal handling (status 0: normal
    handling, to place a fault after that many requests)."""

    status: int
    body: ReplyBody
    headers: dict[str, str]


class _Plan:
    __slots__ = ("remaining", "reply")

    def __init__(self, remaining: int, reply: PlannedReply) -> None:
        self.remaining = remaining
        self.reply = reply


class Faults:
    """Thread-safe fault plan; tests set it, the receiver consults it on every request.

    Planned replies (`fail_next`, `throttle`) are served first-planned-first: after
    `fail_next(2, 503)` then `throttle(1, 2)`, requests get 503, 503, 429, then
    normal handling. A 2xx `fail_next` answers success while storing nothing, the
    way an over-budget Sumo Logic account drops data behind a 200.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: deque[_Plan] = deque()
        self._delay = 0.0
        self._marker: str | None = None
        self._marker_bytes: bytes | None = None
        self._outage_bytes: bytes | None = None
        self._credentials_valid = True

    def fail_next(
        self,
        n: int,
        status: int,
        body: ReplyBody = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `n` requests with `status`; body None means the platform's own."""
        if not 200 <= status <= 599:
            raise ValueError(f"status must be 200..599, got {status}")
        self._plan(n, PlannedReply(status, body, dict(headers or {})))

    def pass_next(self, n: int) -> None:
        """Handle the next `n` requests normally: a fault planned after this one meets
        request n + 1."""
        self._plan(n, PlannedReply(0, None, {}))

    def throttle(self, n: int, retry_after: float) -> None:
        """Answer the next `n` requests with 429, Retry-After and the platform's 429 body."""
        if retry_after < 0:
            raise ValueError("retry_after must not be negative")
        self._plan(n, PlannedReply(429, None, {"Retry-After": retry_after_value(retry_after)}))

    def _plan(self, n: int, reply: PlannedReply) -> None:
        if n < 0:
            raise ValueError("n must not be negative")
        if n == 0:
            return
        with self._lock:
            self._plans.append(_Plan(n, reply))

    def take(self) -> PlannedReply | None:
        """The planned reply for the current request, if any (consumes one)."""
        # Unlocked emptiness check: the common no-fault path stays lock-free.
        if not self._plans:
            return None
        with self._lock:
            if not self._plans:
                return None
            plan = self._plans[0]
            plan.remaining -= 1
            if plan.remaining == 0:
                self._plans.popleft()
            return plan.reply

    @property
    def pending(self) -> int:
        """How many requests still have a planned reply waiting."""
        with self._lock:
            return sum(plan.remaining for plan in self._plans)

    def set_delay(self, seconds: float) -> None:
        """Every ingestion request waits `seconds` before it is answered."""
        if seconds < 0:
            raise ValueError("delay must not be negative")
        with self._lock:
            self._delay = float(seconds)

    @property
    def delay(self) -> float:
        return self._delay

    def reject_marker(self, marker: str | None) -> None:
        """Answer "invalid data" to any request whose decoded body contains `marker`."""
        if marker == "":
            raise ValueError("an empty marker would match every request; pass None to clear")
        with self._lock:
            self._marker = marker
            self._marker_bytes = None if marker is None else marker.encode()

    @property
    def marker(self) -> str | None:
        return self._marker

    def marker_in(self, body: bytes) -> bool:
        marker = self._marker_bytes
        return marker is not None and marker in body

    def unavailable_for(self, marker: str | None) -> None:
        """Answer 503 to any request whose decoded body contains `marker`, accept the
        rest: an outage of part of the traffic (one shard of the intake down)."""
        if marker == "":
            raise ValueError("an empty marker would match every request; pass None to clear")
        with self._lock:
            self._outage_bytes = None if marker is None else marker.encode()

    def outage_in(self, body: bytes) -> bool:
        marker = self._outage_bytes
        return marker is not None and marker in body

    def set_credentials_valid(self, valid: bool) -> None:
        """When False, every request gets the platform's auth failure (a revoked key)."""
        with self._lock:
            self._credentials_valid = valid

    @property
    def credentials_valid(self) -> bool:
        return self._credentials_valid

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()
            self._delay = 0.0
            self._marker = None
            self._marker_bytes = None
            self._outage_bytes = None
            self._credentials_valid = True


class Store:
    """Thread-safe record of what a receiver accepted and how it answered.

    With `keep_events=False` only counts are kept, so a long benchmark does not
    hold millions of events in memory.
    """

    def __init__(self, *, keep_events: bool = True) -> None:
        self.keep_events = keep_events
        self._cond = threading.Condition()
        self._events: list[Any] = []
        self._event_count = 0
        self._requests: dict[int, int] = {}
        self._accepted_requests = 0
        self._bytes_received = 0
        self._bytes_accepted = 0
        self._truncated = 0
        self._split = 0
        self._answers: list[tuple[float, float, int]] = []

    def events(self) -> list[Any]:
        """A copy of the accepted events, in arrival order."""
        with self._cond:
            return list(self._events)

    @property
    def event_count(self) -> int:
        """Accepted events, counted even when they are not kept."""
        with self._cond:
            return self._event_count

    @property
    def requests(self) -> dict[int, int]:
        """Ingestion requests answered, by HTTP status (a copy)."""
        with self._cond:
            return dict(self._requests)

    @property
    def accepted_requests(self) -> int:
        with self._cond:
            return self._accepted_requests

    @property
    def bytes_received(self) -> int:
        """Request body bytes as sent on the wire (compressed when compressed)."""
        with self._cond:
            return self._bytes_received

    @property
    def bytes_accepted(self) -> int:
        """Uncompressed body bytes of the accepted requests."""
        with self._cond:
            return self._bytes_accepted

    @property
    def truncated(self) -> int:
        """Events shortened on the way in (Datadog's 1 MB per-log limit)."""
        with self._cond:
            return self._truncated

    @property
    def split(self) -> int:
        """Extra records made by splitting long messages (Sumo Logic's 64 KB rule)."""
        with self._cond:
            return self._split

    @property
    def answers(self) -> list[tuple[float, float, int]]:
        """Every ingestion request as (arrived, answered, status), monotonic seconds."""
        with self._cond:
            return list(self._answers)

    def record_request(self, status: int, wire_bytes: int, arrived: float | None = None) -> None:
        now = time.monotonic()
        with self._cond:
            self._requests[status] = self._requests.get(status, 0) + 1
            self._bytes_received += wire_bytes
            self._answers.append((now if arrived is None else arrived, now, status))

    def accept(
        self, events: list[Any], body_bytes: int, *, truncated: int = 0, split: int = 0
    ) -> None:
        with self._cond:
            if self.keep_events:
                self._events.extend(events)
            self._event_count += len(events)
            self._accepted_requests += 1
            self._bytes_accepted += body_bytes
            self._truncated += truncated
            self._split += split
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until at least `count` events were accepted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._event_count < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def reset(self) -> None:
        with self._cond:
            self._events.clear()
            self._event_count = 0
            self._requests.clear()
            self._accepted_requests = 0
            self._bytes_received = 0
            self._bytes_accepted = 0
            self._truncated = 0
            self._split = 0
            self._answers.clear()


class ReceiverServer:
    """Serves an ASGI app with uvicorn on 127.0.0.1 from a background thread.

    The first `start()` binds a free port; later starts (`up()`) bind the same
    port again, so a client configured with `url` sees an outage (connection
    refused) between `down()` and `up()` and then reaches the receiver again.
    """

    def __init__(self, app: ASGIApp, *, start_timeout: float = 10.0) -> None:
        self._app = app
        self._start_timeout = start_timeout
        self._port = 0
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._severed = False

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the receiver has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def severed(self) -> bool:
        """True from `down()` until the next start: in-flight requests are being dropped."""
        return self._severed

    def _bind(self) -> socket.socket:
        # The explicit IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted
        # connections only when the listener's proto says TCP. Without it each reply
        # (uvicorn writes headers and body separately) stalls ~40 ms on Nagle's
        # algorithm meeting the client's delayed ACK, capping a benchmark at ~25 req/s.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        # Lets up() rebind the port while connections from before down() sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCALHOST, self._port))
            sock.listen(1024)
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        return sock

    def start(self) -> Self:
        """Serve, and return once the port accepts connections."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the receiver is already running")
            sock = self._bind()
            config = uvicorn.Config(
                self._app,
                host=LOCALHOST,
                port=self._port,
                log_level="warning",
                access_log=False,
                lifespan="off",
                ws="none",
            )
            server = uvicorn.Server(config)
            self._error = None
            self._severed = False
            thread = threading.Thread(
                target=self._run, args=(server, sock), name=f"receiver-{self._port}", daemon=True
            )
            self._server = server
            self._thread = thread
            thread.start()
            deadline = time.monotonic() + self._start_timeout
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    server.should_exit = True
                    thread.join(self._start_timeout)
                    self._server = None
                    self._thread = None
                    raise RuntimeError(f"receiver failed to start: {self._error!r}")
                time.sleep(0.002)
        return self

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            await server.serve(sockets=[sock])

        try:
            asyncio.run(serve())
        except BaseException as exc:  # uvicorn reports a failed startup with sys.exit
            self._error = exc
        finally:
            self._loop = None
            sock.close()

    def stop(self) -> None:
        """Graceful stop: in-flight requests are answered first."""
        with self._lock:
            server, thread = self._server, self._thread
            if server is None or thread is None:
                return
            server.should_exit = True
            thread.join(self._start_timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(self._start_timeout)
            self._server = None
            self._thread = None

    def down(self) -> None:
        """Abrupt outage: stop listening and drop open connections, in-flight ones too."""
        with self._lock:
            server, thread, loop = self._server, self._thread, self._loop
            if server is None or thread is None:
                return
            self._severed = True
            if loop is not None:
                # RuntimeError/TimeoutError: the loop closed meanwhile, so it is down anyway.
                with contextlib.suppress(RuntimeError, TimeoutError):
                    asyncio.run_coroutine_threadsafe(_sever(server), loop).result(
                        self._start_timeout
                    )
            server.should_exit = True
            server.force_exit = True
            thread.join(self._start_timeout)
            self._server = None
            self._thread = None

    def up(self) -> Self:
        """Serve again on the same port after `down()` or `stop()`."""
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def _sever(server: uvicorn.Server) -> None:
    # Closing the listeners first means no new connection slips in while the
    # existing ones are aborted; clients then see refused connections or resets.
    for listener in getattr(server, "servers", []):
        listener.close()
    for connection in list(server.server_state.connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.abort()


class Receiver(ABC):
    """A platform stand-in: its contract as a Starlette app, plus faults and a store."""

    #: Media type of the platform's replies.
    media_type: ClassVar[str] = JSON_MEDIA_TYPE
    #: Body of the platform's success reply.
    success_body: ClassVar[bytes] = b"{}"

    def __init__(self, *, keep_events: bool = True) -> None:
        self.faults = Faults()
        self.store = Store(keep_events=keep_events)
        self.app = Starlette(routes=self.routes())
        self.server = ReceiverServer(self.app)

    @abstractmethod
    def routes(self) -> list[BaseRoute]:
        """The platform's endpoints; ingestion ones wrapped with `ingest_endpoint`."""

    @abstractmethod
    def error(self, status: int, message: str) -> Response:
        """A reply with `status`, shaped like the platform's error replies."""

    @abstractmethod
    def auth_failure(self) -> Response:
        """The platform's reply to a missing, wrong or revoked credential."""

    def invalid_data(self, body: bytes) -> Response:
        """The platform's "invalid data" reply, used for `Faults.reject_marker`."""
        return self.error(400, "Invalid data")

    def reset(self) -> None:
        """Forget accepted data and clear every fault."""
        self.store.reset()
        self.faults.clear()

    # Lifecycle, delegated to the server.

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> Self:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def down(self) -> None:
        self.server.down()

    def up(self) -> Self:
        self.server.up()
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Helpers for the platform modules.

    def json_reply(
        self, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> Response:
        return Response(
            orjson.dumps(payload), status_code=status, headers=headers, media_type=JSON_MEDIA_TYPE
        )

    def ingest_endpoint(self, handler: IngestHandler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a platform handler with the fault plan and the request counters."""

        async def endpoint(request: Request) -> Response:
            arrived = time.monotonic()
            raw = await request.body()
            delay = self.faults.delay
            if delay > 0:
                await self._pause(delay)
                if self.server.severed:
                    # down() aborted this connection: nobody is left to read a reply.
                    return Response(b"", status_code=503)
            planned = self.faults.take()
            if planned is not None and planned.status == 0:
                planned = None
            if planned is not None:
                response = self._planned(planned)
            elif not self.faults.credentials_valid:
                response = self.auth_failure()
            else:
                response = handler(request, raw)
            self.store.record_request(response.status_code, len(raw), arrived)
            return response

        return endpoint

    async def _pause(self, seconds: float) -> None:
        # Sleeps in slices so that down() need not cancel a stalled request, which
        # uvicorn would log as an application error.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self.server.severed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, _PAUSE_SLICE))

    def _planned(self, planned: PlannedReply) -> Response:
        if isinstance(planned.body, dict):
            response = self.json_reply(planned.status, planned.body)
        elif isinstance(planned.body, bytes):
            response = Response(
                planned.body, status_code=planned.status, media_type=self.media_type
            )
        elif 200 <= planned.status < 300:
            response = Response(
                self.success_body, status_code=planned.status, media_type=self.media_type
            )
        else:
            response = self.error(planned.status, HTTPStatus(planned.status).phrase)
        for name, value in planned.headers.items():
            response.headers[name] = value
        return response

    def read_body(
        self, request: Request, raw: bytes, limit: int, *, check_marker: bool = True
    ) -> bytes | Response:
        """Decompress and size-check a body; a Response means "answer this instead"."""
        try:
            body = decode_body(raw, request.headers.get("content-encoding"), limit)
        except UnsupportedEncodingError as exc:
            return self.error(415, str(exc))
        except BodyDecodeError as exc:
            return self.error(400, str(exc))
        if len(body) > limit:
            return self.error(413, f"Request body exceeds {limit} bytes uncompressed")
        if check_marker and self.faults.outage_in(body):
            return self.error(503, "Service Unavailable")
        if check_marker and self.faults.marker_in(body):
            return self.invalid_data(body)
        return body
