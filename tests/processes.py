"""The suite's check that it leaves no process behind.

Every process the suite starts, directly or through others (``authtrail up``, its
normalizer children, the Kafka brokers, receivers), inherits one environment variable
naming this run; environments built for subprocesses keep it (it does not start with
``AUTHTRAIL_``, which they strip). When the session ends, ``tests/conftest.py`` looks for
any process still carrying the mark, wherever it was re-parented (an orphan's parent is
PID 1, so "children of pytest" would miss exactly the leaks that matter), lets them
finish for a while, then names, kills and fails on whatever is left."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MARK = "TESTRUN_AUTHTRAIL"
PROC = Path("/proc")
# multiprocessing's helper of this very process: it ends when this process does.
RESOURCE_TRACKER = "multiprocessing.resource_tracker"


def mark_session() -> str:
    """Marks this process (and so everything it starts from now on) as this run's."""
    value = os.environ.get(MARK) or uuid.uuid4().hex
    os.environ[MARK] = value
    return value


@dataclass(frozen=True)
class Survivor:
    pid: int
    ppid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} (parent {self.ppid}): {self.command[:200]}"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of ``pid``; None when it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name in stat is parenthesised and may hold spaces: split after it.
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


def _command(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def alive(pids: Iterable[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie has ended: it only awaits its reaping)."""
    return [pid for pid in pids if (stat := _stat(pid)) is not None and stat[0] != "Z"]


def descendants(pid: int) -> dict[int, str]:
    """Every live process below ``pid``, children's children included: pid -> command."""
    parents = {p: stat[1] for p in _pids() if (stat := _stat(p)) is not None and stat[0] != "Z"}
    below: dict[int, str] = {}
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        below.update((child, _command(child)) for child in frontier)
    return below


def survivors(run: str) -> list[Survivor]:
    """Live processes (zombies excluded) marked with ``run``, other than this process and
    its own multiprocessing resource tracker."""
    needle = f"{MARK}={run}".encode()
    found: list[Survivor] = []
    me = os.getpid()
    for pid in _pids():
        try:
            marked = needle in (PROC / str(pid) / "environ").read_bytes().split(b"\0")
        except OSError:  # ended meanwhile, or not ours to read
            continue
        stat = _stat(pid)
        if not marked or pid == me or stat is None or stat[0] == "Z":
            continue
        command = _command(pid)
        if stat[1] == me and RESOURCE_TRACKER in command:
            continue
        found.append(Survivor(pid, stat[1], command))
    return found


def reap(run: str, grace_s: float) -> list[Survivor]:
    """Waits up to ``grace_s`` for the run's processes to end, then SIGKILLs those left
    and returns them (empty: the run left nothing behind)."""
    deadline = time.monotonic() + grace_s
    left = survivors(run)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = survivors(run)
    for process in left:
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGKILL)
    return left
