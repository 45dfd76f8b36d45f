"""Notification channels: where authtrail tells someone that a destination changed state
(healthy, failing, stalled, auth_failed, suspended). A channel is a webhook signed as the webhook
destination's requests are (Standard Webhooks v1), with the same settings model; the
message is ``StateChange`` as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.destinations import DestinationError, new_id, parse_settings
from schemas.events import utc_now_ms
from schemas.platforms import WebhookSettings

ChannelKind = Literal["webhook"]
CHANNEL_KINDS: tuple[ChannelKind, ...] = ("webhook",)
# The states a notification is about; the others (starting, paused, not running, ...) are
# what people do, or a process starting, not news.
NOTIFIED_STATES = ("healthy", "failing", "stalled", "auth_failed", "suspended")


class NotificationChannel(BaseModel):
    """A channel: a signed webhook. Its settings are a webhook destination's (``url``,
    ``secret`` made when not given, ``headers``, ``verify_tls``)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9]{10}$")
    name: str = Field(min_length=1, max_length=200)
    kind: ChannelKind = "webhook"
    settings: WebhookSettings
    created_at: datetime


def make_channel(kind: str, name: str, values: Mapping[str, Any]) -> NotificationChannel:
    """A new channel from ``key=value`` settings. Raises ``DestinationError`` naming the
    first bad key (never quoting a secret)."""
    if kind not in CHANNEL_KINDS:
        raise DestinationError("kind", f"must be one of {', '.join(CHANNEL_KINDS)}")
    extra = next((k for k in values if k.startswith(("filter.", "transform."))), None)
    if extra is not None:
        raise DestinationError(extra, "is not a setting of a notification channel")
    settings, _, _ = parse_settings("webhook", values)
    assert isinstance(settings, WebhookSettings)
    try:
        return NotificationChannel(
            id=new_id(), name=name, settings=settings, created_at=utc_now_ms()
        )
    except ValidationError:
        raise DestinationError("name", "1 to 200 characters") from None


class StateChange(BaseModel):
    """What a notification says: a destination went from one state to another, after
    ``changes`` changes since the last notification (several when they came faster than
    one notification per interval)."""

    type: Literal["destination.state_changed", "authtrail.test"] = "destination.state_changed"
    destination_id: str
    destination_name: str
    platform: str
    previous_state: str | None
    state: str
    changes: int
    first_change_at: datetime
    last_error: str | None = None
    sent_at: datetime
