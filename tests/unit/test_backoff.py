"""The one backoff policy: exponential ceilings, capped, jittered below the ceiling,
Retry-After honoured (and capped)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from infra.backoff import Backoff


@given(attempt=st.integers(0, 200), initial=st.floats(0.01, 5), cap=st.floats(0.1, 120))
def test_a_delay_stays_under_its_ceiling_and_the_cap(
    attempt: int, initial: float, cap: float
) -> None:
    delay = Backoff(initial, cap).delay(attempt)
    assert 0 <= delay <= min(cap, initial * 2 ** min(attempt, 32))


def test_without_jitter_the_ceiling_doubles_to_the_cap() -> None:
    poll = Backoff(0.2, 5.0, jitter=False)
    assert [poll.delay(a) for a in range(7)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_retry_after_is_taken_as_said_up_to_the_cap() -> None:
    policy = Backoff(0.5, 60)
    assert policy.delay(3, retry_after=7) == 7
    assert policy.delay(3, retry_after=3600) == 60
    assert policy.delay(0, retry_after=-1) == 0


def test_jitter_spreads_retriers_out() -> None:
    delays = {round(Backoff(1, 60).delay(5), 6) for _ in range(50)}
    assert len(delays) > 40
