"""A destination's PII rules: each action on each kind of field, what follows from them
(the display name, the event as received), and the sink wrapper every path goes through."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.sinks import transform as transform_module
from connectors.sinks.base import read_event
from connectors.sinks.transform import PiiTransform, mask_ip
from schemas.transform import check_rules

KEY = b"k" * 32
EVENT: dict[str, Any] = {
    "event_id": "e1",
    "event_key": "login.failed",
    "outcome": "failure",
    "account_id": "acc_1",
    "account_name": "Acme Corp",
    "actor_id": "usr_42",
    "actor_email": "alice@acme.io",
    "actor_display": "alice@acme.io",
    "ip": "99.81.12.34",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    "attributes": {"device": {"serial": "SN-1234"}, "phone": "+33 6 12 34 56 78"},
    "raw": '{"actor":{"email":"alice@acme.io"},"ip":"99.81.12.34"}',
}


@pytest.fixture(autouse=True, params=["native", "python"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test on both ways the rules run on top-level fields: the native one-pass path
    (connectors/pii_native) and the Python one it stands in for when not built."""
    if request.param == "python":
        monkeypatch.setattr(transform_module, "native", None)
    elif transform_module.native is None:
        pytest.skip("the native path is not built (test_the_native_path_is_built says why)")
    return str(request.param)


def test_the_native_path_is_built() -> None:
    # `pip install` builds it where Rust 1.85+ is (make test's set-up checks for it); the
    # package installs without it and the rules then cost several times as much: a silent
    # fallback is a failure here. After installing Rust: rm .venv/.installed; make test.
    from connectors.sinks import _pii  # noqa: F401


def applied(rules: dict[str, str], event: dict[str, Any] = EVENT) -> dict[str, Any]:
    transform = PiiTransform(check_rules(rules), KEY)
    result: dict[str, Any] = orjson.loads(transform.apply(orjson.dumps(event)))
    return result


def test_mask_keeps_the_shape() -> None:
    out = applied(
        {
            "actor.email": "mask",
            "ip": "mask",
            "actor.id": "mask",
            "account.name": "mask",
            "user_agent": "mask",
            "attributes.device.serial": "mask",
        }
    )
    assert out["actor_email"] == "a***@acme.io"
    assert out["actor_display"] == "a***@acme.io"
    assert out["ip"] == "99.81.0.0/16"
    assert out["actor_id"] == "u***" and out["account_name"] == "A***"
    assert out["user_agent"] == "M***"
    assert out["attributes"] == {"device": {"serial": "S***"}, "phone": "+33 6 12 34 56 78"}
    assert applied({"ip": "mask"}, {**EVENT, "ip": "2001:db8:1234:5678::1"})["ip"] == (
        "2001:db8:1234::/48"
    )


def test_hash_is_a_keyed_stable_pseudonym() -> None:
    out = applied({"actor.email": "hash", "attributes.phone": "hash"})
    expected = hmac.new(KEY, b"alice@acme.io", hashlib.sha256).hexdigest()
    assert out["actor_email"] == expected == out["actor_display"]
    assert out["attributes"]["phone"] == hmac.new(KEY, b"+33 6 12 34 56 78", "sha256").hexdigest()
    assert applied({"actor.email": "hash"})["actor_email"] == expected  # stable
    other = PiiTransform(check_rules({"actor.email": "hash"}), b"o" * 32)
    assert orjson.loads(other.apply(orjson.dumps(EVENT)))["actor_email"] != expected


def test_drop_leaves_the_field_out_and_display_falls_back() -> None:
    out = applied({"actor.email": "drop", "attributes.device": "drop"})
    assert "actor_email" not in out
    assert out["actor_display"] == "usr_42"
    assert out["attributes"] == {"phone": "+33 6 12 34 56 78"}
    both = applied({"actor.email": "drop", "actor.id": "drop"})
    assert both["actor_display"] == "anonymous"


def test_raw_goes_with_any_rule_unless_hashed() -> None:
    assert "raw" not in applied({"ip": "mask"})
    hashed = applied({"ip": "mask", "raw": "hash"})
    assert hashed["raw"] == hmac.new(KEY, EVENT["raw"].encode(), "sha256").hexdigest()
    assert "raw" not in applied({"raw": "drop"})


