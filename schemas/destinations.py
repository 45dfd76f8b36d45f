"""Streaming destinations as data: a destination (its platform's settings, an optional
event filter, paused or not), how one is made and changed (a changed address needs its
secrets again) and its states. The platforms' settings are ``schemas.platforms``; the
record kept in the ``authtrail.destinations`` topic is ``connectors.config``'s.

Filter keys are the same for every platform: ``filter.event_keys``, ``filter.outcomes``,
``filter.accounts``; so are PII rules: ``transform.<field>`` (``schemas.transform``)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.events import utc_now_ms
from schemas.platforms import (
    PLATFORM_SPECS,
    PLATFORMS,
    SETTINGS_MODELS,
    PlatformSettings,
    WebhookSettings,
)
from schemas.transform import TransformAction, check_rules

_NAME = re.compile(r"^[\w .:/@()-]{1,200}$")
DEFAULT_SUSPEND_AFTER_S = 7 * 86_400  # as Auth0 pauses a failing log stream
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


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


class Destination(BaseModel):
    """One configured destination. ``settings`` is the platform's model."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9]{10}$")
    name: str
    platform: str
    settings: PlatformSettings
    filter: DestinationFilter = DestinationFilter()
    # PII rules: field -> action, applied by the connector before encoding.
    transform: dict[str, TransformAction] = {}
    # The key of the rules' ``hash`` action: made with the first rule, then kept for the
    # destination's life (pseudonyms stay stable), sealed with the secrets.
    transform_key: SecretStr | None = None
    paused: bool = False
    # Failing (not for credentials) longer than this, the destination is suspended: it
    # keeps its offsets and lag and waits to be resumed by hand.
    suspend_after_s: int = Field(DEFAULT_SUSPEND_AFTER_S, ge=5, le=365 * 86_400)
    suspended_at: datetime | None = None
    created_at: datetime
    updated_at: datetime

    @field_validator("transform")
    @classmethod
    def _transform(cls, value: dict[str, TransformAction]) -> dict[str, TransformAction]:
        return check_rules(value)

    @model_validator(mode="after")
    def _transform_key(self) -> Destination:
        if self.transform and self.transform_key is None:
            self.transform_key = SecretStr(secrets.token_hex(32))
        return self

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
        """Settings for display: each secret only as "set, ends in …abcd" (or as its
        platform shows it: ``PlatformSettings.redacted``)."""
        return self.settings.shown()

    def generated_secrets(self, given: Mapping[str, Any]) -> dict[str, str]:
        """The secrets made for this destination because ``given`` (the values it was
        made from) had none: the reply that made them shows them, once."""
        settings = self.settings
        return {
            key: getattr(settings, key).get_secret_value()
            for key in type(settings).GENERATED
            if given.get(key) in (None, "")
        }


