"""Response models of the query API (they are the OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, PlainSerializer

from schemas.destinations import DestinationState
from schemas.events import rfc3339_ms
from schemas.tokens import Role


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcTime = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(rfc3339_ms, return_type=str, when_used="json"),
]


class LogItem(BaseModel):
    """One row of the Logs view."""

    event_id: str
    occurred_at: UtcTime
    event_key: str
    description: str
    outcome: Literal["success", "failure"]
    account_id: str | None = Field(description="null when the event has no account (shown '-')")
    account_name: str | None
    account_display: str = Field(description="account name, else id, else '-'")
    actor_id: str | None
    actor_email: str | None
    actor_display: str = Field(description="email, else id, else 'anonymous'")
    actor_type: str
    ip: str | None
    country: str | None
    user_agent: str | None
    ua_browser: str | None
    ua_os: str | None
    ua_device: str | None
    trace_id: str | None
    reason: str | None


class LogPage(BaseModel):
    items: list[LogItem]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    store: str
    schema_version: int | None
    ingest: dict[str, Any] | None = None
    stalled: list[str] | None = Field(
        None,
        description="destinations a connector reports stalled now (events waiting, no "
        "progress while the broker answers: its consumer is being replaced)",
    )
    error: str | None = None


class EventDetail(LogItem):
    """The whole normalized event."""

    received_at: UtcTime
    attributes: dict[str, Any]
    raw: Any = Field(description="The event as received: its JSON, or the text if not JSON.")
    schema_version: int


class TimelineBucket(BaseModel):
    start: UtcTime
    success: int
    failure: int


class Timeline(BaseModel):
    bucket_seconds: int
    start: UtcTime | None
    end: UtcTime | None
    buckets: list[TimelineBucket]


class FacetValue(BaseModel):
    value: str = Field(description="What to pass to the filter.")
    label: str
    count: int


class Facet(BaseModel):
    name: Literal["accounts", "users", "types"]
    values: list[FacetValue]


class IngestResult(BaseModel):
    index: int = Field(description="The event's position in the request (0-based).")
    event_id: str | None = Field(
        description="The id it carries or the contract derives from its content; null for "
        "an element that is not a JSON object (the normalizer dead-letters it)."
    )


class IngestAnswer(BaseModel):
    """``POST /api/v1/events``: every event is in the raw topic (acknowledged by the
    brokers); whether each is valid is the normalizer's to say, as for Kafka producers."""

    accepted: int
    results: list[IngestResult]


class SessionInfo(BaseModel):
    token_id: str
    name: str
    role: Role
    account: str | None


# -- the Stream side ---------------------------------------------------------------------
class DestinationType(BaseModel):
    """A platform the Stream tab can set up: its settings' JSON Schema draws the form
    (secrets are marked ``writeOnly`` and listed in ``secrets``)."""

    platform: str
    name: str
    description: str
    icon: str = Field(description="URL of the platform's icon (SVG).")
    secrets: list[str]
    generated: list[str] = Field(
        description="Secrets made when not given: the reply that creates the destination "
        "shows them once (``generated_secrets``)."
    )
    address: list[str] = Field(
        description="Settings that decide where requests go: changing one requires every "
        "secret again (a stored secret is only sent to the address it was saved for)."
    )
    settings_schema: dict[str, Any]


class DestinationFilterBody(BaseModel):
    model_config = {"extra": "forbid"}
    event_keys: list[str] = []
    outcomes: list[Literal["success", "failure"]] = []
    accounts: list[str] = []


SUSPEND_DESCRIPTION = (
    "Failing (every request, not refused credentials) for longer than this, the destination "
    "is suspended: it keeps its offsets and lag until resumed by hand. Seconds, or a "
    "duration such as 30m, 12h, 7d."
)
TRANSFORM_DESCRIPTION = (
    "PII rules: a field (actor.email, actor.id, ip, user_agent, account.name, raw, "
    "attributes.<path>) -> drop, mask or hash, applied before the event leaves for the "
    "platform. With any rule, raw (the event as received) is dropped unless hashed."
)


class DestinationCreate(BaseModel):
    """A new destination: its platform's settings (see ``/destination-types``)."""

    model_config = {"extra": "forbid"}
    platform: str
    name: str
    settings: dict[str, Any] = {}
    filter: DestinationFilterBody = DestinationFilterBody()
    transform: dict[str, str] = Field({}, description=TRANSFORM_DESCRIPTION)
    suspend_after: int | str | None = Field(
        None, description=SUSPEND_DESCRIPTION + " Default 7 days."
    )
    paused: bool = False


