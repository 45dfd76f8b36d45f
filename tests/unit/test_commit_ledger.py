"""The commit rule as a model: over random interleavings of reads, batches finishing in
any order, failures, rebalances and restarts, no committed offset ever passes a record
that is not durable, and after recovery every record is durable at least once."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from infra.kafka.offsets import Batch, CommitLedger, Partition

TOPIC = "auth-events"


class Log:
    """One partition's records: offsets with holes (compaction, transaction markers)."""

    def __init__(self, offsets: list[int]) -> None:
        self.offsets = offsets

    def after(self, position: int, count: int) -> list[int]:
        return [o for o in self.offsets if o >= position][:count]

    @property
    def end(self) -> int:
        return self.offsets[-1] + 1 if self.offsets else 0


class CommitRule(RuleBasedStateMachine):
    """A consumer (positions, the group's committed offsets) reading through a ledger."""

    batches = Bundle("batches")

    @initialize(
        logs=st.lists(
            st.lists(st.integers(1, 3), min_size=0, max_size=30).map(
                # Steps between consecutive offsets: 1 is no hole.
                lambda steps: [sum(steps[: i + 1]) - 1 for i in range(len(steps))]
            ),
            min_size=1,
            max_size=3,
        )
    )
    def start(self, logs: list[list[int]]) -> None:
        self.logs = {(TOPIC, p): Log(offsets) for p, offsets in enumerate(logs)}
        self.ledger = CommitLedger()
        self.position = dict.fromkeys(self.logs, 0)
        self.committed = dict.fromkeys(self.logs, 0)
        self.durable: set[tuple[Partition, int]] = set()
        self.live: dict[int, list[tuple[Partition, int]]] = {}  # batch id -> its records

    @rule(target=batches, wanted=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 6))))
    def read(self, wanted: list[tuple[int, int]]) -> Batch:
        records: list[tuple[Partition, int]] = []
        for index, count in wanted:
            partition = (TOPIC, index)
            if partition not in self.logs:
                continue
            taken = self.logs[partition].after(self.position[partition], count)
            records += [(partition, offset) for offset in taken]
            if taken:
                self.position[partition] = taken[-1] + 1
        batch = self.ledger.track(records)
        self.live[id(batch)] = records
        return batch

    @rule(batch=consumes(batches))
    def finish(self, batch: Batch) -> None:
        """Stored and produced / delivered: possibly long after a rebalance or restart."""
        records = self.live.pop(id(batch), [])
        self.durable.update(records)
        self.ledger.durable(batch)

    @rule(batch=consumes(batches))
    def fail(self, batch: Batch) -> None:
        """Failed, interrupted or abandoned: never durable."""
        self.live.pop(id(batch), None)

    @rule()
    def commit(self) -> None:
        for partition, offset in self.ledger.take_all().items():
            assert offset >= self.committed[partition], "a commit went backwards"
            self.committed[partition] = offset

    @rule(index=st.integers(0, 2), commit_first=st.booleans())
    def rebalance(self, index: int, commit_first: bool) -> None:
        """The partition is revoked (committing what is ready, as faust does, or not, as
        a lost partition), then assigned again: read again from the committed offset."""
        partition = (TOPIC, index)
        if partition not in self.logs:
            return
        if commit_first and (offset := self.ledger.take(partition)) is not None:
            self.committed[partition] = offset
        self.ledger.forget([partition])
        self.position[partition] = self.committed[partition]

    @rule()
    def restart(self) -> None:
        """A stop or crash: everything not committed is read again."""
        self.ledger.forget_all()
        self.position = dict(self.committed)

    @invariant()
    def nothing_committed_past_a_record_not_durable(self) -> None:
        for partition, log in self.logs.items():
            below = [o for o in log.offsets if o < self.committed[partition]]
            missing = [o for o in below if (partition, o) not in self.durable]
            assert not missing, f"{partition}: committed {self.committed[partition]}"

    def teardown(self) -> None:
        """Recovery: after a restart, reading and finishing everything makes every record
        durable at least once, and commits to the end of every partition."""
        if not hasattr(self, "logs"):
            return
        self.restart()
        while any(self.position[p] < log.end for p, log in self.logs.items()):
            batch = self.read([(p[1], 5) for p in self.logs])
            self.finish(batch)
            self.commit()
        for partition, log in self.logs.items():
            assert all((partition, o) in self.durable for o in log.offsets)
            assert self.committed[partition] == log.end


CommitRule.TestCase.settings = settings(
    max_examples=1000, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
TestCommitRule = CommitRule.TestCase


def test_a_batch_that_never_finishes_holds_later_ones() -> None:
    ledger = CommitLedger()
    first = ledger.track([(("t", 0), 0), (("t", 0), 1), (("t", 1), 0)])
    second = ledger.track([(("t", 0), 2), (("t", 1), 1)])
    ledger.durable(second)
    assert ledger.take_all() == {}
    ledger.durable(first)
    assert ledger.take_all() == {("t", 0): 3, ("t", 1): 2}


def test_reading_back_needs_forgetting_first() -> None:
    ledger = CommitLedger()
    ledger.track([(("t", 0), 5)])
    with pytest.raises(ValueError, match="read again"):
        ledger.track([(("t", 0), 5)])
    ledger.forget([("t", 0)])
    ledger.track([(("t", 0), 5)])
