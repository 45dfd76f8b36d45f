"""What the HTTP platforms share: one pooled httpx client per sink, gzip, and turning
transport failures and status codes into ``SendResult`` kinds by the platforms' documented
contracts (retry 408, 429 and 5xx honouring Retry-After, RFC 9110 section 10.2.3; split on
413; 401/403 are credentials; other 4xx blame the data)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from isal import igzip

from connectors.sinks.base import Reply, SendResult

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
