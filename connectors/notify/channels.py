"""The notification channels every connector process sees: the compacted
``authtrail.notification-channels`` topic (secrets sealed with ``AUTHTRAIL_SECRET_KEY``),
read into memory and kept current; written by the CLI and the API."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson

from connectors.config import Sealer, opened, sealed
from infra.kafka.compacted import CompactedView, ViewedTopic, publish
from infra.secrets import SecretBox, load_keyring
from schemas.destinations import DestinationError
from schemas.notifications import NotificationChannel, make_channel
from schemas.platforms import WebhookSettings
from schemas.settings import Settings

log = logging.getLogger(__name__)


def to_record(channel: NotificationChannel, box: Sealer) -> bytes:
    data = channel.model_dump(mode="json", exclude={"settings"})
    settings = channel.settings.model_dump()
    for key in WebhookSettings.SECRETS:
        settings[key] = sealed(settings.get(key), box)
    data["settings"] = settings
    return orjson.dumps(data)


def from_record(value: bytes, box: Sealer) -> NotificationChannel:
    data = orjson.loads(value)
    settings = dict(data["settings"])
    for key in WebhookSettings.SECRETS:
        settings[key] = opened(settings.get(key), box)
    data["settings"] = WebhookSettings.model_validate(settings)
    return NotificationChannel.model_validate(data)


class ChannelStore(ViewedTopic[NotificationChannel]):
    """Reads and writes notification channels."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._box = SecretBox(load_keyring(settings))

        def decode(key: str, value: bytes) -> NotificationChannel | None:
            try:
                return from_record(value, self._box)
            except (DestinationError, ValueError, KeyError) as exc:
                log.error("notification channel %s cannot be read: %s", key, exc)
                return None

        self._view: CompactedView[NotificationChannel] = CompactedView(
            settings.kafka_client_config(), settings.topics.notification_channels, decode
        )

    def all(self) -> list[NotificationChannel]:
        return sorted(self._view.items().values(), key=lambda c: (c.created_at, c.id))

    def add(self, kind: str, name: str, values: Mapping[str, Any]) -> NotificationChannel:
        """Validates and stores a channel (``DestinationError`` names a bad key)."""
        channel = make_channel(kind, name, values)
        self._publish(channel.id, to_record(channel, self._box))
        return channel

    def remove(self, channel_id: str) -> NotificationChannel:
        current = self.get(channel_id)
        if current is None:
            raise DestinationError("id", f"no notification channel {channel_id}")
        self._publish(channel_id, None)
        return current

    def _publish(self, key: str, value: bytes | None) -> None:
        publish(
            self._settings.kafka_client_config(),
            self._settings.topics.notification_channels,
            key,
            value,
        )
        self._view.catch_up()
