"""The query language end to end: generated queries (hypothesis) sent to ``/api/v1/logs``
over events stored in the real engine must return exactly what an oracle, written here from
the README's rules over the same events, returns; anything that does not parse is a 400
naming ``q`` and a position, never a 500."""

from __future__ import annotations

import ipaddress
import random
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.clickhouse.client import connect
from pipeline.enrich import Enricher
from pipeline.normalize import Normalizer
from pipeline.store import EventWriter, Row
from schemas.events import NormalizedEvent
from schemas.log_store import StoreLocation
from tests.integration.test_logs_api import search_predicate

# The events span the 20 days from BASE (a midnight, UTC); the dates queried are the events'
# own, so nothing depends on the day the suite runs.
BASE = datetime.combine(datetime.now(UTC).date() - timedelta(days=25), time(), UTC)
WINDOW = {
    "from": BASE.isoformat(),
    "to": (BASE + timedelta(days=21)).isoformat(),
}
KEYS = (
    "login.completed",
    "login.failed",
    "oidc.flow.started",
    "oidc.token_exchange.failed",
    "refresh_token.exchange.completed",
    "mfa.challenge.failed",
)
UAS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    '(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1 "quoted"',
    "okhttp/4.12.0",
    "",
)
IPS = (
    "99.81.198.187",
    "99.81.3.4",
    "8.8.8.8",
    "10.1.2.3",
    "2a00:1450:4001:82a::200e",
    "2a00:1450:4002::1",
    "2001:db8::5",
    "",
)
REASONS = ("invalid_password", "mfa required", "")
ACCOUNTS = ("acc_0", "acc_1", "acc_2", "")
USERS = [(f"usr_{i}", f"user{i}@{'acme.io' if i % 2 else 'globex.com'}") for i in range(5)]
TRACES = [f"{n:032x}" for n in (0xA1B2C3, 0xDEADBEEF, 0x1234567890ABCDEF)]


def _raw_events(count: int) -> list[bytes]:
    rng = random.Random(19)
    events = []
    for i in range(count):
        body: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "event_key": rng.choice(KEYS),
            "occurred_at": (BASE + timedelta(seconds=rng.uniform(0, 20 * 86400))).isoformat(
                timespec="milliseconds"
            ),
            "attributes": {
                "n": i,
                "method": rng.choice(["sso", "password", "passkey"]),
                "mfa": rng.random() < 0.5,
                "device": {"os": rng.choice(["ios", "linux"])},
            },
        }
        if ip := rng.choice(IPS):
            body["ip"] = ip
        if ua := rng.choice(UAS):
            body["user_agent"] = ua
        if account := rng.choice(ACCOUNTS):
            body["account"] = {"id": account, "name": account.upper()}
        if rng.random() < 0.7:
            user_id, email = rng.choice(USERS)
            body["actor"] = {"id": user_id, **({"email": email} if rng.random() < 0.8 else {})}
        if rng.random() < 0.4:
            body["trace_id"] = rng.choice(TRACES)
        if (reason := rng.choice(REASONS)) and body["event_key"].endswith("failed"):
            body["reason"] = reason
        events.append(orjson.dumps(body))
    return events


class Stored(list[NormalizedEvent]):
    """The module's events (a short repr: hypothesis prints the strategies it draws from)."""

    def __repr__(self) -> str:
        return f"<{len(self)} stored events>"


@pytest.fixture(scope="module")
def events(store: StoreLocation) -> list[NormalizedEvent]:
    normalizer = Normalizer(Enricher())
    out = []
    for raw in _raw_events(300):
        event = normalizer.normalize(raw, BASE + timedelta(days=21))
        assert isinstance(event, NormalizedEvent), event
        out.append(event)
    assert EventWriter(connect(store), store).write([Row.of(e) for e in out]) == []
    return Stored(out)


@pytest.fixture(scope="module")
def client(api_app: FastAPI, events: list[NormalizedEvent]) -> Iterator[TestClient]:
    with TestClient(api_app) as test_client:
        yield test_client


# -- queries with their oracle ------------------------------------------------------------
Predicate = Callable[[NormalizedEvent], bool]


@dataclass(frozen=True)
class Q:
    """A query as written and what it matches, by the README's rules."""

    text: str
    matches: Predicate
    compound: bool = False


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def word_or_quoted(value: str) -> str:
    return value if re.fullmatch(r'[^\s()"]+', value) and value[0] != "-" else quoted(value)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def attribute(e: NormalizedEvent, path: tuple[str, ...]) -> str | None:
    held: Any = e.attributes
    for step in path:
        if not isinstance(held, dict) or step not in held:
            return None
        held = held[step]
    return held if isinstance(held, str) else orjson.dumps(held).decode()


def case(draw: st.DrawFn, text: str) -> str:
    return draw(st.sampled_from([text, text.lower(), text.upper()]))


