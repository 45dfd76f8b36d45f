"""Replaying a destination from a time: its consumer group is moved back (or forward) to the
first normalized event at or after that time, and its connectors deliver everything from
there again.

Kafka changes a group's offsets only while the group has no members, so the destination is
paused first (its connectors leave the group within seconds, wherever they run), the
offsets are set, and it is resumed unless it was paused before. Events are found by their
Kafka timestamp (when the pipeline wrote them), which follows ``received_at``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from connectors.config import DestinationStore
from infra.kafka.clients import admin_client
from infra.kafka.topic_admin import probe_consumer
from schemas.destinations import Destination
from schemas.settings import Settings

log = logging.getLogger(__name__)


class ReplayError(RuntimeError):
    """The group's offsets were not changed; the message says why."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    offsets: dict[int, int]  # partition -> the offset delivery starts again from
    events: int  # events at or after the time, to be delivered again


def replay(
    settings: Settings,
    store: DestinationStore,
    destination: Destination,
    since: datetime,
    timeout_s: float = 60.0,
) -> ReplayResult:
    """See the module docstring. Raises ``ReplayError`` when the group does not empty
    within ``timeout_s`` (a connector that cannot be reached still holds it)."""
    topic = settings.topics.normalized
    admin = admin_client(settings)
    probe = probe_consumer(settings, "authtrail-replay-probe")
    was_paused = destination.paused
    try:
        if not was_paused:
            store.set_paused(destination.id, True)
        _wait_until_empty(admin, destination.group_id, timeout_s)
        partitions = sorted(probe.list_topics(topic, timeout=10).topics[topic].partitions)
        ms = int(since.timestamp() * 1000)
        found = probe.offsets_for_times([TopicPartition(topic, p, ms) for p in partitions], 10)
        offsets: dict[int, int] = {}
        events = 0
        for tp in found:
            _low, high = probe.get_watermark_offsets(TopicPartition(topic, tp.partition), 10)
            offsets[tp.partition] = tp.offset if tp.offset >= 0 else high  # -1: none that late
            events += high - offsets[tp.partition]
        request = ConsumerGroupTopicPartitions(
            destination.group_id, [TopicPartition(topic, p, o) for p, o in offsets.items()]
        )
        admin.alter_consumer_group_offsets([request])[destination.group_id].result(30)
        log.info(
            "destination %s replays from %s: %d events", destination.id, since.isoformat(), events
        )
        return ReplayResult(offsets, events)
    finally:
        probe.close()
        if not was_paused:
            store.set_paused(destination.id, False)


def _wait_until_empty(admin: AdminClient, group: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        description = admin.describe_consumer_groups([group])[group].result(10)
        if description.state in (ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD) or (
            not description.members
        ):
            return
        if time.monotonic() > deadline:
            raise ReplayError(
                f"{len(description.members)} connector(s) still hold {group} "
                f"after {timeout_s:.0f} s; nothing changed"
            )
        time.sleep(0.5)
