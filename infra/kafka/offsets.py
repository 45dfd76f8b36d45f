"""The commit rule, in one place for the ingest worker and every destination's connector.

Per partition, the offset to commit is the end of the longest prefix of the records read
that are durable (stored and produced on the ingest side; delivered or dead-lettered on a
destination). A batch that fails, is interrupted or is abandoned is never marked durable,
so it holds everything read after it on its partitions uncommitted, whatever finished
later: after a crash or a stop those records are read again (duplicates, never loss).

``CommitLedger`` only keeps the books: it performs no I/O and is not thread-safe (each
user drives it from one thread: the connector's consumer thread, the ingest event loop).
The caller hands the offsets it returns to its Kafka client's commit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Partition = tuple[str, int]  # (topic, partition)


@dataclass(eq=False, slots=True)
class _Span:
    """The records of one batch on one partition: offsets ``first`` to ``last`` as read
    (a compacted or transactional topic leaves holes; the span covers them)."""

    first: int
    last: int
    durable: bool = False


@dataclass(eq=False, slots=True)
class Batch:
    """What ``CommitLedger.track`` hands back for a batch: pass it to ``durable``."""

    spans: dict[Partition, _Span] = field(default_factory=dict)


class CommitLedger:
    """Tracks batches from read to durable and says which offsets may be committed.

    Contract:
    * ``track(records)`` registers a batch, its ``(partition, offset)`` pairs in read
      order; on each partition its records must follow those tracked before (after a seek
      back, ``forget`` the partition first). Raises ``ValueError`` otherwise.
    * ``durable(batch)`` marks every record of the batch durable. A batch never marked
      (failed, interrupted, abandoned) blocks its partitions' prefixes for good, until
      they are forgotten.
    * ``pending()`` / ``take(partition)``: the offsets to commit now (the next offset to
      read, as Kafka commits), for partitions whose prefix grew since they were last
      taken. Never past a record that is not durable.
    * ``forget(partitions)`` (revoked, lost, or to be re-read from the committed offsets)
      drops their books: batches in flight on them no longer count there.
    """

    def __init__(self) -> None:
        self._spans: dict[Partition, deque[_Span]] = {}
        self._read_to: dict[Partition, int] = {}  # the highest offset tracked
        self._ready: dict[Partition, int] = {}  # prefix ends not yet taken

    def track(self, records: Iterable[tuple[Partition, int]]) -> Batch:
        batch = Batch()
        for partition, offset in records:
            span = batch.spans.get(partition)
            if span is not None and offset > span.last:
                span.last = offset
                continue
            read_to = self._read_to.get(partition)
            if span is not None or (read_to is not None and offset <= read_to):
                raise ValueError(
                    f"{partition[0]}/{partition[1]}: offset {offset} read again without "
                    "forgetting the partition first"
                )
            batch.spans[partition] = _Span(offset, offset)
        for partition, span in batch.spans.items():
            self._spans.setdefault(partition, deque()).append(span)
            self._read_to[partition] = span.last
        return batch

    def durable(self, batch: Batch) -> None:
        for partition, span in batch.spans.items():
            span.durable = True
            spans = self._spans.get(partition)
            # The head of a partition is never durable: durable heads are popped here.
            if not spans or spans[0] is not span:
                continue  # forgotten meanwhile, or an earlier batch still holds the prefix
            end = None
            while spans and spans[0].durable:
                end = spans.popleft().last + 1
            if end is not None:
                self._ready[partition] = end

    def pending(self) -> Mapping[Partition, int]:
        """The offsets to commit, without taking them."""
        return dict(self._ready)

    def take(self, partition: Partition) -> int | None:
        """The offset to commit on ``partition`` (None: nothing new), taken."""
        return self._ready.pop(partition, None)

    def take_all(self) -> dict[Partition, int]:
        ready, self._ready = self._ready, {}
        return ready

    def forget(self, partitions: Iterable[Partition]) -> None:
        for partition in partitions:
            self._spans.pop(partition, None)
            self._read_to.pop(partition, None)
            self._ready.pop(partition, None)

    def forget_all(self) -> None:
        self.forget(list(self._read_to))