# What a connector replica says of its destination (the status topic, metrics), and what a
# destination shows: a replica's state, or "not running" when no live replica reports it.
WorkerState = Literal[
    "starting", "healthy", "failing", "stalled", "auth_failed", "paused", "stopped"
]
WORKER_STATES: tuple[WorkerState, ...] = get_args(WorkerState)
DestinationState = Literal[WorkerState, "not running", "suspended"]
# Replicas disagreeing: the destination shows the worst of their states, this order first.
STATES_WORST_FIRST: tuple[WorkerState, ...] = (
    "auth_failed",
    "stalled",
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


def new_id() -> str:
    return "".join(secrets.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(10))


def parse_settings(
    platform: str, values: Mapping[str, Any]
) -> tuple[PlatformSettings, DestinationFilter, dict[str, TransformAction]]:
    """Validates ``key=value`` settings for ``platform``: ``filter.*`` keys (a list, or a
    comma-separated text), ``transform.<field>`` keys (an action), ``<setting>.<name>``
    keys of an object setting (a webhook's ``headers.X-Api-Key``). Values are text (the
    CLI) or JSON values (the API). Raises ``DestinationError`` naming the first bad key;
    its message never contains a secret's value."""
    if platform not in SETTINGS_MODELS:
        raise DestinationError("platform", f"must be one of {', '.join(PLATFORMS)}")
    model = SETTINGS_MODELS[platform]
    filter_values: dict[str, list[str]] = {}
    transform: dict[str, Any] = {}
    settings_values: dict[str, Any] = {}
    members: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if key.startswith("filter."):
            name = key.removeprefix("filter.")
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                raise DestinationError(key, "a list of texts, or one comma-separated text")
            filter_values[name] = [v.strip() for v in items if v.strip()]
        elif key.startswith("transform."):
            transform[key.removeprefix("transform.")] = value
        elif "." in key and key.partition(".")[0] in model.model_fields:
            field, _, member = key.partition(".")
            members.setdefault(field, {})[member] = value
        else:
            settings_values[key] = value
    for field, given in members.items():
        settings_values[field] = {**_as_object(settings_values.get(field)), **given}
    try:
        destination_filter = DestinationFilter.model_validate(filter_values)
    except ValidationError as exc:
        raise _first(exc, "filter.") from None
    try:
        rules = check_rules(transform)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise DestinationError(f"transform.{field}", message) from None
    try:
        settings = model.model_validate(settings_values)
    except ValidationError as exc:
        raise _first(exc, "") from None
    return settings, destination_filter, rules


def _as_object(value: Any) -> dict[str, Any]:
    """An object setting's current value (an object, or its JSON text) as a dict."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            loaded = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _first(exc: ValidationError, prefix: str) -> DestinationError:
    error = exc.errors(include_url=False, include_input=False)[0]
    loc = ".".join(str(p) for p in error["loc"] if not isinstance(p, int)) or "settings"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "is not a setting of this platform"
    return DestinationError(prefix + loc, message)


def make_destination(
    platform: str, name: str, values: Mapping[str, Any], destination_id: str | None = None
) -> Destination:
    """A new (or replacement) destination from ``key=value`` settings (``suspend_after``
    included: seconds, or a duration such as ``7d``, ``12h``, ``30m``)."""
    values = dict(values)
    suspend_after_s = seconds_of("suspend_after", values.pop("suspend_after", None))
    settings, destination_filter, rules = parse_settings(platform, values)
    now = utc_now_ms()
    try:
        return Destination(
            id=destination_id or new_id(),
            name=name,
            platform=platform,
            settings=settings,
            filter=destination_filter,
            transform=rules,
            suspend_after_s=suspend_after_s,
            created_at=now,
            updated_at=now,
        )
    except ValidationError as exc:
        error = _first(exc, "")
        if error.field == "suspend_after_s":
            raise DestinationError("suspend_after", "must be 5 seconds to 365 days") from None
        raise error from None


def current_values(destination: Destination) -> dict[str, Any]:
    """A destination's settings as ``make_destination`` takes them (secrets in clear,
    ``filter.*`` lists), the base an update is applied to."""
    values: dict[str, Any] = {}
    for key, value in destination.settings.model_dump().items():
        if value is not None:
            values[key] = value.get_secret_value() if isinstance(value, SecretStr) else value
    for key, items in destination.filter.model_dump().items():
        values[f"filter.{key}"] = items
    for field, action in destination.transform.items():
        values[f"transform.{field}"] = action
    values["suspend_after"] = destination.suspend_after_s
    return values


def seconds_of(key: str, value: Any) -> int:
    """Seconds from a number or a duration text (``90``, ``30m``, ``12h``, ``7d``); the
    default suspension delay for None. Raises ``DestinationError`` naming ``key``."""
    if value is None or value == "":
        return DEFAULT_SUSPEND_AFTER_S
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _DURATION.match(str(value))
    if match is None:
        raise DestinationError(key, "seconds, or a duration such as 30m, 12h or 7d")
    return int(match[1]) * _UNIT_S[match[2]]


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
        model = type(fresh.settings)
        for key in model.SECRETS:
            if key in model.NEVER_SENT:
                continue
            if getattr(fresh.settings, key) is not None and changes.get(key) is None:
                raise DestinationError(
                    key,
                    f"must be given again: {', '.join(moved)} changed, and a stored secret "
                    "is only sent to the address it was saved for",
                )
    return fresh.model_copy(
        update={
            "created_at": current.created_at,
            "paused": current.paused,
            "suspended_at": current.suspended_at,
            # Pseudonyms stay stable: the key lives as long as the destination.
            "transform_key": current.transform_key or fresh.transform_key,
        }
    )


def rotated_secret(
    current: Destination, now: float, grace_s: float, secret: str | None = None
) -> tuple[Destination, str]:
    """``current`` (a webhook) with a new signing secret (``secret``, or one made now),
    the old one signing beside it for ``grace_s`` seconds; and the new secret. Raises
    ``DestinationError`` for another platform, a bad grace or a bad secret (never quoting
    it)."""
    settings = current.settings
    if not isinstance(settings, WebhookSettings):
        raise DestinationError("id", f"a {current.platform} destination has no signing secret")
    try:
        rotated = settings.rotated(now, grace_s, secret)
    except ValueError as exc:
        raise DestinationError("secret", str(exc)) from None
    return current.model_copy(update={"settings": rotated}), rotated.secret.get_secret_value()
