"""Datadog Logs API v2.

Each event becomes one log: ``message`` = the log text, ``ddsource`` = source (authtrail),
``service``, ``hostname`` = authtrail, ``status`` = info or warn (failures), ``ddtags`` =
``account:<id>,event:<key>,outcome:<outcome>`` plus the configured tags, ``timestamp`` =
when it happened (ms), and the whole normalized event as attributes under ``authtrail``.
Requests: at most 1,000 logs and 5 MB uncompressed, gzipped; 202 is success."""

from __future__ import annotations

from typing import ClassVar

from connectors.sinks.base import EventHead, Limits, Reply, SendResult, embed
from connectors.sinks.http import HttpSink, classify_status
from schemas.platforms import DatadogSettings, PlatformSettings


class DatadogSink(HttpSink):
    platform = "datadog"
    limits = Limits(max_entries=1000, max_bytes=5_000_000, max_entry_bytes=1_000_000)
    settings_type: ClassVar[type[PlatformSettings]] = DatadogSettings

    def configure(self, settings: PlatformSettings) -> None:
        assert isinstance(settings, DatadogSettings)
        self._settings = settings
        self._extra_tags = f",{settings.tags}" if settings.tags else ""
        self._validate_url = (
            None if settings.endpoint else f"https://api.{settings.site}/api/v1/validate"
        )

    def request(self, settings: PlatformSettings) -> tuple[str, dict[str, str]]:
        assert isinstance(settings, DatadogSettings)
        base = settings.endpoint or f"https://http-intake.logs.{settings.site}"
        headers = {
            "DD-API-KEY": settings.api_key.get_secret_value(),
            "Content-Type": "application/json",
        }
        return f"{base}/api/v2/logs", headers

    def encode(self, head: EventHead, raw: bytes) -> bytes:
        seconds = head.occurred_seconds()
        log = {
            "message": head.description,
            "ddsource": self._settings.source,
            "service": self._settings.service,
            "hostname": "authtrail",
            "status": "warn" if head.outcome == "failure" else "info",
            "ddtags": f"account:{head.account_id or 'none'},event:{head.event_key},"
            f"outcome:{head.outcome}{self._extra_tags}",
            "timestamp": None if seconds is None else round(seconds * 1000),
        }
        return embed(log, "authtrail", raw)

    def healthcheck(self) -> SendResult:
        if self._validate_url is None:
            return SendResult("ok", Reply(None, "", "no healthcheck through a custom endpoint"))
        return self.get(self._validate_url, classify_status)


# The sink of the platform registered as "datadog" (connectors.sinks.build_sink).
SINK = DatadogSink
