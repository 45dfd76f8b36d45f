"""Webhook: any HTTP(S) endpoint, signed by the Standard Webhooks specification.

Each event is the normalized event as JSON, sent as it is. A request is a JSON array of
events (``format`` = ``json_array``, ``Content-Type: application/json``) or one event a
line (``ndjson``, ``application/x-ndjson``), of at most ``max_events`` events and
``max_bytes`` bytes, never compressed (the signature covers the exact bytes sent), with
the configured extra headers and the three signature headers of
``schemas.standard_webhooks`` (a retried batch keeps its ``webhook-id``; each attempt is
signed at its own time).

Replies: 2xx delivered; 408, 429, 5xx and no reply retried (honouring Retry-After); 413
split; 401, 403 and 410 (the endpoint is gone) stop the destination as ``auth_failed``
until the endpoint takes requests again; other 4xx refuse the data: the batch is bisected
and the events at fault dead-lettered."""

from __future__ import annotations

import time
from typing import ClassVar

import httpx

from connectors.sinks.base import EventHead, Limits, Reply, SendResult
from connectors.sinks.http import HttpSink, classify_status
from schemas.platforms import PlatformSettings, WebhookSettings

CONTENT_TYPES: dict[str, str] = {
    "json_array": "application/json",
    "ndjson": "application/x-ndjson",
}


class WebhookSink(HttpSink):
    platform = "webhook"
    # Per destination (``configure``); these are the defaults.
    limits = Limits(max_entries=100, max_bytes=1_048_576, max_entry_bytes=1_048_574, gzip=False)
    settings_type: ClassVar[type[PlatformSettings]] = WebhookSettings

    def configure(self, settings: PlatformSettings) -> None:
        assert isinstance(settings, WebhookSettings)
        self._settings = settings
        self.verify_tls = settings.verify_tls
        self.framing = "lines" if settings.format == "ndjson" else "json_array"
        # A lone event must fit a request: less the array's brackets.
        self.limits = Limits(
            max_entries=settings.max_events,
            max_bytes=settings.max_bytes,
            max_entry_bytes=settings.max_bytes - 2,
            gzip=False,
        )

    def request(self, settings: PlatformSettings) -> tuple[str, dict[str, str]]:
        assert isinstance(settings, WebhookSettings)
        headers = {**settings.extra_headers(), "Content-Type": CONTENT_TYPES[settings.format]}
        return settings.endpoint or settings.url, headers

    def encode(self, head: EventHead, raw: bytes) -> bytes:
        return raw

    def request_headers(self, body: bytes) -> dict[str, str]:
        return self._settings.signature_headers(self.destination_id, body, time.time())

    def classify(self, response: httpx.Response) -> SendResult:
        if response.status_code == 410:
            return SendResult(
                "auth", Reply(410, "gone", "the endpoint says it is gone (410): fix the URL")
            )
        return classify_status(response)


# The sink of the platform registered as "webhook" (connectors.sinks.build_sink).
SINK = WebhookSink
