"""Which destination state changes are told and when, as a model over any sequence of
observed states and clock steps: every change is told exactly once (the counts add up),
the messages of a destination chain (each one's previous state is the last one's state),
at most one per interval, and once quiet for an interval the last state is told."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.notify.changes import ChangeBook, Due

STATES = ["healthy", "failing", "auth_failed", "suspended", "starting", "paused"]
INTERVAL = 300.0

steps = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.sampled_from(STATES),
        st.floats(min_value=0, max_value=400, allow_nan=False),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_every_change_told_once_at_most_one_per_interval(
    observations: list[tuple[str, str, float]],
) -> None:
    book = ChangeBook(INTERVAL)
    now = 0.0
    told: dict[str, list[tuple[float, Due]]] = {}
    changes: dict[str, int] = {}
    baseline: dict[str, str] = {}
    current: dict[str, str] = {}
    for destination, state, step in observations:
        now += step
        if state in ("healthy", "failing", "auth_failed", "suspended"):
            if destination not in baseline:
                baseline[destination] = state
            elif state != current[destination]:
                changes[destination] = changes.get(destination, 0) + 1
            current[destination] = state
        book.observe(destination, state, now)
        for due in book.due(now):
            told.setdefault(due.destination_id, []).append((now, due))
    now += INTERVAL + 1  # quiet for an interval: what is pending goes out
    for due in book.due(now):
        told.setdefault(due.destination_id, []).append((now, due))
    assert book.due(now + 10 * INTERVAL) == []
    for destination in baseline:
        messages = told.get(destination, [])
        assert sum(d.changes for _, d in messages) == changes.get(destination, 0)
        expected_previous = baseline[destination]
        for _, due in messages:
            assert due.previous == expected_previous and due.changes > 0
            expected_previous = due.state
        if messages:
            assert messages[-1][1].state == current[destination]
        times = [t for t, _ in messages]
        assert all(b - a >= INTERVAL for a, b in itertools.pairwise(times))


def test_first_state_is_a_baseline_and_flapping_is_one_message() -> None:
    book = ChangeBook(INTERVAL)
    book.observe("d", "healthy", 0.0)
    assert book.due(0.0) == []  # learned, not news
    book.observe("d", "failing", 1.0)
    (first,) = book.due(1.0)
    assert (first.previous, first.state, first.changes) == ("healthy", "failing", 1)
    for t, state in ((2.0, "healthy"), (3.0, "failing"), (4.0, "suspended")):
        book.observe("d", state, t)
    assert book.due(100.0) == []  # within the interval of the last message
    (second,) = book.due(301.0)
    assert (second.previous, second.state, second.changes) == ("failing", "suspended", 3)
    assert second.first_change_at == 2.0
    book.observe("d", "paused", 400.0)  # what people do is not told
    assert book.due(1000.0) == []
