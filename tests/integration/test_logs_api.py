"""The Logs API over the real chDB engine and a generated data set whose answers are known:
every filter alone and combined, sorts, cursor paging, `today` across time zones,
exports, timeline, facets, invalid parameters and access control.

The oracle below re-implements the documented rules in plain Python over the same events;
the API must agree with it exactly."""

from __future__ import annotations

import csv
import io
import ipaddress
import random
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from infra.clickhouse.client import connect
from pipeline.enrich import Enricher
from pipeline.normalize import Normalizer
from pipeline.store import EventWriter, Row
from query_api import repository
from schemas.events import NormalizedEvent
from schemas.log_store import StoreLocation

NOW = datetime.now(UTC)
ZONES = ("UTC", "Pacific/Kiritimati", "America/Adak", "Asia/Kolkata")
KEYS = (
    "login.completed",
    "login.failed",
    "oidc.flow.started",
    "oidc.token_exchange.succeeded",
    "oidc.token_exchange.failed",
    "refresh_token.exchange.completed",
    "sso.tenant.completed",
    "mfa.challenge.failed",
    "webhook.delivery.failed",
)
UAS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "okhttp/4.12.0",
    "curl/8.10.1",
)
IPS = ("99.81.198.187", "8.8.8.8", "10.1.2.3", "2a00:1450:4001:82a::200e", "81.2.69.142")
USERS = [(f"usr_{i}", f"user{i}@{'acme.io' if i % 2 else 'globex.com'}") for i in range(8)]


def _boundaries() -> list[datetime]:
    """Instants a range filter cuts at: events near them would make the test depend on
    the second it runs."""
    cuts = [
        NOW - timedelta(hours=1),
        NOW - timedelta(hours=24),
        NOW - timedelta(days=7),
        NOW - timedelta(days=30),
    ]
    for tz in ZONES:
        local = NOW.astimezone(ZoneInfo(tz))
        midnight = datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(tz))
        # The next midnight too: the suite may run across it.
        cuts += [midnight, midnight + timedelta(days=1)]
    return cuts


def _raw_events(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = _boundaries()
    traces = [f"{rng.getrandbits(128):032x}" for _ in range(40)] + [
        str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(10)
    ]
    events = []
    while len(events) < count:
        when = NOW - timedelta(seconds=rng.uniform(5, 40 * 86400))
        if any(abs((when - cut).total_seconds()) < 600 for cut in cuts):
            continue
        body: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "event_key": rng.choice(KEYS),
            "occurred_at": when.isoformat(timespec="milliseconds"),
            "ip": rng.choice(IPS),
            "user_agent": rng.choice(UAS),
            "attributes": {"n": len(events)},
        }
        if rng.random() < 0.8:
            n = rng.randrange(4)
            body["account"] = {"id": f"acc_{n}", "name": f"Account {n}"}
        kind = rng.random()
        if kind < 0.6:
            user_id, email = rng.choice(USERS)
            body["actor"] = {"id": user_id, "email": email}
        elif kind < 0.75:
            body["actor"] = {"id": f"agent-{rng.randrange(3)}", "type": "agent"}
        elif kind < 0.85:
            body["actor"] = {"id": "svc-scim", "type": "service"}
        if rng.random() < 0.5:
            body["trace_id"] = rng.choice(traces)
        if rng.random() < 0.1:
            body["outcome"] = rng.choice(["success", "failure"])
        events.append(orjson.dumps(body))
    return events


@pytest.fixture(scope="module")
def dataset(store: StoreLocation) -> list[NormalizedEvent]:
    normalizer = Normalizer(Enricher())
    events = []
    for raw in _raw_events(700, seed=42):
        event = normalizer.normalize(raw, NOW)
        assert isinstance(event, NormalizedEvent), event
        events.append(event)
    writer = EventWriter(connect(store), store)
    assert writer.write([Row.of(e) for e in events]) == []
    # Redelivered (e.g. after a crash): shows once.
    assert writer.write([Row.of(e) for e in events[:100]]) == []
    return events


