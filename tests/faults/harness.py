"""The fault suite's trail: a whole authtrail as separate processes on a broker of its own
(the ingest worker with its query API, the connectors), the four log platforms' receivers
with a destination each, and a producer streaming a known set of events at a steady rate.

A fault test starts a ``Trail``, starts the stream, injects its fault mid-stream, marks
each heal, and ends with ``settle_and_count``: every event must be in the log view exactly
once (counted on every page of the view, in the export, and in the table itself:
``count()`` against ``uniqExact(event_id)``) and at every platform at least once. The
figures go to the suite's summary table.

Recovery time, per heal: from the heal (a restart launched, a broker or platform back)
until the log view holds, and every platform has received, as many distinct events as
had been sent at the heal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from authtrail.kafka_local import LocalKafka
from connectors.admin.status import StatusBoard
from connectors.config import DestinationStore
from connectors.sinks import build_sink
from infra.kafka.lag import group_offsets, topic_watermarks
from infra.kafka.topic_admin import ensure_topics, probe_consumer
from pipeline.app import COMMIT_INTERVAL_S
from query_api.tokens import create_token
from schemas.destinations import make_destination
from schemas.settings import Settings
from tests.faults.ingest_process import FAULT_FILE_ENV
from tests.integration.conftest import AUTHTRAIL, base_env, free_port
from tests.integration.platforms import ALL_PLATFORMS, Platform
from tests.platform_fakes import Receiver


@dataclass(frozen=True)
class Size:
    """How big a run is: ``make test`` runs ``REDUCED``, ``make faults`` runs ``FULL``."""

    name: str
    events: int
    rate: int  # events produced per second
    broker_down_s: float
    destination_down_s: float
    store_down_s: float
    settle_timeout_s: float
    # From a heal of the broker to the last event delivered everywhere: a consumer that
    # does not resume fails the row this soon, with every group's state printed.
    broker_recovery_s: float


# Reduced: large enough that every duplicate bound (``check_duplicates``) stays well below
# the events sent, so the bounds can fail.
# For the duplicate bounds: how long a batch may take from read to durable in a healthy
# trail (ingest), and how much longer than its linger a connector's batch may fill.
SLACK_S = 2.0
CONNECTOR_SLACK_S = 0.5
REDUCED = Size("reduced", 8_000, 400, 10, 16, 10, 240, 60)
FULL = Size("full", 100_000, 2_000, 30, 60, 30, 900, 120)


def size_from_env() -> Size:
    return FULL if os.environ.get("AUTHTRAIL_FAULTS_SIZE", "reduced") == "full" else REDUCED


class Broker:
    """The suite's own Apache Kafka broker (the broker test stops and restarts it)."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings(
            data_dir=data_dir,
            kafka_port=free_port(),
            kafka_controller_port=free_port(),
        )
        self.kafka = LocalKafka(self.settings)
        self.bootstrap = self.kafka.bootstrap

    def start(self) -> None:
        self.kafka.start()

    def stop(self) -> None:
        assert self.kafka.stop(), "the broker did not stop"


class Proc:
    """One process of the trail, its output appended to a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log_path = name, argv, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill_9(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.log()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 90) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def logged(self, text: str) -> bool:
        return text in self.log_path.read_text(errors="replace")


@dataclass
class Outcome:
    """One fault's figures, a row of the summary table."""

    fault: str
    size: str
    sent: int
    stored: int
    view_duplicates: int
    delivered: dict[str, int]  # platform -> distinct events received
    duplicates: dict[str, int]  # platform -> deliveries beyond the first
    lost: int
    dead_lettered: int
    recovery_s: float | None


def raw_event(run: str, i: int, now_ms: int) -> dict[str, Any]:
    failed = i % 5 == 0
    return {
        "event_id": f"{run}-{i:06d}",
        "event_key": "login.failed" if failed else "login.completed",
        "occurred_at": now_ms,
        "outcome": "failure" if failed else "success",
        "account": {"id": f"acc_{i % 7}", "name": f"Account {i % 7}"},
        "actor": {"id": f"usr_{i % 50}", "email": f"user{i % 50}@acme.io", "type": "user"},
        "ip": f"10.{i % 250}.{(i // 250) % 250}.{i % 199 + 1}",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0",
        "trace_id": uuid.uuid4().hex,
    }


