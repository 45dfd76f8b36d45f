"""The demo traffic is realistic: every event is valid, and it has what the Logs view
needs to show (accounts, anonymous actors, failures, OIDC flows sharing a trace id)."""

from __future__ import annotations

from collections import Counter, defaultdict

from authtrail.demo import DemoTraffic
from pipeline.enrich import Enricher
from pipeline.normalize import Normalizer
from schemas.events import NormalizedEvent, utc_now_ms


def test_demo_traffic_is_valid_and_varied() -> None:
    normalizer = Normalizer(Enricher())
    traffic = DemoTraffic(seed=7)
    events = []
    for raw in (next(iter_) for iter_ in [traffic.events()] * 2000):
        result = normalizer.normalize(raw, utc_now_ms())
        assert isinstance(result, NormalizedEvent), result
        events.append(result)
    outcomes = Counter(e.outcome for e in events)
    assert 0.04 < outcomes["failure"] / len(events) < 0.3
    assert len({e.account_id for e in events if e.account_id}) == 5
    assert any(e.account_id == "" for e in events)
    assert Counter(e.actor_type for e in events).keys() >= {"user", "agent", "service", "anonymous"}
    assert len({e.country for e in events if e.country}) >= 4
    assert len({e.ua_browser for e in events if e.ua_browser}) >= 5
    flows: defaultdict[str, set[str]] = defaultdict(set)
    for e in events:
        if e.trace_id:
            flows[e.trace_id].add(e.event_key)
    assert any(
        {"oidc.flow.started", "oidc.token_exchange.succeeded"} <= keys for keys in flows.values()
    )
    assert len({e.event_id for e in events}) == len(events)


def test_demo_traffic_is_reproducible() -> None:
    a, b = DemoTraffic(seed=3, clock=lambda: 1.8e9), DemoTraffic(seed=3, clock=lambda: 1.8e9)
    assert [a.next_batch() for _ in range(20)] == [b.next_batch() for _ in range(20)]
