"""Raw record -> ``NormalizedEvent`` or ``Rejection``. Pure: no I/O, never raises on input.

Accepted shapes (documented in the README) are mapped onto the v1 contract first:

===========================  =====================================
alternative field            v1 field
===========================  =====================================
``timestamp``, ``ts``        ``occurred_at`` (RFC 3339 or epoch s/ms/µs/ns)
``account_id``,              ``account.id``, ``account.name``
``account_name``
``user_id``, ``user_email``  ``actor.id``, ``actor.email``
``ip_address``,              ``ip``
``client_ip``
``userAgent``                ``user_agent``
``traceId``                  ``trace_id``
``"account": "acc_1"``       ``account.id``
``"actor": "a@b.io"``        ``actor.email`` (without ``@``: ``actor.id``)
===========================  =====================================

When both spellings are present, the v1 field wins.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from pipeline.enrich import Enricher
from schemas.catalogue import describe, implied_outcome
from schemas.events import NormalizedEvent, RawEventV1

# Namespace of content-derived event ids (uuid5 of the event's canonical JSON).
EVENT_ID_NAMESPACE = uuid.UUID("6f1c3f0e-6a0e-4b8e-9a51-2f4d0c1b7a11")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(hours=24)
# Deeper JSON is refused: it serves no audit purpose and serializers cap recursion.
MAX_DEPTH = 32

_ALIASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("occurred_at", ("timestamp", "ts")),
    ("ip", ("ip_address", "client_ip")),
    ("user_agent", ("userAgent",)),
    ("trace_id", ("traceId",)),
)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record cannot be made valid. ``field`` names the offending field, if one."""

    reason: str
    field: str = ""


def _canonical(obj: dict[str, Any]) -> dict[str, Any]:
    """Maps the accepted alternative shapes onto v1 field names (a new dict)."""
    out = dict(obj)
    for target, aliases in _ALIASES:
        for alias in aliases:
            if alias in out:
                value = out.pop(alias)
                if out.get(target) is None:
                    out[target] = value
    flat_account = {"id": out.pop("account_id", None), "name": out.pop("account_name", None)}
    if out.get("account") is None and any(v is not None for v in flat_account.values()):
        out["account"] = {k: v for k, v in flat_account.items() if v is not None}
    elif isinstance(out.get("account"), str):
        out["account"] = {"id": out["account"]}
    flat_actor = {"id": out.pop("user_id", None), "email": out.pop("user_email", None)}
    if out.get("actor") is None and any(v is not None for v in flat_actor.values()):
        out["actor"] = {k: v for k, v in flat_actor.items() if v is not None}
    elif isinstance(out.get("actor"), str):
        actor = out["actor"]
        out["actor"] = {"email": actor} if "@" in actor else {"id": actor}
    return out


def _first_error(exc: ValidationError) -> Rejection:
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    for error in errors[:3]:
        loc = ".".join(str(p) for p in error["loc"]) or "event"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {message}")
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    field = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
    return Rejection("; ".join(parts) + more, field)


def _too_deep(obj: object, limit: int = MAX_DEPTH) -> bool:
    level: list[object] = [obj]
    for _ in range(limit + 1):
        nested: list[object] = []
        for item in level:
            if isinstance(item, dict):
                nested.extend(item.values())
            elif isinstance(item, list):
                nested.extend(item)
        if not nested:
            return False
        level = nested
    return True


def derive_event_id(obj: dict[str, Any]) -> str:
    """A deterministic id for an event sent without one: the same content (whatever its
    key order or white space) always gets the same id, so a re-sent event is recognised."""
    canonical = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, canonical.decode()))


class Normalizer:
    """Turns one raw Kafka record value into a ``NormalizedEvent`` or a ``Rejection``.

    ``received_at`` is the record's broker timestamp, so re-processing the same record
    gives the same result (the pipeline is deterministic under redelivery)."""

    def __init__(self, enricher: Enricher, max_event_bytes: int = 262_144) -> None:
        self._enricher = enricher
        self._max_bytes = max_event_bytes

    def normalize(self, value: bytes | None, received_at: datetime) -> NormalizedEvent | Rejection:
        if not value:
            return Rejection("empty record")
        if len(value) > self._max_bytes:
            return Rejection(f"event is {len(value)} bytes; the limit is {self._max_bytes}")
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return Rejection(f"not valid JSON (UTF-8): {exc}")
        if not isinstance(obj, dict):
            return Rejection(f"an event must be a JSON object, not {type(obj).__name__}")
        if _too_deep(obj):
            return Rejection(f"event is nested deeper than {MAX_DEPTH} levels")
        try:
            event = RawEventV1.model_validate(_canonical(obj))
        except ValidationError as exc:
            return _first_error(exc)
        if event.occurred_at < EARLIEST:
            return Rejection("occurred_at is before 2000-01-01", "occurred_at")
        if event.occurred_at > received_at + MAX_CLOCK_SKEW:
            return Rejection("occurred_at is more than 24 h after it was received", "occurred_at")
        return self._enrich(event, obj, value, received_at)

    def _enrich(
        self, event: RawEventV1, obj: dict[str, Any], value: bytes, received_at: datetime
    ) -> NormalizedEvent:
        actor = event.actor
        actor_id = actor.id if actor and actor.id else ""
        actor_email = actor.email if actor and actor.email else ""
        if actor and actor.type:
            actor_type = actor.type
        else:
            actor_type = "user" if (actor_id or actor_email) else "anonymous"
        ip = event.ip or ""
        ua = self._enricher.user_agent(event.user_agent or "")
        return NormalizedEvent.model_construct(
            schema_version=1,
            event_id=event.event_id or derive_event_id(obj),
            event_key=event.event_key,
            description=describe(event.event_key),
            outcome=event.outcome or implied_outcome(event.event_key),
            occurred_at=event.occurred_at,
            received_at=received_at,
            account_id=event.account.id if event.account else "",
            account_name=(event.account.name or "") if event.account else "",
            actor_id=actor_id,
            actor_email=actor_email,
            actor_type=actor_type,
            actor_display=actor_email or actor_id or "anonymous",
            ip=ip,
            country=self._enricher.country(ip),
            user_agent=event.user_agent or "",
            ua_browser=ua.browser,
            ua_os=ua.os,
            ua_device=ua.device,
            trace_id=event.trace_id or "",
            reason=event.reason or "",
            attributes=event.attributes or {},
            raw=value.decode("utf-8"),
        )
