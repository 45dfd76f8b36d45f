"""Stream speed: events/s of one connector process per platform, against the local receivers,
with the receiver's own maximum accept rate measured in the same run as the limit, and the
connector's peak RSS while it works through the backlog.

    .venv/bin/python -m bench.stream_bench [--events 1000000] [--platforms datadog,splunk,...]

Each HTTP receiver (``tests.platform_fakes``) runs in a process of its own, for the limit
and for the connector alike: the limit is a fresh receiver's accept rate with the senders
in another process (raw keep-alive sockets sending one pre-built request; a distinct
pre-signed id per request for the webhook, which dedupes on it), the connector's rate is
against another fresh receiver while ``authtrail connectors run`` is its only client.

Starts a genuine Kafka broker (or uses AUTHTRAIL_KAFKA_BOOTSTRAP), pre-loads N normalized
events of 100,000 users (five accounts of 20,000: half the events' emails and addresses are
distinct, as at an identity platform with many customers' users, so costs that depend on it,
as the PII rules', are not flattered by a demo's few dozen), then for each platform starts
its receiver and an `authtrail connectors run` process for one destination, and times the
backlog from the first to the last event accepted.
Prints a markdown table and writes bench/results/stream.json.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from authtrail.demo import DemoTraffic
from bench.figures import Figure, accept_rate, broker, free_port, scaled, terminate, write_results
from connectors.config import DestinationStore
from infra.kafka.topic_admin import ensure_topics
from pipeline.enrich import Enricher
from pipeline.normalize import Normalizer
from schemas.events import NormalizedEvent, utc_now_ms
from schemas.settings import Settings
from schemas.standard_webhooks import message_id, secret_key, signed_headers
from tests.integration.aws import ACCESS_KEY, REGION, SECRET_KEY, Aws
from tests.platform_fakes import (
    CoralogixReceiver,
    DatadogReceiver,
    SplunkReceiver,
    SumoReceiver,
)
from tests.platform_fakes.webhook import WebhookReceiver

AUTHTRAIL = str(Path(sys.executable).parent / "authtrail")
MOTO_SERVER = str(Path(sys.executable).parent / "moto_server")
DD_KEY = "0123456789abcdef0123456789abcdef"
HEC = "12345678-1234-1234-1234-123456789012"
CX = "cxtp_0123456789abcdefABCDEF"
SUMO = "benchSumoCode123"
PII_PAIRS = ("datadog", "webhook", "s3")  # measured in PII_ROUNDS alternating rounds
PII_ROUNDS = 5
# The receivers' limit: one pre-built request over 4 keep-alive connections for 5 s.
LIMIT_CONNECTIONS = 4
LIMIT_SECONDS = 5.0
# Distinct signed requests a webhook limit may send (2,000,000 events at 100 a request).
WEBHOOK_LIMIT_REQUESTS = 20_000
S3_FILE_BYTES = 67_108_864  # the archive's default max_bytes
HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 (the specification's example)
USERS_PER_ACCOUNT = 20_000
# The PII rules a privacy-minded user sets: the cost of the transform on top of Datadog.
PII_RULES = {
    "transform.actor.email": "hash",
    "transform.actor.id": "hash",
    "transform.ip": "mask",
    "transform.user_agent": "drop",
}


def platforms() -> dict[str, tuple[str, Any, Any]]:
    """name -> (platform, receiver factory, destination settings for a receiver)."""
    return {
        "datadog": (
            "datadog",
            lambda: DatadogReceiver(DD_KEY, keep_events=False),
            lambda r: {"api_key": DD_KEY, "endpoint": r.url},
        ),
        "datadog_pii": (
            "datadog",
            lambda: DatadogReceiver(DD_KEY, keep_events=False),
            lambda r: {"api_key": DD_KEY, "endpoint": r.url, **PII_RULES},
        ),
        "splunk": (
            "splunk",
            lambda: SplunkReceiver(HEC, keep_events=False),
            lambda r: {"url": "https://splunk:8088", "endpoint": r.url, "token": HEC},
        ),
        "sumologic": (
            "sumologic",
            lambda: SumoReceiver(SUMO, keep_events=False),
            lambda r: {"url": f"https://c.example/receiver/v1/http/{SUMO}", "endpoint": r.url},
        ),
        "coralogix": (
            "coralogix",
            lambda: CoralogixReceiver(CX, keep_events=False),
            lambda r: {"api_key": CX, "endpoint": r.url},
        ),
        "webhook": (
            "webhook",
            lambda: WebhookReceiver([HOOK_SECRET], keep_events=False),
            lambda r: {"url": r.endpoint, "secret": HOOK_SECRET},
        ),
        "webhook_pii": (
            "webhook",
            lambda: WebhookReceiver([HOOK_SECRET], keep_events=False),
            lambda r: {"url": r.endpoint, "secret": HOOK_SECRET, **PII_RULES},
        ),
    }


def load(settings: Settings, events: int) -> int:
    """N realistic normalized events on the normalized topic; returns their total bytes."""
    normalizer = Normalizer(Enricher())
    traffic = DemoTraffic(seed=7, users_per_account=USERS_PER_ACCOUNT).events()
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


class ReceiverProcess:
    """One platform's receiver (``tests.platform_fakes``) served from a process of its
    own, so that what it accepts is not slowed by the benchmark's work, nor by senders
    sharing its interpreter's lock. The benchmark asks it over a pipe how many events it
    has accepted."""

    def __init__(self, name: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=serve_receiver, args=(name, child), name=f"receiver-{name}", daemon=True
        )
        self._process.start()
        child.close()
        if not self._conn.poll(60):
            self.close()
            raise RuntimeError(f"the {name} receiver did not start")
        self.url, self.endpoint = self._conn.recv()

    @property
    def pid(self) -> int:
        return self._process.pid or 0

    @property
    def event_count(self) -> int:
        self._conn.send("count")
        return int(self._conn.recv())

    def close(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send("stop")
            self._process.join(30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(10)
        self._conn.close()

    def __enter__(self) -> ReceiverProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_receiver(name: str, conn: Connection) -> None:
    """The receiver process: serves ``name``'s receiver until told to stop."""
    with platforms()[name][1]() as receiver:
        conn.send((receiver.url, getattr(receiver, "endpoint", None)))
        while True:
            try:
                command = conn.recv()
            except EOFError:  # the benchmark is gone
                break
            if command == "count":
                conn.send(receiver.store.event_count)
            elif command == "stop":
                break


