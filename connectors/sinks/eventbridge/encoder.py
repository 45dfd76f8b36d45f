"""EventBridge's entries: how an event becomes a PutEvents entry, and how big AWS counts it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.sinks.base import EventHead, embed, json_string
from schemas.events import rfc3339_ms
from schemas.platforms import EventBridgeSettings

MAX_ENTRIES = 10
MAX_ENTRY_BYTES = 256_000  # AWS says 256 KB (by its size rule); a little under 262,144
MAX_REQUEST_BYTES = 256_000  # the same limit holds for the entries of one call together
MAX_DETAIL_TYPE_CHARS = 128
TIME_BYTES = 14  # what AWS counts for a Time, whatever its text


def encode(settings: EventBridgeSettings, head: EventHead, raw: bytes) -> bytes:
    """The PutEvents entry (JSON) for one normalized event; never shorter than its AWS
    size, so a per-entry size check on the encoded bytes holds for AWS too."""
    entry: dict[str, Any] = {
        "Source": settings.source,
        "DetailType": detail_type(head),
        "EventBusName": settings.event_bus,
        "Resources": [],
    }
    moment = head.occurred_utc()
    if moment is not None:
        entry["Time"] = rfc3339_ms(moment)
    body = embed(entry, "Detail", json_string(raw))
    size = aws_entry_size(entry) + len(raw)  # Detail: the event's UTF-8 bytes
    if len(body) < size:
        # Never the case with this encoding (Detail's escaping only adds bytes); kept so
        # Delivery's per-entry check can never pass an entry AWS counts as larger.
        body += b" " * (size - len(body))
    return body


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


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def decode(body: bytes) -> dict[str, Any] | None:
    try:
        entry = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("Detail"), str):
        return None
    return entry


def to_boto(entry: dict[str, Any]) -> dict[str, Any]:
    request = {k: v for k, v in entry.items() if k != "Time"}
    moment = parse_time(entry.get("Time"))
    if moment is not None:
        request["Time"] = moment
    return request
