"""A destination worker's commit logic as a model: the worker's own steps (``_prepare``
enters a batch, ``_finish`` counts a delivered one and commits, ``_on_revoke`` hands
partitions over) driven with a consumer that records commits, over random interleavings
of batches delivered in any order, batches interrupted mid-retry (a pause, an edit, a
stop), rebalances and restarts. No commit may pass an event that was not delivered."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import TopicPartition
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from connectors.runtime.worker import DestinationWorker
from connectors.sinks.base import EventHead
from schemas.destinations import make_destination
from schemas.settings import Settings
from tests.samples import DD_KEY

TOPIC = "auth-events.normalized"
PARTITIONS = 3
EVENT = orjson.dumps(
    {
        "schema_version": 1,
        "event_id": "e",
        "event_key": "login.completed",
        "outcome": "success",
        "occurred_at": "2026-11-26T12:00:00.000Z",
        "account_id": "acc_1",
    }
)


class Record:
    """The parts of a confluent-kafka ``Message`` the worker reads."""

    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return EVENT

    def key(self) -> bytes | None:
        return None

    def error(self) -> None:
        return None


class RecordingConsumer:
    """Keeps the group's committed offsets as the broker would."""

    def __init__(self) -> None:
        self.committed = [0] * PARTITIONS

    def commit(self, offsets: list[TopicPartition], asynchronous: bool = True) -> None:
        for tp in offsets:
            self.committed[tp.partition] = max(self.committed[tp.partition], tp.offset)

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]

    def resume(self, partitions: list[TopicPartition]) -> None:
        pass


class PassThroughSink:
    platform = "datadog"

    def encode(self, head: EventHead, raw: bytes) -> bytes:
        return raw


class ConnectorCommits(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.settings = Settings(data_dir=Path("/nonexistent"), kafka_bootstrap="127.0.0.1:9")
        self.destination = make_destination("datadog", "model", {"api_key": DD_KEY})
        self.consumer = RecordingConsumer()  # the group outlives each worker
        self.end = [0] * PARTITIONS
        self.delivered: set[tuple[int, int]] = set()
        self._worker()

    def _worker(self) -> None:
        self.worker = DestinationWorker(self.settings, self.destination)
        self.position = list(self.consumer.committed)
        self.in_flight: list[tuple[Any, list[Record]]] = []

    @rule(
        produced=st.lists(st.integers(0, 4), min_size=PARTITIONS, max_size=PARTITIONS),
        most=st.integers(1, 6),
    )
    def read(self, produced: list[int], most: int) -> None:
        batch: list[Record] = []
        for partition, count in enumerate(produced):
            self.end[partition] += count
            read_to = min(self.end[partition], self.position[partition] + most)
            batch += [Record(partition, o) for o in range(self.position[partition], read_to)]
            self.position[partition] = max(self.position[partition], read_to)
        if batch:
            prepared = self.worker._prepare(batch, PassThroughSink())  # type: ignore[arg-type]
            self.in_flight.append((prepared, batch))

    @rule(data=st.data())
    def deliver(self, data: Any) -> None:
        """A batch is delivered: possibly out of order, after batches read later."""
        if not self.in_flight:
            return
        prepared, batch = self.in_flight.pop(data.draw(st.integers(0, len(self.in_flight) - 1)))
        self.delivered.update((r.partition(), r.offset()) for r in batch)
        done: Future[list[Any]] = Future()
        done.set_result([])
        self.worker._finish(self.consumer, prepared, done, [])  # type: ignore[arg-type]

    @rule(data=st.data())
    def interrupt(self, data: Any) -> None:
        """A batch given up mid-retry (pause, edit, stop, refused credentials)."""
        if self.in_flight:
            self.in_flight.pop(data.draw(st.integers(0, len(self.in_flight) - 1)))

    @rule(partition=st.integers(0, PARTITIONS - 1))
    def rebalance(self, partition: int) -> None:
        """Revoked and assigned again: read on from the partition's commit."""
        self.worker._on_revoke(self.consumer, [TopicPartition(TOPIC, partition)])  # type: ignore[arg-type]
        self.position[partition] = self.consumer.committed[partition]

    @rule()
    def restart(self) -> None:
        """The worker stopped (its batches in flight abandoned) and a new one started."""
        self._worker()

    @invariant()
    def no_commit_passes_an_undelivered_event(self) -> None:
        if not hasattr(self, "consumer"):
            return
        for partition, committed in enumerate(self.consumer.committed):
            missing = [o for o in range(committed) if (partition, o) not in self.delivered]
            assert not missing, f"partition {partition}: committed {committed}, lost {missing}"

    def teardown(self) -> None:
        """Recovery: a new worker reads everything not committed and delivers it."""
        if not hasattr(self, "consumer"):
            return
        self._worker()
        self.read([0] * PARTITIONS, 10_000)
        while self.in_flight:
            prepared, batch = self.in_flight.pop(0)
            self.delivered.update((r.partition(), r.offset()) for r in batch)
            done: Future[list[Any]] = Future()
            done.set_result([])
            self.worker._finish(self.consumer, prepared, done, [])  # type: ignore[arg-type]
        assert self.consumer.committed == self.end
        assert all((p, o) in self.delivered for p in range(PARTITIONS) for o in range(self.end[p]))


ConnectorCommits.TestCase.settings = settings(
    max_examples=1000, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
TestConnectorCommits = ConnectorCommits.TestCase
