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

When both spellings are present, the v1 field wins (``pipeline.aliases``).

Two paths, one result. The fast path (``pipeline.fast_decode``) decodes the canonical v1
shape straight into typed structs (msgspec) and applies the same field validators as
``RawEventV1``, cached where values repeat (event keys, emails, IPs). Anything it is not
sure of (an alternative shape, a value a validator refuses, deep nesting) goes to the
general path: the pydantic model, which is the contract and writes the error messages. A
test holds both paths to the same output for every input it tries.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson
from pydantic import ValidationError

from pipeline.aliases import canonical
from pipeline.enrich import Enricher
from pipeline.fast_decode import (
    ACTOR_TYPES,
    DECODER,
    OUTCOMES,
    WHITESPACE,
    Refused,
    canonical_only,
    checked_text,
    resolved,
    valid_email,
    valid_event_id,
    valid_event_key,
    valid_ip,
)
from schemas import events as contract
from schemas.catalogue import describe, implied_outcome
from schemas.events import NormalizedEvent, RawEventV1, rfc3339_ms

# Namespace of content-derived event ids (uuid5 of the event's canonical JSON).
EVENT_ID_NAMESPACE = uuid.UUID("6f1c3f0e-6a0e-4b8e-9a51-2f4d0c1b7a11")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(hours=24)
# Deeper JSON is refused: it serves no audit purpose and serializers cap recursion.
MAX_DEPTH = 32