@pytest.fixture(scope="module")
def client(api_app: FastAPI, dataset: list[NormalizedEvent]) -> Iterator[TestClient]:
    with TestClient(api_app) as test_client:
        yield test_client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the oracle ---------------------------------------------------------------------------
@dataclass
class Q:
    """A query: the API parameters and the matching predicate over events."""

    params: dict[str, Any]
    predicate: Callable[[NormalizedEvent], bool]


def search_predicate(term: str) -> Callable[[NormalizedEvent], bool]:
    text = term.strip()
    try:
        address = ipaddress.ip_address(text.strip("[]"))
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return lambda e: e.ip == str(address)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-F]{16,32}", text) or re.fullmatch(
        r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", text
    ):
        return lambda e: e.trace_id == text.lower()
    if re.fullmatch(r"[a-z0-9_-]+(\.[a-z0-9_-]*)+", text):
        return lambda e: e.event_key.startswith(text)
    needle = text.lower()
    return lambda e: any(
        needle in getattr(e, f).lower()
        for f in (
            "event_key",
            "description",
            "user_agent",
            "trace_id",
            "ip",
            "actor_email",
            "actor_id",
            "actor_display",
        )
    )


def is_anonymous(e: NormalizedEvent) -> bool:
    return not e.actor_id and not e.actor_email


