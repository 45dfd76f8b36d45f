"""Sumo Logic HTTP Logs source.

Each event is one line of JSON (the normalized event); lines are sent newline-delimited,
gzipped, at most 1 MB per request uncompressed. The source URL is the secret; category,
name, host and fields go in the ``X-Sumo-*`` headers. Sumo splits a message over 64 KB, so
a larger event is dead-lettered rather than arriving in pieces. 429 (data dropped: it must
be re-sent), 408, 503 and 504 are retried honouring Retry-After; 401 is credentials."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from connectors.sinks import http
from connectors.sinks.base import EventHead, Limits, Reply, SendResult, StopCheck, never
from schemas.destinations import Destination, SumoLogicSettings


class SumoLogicSink:
    platform = "sumologic"
    limits = Limits(max_entries=10_000, max_bytes=1_000_000, max_entry_bytes=65_536)

    def __init__(self, destination: Destination) -> None:
        settings = destination.settings
        assert isinstance(settings, SumoLogicSettings)
        url = settings.url.get_secret_value()
        self._url = f"{settings.endpoint}{urlsplit(url).path}" if settings.endpoint else url
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        for header, value in (
            ("X-Sumo-Category", settings.category),
            ("X-Sumo-Name", settings.name),
            ("X-Sumo-Host", settings.host),
            ("X-Sumo-Fields", settings.fields or None),
        ):
            if value:
                self._headers[header] = value
        self._http = http.client()

    def encode(self, head: EventHead, raw: bytes) -> bytes:
        return raw

    def send(self, entries: Sequence[bytes], should_stop: StopCheck = never) -> SendResult:
        body, encoding = http.compress(b"\n".join(entries), self.limits.gzip)
        response = http.post(self._http, self._url, body, {**self._headers, **encoding})
        if isinstance(response, SendResult):
            return response
        return http.classify_status(response)

    def healthcheck(self) -> SendResult:
        # Sumo has no check that does not ingest: an empty POST would be a log line.
        return SendResult("ok", Reply(None, "", "Sumo Logic offers no healthcheck"))

    def close(self) -> None:
        self._http.close()
