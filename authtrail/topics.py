"""Creates the pipeline's topics with the admin client. Idempotent."""

from __future__ import annotations

import logging
from typing import Any, cast

from confluent_kafka import Consumer, KafkaException, TopicPartition

from schemas.settings import Settings
from schemas.topic_admin import ensure_topics

log = logging.getLogger(__name__)


def create_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, str]:
    """Creates the pipeline's topics (idempotent); see ``ensure_topics``."""
    return ensure_topics(settings, timeout_s=timeout_s)


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
