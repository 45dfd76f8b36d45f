"""Stream speed: events/s of one connector process per platform, against the local receivers,
with the receiver's own maximum accept rate measured in the same run as the limit, and the
connector's peak RSS while it works through the backlog.

    .venv/bin/python -m bench.stream_bench [--events 1000000] [--platforms datadog,splunk,...]

Starts a genuine Kafka broker (or uses AUTHTRAIL_KAFKA_BOOTSTRAP), pre-loads N normalized
events, then for each platform starts its receiver and an `authtrail connectors run` process
for one destination, and times the backlog from the first to the last event accepted.
Prints a markdown table and writes bench/results/stream-<N>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Producer

from authtrail.demo import DemoTraffic
from authtrail.kafka_local import LocalKafka
from connectors.config import DestinationStore
from connectors.receivers import (
    CoralogixReceiver,
    DatadogReceiver,
    SplunkReceiver,
    SumoReceiver,
)
from pipeline.enrich import Enricher
from pipeline.normalize import Normalizer
from schemas.events import NormalizedEvent, utc_now_ms
from schemas.settings import Settings
from schemas.topic_admin import ensure_topics

RESULTS = Path(__file__).with_name("results")
AUTHTRAIL = str(Path(sys.executable).parent / "authtrail")
DD_KEY = "0123456789abcdef0123456789abcdef"
HEC = "12345678-1234-1234-1234-123456789012"
CX = "cxtp_0123456789abcdefABCDEF"
SUMO = "benchSumoCode123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def platforms() -> dict[str, tuple[Any, Any]]:
    """name -> (receiver factory, destination settings for a receiver)."""
    return {
        "datadog": (
            lambda: DatadogReceiver(DD_KEY, keep_events=False),
            lambda r: {"api_key": DD_KEY, "endpoint": r.url},
        ),
        "splunk": (
            lambda: SplunkReceiver(HEC, keep_events=False),
            lambda r: {"url": "https://splunk:8088", "endpoint": r.url, "token": HEC},
        ),
        "sumologic": (
            lambda: SumoReceiver(SUMO, keep_events=False),
            lambda r: {"url": f"https://c.example/receiver/v1/http/{SUMO}", "endpoint": r.url},
        ),
        "coralogix": (
            lambda: CoralogixReceiver(CX, keep_events=False),
            lambda r: {"api_key": CX, "endpoint": r.url},
        ),
    }


def load(settings: Settings, events: int) -> int:
    """N realistic normalized events on the normalized topic; returns their total bytes."""
    normalizer = Normalizer(Enricher())
    traffic = DemoTraffic(seed=7).events()
    producer = Producer(
        {
            **settings.kafka_client_config(),
            "linger.ms": 20,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
        }
    )
    total = 0
    now = utc_now_ms()
    for _ in range(events):
        event = normalizer.normalize(next(traffic), now)
        assert isinstance(event, NormalizedEvent)
        value = event.to_json()
        total += len(value)
        while True:
            try:
                producer.produce(
                    settings.topics.normalized,
                    value=value,
                    key=(event.account_id or event.event_id).encode(),
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(120) == 0
    return total


def receiver_limit(
    url: str,
    body: bytes,
    headers: dict[str, str],
    per_request: int,
    seconds: float = 5.0,
    threads: int = 4,
) -> float:
    """The receiver's own accept rate: one pre-built request sent from several threads."""
    accepted = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def blast() -> None:
        nonlocal accepted
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline:
                if client.post(url, content=body, headers=headers).status_code < 300:
                    with lock:
                        accepted += per_request

    started = time.monotonic()
    workers = [threading.Thread(target=blast) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return accepted / (time.monotonic() - started)


def request_shape(name: str, entries: list[bytes]) -> tuple[bytes, dict[str, Any]]:
    import gzip

    if name == "datadog":
        body = gzip.compress(b"[" + b",".join(entries) + b"]", 1)
        return body, {
            "path": "/api/v2/logs",
            "headers": {
                "DD-API-KEY": DD_KEY,
                "Content-Encoding": "gzip",
                "Content-Type": "application/json",
            },
        }
    if name == "splunk":
        body = gzip.compress(b"\n".join(entries), 1)
        return body, {
            "path": "/services/collector/event",
            "headers": {"Authorization": f"Splunk {HEC}", "Content-Encoding": "gzip"},
        }
    if name == "sumologic":
        body = gzip.compress(b"\n".join(entries), 1)
        return body, {"path": f"/receiver/v1/http/{SUMO}", "headers": {"Content-Encoding": "gzip"}}
    body = b"[" + b",".join(entries) + b"]"
    return body, {
        "path": "/logs/v1/singles",
        "headers": {"Authorization": f"Bearer {CX}", "Content-Type": "application/json"},
    }


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def run_platform(
    name: str,
    settings: Settings,
    env: dict[str, str],
    events: int,
    sample_events: list[dict[str, Any]],
) -> dict[str, Any]:
    make_receiver, destination_settings = platforms()[name]
    with make_receiver() as receiver:
        with DestinationStore(settings) as store:
            destination = store.add(name, f"bench {name}", destination_settings(receiver))
        from connectors.platforms import build_sink
        from connectors.sink import encode_event

        sink = build_sink(destination)
        entries: list[bytes] = []
        size = 0
        for event in sample_events[: sink.limits.max_entries]:  # one full request's worth
            entry = encode_event(sink, event)
            if size + len(entry) + 1 > sink.limits.max_bytes:
                break
            entries.append(entry)
            size += len(entry) + 1
        sink.close()
        body, shape = request_shape(name, entries)
        limit = receiver_limit(receiver.url + shape["path"], body, shape["headers"], len(entries))
        receiver.store.reset()
        process = subprocess.Popen(
            [AUTHTRAIL, "connectors", "run", "--destination", destination.id],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak = 0.0
        first: float | None = None
        deadline = time.monotonic() + 1800
        try:
            while receiver.store.event_count < events and time.monotonic() < deadline:
                time.sleep(0.05)
                peak = max(peak, rss_mb(process.pid))
                if first is None and receiver.store.event_count:
                    first = time.monotonic()
            done = time.monotonic()
        finally:
            process.terminate()
            process.wait(60)
        count = receiver.store.event_count
        elapsed = max(done - (first or done), 1e-6)
        rate = count / elapsed
        return {
            "platform": name,
            "events": count,
            "events_per_s": round(rate),
            "receiver_limit_per_s": round(limit),
            "ratio": round(rate / limit, 3) if limit else None,
            "peak_rss_mb": round(peak, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=int(1_000_000 * float(os.environ.get("BENCH_SCALE", "1")))
    )
    parser.add_argument("--platforms", default="datadog,splunk,sumologic,coralogix")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="authtrail-stream-bench-"))
    kafka: LocalKafka | None = None
    bootstrap = os.environ.get("AUTHTRAIL_KAFKA_BOOTSTRAP")
    if not bootstrap:
        port, controller = free_port(), free_port()
        kafka = LocalKafka(
            Settings(data_dir=data, kafka_port=port, kafka_controller_port=controller)
        )
        kafka.start()
        bootstrap = kafka.bootstrap
    try:
        settings = Settings(
            data_dir=data,
            kafka_bootstrap=bootstrap,
            topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
            topic_partitions=6,
        )
        ensure_topics(settings)
        print(f"loading {args.events:,} normalized events ...", flush=True)
        started = time.monotonic()
        size = load(settings, args.events)
        print(
            f"  {time.monotonic() - started:.0f} s, {size / args.events:.0f} bytes/event",
            flush=True,
        )
        normalizer = Normalizer(Enricher())
        traffic = DemoTraffic(seed=9).events()
        sample = []
        for _ in range(5000):
            event = normalizer.normalize(next(traffic), utc_now_ms())
            assert isinstance(event, NormalizedEvent)
            sample.append(event.to_dict())
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHTRAIL_")}
        env.update(
            {
                "AUTHTRAIL_DATA_DIR": str(data),
                "AUTHTRAIL_KAFKA_BOOTSTRAP": bootstrap,
                "AUTHTRAIL_TOPIC_PREFIX": settings.topic_prefix,
                "AUTHTRAIL_METRICS_PORT": "0",
                "AUTHTRAIL_LOG_LEVEL": "WARNING",
            }
        )
        rows = []
        for name in args.platforms.split(","):
            print(f"{name} ...", flush=True)
            rows.append(run_platform(name, settings, env, args.events, sample))
            print(f"  {rows[-1]}", flush=True)
    finally:
        if kafka is not None:
            kafka.stop()
        shutil.rmtree(data, ignore_errors=True)
    lines = [
        f"Stream speed, one connector process, {args.events:,}-event backlog",
        "",
        "| platform | events/s | receiver limit /s | ratio | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['platform']} | {r['events_per_s']:,} | {r['receiver_limit_per_s']:,} | "
        f"{r['ratio']:.2f} | {r['peak_rss_mb']} |"
        for r in rows
    ]
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"stream-{args.events}.json"
    out.write_text(json.dumps({"events": args.events, "platforms": rows}, indent=2) + "\n")
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
