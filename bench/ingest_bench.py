"""Ingest speed: raw topic -> queryable in the log store, the whole faust path with
validation, normalization, enrichment, dedupe, the store insert and the normalized topic.

    .venv/bin/python -m bench.ingest_bench [--events 1000000]

Against a genuine broker on this machine (started here unless AUTHTRAIL_KAFKA_BOOTSTRAP
is set), on the same N demo events pre-loaded in the raw topic, it measures
* the ceiling: a bare confluent-kafka consumer reading the topic;
* the peer: a librdkafka loop feeding a ClickHouse materialized view that validates
  and derives the events table's columns (``bench.ingest_peer``);
* authtrail: the real worker (``bench.ingest_worker``) from the first row queryable to
  the N-th: the steady state from a backlog.

What a user meets, ``authtrail up`` with events produced into it while it runs, and the
produce -> queryable latency, are ``bench.ingest_up``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

from authtrail.demo import DemoTraffic
from bench.figures import Figure, broker, scaled, write_results
from infra.kafka.topic_admin import ensure_topics
from schemas.settings import Settings

PYTHON = sys.executable


def new_settings(data: Path, bootstrap: str) -> Settings:
    settings = Settings(
        data_dir=data / uuid.uuid4().hex[:8],
        kafka_bootstrap=bootstrap,
        topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
        topic_partitions=6,
    )
    ensure_topics(settings)
    return settings


def producer(settings: Settings, linger_ms: int = 20) -> Producer:
    return Producer(
        {
            **settings.kafka_client_config(),
            "linger.ms": linger_ms,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
        }
    )


def load(settings: Settings, events: int) -> int:
    """N demo events on the raw topic; returns their total size in bytes."""
    out = producer(settings)
    traffic = DemoTraffic(seed=11).events()
    total = 0
    for i in range(events):
        value = next(traffic)
        total += len(value)
        while True:
            try:
                out.produce(settings.topics.raw, value)
                break
            except BufferError:
                out.poll(0.1)
        if i % 1000 == 0:
            out.poll(0)
    assert out.flush(120) == 0
    return total


def bare_consumer_rate(settings: Settings, events: int) -> float:
    consumer = Consumer(
        {
            **settings.kafka_client_config(),
            "group.id": f"bench-bare-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": 10,
        }
    )
    consumer.subscribe([settings.topics.raw])
    read, started = 0, 0.0
    try:
        while read < events:
            batch = consumer.consume(10_000, 1.0)
            if batch and not started:
                started = time.monotonic()
            read += len(batch)
        return read / (time.monotonic() - started)
    finally:
        consumer.close()


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHTRAIL_")}
    env.update(
        {
            "AUTHTRAIL_DATA_DIR": str(settings.data_dir),
            "AUTHTRAIL_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
            "AUTHTRAIL_TOPIC_PREFIX": settings.topic_prefix,
            "AUTHTRAIL_METRICS_PORT": "0",
            "AUTHTRAIL_LOG_LEVEL": "WARNING",
        }
    )
    return env


def run_worker(settings: Settings, *args: str, timeout_s: float = 1800) -> dict[str, Any]:
    out = settings.data_dir.parent / f"worker-{uuid.uuid4().hex[:6]}.json"
    subprocess.run(
        [PYTHON, "-m", "bench.ingest_worker", "--out", str(out), *args],
        env=worker_env(settings),
        check=False,
        timeout=timeout_s,
    )
    result: dict[str, Any] = json.loads(out.read_text())
    if "error" in result:
        raise RuntimeError(f"ingest worker watcher failed: {result['error']}")
    return result


def ingest_rate(settings: Settings, events: int) -> float:
    seen = run_worker(settings, "--events", str(events))
    return float((seen["count"] - seen["first_count"]) / (seen["done_at"] - seen["first_at"]))


def peer_rate(settings: Settings, events: int) -> dict[str, Any]:
    done = subprocess.run(
        [
            PYTHON,
            "-m",
            "bench.ingest_peer",
            "--bootstrap",
            settings.bootstrap_servers,
            "--topic",
            settings.topics.raw,
            "--events",
            str(events),
            "--data",
            str(settings.data_dir.parent / f"peer-{uuid.uuid4().hex[:6]}"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(events: int) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="authtrail-ingest-bench-") as tmp:
        data = Path(tmp)
        with broker(data) as bootstrap:
            settings = new_settings(data, bootstrap)
            print(f"ingest: loading {events:,} raw events ...", flush=True)
            size = load(settings, events)
            print(f"  {size / events:.0f} bytes/event; bare consumer ...", flush=True)
            ceiling = bare_consumer_rate(settings, events)
            print(f"  {ceiling:,.0f}/s; peer ...", flush=True)
            peer = peer_rate(settings, events)
            print(f"  {peer}; authtrail ingest ...", flush=True)
            rate = ingest_rate(settings, events)
            print(f"  {rate:,.0f}/s", flush=True)
    figures.append(
        Figure(
            "ingest.events_per_s",
            rate,
            "events/s",
            f"steady state: {events:,} events pre-loaded, the worker alone, raw topic -> "
            "queryable from the first row stored",
            peer=peer["events_per_s"],
            peer_name=peer["peer"],
            target="≥ 40,000/s and ≥ 0.5 x peer",
            met=rate >= 40_000 and rate >= 0.5 * peer["events_per_s"],
        )
    )
    figures.append(
        Figure(
            "ingest.bare_consumer_per_s",
            ceiling,
            "events/s",
            "bare confluent-kafka consumer, same topic (ceiling of a Python consumer)",
        )
    )
    figures.append(
        Figure(
            "ingest.ratio_of_ceiling",
            rate / ceiling,
            "x",
            "authtrail ingest / bare consumer",
        )
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=scaled(1_000_000))
    args = parser.parse_args()
    figures = run(args.events)
    write_results("ingest", figures)


if __name__ == "__main__":
    main()
