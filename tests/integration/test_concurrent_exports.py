"""Many exports, pages and facets at once against one API process (#16 item 6): no
clickhouse-connect client is ever used by two threads at the same time.

Starlette runs each step of an export's generator on whichever threadpool worker is free,
so an export that kept the client of the thread it started on would use it from another
thread while that thread serves a page with it. The API here is a real uvicorn server in
a thread (requests truly run at once in its threadpool) over a ``LogRepository`` whose
clients are the real clickhouse-connect clients, each wrapped in ``GuardedClient``: every
call goes through to the store, and a call entering a client that another thread is
inside is recorded."""

from __future__ import annotations

import csv
import io
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from clickhouse_connect.driver.client import Client

from infra.clickhouse.client import connect, migrate
from infra.secrets import load_keyring
from pipeline.enrich import Enricher
from pipeline.normalize import Normalizer
from pipeline.store import EventWriter, Row
from query_api.app import create_app
from query_api.auth import SessionSigner
from query_api.limits import ApiLimits
from query_api.repository import LogRepository
from query_api.sql import EXPORT_COLUMNS
from query_api.tokens import TokenLog
from schemas.events import NormalizedEvent
from schemas.log_store import StoreLocation
from schemas.settings import Settings
from tests.integration.conftest import RETENTION_DAYS, bearer
from tests.platform_fakes.base import ReceiverServer

ACCOUNT = "acc_conc"
EVENTS = 1200
CHUNK = 40  # 30 chunks (60 queries) per export
EXPORTS = 8  # half CSV, half NDJSON
PAGE_WALKERS = 6
FACET_CALLERS = 6
KEYS = ("login.completed", "login.failed", "oidc.flow.started", "mfa.challenge.failed")


class Calls:
    """What the guards saw, across every client of the repository (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.overlaps: list[str] = []
        self.in_flight = 0
        self.peak = 0  # most calls in flight at once, over all clients
        self.total = 0


class GuardedClient:
    """A real clickhouse-connect client whose every method call is recorded: a call made
    while another thread is inside the same client is an overlap."""

    def __init__(self, client: Client, calls: Calls) -> None:
        self._client = client
        self._calls = calls
        self._inside: dict[int, str] = {}  # thread id -> method it is in

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute
        calls, inside = self._calls, self._inside

        def guarded(*args: Any, **kwargs: Any) -> Any:
            me = threading.get_ident()
            with calls.lock:
                others = [method for ident, method in inside.items() if ident != me]
                if others:
                    calls.overlaps.append(f"{name} on thread {me} while another is in {others}")
                inside[me] = name
                calls.in_flight += 1
                calls.total += 1
                calls.peak = max(calls.peak, calls.in_flight)
            try:
                return attribute(*args, **kwargs)
            finally:
                with calls.lock:
                    del inside[me]
                    calls.in_flight -= 1

        return guarded


def _raw_events(now: datetime) -> list[bytes]:
    rng = random.Random(166)
    newest = now - timedelta(minutes=1)
    events = []
    for i in range(EVENTS):
        body: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "event_key": rng.choice(KEYS),
            # Four events per instant: chunk boundaries fall inside ties.
            "occurred_at": (newest - timedelta(seconds=i // 4)).isoformat(timespec="milliseconds"),
            "account": {"id": ACCOUNT, "name": "Concurrency"},
            "actor": {"id": f"usr_{i % 7}", "email": f"user{i % 7}@example.com"},
            "attributes": {"n": i},
        }
        events.append(orjson.dumps(body))
    return events


@pytest.fixture(scope="module")
def own_store(store: StoreLocation) -> Iterator[StoreLocation]:
    """A database of its own in the session's store (chDB holds one data directory per
    process; the Logs tests compare the session database with their own oracle)."""
    location = replace(store, database=f"authtrail_conc_{uuid.uuid4().hex[:8]}")
    client = connect(location)
    try:
        migrate(client, location, RETENTION_DAYS)
        yield location
    finally:
        client.command(f"DROP DATABASE IF EXISTS {location.database}{location.on_cluster} SYNC")
        client.close()


@pytest.fixture(scope="module")
def events(own_store: StoreLocation) -> list[NormalizedEvent]:
    now = datetime.now(UTC)
    normalizer = Normalizer(Enricher())
    normalized = []
    for raw in _raw_events(now):
        event = normalizer.normalize(raw, now)
        assert isinstance(event, NormalizedEvent), event
        normalized.append(event)
    client = connect(own_store)
    try:
        assert EventWriter(client, own_store).write([Row.of(e) for e in normalized]) == []
    finally:
        client.close()
    return normalized


@pytest.fixture
def guarded_api(
    own_store: StoreLocation,
    token_log: TokenLog,
    api_settings: Settings,
    events: list[NormalizedEvent],
) -> Iterator[tuple[str, Calls]]:
    """One API process (uvicorn in a thread) over guarded clients; its URL and the calls."""
    calls = Calls()

    def factory() -> Client:
        return GuardedClient(connect(own_store), calls)  # type: ignore[return-value]

    repository = LogRepository(
        own_store, client_factory=factory, query_timeout_s=60, export_chunk=CHUNK
    )
    app = create_app(
        repository,
        token_log,
        SessionSigner(load_keyring(api_settings)),
        limits=ApiLimits(rate=0),
    )
    server = ReceiverServer(app).start()
    try:
        yield server.url, calls
    finally:
        server.stop()
        repository.close()


def _export(url: str, token: str, fmt: str) -> tuple[str, int, bytes]:
    with (
        httpx.Client(base_url=url, headers=bearer(token), timeout=120) as http,
        http.stream("GET", "/api/v1/logs/export", params={"account": ACCOUNT, "format": fmt}) as r,
    ):
        return fmt, r.status_code, r.read()


def _walk_pages(url: str, token: str, sort: str) -> tuple[list[int], list[str]]:
    """Every page of the account, 100 rows each: the statuses and the ids."""
    statuses: list[int] = []
    ids: list[str] = []
    cursor = None
    with httpx.Client(base_url=url, headers=bearer(token), timeout=120) as http:
        while True:
            params = {"account": ACCOUNT, "sort": sort, "limit": 100}
            response = http.get(
                "/api/v1/logs", params={**params, "cursor": cursor} if cursor else params
            )
            statuses.append(response.status_code)
            if response.status_code != 200:
                return statuses, ids
            body = response.json()
            ids += [item["event_id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                return statuses, ids


def _facets(url: str, token: str) -> tuple[list[int], list[int]]:
    """Each facet (and the timeline and health probe) a few times: the statuses, and the
    total of each ``types`` facet's counts."""
    statuses: list[int] = []
    totals: list[int] = []
    with httpx.Client(base_url=url, headers=bearer(token), timeout=120) as http:
        for _ in range(4):
            for name in ("accounts", "users", "types"):
                response = http.get(f"/api/v1/facets/{name}", params={"account": ACCOUNT})
                statuses.append(response.status_code)
                if name == "types" and response.status_code == 200:
                    totals.append(sum(v["count"] for v in response.json()["values"]))
            statuses.append(
                http.get("/api/v1/logs/timeline", params={"account": ACCOUNT}).status_code
            )
            statuses.append(http.get("/healthz").status_code)
    return statuses, totals