class DestinationPatch(BaseModel):
    """Changes: only what is given. A secret left out (or null) keeps its value, unless
    the change moves the destination (a setting listed in its type's ``address``): then
    every secret must be given again (422 naming it); another setting set to null goes
    back to its default."""

    model_config = {"extra": "forbid"}
    name: str | None = None
    settings: dict[str, Any] = {}
    filter: DestinationFilterBody | None = None
    transform: dict[str, str] | None = Field(
        None, description="The whole set of PII rules, replacing the current one."
    )
    suspend_after: int | str | None = Field(None, description=SUSPEND_DESCRIPTION)


class DestinationOut(BaseModel):
    """A destination as the API shows it: secrets only as "set, ends in …"."""

    id: str
    name: str
    platform: str
    settings: dict[str, Any]
    filter: DestinationFilterBody
    transform: dict[str, str] = Field(description=TRANSFORM_DESCRIPTION)
    paused: bool
    suspend_after: int = Field(description=SUSPEND_DESCRIPTION + " In seconds.")
    suspended_at: datetime | None = Field(
        description="When it was suspended (resume it to lift that), or null."
    )
    consumer_group: str
    dead_letter_topic: str
    created_at: datetime
    updated_at: datetime
    generated_secrets: dict[str, str] | None = Field(
        None,
        description="Secrets authtrail made for this destination (a webhook's signing "
        "secret), only in the reply that made them: store them now, they are not shown "
        "again.",
    )


class SecretRotation(BaseModel):
    """A new signing secret; the current one keeps signing beside it for the grace
    period, so receivers can switch over without refusing a request."""

    model_config = {"extra": "forbid"}
    grace_seconds: int = Field(
        86_400, ge=0, le=30 * 86_400, description="How long the current secret still signs."
    )
    secret: str | None = Field(
        None, description="The new secret (whsec_ and base64); made when not given."
    )


class DestinationStatus(BaseModel):
    id: str
    name: str
    platform: str
    state: DestinationState = Field(
        description="a live replica's state (the worst when they differ), or 'not running'"
    )
    lag: int | None
    delivered: int
    dead_lettered: int
    filtered: int
    retries: int
    stalls: int = Field(
        0,
        description="times a consumer of it was found stalled (events waiting, no progress "
        "while the broker answered) and replaced",
    )
    replicas: int
    events_per_s: float
    last_success: float | None
    last_error: str | None


class TestEventReply(BaseModel):
    """The platform's reply to one sample event."""

    ok: bool
    result: str
    status: int | None
    code: str
    message: str
    event_id: str


class ReplayBody(BaseModel):
    model_config = {"extra": "forbid", "populate_by_name": True}
    since: Annotated[datetime, AfterValidator(_as_utc)] = Field(
        alias="from", description="RFC 3339: every event from then on is delivered again."
    )


class ReplayReply(BaseModel):
    offsets: dict[int, int]
    events: int


class DeadLetterItem(BaseModel):
    """One dead letter: the event, why, and what the platform said."""

    event: Any = Field(description="The normalized event (JSON), or its text if unreadable.")
    reason: str
    platform_status: str
    platform_code: str
    platform_reply: str
    dead_lettered_at: str
    source: str
    partition: int
    offset: int


class DeadLetterPage(BaseModel):
    items: list[DeadLetterItem]
    next_cursor: str | None


class RedriveReply(BaseModel):
    redriven: int
    delivered: int
    dead_lettered_again: int
    remaining: int


class NotificationChannelCreate(BaseModel):
    """A new notification channel: a signed webhook (``url``; ``secret`` made when not
    given; ``headers``; ``verify_tls``)."""

    model_config = {"extra": "forbid"}
    kind: Literal["webhook"] = "webhook"
    name: str
    settings: dict[str, Any] = {}


class NotificationChannelOut(BaseModel):
    """A channel as the API shows it: secrets only as "set, ends in …"."""

    id: str
    name: str
    kind: str
    settings: dict[str, Any]
    created_at: datetime
    generated_secrets: dict[str, str] | None = Field(
        None, description="The signing secret authtrail made, only in the reply that made it."
    )
