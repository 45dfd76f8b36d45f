"""How far a consumer group is behind: committed offsets against high watermarks."""

from __future__ import annotations

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.settings import Settings


def group_lag(
    settings: Settings, admin: AdminClient, probe: Consumer, group: str, timeout_s: float = 10.0
) -> int:
    """Events on the normalized topic ``group`` has not committed yet."""
    topic = settings.topics.normalized
    partitions = sorted(probe.list_topics(topic, timeout=timeout_s).topics[topic].partitions)
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    committed = admin.list_consumer_group_offsets([request])[group].result(timeout_s)
    offsets = {tp.partition: tp.offset for tp in committed.topic_partitions}
    total = 0
    for partition in partitions:
        low, high = probe.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
        position = offsets.get(partition, -1)
        total += high - (position if position >= 0 else low)
    return total
