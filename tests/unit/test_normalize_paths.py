"""The fast normalization path (msgspec) and the general one (the pydantic contract) give
the same result for every input; the fast path only ever declines, never differs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from authtrail.demo import DemoTraffic
from pipeline.enrich import Enricher
from pipeline.fast_decode import ALTERNATIVES, Refused
from pipeline.normalize import Normalizer

RECEIVED = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
BASE: dict[str, Any] = {
    "event_id": "7f1b7a52-9c1e-4a57-9a4f-1d2b3c4d5e6f",
    "event_key": "login.completed",
    "occurred_at": "2026-11-26T11:59:58.123Z",
    "account": {"id": "acc_1", "name": "Acme"},
    "actor": {"id": "u_1", "email": "ada@acme.io", "type": "user"},
    "ip": "81.2.69.160",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "attributes": {"client_id": "app-1", "mfa": ["totp"]},
}


def variant(**changes: Any) -> dict[str, Any]:
    event = dict(BASE)
    for key, value in changes.items():
        if value is ...:
            event.pop(key, None)
        else:
            event[key] = value
    return event


CASES: dict[str, Any] = {
    "canonical": BASE,
    "no event id (derived)": variant(event_id=...),
    "upper-case uuid": variant(event_id="7F1B7A52-9C1E-4A57-9A4F-1D2B3C4D5E6F"),
    "uuid without dashes": variant(event_id="7f1b7a529c1e4a579a4f1d2b3c4d5e6f"),
    "non-uuid id": variant(event_id="  evt_123:abc  "),
    "bad id": variant(event_id="has space"),
    "empty id": variant(event_id=""),
    "id at the length limit plus a control character": variant(event_id="a" * 128 + "\x1f"),
    "key upper-case and padded": variant(event_key="  Login.Completed "),
    "bad key": variant(event_key="login..completed"),
    "unknown key": variant(event_key="scim.group.created"),
    "epoch seconds": variant(occurred_at=1795694398),
    "epoch ms": variant(occurred_at=1795694398123),
    "epoch string": variant(occurred_at="1795694398.5"),
    "offset time": variant(occurred_at="2026-11-26T13:59:58+02:00"),
    "no offset": variant(occurred_at="2026-11-26T11:59:58"),
    "bool time": variant(occurred_at=True),
    "far past": variant(occurred_at="1999-12-31T23:59:59Z"),
    "far future": variant(occurred_at="2026-11-28T00:00:00Z"),
    "no time": variant(occurred_at=...),
    "null time with alias": variant(occurred_at=None, timestamp="2026-11-26T11:00:00Z"),
    "v1 time wins": variant(timestamp="2020-01-01T00:00:00Z"),
    "ts alias": variant(occurred_at=..., ts=1795694398),
    "both aliases": variant(occurred_at=..., timestamp=None, ts=1795694000),
    "flat account": variant(account=..., account_id="acc_9", account_name="Initech"),
    "flat account id only": variant(account=..., account_id="acc_9"),
    "flat account name only": variant(account=..., account_name="Initech"),
    "flat account number": variant(account=..., account_id=12),
    "account and flat": variant(account_id="acc_other"),
    "account as string": variant(account="acc_2"),
    "account without id": variant(account={"name": "x"}),
    "id ending in a control character": variant(account={"id": "0\x1f", "name": "\x1cA\u2003"}),
    "account extra field": variant(account={"id": "a", "plan": "pro"}),
    "flat actor": variant(actor=..., user_id="u_9", user_email="bo@x.io"),
    "flat actor email only": variant(actor=..., user_email="bo@x.io"),
    "actor as email": variant(actor="cy@x.io"),
    "actor as id": variant(actor="svc-1"),
    "actor bad email": variant(actor={"email": "not-an-email"}),
    "actor bad type": variant(actor={"id": "x", "type": "robot"}),
    "actor empty": variant(actor={}),
    "anonymous": variant(actor=...),
    "ip alias": variant(ip=..., ip_address="2001:DB8::1"),
    "client ip alias": variant(ip=..., client_ip="[::ffff:10.0.0.1]"),
    "ip mapped": variant(ip="::ffff:81.2.69.160"),
    "bad ip": variant(ip="300.1.1.1"),
    "ip number": variant(ip=12345),
    "user agent alias": variant(user_agent=..., userAgent="curl/8.10.1"),
    "empty user agent": variant(user_agent=""),
    "long user agent": variant(user_agent="x" * 4097),
    "trace alias": variant(trace_id=..., traceId="ABC-123"),
    "empty trace": variant(trace_id=""),
    "bad trace": variant(trace_id="a b"),
    "outcome": variant(outcome="failure"),
    "bad outcome": variant(outcome="maybe"),
    "reason long": variant(reason="r" * 2049),
    "attributes list": variant(attributes=[1, 2]),
    "attributes null": variant(attributes=None),
    "extra top-level field": variant(tenant_region="eu"),
    "deep": variant(attributes=orjson.loads(b'{"a":' * 40 + b"1" + b"}" * 40)),
    "not an object": [1, 2, 3],
}


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer(Enricher())


@pytest.mark.parametrize("name", list(CASES))
def test_fast_and_general_paths_agree(normalizer: Normalizer, name: str) -> None:
    value = orjson.dumps(CASES[name])
    assert normalizer.normalize(value, RECEIVED) == normalizer.normalize_general(value, RECEIVED)


def test_agree_on_demo_traffic_and_the_fast_path_takes_it(normalizer: Normalizer) -> None:
    traffic = DemoTraffic(seed=21).events()
    for _ in range(3000):
        value = next(traffic)
        received = datetime.now(UTC).replace(microsecond=0)
        general = normalizer.normalize_general(value, received)
        assert normalizer._fast(value, received) == general  # never declines demo traffic


@pytest.mark.parametrize("alias", ALTERNATIVES)
def test_every_alternative_spelling_is_mapped(normalizer: Normalizer, alias: str) -> None:
    value = orjson.dumps(variant(**{alias: "x"}))
    try:
        fast = normalizer._fast(value, RECEIVED)
    except Refused:
        return  # declined: the general path decides
    assert fast == normalizer.normalize_general(value, RECEIVED)
