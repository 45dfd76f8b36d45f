"""When is a destination's consumer stalled: the rule, without I/O.

A consumer can end up consuming nothing while nothing looks wrong: librdkafka keeps it in
a group state it never leaves (a JoinGroup queued for good, an unassign waiting on
commits that never finish, a fetch that never starts again after a broker came back),
the process turns, the platform answers, and only the lag grows. Nothing in the consumer
itself says so; what does is Kafka's view of the group, read by another client.

Contract of ``StallWatch.observe`` (called every few seconds per destination and replica):

* it takes the group's offsets on the normalized topic as Kafka has them (per partition:
  the position the group reads on from and the high watermark), ``None`` when the broker
  did not answer; the partitions this replica holds; the partitions the group's
  coordinator has given to other members (``None`` when unknown); how far this replica
  has read each partition it holds; and the replica's state;
* a partition *progresses* while its committed position or this replica's read position
  on it moves, and whenever it has nothing waiting (``lag == 0``), or this replica has read
  all of it (the rest is in flight: being delivered, or in files not yet closed);
* the replica is *stalled* when some partition has waited without progress for
  ``stall_after_s`` and either this replica holds it, or nobody does while this replica
  holds none (a member that takes no part while events wait). A partition another member
  holds is that member's to explain (it may be failing, and says so);
* the clock only runs while it means something: a broker that does not answer, or a state
  in which the worker knowingly makes no progress (``failing``, ``auth_failed``: it
  retries and says so), starts it over;
* it returns the reason (the partitions, their waiting events, the seconds), or None.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from infra.kafka.lag import PartitionOffsets

# States in which a worker makes no progress on purpose, and shows why.
EXPLAINED = frozenset({"failing", "auth_failed", "paused", "stopped"})


@dataclass(slots=True)
class _Mark:
    position: int
    read_to: int | None
    since: float  # when this partition last progressed


class StallWatch:
    """See the module docstring. One per destination worker (a replacement gets a new
    one: its clock starts when it does)."""

    def __init__(self, stall_after_s: float) -> None:
        self.stall_after_s = stall_after_s
        self._marks: dict[int, _Mark] = {}

    def observe(
        self,
        now: float,
        offsets: Mapping[int, PartitionOffsets] | None,
        held: Collection[int],
        others: Collection[int] | None,
        read_to: Mapping[int, int],
        state: str,
    ) -> str | None:
        if offsets is None or state in EXPLAINED:
            self._marks.clear()
            return None
        stuck: list[tuple[int, int, float]] = []
        for partition, group in offsets.items():
            read = read_to.get(partition) if partition in held else None
            mark = self._marks.get(partition)
            all_read = read is not None and read >= group.high
            if (
                mark is None
                or group.lag == 0
                or all_read
                or mark.position != group.position
                or mark.read_to != read
            ):
                self._marks[partition] = _Mark(group.position, read, now)
                continue
            waited = now - mark.since
            if waited >= self.stall_after_s:
                stuck.append((partition, group.lag, waited))
        for gone in set(self._marks) - set(offsets):
            del self._marks[gone]
        blamed = [s for s in stuck if s[0] in held]
        if not held and others is not None:
            blamed = [s for s in stuck if s[0] not in others]  # nobody's
        if not blamed:
            return None
        waiting = sum(lag for _, lag, _ in blamed)
        longest = max(waited for _, _, waited in blamed)
        partitions = ", ".join(str(p) for p, _, _ in sorted(blamed))
        holds = f"holding partitions {sorted(held)}" if held else "holding no partition"
        return (
            f"no progress for {longest:.0f} s with {waiting:,} events waiting on partition(s) "
            f"{partitions} while the broker answers ({holds})"
        )
