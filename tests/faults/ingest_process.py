"""The ingest worker (with its query API) as ``authtrail up`` runs it, plus a switch for
the two store faults no outside action can cause on an embedded chDB:
``python -m tests.faults.ingest_process``.

The switch is the file named by ``AUTHTRAIL_TEST_STORE_FAULT`` (checked on every call):

* ``unreachable``: every call the writer makes goes to a clickhouse-connect client for an
  address where nothing listens, which raises the genuine connection-refused error a
  server URL pointing nowhere gives.
* ``disk_full``: inserts carry ``min_free_disk_bytes_to_perform_insert`` above any disk, so
  the engine itself refuses them with ``NOT_ENOUGH_SPACE`` (code 243), as when the disk
  is full.
* ``hold:<text>``: an insert whose data holds ``<text>`` (an event id) meets the
  connection-refused error of ``unreachable``; every other insert goes through. One batch
  is retried while the batches after it are stored: they finish out of order.
* empty or absent: no fault.

Only the writer's client is switched: the query API keeps answering, so the test can
watch the trail catch up. Everything else is the production code path."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

import authtrail.worker
import pipeline.chain
from authtrail.cli import setup_logging as _setup_logging
from infra.kafka.topic_admin import ensure_topics, wait_for_group_coordinator
from pipeline.store import EventWriter
from schemas.log_store import StoreLocation
from schemas.settings import Settings

FAULT_FILE_ENV = "AUTHTRAIL_TEST_STORE_FAULT"
# Far above any disk: the engine's free-space check fails on every insert.
_NO_DISK_IS_THIS_BIG = 10**18


def _dead_port() -> int:
    """A port where nothing listens (bound then released; nothing else takes it back in
    the moments it is used)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StoreFaultSwitch:
    """Reads the fault file; ``state()`` is "", "unreachable", "disk_full" or
    "hold:<text>"."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def state(self) -> str:
        try:
            return self._path.read_text().strip()
        except FileNotFoundError:
            return ""


class SwitchedClient:
    """The writer's client, with the switch in front of the two calls it makes."""

    def __init__(self, real: Client, switch: StoreFaultSwitch) -> None:
        self._real = real
        self._switch = switch
        self._dead_port = _dead_port()

    def _check_reachable(self, data: Any = None) -> None:
        state = self._switch.state()
        held = state.startswith("hold:") and state[5:].encode() in _as_bytes(data)
        if state == "unreachable" or held:
            clickhouse_connect.get_client(host="127.0.0.1", port=self._dead_port, connect_timeout=1)
            raise AssertionError(f"something answers on port {self._dead_port}")

    def query(self, *args: Any, **kwargs: Any) -> Any:
        self._check_reachable()
        return self._real.query(*args, **kwargs)

    def raw_insert(self, *args: Any, **kwargs: Any) -> Any:
        self._check_reachable(kwargs.get("insert_block"))
        if self._switch.state() == "disk_full":
            kwargs["settings"] = {
                **(kwargs.get("settings") or {}),
                "min_free_disk_bytes_to_perform_insert": _NO_DISK_IS_THIS_BIG,
            }
        return self._real.raw_insert(*args, **kwargs)

    def close(self) -> None:
        self._real.close()


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        return data.encode()
    return b""


def main() -> None:
    settings = Settings()
    _setup_logging(settings)
    switch = StoreFaultSwitch(Path(os.environ[FAULT_FILE_ENV]))

    class SwitchedWriter(EventWriter):
        def __init__(self, client: Client, location: StoreLocation) -> None:
            super().__init__(SwitchedClient(client, switch), location)  # type: ignore[arg-type]

    # The ingest path builds its writer in pipeline.chain: the switch goes in there.
    pipeline.chain.EventWriter = SwitchedWriter  # type: ignore[misc]
    ensure_topics(settings)
    wait_for_group_coordinator(settings, settings.ingest_group)
    sys.exit(authtrail.worker.run_worker(settings, with_api=True))


if __name__ == "__main__":
    main()
