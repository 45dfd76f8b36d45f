"""Kafka administration: the admin client and a probe consumer (offsets, watermarks) as
every process configures them, and creating topics idempotently: the pipeline's at set-up,
a destination's dead-letter topic when the destination is added."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from infra.kafka.clients import admin_client, kafka_consumer
from schemas.settings import Settings
from schemas.topics import TopicSpec, topic_specs

log = logging.getLogger(__name__)


def probe_consumer(settings: Settings, group: str) -> Consumer:
    """A consumer that only asks (watermarks, offsets for times, metadata): it never
    subscribes nor commits; close it after use."""
    return kafka_consumer(settings, group)


def ensure_topics(
    settings: Settings, specs: Iterable[TopicSpec] | None = None, timeout_s: float = 30.0
) -> dict[str, str]:
    """Creates every missing topic of ``specs`` (default: the pipeline's); returns
    ``{name: "created" | "exists"}``. Raises ``KafkaException`` for any other failure
    (authorisation, broker unreachable)."""
    admin = admin_client(settings)
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    result: dict[str, str] = {}
    wanted = []
    for spec in topic_specs(settings.topics) if specs is None else specs:
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
    consumer = kafka_consumer(settings, group)
    try:
        consumer.committed([TopicPartition(settings.topics.raw, 0)], timeout=timeout_s)
    except KafkaException as exc:
        log.warning("group coordinator not ready yet (%s); the worker will retry", exc)
    finally:
        consumer.close()
