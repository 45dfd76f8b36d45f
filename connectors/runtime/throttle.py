"""How many requests a destination may have at the platform at once, and when.

A platform that answers 429 or 503 with ``Retry-After`` asks to be left alone for that
long: the whole destination, not only the request that got the answer. ``RequestGate`` is
shared by every delivery of one destination (its batches in flight):

* ``hold(seconds)``: no request of the destination starts before that time has passed;
* concurrency then comes back gradually, as Vector's adaptive request concurrency does
  after back-pressure: a Retry-After drops the limit to one request at a time, any other
  transient failure halves it, and every accepted request raises it by one, up to the
  configured maximum;
* ``slot(should_stop)``: a context manager around one request; it waits for the hold to
  end and for a free slot, and raises ``InterruptedError`` within a wait slice (a quarter
  second) once ``should_stop`` turns true.

Thread-safe: the senders of one destination run in several threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from connectors.sinks.base import STOP_CHECK_S

# The longest single wait between checks of ``should_stop``: the same as ``pause``'s.
WAIT_SLICE_S = STOP_CHECK_S


class RequestGate:
    """See the module docstring."""

    def __init__(self, max_concurrency: int, clock: Callable[[], float] = time.monotonic) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._max = max_concurrency
        self._limit = max_concurrency
        self._active = 0
        self._hold_until = 0.0
        self._clock = clock
        self._changed = threading.Condition()

    @property
    def limit(self) -> int:
        return self._limit

    def held_for(self) -> float:
        """Seconds left of the current hold (0: none)."""
        return max(0.0, self._hold_until - self._clock())

    def hold(self, seconds: float) -> None:
        """The platform asked for ``seconds`` of quiet (Retry-After)."""
        with self._changed:
            self._hold_until = max(self._hold_until, self._clock() + max(seconds, 0.0))
            self._limit = 1

    def backed_off(self) -> None:
        """A transient failure without Retry-After: half the concurrency."""
        with self._changed:
            self._limit = max(1, self._limit // 2)

    def accepted(self) -> None:
        """A request went through: one more at once, up to the maximum."""
        with self._changed:
            self._limit = min(self._max, self._limit + 1)
            self._changed.notify_all()

    @contextmanager
    def slot(self, should_stop: Callable[[], bool]) -> Iterator[None]:
        with self._changed:
            while True:
                if should_stop():
                    raise InterruptedError("stopping while a request waits for the platform")
                pause = self._hold_until - self._clock()
                if pause <= 0 and self._active < self._limit:
                    self._active += 1
                    break
                self._changed.wait(min(pause, WAIT_SLICE_S) if pause > 0 else WAIT_SLICE_S)
        try:
            yield
        finally:
            with self._changed:
                self._active -= 1
                self._changed.notify_all()
