"""The archive's exactly-once rule as a model: over random interleavings of produces, reads,
time passing, file closes and crashes at any point of a close (before its end is recorded,
between any two puts, before its end is committed), no event is ever in two objects of
the bucket, and once the connector runs on without crashing every event is in exactly
one. The protocol is the one ``connectors.runtime.archive.ArchiveWorker`` follows: record
a range's end in the commit metadata, put its files (keys from their offsets), commit
its end; a new owner closes its first range at the recorded end."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from connectors.runtime.archive import end_mark, recorded_end
from connectors.runtime.archive_files import OpenFiles, Range

PARTITIONS = (0, 1)
PATHS = ("account=a/date=2026-11-01/hour=00", "account=a/date=2026-11-01/hour=01", "account=b")
MAX_BYTES = 40
MAX_SECONDS = 5.0


class Archive(RuleBasedStateMachine):
    """Kafka (per partition: records with holes, the committed offset and its metadata), a
    bucket (key -> the events it holds) and one connector that may crash."""

    @initialize()
    def start(self) -> None:
        self.log: dict[int, list[tuple[int, str | None]]] = {p: [] for p in PARTITIONS}
        self.next_offset = dict.fromkeys(PARTITIONS, 0)
        self.committed: dict[int, tuple[int, str]] = dict.fromkeys(PARTITIONS, (0, ""))
        self.bucket: dict[str, list[tuple[int, int]]] = {}
        self.now = 0.0
        self._restart()

    def _restart(self) -> None:
        self.files = OpenFiles(MAX_BYTES, MAX_SECONDS)
        self.position = {}
        for partition in PARTITIONS:
            offset, metadata = self.committed[partition]
            self.files.assigned(partition, recorded_end(metadata))
            self.position[partition] = offset

    # -- the world ------------------------------------------------------------------------------
    @rule(
        partition=st.sampled_from(PARTITIONS),
        paths=st.lists(st.sampled_from((*PATHS, None)), min_size=1, max_size=6),
        gap=st.integers(0, 2),
    )
    def produce(self, partition: int, paths: list[str | None], gap: int) -> None:
        """Records (None: filtered out); ``gap``: offsets left empty (markers, compaction)."""
        for path in paths:
            self.next_offset[partition] += gap
            self.log[partition].append((self.next_offset[partition], path))
            self.next_offset[partition] += 1

    @rule(seconds=st.floats(0.5, 8.0))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    # -- the connector --------------------------------------------------------------------------
    @rule(partition=st.sampled_from(PARTITIONS), count=st.integers(1, 5))
    def read(self, partition: int, count: int) -> None:
        records = [r for r in self.log[partition] if r[0] >= self.position[partition]][:count]
        for offset, path in records:
            if path is None:
                self.files.skip(partition, offset, self.now)
            else:
                line = f"{partition}:{offset}\n".encode()
                self.files.add(partition, offset, path, line, self.now)
            self.position[partition] = offset + 1

    @rule(crash_at=st.one_of(st.none(), st.integers(0, 8)))
    def close(self, crash_at: int | None) -> None:
        """One close of what is due; ``crash_at``: the step it crashes before (0: before
        recording the ends; 1..n: before the n-th put; beyond: before the commit)."""
        due = self.files.due(self.now)
        if not due:
            return
        steps = 0
        if crash_at == steps:
            return self._crash()
        for closing in due:
            if closing.files and not closing.recorded:
                self.committed[closing.partition] = (closing.first, end_mark(closing.last))
                closing.end = closing.last
        for closing in due:
            for path, file in closing.files.items():
                steps += 1
                if crash_at == steps:
                    return self._crash()
                key = f"{path}/{closing.partition}-{file.first}-{file.last}"
                self.bucket[key] = [
                    (int(p), int(o)) for p, o in (x.decode().split(":") for x in file.lines)
                ]
        if crash_at is not None:
            return self._crash()
        for closing in due:
            self.committed[closing.partition] = (closing.last + 1, "")
            self.files.closed(closing)
        return None

    def _crash(self) -> None:
        self._restart()

    # -- the rule --------------------------------------------------------------------------------
    def _counts(self) -> dict[tuple[int, int], int]:
        counts: dict[tuple[int, int], int] = {}
        for events in self.bucket.values():
            for event in events:
                counts[event] = counts.get(event, 0) + 1
        return counts

    @invariant()
    def never_twice(self) -> None:
        twice = {e: n for e, n in self._counts().items() if n > 1}
        assert not twice, f"events in more than one object: {twice}"

    def teardown(self) -> None:
        """Run on without crashes: read everything, let every range close."""
        if not hasattr(self, "files"):
            return
        for _ in range(200):
            for partition in PARTITIONS:
                self.read(partition, 1000)
            self.now += MAX_SECONDS
            self.close(None)
            if not any(self._pending()):
                break
        expected = {
            (p, offset) for p, records in self.log.items() for offset, path in records if path
        }
        counts = self._counts()
        assert set(counts) == expected, (
            f"missing {expected - set(counts)}, extra {set(counts) - expected}"
        )
        assert all(n == 1 for n in counts.values())
        for partition, records in self.log.items():
            if records:
                assert self.committed[partition][0] == records[-1][0] + 1

    def _pending(self) -> list[Range]:
        return self.files.due(self.now + MAX_SECONDS)


Archive.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_archive_exactly_once = Archive.TestCase


def test_a_recorded_end_closes_the_first_range_there_and_not_sooner() -> None:
    files = OpenFiles(max_bytes=10, max_seconds=1.0)
    files.assigned(0, end=7)
    for offset in range(5, 12):
        files.add(0, offset, "p", b"0123456789\n", now=0.0)
        if offset < 7:
            assert files.due(now=100.0) == [], "closed before the recorded end"
    (first,) = files.due(now=0.0)
    assert (first.first, first.last, first.recorded) == (5, 7, True)
    files.closed(first)
    (second,) = files.due(now=0.0)  # over max_bytes
    assert (second.first, second.last, second.recorded) == (8, 11, False)


def test_a_recorded_end_that_is_gone_closes_before_the_first_record_past_it() -> None:
    files = OpenFiles(max_bytes=1000, max_seconds=60.0)
    files.assigned(0, end=7)
    files.add(0, 5, "p", b"x\n", now=0.0)
    files.add(0, 9, "p", b"y\n", now=0.0)  # 6..8 compacted away
    (first,) = files.due(now=0.0)
    assert (first.first, first.last) == (5, 5)


def test_records_out_of_order_are_refused() -> None:
    files = OpenFiles(max_bytes=1000, max_seconds=60.0)
    files.add(0, 5, "p", b"x\n", now=0.0)
    with pytest.raises(ValueError, match="offset 5 after 5"):
        files.add(0, 5, "p", b"x\n", now=0.0)


def test_end_marks_round_trip_and_foreign_metadata_is_ignored() -> None:
    assert recorded_end(end_mark(123)) == 123
    assert recorded_end("") is None and recorded_end(None) is None
    assert recorded_end("someone else's metadata") is None
