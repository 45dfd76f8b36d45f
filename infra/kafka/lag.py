"""How far a consumer group is behind: committed offsets against high watermarks."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.settings import Settings


@dataclass(frozen=True, slots=True)
class PartitionOffsets:
    """One partition of the normalized topic as a group sees it: where the group will read
    on from (its commit, or the log's start when it has none) and the high watermark."""

    position: int
    high: int

    @property
    def lag(self) -> int:
        return max(self.high - self.position, 0)


def topic_watermarks(
    settings: Settings, probe: Consumer, timeout_s: float = 10.0
) -> dict[int, tuple[int, int]]:
    """The normalized topic's (low, high) watermarks by partition: the same for every
    group, so asked once for all of them."""
    topic = settings.topics.normalized
    partitions = sorted(probe.list_topics(topic, timeout=timeout_s).topics[topic].partitions)
    return {
        p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
        for p in partitions
    }


def group_offsets(
    settings: Settings,
    admin: AdminClient,
    group: str,
    watermarks: dict[int, tuple[int, int]],
    timeout_s: float = 10.0,
) -> dict[int, PartitionOffsets]:
    """``group``'s committed offsets on the normalized topic against ``watermarks``.
    Raises what the admin client raises when the broker does not answer in time."""
    topic = settings.topics.normalized
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in watermarks])
    committed = admin.list_consumer_group_offsets([request])[group].result(timeout_s)
    offsets = {tp.partition: tp.offset for tp in committed.topic_partitions}
    out: dict[int, PartitionOffsets] = {}
    for partition, (low, high) in watermarks.items():
        position = offsets.get(partition, -1)
        out[partition] = PartitionOffsets(position if position >= 0 else low, high)
    return out


def member_partitions(
    settings: Settings, admin: AdminClient, groups: list[str], timeout_s: float = 10.0
) -> dict[str, dict[str, set[int]] | None]:
    """Per group (one request for all of them), the partitions of the normalized topic its
    coordinator has given each member, by member id; None for a group not described in
    time."""
    topic = settings.topics.normalized
    out: dict[str, dict[str, set[int]] | None] = {}
    for group, future in admin.describe_consumer_groups(groups).items():
        try:
            description = future.result(timeout_s)
        except Exception:
            out[group] = None
            continue
        out[group] = {
            member.member_id: {
                tp.partition for tp in member.assignment.topic_partitions if tp.topic == topic
            }
            for member in description.members
        }
    return out


def group_lag(
    settings: Settings, admin: AdminClient, probe: Consumer, group: str, timeout_s: float = 10.0
) -> int:
    """Events on the normalized topic ``group`` has not committed yet."""
    watermarks = topic_watermarks(settings, probe, timeout_s)
    offsets = group_offsets(settings, admin, group, watermarks, timeout_s)
    return sum(p.lag for p in offsets.values())
