"""Streaming destinations as data: one settings model per platform, validated strictly
(site, domain and region lists, ARN and URL formats), an optional event filter, and the
record kept in the compacted ``authtrail.destinations`` topic with its secrets encrypted.

Setting keys are the same everywhere (CLI ``--set key=value``, the API later):
``filter.event_keys``, ``filter.outcomes``, ``filter.accounts`` for every platform, and
the platform's own keys below."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Protocol, TypeVar, get_args

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.events import utc_now_ms

DATADOG_SITES = (
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "ddog-gov.com",
    "us2.ddog-gov.com",
)
CORALOGIX_DOMAINS = {
    "us1": "coralogix.us",
    "us2": "cx498.coralogix.com",
    "us3": "edge.us3.coralogix.com",
    "eu1": "coralogix.com",
    "eu2": "eu2.coralogix.com",
    "ap1": "coralogix.in",
    "ap2": "coralogixsg.com",
    "ap3": "ap3.coralogix.com",
}
_AWS_REGION = re.compile(
    r"^(us|eu|ap|sa|ca|me|af|il|mx)(-gov)?-(north|south|east|west|central|"
    r"northeast|southeast|northwest|southwest)-\d$"
)
_BUS_NAME = re.compile(r"^[A-Za-z0-9._\-/]{1,256}$")
_BUS_ARN = re.compile(r"^arn:aws(-[a-z]+)*:events:[a-z0-9-]+:\d{12}:event-bus/[A-Za-z0-9._\-/]+$")
_TAGS = re.compile(r"^[^,:\s]+:[^,\s]+(,[^,:\s]+:[^,\s]+)*$")
# Values may end up in HTTP headers (X-Sumo-*): no control characters, so no CR/LF.
_FIELDS = re.compile(r"^[A-Za-z0-9_]+=[^,=\x00-\x1f\x7f]+(,[A-Za-z0-9_]+=[^,=\x00-\x1f\x7f]+)*$")
_SUMO_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:\d+)?/receiver/v1/http/[A-Za-z0-9_=+\-]+$")
_NAME = re.compile(r"^[\w .:/@()-]{1,200}$")


def _url(value: str, *, https_only: bool = False) -> str:
    text = value.strip().rstrip("/")
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(:\d+)?(/[^\s]*)?", text):
        raise ValueError("must be an http(s) URL, e.g. https://host:8088")
    if https_only and not text.startswith("https://"):
        raise ValueError("must use https")
    return text


HttpUrlText = Annotated[str, AfterValidator(_url)]
# Free text that may reach a platform in a header (Sumo's X-Sumo-Category, -Name, -Host) or
# a body: control characters (CR/LF above all) are refused when the destination is saved.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (line breaks, tabs)")
    return value


Text = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_printable)]


class DestinationFilter(BaseModel):
    """Which events a destination receives: all when every list is empty; otherwise an
    event must match each non-empty list."""

    model_config = ConfigDict(extra="forbid")
    event_keys: list[Annotated[str, Field(min_length=1, max_length=128)]] = []
    outcomes: list[Literal["success", "failure"]] = []
    accounts: list[Annotated[str, Field(min_length=1, max_length=256)]] = []

    def matches(self, event_key: str, outcome: str, account_id: str) -> bool:
        if self.event_keys and event_key not in self.event_keys:
            return False
        if self.outcomes and outcome not in self.outcomes:
            return False
        return not self.accounts or account_id in self.accounts


class PlatformSettings(BaseModel):
    """Base of every platform's settings. ``SECRETS`` names the fields never shown;
    ``ADDRESS`` the fields that decide where requests (and so the secrets) go: changing
    one requires every secret again (``updated_destination``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    SECRETS: ClassVar[tuple[str, ...]] = ()
    ADDRESS: ClassVar[tuple[str, ...]] = ("endpoint",)
    endpoint: HttpUrlText | None = Field(
        None, description="Overrides the platform address (a proxy, a test receiver)."
    )


S = TypeVar("S", bound=PlatformSettings)


@dataclass(frozen=True, slots=True)
class PlatformSpec:
    """A destination platform as the API, the page and the CLI present it."""

    platform: str
    name: str
    description: str
    settings: type[PlatformSettings]


# Every platform, in the order the page shows them. A platform is registered once, with
# ``@platform(...)`` on its settings model; its sink is ``connectors/sinks/<platform>.py``.
PLATFORM_SPECS: dict[str, PlatformSpec] = {}


def platform(key: str, name: str, description: str) -> Callable[[type[S]], type[S]]:
    """Registers the decorated settings model as destination platform ``key``."""

    def register(model: type[S]) -> type[S]:
        if key in PLATFORM_SPECS:
            raise ValueError(f"platform {key} is registered twice")
        PLATFORM_SPECS[key] = PlatformSpec(key, name, description, model)
        return model

    return register


@platform(
    "datadog",
    "Datadog",
    "Auth events as Datadog logs: search, dashboards and monitors beside your services.",
)
class DatadogSettings(PlatformSettings):
    SECRETS = ("api_key",)
    ADDRESS = ("endpoint", "site")
    site: Literal[DATADOG_SITES] = Field(  # type: ignore[valid-type]
        "datadoghq.com", description="Your Datadog site (the host of your Datadog URL)."
    )
    api_key: SecretStr = Field(description="Datadog API key (Organization settings, API keys).")
    service: Text = Field("authtrail", description="The logs' service attribute.")
    source: Text = Field("authtrail", description="The logs' ddsource (selects the pipeline).")
    tags: Annotated[str, Field(max_length=2000)] = Field(
        "", description="Extra tags: key:value,key:value."
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: str) -> str:
        if value and not _TAGS.fullmatch(value):
            raise ValueError("must be 'key:value,key:value'")
        return value

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[A-Za-z0-9]{16,64}", value.get_secret_value()):
            raise ValueError("must be 16-64 letters and digits")
        return value


@platform(
    "eventbridge",
    "Amazon EventBridge",
    "Auth events on an event bus: route them to Lambda, SQS, Step Functions or SIEMs.",
)
class EventBridgeSettings(PlatformSettings):
    SECRETS = ("secret_access_key",)
    ADDRESS = ("endpoint", "region")
    region: str = Field(description="AWS region, e.g. eu-west-1.")
    event_bus: Annotated[str, Field(min_length=1, max_length=1600)] = Field(
        "default", description="Bus name or ARN."
    )
    access_key_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{16,128}$")] | None = Field(
        None, description="Leave both keys empty to use the default AWS credential chain."
    )
    secret_access_key: SecretStr | None = Field(None, description="Goes with the access key id.")
    source: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        "authtrail", description="The events' Source (rules match on it)."
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _AWS_REGION.fullmatch(value):
            raise ValueError("is not an AWS region name (e.g. eu-west-1)")
        return value

    @field_validator("event_bus")
    @classmethod
    def _bus(cls, value: str) -> str:
        if value.startswith("arn:"):
            if not _BUS_ARN.fullmatch(value):
                raise ValueError(
                    "is not an event bus ARN (arn:aws:events:<region>:<account>:event-bus/<name>)"
                )
        elif not _BUS_NAME.fullmatch(value):
            raise ValueError("is not an event bus name")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if value.startswith("aws."):
            raise ValueError("must not start with 'aws.' (reserved by AWS)")
        return value

    @model_validator(mode="after")
    def _both_keys(self) -> EventBridgeSettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError(
                "access_key_id and secret_access_key go together (or neither: "
                "the default AWS credential chain)"
            )
        return self


