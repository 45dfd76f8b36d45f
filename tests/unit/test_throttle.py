"""A destination's request gate: a Retry-After holds every request, concurrency comes back
one request at a time, and every wait gives way to a stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from connectors.runtime.delivery import Delivery
from connectors.runtime.throttle import WAIT_SLICE_S, RequestGate
from connectors.sinks.base import Limits, Reply, SendResult, StopCheck, never


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_hold_blocks_every_slot_until_it_ends() -> None:
    clock = FakeClock()
    gate = RequestGate(4, clock=clock)
    gate.hold(2.0)
    assert gate.limit == 1 and gate.held_for() == 2.0
    entered = threading.Event()

    def request() -> None:
        with gate.slot(never):
            entered.set()

    thread = threading.Thread(target=request)
    thread.start()
    assert not entered.wait(3 * WAIT_SLICE_S), "a request started during the hold"
    clock.now += 2.0
    assert entered.wait(5), "the request did not start once the hold ended"
    thread.join()


def test_concurrency_comes_back_one_request_at_a_time() -> None:
    gate = RequestGate(4)
    gate.hold(0)
    assert gate.limit == 1
    for expected in (2, 3, 4, 4):
        gate.accepted()
        assert gate.limit == expected
    gate.backed_off()
    assert gate.limit == 2


def test_only_limit_requests_at_once() -> None:
    gate = RequestGate(3)
    gate.hold(0)  # limit 1
    gate.accepted()  # limit 2
    inside, most = 0, 0
    lock = threading.Lock()
    release = threading.Event()

    def request() -> None:
        nonlocal inside, most
        with gate.slot(never):
            with lock:
                inside += 1
                most = max(most, inside)
            release.wait(5)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=request) for _ in range(5)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    with lock:
        assert inside == 2
    release.set()
    for thread in threads:
        thread.join()
    assert most == 2


def test_a_stop_ends_the_wait_within_a_slice() -> None:
    gate = RequestGate(1)
    gate.hold(3600)
    stop = threading.Event()
    outcome: list[BaseException] = []

    def request() -> None:
        try:
            with gate.slot(stop.is_set):
                pass
        except InterruptedError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=request)
    thread.start()
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and len(outcome) == 1


class ScriptedSink:
    """Answers each request from a script; records when each was sent."""

    platform = "scripted"
    limits = Limits(max_entries=100, max_bytes=1_000_000, max_entry_bytes=10_000)

    def __init__(self, replies: list[SendResult]) -> None:
        self.replies = replies
        self.sent_at: list[float] = []
        self.lock = threading.Lock()

    def size(self, entry: bytes) -> int:
        return len(entry)

    def send(self, entries: Sequence[bytes], should_stop: StopCheck = never) -> SendResult:
        with self.lock:
            self.sent_at.append(time.monotonic())
            return self.replies.pop(0) if self.replies else SendResult("ok", Reply(202, "", ""))


def test_a_retry_after_holds_the_other_batches_of_the_destination() -> None:
    """Batch A is throttled (429, Retry-After 1 s); batch B, started once the answer is
    in, sends nothing before that second has passed."""
    throttled = SendResult("retry", Reply(429, "", "slow down"), retry_after=1.0)
    sink = ScriptedSink([throttled])
    gate = RequestGate(4)
    first = threading.Thread(target=Delivery(sink, never, gate=gate).deliver, args=([b"a"],))
    first.start()
    deadline = time.monotonic() + 10
    while gate.held_for() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.held_for() > 0, "the Retry-After did not hold the destination"
    answered = sink.sent_at[0]
    Delivery(sink, never, gate=gate).deliver([b"b"])
    first.join()
    assert len(sink.sent_at) == 3
    assert min(sink.sent_at[1:]) >= answered + 1.0


def test_a_stop_interrupts_a_delivery_waiting_on_the_hold() -> None:
    stop = threading.Event()
    gate = RequestGate(2)
    gate.hold(3600)
    delivery = Delivery(ScriptedSink([]), stop.is_set, gate=gate)
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    with pytest.raises(InterruptedError):
        delivery.deliver([b"x"])
    timer.join()
