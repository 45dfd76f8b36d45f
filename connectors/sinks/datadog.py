"""Datadog Logs API v2.

Each event becomes one log: ``message`` = the log text, ``ddsource`` = source (authtrail),
``service``, ``hostname`` = authtrail, ``status`` = info or warn (failures), ``ddtags`` =
``account:<id>,event:<key>,outcome:<outcome>`` plus the configured tags, ``timestamp`` =
when it happened (ms), and the whole normalized event as attributes under ``authtrail``.
Requests: at most 1,000 logs and 5 MB uncompressed, gzipped; 202 is success."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.sinks import http
from connectors.sinks.base import EventHead, Limits, Reply, SendResult, StopCheck, embed, never
from schemas.destinations import DatadogSettings, Destination


class DatadogSink:
    platform = "datadog"
    limits = Limits(max_entries=1000, max_bytes=5_000_000, max_entry_bytes=1_000_000)

    def __init__(self, destination: Destination) -> None:
        settings = destination.settings
        assert isinstance(settings, DatadogSettings)
        self._settings = settings
        base = settings.endpoint or f"https://http-intake.logs.{settings.site}"
        self._url = f"{base}/api/v2/logs"
        self._validate_url = (
            None if settings.endpoint else (f"https://api.{settings.site}/api/v1/validate")
        )
        self._headers = {
            "DD-API-KEY": settings.api_key.get_secret_value(),
            "Content-Type": "application/json",
        }
        self._http = http.client()
        self._extra_tags = f",{settings.tags}" if settings.tags else ""

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

    def send(self, entries: Sequence[bytes], should_stop: StopCheck = never) -> SendResult:
        body, encoding = http.compress(b"[" + b",".join(entries) + b"]", self.limits.gzip)
        response = http.post(self._http, self._url, body, {**self._headers, **encoding})
        if isinstance(response, SendResult):
            return response
        return http.classify_status(response)

    def healthcheck(self) -> SendResult:
        if self._validate_url is None:
            return SendResult("ok", Reply(None, "", "no healthcheck through a custom endpoint"))
        try:
            response = self._http.get(self._validate_url, headers=self._headers)
        except Exception as exc:
            return SendResult("retry", Reply(None, "connection", type(exc).__name__))
        return http.classify_status(response)

    def close(self) -> None:
        self._http.close()
