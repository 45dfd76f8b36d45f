"""Which state changes to tell, and when: every change counted, at most one notification
per destination per interval (the changes in between told together, with their count).

Contract of ``ChangeBook`` (no I/O, not thread-safe, time given by the caller):

* ``observe(id, state, now)``: the destination's state now. The first state seen of a
  destination is its baseline (a notifier starting, or taking over, does not notify what
  it merely learns); states outside ``NOTIFIED_STATES`` are ignored.
* ``due(now)``: the notifications to send now, at most one per destination, never sooner
  than ``interval_s`` after that destination's previous one. Each says the state last
  told (``previous``), the state now, and how many changes it covers: over any run, the
  counts add up to every change observed, each told once.
* ``forget(id)``: a destination removed.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.notifications import NOTIFIED_STATES


@dataclass(frozen=True, slots=True)
class Due:
    destination_id: str
    previous: str
    state: str
    changes: int
    first_change_at: float


@dataclass(slots=True)
class _Book:
    told: str  # the state the last notification said (or the baseline)
    current: str
    pending: int = 0  # changes since the last notification
    first_change_at: float = 0.0
    last_sent_at: float | None = None


class ChangeBook:
    """See the module docstring."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._books: dict[str, _Book] = {}

    def observe(self, destination_id: str, state: str, now: float) -> None:
        if state not in NOTIFIED_STATES:
            return
        book = self._books.get(destination_id)
        if book is None:
            self._books[destination_id] = _Book(told=state, current=state)
            return
        if state == book.current:
            return
        if book.pending == 0:
            book.first_change_at = now
        book.pending += 1
        book.current = state

    def due(self, now: float) -> list[Due]:
        out = []
        for destination_id, book in self._books.items():
            if book.pending == 0:
                continue
            if book.last_sent_at is not None and now - book.last_sent_at < self.interval_s:
                continue
            out.append(
                Due(destination_id, book.told, book.current, book.pending, book.first_change_at)
            )
            book.told = book.current
            book.pending = 0
            book.last_sent_at = now
        return out

    def forget(self, destination_id: str) -> None:
        self._books.pop(destination_id, None)

    def known(self) -> set[str]:
        return set(self._books)
