"""Probes and metrics for the processes without a query API (``authtrail ingest``,
``authtrail connectors run``), on ``AUTHTRAIL_METRICS_PORT``, for Kubernetes and Prometheus:

* ``/livez``: 200 while the process's main loop keeps turning; 503 with the reason once it
  has been stuck for ``STALL_S`` (a liveness probe then restarts it).
* ``/readyz`` (and ``/healthz``): 200 once the process does its work; 503 with the reason
  before (a readiness probe holds a rollout back until then). ``/healthz`` adds the
  process's ``healthz_details`` (the ingest worker's counters, as the API's ``/healthz``
  reports them when it runs inside the worker).
* ``/metrics``: the Prometheus registry.

A store or platform outage is not a liveness failure: the process is waiting correctly
(lag, not loss), and a restart would only add a rebalance."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

# A loop that has not turned for this long is stuck (the ingest loop turns every second,
# the connector runtime's every half second).
STALL_S = 60.0

Check = Callable[[], str | None]  # None when fine, else the reason


class Heartbeat:
    """Beaten by a process's main loop; ``stalled()`` says whether it stopped turning."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._at: float | None = None

    def beat(self) -> None:
        self._at = self._clock()

    def stalled(self) -> str | None:
        """None while the loop turns (or has not started yet), else the reason."""
        if self._at is None:
            return None
        idle = self._clock() - self._at
        return f"main loop stalled for {idle:.0f} s" if idle > STALL_S else None

    def not_started(self) -> str | None:
        return None if self._at is not None else "starting"


class ProbePortError(RuntimeError):
    """The probes' port cannot be bound (in use, or not ours to take)."""


class ProbeServer:
    """Serves the probes and metrics from a daemon thread; see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        live: Check,
        ready: Check,
        healthz_details: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        probes: dict[str, Check] = {"/livez": live, "/readyz": ready, "/healthz": ready}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path in probes:
                    problem = probes[path]()
                    body: dict[str, object] = {"status": "ok" if problem is None else problem}
                    if path == "/healthz" and healthz_details is not None:
                        body.update(healthz_details())
                    self._reply(200 if problem is None else 503, orjson.dumps(body))
                else:
                    self._reply(404, b'{"status": "not found"}')

            def _reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # probes every few seconds would drown the log

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise ProbePortError(
                f"cannot serve probes and metrics on {host}:{port} ({exc.strerror}): set "
                "AUTHTRAIL_METRICS_PORT to a free port, or 0 for none"
            ) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="probes", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> ProbeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
