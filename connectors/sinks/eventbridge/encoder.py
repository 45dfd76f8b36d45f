"""EventBridge's entries: how an event becomes a PutEvents entry, and how big AWS counts it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.sinks.base import EventHead
from schemas.platforms import EventBridgeSettings

MAX_ENTRIES = 10
MAX_ENTRY_BYTES = 256_000  # AWS says 256 KB (by its size rule); a little under 262,144
MAX_REQUEST_BYTES = 256_000  # the same limit holds for the entries of one call together
MAX_DETAIL_TYPE_CHARS = 128
TIME_BYTES = 14  # what AWS counts for a Time, whatever its text


@dataclass(frozen=True, slots=True)
class PutEventsEntry:
    """One PutEvents request entry as boto3 takes it, and its size by AWS's rule (what
    ``Delivery`` checks against the limits)."""

    request: dict[str, Any]
    size: int


def encode(settings: EventBridgeSettings, head: EventHead, raw: bytes) -> PutEventsEntry:
    """The PutEvents entry for one normalized event. Raises ``UnicodeDecodeError`` when
    ``raw`` is not UTF-8 (it always is, as the pipeline writes it)."""
    request: dict[str, Any] = {
        "Source": settings.source,
        "DetailType": detail_type(head),
        "EventBusName": settings.event_bus,
        "Resources": [],
    }
    moment = head.occurred_utc()
    if moment is not None:
        # Milliseconds, as the platforms' timestamps elsewhere.
        request["Time"] = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    size = aws_entry_size(request) + len(raw)  # Detail: the event's UTF-8 bytes
    request["Detail"] = raw.decode()
    return PutEventsEntry(request, size)


def aws_entry_size(entry: dict[str, Any]) -> int:
    """An entry's size by AWS's rule: Time 14 bytes when set; the UTF-8 bytes of Source,
    DetailType, Detail and each of Resources."""
    size = TIME_BYTES if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        value = entry.get(key)
        if isinstance(value, str):
            size += len(value.encode())
    for resource in entry.get("Resources") or ():
        if isinstance(resource, str):
            size += len(resource.encode())
    return size


def detail_type(head: EventHead) -> str:
    text = head.description.strip() or head.event_key
    return (text or "authtrail event")[:MAX_DETAIL_TYPE_CHARS]
