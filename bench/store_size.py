"""Disk per event in the log store, for sizing (README "Scaling"):

    .venv/bin/python -m bench.store_size [--events 500000]

Realistic demo events go through the real normalizer and writer into a fresh embedded
store (the same engine and table as a ClickHouse server's), the parts are merged as they
would be after a while, and ``system.parts`` tells the bytes on disk. Prints a table and
writes ``bench/results/store-size.json``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from authtrail.demo import DemoTraffic
from bench.figures import Figure, scaled, write_results
from infra.clickhouse.client import connect, migrate
from pipeline.enrich import Enricher
from pipeline.normalize import Normalizer
from pipeline.store import EventWriter, Row
from schemas.events import NormalizedEvent, utc_now_ms
from schemas.log_store import EVENTS_TABLE, StoreLocation

BATCH = 5_000


def measure(events: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="authtrail-size-") as tmp:
        location = StoreLocation.parse(f"chdb://{Path(tmp) / 'clickhouse'}")
        client = connect(location)
        migrate(client, location, 90)
        writer = EventWriter(connect(location), location)
        normalizer = Normalizer(Enricher())
        traffic = DemoTraffic(seed=11).events()
        raw_bytes = 0
        rows: list[Row] = []
        for _ in range(events):
            raw = next(traffic)
            raw_bytes += len(raw)
            event = normalizer.normalize(raw, utc_now_ms())
            if isinstance(event, NormalizedEvent):
                rows.append(Row.of(event))
            if len(rows) == BATCH:
                writer.write(rows)
                rows = []
        writer.write(rows)
        client.command(f"OPTIMIZE TABLE {location.events_table} FINAL")
        stored, on_disk, uncompressed = client.query(
            "SELECT sum(rows), sum(bytes_on_disk), sum(data_uncompressed_bytes) "
            "FROM system.parts WHERE active AND database = {db:String} AND table = {t:String}",
            parameters={"db": location.database, "t": EVENTS_TABLE},
        ).result_rows[0]
        client.close()
    per_event = on_disk / stored
    return [
        Figure("store_events", stored, "events", "demo events stored (after dead letters)"),
        Figure("store_raw_bytes_per_event", raw_bytes / events, "B", "raw event as produced"),
        Figure(
            "store_uncompressed_bytes_per_event",
            uncompressed / stored,
            "B",
            "a row's columns, uncompressed (with the raw event kept)",
        ),
        Figure("store_disk_bytes_per_event", per_event, "B", "on disk, compressed, merged"),
        Figure(
            "store_disk_gb_per_million_per_day_90d",
            per_event * 1_000_000 * 90 / 1e9,
            "GB",
            "disk for 1M events/day kept 90 days (one replica)",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=scaled(500_000))
    args = parser.parse_args()
    write_results("store-size", measure(args.events))


if __name__ == "__main__":
    main()
