"""Coralogix log ingestion (``/logs/v1/singles``).

Each event becomes one entry: ``applicationName``, ``subsystemName``, ``computerName`` =
authtrail, ``severity`` 5 (error) for failures and 3 (info) for successes, ``category`` =
the event key, ``text`` = the normalized event as JSON text, ``timestamp`` = when it
happened (ms). At most 2 MB per request. Coralogix documents no status codes: 429 and 5xx
are retried, 401/403 are credentials, other 4xx refuse the data."""

from __future__ import annotations

from typing import Any, ClassVar

from connectors.sinks.base import EventHead, Limits, embed, json_string
from connectors.sinks.http import HttpSink
from schemas.platforms import CORALOGIX_DOMAINS, CoralogixSettings, PlatformSettings


class CoralogixSink(HttpSink):
    platform = "coralogix"
    # Coralogix does not document gzip for this endpoint: sent plain.
    limits = Limits(max_entries=3000, max_bytes=2_000_000, max_entry_bytes=1_000_000, gzip=False)
    settings_type: ClassVar[type[PlatformSettings]] = CoralogixSettings

    def configure(self, settings: PlatformSettings) -> None:
        assert isinstance(settings, CoralogixSettings)
        self._settings = settings

    def request(self, settings: PlatformSettings) -> tuple[str, dict[str, str]]:
        assert isinstance(settings, CoralogixSettings)
        base = settings.endpoint or f"https://ingress.{CORALOGIX_DOMAINS[settings.domain]}"
        headers = {
            "Authorization": f"Bearer {settings.api_key.get_secret_value()}",
            "Content-Type": "application/json",
        }
        return f"{base}/logs/v1/singles", headers

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


# The sink of the platform registered as "coralogix" (connectors.sinks.build_sink).
SINK = CoralogixSink
