"""`authtrail up` on the embedded default, as `make run` runs it: it starts its own Kafka
broker, stops everything on SIGTERM with exit 0, and a restart finds the old events; killed,
it leaves no process of its own behind."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import orjson

from tests import processes
from tests.integration.conftest import Authtrail, base_env, event, free_port, run_cli


def test_restart_keeps_events_and_collapses_redelivered_ones(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    env = base_env(
        data_dir,
        AUTHTRAIL_KAFKA_PORT=str(free_port()),
        AUTHTRAIL_KAFKA_CONTROLLER_PORT=str(free_port()),
        AUTHTRAIL_API_PORT=str(free_port()),
    )
    with Authtrail(data_dir, env) as authtrail:
        authtrail.start()
        first = [event("login.completed", account={"id": "acc_1"}) for _ in range(5)]
        assert "5 accepted" in authtrail.produce(first).stdout
        authtrail.wait_for_rows(5)
        assert authtrail.stop() == 0
        assert "Stopping the Kafka broker" in authtrail.log()
        assert run_cli(env, "kafka", "status").returncode == 1  # the broker stopped too

        authtrail.start()
        before = {i["event_id"] for i in authtrail.logs(limit=500)["items"]}
        assert before == {orjson.loads(e)["event_id"] for e in first}
        # A redelivery after the restart (the worker's memory of recent ids is gone):
        # the log store itself collapses it.
        authtrail.produce([first[0], event("login.failed")])
        items = authtrail.wait_for_rows(6)
        assert len(items) == 6
        assert authtrail.stop() == 0


def test_a_killed_worker_leaves_no_process_behind(authtrail: Authtrail) -> None:
    """`kill -9` gives the worker no chance to stop its normalizer children: they notice
    by themselves and end (nothing else would: they are adopted by PID 1)."""
    authtrail.start()
    assert authtrail.process is not None
    descendants = processes.descendants(authtrail.process.pid)
    assert any("multiprocessing" in command for command in descendants.values()), descendants
    authtrail.stop(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while (left := processes.alive(descendants)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, {pid: descendants[pid] for pid in left}
