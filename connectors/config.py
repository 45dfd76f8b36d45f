"""The destinations every connector process sees: the compacted ``authtrail.destinations``
topic (secrets sealed with ``AUTHTRAIL_SECRET_KEY``), read into memory and kept current.

Writes (add, change, pause, resume, remove) go through ``DestinationStore`` from the CLI or
the API; running connectors pick them up within moments, without a restart."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson
from pydantic import SecretStr

from infra.kafka.compacted import CompactedView, ViewedTopic, publish
from infra.kafka.topic_admin import ensure_topics
from infra.secrets import SecretBox, load_keyring
from schemas.destinations import Destination, DestinationError, make_destination
from schemas.events import utc_now_ms
from schemas.platforms import SETTINGS_MODELS
from schemas.settings import Settings
from schemas.topics import destination_dlq_spec

log = logging.getLogger(__name__)

Listener = Callable[[str, Destination | None, Destination | None], None]


# -- the record: the destination as JSON, its secrets sealed -------------------------------
class Sealer(Protocol):
    """Seals and opens secret settings (``infra.secrets.SecretBox``)."""

    def seal(self, text: str) -> str: ...

    def open(self, token: str) -> str: ...


def to_record(destination: Destination, box: Sealer) -> bytes:
    """The topic value: settings with every secret sealed, and the PII rules' key."""
    data = destination.model_dump(mode="json", exclude={"settings", "transform_key"})
    settings = destination.settings.model_dump()
    for key in type(destination.settings).SECRETS:
        settings[key] = sealed(settings.get(key), box)
    data["settings"] = settings
    data["transform_key"] = sealed(destination.transform_key, box)
    return orjson.dumps(data)


def from_record(value: bytes, box: Sealer) -> Destination:
    """A destination from its topic value (secrets opened)."""
    data = orjson.loads(value)
    model = SETTINGS_MODELS[data["platform"]]
    settings = dict(data["settings"])
    for key in model.SECRETS:
        settings[key] = opened(settings.get(key), box)
    data["settings"] = model.model_validate(settings)
    data["transform_key"] = opened(data.get("transform_key"), box)
    return Destination.model_validate(data)


def sealed(value: SecretStr | None, box: Sealer) -> dict[str, str] | None:
    """A secret as a record holds it (``{"sealed": token}``), or None."""
    return None if value is None else {"sealed": box.seal(value.get_secret_value())}


def opened(value: Any, box: Sealer) -> Any:
    """A secret from a record (its clear text), or the value as it is when not sealed."""
    return box.open(value["sealed"]) if isinstance(value, dict) else value


class DestinationStore(ViewedTopic[Destination]):
    """Reads and writes destinations. ``on_change(id, old, new)`` (optional) is called
    from the store's thread for every change, a removal having ``new=None``."""

    def __init__(self, settings: Settings, on_change: Listener | None = None) -> None:
        self._settings = settings
        self._box = SecretBox(load_keyring(settings))
        # Records none of the keys opens (by id): kept apart so a rotation can refuse.
        self.unreadable: set[str] = set()

        def decode(key: str, value: bytes) -> Destination | None:
            try:
                destination = from_record(value, self._box)
            except (DestinationError, ValueError, KeyError) as exc:
                log.error("destination %s cannot be read: %s", key, exc)
                self.unreadable.add(key)
                return None
            self.unreadable.discard(key)
            return destination

        self._view: CompactedView[Destination] = CompactedView(
            settings.kafka_client_config(), settings.topics.destinations, decode, on_change
        )

    def all(self) -> list[Destination]:
        return sorted(self._view.items().values(), key=lambda d: (d.created_at, d.id))

    def require(self, destination_id: str) -> Destination:
        destination = self.get(destination_id)
        if destination is None:
            raise DestinationError("id", f"no destination {destination_id}")
        return destination

    def _write(self, destination: Destination) -> None:
        publish(
            self._settings.kafka_client_config(),
            self._settings.topics.destinations,
            destination.id,
            to_record(destination, self._box),
        )
        self._view.catch_up()

    def add(
        self, platform: str, name: str, values: Mapping[str, Any], paused: bool = False
    ) -> Destination:
        """Validates, creates the destination's dead-letter topic, stores it."""
        destination = make_destination(platform, name, values)
        if paused:
            destination = destination.model_copy(update={"paused": True})
        ensure_topics(self._settings, [destination_dlq_spec(self._settings.topics, destination.id)])
        self._write(destination)
        return destination

    def replace(self, destination: Destination) -> None:
        """Stores a changed destination (validated by its maker: ``updated_destination``)."""
        self.require(destination.id)
        self._write(destination.model_copy(update={"updated_at": utc_now_ms()}))

    def set_paused(self, destination_id: str, paused: bool) -> Destination:
        """Pauses, or resumes: resuming also lifts a suspension (resumed by hand)."""
        current = self.require(destination_id)
        change: dict[str, Any] = {"paused": paused, "updated_at": utc_now_ms()}
        if not paused:
            change["suspended_at"] = None
        updated = current.model_copy(update=change)
        self._write(updated)
        return updated

    def suspend(self, destination_id: str) -> Destination | None:
        """Suspends a destination (its connectors stop; offsets and lag stay) unless it is
        gone, paused or suspended already; the suspended destination, or None."""
        current = self.get(destination_id)
        if current is None or current.paused or current.suspended_at is not None:
            return None
        now = utc_now_ms()
        updated = current.model_copy(update={"suspended_at": now, "updated_at": now})
        self._write(updated)
        return updated

    def reseal(self) -> list[str]:
        """Writes every destination again, its secrets sealed with the current key (a key
        rotation); returns their ids. Raises ``DestinationError`` before writing anything
        when a record opens with none of the keys (``AUTHTRAIL_SECRET_KEY_PREVIOUS`` lacks
        the key it was sealed with)."""
        self._view.catch_up()
        if self.unreadable:
            raise DestinationError(
                "AUTHTRAIL_SECRET_KEY_PREVIOUS",
                "destination(s) "
                + ", ".join(sorted(self.unreadable))
                + " open with none of the keys: add the key they were sealed with; "
                "nothing was re-sealed",
            )
        destinations = self.all()
        for destination in destinations:
            self._write(destination)
        return [d.id for d in destinations]

    def remove(self, destination_id: str) -> Destination:
        current = self.require(destination_id)
        publish(
            self._settings.kafka_client_config(),
            self._settings.topics.destinations,
            destination_id,
            None,
        )
        self._view.catch_up()
        return current
