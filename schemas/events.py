"""Event models: the raw contract identity services produce (``RawEventV1``) and the
normalized event the pipeline writes to ClickHouse and ``auth-events.normalized``
(``NormalizedEvent``).

``RawEventV1`` describes the canonical v1 shape. The pipeline first maps the common
alternative shapes onto it (see ``pipeline.normalize``) and then validates with this model;
its JSON Schema is exported to ``schemas/jsonschema/raw-event-v1.schema.json``.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

import msgspec
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

SCHEMA_VERSION = 1

ActorType = Literal["user", "agent", "service", "anonymous"]
OutcomeT = Literal["success", "failure"]

# Epoch numbers above this are milliseconds (1e11 s is the year 5138), above 1e14
# microseconds, above 1e17 nanoseconds.
_MS_THRESHOLD = 1e11
_EVENT_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]*$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
_NUMBER_RE = re.compile(r"-?\d+(\.\d+)?")


def parse_timestamp(value: Any) -> datetime:
    """An RFC 3339 string (with an offset) or epoch seconds / ms / µs / ns -> aware UTC
    datetime truncated to milliseconds. Raises ``ValueError`` with a readable message."""
    if isinstance(value, bool):
        raise ValueError("must be an RFC 3339 string or epoch seconds/milliseconds, not a boolean")
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER_RE.fullmatch(text):
            return parse_timestamp(float(text))
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise ValueError(f"is not an RFC 3339 timestamp: {value[:64]!r}") from None
        if parsed.tzinfo is None:
            raise ValueError("has no UTC offset (RFC 3339 requires 'Z' or '+hh:mm')")
        moment = parsed.astimezone(UTC)
    elif isinstance(value, int | float):
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("is not a finite number")
        magnitude = abs(number)
        if magnitude >= 1e17:
            number /= 1e9
        elif magnitude >= 1e14:
            number /= 1e6
        elif magnitude >= _MS_THRESHOLD:
            number /= 1e3
        try:
            moment = datetime.fromtimestamp(number, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"epoch value {value!r} is out of range") from None
    elif isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("has no UTC offset")
        moment = value.astimezone(UTC)
    else:
        raise ValueError("must be an RFC 3339 string or epoch seconds/milliseconds")
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def normalize_ip(value: str) -> str:
    """Canonical text of an IPv4/IPv6 address: IPv4-mapped IPv6 becomes IPv4, IPv6 is
    compressed and lower-case, ``[v6]`` brackets are accepted. Raises ``ValueError``."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"is not an IPv4 or IPv6 address: {value[:64]!r}") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def check_event_key(value: str) -> str:
    key = value.strip().lower()
    if not _EVENT_KEY_RE.fullmatch(key):
        raise ValueError(
            "must be dot-separated words of a-z, 0-9, '_' or '-' (e.g. 'login.completed')"
        )
    return key


def check_event_id(value: str) -> str:
    text = value.strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        pass
    if not _ID_RE.fullmatch(text):
        raise ValueError("must be a UUID or an id of letters, digits and ._:@/+=-")
    return text


def check_email(value: str) -> str:
    text = value.strip()
    if not _EMAIL_RE.fullmatch(text):
        raise ValueError("is not an email address")
    return text


def check_trace_id(value: str) -> str:
    text = value.strip().lower()
    if not _ID_RE.fullmatch(text):
        raise ValueError("must be letters, digits and ._:@/+=- (W3C, B3, X-Ray or UUID ids)")
    return text


Timestamp = Annotated[
    datetime,
    BeforeValidator(parse_timestamp),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "number", "description": "epoch seconds, milliseconds, µs or ns"},
            ]
        }
    ),
]
# The contract's length limits (characters), shared with the normalizer's fast path.
MAX_EVENT_ID = 128
MAX_EVENT_KEY = 128
MAX_ID = 256  # account and actor ids
MAX_NAME = 512
MAX_EMAIL = 320
MAX_IP = 64
MAX_TRACE_ID = 128
MAX_USER_AGENT = 4096
MAX_REASON = 2048

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
EventId = Annotated[
    NonEmpty, StringConstraints(max_length=MAX_EVENT_ID), AfterValidator(check_event_id)
]
EventKey = Annotated[
    NonEmpty, StringConstraints(max_length=MAX_EVENT_KEY), AfterValidator(check_event_key)
]
IdText = Annotated[NonEmpty, StringConstraints(max_length=MAX_ID)]
NameText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_NAME)]
Email = Annotated[NonEmpty, StringConstraints(max_length=MAX_EMAIL), AfterValidator(check_email)]
IpText = Annotated[NonEmpty, StringConstraints(max_length=MAX_IP), AfterValidator(normalize_ip)]
TraceId = Annotated[
    NonEmpty, StringConstraints(max_length=MAX_TRACE_ID), AfterValidator(check_trace_id)
]


