"""Splunk HTTP Event Collector.

Each event becomes one HEC event object: ``time`` = when it happened (epoch seconds with
ms), ``host`` (default ``authtrail``), ``source``, ``sourcetype``, ``index`` when set,
``event`` = the normalized event, and indexed ``fields`` account_id, event_key, outcome.
Objects are sent concatenated (newline-separated, no array), gzipped, at most 1 MB per
request (Splunk Cloud's common limit). Replies carry a code: 0 success; 9 busy and 8
internal error are retried; 1-4 are credentials; 5-7 and 10-14 refuse the data. With
indexer acknowledgment on, a request counts as delivered only once its ackId is
acknowledged (polled with backoff for up to ``ACK_TIMEOUT_S``; a batch not acknowledged by
then is sent again: duplicates, never loss). The poll notices a stop within a quarter
second and gives the batch up as not yet delivered."""

from __future__ import annotations

import time
import uuid
from typing import Any, ClassVar

import httpx
import orjson

from connectors.sinks import http
from connectors.sinks.base import EventHead, Limits, Reply, SendResult, StopCheck, embed, pause
from connectors.sinks.http import Framing, HttpSink
from infra.backoff import Backoff
from schemas.platforms import PlatformSettings, SplunkSettings

ACK_TIMEOUT_S = 300.0
# Polls at 0.2 s, 0.4 s, ... then every 5 s: HEC indexes within seconds when healthy.
ACK_POLL = Backoff(0.2, 5.0, jitter=False)
_RETRY_CODES = {8, 9}
_AUTH_CODES = {1, 2, 3, 4}


class SplunkSink(HttpSink):
    platform = "splunk"
    limits = Limits(max_entries=5000, max_bytes=1_000_000, max_entry_bytes=1_000_000)
    framing: Framing = "lines"
    settings_type: ClassVar[type[PlatformSettings]] = SplunkSettings

    def configure(self, settings: PlatformSettings) -> None:
        assert isinstance(settings, SplunkSettings)
        self._settings = settings
        self.verify_tls = settings.verify_tls
        base = settings.endpoint or settings.url
        self._ack_url = f"{base}/services/collector/ack"
        self._health_url = f"{base}/services/collector/health"

    def request(self, settings: PlatformSettings) -> tuple[str, dict[str, str]]:
        assert isinstance(settings, SplunkSettings)
        headers = {
            "Authorization": f"Splunk {settings.token.get_secret_value()}",
            "Content-Type": "application/json",
        }
        if settings.indexer_ack:
            headers["X-Splunk-Request-Channel"] = str(uuid.uuid4())
        return f"{settings.endpoint or settings.url}/services/collector/event", headers

    def encode(self, head: EventHead, raw: bytes) -> bytes:
        entry: dict[str, Any] = {
            "time": head.occurred_seconds(),
            "host": self._settings.host or "authtrail",
            "source": self._settings.source,
            "sourcetype": self._settings.sourcetype,
            "fields": {
                "account_id": head.account_id,
                "event_key": head.event_key,
                "outcome": head.outcome,
            },
        }
        if self._settings.index:
            entry["index"] = self._settings.index
        return embed(entry, "event", raw)

    def classify(self, response: httpx.Response) -> SendResult:
        return classify(response)

    def accepted(self, response: httpx.Response, should_stop: StopCheck) -> SendResult | None:
        if not self._settings.indexer_ack:
            return None
        ack_id = _json(response).get("ackId")
        return None if ack_id is None else self._wait_for_ack(int(ack_id), should_stop)

    def _wait_for_ack(self, ack_id: int, should_stop: StopCheck) -> SendResult:
        deadline = time.monotonic() + ACK_TIMEOUT_S
        attempt = 0
        while time.monotonic() < deadline and not should_stop():
            response = http.post(
                self._http, self._ack_url, orjson.dumps({"acks": [ack_id]}), self.headers
            )
            acked = (
                isinstance(response, httpx.Response)
                and response.status_code == 200
                and _json(response).get("acks", {}).get(str(ack_id)) is True
            )
            if acked:
                return SendResult("ok", Reply(200, "0", "indexed"))
            if not pause(ACK_POLL.delay(attempt), should_stop):
                break
            attempt += 1
        if should_stop():
            return SendResult("retry", Reply(200, "ack-interrupted", "stopped waiting for ack"))
        return SendResult(
            "retry", Reply(200, "ack-timeout", f"not indexed within {ACK_TIMEOUT_S:.0f}s")
        )

    def healthcheck(self) -> SendResult:
        return self.get(self._health_url, classify)


def classify(response: httpx.Response) -> SendResult:
    """HEC's reply codes first, the HTTP status where there is none."""
    body = _json(response)
    code = body.get("code")
    text = str(body.get("text", ""))[:300]
    if not isinstance(code, int) or response.status_code == 413:
        return http.classify_status(response, "", text)
    reply = Reply(response.status_code, str(code), text)
    if code in (0, 17):
        return SendResult("ok", reply)
    if code in _RETRY_CODES or response.status_code >= 500 or response.status_code == 429:
        return SendResult("retry", reply, http.retry_after(response.headers))
    if code in _AUTH_CODES:
        return SendResult("auth", reply)
    return SendResult("invalid", reply)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


# The sink of the platform registered as "splunk" (connectors.sinks.build_sink).
SINK = SplunkSink