@platform(
    "splunk",
    "Splunk",
    "Auth events into a Splunk index over HEC: correlate them in your SIEM.",
)
class SplunkSettings(PlatformSettings):
    SECRETS = ("token",)
    # Turning certificate checks off lets anyone on the path read the token.
    ADDRESS = ("endpoint", "url", "verify_tls")
    url: HttpUrlText = Field(description="HEC base URL, e.g. https://splunk:8088.")
    token: SecretStr = Field(description="HEC token.")
    index: Annotated[str, Field(pattern=r"^[a-z0-9_][a-z0-9_-]{0,79}$")] | None = Field(
        None, description="Target index (the token's default when empty)."
    )
    source: Text = Field("authtrail", description="The events' source.")
    sourcetype: Text = Field("authtrail:auth", description="The events' sourcetype.")
    host: Text | None = Field(None, description="The events' host (authtrail when empty).")
    verify_tls: bool = Field(True, description="Check the HEC certificate (keep it on).")
    indexer_ack: bool = Field(
        False, description="Count events delivered only once indexed (HEC acknowledgment)."
    )

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[A-Za-z0-9-]{8,128}", value.get_secret_value()):
            raise ValueError("is not a HEC token")
        return value


@platform(
    "sumologic",
    "Sumo Logic",
    "Auth events to a Sumo Logic HTTP source: search and alert on them in Sumo.",
)
class SumoLogicSettings(PlatformSettings):
    SECRETS = ("url",)
    url: SecretStr = Field(description="The HTTP source URL (it is the secret).")
    category: Text | None = Field(None, description="Source category (X-Sumo-Category).")
    name: Text | None = Field(None, description="Source name (X-Sumo-Name).")
    host: Text | None = Field(None, description="Source host (X-Sumo-Host).")
    fields: Annotated[str, Field(max_length=2000)] = Field(
        "", description="Fields: key=value,key=value (X-Sumo-Fields)."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value().strip()
        if not _SUMO_URL.fullmatch(text):
            raise ValueError(
                "must be an HTTP source URL: https://<endpoint>/receiver/v1/http/<code>"
            )
        return SecretStr(text)

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: str) -> str:
        if value and not _FIELDS.fullmatch(value):
            raise ValueError("must be 'key=value,key=value'")
        return value


