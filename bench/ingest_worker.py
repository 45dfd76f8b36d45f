"""The real ingest worker (``authtrail ingest``), plus a thread that watches the log store
from inside the same process (chDB lets one process open a data directory).

    AUTHTRAIL_... python -m bench.ingest_worker --out FILE (--events N | --until FILE)

``--events N``: records when rows first become queryable and when N are, then stops the
worker. ``--until FILE``: latency mode; every 50 ms reads the probe events
(``event_key = bench.probe``) that became queryable since the last look and records
``(produced, seen - produced)`` for each (``received_at`` is the record's CreateTime,
stamped by the producer), until FILE exists; it touches ``--ready FILE`` once the first
probe is seen (the worker has its partitions). Writes what it saw to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from authtrail.worker import run_worker
from infra.clickhouse.client import connect, open_migrated
from schemas.log_store import EVENTS_TABLE, StoreLocation
from schemas.settings import Settings

PROBE_KEY = "bench.probe"


def watch_count(location: StoreLocation, events: int, out: dict[str, Any]) -> None:
    client = connect(location)
    table = f"{location.database}.{EVENTS_TABLE}"
    while True:
        count = int(client.command(f"SELECT count() FROM {table}"))  # type: ignore[arg-type]
        now = time.time()
        if count and "first_at" not in out:
            out["first_at"], out["first_count"] = now, count
        if count >= events:
            out["done_at"], out["count"] = now, count
            return
        time.sleep(0.25)


def watch_probes(
    location: StoreLocation, until: Path, ready: Path | None, out: dict[str, Any]
) -> None:
    client = connect(location)
    table = f"{location.database}.{EVENTS_TABLE}"
    seen: dict[str, float] = {}
    latencies: list[tuple[int, float]] = []
    while not until.exists():
        rows = client.query(
            f"SELECT event_id, toUnixTimestamp64Milli(received_at) FROM {table} "
            "WHERE event_key = {key:String} AND received_at >= now64(3) - INTERVAL 30 SECOND",
            parameters={"key": PROBE_KEY},
        ).result_rows
        now = time.time()
        for event_id, produced_ms in rows:
            if event_id not in seen:
                seen[event_id] = now
                latencies.append((produced_ms, now - produced_ms / 1000))
        if latencies and ready is not None and not ready.exists():
            ready.touch()
        parts = int(
            client.command(  # type: ignore[arg-type]
                "SELECT count() FROM system.parts WHERE active "
                f"AND database = '{location.database}' AND table = '{EVENTS_TABLE}'"
            )
        )
        out["max_parts"] = max(out.get("max_parts", 0), parts)
        time.sleep(0.05)
    out["latencies_s"] = latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--events", type=int)
    parser.add_argument("--until", type=Path)
    parser.add_argument("--ready", type=Path)
    args = parser.parse_args()
    settings = Settings()
    # The table exists before the watcher's first look.
    location = open_migrated(settings)[0]
    out: dict[str, Any] = {}

    def observe() -> None:
        try:
            if args.events:
                watch_count(location, args.events, out)
            else:
                watch_probes(location, args.until, args.ready, out)
        except Exception as exc:  # reported to the bench, which fails loudly
            out["error"] = repr(exc)
        args.out.write_text(json.dumps(out))
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=observe, daemon=True).start()
    run_worker(settings, with_api=False)


if __name__ == "__main__":
    main()
