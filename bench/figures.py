"""What every benchmark reports: figures with the peer or limit measured in the same run,
printed as one markdown table and written as JSON (name -> value, unit, peer, ratio)."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure. ``peer`` is the peer's or the limit's value for the same
    thing in the same run (None when there is none); ``met`` is whether ``target`` is."""

    name: str
    value: float
    unit: str
    what: str
    peer: float | None = None
    peer_name: str = ""
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        return self.value / self.peer if self.peer else None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def scale() -> float:
    """``BENCH_SCALE`` (default 1): every size is multiplied by it for a quick run."""
    return float(os.environ.get("BENCH_SCALE", "1"))


def scaled(size: float) -> int:
    return max(1, int(size * scale()))


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (inclusive method: within their range)."""
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def terminate(process: subprocess.Popen[Any], timeout_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not exited within ``timeout_s``."""
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def broker(data: Path) -> Iterator[str]:
    """A genuine local broker for the run, or the one AUTHTRAIL_KAFKA_BOOTSTRAP names."""
    bootstrap = os.environ.get("AUTHTRAIL_KAFKA_BOOTSTRAP")
    if bootstrap:
        yield bootstrap
        return
    from authtrail.kafka_local import LocalKafka
    from schemas.settings import Settings

    kafka = LocalKafka(
        Settings(data_dir=data, kafka_port=free_port(), kafka_controller_port=free_port())
    )
    kafka.start()
    try:
        yield kafka.bootstrap
    finally:
        kafka.stop()


def accept_rate(
    make_sender: Callable[[], Callable[[], int]], seconds: float = 5.0, threads: int = 4
) -> float:
    """A receiver's own accept rate: ``threads`` threads, each with its own sender (a
    callable sending one pre-built request and returning how many events it accepted),
    for ``seconds``. Returns accepted events per second."""
    accepted = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def blast() -> None:
        nonlocal accepted
        send = make_sender()
        while time.monotonic() < deadline:
            count = send()
            with lock:
                accepted += count

    started = time.monotonic()
    workers = [threading.Thread(target=blast) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return accepted / (time.monotonic() - started)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} vCPU {cpu}, {memory_gb:.0f} GB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def _number(value: float, unit: str) -> str:
    if unit in ("ms",):
        return f"{value:,.1f}"
    if unit == "x":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def table(figures: list[Figure]) -> str:
    lines = [
        "| figure | value | peer / limit (same run) | ratio | target | met |",
        "|---|---:|---|---:|---|:-:|",
    ]
    for f in figures:
        peer = f"{_number(f.peer, f.unit)} ({f.peer_name})" if f.peer is not None else ""
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else ""
        met = "" if f.met is None else ("yes" if f.met else "**no**")
        lines.append(
            f"| {f.name} — {f.what} | {_number(f.value, f.unit)} {f.unit} | {peer} | "
            f"{ratio} | {f.target} | {met} |"
        )
    return "\n".join(lines)


def write_results(name: str, figures: list[Figure]) -> Path:
    """Prints the table and writes ``results/<name>.json``; returns its path."""
    print(table(figures), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(
        json.dumps(
            {
                "machine": machine(),
                "scale": scale(),
                "figures": {f.name: f.as_json() for f in figures},
            },
            indent=2,
        )
        + "\n"
    )
    return out