@st.composite
def leaves(draw: st.DrawFn, events: list[NormalizedEvent]) -> Q:
    e = draw(st.sampled_from(events))
    kind = draw(
        st.sampled_from(
            [
                "account",
                "user",
                "anonymous",
                "ip",
                "cidr",
                "type",
                "type prefix",
                "outcome",
                "trace",
                "ua",
                "browser",
                "os",
                "country",
                "reason",
                "attribute",
                "time",
                "bare",
            ]
        )
    )
    if kind == "account":
        v = e.account_id or "acc_none"
        return Q(f"account:{v}", lambda x: x.account_id == v)
    if kind == "user":
        v = draw(st.sampled_from([u for u in (e.actor_id, e.actor_email) if u] or ["usr_none"]))
        return Q(f"user:{v}", lambda x: v in (x.actor_id, x.actor_email))
    if kind == "anonymous":
        return Q("user:anonymous", lambda x: not x.actor_id and not x.actor_email)
    if kind in ("ip", "cidr") and not e.ip:
        kind = "type"
    if kind == "ip":
        address = ipaddress.ip_address(e.ip)
        written = draw(st.sampled_from([e.ip, address.exploded, f"[{e.ip}]"]))
        return Q(f"ip:{written}", lambda x: x.ip == e.ip)
    if kind == "cidr":
        address = ipaddress.ip_address(e.ip)
        bits = draw(st.integers(8 if address.version == 4 else 16, address.max_prefixlen))
        net = ipaddress.ip_network(f"{address}/{bits}", strict=False)

        def in_net(x: NormalizedEvent) -> bool:
            if not x.ip:
                return False
            other = ipaddress.ip_address(x.ip)
            return other.version == net.version and other in net

        return Q(f"ip:{address}/{bits}", in_net)
    if kind == "type":
        return Q(f"type:{case(draw, e.event_key)}", lambda x: x.event_key == e.event_key)
    if kind == "type prefix":
        head = e.event_key.split(".")[0] + "."
        return Q(f"type:{head}*", lambda x: x.event_key.startswith(head))
    if kind == "outcome":
        return Q(f"outcome:{case(draw, e.outcome)}", lambda x: x.outcome == e.outcome)
    if kind == "trace" and e.trace_id:
        return Q(f"trace:{case(draw, e.trace_id)}", lambda x: x.trace_id == e.trace_id)
    if kind in ("ua", "browser", "os"):
        column = {"ua": "user_agent", "browser": "ua_browser", "os": "ua_os"}[kind]
        text: str = getattr(e, column)
        if text:
            start = draw(st.integers(0, len(text) - 1))
            piece = case(draw, text[start : start + draw(st.integers(1, 12))])
            if piece.strip():
                return Q(
                    f"{kind}:{word_or_quoted(piece)}",
                    lambda x: piece.strip().lower() in getattr(x, column).lower(),
                )
    if kind == "country" and e.country:
        return Q(f"country:{case(draw, e.country)}", lambda x: x.country == e.country)
    if kind == "reason" and e.reason:
        return Q(f"reason:{word_or_quoted(e.reason)}", lambda x: x.reason == e.reason)
    if kind == "attribute":
        path = draw(st.sampled_from([("method",), ("mfa",), ("n",), ("device", "os")]))
        value = attribute(e, path) or "none"
        return Q(f"attributes.{'.'.join(path)}:{value}", lambda x: attribute(x, path) == value)
    if kind == "time":
        moment = e.occurred_at.astimezone(UTC)
        day = moment.date()
        op = draw(st.sampled_from([">=", ">", "<=", "<", "", "[]", "{}", "instant"]))
        if op == "instant":  # an event's own instant: each comparison decides it
            compare, holds = draw(
                st.sampled_from(
                    [
                        (">=", lambda t: t >= moment),
                        (">", lambda t: t > moment),
                        ("<=", lambda t: t <= moment),
                        ("<", lambda t: t < moment),
                    ]
                )
            )
            written = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            return Q(f"time:{compare}{written}", lambda x: holds(x.occurred_at))
        if op in ("[]", "{}"):
            low = day - timedelta(days=draw(st.integers(0, 3)))
            high = day + timedelta(days=draw(st.integers(2, 4)))
            if op == "[]":
                return Q(
                    f"time:[{low} TO {high}]",
                    lambda x: day_start(low) <= x.occurred_at < day_start(high + timedelta(1)),
                )
            return Q(
                f"time:{{{low} TO {high}}}",
                lambda x: day_start(low + timedelta(1)) <= x.occurred_at < day_start(high),
            )
        bounds: dict[str, Predicate] = {
            ">=": lambda x: x.occurred_at >= day_start(day),
            ">": lambda x: x.occurred_at >= day_start(day + timedelta(1)),
            "<=": lambda x: x.occurred_at < day_start(day + timedelta(1)),
            "<": lambda x: x.occurred_at < day_start(day),
            "": lambda x: day_start(day) <= x.occurred_at < day_start(day + timedelta(1)),
        }
        return Q(f"time:{op}{day}", bounds[op])
    # A bare word: today's rules (the README's four).
    word = draw(
        st.sampled_from(
            [w for w in (e.ip, e.trace_id, e.event_key.split(".")[0] + ".") if w]
            + ["firefox", "GLOBEX", "okhttp"]
        )
    )
    return Q(word, search_predicate(word))  # the rules from before the language


