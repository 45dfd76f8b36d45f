"""Query speed of the Logs view on the embedded store (chDB), through the real repository.

    .venv/bin/python -m bench.query_bench --events 10000000 [--runs 20] [--data DIR]

Loads N synthetic events straight into the events table (INSERT ... SELECT in ClickHouse,
so loading is not what is measured), then times every query the Logs view makes: p50/p95
over --runs runs, each run with a different value where the query takes one. Prints a
markdown table and writes bench/results/query-<N>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.figures import Figure
from infra.clickhouse.client import connect, migrate
from query_api.cursor import Cursor
from query_api.filters import LogFilter
from query_api.query_language import parse
from query_api.repository import LogRepository
from schemas.catalogue import CATALOGUE
from schemas.log_store import StoreLocation

RESULTS = Path(__file__).with_name("results")
TARGET_MS = 100.0
ACCOUNTS = 500
USERS = 50_000


def load(repo: LogRepository, events: int) -> None:
    """Synthetic events over the last 30 days: 500 accounts (skewed), 50k users, 10%
    anonymous, 5% agents, the catalogue's keys, 100k IPs, half with a trace id."""
    client = connect(repo.location)
    keys = list(CATALOGUE.values())
    key_list = "[" + ",".join(f"'{e.key}'" for e in keys) + "]"
    text_list = "[" + ",".join(f"'{e.description}'" for e in keys) + "]"
    outcome_list = "[" + ",".join(f"'{e.outcome}'" for e in keys) + "]"
    uas = [
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "okhttp/4.12.0",
        "python-requests/2.32.3",
        "curl/8.10.1",
        "Go-http-client/2.0",
    ]
    ua_list = "[" + ",".join(f"'{u}'" for u in uas) + "]"
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    span_ms = 30 * 86400 * 1000
    batch = 2_000_000
    for offset in range(0, events, batch):
        n = min(batch, events - offset)
        client.command(
            f"""
            INSERT INTO {repo.table}
            SELECT
                toString(generateUUIDv4()) AS event_id,
                {key_list}[k] AS event_key,
                {text_list}[k] AS description,
                {outcome_list}[k] AS outcome,
                fromUnixTimestamp64Milli(toInt64({now_ms} - (rand(1) % {span_ms}))) AS occurred_at,
                occurred_at AS received_at,
                if(a = 0, '', concat('acc_', toString(a))) AS account_id,
                if(a = 0, '', concat('Account ', toString(a))) AS account_name,
                multiIf(kind < 10, '', kind < 15, concat('agent-', toString(u % 100)),
                        concat('usr_', toString(u))) AS actor_id,
                if(kind >= 15, concat('user', toString(u), '@acc', toString(a), '.example'), '')
                    AS actor_email,
                multiIf(kind < 10, 'anonymous', kind < 15, 'agent', 'user') AS actor_type,
                if(actor_email != '', actor_email, if(actor_id != '', actor_id, 'anonymous'))
                    AS actor_display,
                IPv4NumToString(toUInt32(1660000000 + (rand(2) % 100000))) AS ip,
                'IE' AS country,
                {ua_list}[1 + rand(3) % {len(uas)}] AS user_agent,
                'Chrome 131' AS ua_browser, 'Mac OS X 10.15.7' AS ua_os, 'Mac' AS ua_device,
                if(rand(4) % 2 = 0, lower(hex(randomString(16))), '') AS trace_id,
                '' AS reason,
                '{{"client_id":"app-1"}}' AS attributes,
                '{{}}' AS raw,
                1 AS schema_version
            FROM (
                SELECT number,
                       1 + (rand(5) % {len(keys)}) AS k,
                       toUInt32(floor(pow(rand(6) / 4294967295.0, 2) * {ACCOUNTS})) AS a,
                       rand(7) % 100 AS kind,
                       rand(8) % {USERS} AS u
                FROM numbers({n})
            )
        """,
            settings={"max_partitions_per_insert_block": 1000},
        )
        print(f"  loaded {offset + n:,} / {events:,}", flush=True)
    client.command(f"OPTIMIZE TABLE {repo.table} FINAL")


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
    fn(0)  # warm caches, as a dashboard in use has them
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
        "timeline 7d": lambda i: repo.timeline(F(start=now - timedelta(days=7))),
        "timeline account 30d": lambda i: repo.timeline(
            F(accounts=(accounts[i],), start=now - timedelta(days=30))
        ),
        "facet accounts": lambda i: repo.facet("accounts", F(), None, 100),
        "facet users (q)": lambda i: repo.facet("users", F(), "user1", 100),
        "facet types": lambda i: repo.facet("types", F(), None, 100),
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