class Rejection(msgspec.Struct, frozen=True, array_like=True, tag="refusal"):
    """Why a record cannot be made valid. ``field`` names the offending field, if one;
    ``older_than_retention`` marks a valid event refused only because the log store would
    delete it at once (counted apart from the other refusals). A msgspec struct: the
    normalizer processes send it back as it is."""

    reason: str
    field: str = ""
    older_than_retention: bool = False


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


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Normalizer:
    """Turns one raw Kafka record value into a ``NormalizedEvent`` or a ``Rejection``.

    ``received_at`` is the record's broker timestamp, so re-processing the same record
    gives the same result (the pipeline is deterministic under redelivery), with one
    exception: the retention cutoff.

    With ``retention_days`` (``AUTHTRAIL_RETENTION_DAYS``, the log store's TTL) a valid
    event whose ``occurred_at`` is before ``clock() - retention_days`` is refused
    (``Rejection.older_than_retention``): stored, it would be acknowledged and counted
    while the TTL deletes it, on insert or at the next merge. ``clock`` returns the
    ingest's "now" as an aware UTC datetime. The cutoff is taken from it rather than from
    ``received_at``: the TTL runs on the store's clock, the broker timestamp is the
    producer's CreateTime (a replay may carry an old one), and a record can wait in the
    topic for days. So a record re-read after its event crossed the cutoff is refused
    although its first copy was stored (which the TTL is then about to delete).
    ``retention_days=None`` skips the check: for events built outside ingest (tests,
    benchmarks), which have no store retention to honour."""

    def __init__(
        self,
        enricher: Enricher,
        max_event_bytes: int = 262_144,
        retention_days: int | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._enricher = enricher
        self._max_bytes = max_event_bytes
        self._retention_days = retention_days
        self._retention = timedelta(days=retention_days or 0)
        self._clock = clock

    def normalize(self, value: bytes | None, received_at: datetime) -> NormalizedEvent | Rejection:
        if not value:
            return Rejection("empty record")
        if len(value) > self._max_bytes:
            return Rejection(f"event is {len(value)} bytes; the limit is {self._max_bytes}")
        # Nesting cannot be deeper than the number of brackets opened.
        if value.count(b"{") + value.count(b"[") <= MAX_DEPTH:
            try:
                return self._fast(value, received_at)
            except (Refused, msgspec.ValidationError, msgspec.DecodeError):
                pass
        return self.normalize_general(value, received_at)

    def _fast(self, value: bytes, received_at: datetime) -> NormalizedEvent | Rejection:
        try:
            text = value.decode("utf-8")  # msgspec lets invalid UTF-8 in strings through
        except UnicodeDecodeError:
            raise Refused from None
        raw = DECODER.decode(value)
        if not canonical_only(raw):
            raw = resolved(raw)
        if raw.occurred_at is None:
            raise Refused
        try:
            occurred_at = contract.parse_timestamp(raw.occurred_at)
        except ValueError:
            raise Refused from None
        account_id = account_name = actor_id = actor_email = actor_type = ""
        if raw.account is not None:
            account_id = checked_text(raw.account.id, contract.MAX_ID)
            name = raw.account.name
            if name is not None:
                account_name = name.strip(WHITESPACE)
                if len(account_name) > contract.MAX_NAME:
                    raise Refused
        if (actor := raw.actor) is not None:
            actor_id = checked_text(actor.id, contract.MAX_ID) if actor.id is not None else ""
            actor_email = valid_email(actor.email) if actor.email is not None else ""
            if actor.type is not None:
                if actor.type not in ACTOR_TYPES:
                    raise Refused
                actor_type = actor.type
        outcome = raw.outcome
        if outcome is not None and outcome not in OUTCOMES:
            raise Refused
        user_agent = raw.user_agent or ""
        reason = raw.reason or ""
        if len(user_agent) > contract.MAX_USER_AGENT or len(reason) > contract.MAX_REASON:
            raise Refused
        event_key = valid_event_key(raw.event_key)
        event_id = (
            valid_event_id(raw.event_id)
            if raw.event_id is not None
            else derive_event_id(orjson.loads(value))
        )
        ip = valid_ip(raw.ip) if raw.ip is not None else ""
        trace_id = (
            ""
            if raw.trace_id is None
            else checked_text(raw.trace_id, contract.MAX_TRACE_ID, contract.check_trace_id)
        )
        # Only a valid event is judged on its time, as the general path does: a field
        # error is reported first.
        rejection = self._time_rejection(occurred_at, received_at)
        if rejection is not None:
            return rejection
        return self._enrich(
            event_id=event_id,
            event_key=event_key,
            outcome=outcome,
            occurred_at=occurred_at,
            received_at=received_at,
            account_id=account_id,
            account_name=account_name,
            actor_id=actor_id,
            actor_email=actor_email,
            actor_type=actor_type,
            ip=ip,
            user_agent=user_agent,
            trace_id=trace_id,
            reason=reason,
            attributes=raw.attributes or {},
            text=text,
        )

    def normalize_general(self, value: bytes, received_at: datetime) -> NormalizedEvent | Rejection:
        """The general path (every accepted shape, the contract's own error messages)."""
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return Rejection(f"not valid JSON (UTF-8): {exc}")
        if not isinstance(obj, dict):
            return Rejection(f"an event must be a JSON object, not {type(obj).__name__}")
        if _too_deep(obj):
            return Rejection(f"event is nested deeper than {MAX_DEPTH} levels")
        try:
            event = RawEventV1.model_validate(canonical(obj))
        except ValidationError as exc:
            return _first_error(exc)
        rejection = self._time_rejection(event.occurred_at, received_at)
        if rejection is not None:
            return rejection
        account, actor = event.account, event.actor
        return self._enrich(
            event_id=event.event_id or derive_event_id(obj),
            event_key=event.event_key,
            outcome=event.outcome,
            occurred_at=event.occurred_at,
            received_at=received_at,
            account_id=account.id if account else "",
            account_name=(account.name or "") if account else "",
            actor_id=(actor.id or "") if actor else "",
            actor_email=(actor.email or "") if actor else "",
            actor_type=(actor.type or "") if actor else "",
            ip=event.ip or "",
            user_agent=event.user_agent or "",
            trace_id=event.trace_id or "",
            reason=event.reason or "",
            attributes=event.attributes or {},
            text=value.decode("utf-8"),  # orjson accepted it: valid UTF-8
        )

    def _enrich(
        self,
        *,
        event_id: str,
        event_key: str,
        outcome: str | None,
        occurred_at: datetime,
        received_at: datetime,
        account_id: str,
        account_name: str,
        actor_id: str,
        actor_email: str,
        actor_type: str,
        ip: str,
        user_agent: str,
        trace_id: str,
        reason: str,
        attributes: dict[str, Any],
        text: str,
    ) -> NormalizedEvent:
        ua = self._enricher.user_agent(user_agent)
        return NormalizedEvent(
            event_id=event_id,
            event_key=event_key,
            description=describe(event_key),
            outcome=outcome or implied_outcome(event_key),  # type: ignore[arg-type]
            occurred_at=occurred_at,
            received_at=received_at,
            account_id=account_id,
            account_name=account_name,
            actor_id=actor_id,
            actor_email=actor_email,
            actor_type=actor_type or ("user" if actor_id or actor_email else "anonymous"),  # type: ignore[arg-type]
            actor_display=actor_email or actor_id or "anonymous",
            ip=ip,
            country=self._enricher.country(ip),
            user_agent=user_agent,
            ua_browser=ua.browser,
            ua_os=ua.os,
            ua_device=ua.device,
            trace_id=trace_id,
            reason=reason,
            attributes=attributes,
            raw=text,
        )

    def _time_rejection(self, occurred_at: datetime, received_at: datetime) -> Rejection | None:
        """The contract's rules on ``occurred_at`` (see ``RawEventV1.occurred_at``)."""
        if occurred_at < EARLIEST:
            return Rejection("occurred_at is before 2000-01-01", "occurred_at")
        if occurred_at > received_at + MAX_CLOCK_SKEW:
            return Rejection("occurred_at is more than 24 h after it was received", "occurred_at")
        if self._retention_days is not None:
            cutoff = self._clock() - self._retention
            if occurred_at < cutoff:
                return Rejection(
                    older_than_retention_reason(occurred_at, cutoff, self._retention_days),
                    "occurred_at",
                    older_than_retention=True,
                )
        return None


def older_than_retention_reason(occurred_at: datetime, cutoff: datetime, days: int) -> str:
    """The dead-letter reason of an event older than the log store's retention."""
    unit = "day" if days == 1 else "days"
    return (
        f"occurred_at {rfc3339_ms(occurred_at)} is older than the log store's retention of "
        f"{days} {unit} (AUTHTRAIL_RETENTION_DAYS; cutoff {rfc3339_ms(cutoff)}): the store "
        "would delete it at once, so it is not stored"
    )