def receiver_limit(
    name: str, path: str, body: bytes, headers: dict[str, str], per_request: int
) -> float:
    """The receiver's own accept rate, each in its own process: a fresh receiver, and a
    sender process sending one pre-built request over ``LIMIT_CONNECTIONS`` keep-alive
    connections for ``LIMIT_SECONDS`` (raw sockets, a few microseconds a request, so the
    figure is the receiver's). A signed webhook gets a distinct id (signed beforehand)
    on every request, as the receiver dedupes on it. The receiver's own count must agree
    with the accepted answers."""
    context = multiprocessing.get_context("spawn")
    with ReceiverProcess(name) as receiver:
        mine, theirs = context.Pipe()
        sender = context.Process(
            target=send_requests,
            args=(receiver.url + path, body, headers, per_request, theirs),
            kwargs={"sign": HOOK_SECRET if name.startswith("webhook") else None},
            name=f"sender-{name}",
            daemon=True,
        )
        sender.start()
        theirs.close()
        try:
            if not mine.poll(LIMIT_SECONDS + 120):
                raise RuntimeError(f"the {name} sender did not answer")
            accepted, elapsed, refused = mine.recv()
        finally:
            sender.join(30)
            if sender.is_alive():
                sender.kill()
            mine.close()
        stored = receiver.event_count
    if not accepted or refused or abs(stored - accepted) > per_request * LIMIT_CONNECTIONS:
        raise RuntimeError(
            f"{name}: the sender counted {accepted} accepted events ({refused} requests "
            f"refused), the receiver {stored}"
        )
    return float(accepted / elapsed)


