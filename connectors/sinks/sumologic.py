"""Sumo Logic HTTP Logs source.

Each event is one line of JSON (the normalized event); lines are sent newline-delimited,
gzipped, at most 1 MB per request uncompressed. The source URL is the secret; category,
name, host and fields go in the ``X-Sumo-*`` headers. Sumo splits a message over 64 KB, so
a larger event is dead-lettered rather than arriving in pieces. 429 (data dropped: it must
be re-sent), 408, 503 and 504 are retried honouring Retry-After; 401 is credentials."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from connectors.sinks.base import EventHead, Limits
from connectors.sinks.http import Framing, HttpSink
from schemas.platforms import PlatformSettings, SumoLogicSettings


class SumoLogicSink(HttpSink):
    platform = "sumologic"
    limits = Limits(max_entries=10_000, max_bytes=1_000_000, max_entry_bytes=65_536)
    framing: Framing = "lines"
    settings_type: ClassVar[type[PlatformSettings]] = SumoLogicSettings
    # Sumo has no check that does not ingest (an empty POST would be a log line): the
    # default healthcheck, which sends nothing.

    def request(self, settings: PlatformSettings) -> tuple[str, dict[str, str]]:
        assert isinstance(settings, SumoLogicSettings)
        url = settings.url.get_secret_value()
        if settings.endpoint:
            url = f"{settings.endpoint}{urlsplit(url).path}"
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        for header, value in (
            ("X-Sumo-Category", settings.category),
            ("X-Sumo-Name", settings.name),
            ("X-Sumo-Host", settings.host),
            ("X-Sumo-Fields", settings.fields or None),
        ):
            if value:
                headers[header] = value
        return url, headers

    def encode(self, head: EventHead, raw: bytes) -> bytes:
        return raw


# The sink of the platform registered as "sumologic" (connectors.sinks.build_sink).
SINK = SumoLogicSink
