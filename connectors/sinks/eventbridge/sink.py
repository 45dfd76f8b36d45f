"""EventBridge's service: one PutEvents call per batch through boto3."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore import exceptions as aws_errors  # type: ignore[import-untyped]

from connectors.sinks.base import EventHead, Limits, Reply, SendResult, StopCheck, never
from connectors.sinks.eventbridge import client, encoder, retry
from schemas.destinations import Destination
from schemas.platforms import EventBridgeSettings


class EventBridgeSink:
    platform = "eventbridge"
    # AWS's limits are on entries' sizes by its own rule, alone and together: no framing.
    limits = Limits(
        max_entries=encoder.MAX_ENTRIES,
        max_bytes=encoder.MAX_REQUEST_BYTES,
        max_entry_bytes=encoder.MAX_ENTRY_BYTES,
        gzip=False,
        separator_bytes=0,
        framing_bytes=0,
    )

    def __init__(self, destination: Destination) -> None:
        settings = destination.settings
        if not isinstance(settings, EventBridgeSettings):
            raise TypeError(f"eventbridge sink built for a {destination.platform} destination")
        self._settings = settings
        self._client: Any = client.make_client(settings)

    def encode(self, head: EventHead, raw: bytes) -> encoder.PutEventsEntry:
        return encoder.encode(self._settings, head, raw)

    def size(self, entry: encoder.PutEventsEntry) -> int:
        return entry.size

    def send(
        self, entries: Sequence[encoder.PutEventsEntry], should_stop: StopCheck = never
    ) -> SendResult:
        try:
            response = self._client.put_events(Entries=[entry.request for entry in entries])
        except (aws_errors.ClientError, aws_errors.BotoCoreError) as exc:
            return retry.classify_error(exc, self._settings.event_bus)
        return retry.classify_response(response, len(entries))

    def healthcheck(self) -> SendResult:
        try:
            self._client.describe_event_bus(Name=self._settings.event_bus)
        except (aws_errors.ClientError, aws_errors.BotoCoreError) as exc:
            return retry.classify_error(exc, self._settings.event_bus)
        return SendResult("ok", Reply(200, "", f"event bus {self._settings.event_bus} exists"))

    def close(self) -> None:
        self._client.close()


# The sink of the platform registered as "eventbridge" (connectors.sinks.build_sink).
SINK = EventBridgeSink
