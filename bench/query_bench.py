"""Query speed of the Logs view on the embedded store (chDB), through the real repository,
on data shaped as users have it and while ingest runs.

    .venv/bin/python -m bench.query_bench --events 10000000 [--runs 20] [--data DIR]

**The data.** ``authtrail.demo.DemoTraffic`` (seed 29) with 200 accounts (account ``i``
picked with weight ``1/i``: a few large customers, a long tail) of 250 users each (50,000
users with their own e-mails and addresses, plus each account's agent and service, and
anonymous actors), its real user agents, countries, attributes, failure ratios and OIDC
flows sharing a trace id; 10% of events in the flat shape. Its clock steps evenly through
the last 30 days. Every event goes through the real normalizer (``pipeline.normalizers.
normalize_all``: validation, user-agent parsing, geo lookup, the raw event kept) into a
``pipeline.store.Row``.

Normalizing costs ~20 µs of Python per event, so at most ``POOL`` (1M) distinct events are
normalized; beyond that the pool is written again, copy ``k`` of ``N / POOL`` with a fresh
event id (uuid4) and, when it has one, a fresh trace id (both replaced in the raw event
too), its ``occurred_at``/``received_at`` shifted by ``k * 30 days / N`` (so copies
interleave and the spread over 30 days stays even); everything else (accounts, users,
addresses, user agents, attributes, the raw event's own time) is the pool event's. At 10M
every user thus has ten times the pool's events, with the same distributions, and every
row has a distinct ``event_id``.

**The load.** Rows are written by the real ``pipeline.store.EventWriter`` (its dedupe
query, then ``INSERT ... FORMAT JSONEachRow``) in batches of ``Settings().ingest_batch_size``
(5,000): the parts are what ingestion leaves, merged only as far as the background merges
got. There is no ``OPTIMIZE ... FINAL``. ``--data DIR`` keeps the store: a later run with
the same directory counts the rows there and loads only what is missing.

**The measurement.** While queries are timed, a thread ingests 2,000 events/s: every
250 ms it normalizes 500 fresh demo events (``occurred_at`` now) and writes them with an
``EventWriter`` of its own (a client of its own) into the same table. Each query runs
``--runs`` (20) times, each run with a different value where the query takes one (an
account, a user, an IP, a search term drawn from the stored rows), and every run counts:
no warm-up run is left out. Prints a markdown table (p50, p95, the 100 ms target, met or
not) and writes ``bench/results/query-<N>.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from authtrail.demo import DemoTraffic
from bench.figures import Figure
from infra.clickhouse.client import connect, migrate
from pipeline.enrich import Enricher
from pipeline.normalize import Normalizer
from pipeline.normalizers import normalize_all
from pipeline.store import EventWriter, Row
from query_api.cursor import Cursor
from query_api.filters import LogFilter
from query_api.query_language import parse
from query_api.repository import LogRepository
from query_api.sql import SortName
from schemas.catalogue import CATALOGUE
from schemas.log_store import StoreLocation
from schemas.settings import Settings

RESULTS = Path(__file__).with_name("results")
TARGET_MS = 100.0
ACCOUNTS = 200
USERS_PER_ACCOUNT = 250
SPAN = timedelta(days=30)
POOL = 1_000_000  # distinct events normalized; more are copies of them (module docstring)
SEED = 29
INGEST_RATE = 2_000  # events/s written during the measurement
INGEST_TICK_S = 0.25


def traffic(seed: int, clock: Callable[[], float]) -> Iterator[bytes]:
    return DemoTraffic(
        seed=seed, clock=clock, users_per_account=USERS_PER_ACCOUNT, accounts=ACCOUNTS
    ).events()


def normalized(events: Iterator[bytes], count: int, normalizer: Normalizer) -> list[Row]:
    """``count`` demo events through the real normalizer (received 80 ms after they
    occurred, as the broker would stamp them)."""
    values = []
    for raw in (next(events) for _ in range(count)):
        values.append((raw, None))
    rows: list[Row] = []
    for result in normalize_all(normalizer, values):
        if isinstance(result, Row):
            rows.append(result)
    return rows


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def copy_of(row: Row, shift: timedelta) -> Row:
    """``row`` as another event: a fresh event id and trace id (in the raw event too),
    its times shifted by ``shift``."""
    event = orjson.loads(row.json)
    new_id = str(uuid.uuid4())
    raw: str = event["raw"].replace(row.event_id, new_id)
    if event["trace_id"]:
        new_trace = uuid.uuid4().hex
        raw = raw.replace(event["trace_id"], new_trace)
        event["trace_id"] = new_trace
    occurred = row.occurred_at + shift
    event["event_id"] = new_id
    event["raw"] = raw
    event["occurred_at"] = _stamp(occurred)
    received = datetime.fromisoformat(event["received_at"].replace("Z", "+00:00"))
    event["received_at"] = _stamp(received + shift)
    return Row(new_id, occurred, row.key, orjson.dumps(event))


def load(repo: LogRepository, events: int, seed: int = SEED) -> None:
    """``events`` demo events over the last 30 days, normalized and written as ingest
    writes them (module docstring)."""
    pool_size = min(events, POOL)
    copies = -(-events // pool_size)
    end = datetime.now(UTC)
    step_s = SPAN.total_seconds() / pool_size
    tick = [(end - SPAN).timestamp()]

    def clock() -> float:  # steps evenly through the 30 days, one step per event
        tick[0] += step_s
        return tick[0]

    normalizer = Normalizer(Enricher())
    started = time.perf_counter()
    pool = normalized(traffic(seed, clock), pool_size, normalizer)
    print(
        f"  normalized {len(pool):,} distinct events in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    batch_size = Settings().ingest_batch_size
    client = connect(repo.location)
    writer = EventWriter(client, repo.location)
    written = 0
    try:
        for k in range(copies):
            shift = timedelta(seconds=k * SPAN.total_seconds() / events)
            for offset in range(0, len(pool), batch_size):
                if written >= events:
                    break
                chunk = pool[offset : offset + min(batch_size, events - written)]
                rows = chunk if k == 0 else [copy_of(r, shift) for r in chunk]
                refused = writer.write(rows)
                assert not refused, refused[:1]
                written += len(rows)
                if written % 500_000 < batch_size:
                    print(f"  written {written:,} / {events:,}", flush=True)
    finally:
        client.close()


class Ingest:
    """A thread writing ``rate`` fresh demo events/s (now) through an ``EventWriter`` of
    its own, in a batch every ``INGEST_TICK_S``, as the ingest worker does."""

    def __init__(self, location: StoreLocation, rate: int = INGEST_RATE) -> None:
        self.location = location
        self.rate = rate
        self.written = 0
        self.seconds = 0.0
        self.late_ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-ingest", daemon=True)

    def __enter__(self) -> Ingest:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        events = traffic(int(time.time()), time.time)
        normalizer = Normalizer(Enricher())
        client = connect(self.location)
        writer = EventWriter(client, self.location)
        per_tick = int(self.rate * INGEST_TICK_S)
        started = time.monotonic()
        due = started
        try:
            while not self._stop.is_set():
                rows = normalized(events, per_tick, normalizer)
                writer.write(rows)
                self.written += len(rows)
                due += INGEST_TICK_S
                wait = due - time.monotonic()
                if wait > 0:
                    self._stop.wait(wait)
                else:
                    self.late_ticks += 1
        finally:
            self.seconds = time.monotonic() - started
            client.close()

    @property
    def achieved(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0


@dataclass
class Measure:
    name: str
    ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(runs: int, fn: Callable[[int], Any]) -> list[float]:
    """Every run counts (no warm-up left out)."""
    out = []
    for i in range(runs):
        start = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def samples(repo: LogRepository, column: str, count: int) -> list[str]:
    rows = (
        connect(repo.location)
        .query(
            f"SELECT {column} FROM {repo.table} WHERE {column} != '' ORDER BY rand() LIMIT {count}"
        )
        .result_rows
    )
    return [r[0] for r in rows]


def run(repo: LogRepository, runs: int) -> tuple[list[Measure], dict[str, float]]:
    now = datetime.now(UTC)
    accounts = samples(repo, "account_id", runs + 1)
    users = samples(repo, "actor_email", runs + 1)
    traces = samples(repo, "trace_id", runs + 1)
    ips = samples(repo, "ip", runs + 1)
    keys = list(CATALOGUE)
    rng = random.Random(1)
    deep = cursor_of_page(repo, 20)
    deep_log = cursor_of_page(repo, 20, "log")
    # Facet search terms as a user types them: a piece of a user's e-mail, of an account's
    # name or id, of an event type or its text.
    user_terms = [u.split("@")[0].split(".")[0][:3] + "." for u in users]
    account_terms = [
        rng.choice(["Account 1", "acc_00", "Account 2", "0042", "Account 7"]) for _ in users
    ]
    type_terms = [rng.choice(["login", "oidc", "token", "fail", "mfa", "scim"]) for _ in users]
    F = LogFilter
    cases: dict[str, Callable[[int], Any]] = {
        "default view (latest 50)": lambda i: repo.page(F(), limit=50),
        "account": lambda i: repo.page(F(accounts=(accounts[i],))),
        "user (email)": lambda i: repo.page(F(users=(users[i],))),
        "user anonymous": lambda i: repo.page(F(users=("anonymous",))),
        "log type": lambda i: repo.page(F(types=(keys[i % len(keys)],))),
        "outcome failure": lambda i: repo.page(F(outcome="failure")),
        "range 1h": lambda i: repo.page(F(start=now - timedelta(hours=1))),
        "range 24h": lambda i: repo.page(F(start=now - timedelta(hours=24))),
        "range 7d": lambda i: repo.page(F(start=now - timedelta(days=7))),
        "today": lambda i: repo.page(F(start=now.replace(hour=0, minute=0, second=0))),
        "sort by log": lambda i: repo.page(F(), sort="log", order=rng.choice(["asc", "desc"])),
        "search trace id": lambda i: repo.page(F(query=parse(traces[i]))),
        "search IP": lambda i: repo.page(F(query=parse(ips[i]))),
        "search event key": lambda i: repo.page(F(query=parse(keys[i % len(keys)][:6]))),
        "search user-agent text": lambda i: repo.page(
            F(query=parse(rng.choice(["Firefox", "iPhone", "okhttp", "python-requests"])))
        ),
        "combined (account+outcome+7d+type)": lambda i: repo.page(
            F(
                accounts=(accounts[i],),
                outcome="failure",
                start=now - timedelta(days=7),
                types=("login.failed", "oidc.token_exchange.failed"),
            )
        ),
        # The query language (q): each form the README shows.
        "q field (account:…)": lambda i: repo.page(F(query=parse(f"account:{accounts[i]}"))),
        "q prefix (type:….*)": lambda i: repo.page(
            F(query=parse(f"type:{keys[i % len(keys)].split('.')[0]}.*"))
        ),
        "q CIDR (ip:…/24)": lambda i: repo.page(F(query=parse(f"ip:{ips[i]}/24"))),
        "q OR of two accounts": lambda i: repo.page(
            F(query=parse(f"account:{accounts[i]} OR account:{accounts[i + 1]}"))
        ),
        "q NOT (-type:… -outcome:success)": lambda i: repo.page(
            F(query=parse(f"-type:{keys[i % len(keys)]} -outcome:success"))
        ),
        "q quoted UA": lambda i: repo.page(F(query=parse(f'ua:"{rng.choice(UA_PIECES)}"'))),
        "q time range (one day)": lambda i: repo.page(
            F(
                query=parse(
                    f"time:[{(now - timedelta(days=1 + i % 28)).date()} TO "
                    f"{(now - timedelta(days=1 + i % 28)).date()}]"
                )
            )
        ),
        "deep page (20th, by cursor)": lambda i: repo.page(F(), limit=50, cursor=deep),
        "deep page sort by log (20th)": lambda i: repo.page(
            F(), sort="log", limit=50, cursor=deep_log
        ),
        "timeline 7d": lambda i: repo.timeline(F(start=now - timedelta(days=7))),
        "timeline account 30d": lambda i: repo.timeline(
            F(accounts=(accounts[i],), start=now - timedelta(days=30))
        ),
        # The facets as the page asks for them: all time or a range, the other filters.
        "facet accounts": lambda i: repo.facet("accounts", F(), None, 200),
        "facet accounts (q)": lambda i: repo.facet("accounts", F(), account_terms[i], 200),
        "facet users": lambda i: repo.facet("users", F(), None, 200),
        "facet users (q)": lambda i: repo.facet("users", F(), user_terms[i], 200),
        "facet users of an account 7d": lambda i: repo.facet(
            "users", F(accounts=(accounts[i],), start=now - timedelta(days=7)), None, 200
        ),
        "facet types": lambda i: repo.facet("types", F(), None, 200),
        "facet types (q)": lambda i: repo.facet("types", F(), type_terms[i], 200),
        "facet types 24h failures": lambda i: repo.facet(
            "types", F(outcome="failure", start=now - timedelta(hours=24 + i)), None, 200
        ),
    }
    measures = [Measure(name, timed(runs, fn)) for name, fn in cases.items()]
    export = {}
    for fmt in ("csv", "ndjson"):
        f = F(start=now - timedelta(days=30))
        rows = 0
        start = time.perf_counter()
        for chunk in repo.export(f, fmt):
            rows += chunk.count(b"\n")
            if rows >= 1_000_000:
                break
        export[fmt] = rows / (time.perf_counter() - start)
    return measures, export


def cursor_of_page(repo: LogRepository, depth: int, sort: SortName = "time") -> Cursor:
    """The cursor that fetches page ``depth`` of the default view (in ``sort``)."""
    cursor: Cursor | None = None
    for _ in range(depth - 1):
        page = repo.page(LogFilter(), sort=sort, limit=50, cursor=cursor)
        assert page.next_cursor
        cursor = Cursor.decode(page.next_cursor, sort, "desc")
    assert cursor is not None
    return cursor


# Quoted user-agent pieces (with spaces and parentheses) for the query language's ua:"…".
UA_PIECES = ("Mozilla/5.0 (iPhone", "(KHTML, like Gecko) Chrome", "rv:132.0) Gecko", "okhttp/4")


def measured(repo: LogRepository, runs: int) -> tuple[list[Measure], dict[str, float], Ingest]:
    """``run`` while ``Ingest`` writes into the same table."""
    with Ingest(repo.location) as ingest:
        measures, export = run(repo, runs)
    print(
        f"  concurrent ingest: {ingest.written:,} events in {ingest.seconds:.0f} s "
        f"({ingest.achieved:,.0f}/s, {ingest.late_ticks} late ticks)",
        flush=True,
    )
    return measures, export, ingest


def figures(sizes: list[int], runs: int = 20) -> list[Figure]:
    """p95 (and p50) of every query at each size, each in a fresh store, every one against
    the 100 ms target; export rows/s at the first size (its target is for 1 million rows)."""
    out: list[Figure] = []
    for index, events in enumerate(sizes):
        with tempfile.TemporaryDirectory(prefix="authtrail-query-bench-") as tmp:
            location = StoreLocation.parse(f"chdb://{Path(tmp) / 'clickhouse'}")
            migrate(connect(location), location, 90)
            repo = LogRepository(location)
            print(f"query: loading {events:,} events ...", flush=True)
            load(repo, events)
            measures, export, ingest = measured(repo, runs)
            repo.close()
        label = f"{events / 1e6:g}M"
        for m in measures:
            out.append(
                Figure(
                    f"query.{label}.{m.name}",
                    m.p95,
                    "ms",
                    f"p95 of {runs} (p50 {m.p50:.1f} ms), {events:,} events, "
                    f"ingest {ingest.achieved:,.0f}/s meanwhile",
                    target=f"p95 < {TARGET_MS:.0f} ms",
                    met=m.p95 < TARGET_MS,
                )
            )
        if index == 0:
            for fmt, rate in export.items():
                out.append(
                    Figure(
                        f"query.export.{fmt}",
                        rate,
                        "rows/s",
                        f"export {fmt}, {min(events, 1_000_000):,} rows",
                        target="≥ 100,000 rows/s",
                        met=rate >= 100_000,
                    )
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--data", type=Path, default=None, help="reuse a loaded store")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="authtrail-bench-"))
    location = StoreLocation.parse(f"chdb://{data / 'clickhouse'}")
    client = connect(location)
    migrate(client, location, 90)
    repo = LogRepository(location)
    have = repo.count(LogFilter())
    if have < args.events:
        print(f"loading {args.events - have:,} events into {data} ...", flush=True)
        started = time.perf_counter()
        load(repo, args.events - have, seed=SEED + have)
        print(f"  {time.perf_counter() - started:.0f} s", flush=True)
    total = repo.count(LogFilter())
    measures, export, ingest = measured(repo, args.runs)
    lines = [
        f"Query speed, {total:,} events, embedded chDB, {args.runs} runs each, all counted, "
        f"while ingesting {ingest.achieved:,.0f} events/s (target p95 < {TARGET_MS:.0f} ms)",
        "",
        "| query | p50 ms | p95 ms | target | ok |",
        "|---|---:|---:|---:|:-:|",
    ]
    for m in measures:
        ok = "yes" if m.p95 < TARGET_MS else "no"
        lines.append(f"| {m.name} | {m.p50:.1f} | {m.p95:.1f} | {TARGET_MS:.0f} | {ok} |")
    for fmt, rate in export.items():
        ok = "yes" if rate >= 100_000 else "no"
        lines.append(f"| export {fmt} (rows/s, first 1M) | {rate:,.0f} | | 100,000 | {ok} |")
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"query-{args.events}.json"
    out.write_text(
        json.dumps(
            {
                "events": total,
                "runs": args.runs,
                "concurrent_ingest_events_per_s": round(ingest.achieved),
                "queries": {
                    m.name: {
                        "p50_ms": round(m.p50, 2),
                        "p95_ms": round(m.p95, 2),
                        "met": m.p95 < TARGET_MS,
                    }
                    for m in measures
                },
                "export_rows_per_s": {k: round(v) for k, v in export.items()},
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten {out}")
    repo.close()
    client.close()


if __name__ == "__main__":
    main()
