"""HTTP ingest speed: ``POST /api/v1/events`` of one API process, beside ``authtrail
produce`` of the same events.

    .venv/bin/python -m bench.http_ingest_bench [--events 200000] [--batch 100] [--senders 16]

Against a genuine broker on this machine, one ``authtrail api`` process (its own embedded
store, rate limit off) takes demo events in NDJSON batches of 100 from ``--senders``
concurrent keep-alive connections of this process; an answer (202) means the brokers
acknowledged every event of the batch (``acks=all``). Measured from the first request to
the last answer: events/s accepted, and each request's latency (p50, p99). The peer is
``authtrail produce FILE`` of the same events in the same run, timed from its start to its
exit (a process's start included, as a user meets it)."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from authtrail.demo import DemoTraffic
from bench.figures import Figure, broker, free_port, percentile, scaled, write_results
from bench.ingest_bench import new_settings, worker_env
from query_api.tokens import create_token
from schemas.settings import Settings

AUTHTRAIL = str(Path(sys.executable).with_name("authtrail"))


def batches(events: int, size: int) -> list[bytes]:
    traffic = DemoTraffic(seed=23).events()
    lines = [next(traffic) for _ in range(events)]
    return [b"\n".join(lines[i : i + size]) for i in range(0, events, size)]


def start_api(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = {
        **worker_env(settings),
        "AUTHTRAIL_API_PORT": str(port),
        "AUTHTRAIL_API_RATE_LIMIT": "0",
    }
    process = subprocess.Popen(
        [AUTHTRAIL, "api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError("authtrail api did not start")


async def send_all(
    url: str, token: str, bodies: list[bytes], senders: int
) -> tuple[float, list[float]]:
    """Wall seconds for every batch accepted, and each request's seconds."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)

    async def sender(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            reply = await client.post(url, content=body, headers=headers)
            if reply.status_code != 202:
                raise RuntimeError(f"{reply.status_code}: {reply.text[:300]}")
            latencies.append(time.perf_counter() - started)

    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(sender(client) for _ in range(senders)))
        return time.perf_counter() - started, latencies


def produce_rate(settings: Settings, bodies: list[bytes], data: Path, events: int) -> float:
    path = data / "events.ndjson"
    path.write_bytes(b"\n".join(bodies) + b"\n")
    started = time.perf_counter()
    done = subprocess.run(
        [AUTHTRAIL, "produce", str(path)],
        env=worker_env(settings),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if f"{events} accepted" not in done.stdout:
        raise RuntimeError(f"authtrail produce: {done.stdout} {done.stderr}")
    return events / seconds


def run(events: int, batch: int = 100, senders: int = 16) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="authtrail-http-bench-") as tmp:
        data = Path(tmp)
        with broker(data) as bootstrap:
            settings = new_settings(data, bootstrap)
            token = create_token(settings, "producer", "bench")[0]
            bodies = batches(events, batch)
            port = free_port()
            api = start_api(settings, port)
            try:
                print(f"http ingest: {events:,} events in batches of {batch} ...", flush=True)
                url = f"http://127.0.0.1:{port}/api/v1/events"
                seconds, latencies = asyncio.run(send_all(url, token, bodies, senders))
            finally:
                api.terminate()
                api.wait(60)
            rate = events / seconds
            print(f"  {rate:,.0f}/s; authtrail produce of the same events ...", flush=True)
            peer = produce_rate(settings, bodies, data, events)
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    print(f"  produce {peer:,.0f}/s; request p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    what = f"one API process, {events:,} events, batches of {batch}, {senders} connections"
    return [
        Figure(
            "ingest_http.events_per_s",
            rate,
            "events/s",
            f"POST /api/v1/events, {what}, answered after acks=all",
            peer=peer,
            peer_name="authtrail produce of the same events (one process, start to exit)",
        ),
        Figure("ingest_http.request_p50_ms", p50, "ms", f"per request of {batch} events, {what}"),
        Figure("ingest_http.request_p99_ms", p99, "ms", f"per request of {batch} events, {what}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=scaled(200_000))
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--senders", type=int, default=16)
    args = parser.parse_args()
    write_results("ingest_http", run(args.events, args.batch, args.senders))


if __name__ == "__main__":
    main()
