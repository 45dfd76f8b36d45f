"""The ingest worker's commit logic as a model: ``InFlight`` (batches overlapping between
fetched and durable) with a store that finishes batches in any order, fails some, and a
worker that is rebalanced and restarted. After every step, no offset the worker would
commit passes a record that is not durable; after recovery every record is durable."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import Message
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from infra.kafka.offsets import CommitLedger
from pipeline.app import InFlight
from pipeline.batch import RawRecord

TOPIC = "auth-events"
PARTITIONS = 3


class ControlledStore:
    """A ``BatchProcessor`` stand-in: each batch waits until the test finishes or fails
    it (stored and produced, or refused for good)."""

    def __init__(self) -> None:
        self.waiting: dict[int, tuple[asyncio.Future[None], list[tuple[int, int]]]] = {}
        self._next = 0

    async def process(self, records: list[RawRecord]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[self._next] = (done, [(r.partition, r.offset) for r in records])
        self._next += 1
        await done


def message(partition: int, offset: int) -> Message:
    return Message(TOPIC, partition, offset, 0.0, 0, [], None, b"{}", None)


class IngestCommits(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.committed = [0] * PARTITIONS
        self.end = [0] * PARTITIONS  # records produced so far
        self.durable: set[tuple[int, int]] = set()
        self._worker()

    def _worker(self) -> None:
        """A worker (re)started: a fresh consumer reads on from the committed offsets."""
        self.store = ControlledStore()
        self.ledger = CommitLedger()
        self.in_flight = InFlight(self.store, self.ledger, depth=1_000)  # type: ignore[arg-type]
        self.position = list(self.committed)

    def _settle(self) -> None:
        for _ in range(3):
            self.loop.run_until_complete(asyncio.sleep(0))

    @rule(
        produced=st.lists(st.integers(0, 5), min_size=PARTITIONS, max_size=PARTITIONS),
        most=st.integers(1, 8),
    )
    def fetch(self, produced: list[int], most: int) -> None:
        """Producers add ``produced`` records per partition; one fetch reads up to
        ``most`` of each partition's unread records."""
        messages = []
        for partition, count in enumerate(produced):
            self.end[partition] += count
            read_to = min(self.end[partition], self.position[partition] + most)
            messages += [message(partition, o) for o in range(self.position[partition], read_to)]
            self.position[partition] = max(self.position[partition], read_to)
        if not messages:
            return
        try:
            self.loop.run_until_complete(self.in_flight.submit(messages))
        except RuntimeError:  # a failed batch stops the worker: it is started again
            self._restart()
            return
        self._settle()

    @rule(data=st.data(), ok=st.booleans())
    def finish(self, data: Any, ok: bool) -> None:
        pending = [k for k, (done, _) in self.store.waiting.items() if not done.done()]
        if not pending:
            return
        done, records = self.store.waiting[data.draw(st.sampled_from(pending))]
        if ok:
            self.durable.update(records)
            done.set_result(None)
        else:
            done.set_exception(RuntimeError("refused by the store for good"))
        self._settle()

    @rule()
    def commit(self) -> None:
        """faust's periodic commit: what the ledger allows."""
        for (_topic, partition), offset in self.ledger.take_all().items():
            assert offset >= self.committed[partition]
            self.committed[partition] = offset

    @rule(partition=st.integers(0, PARTITIONS - 1))
    def rebalance(self, partition: int) -> None:
        """The partition is revoked and assigned again: read on from its commit."""
        self.ledger.forget([(TOPIC, partition)])
        self.position[partition] = self.committed[partition]

    @rule()
    def restart(self) -> None:
        self._restart()

    def _restart(self) -> None:
        """A crash or a stop: batches in flight are abandoned, never durable."""
        for done, _ in self.store.waiting.values():
            if not done.done():
                done.cancel()
        self._settle()
        self._worker()

    @invariant()
    def no_commit_passes_a_record_not_durable(self) -> None:
        if not hasattr(self, "committed"):
            return
        for partition, committed in enumerate(self.committed):
            missing = [o for o in range(committed) if (partition, o) not in self.durable]
            assert not missing, f"partition {partition}: committed {committed}, lost {missing}"

    def teardown(self) -> None:
        if not hasattr(self, "loop"):
            return
        try:
            self._restart()
            for _ in range(100):
                if self.committed == self.end:
                    break
                self.fetch([0] * PARTITIONS, 1_000)
                while any(not d.done() for d, _ in self.store.waiting.values()):
                    for done, records in self.store.waiting.values():
                        if not done.done():
                            self.durable.update(records)
                            done.set_result(None)
                    self._settle()
                self.commit()
            assert self.committed == self.end
            assert all(
                (p, o) in self.durable for p in range(PARTITIONS) for o in range(self.end[p])
            )
        finally:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self._settle()
            self.loop.close()


IngestCommits.TestCase.settings = settings(
    max_examples=1000, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
TestIngestCommits = IngestCommits.TestCase