def test_concurrent_exports_pages_and_facets_never_share_a_client(
    guarded_api: tuple[str, Calls], events: list[NormalizedEvent], tokens: dict[str, str]
) -> None:
    url, calls = guarded_api
    token = tokens["viewer"]
    newest_first = [
        e.event_id for e in sorted(events, key=lambda e: (e.occurred_at, e.event_id), reverse=True)
    ]
    jobs: list[Callable[[], Any]] = []
    jobs += [lambda fmt=fmt: _export(url, token, fmt) for fmt in ["csv", "ndjson"] * (EXPORTS // 2)]
    jobs += [
        lambda sort=sort: _walk_pages(url, token, sort)
        for sort in ["time", "log"] * (PAGE_WALKERS // 2)
    ]
    jobs += [lambda: _facets(url, token) for _ in range(FACET_CALLERS)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = [future.result() for future in [pool.submit(job) for job in jobs]]
    exports = results[:EXPORTS]
    walks = results[EXPORTS : EXPORTS + PAGE_WALKERS]
    facets = results[EXPORTS + PAGE_WALKERS :]

    assert calls.peak > 1, "the requests never ran at once: the test proves nothing"
    assert not calls.overlaps, f"{len(calls.overlaps)} overlapping calls, e.g. {calls.overlaps[:3]}"

    for fmt, status, body in exports:
        assert status == 200, body[:500]
        if fmt == "csv":
            rows = list(csv.reader(io.StringIO(body.decode())))
            assert rows[0] == list(EXPORT_COLUMNS)
            assert list(EXPORT_COLUMNS) not in rows[1:]  # the header once
            ids = [row[0] for row in rows[1:]]
        else:
            ids = [orjson.loads(line)["event_id"] for line in body.splitlines() if line]
        assert len(ids) == len(set(ids)) == EVENTS, fmt
        assert ids == newest_first, fmt
    for (statuses, ids), sort in zip(walks, ["time", "log"] * (PAGE_WALKERS // 2), strict=True):
        assert set(statuses) == {200}, statuses
        assert len(ids) == len(set(ids)) == EVENTS, sort
    for statuses, totals in facets:
        assert set(statuses) == {200}, statuses
        assert totals and set(totals) == {EVENTS}
