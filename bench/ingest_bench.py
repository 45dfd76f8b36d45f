"""Ingest speed: raw topic -> queryable in the log store, the whole faust path with
validation, normalization, enrichment, dedupe, the store insert and the normalized topic.

    .venv/bin/python -m bench.ingest_bench [--events 1000000] [--latency-seconds 30]

Against a genuine broker on this machine (started here unless AUTHTRAIL_KAFKA_BOOTSTRAP
is set), on the same N demo events pre-loaded in the raw topic, it measures
* the ceiling: a bare confluent-kafka consumer reading the topic;
* the peer: a librdkafka loop feeding a ClickHouse materialized view that validates
  and derives the events table's columns (``bench.ingest_peer``);
* authtrail: the real worker (``bench.ingest_worker``) from the first row queryable to
  the N-th;
* latency: produce -> queryable at a steady 5,000 events/s, from probe events.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer

from authtrail.demo import DemoTraffic
from bench.figures import Figure, broker, scaled, write_results
from bench.ingest_worker import PROBE_KEY
from infra.kafka.topic_admin import ensure_topics
from schemas.settings import Settings

PYTHON = sys.executable
WARM_UP_S = 15


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


def probe(value: bytes) -> bytes:
    event = orjson.loads(value)
    event["event_key"] = PROBE_KEY
    event.pop("outcome", None)
    return orjson.dumps(event)


def latency(settings: Settings, rate: int, seconds: float) -> list[float]:
    """Produce -> queryable, in seconds, of the probe events (one in 25) of a steady
    ``rate`` events/s for ``seconds``. The clock starts once the worker is seen to
    store a probe (it has joined its group and has its partitions), and the first
    ``WARM_UP_S`` of the steady rate are not counted (the worker's first produce waits
    for the broker to hand it a producer id, the first commit, caches)."""
    stop = settings.data_dir.parent / f"stop-{uuid.uuid4().hex[:6]}"
    ready = settings.data_dir.parent / f"ready-{uuid.uuid4().hex[:6]}"
    out = settings.data_dir.parent / f"latency-{uuid.uuid4().hex[:6]}.json"
    worker = subprocess.Popen(
        [
            *(PYTHON, "-m", "bench.ingest_worker", "--out", str(out)),
            *("--until", str(stop), "--ready", str(ready)),
        ],
        env=worker_env(settings),
    )
    traffic = DemoTraffic(seed=13).events()
    out_producer = producer(settings, linger_ms=5)
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the ingest worker never stored a probe")
            out_producer.produce(settings.topics.raw, probe(next(traffic)))
            out_producer.poll(0.1)
        start = time.monotonic()
        counted_from_ms = int((time.time() + WARM_UP_S) * 1000)
        deadline = start + WARM_UP_S + seconds
        n = 0
        while time.monotonic() < deadline:
            for _ in range(per_tick):
                value = next(traffic)
                out_producer.produce(settings.topics.raw, probe(value) if n % 25 == 0 else value)
                n += 1
            out_producer.poll(0)
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
        out_producer.flush(30)
        time.sleep(3)  # the last probes become queryable
    finally:
        stop.touch()
        worker.wait(120)
    result = json.loads(out.read_text())
    if "error" in result:
        raise RuntimeError(f"latency watcher failed: {result['error']}")
    counted = [(p, seen) for p, seen in result["latencies_s"] if p >= counted_from_ms]
    slowest = sorted(counted, key=lambda pair: -pair[1])[: max(1, len(counted) // 100)]
    print(
        f"  store parts at most {result.get('max_parts')}; the slowest 1% of probes were "
        f"produced {min(p for p, _ in slowest) / 1000 - counted_from_ms / 1000:.1f}-"
        f"{max(p for p, _ in slowest) / 1000 - counted_from_ms / 1000:.1f} s into the count",
        flush=True,
    )
    return [seen for _, seen in counted]


def dirty_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Dirty:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run(events: int, latency_seconds: float) -> list[Figure]:
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
            print(f"  {rate:,.0f}/s; latency at 5,000/s ...", flush=True)
            # The throughput phase leaves the broker's and the store's writes for the
            # kernel to write back; measured during that writeback, two full runs showed
            # a ~2 s p99 tail that standalone runs never did. Steady state starts after.
            print(f"  writing back {dirty_mb():.0f} MB of dirty pages first", flush=True)
            os.sync()
            latencies = latency(new_settings(data, bootstrap), 5000, latency_seconds)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"  p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms over {len(latencies)} probes")
    figures.append(
        Figure(
            "ingest.events_per_s",
            rate,
            "events/s",
            f"{events:,} events pre-loaded, raw topic -> queryable",
            peer=peer["events_per_s"],
            peer_name=peer["peer"],
            target="≥ 20,000/s and ≥ 0.5 x peer",
            met=rate >= 20_000 and rate >= 0.5 * peer["events_per_s"],
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
    for name, value in (("p50", p50), ("p99", p99)):
        figures.append(
            Figure(
                f"ingest.latency_{name}_ms",
                value * 1000,
                "ms",
                f"produce -> queryable at 5,000 events/s ({len(latencies)} probes)",
                target="p99 < 2,000 ms" if name == "p99" else "",
                met=value < 2.0 if name == "p99" else None,
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=scaled(1_000_000))
    parser.add_argument("--latency-seconds", type=float, default=max(10.0, scaled(30)))
    args = parser.parse_args()
    figures = run(args.events, args.latency_seconds)
    write_results("ingest", figures)


if __name__ == "__main__":
    main()
