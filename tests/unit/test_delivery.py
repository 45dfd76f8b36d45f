"""``Delivery`` on its own, against a platform given as rules (which entries it refuses,
when it is busy, how large a request it takes): every entry ends accepted exactly once or
dead-lettered with the platform's reason, whatever the platform says in between; limits are
kept; backoff honours Retry-After and its cap; a stop interrupts a wait; refused
credentials stop the batch. The sleeps are recorded, not slept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.runtime.delivery import AuthFailedError, Delivery
from connectors.runtime.throttle import RequestGate
from connectors.sinks.base import Limits, Reply, SendResult, StopCheck, never


@dataclass
class RuleSink:
    """A platform as rules: ``bad`` entries make a request refused (400), requests over
    ``take_at_most`` entries are 413, the first ``busy`` requests get 503 (with
    ``retry_after`` when set), ``partial`` answers per entry (EventBridge's shape)."""

    limits: Limits
    bad: frozenset[bytes] = frozenset()
    take_at_most: int = 10**9
    busy: int = 0
    retry_after: float | None = None
    partial: bool = False
    auth: bool = False
    platform: str = "rules"
    accepted: list[bytes] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)

    def encode(self, head: object, raw: bytes) -> bytes:
        return raw

    def size(self, entry: bytes) -> int:
        return len(entry)

    def send(self, entries: Sequence[bytes], should_stop: StopCheck = never) -> SendResult:
        self.requests.append(len(entries))
        assert len(entries) <= self.limits.max_entries
        # a JSON array's body: brackets and commas
        assert 2 + sum(len(e) for e in entries) + len(entries) - 1 <= self.limits.max_bytes
        if self.auth:
            return SendResult("auth", Reply(401, "", "bad key"))
        if self.busy:
            self.busy -= 1
            return SendResult("retry", Reply(503, "", "busy"), self.retry_after)
        if len(entries) > self.take_at_most:
            return SendResult("too_large", Reply(413, "", "too large"))
        if self.partial:
            states: dict[int, str] = {}
            for i, entry in enumerate(entries):
                states[i] = "invalid" if entry in self.bad else "ok"
                if entry not in self.bad:
                    self.accepted.append(entry)
            return SendResult("partial", Reply(200, "", ""), entries=states)  # type: ignore[arg-type]
        if any(entry in self.bad for entry in entries):
            return SendResult("invalid", Reply(400, "bad", "refused"))
        self.accepted.extend(entries)
        return SendResult("ok", Reply(200))

    def healthcheck(self) -> SendResult:
        return SendResult("ok", Reply(None))

    def close(self) -> None:
        pass


def entries(n: int) -> list[bytes]:
    return [f'{{"n":{i}}}'.encode() for i in range(n)]


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 60),
    bad=st.sets(st.integers(0, 59), max_size=10),
    max_entries=st.integers(1, 20),
    take_at_most=st.integers(1, 25),
    busy=st.integers(0, 5),
    partial=st.booleans(),
)
def test_every_entry_ends_accepted_once_or_dead_lettered(
    n: int, bad: set[int], max_entries: int, take_at_most: int, busy: int, partial: bool
) -> None:
    batch = entries(n)
    refused = frozenset(batch[i] for i in bad if i < n)
    sink = RuleSink(
        Limits(max_entries=max_entries, max_bytes=10_000, max_entry_bytes=1000),
        bad=refused,
        take_at_most=take_at_most,
        busy=busy,
        partial=partial,
    )
    slept: list[float] = []
    dead = Delivery(sink, never, sleep=slept.append).deliver(batch)
    assert sorted(sink.accepted) == sorted(e for e in batch if e not in refused)
    assert len(sink.accepted) == len(set(sink.accepted))  # none twice
    assert sorted(batch[d.index] for d in dead) == sorted(refused)
    assert all("refused by the platform" in d.reason for d in dead)
    assert len(slept) >= busy  # each busy answer waited before the next request


def test_an_entry_over_the_platforms_limit_is_dead_lettered_unsent() -> None:
    sink = RuleSink(Limits(max_entries=10, max_bytes=10_000, max_entry_bytes=8))
    batch = [b'{"n":1}', b'{"n":"a long one"}']
    dead = Delivery(sink, never, sleep=lambda _s: None).deliver(batch)
    assert [d.index for d in dead] == [1] and "at most 8" in dead[0].reason
    assert sink.accepted == [b'{"n":1}']


def test_requests_keep_the_byte_limit() -> None:
    sink = RuleSink(Limits(max_entries=1000, max_bytes=40, max_entry_bytes=40))
    Delivery(sink, never, sleep=lambda _s: None).deliver(entries(30))
    assert len(sink.accepted) == 30 and max(sink.requests) < 30


def test_retry_after_is_honoured_and_capped() -> None:
    slept: list[float] = []

    def clock() -> float:  # the gate's hold runs on the time the injected sleep passed
        return sum(slept)

    sink = RuleSink(Limits(10, 10_000, 1000), busy=2, retry_after=7.0)
    gate = RequestGate(1, clock=clock)
    Delivery(sink, never, sleep=slept.append, max_backoff_s=60, gate=gate).deliver(entries(3))
    assert sum(slept) == pytest.approx(14.0, abs=0.6)  # 7 s twice, in quarter-second slices
    slept.clear()
    sink = RuleSink(Limits(10, 10_000, 1000), busy=1, retry_after=3600.0)
    gate = RequestGate(1, clock=clock)
    Delivery(sink, never, sleep=slept.append, max_backoff_s=5, gate=gate).deliver(entries(3))
    assert sum(slept) == pytest.approx(5.0, abs=0.3)


def test_backoff_without_retry_after_stays_under_its_cap() -> None:
    slept: list[float] = []
    sink = RuleSink(Limits(10, 10_000, 1000), busy=12)
    Delivery(sink, never, sleep=slept.append, max_backoff_s=2.0).deliver(entries(1))
    assert sink.accepted == entries(1)
    assert sum(slept) <= 12 * 2.0


def test_a_stop_interrupts_the_wait_and_nothing_counts_as_delivered() -> None:
    stops = iter([False, False, True])
    sink = RuleSink(Limits(10, 10_000, 1000), busy=5, retry_after=30.0)
    with pytest.raises(InterruptedError):
        Delivery(sink, lambda: next(stops, True), sleep=lambda _s: None).deliver(entries(2))
    assert sink.accepted == []


def test_refused_credentials_stop_the_batch() -> None:
    sink = RuleSink(Limits(10, 10_000, 1000), auth=True)
    with pytest.raises(AuthFailedError, match="401"):
        Delivery(sink, never, sleep=lambda _s: None).deliver(entries(4))
    assert sink.requests == [4]
