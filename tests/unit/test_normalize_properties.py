"""Property tests of normalization: whatever bytes arrive on the raw topic end as a
normalized event or as a rejection with a reason, never as an exception that would stop
the worker; and the fast path never disagrees with the contract's own path."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.enrich import Enricher
from pipeline.normalize import MAX_DEPTH, Normalizer, Rejection
from schemas.events import NormalizedEvent

RECEIVED = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
PROPERTIES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def ip_notations(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> st.SearchStrategy[str]:
    text = str(address)
    forms = [text, text.upper(), f" {text} "]
    if isinstance(address, ipaddress.IPv6Address):
        forms += [f"[{text}]", address.exploded]
    else:
        forms += [f"::ffff:{text}", f"[::ffff:{text}]"]
    return st.sampled_from(forms)


timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat()),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    json_values,
)
fields: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.one_of(st.uuids().map(str), st.text(max_size=20), json_values),
    "event_key": st.one_of(
        st.sampled_from(["login.completed", "LOGIN.Failed ", "mfa.challenge_sent", "a..b", ""]),
        st.text(max_size=20),
        json_values,
    ),
    "occurred_at": timestamps,
    "timestamp": timestamps,
    "ts": timestamps,
    "account": st.one_of(
        st.fixed_dictionaries({"id": st.text(max_size=10)}, optional={"name": json_values}),
        st.text(max_size=10),
        json_values,
    ),
    "account_id": st.one_of(st.text(max_size=10), json_values),
    "actor": st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "id": st.text(max_size=10),
                "email": st.emails() | st.text(max_size=10),
                "type": st.sampled_from(["user", "agent", "service", "anonymous", "robot"]),
            },
        ),
        st.emails(),
        json_values,
    ),
    "user_email": st.one_of(st.emails(), json_values),
    "ip": st.one_of(st.ip_addresses().flatmap(ip_notations), st.text(max_size=20), json_values),
    "client_ip": st.ip_addresses().flatmap(ip_notations),
    "user_agent": st.one_of(st.text(max_size=60), json_values),
    "trace_id": st.one_of(st.text(max_size=40), json_values),
    "outcome": st.one_of(st.sampled_from(["success", "failure", "maybe"]), json_values),
    "attributes": json_values,
}
others = {k: v for k, v in fields.items() if k not in ("event_key", "occurred_at")}
events = (
    st.fixed_dictionaries(
        {"event_key": st.just("login.completed"), "occurred_at": st.just("2026-11-26T11:00:00Z")},
        optional=others,
    )
    | st.fixed_dictionaries(
        {"event_key": fields["event_key"], "occurred_at": timestamps}, optional=others
    )
    | st.dictionaries(st.sampled_from(sorted(fields)), json_values, max_size=6)
)


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer(Enricher())


def assert_well_formed(result: NormalizedEvent | Rejection) -> None:
    if isinstance(result, Rejection):
        assert result.reason
    else:
        assert isinstance(result, NormalizedEvent)
        assert result.event_id and result.event_key
        assert result.outcome in ("success", "failure")
        orjson.loads(result.to_json())  # the store and the topic take it


@PROPERTIES
@given(data=st.binary(max_size=600))
def test_any_bytes_are_normalized_or_refused(normalizer: Normalizer, data: bytes) -> None:
    assert_well_formed(normalizer.normalize(data, RECEIVED))


@PROPERTIES
@given(event=events)
def test_any_event_shape_gives_one_answer_on_both_paths(
    normalizer: Normalizer, event: dict[str, Any]
) -> None:
    value = orjson.dumps(event)
    result = normalizer.normalize(value, RECEIVED)
    assert_well_formed(result)
    assert result == normalizer.normalize_general(value, RECEIVED)


@PROPERTIES
@given(depth=st.integers(min_value=0, max_value=3 * MAX_DEPTH), as_list=st.booleans())
def test_deep_nesting_is_refused_past_the_limit(
    normalizer: Normalizer, depth: int, as_list: bool
) -> None:
    nested: Any = 1
    for _ in range(depth):
        nested = [nested] if as_list else {"a": nested}
    event = {"event_key": "login.completed", "occurred_at": "2026-11-26T11:00:00Z"}
    result = normalizer.normalize(orjson.dumps({**event, "attributes": {"x": nested}}), RECEIVED)
    # The event object and ``attributes`` are two levels above ``nested``.
    if depth + 2 > MAX_DEPTH:
        assert isinstance(result, Rejection) and "nested deeper" in result.reason
    else:
        assert isinstance(result, NormalizedEvent)


@PROPERTIES
@given(junk=st.binary(min_size=1, max_size=8).filter(lambda b: not _is_utf8(b)))
def test_invalid_utf8_is_refused(normalizer: Normalizer, junk: bytes) -> None:
    value = b'{"event_key": "login.completed", "occurred_at": "2026-11-26T11:00:00Z", "reason": "'
    result = normalizer.normalize(value + junk + b'"}', RECEIVED)
    assert isinstance(result, Rejection) and result.reason


def test_huge_events_are_refused(normalizer: Normalizer) -> None:
    big = orjson.dumps({"event_key": "login.completed", "reason": "x" * 300_000})
    result = normalizer.normalize(big, RECEIVED)
    assert isinstance(result, Rejection) and "limit" in result.reason


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