def cursor_of_page(repo: LogRepository, depth: int) -> Cursor:
    """The cursor that fetches page ``depth`` of the default view."""
    cursor: Cursor | None = None
    for _ in range(depth - 1):
        page = repo.page(LogFilter(), limit=50, cursor=cursor)
        assert page.next_cursor
        cursor = Cursor.decode(page.next_cursor, "time", "desc")
    assert cursor is not None
    return cursor


# Every single-filter query and search of the Logs view: the ones the p95 target covers.
TARGETED = (
    "default view (latest 50)",
    "account",
    "user (email)",
    "user anonymous",
    "log type",
    "outcome failure",
    "range 1h",
    "range 24h",
    "range 7d",
    "today",
    "sort by log",
    "search trace id",
    "search IP",
    "search event key",
    "search user-agent text",
    "q field (account:…)",
    "q prefix (type:….*)",
    "q CIDR (ip:…/24)",
    "q OR of two accounts",
    "q NOT (-type:… -outcome:success)",
    "q quoted UA",
    "q time range (one day)",
)
# Quoted user-agent pieces (with spaces and parentheses) for the query language's ua:"…".
UA_PIECES = ("Mozilla/5.0 (iPhone", "(KHTML, like Gecko) Chrome", "rv:132.0) Gecko", "okhttp/4")


def figures(sizes: list[int], runs: int = 20) -> list[Figure]:
    """p95 (and p50) of every query at each size, each in a fresh store; export rows/s at
    the first size (its target is for 1 million rows)."""
    out: list[Figure] = []
    for index, events in enumerate(sizes):
        with tempfile.TemporaryDirectory(prefix="authtrail-query-bench-") as tmp:
            location = StoreLocation.parse(f"chdb://{Path(tmp) / 'clickhouse'}")
            migrate(connect(location), location, 90)
            repo = LogRepository(location)
            print(f"query: loading {events:,} events ...", flush=True)
            load(repo, events)
            measures, export = run(repo, runs)
            repo.close()
        label = f"{events / 1e6:g}M"
        for m in measures:
            targeted = events >= 10_000_000 and m.name in TARGETED
            out.append(
                Figure(
                    f"query.{label}.{m.name}",
                    m.p95,
                    "ms",
                    f"p95 of {runs} (p50 {m.p50:.1f} ms), {events:,} events",
                    target=f"p95 < {TARGET_MS:.0f} ms" if targeted else "",
                    met=m.p95 < TARGET_MS if targeted else None,
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
        load(repo, args.events - have)
        print(f"  {time.perf_counter() - started:.0f} s", flush=True)
    total = repo.count(LogFilter())
    measures, export = run(repo, args.runs)
    lines = [
        f"Query speed, {total:,} events, embedded chDB, {args.runs} runs each "
        f"(target p95 < {TARGET_MS:.0f} ms)",
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
    out = RESULTS / f"query-{total}.json"
    out.write_text(
        json.dumps(
            {
                "events": total,
                "runs": args.runs,
                "queries": {
                    m.name: {"p50_ms": round(m.p50, 2), "p95_ms": round(m.p95, 2)} for m in measures
                },
                "export_rows_per_s": {k: round(v) for k, v in export.items()},
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