@platform(
    "coralogix",
    "Coralogix",
    "Auth events as Coralogix logs, with severity by outcome, for alerts and archives.",
)
class CoralogixSettings(PlatformSettings):
    SECRETS = ("api_key",)
    ADDRESS = ("endpoint", "domain")
    domain: Literal["us1", "us2", "us3", "eu1", "eu2", "ap1", "ap2", "ap3"] = Field(
        "eu1", description="Your Coralogix region."
    )
    api_key: SecretStr = Field(description="Send-Your-Data API key.")
    application: Text = Field("authtrail", description="The logs' application name.")
    subsystem: Text = Field("auth", description="The logs' subsystem name.")

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,128}", value.get_secret_value()):
            raise ValueError("is not a Send-Your-Data API key")
        return value


SETTINGS_MODELS: dict[str, type[PlatformSettings]] = {
    key: spec.settings for key, spec in PLATFORM_SPECS.items()
}
PLATFORMS: tuple[str, ...] = tuple(PLATFORM_SPECS)


class Destination(BaseModel):
    """One configured destination. ``settings`` is the platform's model."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9]{10}$")
    name: str
    platform: str
    settings: PlatformSettings
    filter: DestinationFilter = DestinationFilter()
    paused: bool = False
    created_at: datetime
    updated_at: datetime

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str) -> str:
        if value not in PLATFORM_SPECS:
            raise ValueError(f"must be one of {', '.join(PLATFORM_SPECS)}")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value.strip()):
            raise ValueError("1-200 letters, digits, spaces and . : / @ ( ) -")
        return value.strip()

    @property
    def group_id(self) -> str:
        return f"authtrail.connector.{self.id}"

    def redacted_settings(self) -> dict[str, Any]:
        """Settings for display: each secret only as "set, ends in …abcd"."""
        out: dict[str, Any] = {}
        for key, value in self.settings.model_dump().items():
            if key in type(self.settings).SECRETS:
                out[key] = redact(value) if value is not None else None
            else:
                out[key] = value
        return out


# What a connector replica says of its destination (the status topic, metrics), and what a
# destination shows: a replica's state, or "not running" when no live replica reports it.
WorkerState = Literal["starting", "healthy", "failing", "auth_failed", "paused", "stopped"]
WORKER_STATES: tuple[WorkerState, ...] = get_args(WorkerState)
DestinationState = Literal[WorkerState, "not running"]
# Replicas disagreeing: the destination shows the worst of their states, this order first.
STATES_WORST_FIRST: tuple[WorkerState, ...] = (
    "auth_failed",
    "failing",
    "starting",
    "healthy",
    "stopped",
)


class DestinationError(ValueError):
    """Invalid destination input; ``field`` names the setting key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def redact(secret: SecretStr | str) -> str:
    text = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return f"••••{text[-4:]}" if len(text) >= 12 else "••••"


def new_id() -> str:
    return "".join(secrets.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(10))


def parse_settings(
    platform: str, values: Mapping[str, Any]
) -> tuple[PlatformSettings, DestinationFilter]:
    """Validates ``key=value`` settings for ``platform`` (``filter.*`` keys included: a
    list, or a comma-separated text). Values are text (the CLI) or JSON values (the API).
    Raises ``DestinationError`` naming the first bad key; its message never contains a
    secret's value."""
    if platform not in SETTINGS_MODELS:
        raise DestinationError("platform", f"must be one of {', '.join(PLATFORMS)}")
    model = SETTINGS_MODELS[platform]
    filter_values: dict[str, list[str]] = {}
    settings_values: dict[str, Any] = {}
    for key, value in values.items():
        if key.startswith("filter."):
            name = key.removeprefix("filter.")
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                raise DestinationError(key, "a list of texts, or one comma-separated text")
            filter_values[name] = [v.strip() for v in items if v.strip()]
        else:
            settings_values[key] = value
    try:
        destination_filter = DestinationFilter.model_validate(filter_values)
    except ValidationError as exc:
        raise _first(exc, "filter.") from None
    try:
        settings = model.model_validate(settings_values)
    except ValidationError as exc:
        raise _first(exc, "") from None
    return settings, destination_filter