class Account(BaseModel):
    """The customer account (tenant) the event belongs to."""

    model_config = ConfigDict(extra="forbid")
    id: IdText
    name: NameText | None = None


class Actor(BaseModel):
    """Who acted. With neither id nor email the actor is anonymous."""

    model_config = ConfigDict(extra="forbid")
    id: IdText | None = None
    email: Email | None = None
    type: ActorType | None = None


class RawEventV1(BaseModel):
    """The raw auth event, contract v1. ``event_key`` and ``occurred_at`` are required;
    unknown top-level fields are allowed and kept in the stored ``raw`` text."""

    model_config = ConfigDict(
        extra="allow",
        title="authtrail raw auth event v1",
        json_schema_extra={"$id": "https://authtrail.dev/schemas/raw-event-v1.json"},
    )

    event_id: EventId | None = Field(
        None, description="Stable id, produced once. Derived from the content when absent."
    )
    event_key: EventKey = Field(description="Catalogue key, e.g. 'login.completed'.")
    # The time rules need the broker timestamp and the retention, so the normalizer applies
    # them (``pipeline.normalize.Normalizer``); this description is their contract.
    occurred_at: Timestamp = Field(
        description="When it happened. Refused (dead-lettered with a reason, never "
        "stored) when before 2000-01-01, more than 24 h after the record's broker "
        "timestamp, or older than the log store's retention at ingest: before the ingest "
        "worker's now minus AUTHTRAIL_RETENTION_DAYS (default 90) days, which the store's "
        "TTL would delete at once. The retention in force at ingest decides: once it is "
        "shortened (from the worker's next start), late events older than the new one "
        "are refused."
    )
    account: Account | None = None
    actor: Actor | None = None
    ip: IpText | None = None
    user_agent: Annotated[str, StringConstraints(max_length=MAX_USER_AGENT)] | None = None
    trace_id: TraceId | None = None
    outcome: OutcomeT | None = Field(
        None, description="Omitted: implied by the catalogue (or the key's last word)."
    )
    reason: Annotated[str, StringConstraints(max_length=MAX_REASON)] | None = None
    attributes: dict[str, Any] | None = None


class NormalizedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One normalized, enriched event: a row of the log store and the value of a record
    on ``auth-events.normalized``. Strings are never null: absent is ``""``.

    A msgspec struct rather than a pydantic model: the pipeline builds one per event and
    only ever from validated input, where a pydantic model cost 30 µs of the ingest
    budget for nothing. ``raw`` is the event as received (JSON text)."""

    schema_version: int = SCHEMA_VERSION
    event_id: str
    event_key: str
    description: str
    outcome: OutcomeT
    occurred_at: datetime
    received_at: datetime
    account_id: str = ""
    account_name: str = ""
    actor_id: str = ""
    actor_email: str = ""
    actor_type: ActorType = "anonymous"
    actor_display: str = "anonymous"
    ip: str = ""
    country: str = ""
    user_agent: str = ""
    ua_browser: str = ""
    ua_os: str = ""
    ua_device: str = ""
    trace_id: str = ""
    reason: str = ""
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    raw: str = ""

    def to_json(self) -> bytes:
        """The event as the JSON of ``auth-events.normalized`` (RFC 3339 UTC times)."""
        return _ENCODER.encode(self)

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready builtins (times as RFC 3339 strings)."""
        return cast(dict[str, Any], msgspec.to_builtins(self))


_ENCODER = msgspec.json.Encoder()


def rfc3339_ms(moment: datetime) -> str:
    """``moment`` as RFC 3339 in UTC with milliseconds: ``2026-11-26T12:45:03.120Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now_ms() -> datetime:
    """Now, in UTC, truncated to milliseconds (the store's precision)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