class Trail:
    """A whole authtrail on ``broker``, fed a known stream; see the module docstring."""

    def __init__(self, broker: Broker, root: Path, size: Size) -> None:
        self.broker, self.root, self.size = broker, root, size
        self.run = uuid.uuid4().hex[:8]
        data_dir = root / "var"
        data_dir.mkdir(parents=True, exist_ok=True)
        prefix = f"f{self.run}."
        self.fault_file = root / "store-fault"
        self.fault_file.write_text("")
        api_port = free_port()
        self.env = base_env(
            data_dir,
            AUTHTRAIL_KAFKA_BOOTSTRAP=broker.bootstrap,
            AUTHTRAIL_TOPIC_PREFIX=prefix,
            AUTHTRAIL_INGEST_GROUP=f"{prefix}ingest",
            AUTHTRAIL_API_PORT=str(api_port),
            AUTHTRAIL_CONNECTOR_LINGER_SECONDS="0.5",
            # AUTHTRAIL_FAULTS_KAFKA_DEBUG=cgrp,fetch: what the consumer groups do, in the
            # processes' logs.
            **(
                {"AUTHTRAIL_KAFKA_DEBUG": os.environ["AUTHTRAIL_FAULTS_KAFKA_DEBUG"]}
                if os.environ.get("AUTHTRAIL_FAULTS_KAFKA_DEBUG")
                else {}
            ),
            **{FAULT_FILE_ENV: str(self.fault_file)},
        )
        self.api = f"http://127.0.0.1:{api_port}"
        self.settings = Settings(
            data_dir=data_dir,
            kafka_bootstrap=broker.bootstrap,
            topic_prefix=prefix,
            topic_partitions=3,
        )
        self.ingest = Proc(
            "ingest",
            [sys.executable, "-m", "tests.faults.ingest_process"],
            self.env,
            root / "ingest.log",
        )
        self.connectors = Proc(
            "connectors", [AUTHTRAIL, "connectors", "run"], self.env, root / "connectors.log"
        )
        self.receivers: dict[str, tuple[Platform, Receiver]] = {}
        self.destinations: dict[str, str] = {}  # platform -> destination id
        self.groups: dict[str, str] = {}  # platform -> its consumer group
        self._seen: dict[str, int] = {}
        self._received: dict[str, Counter[str]] = {}
        self._sent = 0
        self._send_failures: list[str] = []
        self._producer_done = threading.Event()
        self._heals: list[tuple[float, int]] = []  # (when, events sent by then)
        self.token = ""

    # -- set-up ------------------------------------------------------------------------
    def start(self) -> None:
        ensure_topics(self.settings)
        store = DestinationStore(self.settings).start()
        try:
            for platform in ALL_PLATFORMS:
                receiver = platform.receiver().start()
                self.receivers[platform.name] = (platform, receiver)
                self._seen[platform.name] = 0
                self._received[platform.name] = Counter()
                destination = store.add(
                    platform.name, f"{platform.name} (faults)", platform.settings(receiver)
                )
                self.destinations[platform.name] = destination.id
                self.groups[platform.name] = destination.group_id
        finally:
            store.stop()
        self.token = create_token(self.settings, "admin", "fault suite")[0]
        self.start_ingest()
        self.connectors.start()

    def start_ingest(self, timeout: float = 120) -> None:
        self.ingest.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.ingest.alive(), f"the ingest worker exited:\n{self.ingest.log()}"
            try:
                if httpx.get(f"{self.api}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"the ingest worker did not come up:\n{self.ingest.log()}")

    def close(self) -> None:
        self.connectors.stop()
        self.ingest.stop()
        for _platform, receiver in self.receivers.values():
            receiver.stop()

    # -- the stream --------------------------------------------------------------------
    def stream(self) -> threading.Thread:
        """Starts producing ``size.events`` raw events at ``size.rate``/s in a thread.
        The producer is idempotent with a long delivery timeout: a broker outage delays
        the events it buffers, never drops or doubles them."""
        thread = threading.Thread(target=self._produce, name="fault-stream", daemon=True)
        thread.start()
        return thread

    def _produce(self) -> None:
        producer = Producer(
            {
                **self.settings.kafka_client_config(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "message.timeout.ms": 600_000,
            }
        )

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is None:
                self._sent += 1
            else:
                self._send_failures.append(str(error))

        tick = 0.05
        per_tick = max(1, int(self.size.rate * tick))
        started = time.monotonic()
        now_ms = int(time.time() * 1000)
        for i in range(self.size.events):
            value = orjson.dumps(raw_event(self.run, i, now_ms + i))
            while True:
                try:
                    producer.produce(self.settings.topics.raw, value=value, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.1)
            if i % per_tick == per_tick - 1:
                producer.poll(0)
                pause = started + (i + 1) / self.size.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        remaining = producer.flush(600)
        if remaining:
            self._send_failures.append(f"{remaining} events still queued after 600 s")
        self._producer_done.set()

    def event_id(self, i: int) -> str:
        """The id of the stream's event number ``i``."""
        return f"{self.run}-{i:06d}"

    def wait_until(self, predicate: Callable[[], bool], what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting until {what}"
            time.sleep(0.2)

    def wait_sent(self, fraction: float, timeout: float = 600) -> None:
        """Blocks until ``fraction`` of the stream is acknowledged by the broker."""
        target = int(self.size.events * fraction)
        deadline = time.monotonic() + timeout
        while self._sent < target and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self._sent >= target, f"{self._sent} of {target} events sent"

    def healed(self) -> None:
        """Marks a heal: recovery is measured from now."""
        self._heals.append((time.monotonic(), self._sent))

    def check_duplicates(
        self, outcome: Outcome, ingest_crashes: int = 0, connector_crashes: int = 0
    ) -> None:
        """Raises when a platform saw more duplicates than the crashes explain, each bound
        scaled to the traffic the crash covered: a crashed ingest worker's successor
        re-reads what was read but not committed, at most the traffic of one commit
        interval plus ``SLACK_S`` for the batches then on their way to durable; a crashed
        connector re-sends its batches in flight and the one whose commit may not have
        landed, each at most what arrives within its linger plus ``CONNECTOR_SLACK_S`` (and
        no more than the platform's request limit). Every bound stays under half the
        events sent, or it could not fail."""
        ingest = self.size.rate * (COMMIT_INTERVAL_S + SLACK_S)
        linger = float(self.env["AUTHTRAIL_CONNECTOR_LINGER_SECONDS"])
        for name, duplicates in outcome.duplicates.items():
            platform, receiver = self.receivers[name]
            sink = build_sink(make_destination(name, "bound", platform.settings(receiver)))
            batch = min(sink.limits.max_entries, self.size.rate * (linger + CONNECTOR_SLACK_S))
            connector = (self.settings.connector_max_in_flight + 1) * batch
            bound = ingest_crashes * ingest + connector_crashes * connector
            assert bound <= self.size.events / 2, f"{name}: a bound ({bound:.0f}) that cannot fail"
            assert duplicates <= bound, f"{name}: {duplicates} duplicates, at most {bound:.0f}"

    # -- what the trail holds ------------------------------------------------------------
    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stored_count(self) -> int | None:
        """Events in the log view (timeline counts over all time), None while the API is
        down."""
        try:
            reply = httpx.get(
                f"{self.api}/api/v1/logs/timeline",
                params={"from": "2000-01-01T00:00:00Z", "to": "2200-01-01T00:00:00Z"},
                headers=self.headers,
                timeout=10,
            )
        except httpx.HTTPError:
            return None
        if reply.status_code != 200:
            return None
        return sum(b["success"] + b["failure"] for b in reply.json()["buckets"])

    def received(self) -> dict[str, Counter[str]]:
        """Deliveries per platform, by event id (read incrementally)."""
        for name, (platform, receiver) in self.receivers.items():
            entries = receiver.store.events()
            fresh = entries[self._seen[name] :]
            self._seen[name] = len(entries)
            self._received[name].update(platform.event_of(e)["event_id"] for e in fresh)
        return self._received

    def stored_ids(self) -> list[str]:
        """Every event id the log view shows, once per row, from the NDJSON export."""
        ids: list[str] = []
        with httpx.stream(
            "GET",
            f"{self.api}/api/v1/logs/export",
            params={
                "format": "ndjson",
                "from": "2000-01-01T00:00:00Z",
                "to": "2200-01-01T00:00:00Z",
            },
            headers=self.headers,
            timeout=120,
        ) as reply:
            assert reply.status_code == 200, reply.read()
            for line in reply.iter_lines():
                if line:
                    ids.append(orjson.loads(line)["event_id"])
        return ids

    def paged_ids(self) -> list[str]:
        """Every event id on every page of the Logs view, following ``next_cursor``."""
        ids: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {**ALL_TIME, "limit": 500}
            if cursor:
                params["cursor"] = cursor
            reply = httpx.get(
                f"{self.api}/api/v1/logs", params=params, headers=self.headers, timeout=60
            )
            assert reply.status_code == 200, reply.text
            page = reply.json()
            ids += [item["event_id"] for item in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                return ids

    def table_counts(self) -> tuple[int, int]:
        """``count()`` and ``uniqExact(event_id)`` of this run's rows in the log table
        itself (not through the view, which drops a twin before the merge does). The
        ingest worker is stopped first: the embedded store admits one process at a time."""
        self.ingest.stop()
        result = subprocess.run(
            [sys.executable, "-c", TABLE_COUNTS, self.run],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        rows, distinct = result.stdout.split()
        return int(rows), int(distinct)

    def settle_and_count(self, fault: str, recover_within_s: float | None = None) -> Outcome:
        """Waits for the stream to end and the trail to catch up, then counts. Raises
        when an event is lost or shown twice, and, with ``recover_within_s``, as soon as
        that long has passed since the last heal without every event stored and delivered
        everywhere (with what each consumer group is doing)."""
        last_heal = self._heals[-1][0] if self._heals else time.monotonic()
        expected = {self.event_id(i) for i in range(self.size.events)}
        recovery: list[float | None] = [None] * len(self._heals)
        deadline = time.monotonic() + self.size.settle_timeout_s
        while True:
            now = time.monotonic()
            stored = self.stored_count()
            distinct = {name: len(counts) for name, counts in self.received().items()}
            caught_up_to = min([stored if stored is not None else -1, *distinct.values()])
            for k, (healed_at, sent_then) in enumerate(self._heals):
                if recovery[k] is None and caught_up_to >= sent_then:
                    recovery[k] = now - healed_at
            done = self._producer_done.is_set() and caught_up_to >= self.size.events
            if done or now > deadline:
                break
            if recover_within_s is not None and now - last_heal > recover_within_s:
                raise AssertionError(
                    f"{fault}: {now - last_heal:.0f} s after the heal, stored {stored} and "
                    f"delivered {distinct} of {self.size.events} (sent {self._sent}):\n"
                    + self.describe_consumers()
                )
            time.sleep(0.5)
        assert self._producer_done.is_set(), "the stream did not end"
        assert not self._send_failures, self._send_failures[:5]
        stored_ids = self.stored_ids()
        paged = self.paged_ids()
        received = self.received()
        lost_view = expected - set(stored_ids)
        lost_platform = {name: expected - set(c) for name, c in received.items()}
        topics = self.settings.topics
        dead = count_records(
            self.broker.bootstrap,
            [topics.dlq, *(topics.destination_dlq(d) for d in self.destinations.values())],
        )
        outcome = Outcome(
            fault=fault,
            size=self.size.name,
            sent=self._sent,
            stored=len(set(stored_ids) & expected),
            view_duplicates=len(stored_ids) - len(set(stored_ids)),
            delivered={name: len(set(c) & expected) for name, c in received.items()},
            duplicates={name: sum(c.values()) - len(c) for name, c in received.items()},
            lost=len(lost_view | set().union(*lost_platform.values())),
            dead_lettered=dead,
            recovery_s=max((r for r in recovery if r is not None), default=None)
            if recovery and all(r is not None for r in recovery)
            else None,
        )
        RESULTS.append(outcome)
        assert outcome.sent == self.size.events
        assert not lost_view, f"{len(lost_view)} events missing from the log view"
        for name, missing in lost_platform.items():
            assert not missing, f"{len(missing)} events never reached {name}"
        assert outcome.view_duplicates == 0, "the export shows an event twice"
        assert len(paged) == len(set(paged)) == len(expected), "the pages show an event twice"
        rows, distinct = self.table_counts()
        assert rows == distinct == len(expected), f"the table holds {rows} rows of {distinct}"
        assert outcome.dead_lettered == 0, "a good event was dead-lettered"
        assert set(stored_ids) <= expected
        return outcome

    def describe_consumers(self) -> str:
        """Each destination's consumer group as Kafka has it (state, members and their
        partitions, committed against high watermarks), the connector's published status,
        and the connector process's last warnings: what a stall looks like from outside."""
        lines: list[str] = []
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        probe = probe_consumer(self.settings, f"faults-probe-{uuid.uuid4()}")
        try:
            with StatusBoard(self.settings) as board:
                time.sleep(1.0)  # the status topic read to its end
                published = board.published()
            for name, destination_id in self.destinations.items():
                group = self.groups[name]
                description = admin.describe_consumer_groups([group])[group].result(10)
                watermarks = topic_watermarks(self.settings, probe, 10)
                offsets = group_offsets(self.settings, admin, group, watermarks, 10)
                members = [
                    f"{m.client_id} {m.member_id[-8:]} holds "
                    + str(sorted(tp.partition for tp in m.assignment.topic_partitions))
                    for m in description.members
                ]
                lines.append(
                    f"- {name} ({destination_id}): group {description.state}, "
                    f"members [{'; '.join(members)}], partitions "
                    + ", ".join(f"{p}: {o.position}/{o.high}" for p, o in sorted(offsets.items()))
                )
                for status in published.get(destination_id, []):
                    shown = {k: status.get(k) for k in ("state", "partitions", "delivered")}
                    lines.append(f"  status {shown} last error {status.get('last_error')!r}")
        except Exception as exc:
            lines.append(f"(groups not described: {type(exc).__name__}: {exc})")
        finally:
            probe.close()
        warnings = [
            line
            for line in self.connectors.log_path.read_text(errors="replace").splitlines()
            if " WARNING " in line and "FAIL" not in line
        ]
        lines.append("connector warnings (last 20):")
        lines += [f"  {line[:300]}" for line in warnings[-20:]]
        return "\n".join(lines)


RESULTS: list[Outcome] = []
ALL_TIME = {"from": "2000-01-01T00:00:00Z", "to": "2200-01-01T00:00:00Z"}
# Run in a process of its own (chDB admits one data directory per process): this run's
# rows and distinct event ids in the log table, read straight from the table.
TABLE_COUNTS = """
import sys
from infra.clickhouse.client import connect
from schemas.log_store import location_of
from schemas.settings import Settings
location = location_of(Settings())
client = connect(location)
rows, distinct = client.query(
    f"SELECT count(), uniqExact(event_id) FROM {location.events_table} "
    "WHERE startsWith(event_id, {run:String})",
    parameters={"run": sys.argv[1] + "-"},
).result_rows[0]
print(rows, distinct)
"""


def count_records(bootstrap: str, topics: list[str]) -> int:
    """Records held in ``topics`` (high minus low watermark of each partition)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"faults-{uuid.uuid4()}"})
    try:
        metadata = consumer.list_topics(timeout=10)
        count = 0
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                count += high - low
        return count
    finally:
        consumer.close()


def summary_table(results: list[Outcome]) -> str:
    """The suite's figures as a Markdown table."""
    names = [p.name for p in ALL_PLATFORMS]
    lines = [
        "| fault | size | sent | stored (view) | delivered "
        + " / ".join(names)
        + " | duplicates "
        + " / ".join(names)
        + " | lost | recovery |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        recovery = f"{r.recovery_s:.1f} s" if r.recovery_s is not None else "n/a"
        lines.append(
            f"| {r.fault} | {r.size} | {r.sent:,} | {r.stored:,} | "
            + " / ".join(f"{r.delivered.get(n, 0):,}" for n in names)
            + " | "
            + " / ".join(f"{r.duplicates.get(n, 0):,}" for n in names)
            + f" | {r.lost} | {recovery} |"
        )
    return "\n".join(lines)
