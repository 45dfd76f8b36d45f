"""Delivering one batch through a sink, whatever the platform answers.

Contract of ``Delivery.deliver(entries)``:
* returns when every entry is accepted by the platform or dead-lettered (the returned
  ``Refused`` list names each with the platform's reply);
* transient failures (no reply, 408, 429, 5xx, busy) are retried with exponential backoff
  and full jitter, honouring Retry-After, capped — for as long as it takes; a Retry-After
  holds every request of the destination (its shared ``RequestGate``), not only this
  batch's, and concurrency then comes back gradually;
* a request over a limit is split; an entry too large on its own is dead-lettered;
* refused data is bisected down to the entries at fault, which are dead-lettered, the rest
  delivered; per-entry failures (EventBridge) re-send only the failed entries;
* raises ``AuthFailedError`` on refused credentials (nothing of the batch may be counted as
  delivered: the caller keeps its offsets and re-checks slowly), and ``InterruptedError``
  when ``should_stop`` turns true while waiting (to retry, for the gate, for an
  acknowledgment): within a quarter second (the batch then never counts as delivered).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic

from connectors.runtime.throttle import RequestGate
from connectors.sinks.base import Entry, Reply, SendResult, Sink, pause
from infra.backoff import Backoff


@dataclass(frozen=True, slots=True)
class Refused:
    """An entry the platform will not take (the caller dead-letters its record)."""

    index: int  # position in the batch given to ``deliver``
    reason: str
    reply: Reply


class AuthFailedError(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.describe())
        self.reply = reply


@dataclass(slots=True)
class DeliveryStats:
    """Counters shared by the deliveries of one destination, which run in several sender
    threads at once: updates go through the methods (one lock)."""

    requests: int = 0
    retries: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    failing_since: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sent(self, result: SendResult) -> None:
        with self._lock:
            self.requests += 1
            if result.kind in ("ok", "partial"):
                self.failing_since = None

    def retried(self, reply: Reply, failing: bool) -> None:
        """A retry after ``reply``; ``failing``: nothing of the request got through."""
        now = time.time()
        with self._lock:
            self.retries += 1
            self.last_error = reply.describe()
            self.last_error_at = now
            if failing and self.failing_since is None:
                self.failing_since = now


class Delivery(Generic[Entry]):
    """See the module docstring. One per batch in flight; the sink and the stats may be
    shared by several at once."""

    def __init__(
        self,
        sink: Sink[Entry],
        should_stop: Callable[[], bool],
        max_backoff_s: float = 60.0,
        base_backoff_s: float = 0.5,
        stats: DeliveryStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        gate: RequestGate | None = None,
    ) -> None:
        self._sink = sink
        self._should_stop = should_stop
        self._max = max_backoff_s
        self._backoff_policy = Backoff(base_backoff_s, max_backoff_s)
        self._sleep = sleep
        self.stats = stats or DeliveryStats()
        # Alone (no shared gate), a batch's requests go one at a time anyway.
        self._gate = gate or RequestGate(1)

    def deliver(self, entries: Sequence[Entry]) -> list[Refused]:
        dead: list[Refused] = []
        limits = self._sink.limits
        work: list[list[int]] = []
        chunk: list[int] = []
        chunk_bytes = limits.framing_bytes
        for i, entry in enumerate(entries):
            size = self._sink.size(entry)
            if size > limits.max_entry_bytes:
                dead.append(
                    Refused(
                        i,
                        f"entry is {size} bytes; {self._sink.platform} "
                        f"takes at most {limits.max_entry_bytes}",
                        Reply(None, "too_large", ""),
                    )
                )
                continue
            size += limits.separator_bytes
            if chunk and (
                len(chunk) >= limits.max_entries or chunk_bytes + size > limits.max_bytes
            ):
                work.append(chunk)
                chunk, chunk_bytes = [], limits.framing_bytes
            chunk.append(i)
            chunk_bytes += size
        if chunk:
            work.append(chunk)
        work.reverse()  # a stack: sent in order
        partial_attempts = 0
        while work:
            group = work.pop()
            result = self._send_until_not_transient([entries[i] for i in group])
            if result.kind == "ok":
                continue
            if result.kind == "auth":
                raise AuthFailedError(result.reply)
            if result.kind in ("too_large", "invalid"):
                if len(group) == 1:
                    why = (
                        "too large for the platform"
                        if result.kind == "too_large"
                        else "refused by the platform"
                    )
                    dead.append(
                        Refused(group[0], f"{why}: {result.reply.describe()}", result.reply)
                    )
                else:
                    middle = len(group) // 2
                    work.extend([group[middle:], group[:middle]])
                continue
            # partial: keep what was accepted, dead-letter the refused, re-send the rest
            again = []
            for position, state in result.entries.items():
                if state == "invalid":
                    reply = result.entry_replies.get(position, result.reply)
                    dead.append(
                        Refused(
                            group[position], f"refused by the platform: {reply.describe()}", reply
                        )
                    )
                elif state == "retry":
                    again.append(group[position])
            if again:
                partial_attempts += 1
                self.stats.retried(result.reply, failing=False)
                self._backoff(None, partial_attempts)
                work.append(again)
        return sorted(dead, key=lambda d: d.index)

    def _send_until_not_transient(self, batch: list[Entry]) -> SendResult:
        attempt = 0
        while True:
            with self._gate.slot(self._should_stop):
                result = self._sink.send(batch, self._should_stop)
            self.stats.sent(result)
            if result.kind != "retry":
                if result.kind in ("ok", "partial"):
                    self._gate.accepted()
                return result
            if result.retry_after is not None:
                self._gate.hold(min(self._max, result.retry_after))
            else:
                self._gate.backed_off()
            attempt += 1
            self.stats.retried(result.reply, failing=True)
            self._backoff(result.retry_after, attempt)

    def _backoff(self, retry_after: float | None, attempt: int) -> None:
        delay = self._backoff_policy.delay(attempt, retry_after)
        if not pause(delay, self._should_stop, self._sleep):
            raise InterruptedError("stopping while a batch waits to be retried")
