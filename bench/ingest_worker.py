"""The real ingest worker (``authtrail ingest``), plus a thread that watches the log store
from inside the same process (chDB lets one process open a data directory).

    AUTHTRAIL_... python -m bench.ingest_worker --out FILE --events N

Records when rows first become queryable and when N are, then stops the worker. Writes
what it saw to ``--out`` as JSON.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args()
    settings = Settings()
    # The table exists before the watcher's first look.
    location = open_migrated(settings)[0]
    out: dict[str, Any] = {}

    def observe() -> None:
        try:
            watch_count(location, args.events, out)
        except Exception as exc:  # reported to the bench, which fails loudly
            out["error"] = repr(exc)
        args.out.write_text(json.dumps(out))
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=observe, daemon=True).start()
    run_worker(settings, with_api=False)


if __name__ == "__main__":
    main()
