"""The archive's open files: what a connector writing files (the S3 archive) has read and
not yet put, per Kafka partition, and when it closes. Bookkeeping only (no I/O, one
thread), so its rule is tested as a model (tests/unit/test_archive_files.py).

A *range* is the records read from one partition since its last closed range: offsets
``first``..``last``, its events grouped into files by partition path (each file knowing
its own first and last offset), and the records that are in no file (filtered out,
unreadable: ``skip``).

Contract of ``OpenFiles``:
* ``assigned(p, end)``: partition ``p`` is assigned. ``end``: the last offset of a range
  an earlier owner recorded as closing before it put the range's files (some may be put,
  some not). The first range on ``p`` then closes exactly there — at the record with offset
  ``end``, or before the first record past it — whatever its size or age, so its files get
  the same keys and events as before and replace themselves.
* ``add(p, offset, path, line, now)`` / ``skip(p, offset, now, letter)``: a record, in
  offset order per partition (raises ``ValueError`` otherwise).
* ``due(now)``: the ranges to close now, at most one per partition (its oldest): a range
  that reached its recorded end; and every open range once the open ranges hold
  ``max_bytes`` together or the oldest was opened ``max_seconds`` ago — except a range
  that must close at a recorded end it has not reached. A range handed out stays until
  ``closed``.
* ``closed(range)``: its files are put and its end committed: forgotten.
* ``revoked(p)``: forgets ``p`` (its new owner reads it again from the last commit).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False, slots=True)
class OpenFile:
    """The lines of one file of a range, and the offsets of its first and last."""

    first: int
    last: int
    lines: list[bytes] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Range:
    """The records of one partition between two closes."""

    partition: int
    first: int
    last: int
    opened_at: float
    end: int | None = None  # the offset it must close at (recorded by an earlier owner)
    sealed: bool = False  # no record is added any more
    files: dict[str, OpenFile] = field(default_factory=dict)
    size: int = 0  # bytes of its lines
    events: int = 0
    skipped: int = 0
    letters: list[Any] = field(default_factory=list)  # opaque: the unreadable records

    @property
    def recorded(self) -> bool:
        """Whether its end is already recorded (it was, by an earlier owner)."""
        return self.end is not None


class OpenFiles:
    """See the module docstring."""

    def __init__(self, max_bytes: int, max_seconds: float) -> None:
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._ranges: dict[int, deque[Range]] = {}
        self._ends: dict[int, int] = {}  # recorded ends not yet met by a range
        self._read_to: dict[int, int] = {}

    @property
    def size(self) -> int:
        """Bytes of the lines held."""
        return sum(r.size for ranges in self._ranges.values() for r in ranges)

    def assigned(self, partition: int, end: int | None) -> None:
        self.revoked(partition)
        if end is not None:
            self._ends[partition] = end

    def revoked(self, partition: int) -> None:
        self._ranges.pop(partition, None)
        self._ends.pop(partition, None)
        self._read_to.pop(partition, None)

    def add(self, partition: int, offset: int, path: str, line: bytes, now: float) -> None:
        open_range = self._open(partition, offset, now)
        file = open_range.files.get(path)
        if file is None:
            open_range.files[path] = file = OpenFile(offset, offset)
        file.last = offset
        file.lines.append(line)
        open_range.size += len(line)
        open_range.events += 1
        self._after(open_range, offset)

    def skip(self, partition: int, offset: int, now: float, letter: Any = None) -> None:
        open_range = self._open(partition, offset, now)
        open_range.skipped += 1
        if letter is not None:
            open_range.letters.append(letter)
        self._after(open_range, offset)

    def due(self, now: float) -> list[Range]:
        heads = [ranges[0] for ranges in self._ranges.values() if ranges]
        if not heads:
            return []
        full = self.size >= self.max_bytes
        old = now - min(r.opened_at for r in heads) >= self.max_seconds
        due = []
        for head in heads:
            if head.end is not None and not head.sealed:
                continue  # it closes where an earlier owner recorded, not sooner
            if head.sealed or full or old:
                head.sealed = True
                due.append(head)
        return due

    def closed(self, closed: Range) -> None:
        ranges = self._ranges.get(closed.partition)
        if ranges and ranges[0] is closed:
            ranges.popleft()

    def _open(self, partition: int, offset: int, now: float) -> Range:
        read_to = self._read_to.get(partition)
        if read_to is not None and offset <= read_to:
            raise ValueError(f"partition {partition}: offset {offset} after {read_to}")
        self._read_to[partition] = offset
        ranges = self._ranges.setdefault(partition, deque())
        end = self._ends.get(partition)
        if ranges and not ranges[-1].sealed:
            current = ranges[-1]
            if current.end is None or offset <= current.end:
                current.last = offset
                return current
            current.sealed = True  # the record at the recorded end is gone: close before
        if end is not None:
            del self._ends[partition]
            if offset > end:
                end = None  # nothing of the recorded range is left to read
        current = Range(partition, offset, offset, now, end=end)
        ranges.append(current)
        return current

    def _after(self, current: Range, offset: int) -> None:
        if current.end is not None and offset >= current.end:
            current.sealed = True
