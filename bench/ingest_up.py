"""Ingest as a user meets it: ``authtrail up`` (what ``make run`` runs, without the demo)
running, events produced into it while it runs, timed until the last one is queryable.

    .venv/bin/python -m bench.ingest_up [--events 1000000] [--latency-seconds 300]

Two figures, each on a fresh ``authtrail up`` (its own data directory and topics):

* *throughput*: N demo events written to a JSON-lines file first (not timed), then
  ``authtrail produce FILE``; the clock runs from the start of the produce to the first
  time the API's timeline (``/api/v1/logs/timeline``, every bucket summed) counts N. After
  that, the resident memory of every process ``authtrail up`` runs (the broker excluded).
* *latency*: a steady 5,000 events/s for the whole window, counted from the first second
  (no warm-up excluded, no ``os.sync()`` before); one event in 25 is a probe with its own
  event key. A poller asks the API every 100 ms for the probes not seen yet, oldest
  first from the oldest unseen one, following the cursor to the last page (so a late
  probe is never hidden behind newer ones, and a probe never seen is reported), and
  records seen - produced. The poller is a user of the API: what it costs ``authtrail up``
  is in the figure, as a dashboard's refresh would be.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import Producer

from authtrail.demo import DemoTraffic
from bench.figures import (
    Figure,
    broker,
    free_port,
    percentile,
    scaled,
    terminate,
    write_results,
)
from schemas.topics import Topics

PYTHON = sys.executable
AUTHTRAIL = [str(Path(PYTHON).with_name("authtrail"))]
PROBE_KEY = "bench.probe"
TOKEN = re.compile(rb"login#token=(\S+)")


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def rss_mb(pids: list[int], exclude: str = "java") -> float:
    """The summed resident memory of ``pids``, without those whose command is ``exclude``
    (the Kafka broker, when ``authtrail up`` started it)."""
    total = 0
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == exclude:
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of ``pid``, summed by thread name."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Numbered pool threads (ThreadPoolExecutor, chDB's pools) as one.
        name = re.sub(r"[-_ ]?\d+$", "", name) or name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine (every core), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def java_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _comm(p) == "java"]


def _comm(proc: Path) -> str:
    try:
        return (proc / "comm").read_text().strip()
    except OSError:
        return ""


class CpuSplit:
    """Where the CPU went between ``start()`` and ``stop()``: per process of ``up`` (the
    worker's threads by name), the broker, and the rest of the machine."""

    def __init__(self, up: Up) -> None:
        self._up = up

    def _sample(self) -> dict[str, float]:
        out: dict[str, float] = {"machine": machine_cpu_seconds()}
        for pid in process_tree(self._up.process.pid):
            prefix = (
                "worker" if pid == self._up.process.pid else f"child {_comm(Path(f'/proc/{pid}'))}"
            )
            for thread, seconds in cpu_seconds(pid).items():
                key = f"{prefix}: {thread}" if prefix == "worker" else prefix
                out[key] = out.get(key, 0.0) + seconds
        for pid in java_pids():
            out["broker (java)"] = out.get("broker (java)", 0.0) + sum(cpu_seconds(pid).values())
        return out

    def start(self) -> None:
        self._before = self._sample()

    def stop(self, events: int, others: dict[str, float]) -> dict[str, float]:
        """Microseconds of CPU per event, by consumer of it (largest first); ``others``:
        CPU seconds of processes already gone (the producer)."""
        after = self._sample()
        spent = {k: v - self._before.get(k, 0.0) for k, v in after.items()} | others
        known = sum(v for k, v in spent.items() if k != "machine")
        spent["everything else on the machine"] = spent.pop("machine") - known
        return {
            k: round(v / events * 1e6, 1)
            for k, v in sorted(spent.items(), key=lambda kv: -kv[1])
            if v / events * 1e6 >= 0.5
        }


@dataclass
class Up:
    """A running ``authtrail up`` and an API client with its first admin token."""

    process: subprocess.Popen[bytes]
    api: httpx.Client
    env: dict[str, str]
    topic_raw: str

    def queryable(self) -> int:
        """Events the API counts (the timeline of all time, summed)."""
        # A day either side of now: the demo's events are stamped as they are made. (A
        # century-wide range made the API zero-fill ~1,000 buckets per look, on the
        # worker's own interpreter.)
        now = datetime.now(UTC)
        reply = self.api.get(
            "/api/v1/logs/timeline",
            params={
                "from": (now - timedelta(days=1)).isoformat(),
                "to": (now + timedelta(days=1)).isoformat(),
            },
        )
        reply.raise_for_status()
        return sum(b["success"] + b["failure"] for b in reply.json()["buckets"])

    def rss_mb(self) -> float:
        return rss_mb(process_tree(self.process.pid))

    def rss_by_process(self) -> dict[str, float]:
        """Resident MB of each process of ``up`` but the broker, by role."""
        out: dict[str, float] = {}
        for pid in process_tree(self.process.pid):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            role = (
                "worker"
                if pid == self.process.pid
                else "normalizer"
                if b"spawn_main" in command
                else "multiprocessing tracker"
                if b"resource_tracker" in command
                else command.decode(errors="replace")[:40]
            )
            if b"java" not in command:
                out[role] = out.get(role, 0.0) + rss_mb([pid])
        return out


@contextmanager
def authtrail_up(data: Path, bootstrap: str) -> Iterator[Up]:
    """``authtrail up`` on the bench's broker, its own data directory and topics; yields
    once the API answers with the admin token ``up`` printed."""
    prefix = f"up{uuid.uuid4().hex[:6]}."
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHTRAIL_")}
    env.update(
        {
            "AUTHTRAIL_DATA_DIR": str(data / prefix.rstrip(".")),
            "AUTHTRAIL_KAFKA_BOOTSTRAP": bootstrap,
            "AUTHTRAIL_TOPIC_PREFIX": prefix,
            "AUTHTRAIL_API_PORT": str(port),
            "AUTHTRAIL_METRICS_PORT": "0",
            "AUTHTRAIL_LOG_LEVEL": "WARNING",
        }
    )
    process = subprocess.Popen([*AUTHTRAIL, "up"], env=env, stdout=subprocess.PIPE)
    assert process.stdout is not None
    token = None
    try:
        for line in process.stdout:
            found = TOKEN.search(line)
            if found:
                token = found.group(1).decode()
                break
        if token is None:
            raise RuntimeError(f"authtrail up exited ({process.wait()}) without a token")
        threading.Thread(target=process.stdout.read, daemon=True).start()  # drain it
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                if api.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("authtrail up never became ready")
            time.sleep(0.5)
        yield Up(process, api, env, Topics.with_prefix(prefix).raw)
    finally:
        terminate(process, 120)


def throughput(data: Path, bootstrap: str, events: int) -> dict[str, Any]:
    """N events produced into a running ``authtrail up``; first produce to last
    queryable, and the memory of ``up`` afterwards."""
    source = data / "events.jsonl"
    traffic = DemoTraffic(seed=17).events()
    with source.open("wb") as out:
        for _ in range(events):
            out.write(next(traffic) + b"\n")
    with authtrail_up(data, bootstrap) as up:
        rss_before = up.rss_mb()
        split = CpuSplit(up)
        split.start()
        started = time.monotonic()
        produce = subprocess.Popen([*AUTHTRAIL, "produce", str(source)], env=up.env)
        count, produced_at, peak, produce_cpu = 0, None, rss_before, 0.0
        while count < events:
            time.sleep(0.25)
            peak = max(peak, up.rss_mb())
            if produced_at is None:
                # wait4, not poll(): the rusage of the produce process is in the split.
                pid, status, usage = os.wait4(produce.pid, os.WNOHANG)
                if pid:
                    produced_at = time.monotonic() - started
                    produce_cpu = usage.ru_utime + usage.ru_stime
                    if os.waitstatus_to_exitcode(status) != 0:
                        raise RuntimeError(f"authtrail produce exited {status}")
            count = up.queryable()
        elapsed = time.monotonic() - started
        cpu = split.stop(events, {"authtrail produce": produce_cpu})
        # What the system keeps once the work is done (freed memory goes back to the
        # kernel within seconds: chDB's allocator decays dirty pages after 5-10 s).
        time.sleep(15)
        rss = up.rss_mb()
        by_process = up.rss_by_process()
    return {
        "events_per_s": events / elapsed,
        "seconds": elapsed,
        "produce_s": produced_at or elapsed,
        "rss_mb": rss,
        "rss_peak_mb": peak,
        "rss_started_mb": rss_before,
        "rss_by_process_mb": {k: round(v) for k, v in by_process.items()},
        "cpu_us_per_event": cpu,
    }


def probe_value(value: bytes) -> bytes:
    event = orjson.loads(value)
    event["event_key"] = PROBE_KEY
    event.pop("outcome", None)
    return orjson.dumps(event)


class ProbeWatcher(threading.Thread):
    """Asks the API every ``every_s`` for the probes not seen yet: oldest first, from the
    oldest unseen probe's produce time (less 2 s of slack), following the cursor to the
    last page, so a late probe is never hidden behind newer ones."""

    def __init__(self, up: Up, every_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self._up, self._every = up, every_s
        self.produced: dict[str, float] = {}  # event id -> wall clock when produced
        self.seen: dict[str, float] = {}  # event id -> wall clock when first seen
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stop.is_set():
            asked = time.time()
            with self.lock:
                unseen = [at for i, at in self.produced.items() if i not in self.seen]
            if unseen:
                self._poll(datetime.fromtimestamp(min(unseen) - 2, UTC))
            self.stop.wait(max(0.0, self._every - (time.time() - asked)))

    def _poll(self, since: datetime) -> None:
        params: dict[str, str | int] = {
            "type": PROBE_KEY,
            "from": since.isoformat(),
            "order": "asc",
            "limit": 500,
        }
        while True:
            reply = self._up.api.get("/api/v1/logs", params=params)
            now = time.time()
            reply.raise_for_status()
            page = reply.json()
            with self.lock:
                for row in page["items"]:
                    self.seen.setdefault(row["event_id"], now)
            if not page["next_cursor"]:
                return
            params["cursor"] = page["next_cursor"]


def latency(data: Path, bootstrap: str, rate: int, seconds: float) -> dict[str, float]:
    """Produce -> queryable at a steady ``rate`` for ``seconds``, all of it counted."""
    with authtrail_up(data, bootstrap) as up:
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        traffic = DemoTraffic(seed=19).events()
        watcher = ProbeWatcher(up)
        watcher.start()
        tick, n = 0.01, 0
        start = time.monotonic()
        deadline = start + seconds
        per_tick = max(1, round(rate * tick))
        while time.monotonic() < deadline:
            for _ in range(per_tick):
                value = next(traffic)
                if n % 25 == 0:
                    value = probe_value(value)
                    with watcher.lock:
                        watcher.produced[orjson.loads(value)["event_id"]] = time.time()
                producer.produce(up.topic_raw, value)
                n += 1
            producer.poll(0)
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
        producer.flush(30)
        time.sleep(10)  # the last probes become queryable
        watcher.stop.set()
        watcher.join()
    produced, seen = watcher.produced, watcher.seen
    latencies = sorted(seen[event_id] - at for event_id, at in produced.items() if event_id in seen)
    missing = len(produced) - len(latencies)
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": latencies[-1] * 1000,
        "probes": len(latencies),
        "missing": missing,
        "events": n,
    }


def run(events: int, latency_seconds: float) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="authtrail-up-bench-") as tmp:
        data = Path(tmp)
        with broker(data) as bootstrap:
            print(f"ingest (authtrail up): producing {events:,} events into it ...", flush=True)
            up = throughput(data, bootstrap, events)
            print(f"  {up}", flush=True)
            print(f"  latency at 5,000/s for {latency_seconds:.0f} s ...", flush=True)
            lat = latency(data, bootstrap, 5000, latency_seconds)
            print(f"  {lat}", flush=True)
    return [
        Figure(
            "ingest.up.events_per_s",
            up["events_per_s"],
            "events/s",
            f"authtrail up, {events:,} events produced into it while it runs, "
            "first produce -> last queryable",
            target="≥ 25,000/s",
            met=up["events_per_s"] >= 25_000,
        ),
        Figure(
            "ingest.up.rss_mb",
            up["rss_mb"],
            "MB",
            f"authtrail up, all its processes but the broker, 15 s after {events:,} events "
            f"(at start {up['rss_started_mb']:,.0f} MB, peak while ingesting "
            f"{up['rss_peak_mb']:,.0f} MB)",
            target="< 800 MB",
            met=up["rss_mb"] < 800,
        ),
        Figure(
            "ingest.up.latency_p50_ms",
            lat["p50_ms"],
            "ms",
            f"authtrail up, produce -> queryable at 5,000 events/s, {latency_seconds:.0f} s "
            f"all counted ({lat['probes']:,} probes, {lat['missing']} never seen)",
        ),
        Figure(
            "ingest.up.latency_p99_ms",
            lat["p99_ms"],
            "ms",
            f"as above, p99 (max {lat['max_ms']:,.0f} ms)",
            target="< 1,000 ms, no probe missing",
            met=lat["p99_ms"] < 1000 and lat["missing"] == 0,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=scaled(1_000_000))
    parser.add_argument("--latency-seconds", type=float, default=max(30.0, scaled(300)))
    args = parser.parse_args()
    write_results("ingest_up", run(args.events, args.latency_seconds))


if __name__ == "__main__":
    main()