def test_no_clear_value_is_left_anywhere() -> None:
    rules = {
        "actor.email": "hash",
        "actor.id": "hash",
        "ip": "mask",
        "user_agent": "drop",
        "account.name": "hash",
        "attributes.phone": "drop",
        "attributes.device.serial": "hash",
    }
    body = orjson.dumps(applied(rules))
    for clear in (
        b"alice@acme.io",
        b"usr_42",
        b"99.81.12.34",
        b"Mozilla",
        b"Acme Corp",
        b"+33",
        b"SN-1234",
    ):
        assert clear not in body


def test_missing_and_empty_fields_stay_as_they_are() -> None:
    event = {"event_id": "e2", "actor_email": "", "attributes": {}}
    out = applied({"actor.email": "hash", "ip": "mask", "attributes.a.b": "mask"}, event)
    assert out == {
        "event_id": "e2",
        "actor_email": "",
        "actor_display": "anonymous",
        "attributes": {},
    }


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"actor.name": "mask"}, "actor.name: is not a field"),
        ({"ip": "encrypt"}, "ip: must be one of drop, mask, hash"),
        ({"raw": "mask"}, "raw: raw (the event as received) can be dropped or hashed"),
        ({"attributes.": "drop"}, "attribute path"),
        ({"attributes.a..b": "drop"}, "attribute path"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(rules: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_rules(rules)


def test_every_path_gets_the_rules_through_build_sink() -> None:
    # The connector, replay, redrive and the test event all build their sink here.
    from connectors.sinks import build_sink
    from connectors.sinks.base import encode_event
    from schemas.destinations import make_destination, updated_destination
    from tests.samples import VALID_SETTINGS

    for platform in ("datadog", "splunk", "sumologic", "coralogix", "webhook"):
        values = {
            **VALID_SETTINGS[platform],
            "transform.actor.email": "hash",
            "transform.ip": "drop",
        }
        destination = make_destination(platform, "t", values)
        sink = build_sink(destination)
        entry = encode_event(sink, EVENT)
        assert b"alice@acme.io" not in entry and b"99.81.12.34" not in entry, platform
        sink.close()
    # Pseudonyms survive edits: the key lives as long as the destination.
    changed = updated_destination(destination, "renamed", {"transform.ip": "mask"})
    assert changed.transform == {"actor.email": "hash", "ip": "mask"}
    assert changed.transform_key == destination.transform_key
    cleared = updated_destination(
        changed, None, {"transform.actor.email": None, "transform.ip": None}
    )
    assert cleared.transform == {}


# -- the fast path: the rules on the event's raw JSON fields give what decoding gives -----------
_TEXT = st.one_of(
    st.sampled_from(["", "alice@acme.io", "usr_42", "99.81.12.34", "2001:db8::1", "x"]),
    st.text(max_size=12),
)
_VALUE = st.one_of(_TEXT, st.none(), st.integers(-5, 5), st.booleans())
_TOP_FIELDS = ("actor_email", "actor_id", "ip", "user_agent", "account_name", "actor_display")
_RULE_FIELDS = ("actor.email", "actor.id", "ip", "user_agent", "account.name")


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {"event_id": "e1", "event_key": "login.failed", "outcome": "failure"}
    if draw(st.booleans()):
        event["occurred_at"] = draw(
            st.sampled_from(["2026-11-26T12:00:00.123000Z", "2026-11-26T13:00:00+01:00", None])
        )
    if draw(st.booleans()):
        event["account_id"] = draw(_VALUE)  # not text: the fast path declines
    for name in draw(st.lists(st.sampled_from(_TOP_FIELDS), unique=True)):
        event[name] = draw(_VALUE)
    if draw(st.booleans()):
        # Nested keys named like the targeted fields must stay as they are.
        event["attributes"] = {"ip": draw(_VALUE), "actor_email": draw(_TEXT)}
    if draw(st.booleans()):
        event["raw"] = draw(_TEXT)
    return event


@given(
    event=events(),
    rules=st.dictionaries(
        st.sampled_from(_RULE_FIELDS), st.sampled_from(["drop", "mask", "hash"]), min_size=1
    ),
    extra=st.booleans(),
    layout=st.sampled_from(["compact", "indented", "escaped keys", "repeated key"]),
)
@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_fast_path_gives_what_decoding_gives(
    event: dict[str, Any], rules: dict[str, str], extra: bool, layout: str
) -> None:
    if extra:
        event = {**event, "not_a_field": 1}  # the Python path declines: decoding decides
    transform = PiiTransform(check_rules(rules), KEY)
    raw = orjson.dumps(event, option=orjson.OPT_INDENT_2 if layout == "indented" else 0)
    if layout == "escaped keys":  # JSON spells a key as it likes: still the same field
        raw = raw.replace(b'"ip":', b'"\\u0069p":').replace(
            b'"actor_email":', b'"actor\\u005femail":'
        )
    elif layout == "repeated key":  # decoders take the last
        raw = raw[:-1] + (b"," if len(event) else b"") + b'"actor_email":"bob@evil.io"}'
    decoded = orjson.loads(transform.apply_decoded(raw))
    assert orjson.loads(transform.apply(raw)) == decoded
    # As the connector calls it: read (the head, decoded once), then apply.
    try:
        head = read_event(raw)
    except ValueError:
        with pytest.raises(ValueError):
            transform.read(raw)
        return
    assert transform.read(raw) == head
    assert orjson.loads(transform.apply(raw)) == decoded


@given(
    address=st.one_of(st.ip_addresses(v=6), st.ip_addresses(v=4)),
    spelling=st.sampled_from(["compressed", "exploded", "upper", "ipv4 tail"]),
)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_spelling_of_an_address_is_masked_to_its_network(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, spelling: str
) -> None:
    text = {
        "compressed": address.compressed,
        "exploded": address.exploded,
        "upper": address.compressed.upper(),
        "ipv4 tail": f"::ffff:{address}" if address.version == 4 else address.compressed,
    }[spelling]
    network = ipaddress.ip_network(f"{text}/{16 if ':' not in text else 48}", strict=False)
    transform = PiiTransform(check_rules({"ip": "mask"}), KEY)
    masked = orjson.loads(transform.apply(orjson.dumps({"event_id": "e", "ip": text})))["ip"]
    assert masked == mask_ip(text) == str(network)


def test_the_fast_path_serves_the_events_the_pipeline_writes(path: str) -> None:
    transform = PiiTransform(check_rules({"actor.email": "hash", "ip": "mask"}), KEY)
    if path == "native":
        assert transform._native is not None
        assert transform._native.serves(orjson.dumps(EVENT))
    else:
        assert transform._splice is not None
        assert transform._splice.decode(orjson.dumps(EVENT)) is not None
    # A repeated key counts once, as decoders take it (the last): no clear value slips by.
    doubled = orjson.dumps(EVENT)[:-1] + b',"ip":"10.1.2.3"}'
    assert b"10.1.2.3" not in transform.apply(doubled)


def test_apply_uses_what_read_decoded_only_for_that_same_event() -> None:
    transform = PiiTransform(check_rules({"actor.email": "hash", "ip": "mask"}), KEY)
    first, second = orjson.dumps(EVENT), orjson.dumps({**EVENT, "ip": "10.9.8.7"})
    transform.read(first)
    assert orjson.loads(transform.apply(second))["ip"] == "10.9.0.0/16"
    transform.read(first)
    assert orjson.loads(transform.apply(first))["ip"] == "99.81.0.0/16"
    assert orjson.loads(transform.apply(second))["ip"] == "10.9.0.0/16"  # not read: decoded


def test_recurring_values_stay_cached_while_one_off_values_pass_through() -> None:
    from connectors.sinks import transform as module

    computed: list[str] = []
    scope: dict[str, Any] = {"done": {}}
    misses = module._Misses(scope, "done", lambda v: computed.append(v) or f"<{v}>")

    def look(value: str) -> Any:
        return scope["done"].get(value) or misses(value)

    for i in range(3 * module.CACHED_PER_RULE):
        assert look("alice") == "<alice>"  # used all the time
        assert look(f"once-{i}") == f"<once-{i}>"  # a scan of values seen once
    assert computed.count("alice") == 1
    assert len(scope["done"]) <= module.CACHED_PER_RULE
