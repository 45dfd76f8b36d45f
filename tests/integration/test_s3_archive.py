"""The S3 archive against moto's S3 server (in-process) and the real broker: every event in
exactly one object, under the Hive-style layout; a connector stopped in the middle of a
close leaves its files to be put again under the same keys (no event in two objects);
a missing bucket pauses the archive (auth_failed) without loss; ClickHouse's ``s3()``
table function (chDB) reads the archive as it is, the partition columns included. The
exactly-once rule over every interleaving is tests/unit/test_archive_files.py."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.sinks.base import Reply, SendResult
from connectors.sinks.s3 import ArchiveFile, S3Sink
from tests.integration.aws import ACCESS_KEY, REGION, SECRET_KEY, Aws
from tests.integration.streaming import Stream, wait_until

KEY = re.compile(
    r"^audit/auth/account=(?P<account>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/"
    r"(?P<destination>[a-z0-9_-]+)-(?P<partition>\d+)-(?P<first>\d+)-(?P<last>\d+)\.ndjson\.gz$"
)


@pytest.fixture
def stream(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stream]:
    instance = Stream(kafka_bootstrap, tmp_path)
    yield instance
    instance.close()


def add_archive(stream: Stream, aws: Aws, bucket: str, **more: Any) -> str:
    return stream.add(
        "s3",
        {
            "region": REGION,
            "bucket": bucket,
            "prefix": "audit/auth",
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "endpoint": aws.url,
            "max_seconds": 1,
            **more,
        },
    )


def produce_spread(stream: Stream, count: int, start: int = 0) -> list[dict[str, Any]]:
    """Events over three hours of two days and five accounts (one whose id needs
    percent-encoding, one event without an account)."""
    events = []
    for i in range(start, start + count):
        hour = ("2026-11-30T23", "2026-12-01T00", "2026-12-01T01")[i % 3]
        account = ("acc_0", "acc_1", "acme/eu 1", "acc_3", "")[i % 5]
        events += stream.produce(
            1, occurred_at=f"{hour}:{i % 60:02d}:00.000Z", account_id=account, attributes={"n": i}
        )
    return events


def delivered(stream: Stream, destination: str) -> int:
    return int(getattr(stream.status(destination), "delivered", 0))


def archived(aws: Aws, bucket: str) -> dict[str, list[dict[str, Any]]]:
    return {
        key: [orjson.loads(line) for line in body.splitlines()]
        for key, body in aws.objects(bucket).items()
    }


def event_counts(objects: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for events in objects.values():
        for event in events:
            counts[event["event_id"]] = counts.get(event["event_id"], 0) + 1
    return counts


def test_every_event_in_exactly_one_object_under_the_hive_layout(aws: Aws, stream: Stream) -> None:
    bucket = f"archive-{uuid.uuid4().hex[:8]}"
    aws.bucket(bucket)
    destination = add_archive(stream, aws, bucket, storage_class="STANDARD_IA", sse="AES256")
    stream.start()
    events = produce_spread(stream, 150)
    assert wait_until(lambda: delivered(stream, destination) == 150, timeout=60)
    objects = archived(aws, bucket)
    counts = event_counts(objects)
    assert counts == {e["event_id"]: 1 for e in events}
    by_id = {e["event_id"]: e for e in events}
    for key, stored in objects.items():
        match = KEY.match(key)
        assert match, key
        assert match["destination"] == destination
        assert int(match["first"]) <= int(match["last"])
        for event in stored:
            assert event == by_id[event["event_id"]]  # the normalized event, as it is
            expected_account = {"acme/eu 1": "acme%2Feu%201"}.get(
                event["account_id"], event["account_id"]
            ) or "__HIVE_DEFAULT_PARTITION__"
            assert match["account"] == expected_account
            assert event["occurred_at"].startswith(f"{match['date']}T{match['hour']}")
    head = aws.s3.head_object(Bucket=bucket, Key=next(iter(objects)))
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["ServerSideEncryption"] == "AES256"
    assert stream.status(destination).state == "healthy"


def test_a_stop_in_the_middle_of_a_close_puts_the_same_keys_again(
    aws: Aws, kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"archive-{uuid.uuid4().hex[:8]}"
    aws.bucket(bucket)
    put = S3Sink.put
    puts: list[str] = []
    held = threading.Event()
    hold = threading.Event()
    hold.set()

    def put_then_hold(self: S3Sink, file: ArchiveFile) -> SendResult:
        if hold.is_set() and puts:
            held.set()  # the second put of the run fails until the connector stops
            return SendResult("retry", Reply(503, "SlowDown", "Please reduce your request rate."))
        puts.append(file.key)
        return put(self, file)

    monkeypatch.setattr(S3Sink, "put", put_then_hold)
    first = Stream(kafka_bootstrap, tmp_path)
    destination = add_archive(first, aws, bucket, max_seconds=2)
    first.start()
    events = produce_spread(first, 60)
    assert held.wait(60), "no close began"
    events += produce_spread(first, 60, start=60)  # read on restart at once, with the rest
    first.close()
    put_before = list(puts)
    assert len(put_before) == 1
    assert sum(event_counts(archived(aws, bucket)).values()) < 60

    hold.clear()
    second = Stream(kafka_bootstrap, tmp_path, settings=first.settings)
    try:
        second.start()
        assert wait_until(
            lambda: sum(event_counts(archived(aws, bucket)).values()) >= 120, timeout=60
        )
        assert wait_until(lambda: delivered(second, destination) >= 120, timeout=30)
    finally:
        second.close()
    assert put_before[0] in puts[1:], "the file put before the stop was not put again"
    assert event_counts(archived(aws, bucket)) == {e["event_id"]: 1 for e in events}


def test_a_missing_bucket_waits_auth_failed_and_loses_nothing(aws: Aws, stream: Stream) -> None:
    bucket = f"archive-{uuid.uuid4().hex[:8]}"
    destination = add_archive(stream, aws, bucket)
    stream.start()
    events = produce_spread(stream, 30)
    assert wait_until(
        lambda: getattr(stream.status(destination), "state", None) == "auth_failed", timeout=60
    )
    assert "NoSuchBucket" in (stream.status(destination).last_error or "")
    aws.bucket(bucket)
    assert wait_until(lambda: delivered(stream, destination) == 30, timeout=60)
    assert event_counts(archived(aws, bucket)) == {e["event_id"]: 1 for e in events}
    assert stream.status(destination).state == "healthy"


def test_clickhouse_reads_the_archive_with_its_partition_columns(aws: Aws, stream: Stream) -> None:
    import chdb

    bucket = f"archive-{uuid.uuid4().hex[:8]}"
    aws.bucket(bucket)
    destination = add_archive(stream, aws, bucket)
    stream.start()
    events = produce_spread(stream, 90)
    assert wait_until(lambda: delivered(stream, destination) == 90, timeout=60)
    query = (
        f"SELECT account, toString(date) AS day, hour, count() AS events, "
        f"uniqExact(event_id) AS ids "
        f"FROM s3('{aws.url}/{bucket}/audit/auth/**/*.ndjson.gz', "
        f"'{ACCESS_KEY}', '{SECRET_KEY}', 'JSONEachRow') "
        f"GROUP BY account, day, hour ORDER BY account, day, hour "
        f"SETTINGS use_hive_partitioning = 1"
    )
    rows = [orjson.loads(line) for line in str(chdb.query(query, "JSONEachRow")).splitlines()]
    expected: dict[tuple[str, str, str], int] = {}
    for event in events:
        account = {"acme/eu 1": "acme%2Feu%201"}.get(event["account_id"], event["account_id"])
        key = (account or "__HIVE_DEFAULT_PARTITION__", event["occurred_at"][:10])
        slot = (*key, event["occurred_at"][11:13])
        expected[slot] = expected.get(slot, 0) + 1
    got = {(r["account"], r["day"], f"{int(r['hour']):02d}"): int(r["events"]) for r in rows}
    assert got == expected
    assert all(int(r["events"]) == int(r["ids"]) for r in rows)


def test_an_s3_outage_is_lag_then_catch_up_not_loss(kafka_bootstrap: str, tmp_path: Path) -> None:
    """S3 unreachable (its server stopped) while files close: the destination fails and
    lags; once S3 is back every event is archived exactly once."""
    import logging

    from moto.server import ThreadedMotoServer

    from tests.integration.conftest import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    aws = Aws(f"http://127.0.0.1:{port}")
    bucket = f"archive-{uuid.uuid4().hex[:8]}"
    aws.bucket(bucket)
    stream = Stream(kafka_bootstrap, tmp_path)
    try:
        destination = add_archive(stream, aws, bucket)
        stream.start()
        events = produce_spread(stream, 40)
        assert wait_until(lambda: delivered(stream, destination) == 40, timeout=60)
        server.stop()  # moto keeps its buckets in this process: a restart finds them
        events += produce_spread(stream, 40, start=40)
        assert wait_until(
            lambda: getattr(stream.status(destination), "state", None) == "failing", timeout=60
        )
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        assert wait_until(lambda: delivered(stream, destination) == 80, timeout=90)
        assert event_counts(archived(aws, bucket)) == {e["event_id"]: 1 for e in events}
        assert stream.status(destination).state == "healthy"
    finally:
        stream.close()
        server.stop()
