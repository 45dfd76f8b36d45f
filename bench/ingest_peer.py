"""The ingest peer: what a ClickHouse user would run instead of authtrail's pipeline, on
the same topic and the same events, timed from the first row stored to the last.

    python -m bench.ingest_peer --bootstrap HOST:PORT --topic T --events N --data DIR

ClickHouse's answer is a Kafka table engine (``kafka_format = 'JSONAsString'``) and a
materialized view that extracts the columns into a MergeTree table. chDB 4.4 (ClickHouse
26.9) refuses ``ENGINE = Kafka`` with "Shutdown was called (LOGICAL_ERROR)": the embedded
build does not run the message-broker schedule pool. When that happens the peer runs the
same pipeline with the consumer outside: librdkafka (the library the Kafka engine embeds)
reads the topic and each fetch is inserted ``FORMAT JSONAsString`` into a Null table
carrying the same materialized view. Either way it prints one JSON line with the rate
and which of the two ran.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

import clickhouse_connect
from confluent_kafka import Consumer

TABLE = """
CREATE TABLE peer.events (
    event_id String, event_key LowCardinality(String), occurred_at DateTime64(3, 'UTC'),
    account_id String, actor_email String, ip String, user_agent String,
    trace_id String, outcome LowCardinality(String), raw String CODEC(ZSTD(3))
) ENGINE = MergeTree ORDER BY (occurred_at, event_id)
"""
VIEW = """
CREATE MATERIALIZED VIEW peer.mv TO peer.events AS SELECT
    JSONExtractString(raw, 'event_id') AS event_id,
    JSONExtractString(raw, 'event_key') AS event_key,
    parseDateTime64BestEffortOrZero(
        coalesce(nullIf(JSONExtractString(raw, 'occurred_at'), ''),
                 JSONExtractString(raw, 'timestamp')), 3, 'UTC') AS occurred_at,
    coalesce(nullIf(JSONExtractString(raw, 'account', 'id'), ''),
             JSONExtractString(raw, 'account_id')) AS account_id,
    coalesce(nullIf(JSONExtractString(raw, 'actor', 'email'), ''),
             JSONExtractString(raw, 'user_email')) AS actor_email,
    coalesce(nullIf(JSONExtractString(raw, 'ip'), ''),
             JSONExtractString(raw, 'ip_address')) AS ip,
    JSONExtractString(raw, 'user_agent') AS user_agent,
    JSONExtractString(raw, 'trace_id') AS trace_id,
    JSONExtractString(raw, 'outcome') AS outcome,
    raw
FROM peer.queue
"""


def count(client: Any) -> int:
    return int(client.command("SELECT count() FROM peer.events"))


def run_kafka_engine(client: Any, bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    client.command(
        "CREATE TABLE peer.queue (raw String) ENGINE = Kafka SETTINGS "
        f"kafka_broker_list = '{bootstrap}', kafka_topic_list = '{topic}', "
        f"kafka_group_name = 'peer-{uuid.uuid4().hex[:8]}', kafka_format = 'JSONAsString', "
        "kafka_max_block_size = 65536"
    )
    client.command(VIEW)
    first: tuple[float, int] | None = None
    seen = 0
    deadline = time.monotonic() + 900
    while seen < events and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = count(client)
        if seen and first is None:
            first = (time.time(), seen)
    assert first is not None, "the Kafka engine stored nothing"
    return {"peer": "Kafka table engine + materialized view", "rows": seen, "first": first}


def run_consumer_fed(client: Any, bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    client.command("CREATE TABLE peer.queue (raw String) ENGINE = Null")
    client.command(VIEW)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"peer-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": 10,
        }
    )
    consumer.subscribe([topic])
    first: tuple[float, int] | None = None
    read = 0
    try:
        while read < events:
            messages = consumer.consume(65536, 1.0)
            values = [m.value() or b"" for m in messages if m.error() is None]
            if not values:
                continue
            client.raw_insert("peer.queue", insert_block=b"\n".join(values), fmt="JSONAsString")
            read += len(values)
            if first is None:
                first = (time.time(), len(values))
            consumer.commit(asynchronous=True)
    finally:
        consumer.close()
    assert first is not None
    return {
        "peer": "librdkafka consumer -> JSONAsString -> materialized view "
        "(chDB refuses ENGINE = Kafka)",
        "rows": count(client),
        "first": first,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    client = clickhouse_connect.get_client(dsn=f"chdb://{args.data}")
    client.command("CREATE DATABASE IF NOT EXISTS peer")
    client.command(TABLE)
    try:
        result = run_kafka_engine(client, args.bootstrap, args.topic, args.events)
    except Exception as exc:
        refused = " ".join(str(exc).split())[:200]
        client.command("DROP TABLE IF EXISTS peer.queue")
        result = run_consumer_fed(client, args.bootstrap, args.topic, args.events)
        result["kafka_engine_error"] = refused
    done = time.time()
    first_at, first_rows = result.pop("first")
    result["events_per_s"] = (result["rows"] - first_rows) / max(done - first_at, 1e-6)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