def _first(exc: ValidationError, prefix: str) -> DestinationError:
    error = exc.errors(include_url=False, include_input=False)[0]
    loc = ".".join(str(p) for p in error["loc"] if not isinstance(p, int)) or "settings"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "is not a setting of this platform"
    return DestinationError(prefix + loc, message)


# -- storage: the compacted topic, secrets encrypted ---------------------------------------
class Sealer(Protocol):
    """Seals and opens secret settings (``infra.secrets.SecretBox``)."""

    def seal(self, text: str) -> str: ...

    def open(self, token: str) -> str: ...


def to_record(destination: Destination, box: Sealer) -> bytes:
    """The topic value: settings with every secret sealed."""
    data = destination.model_dump(mode="json", exclude={"settings"})
    settings = destination.settings.model_dump()
    for key in type(destination.settings).SECRETS:
        value = settings.get(key)
        settings[key] = None if value is None else {"sealed": box.seal(value.get_secret_value())}
    data["settings"] = settings
    return orjson.dumps(data)


def from_record(value: bytes, box: Sealer) -> Destination:
    """A destination from its topic value (secrets opened)."""
    data = orjson.loads(value)
    model = SETTINGS_MODELS[data["platform"]]
    settings = dict(data["settings"])
    for key in model.SECRETS:
        sealed = settings.get(key)
        if isinstance(sealed, dict):
            settings[key] = box.open(sealed["sealed"])
    data["settings"] = model.model_validate(settings)
    return Destination.model_validate(data)


def make_destination(
    platform: str, name: str, values: Mapping[str, Any], destination_id: str | None = None
) -> Destination:
    """A new (or replacement) destination from ``key=value`` settings."""
    settings, destination_filter = parse_settings(platform, values)
    now = utc_now_ms()
    try:
        return Destination(
            id=destination_id or new_id(),
            name=name,
            platform=platform,
            settings=settings,
            filter=destination_filter,
            created_at=now,
            updated_at=now,
        )
    except ValidationError as exc:
        raise _first(exc, "") from None


def current_values(destination: Destination) -> dict[str, Any]:
    """A destination's settings as ``make_destination`` takes them (secrets in clear,
    ``filter.*`` lists), the base an update is applied to."""
    values: dict[str, Any] = {}
    for key, value in destination.settings.model_dump().items():
        if value is not None:
            values[key] = value.get_secret_value() if isinstance(value, SecretStr) else value
    for key, items in destination.filter.model_dump().items():
        values[f"filter.{key}"] = items
    return values


def address_changes(current: PlatformSettings, fresh: PlatformSettings) -> list[str]:
    """The ``ADDRESS`` settings that differ between ``current`` and ``fresh``."""
    return [
        key
        for key in type(current).ADDRESS
        if getattr(current, key, None) != getattr(fresh, key, None)
    ]


def updated_destination(
    current: Destination, name: str | None, changes: Mapping[str, Any]
) -> Destination:
    """``current`` with ``changes`` applied (a ``None`` clears an optional setting) and
    validated as a whole; id, creation time and paused state are kept.

    A stored secret is only ever sent to the address it was given with: when a change
    moves the destination (an ``ADDRESS`` setting: endpoint, site, URL, region, domain,
    certificate checks), every secret the result still holds must be among ``changes``,
    else ``DestinationError`` names the first missing one. Without this rule whoever may
    edit a destination could point it at a host of theirs and read the secret there."""
    values = {**current_values(current), **changes}
    values = {k: v for k, v in values.items() if v is not None}
    fresh = make_destination(current.platform, name or current.name, values, current.id)
    moved = address_changes(current.settings, fresh.settings)
    if moved:
        for key in type(fresh.settings).SECRETS:
            if getattr(fresh.settings, key) is not None and changes.get(key) is None:
                raise DestinationError(
                    key,
                    f"must be given again: {', '.join(moved)} changed, and a stored secret "
                    "is only sent to the address it was saved for",
                )
    return fresh.model_copy(update={"created_at": current.created_at, "paused": current.paused})
