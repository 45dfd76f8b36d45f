"""Kafka topic names. Every process derives its names from here, so a prefix set with
``AUTHTRAIL_TOPIC_PREFIX`` (several installations sharing one cluster, or test isolation)
applies everywhere at once."""

from __future__ import annotations

from dataclasses import dataclass

RAW = "auth-events"
NORMALIZED = "auth-events.normalized"
DLQ = "auth-events.dlq"
TOKENS = "authtrail.tokens"  # compacted: API tokens (hashed), keyed by token id
DESTINATIONS = "authtrail.destinations"  # compacted: destinations (secrets sealed), by id
CONNECTOR_STATUS = "authtrail.connector-status"  # compacted: status per destination
# compacted: where state changes of destinations are told (secrets sealed), by id
NOTIFICATION_CHANNELS = "authtrail.notification-channels"
VIEWS = "authtrail.views"  # compacted: the Logs view's saved views, by id
ACCOUNT_RETENTION = "authtrail.account-retention"  # compacted: accounts' own retention
ERASURES = "authtrail.erasures"  # compacted: erasures of people, by erasure id

# Headers of every dead-lettered record (the ingest DLQ and each destination's).
DLQ_REASON_HEADER = "authtrail-reason"
DLQ_FIELD_HEADER = "authtrail-field"  # ingest: the field the reason is about
DLQ_SOURCE_HEADER = "authtrail-source"  # "<topic>/<partition>/<offset>"
DLQ_TIME_HEADER = "authtrail-dead-lettered-at"  # RFC 3339, UTC
# A destination's dead letters also say where they were going and what the platform said.
DLQ_DESTINATION_HEADER = "authtrail-destination"
DLQ_PLATFORM_HEADER = "authtrail-platform"
DLQ_PLATFORM_STATUS_HEADER = "authtrail-platform-status"
DLQ_PLATFORM_CODE_HEADER = "authtrail-platform-code"
DLQ_PLATFORM_REPLY_HEADER = "authtrail-platform-reply"


@dataclass(frozen=True, slots=True)
class Topics:
    """The concrete topic names of one installation."""

    raw: str
    normalized: str
    dlq: str
    tokens: str
    destinations: str
    connector_status: str
    notification_channels: str
    views: str
    account_retention: str
    erasures: str
    prefix: str = ""

    @classmethod
    def with_prefix(cls, prefix: str = "") -> Topics:
        return cls(
            raw=prefix + RAW,
            normalized=prefix + NORMALIZED,
            dlq=prefix + DLQ,
            tokens=prefix + TOKENS,
            destinations=prefix + DESTINATIONS,
            connector_status=prefix + CONNECTOR_STATUS,
            notification_channels=prefix + NOTIFICATION_CHANNELS,
            views=prefix + VIEWS,
            account_retention=prefix + ACCOUNT_RETENTION,
            erasures=prefix + ERASURES,
            prefix=prefix,
        )

    def destination_dlq(self, destination_id: str) -> str:
        """Where a destination's permanently rejected events go."""
        return f"{self.dlq}.{destination_id}"

    def all(self) -> tuple[str, ...]:
        return (
            self.raw,
            self.normalized,
            self.dlq,
            self.tokens,
            self.destinations,
            self.connector_status,
            self.notification_channels,
            self.views,
            self.account_retention,
            self.erasures,
        )


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How a topic is created: its topic-level configs beside partitions/replication."""

    name: str
    configs: dict[str, str]
    partitions: int | None = None  # None: AUTHTRAIL_TOPIC_PARTITIONS


def topic_specs(topics: Topics) -> tuple[TopicSpec, ...]:
    """The pipeline's topics. Retention bounds how far a stopped destination can fall
    behind and still catch up (7 days), and how long dead letters wait (30 days)."""
    week = str(7 * 24 * 3600 * 1000)
    return (
        TopicSpec(topics.raw, {"retention.ms": week}),
        TopicSpec(topics.normalized, {"retention.ms": week}),
        TopicSpec(topics.dlq, {"retention.ms": str(30 * 24 * 3600 * 1000)}),
        # Configuration: compacted, kept forever (the latest record per key is the state).
        TopicSpec(topics.tokens, {"cleanup.policy": "compact", "retention.ms": "-1"}, 1),
        TopicSpec(topics.destinations, {"cleanup.policy": "compact", "retention.ms": "-1"}, 1),
        TopicSpec(topics.connector_status, {"cleanup.policy": "compact"}, 1),
        TopicSpec(
            topics.notification_channels, {"cleanup.policy": "compact", "retention.ms": "-1"}, 1
        ),
        TopicSpec(topics.views, {"cleanup.policy": "compact", "retention.ms": "-1"}, 1),
        TopicSpec(topics.account_retention, {"cleanup.policy": "compact", "retention.ms": "-1"}, 1),
        # Erasures hold keyed hashes of the people erased, never their identifiers.
        TopicSpec(topics.erasures, {"cleanup.policy": "compact", "retention.ms": "-1"}, 1),
    )


def destination_dlq_spec(topics: Topics, destination_id: str) -> TopicSpec:
    """A destination's dead-letter topic: 30 days to inspect and redrive."""
    return TopicSpec(
        topics.destination_dlq(destination_id), {"retention.ms": str(30 * 24 * 3600 * 1000)}
    )
