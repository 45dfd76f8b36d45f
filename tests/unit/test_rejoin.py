"""A destination's consumer that lost its partitions and got none back is stuck rejoining
its group (a broker restart left librdkafka's JoinGroup queued for good, and a platform
then never got the events produced after it): after ``REJOIN_AFTER_S`` the worker opens a
new consumer. One that never had partitions (more replicas than partitions) is left be."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from connectors.runtime import worker as worker_module
from connectors.runtime.worker import DestinationWorker
from schemas.destinations import make_destination
from schemas.settings import Settings
from tests.samples import DD_KEY

TOPIC = "auth-events.normalized"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(worker_module.time, "monotonic", fake)
    return fake


def new_worker() -> DestinationWorker:
    settings = Settings(data_dir=Path("/nonexistent"), kafka_bootstrap="127.0.0.1:9")
    return DestinationWorker(settings, make_destination("datadog", "rejoin", {"api_key": DD_KEY}))


def parts(*numbers: int) -> list[TopicPartition]:
    return [TopicPartition(TOPIC, n) for n in numbers]


def test_partitions_lost_and_not_back_in_time_mean_rejoin(clock: Clock) -> None:
    worker = new_worker()
    worker._on_assign(None, parts(0, 1))  # type: ignore[arg-type]
    worker._on_revoke(None, parts(0))  # type: ignore[arg-type]
    clock.now += worker_module.REJOIN_AFTER_S + 1
    assert not worker._stuck_rejoining()  # it still holds partition 1
    worker._on_revoke(None, parts(1))  # type: ignore[arg-type]
    clock.now += worker_module.REJOIN_AFTER_S - 1
    assert not worker._stuck_rejoining()
    clock.now += 2
    assert worker._stuck_rejoining()


def test_partitions_back_in_time_mean_no_rejoin(clock: Clock) -> None:
    worker = new_worker()
    worker._on_assign(None, parts(0))  # type: ignore[arg-type]
    worker._on_revoke(None, parts(0))  # type: ignore[arg-type]
    clock.now += 10
    worker._on_assign(None, parts(2))  # type: ignore[arg-type]
    clock.now += worker_module.REJOIN_AFTER_S * 3
    assert not worker._stuck_rejoining()


def test_a_member_that_never_had_partitions_is_left_be(clock: Clock) -> None:
    worker = new_worker()
    worker._on_revoke(None, [])  # type: ignore[arg-type]
    clock.now += worker_module.REJOIN_AFTER_S * 10
    assert not worker._stuck_rejoining()