def send_requests(
    url: str,
    body: bytes,
    headers: dict[str, str],
    per_request: int,
    conn: Connection,
    *,
    sign: str | None = None,
    connections: int = LIMIT_CONNECTIONS,
    seconds: float = LIMIT_SECONDS,
) -> None:
    """The sender process: sends ``body`` with ``headers`` to ``url`` over ``connections``
    keep-alive connections, one thread each, for ``seconds``; sends back (accepted events,
    elapsed seconds, refused requests). With ``sign`` (a Standard Webhooks secret) each
    request has its own id and signature, made before the clock starts."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    common = {k: v for k, v in headers.items() if not k.lower().startswith("webhook-")}
    common.update({"Host": f"{host}:{port}", "Content-Length": str(len(body))})

    def head(extra: dict[str, str]) -> bytes:
        lines = [
            f"POST {parts.path} HTTP/1.1",
            *(f"{k}: {v}" for k, v in {**common, **extra}.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    if sign is None:
        heads: list[bytes] = [head({})]
    else:
        keys, now = [secret_key(sign)], int(time.time())
        heads = [
            head(signed_headers(keys, f"msg_limit{i}", now, body))
            for i in range(WEBHOOK_LIMIT_REQUESTS)
        ]
    lock = threading.Lock()
    accepted = refused = 0
    next_head = 0
    clock: list[float] = []  # the start and the deadline, set as the threads are let go

    def start_clock() -> None:
        now = time.monotonic()
        clock.extend((now, now + seconds))

    ready = threading.Barrier(connections + 1, action=start_clock)
    finished: list[float] = []

    def take() -> bytes | None:
        nonlocal next_head
        if sign is None:
            return heads[0]
        with lock:
            if next_head >= len(heads):
                return None
            next_head += 1
            return heads[next_head - 1]

    def blast() -> None:
        nonlocal accepted, refused
        with socket.create_connection((host, port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            replies = sock.makefile("rb")
            ready.wait()
            mine = bad = 0
            while time.monotonic() < clock[1] and (request := take()) is not None:
                sock.sendall(request)
                sock.sendall(body)
                status = read_reply(replies)
                if 200 <= status < 300:
                    mine += per_request
                else:
                    bad += 1
            done = time.monotonic()
        with lock:
            accepted += mine
            refused += bad
            finished.append(done)

    workers = [threading.Thread(target=blast) for _ in range(connections)]
    for worker in workers:
        worker.start()
    ready.wait()
    for worker in workers:
        worker.join()
    conn.send((accepted, max(finished) - clock[0], refused))
    conn.close()


def read_reply(replies: Any) -> int:
    """Reads one HTTP/1.1 reply (status line, headers, a Content-Length body); its status."""
    status = int(replies.readline().split(b" ", 2)[1])
    length = 0
    while (line := replies.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        replies.read(length)
    return status


def request_shape(name: str, entries: list[bytes]) -> tuple[bytes, dict[str, Any]]:
    import gzip

    if name in ("datadog", "datadog_pii"):
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
    if name in ("webhook", "webhook_pii"):
        headers = signed_headers(
            [secret_key(HOOK_SECRET)], message_id("bench", body), int(time.time()), body
        )
        return body, {
            "path": "/hooks/audit",
            "headers": {**headers, "Content-Type": "application/json"},
        }
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
    platform, _, destination_settings = platforms()[name]
    # The connector's receiver, in a process of its own; the limit is measured against
    # another one (also in its own process), so neither sees the other's traffic.
    with ReceiverProcess(name) as receiver:
        with DestinationStore(settings) as store:
            destination = store.add(platform, f"bench {name}", destination_settings(receiver))
        from connectors.sinks import build_sink
        from connectors.sinks.base import encode_event

        sink = build_sink(destination)
        entries: list[bytes] = []
        limits = sink.limits
        size = limits.framing_bytes
        for event in sample_events[: limits.max_entries]:  # one full request's worth
            entry = encode_event(sink, event)
            if size + len(entry) + limits.separator_bytes > limits.max_bytes:
                break
            entries.append(entry)
            size += len(entry) + limits.separator_bytes
        sink.close()
        body, shape = request_shape(name, entries)
        limit = receiver_limit(name, shape["path"], body, shape["headers"], len(entries))
        process = subprocess.Popen(
            [AUTHTRAIL, "connectors", "run", "--destination", destination.id],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak = 0.0
        first: float | None = None
        count = 0
        deadline = time.monotonic() + 1800
        try:
            while count < events and time.monotonic() < deadline:
                time.sleep(0.05)
                peak = max(peak, rss_mb(process.pid))
                count = receiver.event_count
                if first is None and count:
                    first = time.monotonic()
            done = time.monotonic()
        finally:
            process.terminate()
            process.wait(60)
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


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server in a process of its own (as the HTTP receivers are): its URL."""
    port = free_port()
    server = subprocess.Popen(
        [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        terminate(server)


def receiver_limit_eventbridge(aws: Any, bus: str, entries: list[dict[str, Any]]) -> float:
    """moto's own accept rate: one pre-built PutEvents of 10 entries from 4 threads."""
    request = [
        {
            "Source": "authtrail",
            "DetailType": "bench",
            "Detail": orjson.dumps(e).decode(),
            "EventBusName": bus,
        }
        for e in entries[:10]
    ]

    def sender() -> Callable[[], int]:
        client = aws.client("events")
        return lambda: len(request) - client.put_events(Entries=request).get("FailedEntryCount", 0)

    return accept_rate(sender)


def run_eventbridge(
    settings: Settings, env: dict[str, str], events: int, sample_events: list[dict[str, Any]]
) -> dict[str, Any]:
    """The EventBridge connector against moto's server, which is itself the limit: it
    routes each event through a rule into an SQS queue that is counted."""
    with moto_server() as url:
        aws = Aws(url)
        limit_queue = aws.queue("bench-limit")
        aws.bus("bench-limit", limit_queue)
        limit = receiver_limit_eventbridge(aws, "bench-limit", sample_events)
        queue = aws.queue("bench")
        aws.bus("bench", queue)
        with DestinationStore(settings) as store:
            destination = store.add(
                "eventbridge",
                "bench eventbridge",
                {
                    "region": REGION,
                    "event_bus": "bench",
                    "access_key_id": ACCESS_KEY,
                    "secret_access_key": SECRET_KEY,
                    "endpoint": aws.url,
                },
            )
        process = subprocess.Popen(
            [AUTHTRAIL, "connectors", "run", "--destination", destination.id],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        first: tuple[float, int] | None = None
        count = 0
        deadline = time.monotonic() + 600
        try:
            while count < events and time.monotonic() < deadline:
                time.sleep(0.2)
                count = int(
                    aws.sqs.get_queue_attributes(
                        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
                    )["Attributes"]["ApproximateNumberOfMessages"]
                )
                if count and first is None:
                    first = (time.monotonic(), count)
            done = time.monotonic()
        finally:
            process.terminate()
            process.wait(60)
        assert first is not None, "no event reached moto"
        rate = (count - first[1]) / max(done - first[0], 1e-6)
        return {
            "platform": "eventbridge",
            "events": count,
            "events_per_s": round(rate),
            "receiver_limit_per_s": round(limit),
            "ratio": round(rate / limit, 3) if limit else None,
            "peak_rss_mb": None,
        }


def receiver_limit_s3(aws: Aws, bucket: str, sample_events: list[dict[str, Any]]) -> float:
    """moto's own accept rate for the archive's files: the sample's events gzipped into
    one file per partition path (as the connector closes them), put from 4 threads, each
    under its own prefix (moto fails puts racing on one key: "I/O operation on closed
    file"; the connector never writes one key twice)."""
    from connectors.sinks.base import read_event
    from connectors.sinks.s3 import partition_path

    paths: dict[str, list[bytes]] = {}
    for event in sample_events:
        raw = orjson.dumps(event)
        paths.setdefault(partition_path(read_event(raw)), []).append(raw + b"\n")
    files = [
        (f"{path}/f.ndjson.gz", gzip.compress(b"".join(lines), 6, mtime=0), len(lines))
        for path, lines in paths.items()
    ]

    def sender() -> Callable[[], int]:
        client = aws.client("s3")
        prefix = f"limit-{uuid.uuid4().hex[:8]}"

        def put_all() -> int:
            for key, body, _ in files:
                client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=body)
            return sum(count for _, _, count in files)

        return put_all

    return accept_rate(sender)


class Committed:
    """How many records of the normalized topic a consumer group has committed (all
    partitions), asked of the broker by one consumer that never joins the group."""

    def __init__(self, settings: Settings, group: str) -> None:
        self._consumer = Consumer({**settings.kafka_client_config(), "group.id": group})
        topic = settings.topics.normalized
        metadata = self._consumer.list_topics(topic, timeout=10).topics[topic]
        self._partitions = [TopicPartition(topic, p) for p in metadata.partitions]

    def count(self) -> int:
        committed = self._consumer.committed(self._partitions, timeout=10)
        return sum(max(tp.offset, 0) for tp in committed)

    def close(self) -> None:
        self._consumer.close()


def run_s3(
    settings: Settings,
    env: dict[str, str],
    events: int,
    sample_events: list[dict[str, Any]],
    rules: dict[str, str],
    event_bytes: int,
) -> dict[str, Any]:
    """The S3 archive connector (default file limits: 64 MiB, 300 s) against moto's
    server, timed from the first close's commit to the last one's (a close is committed
    once its files are put). The backlog's tail smaller than a file waits for
    ``max_seconds`` as it would for a user; it is left out of the rate."""
    with moto_server() as url:
        aws = Aws(url)
        # Each run has its own buckets (and its own moto process).
        run = uuid.uuid4().hex[:8]
        aws.bucket(f"bench-limit-{run}")
        limit = receiver_limit_s3(aws, f"bench-limit-{run}", sample_events)
        aws.bucket(f"bench-{run}")
        with DestinationStore(settings) as store:
            destination = store.add(
                "s3",
                f"bench s3 {len(rules)}",
                {
                    "region": REGION,
                    "bucket": f"bench-{run}",
                    "access_key_id": ACCESS_KEY,
                    "secret_access_key": SECRET_KEY,
                    "endpoint": aws.url,
                    **rules,
                },
            )
        started = time.monotonic()
        process = subprocess.Popen(
            [AUTHTRAIL, "connectors", "run", "--destination", destination.id],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak, count = 0.0, 0
        last_change = done = started
        first: tuple[float, int] | None = None  # the first close's commit
        per_file = S3_FILE_BYTES // max(1, event_bytes)
        deadline = time.monotonic() + 1800
        progress = Committed(settings, destination.group_id)
        try:
            while count < events and time.monotonic() < deadline:
                time.sleep(0.05)  # the rate is timed between commits: a fine clock
                peak = max(peak, rss_mb(process.pid))
                now_count = progress.count()
                if now_count != count:
                    count, last_change = now_count, time.monotonic()
                    done = last_change
                    first = first or (last_change, count)
                # The tail smaller than a file closes at max_seconds (300 s): not a rate.
                if events - count < per_file and time.monotonic() - last_change > 15:
                    break
        finally:
            progress.close()
            process.terminate()
            process.wait(60)
        # From the first close's commit to the last one's, as the other platforms are timed
        # from their first accepted event (a single close: from the connector's start).
        since, before = first if first is not None and done > first[0] else (started, 0)
        rate = (count - before) / max(done - since, 1e-6)
        return {
            "platform": "s3_pii" if rules else "s3",
            "events": count,
            "events_per_s": round(rate),
            "receiver_limit_per_s": round(limit),
            "ratio": round(rate / limit, 3) if limit else None,
            "peak_rss_mb": round(peak, 1),
        }


def measure(events: int, names: list[str], eventbridge_events: int) -> list[dict[str, Any]]:
    """One row per platform (``run_platform``'s), EventBridge last when asked for."""
    data = Path(tempfile.mkdtemp(prefix="authtrail-stream-bench-"))
    rows = []
    try:
        with broker(data) as bootstrap:
            rows = _measure(data, bootstrap, events, names, eventbridge_events)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return rows


def _measure(
    data: Path, bootstrap: str, events: int, names: list[str], eventbridge_events: int
) -> list[dict[str, Any]]:
    rows = []
    settings = Settings(
        data_dir=data,
        kafka_bootstrap=bootstrap,
        topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
        topic_partitions=6,
    )
    ensure_topics(settings)
    print(f"stream: loading {events:,} normalized events ...", flush=True)
    started = time.monotonic()
    size = load(settings, events)
    print(
        f"  {time.monotonic() - started:.0f} s, {size / events:.0f} bytes/event",
        flush=True,
    )
    normalizer = Normalizer(Enricher())
    traffic = DemoTraffic(seed=9, users_per_account=USERS_PER_ACCOUNT).events()
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

    def run(name: str) -> dict[str, Any]:
        if name in ("s3", "s3_pii"):
            rules = PII_RULES if name == "s3_pii" else {}
            return run_s3(settings, env, events, sample, rules, size // events)
        return run_platform(name, settings, env, events, sample)

    for name in names:
        print(f"  {name} ...", flush=True)
        rows.append(run(name))
        print(f"  {rows[-1]}", flush=True)
    # The PII rules' cost is a difference of two noisy rates on a shared machine: more
    # rounds of each pair, alternating, and the median round is reported.
    for round_ in range(2, PII_ROUNDS + 1):
        for base in PII_PAIRS:
            for name in (base, f"{base}_pii"):
                if base in names and f"{base}_pii" in names:
                    print(f"  {name} (round {round_}) ...", flush=True)
                    rows.append({**run(name), "round": round_})
                    print(f"  {rows[-1]}", flush=True)
    if eventbridge_events:
        print("  eventbridge (moto) ...", flush=True)
        rows.append(run_eventbridge(settings, env, eventbridge_events, sample))
        print(f"  {rows[-1]}", flush=True)
    return rows


NAMES = {
    "datadog": "Datadog",
    "datadog_pii": "Datadog with PII rules (hash email and id, mask IP, drop user agent)",
    "webhook": "Webhook (signed, JSON array of 100)",
    "webhook_pii": "Webhook with PII rules",
    "splunk": "Splunk HEC",
    "sumologic": "Sumo Logic",
    "coralogix": "Coralogix",
    "eventbridge": "EventBridge (moto)",
    "s3": "S3 archive (moto; 64 MiB files)",
    "s3_pii": "S3 archive (moto) with PII rules",
}


ALL = [*platforms(), "s3", "s3_pii"]


def figures(events: int, eventbridge_events: int, names: list[str] | None = None) -> list[Figure]:
    out: list[Figure] = []
    rows = measure(events, names or ALL, eventbridge_events)
    for row in rows:
        if row.get("round", 1) != 1:
            continue  # the PII cost's extra rounds: below
        name = row["platform"]
        http = name not in ("eventbridge", "s3", "s3_pii")
        out.append(
            Figure(
                f"stream.{name}.events_per_s",
                row["events_per_s"],
                "events/s",
                f"{NAMES[name]}, one connector process, "
                + (
                    f"{row['events']:,}-event backlog"
                    if http
                    else f"{row['events']:,} events of the backlog, first to last file closed"
                    if name.startswith("s3")
                    else f"first {row['events']:,} events of the backlog"
                ),
                peer=row["receiver_limit_per_s"],
                peer_name="moto's own accept rate"
                if not http
                else "receiver's own accept rate, in its own process",
                target="≥ 50,000/s and ≥ 0.8 x limit" if http else "",
                met=(row["events_per_s"] >= 50_000 and (row["ratio"] or 0) >= 0.8)
                if http
                else None,
            )
        )
        if row["peak_rss_mb"] is not None:
            out.append(
                Figure(
                    f"stream.{name}.peak_rss_mb",
                    row["peak_rss_mb"],
                    "MB",
                    f"{NAMES[name]} connector peak RSS through the backlog",
                    target="< 300 MB",
                    met=row["peak_rss_mb"] < 300,
                )
            )
    rates: dict[tuple[str, int], float] = {
        (row["platform"], row.get("round", 1)): row["events_per_s"] for row in rows
    }
    for plain_name, figure_name in (
        ("datadog", "pii_cost_percent"),
        ("webhook", "webhook.pii_cost_percent"),
        ("s3", "s3.pii_cost_percent"),
    ):
        costs = sorted(
            round(100 * (1 - rates[(f"{plain_name}_pii", r)] / rates[(plain_name, r)]), 1)
            for r in range(1, PII_ROUNDS + 1)
            if rates.get((plain_name, r)) and rates.get((f"{plain_name}_pii", r))
        )
        if costs:
            cost = costs[len(costs) // 2]
            spread = f"; rounds: {', '.join(f'{c:g}%' for c in costs)}" if len(costs) > 1 else ""
            out.append(
                Figure(
                    f"stream.{figure_name}",
                    cost,
                    "%",
                    f"throughput lost to the PII rules ({NAMES[plain_name]} with rules vs "
                    f"without, same run, median round{spread})",
                    target="≤ 15%",
                    met=cost <= 15,
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=scaled(1_000_000))
    parser.add_argument("--eventbridge-events", type=int, default=scaled(2_000))
    parser.add_argument(
        "--platforms",
        default=",".join(ALL),
        help=f"comma-separated, of {', '.join(ALL)} (default: all)",
    )
    args = parser.parse_args()
    names = [name for name in args.platforms.split(",") if name]
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        parser.error(f"unknown platforms: {', '.join(unknown)}")
    write_results("stream", figures(args.events, args.eventbridge_events, names))


if __name__ == "__main__":
    main()
