"""Normalization of every accepted shape, and every way an event can be wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pipeline.enrich import Enricher
from pipeline.normalize import Normalizer, Rejection, derive_event_id
from schemas.events import NormalizedEvent

RECEIVED = datetime(2026, 11, 26, 12, 45, 5, tzinfo=UTC)
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer(Enricher(), max_event_bytes=4096)


def ok(normalizer: Normalizer, event: dict[str, object] | bytes) -> NormalizedEvent:
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    result = normalizer.normalize(raw, RECEIVED)
    assert isinstance(result, NormalizedEvent), result
    return result


def rejected(normalizer: Normalizer, raw: bytes | dict[str, object] | None) -> Rejection:
    value = json.dumps(raw).encode() if isinstance(raw, dict) else raw
    result = normalizer.normalize(value, RECEIVED)
    assert isinstance(result, Rejection), result
    return result


def test_canonical_v1_event(normalizer: Normalizer) -> None:
    event = ok(
        normalizer,
        {
            "event_id": "0B0F3C4E-9F0A-4D7E-8E1B-2C3D4E5F6A7B",
            "event_key": "oidc.token_exchange.failed",
            "occurred_at": "2026-11-26T12:45:03.120Z",
            "account": {"id": "acc_1", "name": "Acme"},
            "actor": {"id": "usr_9", "email": "ana@acme.io", "type": "user"},
            "ip": "99.81.198.187",
            "user_agent": CHROME_MAC,
            "trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736",
            "outcome": "failure",
            "reason": "invalid_grant",
            "attributes": {"client_id": "agent-42"},
        },
    )
    assert event.event_id == "0b0f3c4e-9f0a-4d7e-8e1b-2c3d4e5f6a7b"
    assert event.description == "OIDC token exchange failed"
    assert event.outcome == "failure"
    assert event.occurred_at == datetime(2026, 11, 26, 12, 45, 3, 120000, tzinfo=UTC)
    assert event.received_at == RECEIVED
    assert (event.account_id, event.account_name) == ("acc_1", "Acme")
    assert (event.actor_display, event.actor_type) == ("ana@acme.io", "user")
    assert event.country == "IE"
    assert (event.ua_browser, event.ua_os, event.ua_device) == (
        "Chrome 131",
        "Mac OS X 10.15.7",
        "Mac",
    )
    assert event.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert event.attributes == {"client_id": "agent-42"}
    assert json.loads(event.raw)["reason"] == "invalid_grant"


def test_flat_shape(normalizer: Normalizer) -> None:
    event = ok(
        normalizer,
        {
            "event_key": "login.completed",
            "timestamp": 1795683346042,
            "account_id": "acc_2",
            "account_name": "Globex",
            "user_id": "usr_1",
            "user_email": "ben@globex.com",
            "ip_address": "8.8.8.8",
            "userAgent": "curl/8.10.1",
            "traceId": "abc123",
        },
    )
    assert event.occurred_at == datetime.fromtimestamp(1795683346.042, UTC)
    assert (event.account_id, event.account_name) == ("acc_2", "Globex")
    assert (event.actor_id, event.actor_email, event.actor_type) == (
        "usr_1",
        "ben@globex.com",
        "user",
    )
    assert (event.ip, event.country) == ("8.8.8.8", "US")
    assert event.ua_browser == "curl 8"
    assert event.trace_id == "abc123"
    assert event.outcome == "success"  # implied by the catalogue


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("occurred_at", "2026-11-26T12:45:03+02:00", datetime(2026, 11, 26, 10, 45, 3, tzinfo=UTC)),
        (
            "occurred_at",
            "2026-11-26T12:45:03.123456Z",
            datetime(2026, 11, 26, 12, 45, 3, 123000, UTC),
        ),
        ("timestamp", 1795683346, datetime.fromtimestamp(1795683346, UTC)),
        ("ts", 1795683346.5, datetime.fromtimestamp(1795683346.5, UTC)),
        ("ts", "1795683346000", datetime.fromtimestamp(1795683346, UTC)),
        ("ts", 1795683346000000, datetime.fromtimestamp(1795683346, UTC)),
        ("ts", 1795683346000000000, datetime.fromtimestamp(1795683346, UTC)),
    ],
)
def test_timestamp_shapes(
    normalizer: Normalizer, field: str, value: object, expected: datetime
) -> None:
    event = ok(normalizer, {"event_key": "login.completed", field: value})
    assert event.occurred_at == expected


def test_v1_field_wins_over_alias(normalizer: Normalizer) -> None:
    event = ok(
        normalizer,
        {
            "event_key": "a.b",
            "occurred_at": "2026-11-26T00:00:00Z",
            "ts": 1,
            "ip": "1.1.1.1",
            "client_ip": "8.8.8.8",
        },
    )
    assert event.occurred_at == datetime(2026, 11, 26, tzinfo=UTC)
    assert event.ip == "1.1.1.1"


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("::ffff:99.81.198.187", "99.81.198.187"),
        ("2A00:1450:4001:082A:0000:0000:0000:200E", "2a00:1450:4001:82a::200e"),
        ("[2001:db8::1]", "2001:db8::1"),
        (" 10.0.0.1 ", "10.0.0.1"),
    ],
)
def test_ip_notations(normalizer: Normalizer, ip: str, expected: str) -> None:
    assert ok(normalizer, {"event_key": "a.b", "ts": 1795683346, "client_ip": ip}).ip == expected


def test_private_ip_has_no_country(normalizer: Normalizer) -> None:
    assert ok(normalizer, {"event_key": "a.b", "ts": 1795683346, "ip": "10.1.2.3"}).country == ""


def test_no_account_and_no_actor(normalizer: Normalizer) -> None:
    event = ok(normalizer, {"event_key": "login.failed", "ts": 1795683346})
    assert event.account_id == "" and event.account_name == ""
    assert (event.actor_display, event.actor_type) == ("anonymous", "anonymous")
    assert event.outcome == "failure"


def test_shorthand_account_and_actor(normalizer: Normalizer) -> None:
    event = ok(
        normalizer, {"event_key": "a.b", "ts": 1795683346, "account": "acc_9", "actor": "kai@x.io"}
    )
    assert (event.account_id, event.actor_email, event.actor_display) == (
        "acc_9",
        "kai@x.io",
        "kai@x.io",
    )
    event = ok(normalizer, {"event_key": "a.b", "ts": 1795683346, "actor": "agent-7"})
    assert (event.actor_id, event.actor_display) == ("agent-7", "agent-7")


def test_agent_actor_without_email_displays_id(normalizer: Normalizer) -> None:
    event = ok(
        normalizer,
        {
            "event_key": "oidc.flow.started",
            "ts": 1795683346,
            "actor": {"id": "agent-42", "type": "agent"},
        },
    )
    assert (event.actor_display, event.actor_type) == ("agent-42", "agent")


def test_unknown_key_is_kept_with_derived_text(normalizer: Normalizer) -> None:
    event = ok(
        normalizer, {"event_key": "Webauthn.Credential_Registration.denied", "ts": 1795683346}
    )
    assert event.event_key == "webauthn.credential_registration.denied"
    assert event.description == "Webauthn credential registration denied"
    assert event.outcome == "failure"
    assert (
        ok(normalizer, {"event_key": "scim.group.created", "ts": 1795683346}).outcome == "success"
    )


def test_explicit_outcome_overrides_catalogue(normalizer: Normalizer) -> None:
    event = ok(normalizer, {"event_key": "login.completed", "ts": 1795683346, "outcome": "failure"})
    assert event.outcome == "failure"


def test_missing_event_id_is_derived_from_content(normalizer: Normalizer) -> None:
    a = ok(normalizer, b'{"event_key": "login.completed", "ts": 1795683346, "ip": "1.2.3.4"}')
    b = ok(normalizer, b'{"ip":"1.2.3.4","ts":1795683346,"event_key":"login.completed"}')
    c = ok(normalizer, b'{"event_key": "login.completed", "ts": 1795683347, "ip": "1.2.3.4"}')
    assert a.event_id == b.event_id != c.event_id
    assert a.event_id == derive_event_id(
        {"event_key": "login.completed", "ts": 1795683346, "ip": "1.2.3.4"}
    )


@pytest.mark.parametrize(
    ("raw", "reason_part", "field"),
    [
        (None, "empty record", ""),
        (b"", "empty record", ""),
        (b"not json", "not valid JSON", ""),
        (b"\xff\xfe{}", "not valid JSON", ""),
        (b"[1, 2]", "JSON object", ""),
        (b'{"occurred_at": "2026-11-26T00:00:00Z"}', "event_key: Field required", "event_key"),
        (b'{"event_key": "login.completed"}', "occurred_at: Field required", "occurred_at"),
        (b'{"event_key": "login.completed", "ts": "yesterday"}', "not an RFC 3339", "occurred_at"),
        (
            b'{"event_key": "login.completed", "ts": "2026-11-26T10:00:00"}',
            "no UTC offset",
            "occurred_at",
        ),
        (b'{"event_key": "login.completed", "ts": true}', "boolean", "occurred_at"),
        (b'{"event_key": "login completed!", "ts": 1795683346}', "dot-separated", "event_key"),
        (b'{"event_key": "a.b", "ts": 1795683346, "ip": "999.1.1.1"}', "IPv4 or IPv6", "ip"),
        (b'{"event_key": "a.b", "ts": 1795683346, "ip": "0x7f.1"}', "IPv4 or IPv6", "ip"),
        (b'{"event_key": "a.b", "ts": 1795683346, "outcome": "maybe"}', "outcome", "outcome"),
        (
            b'{"event_key": "a.b", "ts": 1795683346, "actor": {"type": "robot"}}',
            "actor.type",
            "actor.type",
        ),
        (
            b'{"event_key": "a.b", "ts": 1795683346, "actor": {"email": "nope"}}',
            "not an email",
            "actor.email",
        ),
        (
            b'{"event_key": "a.b", "ts": 1795683346, "account": {"name": "x"}}',
            "account.id",
            "account.id",
        ),
        (b'{"event_key": "a.b", "ts": 1795683346, "attributes": [1]}', "attributes", "attributes"),
        (b'{"event_key": "a.b", "ts": 1}', "before 2000", "occurred_at"),
        (b'{"event_key": "a.b", "ts": 4102444800}', "24 h after", "occurred_at"),
        (b'{"event_key": "a.b", "ts": 1e300}', "out of range", "occurred_at"),
    ],
)
def test_rejections_name_the_reason(
    normalizer: Normalizer, raw: bytes | None, reason_part: str, field: str
) -> None:
    result = rejected(normalizer, raw)
    assert reason_part in result.reason
    assert result.field == field


def test_oversized_event_is_rejected(normalizer: Normalizer) -> None:
    big = json.dumps({"event_key": "a.b", "ts": 1795683346, "attributes": {"x": "y" * 5000}})
    assert "limit is 4096" in rejected(normalizer, big.encode()).reason


def test_deep_nesting_is_rejected_not_raised(normalizer: Normalizer) -> None:
    deep = (
        b'{"event_key": "a.b", "ts": 1795683346, "attributes": {"x": '
        + b"[" * 1000
        + b"]" * 1000
        + b"}}"
    )
    assert "nested deeper than 32" in rejected(normalizer, deep).reason
    ten_deep = {"event_key": "a.b", "ts": 1795683346, "attributes": {"x": [[[[[[[[1]]]]]]]]}}
    assert ok(normalizer, ten_deep).attributes["x"] == [[[[[[[[1]]]]]]]]
