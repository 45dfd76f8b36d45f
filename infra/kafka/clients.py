"""The librdkafka clients of an installation, configured in one place: every consumer
authtrail opens starts from these settings and states only what differs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from schemas.settings import Settings

log = logging.getLogger(__name__)


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient({**settings.kafka_client_config(), "logger": cast(Any, log)})


def kafka_consumer(
    connection: Settings | Mapping[str, str],
    group: str,
    overrides: Mapping[str, Any] | None = None,
) -> Consumer:
    """A consumer in ``group`` that never commits on its own (the caller commits what it
    made durable, or nothing), starts at the earliest offset when the group has none, and
    logs through Python's logging (librdkafka's own lines, secrets never among them).
    ``connection``: the settings, or a client config already derived from them."""
    base = (
        connection.kafka_client_config() if isinstance(connection, Settings) else dict(connection)
    )
    return Consumer(
        {
            **base,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "logger": cast(Any, log),
            **(overrides or {}),
        }
    )
