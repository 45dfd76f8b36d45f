"""Creates the pipeline's topics with the admin client. Idempotent."""

from __future__ import annotations

import logging
from typing import Any, cast

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from schemas.settings import Settings
from schemas.topics import topic_specs

log = logging.getLogger(__name__)


def create_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, str]:
    """Creates every missing topic; returns ``{name: "created" | "exists"}``. Raises
    ``KafkaException`` for any other failure (authorisation, broker unreachable)."""
    admin = AdminClient({**settings.kafka_client_config(), "logger": cast(Any, log)})
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    result: dict[str, str] = {}
    wanted = []
    for spec in topic_specs(settings.topics):
        if spec.name in existing:
            result[spec.name] = "exists"
        else:
            wanted.append(
                NewTopic(
                    spec.name,
                    spec.partitions or settings.topic_partitions,
                    settings.topic_replication,
                    config=spec.configs,
                )
            )
    if wanted:
        for name, future in admin.create_topics(wanted, operation_timeout=timeout_s).items():
            try:
                future.result()
                result[name] = "created"
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
                result[name] = "exists"
    return result


def wait_for_group_coordinator(settings: Settings, group: str, timeout_s: float = 60.0) -> None:
    """Blocks until the broker can coordinate ``group`` (a fresh broker loads its offsets
    topic first), so the worker's first join does not fail noisily."""
    consumer = Consumer(
        {**settings.kafka_client_config(), "group.id": group, "logger": cast(Any, log)}
    )
    try:
        consumer.committed([TopicPartition(settings.topics.raw, 0)], timeout=timeout_s)
    except KafkaException as exc:
        log.warning("group coordinator not ready yet (%s); the worker will retry", exc)
    finally:
        consumer.close()
