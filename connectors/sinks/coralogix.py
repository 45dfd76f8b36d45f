"""Coralogix log ingestion (``/logs/v1/singles``).

Each event becomes one entry: ``applicationName``, ``subsystemName``, ``computerName`` =
authtrail, ``severity`` 5 (error) for failures and 3 (info) for successes, ``category`` =
the event key, ``text`` = the normalized event as JSON text, ``timestamp`` = when it
happened (ms). At most 2 MB per request. Coralogix documents no status codes: 429 and 5xx
are retried, 401/403 are credentials, other 4xx refuse the data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.sinks import http
from connectors.sinks.base import (
    EventHead,
    Limits,
    Reply,
    SendResult,
    StopCheck,
    embed,
    json_string,
    never,
)
from schemas.destinations import CORALOGIX_DOMAINS, CoralogixSettings, Destination


class CoralogixSink:
    platform = "coralogix"
    # Coralogix does not document gzip for this endpoint: sent plain.
    limits = Limits(max_entries=3000, max_bytes=2_000_000, max_entry_bytes=1_000_000, gzip=False)

    def __init__(self, destination: Destination) -> None:
        settings = destination.settings
        assert isinstance(settings, CoralogixSettings)
        self._settings = settings
        base = settings.endpoint or f"https://ingress.{CORALOGIX_DOMAINS[settings.domain]}"
        self._url = f"{base}/logs/v1/singles"
        self._headers = {
            "Authorization": f"Bearer {settings.api_key.get_secret_value()}",
            "Content-Type": "application/json",
        }
        self._http = http.client()

    def encode(self, head: EventHead, raw: bytes) -> bytes:
        entry: dict[str, Any] = {
            "applicationName": self._settings.application,
            "subsystemName": self._settings.subsystem,
            "computerName": "authtrail",
            "severity": 5 if head.outcome == "failure" else 3,
            "category": head.event_key,
        }
        seconds = head.occurred_seconds()
        if seconds is not None:
            entry["timestamp"] = seconds * 1000
        return embed(entry, "text", json_string(raw))

    def send(self, entries: Sequence[bytes], should_stop: StopCheck = never) -> SendResult:
        body = b"[" + b",".join(entries) + b"]"
        response = http.post(self._http, self._url, body, self._headers)
        if isinstance(response, SendResult):
            return response
        return http.classify_status(response)

    def healthcheck(self) -> SendResult:
        return SendResult("ok", Reply(None, "", "Coralogix offers no healthcheck"))

    def close(self) -> None:
        self._http.close()