def queries(events: list[NormalizedEvent]) -> st.SearchStrategy[Q]:
    def combine(children: st.SearchStrategy[Q]) -> st.SearchStrategy[Q]:
        def wrapped(q: Q) -> str:
            return f"({q.text})" if q.compound else q.text

        def both(pair: tuple[Q, Q, str]) -> Q:
            a, b, how = pair
            if how == "OR":
                return Q(
                    f"{wrapped(a)} OR {wrapped(b)}", lambda x: a.matches(x) or b.matches(x), True
                )
            joined = (
                f"{wrapped(a)} AND {wrapped(b)}" if how == "AND" else f"{wrapped(a)} {wrapped(b)}"
            )
            return Q(joined, lambda x: a.matches(x) and b.matches(x), True)

        def negated(pair: tuple[Q, str]) -> Q:
            q, how = pair
            return Q(f"{how}{wrapped(q)}", lambda x: not q.matches(x), True)

        return st.one_of(
            st.tuples(children, children, st.sampled_from(["AND", "OR", " "])).map(both),
            st.tuples(children, st.sampled_from(["NOT ", "-"])).map(negated),
        )

    return st.recursive(leaves(events), combine, max_leaves=6)


def expected_ids(events: list[NormalizedEvent], matches: Predicate) -> list[str]:
    hits = sorted(
        (e for e in events if matches(e)), key=lambda e: (e.occurred_at, e.event_id), reverse=True
    )
    return [e.event_id for e in hits]


def found_ids(client: TestClient, token: str, q: str) -> list[str]:
    """Every page of ``q`` within the events' days (other modules share the store)."""
    ids: list[str] = []
    cursor = None
    while True:
        response = client.get(
            "/api/v1/logs",
            params={"q": q, "limit": 500, **WINDOW, **({"cursor": cursor} if cursor else {})},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, (q, response.text)
        body = response.json()
        ids += [item["event_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


@given(data=st.data())
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_query_matches_what_the_oracle_matches(
    client: TestClient, events: list[NormalizedEvent], tokens: dict[str, str], data: st.DataObject
) -> None:
    query = data.draw(queries(events))
    ids = {e.event_id for e in events}  # other modules' events share the store
    found = [i for i in found_ids(client, tokens["admin"], query.text) if i in ids]
    assert found == expected_ids(events, query.matches), query.text


def test_the_forms_of_the_readme(
    client: TestClient, events: list[NormalizedEvent], tokens: dict[str, str]
) -> None:
    """Each form once, and each must match something (the generated queries above may
    well match nothing)."""
    ids = {e.event_id for e in events}
    for q in (
        "type:oidc.*",
        "ip:99.81.0.0/16",
        "ip:2a00:1450::/32",
        "account:acc_1 OR account:acc_2",
        "NOT outcome:success",
        'ua:"Mozilla/5.0 (X11"',
        f"time:[{(BASE + timedelta(days=2)).date()} TO {(BASE + timedelta(days=5)).date()}]",
        "attributes.device.os:ios -attributes.mfa:true",
        "(type:login.failed OR type:mfa.challenge.failed) reason:invalid_password",
    ):
        found = [i for i in found_ids(client, tokens["admin"], q) if i in ids]
        assert found, q


@given(
    q=st.lists(
        st.sampled_from(
            [
                "ip:",
                "type:",
                "time:",
                "time:[",
                " TO ",
                "]",
                "(",
                ")",
                '"',
                "NOT ",
                "OR ",
                "-",
                "2026-03-02",
                "10.0.0.0/8",
                "x",
                ":",
                "oidc.*",
                "*",
                " ",
                "attributes.a:",
                "\\",
            ]
        ),
        min_size=1,
        max_size=10,
    ).map("".join)
)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_what_does_not_parse_is_a_400_naming_q(
    client: TestClient, tokens: dict[str, str], q: str
) -> None:
    response = client.get(
        "/api/v1/logs",
        params={"q": q, "limit": 1},
        headers={"Authorization": f"Bearer {tokens['admin']}"},
    )
    assert response.status_code in (200, 400), (q, response.status_code, response.text)
    if response.status_code == 400:
        body = response.json()
        assert "q" in str(body), body
        assert re.search(r"at position \d+: expected", str(body)), body
