"""What the HTTP platforms share: ``HttpSink``, the one send path (frame the entries ->
gzip -> POST -> classify the reply), a pooled httpx client per sink, and the generic
retry logic that turns transport failures and status codes into ``SendResult`` kinds by the
platforms' documented contracts (retry 408, 429 and 5xx honouring Retry-After, RFC 9110
section 10.2.3; split on 413; 401/403 are credentials; other 4xx blame the data).

An HTTP platform is a subclass that says where and how (``request``), how an event becomes
an entry (``encode``), and, where its replies say more than the status, its own
``classify``: Vector's request builder and ``RetryLogic``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar, Literal

import httpx
from isal import igzip

from connectors.sinks.base import EventHead, Limits, Reply, SendResult, StopCheck, never
from schemas.destinations import Destination
from schemas.platforms import PlatformSettings

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class UrlPathsRedacted(logging.Filter):
    """httpx logs each request's URL at INFO, and a Sumo Logic source URL carries its
    secret in the path. The CLI keeps httpx at WARNING; this filter makes it safe at any
    level, for whoever embeds the connectors: a URL is logged as its origin only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                f"{a.scheme}://{a.netloc.decode()}/…" if isinstance(a, httpx.URL) else a
                for a in record.args
            )
        return True


logging.getLogger("httpx").addFilter(UrlPathsRedacted())


def client(verify: bool = True) -> httpx.Client:
    return httpx.Client(
        timeout=TIMEOUT,
        verify=verify,
        http2=False,
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        headers={"User-Agent": "authtrail-connector/1"},
    )


def compress(body: bytes, enabled: bool) -> tuple[bytes, dict[str, str]]:
    if not enabled:
        return body, {}
    # ISA-L level 1: zlib level 1's ratio on our JSON (about 8:1) at a quarter of its CPU.
    return igzip.compress(body, compresslevel=1), {"Content-Encoding": "gzip"}


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def post(
    http: httpx.Client, url: str, body: bytes, headers: dict[str, str]
) -> httpx.Response | SendResult:
    """POSTs; a transport failure is returned as a ``retry`` result."""
    try:
        return http.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return SendResult("retry", Reply(None, "timeout", "the platform did not answer in time"))
    except httpx.TransportError as exc:
        return SendResult("retry", Reply(None, "connection", type(exc).__name__))


def classify_status(response: httpx.Response, code: str = "", message: str = "") -> SendResult:
    """The generic rules; platforms refine them (Splunk's codes, EventBridge's entries)."""
    status = response.status_code
    reply = Reply(status, code, message or response.text[:300])
    if 200 <= status < 300:
        return SendResult("ok", reply)
    if status in (408, 429) or status >= 500:
        return SendResult("retry", reply, retry_after(response.headers))
    if status == 413:
        return SendResult("too_large", reply)
    if status in (401, 403):
        return SendResult("auth", reply)
    return SendResult("invalid", reply)


Framing = Literal["json_array", "lines"]


def frame(entries: Sequence[bytes], framing: Framing) -> bytes:
    """One request body: a JSON array of the entries, or one entry per line."""
    if framing == "json_array":
        return b"[" + b",".join(entries) + b"]"
    return b"\n".join(entries)


class HttpSink:
    """The shape every HTTP platform shares. A subclass sets ``platform``, ``limits``,
    ``framing`` and ``settings_type``, and implements ``request`` (URL and headers, from
    the settings) and ``encode``; it overrides ``request_headers`` when a request carries
    headers of its own (a signature), ``classify`` when the platform's replies
    carry codes of their own, ``accepted`` when a 2xx is not yet delivery (Splunk's
    indexer acknowledgment), and ``healthcheck`` when the platform offers one.

    ``send`` is called from several threads at once: a sink keeps no per-request state."""

    platform: str
    limits: Limits
    framing: Framing = "json_array"
    settings_type: ClassVar[type[PlatformSettings]]
    verify_tls: bool = True

    def __init__(self, destination: Destination) -> None:
        settings = destination.settings
        if not isinstance(settings, self.settings_type):
            raise TypeError(f"{self.platform} sink built for a {destination.platform} destination")
        self.destination_id = destination.id
        self.configure(settings)
        self.url, self.headers = self.request(settings)
        self._http = client(verify=self.verify_tls)

    def configure(self, settings: PlatformSettings) -> None:
        """Keeps what ``encode`` needs from the settings (called before ``request``)."""

    def request(self, settings: PlatformSettings) -> tuple[str, dict[str, str]]:
        """The URL every batch is POSTed to and the headers it carries (credentials
        included: they never leave this object but in the request)."""
        raise NotImplementedError

    def encode(self, head: EventHead, raw: bytes) -> bytes:
        raise NotImplementedError

    def size(self, entry: bytes) -> int:
        return len(entry)

    def request_headers(self, body: bytes) -> dict[str, str]:
        """Headers of one request that depend on its body or its time (a signature)."""
        return {}

    def classify(self, response: httpx.Response) -> SendResult:
        """The platform's reply as a ``SendResult``: the generic status rules."""
        return classify_status(response)

    def accepted(self, response: httpx.Response, should_stop: StopCheck) -> SendResult | None:
        """After a reply classified ``ok``: a different result when acceptance is not yet
        delivery, else None."""
        return None

    def send(self, entries: Sequence[bytes], should_stop: StopCheck = never) -> SendResult:
        body, encoding = compress(frame(entries, self.framing), self.limits.gzip)
        headers = {**self.headers, **encoding, **self.request_headers(body)}
        response = post(self._http, self.url, body, headers)
        if isinstance(response, SendResult):
            return response
        result = self.classify(response)
        if result.kind == "ok":
            return self.accepted(response, should_stop) or result
        return result

    def get(self, url: str, classify: Callable[[httpx.Response], SendResult]) -> SendResult:
        """A healthcheck's GET, with the sink's headers; a transport failure is ``retry``."""
        try:
            response = self._http.get(url, headers=self.headers)
        except httpx.HTTPError as exc:
            return SendResult("retry", Reply(None, "connection", type(exc).__name__))
        return classify(response)

    def healthcheck(self) -> SendResult:
        return SendResult("ok", Reply(None, "", f"{self.platform} offers no healthcheck"))

    def close(self) -> None:
        self._http.close()