def fetch_all(
    client: TestClient,
    token: str,
    params: dict[str, Any],
    limit: int = 37,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get("/api/v1/logs", params=query, headers=auth(token))
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return rows


def expected(
    dataset: list[NormalizedEvent],
    predicate: Callable[[NormalizedEvent], bool],
    sort: str = "time",
    order: str = "desc",
) -> list[str]:
    key: Callable[[NormalizedEvent], tuple[Any, ...]] = (
        (lambda e: (e.occurred_at, e.event_id))
        if sort == "time"
        else (lambda e: (e.description, e.occurred_at, e.event_id))
    )
    hits = sorted((e for e in dataset if predicate(e)), key=key, reverse=order == "desc")
    return [e.event_id for e in hits]


def sample(dataset: list[NormalizedEvent], attr: str) -> str:
    return next(getattr(e, attr) for e in dataset if getattr(e, attr))


def today_start(tz: str) -> datetime:
    local = datetime.now(UTC).astimezone(ZoneInfo(tz))
    return datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def queries(dataset: list[NormalizedEvent]) -> dict[str, Q]:
    ip6 = next(e.ip for e in dataset if ":" in e.ip)
    trace = sample(dataset, "trace_id")
    uuid_trace = next(e.trace_id for e in dataset if "-" in e.trace_id)
    now = datetime.now(UTC)
    qs = {
        "all": Q({}, lambda e: True),
        "q=ip": Q({"q": "99.81.198.187"}, search_predicate("99.81.198.187")),
        "q=ipv6 other notation": Q({"q": ip6.upper().replace("::", ":0::")}, lambda e: e.ip == ip6),
        "q=ipv4-mapped": Q({"q": "::ffff:8.8.8.8"}, lambda e: e.ip == "8.8.8.8"),
        "q=trace upper": Q({"q": trace.upper()}, lambda e: e.trace_id == trace),
        "q=uuid trace": Q({"q": uuid_trace.upper()}, lambda e: e.trace_id == uuid_trace),
        "q=key prefix": Q({"q": "oidc."}, lambda e: e.event_key.startswith("oidc.")),
        "q=full key": Q({"q": "login.failed"}, lambda e: e.event_key == "login.failed"),
        "q=ua text": Q({"q": "FireFox"}, search_predicate("FireFox")),
        "q=email part": Q({"q": "@ACME"}, search_predicate("@ACME")),
        "q=log text": Q({"q": "token exchange"}, search_predicate("token exchange")),
        "q=account id is not searched": Q({"q": "acc_1"}, search_predicate("acc_1")),
        "q=sql-ish": Q({"q": "' OR 1=1 --"}, lambda e: False),
        "account": Q({"account": "acc_1"}, lambda e: e.account_id == "acc_1"),
        "accounts": Q(
            {"account": ["acc_1", "acc_3"]}, lambda e: e.account_id in {"acc_1", "acc_3"}
        ),
        "user by email": Q({"user": "user1@acme.io"}, lambda e: e.actor_email == "user1@acme.io"),
        "user by id": Q(
            {"user": ["usr_2", "agent-1"]}, lambda e: e.actor_id in {"usr_2", "agent-1"}
        ),
        "user anonymous": Q({"user": "anonymous"}, is_anonymous),
        "anonymous or one": Q(
            {"user": ["anonymous", "svc-scim"]},
            lambda e: is_anonymous(e) or e.actor_id == "svc-scim",
        ),
        "type": Q({"type": "login.failed"}, lambda e: e.event_key == "login.failed"),
        "types": Q(
            {"type": ["webhook.delivery.failed", "sso.tenant.completed"]},
            lambda e: e.event_key in {"webhook.delivery.failed", "sso.tenant.completed"},
        ),
        "outcome": Q({"outcome": "failure"}, lambda e: e.outcome == "failure"),
        "range 1h": Q({"range": "1h"}, lambda e: e.occurred_at >= now - timedelta(hours=1)),
        "range 24h": Q({"range": "24h"}, lambda e: e.occurred_at >= now - timedelta(hours=24)),
        "range 7d": Q({"range": "7d"}, lambda e: e.occurred_at >= now - timedelta(days=7)),
        "range 30d": Q({"range": "30d"}, lambda e: e.occurred_at >= now - timedelta(days=30)),
        "from/to": Q(
            {
                "from": (now - timedelta(days=9)).isoformat(),
                "to": (now - timedelta(days=2)).isoformat(),
            },
            lambda e: now - timedelta(days=9) <= e.occurred_at < now - timedelta(days=2),
        ),
        "combined": Q(
            {
                "account": ["acc_0", "acc_2"],
                "outcome": "success",
                "range": "30d",
                "q": "oidc.",
                "user": ["anonymous", "usr_1", "usr_4", "agent-0"],
            },
            lambda e: (
                e.account_id in {"acc_0", "acc_2"}
                and e.outcome == "success"
                and e.occurred_at >= now - timedelta(days=30)
                and e.event_key.startswith("oidc.")
                and (is_anonymous(e) or e.actor_id in {"usr_1", "usr_4", "agent-0"})
            ),
        ),
    }
    for tz in ZONES:
        start = today_start(tz)
        qs[f"today {tz}"] = Q({"range": "today", "tz": tz}, lambda e, s=start: e.occurred_at >= s)
    return qs


# The names only (the predicates need the data set, built once per module).
QUERY_NAMES = list(
    queries(
        [
            NormalizedEvent(
                event_id="e",
                event_key="login.completed",
                description="",
                outcome="success",
                ip="2001:db8::1",
                trace_id="00000000-0000-4000-8000-000000000000",
                occurred_at=NOW,
                received_at=NOW,
            )
        ]
    )
)


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_each_filter_matches_the_oracle(
    client: TestClient, dataset: list[NormalizedEvent], tokens: dict[str, str], name: str
) -> None:
    q = queries(dataset)[name]
    rows = fetch_all(client, tokens["viewer"], q.params)
    ids = [r["event_id"] for r in rows]
    assert ids == expected(dataset, q.predicate), name
    # Right after a zone's midnight its "today" is rightly empty.
    if name not in ("q=sql-ish", "q=account id is not searched") and not name.startswith("today"):
        assert ids, f"{name}: the data set should have matches"


@pytest.mark.parametrize("sort", ["time", "log"])
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_sort_orders_and_paging(
    client: TestClient,
    dataset: list[NormalizedEvent],
    tokens: dict[str, str],
    sort: str,
    order: str,
) -> None:
    params = {"sort": sort, "order": order, "outcome": "failure"}
    rows = fetch_all(client, tokens["viewer"], params, limit=11)
    ids = [r["event_id"] for r in rows]
    assert len(ids) == len(set(ids))
    assert ids == expected(dataset, lambda e: e.outcome == "failure", sort, order)


@pytest.mark.parametrize("few_rows", [0, 3, 40])
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_sort_by_log_reads_texts_alone_or_together_alike(
    client: TestClient,
    dataset: list[NormalizedEvent],
    tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    few_rows: int,
    order: str,
) -> None:
    # Large texts are read alone in time order, small ones together; the threshold is
    # 20,000 rows, so this data set needs it lowered to take both ways.
    monkeypatch.setattr(repository, "_FEW_ROWS", few_rows)
    rows = fetch_all(client, tokens["viewer"], {"sort": "log", "order": order}, limit=7)
    assert [r["event_id"] for r in rows] == expected(dataset, lambda e: True, "log", order)


def test_paging_while_new_events_arrive(
    client: TestClient, dataset: list[NormalizedEvent], store: StoreLocation, tokens: dict[str, str]
) -> None:
    writer = EventWriter(connect(store), store)
    normalizer = Normalizer(Enricher())
    seen: list[str] = []
    cursor = None
    before = expected(dataset, lambda e: True)
    while True:
        params: dict[str, Any] = {"limit": 50, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/logs", params=params, headers=auth(tokens["viewer"])).json()
        seen.extend(i["event_id"] for i in body["items"])
        # New events land between pages (newer than anything paged so far).
        fresh = normalizer.normalize(
            orjson.dumps(
                {
                    "event_key": "login.completed",
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "event_id": str(uuid.uuid4()),
                }
            ),
            datetime.now(UTC),
        )
        assert isinstance(fresh, NormalizedEvent)
        writer.write([Row.of(fresh)])
        dataset.append(fresh)
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == before  # every row that existed, exactly once, in order


def test_detail_carries_the_whole_event(
    client: TestClient, dataset: list[NormalizedEvent], tokens: dict[str, str]
) -> None:
    event = next(e for e in dataset if e.trace_id and "Firefox" in e.user_agent)
    body = client.get(f"/api/v1/logs/{event.event_id}", headers=auth(tokens["viewer"])).json()
    assert body["attributes"] == event.attributes
    assert body["raw"]["event_id"] == event.event_id
    assert (body["ua_browser"], body["trace_id"]) == ("Firefox 132", event.trace_id)
    assert body["received_at"].endswith("Z")
    missing = client.get("/api/v1/logs/no-such-event", headers=auth(tokens["viewer"]))
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["parameter"] == "event_id"


@pytest.mark.parametrize(
    "params", [{}, {"account": "acc_2", "outcome": "failure"}, {"q": "oidc.", "range": "30d"}]
)
def test_export_counts_equal_the_filter(
    client: TestClient,
    dataset: list[NormalizedEvent],
    tokens: dict[str, str],
    params: dict[str, Any],
) -> None:
    count = len(fetch_all(client, tokens["viewer"], params, limit=500))
    csv_response = client.get(
        "/api/v1/logs/export", params={**params, "format": "csv"}, headers=auth(tokens["viewer"])
    )
    assert csv_response.status_code == 200
    assert "attachment; filename=" in csv_response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(csv_response.text)))
    assert len(rows) == count
    assert {r["event_id"] for r in rows} == {
        r["event_id"] for r in fetch_all(client, tokens["viewer"], params, limit=500)
    }
    ndjson = client.get(
        "/api/v1/logs/export", params={**params, "format": "ndjson"}, headers=auth(tokens["viewer"])
    )
    lines = [orjson.loads(line) for line in ndjson.text.splitlines() if line]
    assert len(lines) == count
    assert all(isinstance(line["attributes"], dict) for line in lines)


