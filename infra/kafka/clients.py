"""The librdkafka clients of an installation, configured in one place: every consumer
authtrail opens starts from these settings and states only what differs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, cast

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from schemas.settings import Settings

log = logging.getLogger(__name__)


# How long-lived group members (each destination's connector, the notifier) keep their
# membership: it rides out a broker restart. With a session shorter than the outage every
# consumer lost its partitions, dropped its member id and joined anew, and its JoinGroup
# then waited for its old self's session to expire on the restarted broker (15 s more,
# every consumer, every restart); and now and then (1 in ~190 such rejoins here) the
# consumer's coordinator connection never came back: its group requests sat in librdkafka's
# out-queue until they timed out ("GroupCoordinator: Timed out 0 in-flight, 0 retry-queued,
# 1 out-queue"), a JoinGroup only after max.poll.interval.ms + 3 s, and a close() waited on
# that group for good. With librdkafka's default 45 s session a restart of up to ~40 s
# keeps the member: it heartbeats again and fetches on, no rejoin. The cost: a member
# killed outright holds its partitions 45 s. Heartbeats come from librdkafka's own thread,
# so a busy interpreter does not miss them.
SESSION_TIMEOUT_MS = 45_000
# A connector polls at least every few seconds, waits included, so with this a group request
# that goes unanswered is given up after 63 s, not ten minutes.
CONNECTOR_MAX_POLL_INTERVAL_MS = 60_000


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
    if "debug" in base:
        log.setLevel(logging.DEBUG)  # librdkafka's debug lines come at DEBUG
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


# librdkafka's close waits until the group is left: its outstanding commits answered, its
# partitions let go. A consumer wedged in a group state it never leaves makes that wait
# last for good, and the thread that asked with it.
CLOSE_WITHIN_S = 10.0


def close_consumer(consumer: Consumer, what: str, within_s: float = CLOSE_WITHIN_S) -> bool:
    """Closes ``consumer`` from a helper thread and waits at most ``within_s`` for it.
    True when it closed; False when it did not in time, logged: the handle is left to
    finish (or not) on its own, and the caller goes on, e.g. with a new consumer that
    reads on from the group's committed offsets."""
    done = threading.Event()

    def close() -> None:
        try:
            consumer.close()
        except Exception as exc:  # closed already, or failing: nothing left to wait for
            log.info("%s: consumer close: %s", what, exc)
        finally:
            done.set()

    threading.Thread(target=close, name=f"close-{what}", daemon=True).start()
    if done.wait(within_s):
        return True
    log.warning(
        "%s: the consumer did not close within %.0f s (librdkafka still waits to leave the "
        "group); it is left behind",
        what,
        within_s,
    )
    return False
