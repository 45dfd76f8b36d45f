"""The stall rule (``connectors.runtime.stall``): events waiting on a partition that has made
no progress for ``stall_after_s`` while the broker answers, on a partition this replica
holds or with this replica holding none. Examples of each clause, and two properties over
random histories: a partition that keeps moving never stalls, and one that stops with
events waiting always does, within one look of the bound."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.runtime.stall import StallWatch
from infra.kafka.lag import PartitionOffsets

STALL = 60.0
NOBODY: set[int] = set()  # no other member holds a partition


def offsets(*pairs: tuple[int, int]) -> dict[int, PartitionOffsets]:
    return {p: PartitionOffsets(position, high) for p, (position, high) in enumerate(pairs)}


def test_events_waiting_without_progress_stall_after_the_bound() -> None:
    watch = StallWatch(STALL)
    group = offsets((10, 50), (0, 0))
    assert watch.observe(0, group, [0, 1], NOBODY, {0: 10}, "healthy") is None
    assert watch.observe(STALL - 1, group, [0, 1], NOBODY, {0: 10}, "healthy") is None
    reason = watch.observe(STALL, group, [0, 1], NOBODY, {0: 10}, "healthy")
    assert reason is not None
    assert "40 events waiting on partition(s) 0" in reason
    assert "holding partitions [0, 1]" in reason


def test_committing_or_reading_is_progress() -> None:
    watch = StallWatch(STALL)
    assert watch.observe(0, offsets((10, 50)), [0], NOBODY, {0: 10}, "healthy") is None
    assert (
        watch.observe(50, offsets((20, 60)), [0], NOBODY, {0: 20}, "healthy") is None
    )  # committed
    assert watch.observe(100, offsets((20, 60)), [0], NOBODY, {0: 30}, "healthy") is None  # read
    assert watch.observe(159, offsets((20, 60)), [0], NOBODY, {0: 30}, "healthy") is None
    assert watch.observe(160, offsets((20, 60)), [0], NOBODY, {0: 30}, "healthy") is not None


def test_all_read_is_in_flight_not_stalled() -> None:
    """An archive's open files, a batch being delivered: read, not yet committed."""
    watch = StallWatch(STALL)
    for now in range(0, 600, 5):
        assert watch.observe(now, offsets((10, 50)), [0], NOBODY, {0: 50}, "healthy") is None


def test_nothing_waiting_is_idle_not_stalled() -> None:
    watch = StallWatch(STALL)
    for now in range(0, 600, 5):
        assert watch.observe(now, offsets((50, 50)), [0], NOBODY, {0: 50}, "healthy") is None
        assert watch.observe(now, offsets((0, 0)), [], NOBODY, {}, "healthy") is None


def test_a_partition_another_replica_holds_is_not_this_ones_stall() -> None:
    """Busy with its own, or holding none while another member holds the one that waits
    (that member may be failing, and says so): not this replica's stall."""
    busy, idle = StallWatch(STALL), StallWatch(STALL)
    group = offsets((10, 50), (5, 5))
    for now in range(0, 600, 5):
        assert busy.observe(now, group, [1], {0}, {1: 5}, "healthy") is None
        assert idle.observe(now, group, [], {0}, {}, "healthy") is None


def test_holding_none_with_unknown_members_is_no_stall() -> None:
    watch = StallWatch(STALL)
    for now in range(0, 600, 5):
        assert watch.observe(now, offsets((10, 50)), [], None, {}, "healthy") is None


def test_a_replica_holding_nothing_while_events_wait_is_stalled() -> None:
    """Nobody holds the partitions that wait (its consumer lost them and never rejoined)."""
    watch = StallWatch(STALL)
    group = offsets((10, 50), (5, 9))
    assert watch.observe(0, group, [], NOBODY, {}, "starting") is None
    reason = watch.observe(STALL, group, [], NOBODY, {}, "starting")
    assert reason is not None and "holding no partition" in reason
    assert "partition(s) 0, 1" in reason and "44 events" in reason


def test_no_clock_while_the_broker_does_not_answer_or_the_worker_says_why() -> None:
    watch = StallWatch(STALL)
    group = offsets((10, 50))
    assert watch.observe(0, group, [0], NOBODY, {0: 10}, "healthy") is None
    assert watch.observe(STALL / 2, None, [0], NOBODY, {0: 10}, "healthy") is None  # broker away
    assert watch.observe(STALL, group, [0], NOBODY, {0: 10}, "healthy") is None  # starts over
    assert watch.observe(2 * STALL - 1, group, [0], NOBODY, {0: 10}, "healthy") is None
    assert watch.observe(2 * STALL, group, [0], NOBODY, {0: 10}, "healthy") is not None
    for state in ("failing", "auth_failed", "paused", "stopped"):
        fresh = StallWatch(STALL)
        for now in range(0, 600, 5):
            assert fresh.observe(now, group, [0], NOBODY, {0: 10}, state) is None


LOOK = 5.0  # how often the supervisor looks


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=80),
    held=st.booleans(),
)
def test_a_partition_that_keeps_moving_never_stalls(
    steps: list[tuple[int, bool]], held: bool
) -> None:
    """Each look producers add some and the partition may move (one event read, or one
    committed when all is read); it moves at least every other look: 10 s against a 60 s
    bound. Held by this replica, or by another one (which commits what it reads) while this
    one holds none."""
    watch = StallWatch(STALL)
    position = read = high = 0
    for k, (produced, moved) in enumerate(steps):
        high += produced
        if moved or k % 2 == 0:
            if read < high:
                read += 1
            elif position < read:
                position += 1
        if not held:
            position = read  # another replica commits what it reads
        held_now, reads = ([0], {0: read}) if held else ([], {})
        assert (
            watch.observe(k * LOOK, offsets((position, high)), held_now, NOBODY, reads, "healthy")
            is None
        )


@settings(max_examples=200, deadline=None)
@given(
    waiting=st.integers(1, 10_000),
    read_part=st.integers(0, 10_000),
    before=st.integers(0, 30),
    held=st.booleans(),
)
def test_a_partition_that_stops_with_events_waiting_always_stalls(
    waiting: int, read_part: int, before: int, held: bool
) -> None:
    """After ``before`` looks of progress it stops with ``waiting`` events uncommitted and
    some of them unread: found within one look after the bound."""
    watch = StallWatch(STALL)
    position = 0
    now = 0.0
    for _ in range(before):
        position += 1
        watch.observe(
            now, offsets((position, position + waiting)), [0], NOBODY, {0: position}, "healthy"
        )
        now += LOOK
    high = position + waiting
    read = position + min(read_part, waiting - 1)  # at least one event unread
    held_now, reads = ([0], {0: read}) if held else ([], {})
    stopped_at = now
    found = None
    while found is None and now <= stopped_at + STALL + LOOK:
        found = watch.observe(now, offsets((position, high)), held_now, NOBODY, reads, "healthy")
        if found is None:
            assert now - stopped_at < STALL + LOOK  # not found before the bound + a look
        now += LOOK
    assert found is not None and f"{waiting:,} events waiting" in found
