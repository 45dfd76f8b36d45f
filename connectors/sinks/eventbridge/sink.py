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
    limits = Limits(
        max_entries=encoder.MAX_ENTRIES,
        max_bytes=encoder.MAX_ENTRIES * encoder.MAX_ENTRY_BYTES,
        max_entry_bytes=encoder.MAX_ENTRY_BYTES,
        gzip=False,
    )

    def __init__(self, destination: Destination) -> None:
        settings = destination.settings
        assert isinstance(settings, EventBridgeSettings)
        self._settings = settings
        self._client: Any = client.make_client(settings)

    def encode(self, head: EventHead, raw: bytes) -> bytes:
        return encoder.encode(self._settings, head, raw)

    def send(self, entries: Sequence[bytes], should_stop: StopCheck = never) -> SendResult:
        states: dict[int, retry.EntryState] = {}
        replies: dict[int, Reply] = {}
        request: list[dict[str, Any]] = []
        positions: list[int] = []
        total = 0
        for position, body in enumerate(entries):
            entry = encoder.decode(body)
            if entry is None:
                states[position] = "invalid"
                replies[position] = Reply(None, "undecodable", "not a PutEvents entry")
                continue
            total += encoder.aws_entry_size(entry)
            request.append(encoder.to_boto(entry))
            positions.append(position)
        if total > encoder.MAX_REQUEST_BYTES and len(request) > 1:
            return SendResult(
                "too_large",
                Reply(
                    None,
                    "too_large",
                    f"entries total {total} bytes by AWS's size rule; "
                    f"one PutEvents call takes at most {encoder.MAX_REQUEST_BYTES}",
                ),
            )
        if not request:
            return retry.partial(states, replies, len(entries), None)
        try:
            response = self._client.put_events(Entries=request)
        except (aws_errors.ClientError, aws_errors.BotoCoreError) as exc:
            return retry.classify_error(exc, self._settings.event_bus)
        outcome = retry.classify_response(response, len(request))
        if not states:
            return outcome
        # Some entries never left: merge what AWS said about the others.
        if outcome.kind not in ("ok", "partial"):
            return outcome
        for index, position in enumerate(positions):
            states[position] = outcome.entries.get(index, "ok")
            if index in outcome.entry_replies:
                replies[position] = outcome.entry_replies[index]
        return retry.partial(states, replies, len(entries), 200)

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