def test_export_streams_in_chunks(
    client: TestClient,
    dataset: list[NormalizedEvent],
    tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import query_api.repository as repository

    monkeypatch.setattr(repository, "EXPORT_CHUNK", 64)
    response = client.get(
        "/api/v1/logs/export", params={"format": "csv"}, headers=auth(tokens["viewer"])
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len({e.event_id for e in dataset})
    assert len({r["event_id"] for r in rows}) == len(rows)


def test_timeline_counts(
    client: TestClient, dataset: list[NormalizedEvent], tokens: dict[str, str]
) -> None:
    body = client.get(
        "/api/v1/logs/timeline",
        params={"range": "7d", "account": "acc_1"},
        headers=auth(tokens["viewer"]),
    ).json()
    assert body["bucket_seconds"] == 7200
    since = datetime.now(UTC) - timedelta(days=7)
    hits = [e for e in dataset if e.account_id == "acc_1" and e.occurred_at >= since]
    assert sum(b["success"] for b in body["buckets"]) == sum(e.outcome == "success" for e in hits)
    assert sum(b["failure"] for b in body["buckets"]) == sum(e.outcome == "failure" for e in hits)
    assert 84 <= len(body["buckets"]) <= 86  # zero-filled over the whole range
    forced = client.get(
        "/api/v1/logs/timeline",
        params={"range": "24h", "bucket": "1h"},
        headers=auth(tokens["viewer"]),
    ).json()
    assert forced["bucket_seconds"] == 3600


def test_timeline_day_buckets_follow_the_time_zone(
    client: TestClient, tokens: dict[str, str]
) -> None:
    body = client.get(
        "/api/v1/logs/timeline",
        params={"range": "30d", "bucket": "1d", "tz": "Asia/Kolkata"},
        headers=auth(tokens["viewer"]),
    ).json()
    for bucket in body["buckets"]:
        local = datetime.fromisoformat(bucket["start"]).astimezone(ZoneInfo("Asia/Kolkata"))
        assert (local.hour, local.minute) == (0, 0)


def test_facets(client: TestClient, dataset: list[NormalizedEvent], tokens: dict[str, str]) -> None:
    body = client.get(
        "/api/v1/facets/accounts",
        params={"outcome": "failure", "account": "acc_1"},
        headers=auth(tokens["viewer"]),
    ).json()
    want = Counter(e.account_id for e in dataset if e.outcome == "failure" and e.account_id)
    assert {v["value"]: v["count"] for v in body["values"]} == dict(want)
    assert {v["label"] for v in body["values"]} == {f"Account {i}" for i in range(4)}
    users = client.get(
        "/api/v1/facets/users", params={"q": "ACME"}, headers=auth(tokens["viewer"])
    ).json()
    assert {v["value"] for v in users["values"]} == {
        e.actor_email for e in dataset if "acme" in e.actor_email
    }
    anonymous = client.get(
        "/api/v1/facets/users", params={"q": "anonym"}, headers=auth(tokens["viewer"])
    ).json()
    assert anonymous["values"][0]["value"] == "anonymous"
    types = client.get(
        "/api/v1/facets/types", params={"limit": 3}, headers=auth(tokens["viewer"])
    ).json()
    top = sorted(Counter(e.event_key for e in dataset).items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert [(v["value"], v["count"]) for v in types["values"]] == top


@pytest.mark.parametrize(
    ("params", "status", "parameter"),
    [
        ({"limit": 0}, 422, "limit"),
        ({"limit": 501}, 422, "limit"),
        ({"limit": "many"}, 422, "limit"),
        ({"sort": "bogus"}, 422, "sort"),
        ({"order": "sideways"}, 422, "order"),
        ({"range": "2h"}, 422, "range"),
        ({"outcome": "maybe"}, 422, "outcome"),
        ({"tz": "Mars/Olympus_Mons"}, 400, "tz"),
        ({"from": "2026-11-01T00:00:00"}, 400, "from"),
        ({"from": "yesterday"}, 422, "from"),
        ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, 400, "to"),
        ({"range": "1h", "from": "2026-11-01T00:00:00Z"}, 400, "range"),
        ({"from": "0001-01-01T00:00:00Z"}, 400, "from"),
        ({"cursor": "garbage"}, 400, "cursor"),
        ({"type": ["x"] * 101}, 400, "type"),
        ({"user": "u" * 300}, 400, "user"),
        ({"account": ""}, 400, "account"),
        ({"q": "x" * 1025}, 422, "q"),
        ({"q": "acount:acme"}, 400, "q"),
        ({"q": "(login.failed"}, 400, "q"),
    ],
)
def test_invalid_parameters_name_the_parameter(
    client: TestClient, tokens: dict[str, str], params: dict[str, Any], status: int, parameter: str
) -> None:
    response = client.get("/api/v1/logs", params=params, headers=auth(tokens["viewer"]))
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["parameter"] == parameter


def test_cursor_of_another_sort_is_refused(client: TestClient, tokens: dict[str, str]) -> None:
    page = client.get("/api/v1/logs", params={"limit": 1}, headers=auth(tokens["viewer"])).json()
    response = client.get(
        "/api/v1/logs",
        params={"cursor": page["next_cursor"], "sort": "log"},
        headers=auth(tokens["viewer"]),
    )
    assert response.status_code == 400
    assert "another sort" in response.json()["errors"][0]["message"]
    bad_bucket = client.get(
        "/api/v1/logs/timeline", params={"bucket": "1m"}, headers=auth(tokens["viewer"])
    )
    assert bad_bucket.status_code == 400
    assert bad_bucket.json()["errors"][0]["parameter"] == "bucket"


# -- access control -----------------------------------------------------------------------
ROUTES = [
    "/api/v1/logs",
    "/api/v1/logs/export",
    "/api/v1/logs/timeline",
    "/api/v1/facets/accounts",
    "/api/v1/session",
]


@pytest.mark.parametrize("route", ROUTES)
def test_no_bad_or_revoked_token_is_401(
    client: TestClient, tokens: dict[str, str], route: str
) -> None:
    for headers in (
        {},
        auth("at_aaaaaaaaaaaa_" + "x" * 43),
        auth("not-a-token"),
        auth(tokens["revoked"]),
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ):
        response = client.get(route, headers=headers)
        assert response.status_code == 401, (route, headers, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert tokens["revoked"] not in response.text


def test_account_scoped_token_sees_only_its_account(
    client: TestClient, dataset: list[NormalizedEvent], tokens: dict[str, str]
) -> None:
    scoped = tokens["scoped"]
    rows = fetch_all(client, scoped, {}, limit=500)
    assert rows and {r["account_id"] for r in rows} == {"acc_1"}
    assert len(rows) == sum(e.account_id == "acc_1" for e in dataset)
    asked = client.get("/api/v1/logs", params={"account": "acc_2"}, headers=auth(scoped))
    assert asked.status_code == 403 and asked.json()["errors"][0]["parameter"] == "account"
    assert (
        client.get("/api/v1/logs", params={"account": "acc_1"}, headers=auth(scoped)).status_code
        == 200
    )
    other = next(e for e in dataset if e.account_id == "acc_2")
    assert client.get(f"/api/v1/logs/{other.event_id}", headers=auth(scoped)).status_code == 404
    own = next(e for e in dataset if e.account_id == "acc_1")
    assert client.get(f"/api/v1/logs/{own.event_id}", headers=auth(scoped)).status_code == 200
    exported = client.get("/api/v1/logs/export", params={"format": "csv"}, headers=auth(scoped))
    assert {r["account_id"] for r in csv.DictReader(io.StringIO(exported.text))} == {"acc_1"}
    timeline = client.get(
        "/api/v1/logs/timeline", params={"range": "30d"}, headers=auth(scoped)
    ).json()
    total = sum(b["success"] + b["failure"] for b in timeline["buckets"])
    assert total == sum(
        e.account_id == "acc_1" and e.occurred_at >= datetime.now(UTC) - timedelta(days=30)
        for e in dataset
    )
    facet = client.get("/api/v1/facets/accounts", headers=auth(scoped)).json()
    assert [v["value"] for v in facet["values"]] == ["acc_1"]
    for name in ("users", "types"):
        values = client.get(f"/api/v1/facets/{name}", headers=auth(scoped)).json()["values"]
        assert sum(v["count"] for v in values) == len(rows)


def test_session_cookie_flow(client: TestClient, tokens: dict[str, str]) -> None:
    bad = client.post("/api/v1/session", json={"token": tokens["revoked"]})
    assert bad.status_code == 401
    response = client.post("/api/v1/session", json={"token": tokens["viewer"]})
    assert response.status_code == 200 and response.json()["role"] == "viewer"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert tokens["viewer"].lower() not in cookie
    assert client.get("/api/v1/logs", params={"limit": 1}).status_code == 200
    # A state change with the cookie needs the page's header (CSRF).
    assert client.delete("/api/v1/session").status_code == 403
    signed_out = client.delete("/api/v1/session", headers={"X-Requested-With": "authtrail"})
    assert signed_out.status_code == 204
    client.cookies.clear()
    assert client.get("/api/v1/logs").status_code == 401


def test_tampered_session_cookie_is_refused(client: TestClient, tokens: dict[str, str]) -> None:
    client.post("/api/v1/session", json={"token": tokens["admin"]})
    value = client.cookies.get("authtrail_session")
    assert value
    token_id, expiry, mac = value.split(".")
    client.cookies.set("authtrail_session", f"{token_id}.{int(expiry) + 3600}.{mac}")
    assert client.get("/api/v1/logs").status_code == 401
    client.cookies.clear()


def test_healthz_needs_no_token_and_openapi_lists_routes(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    for route in (
        "/api/v1/logs",
        "/api/v1/logs/{event_id}",
        "/api/v1/logs/export",
        "/api/v1/logs/timeline",
        "/api/v1/facets/{name}",
        "/api/v1/session",
    ):
        assert route in paths


def test_a_twin_that_slipped_past_the_writer_shows_once(
    client: TestClient, dataset: list[NormalizedEvent], store: StoreLocation, tokens: dict[str, str]
) -> None:
    """Two writers racing can both store an event; pages and exports still show it once,
    and the table's merge collapses the twin."""
    from schemas.log_store import EVENT_COLUMNS

    twin = dataset[5]
    client_ = connect(store)
    row = [getattr(twin, c) for c in EVENT_COLUMNS]
    row[EVENT_COLUMNS.index("attributes")] = orjson.dumps(twin.attributes).decode()
    client_.insert(
        store.events_table,
        [row],
        column_names=list(EVENT_COLUMNS),
        settings={"distributed_foreground_insert": 1} if store.cluster else None,
    )
    raw = client_.query(
        f"SELECT count() FROM {store.events_table} WHERE event_id = {{id:String}}",
        parameters={"id": twin.event_id},
    )
    assert raw.result_rows[0][0] == 2
    ids = [r["event_id"] for r in fetch_all(client, tokens["viewer"], {}, limit=3)]
    assert ids.count(twin.event_id) == 1 and len(ids) == len(set(ids))
    exported = client.get(
        "/api/v1/logs/export", params={"format": "csv"}, headers=auth(tokens["viewer"])
    )
    assert [r["event_id"] for r in csv.DictReader(io.StringIO(exported.text))].count(
        twin.event_id
    ) == 1
    client_.command(f"OPTIMIZE TABLE {store.storage_table}{store.on_cluster} FINAL")
    raw = client_.query(
        f"SELECT count() FROM {store.events_table} WHERE event_id = {{id:String}}",
        parameters={"id": twin.event_id},
    )
    assert raw.result_rows[0][0] == 1
