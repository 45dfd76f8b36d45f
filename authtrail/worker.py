"""Wires the ingest worker process: the log store, the batch processor, the faust app
and, in the embedded set-up, the query API and the demo producer as services of the
same faust worker (one process, one event loop; chDB allows one process per data dir)."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any

import faust
from mode import Service
from prometheus_client import CollectorRegistry, make_asgi_app

from authtrail.demo import run_demo
from authtrail.health import Heartbeat, ProbeServer
from authtrail.produce import RawProducer
from connectors.runtime.supervisor import ConnectorRuntime
from infra.clickhouse.client import open_migrated
from infra.heap import TRIM_EVERY_S, release_free_heap
from pipeline.chain import ingest_chain
from pipeline.erasure import ErasureApplier, ErasureLog
from pipeline.metrics import IngestCollector, ingest_counters
from pipeline.retention import RetentionKeeper
from query_api.app import app_for
from query_api.server import ApiService
from schemas.settings import Settings

log = logging.getLogger(__name__)


class DemoService(Service):
    """Produces demo traffic in a thread while the worker runs."""

    def __init__(self, settings: Settings, rate: float, duration_s: float, **kw: Any) -> None:
        super().__init__(**kw)
        self._settings, self._rate, self._duration = settings, rate, duration_s
        self._stopping = False

    @Service.task
    async def _produce(self) -> None:
        producer = RawProducer(self._settings)
        loop = asyncio.get_running_loop()
        sent = await loop.run_in_executor(
            None, run_demo, producer.send, self._rate, self._duration, lambda: self._stopping
        )
        report = await loop.run_in_executor(None, producer.flush)
        log.info("demo traffic: %d events sent, %d accepted", sent, report.accepted)

    async def on_stop(self) -> None:
        self._stopping = True


class ConnectorService(Service):
    """The Stream side's connector runtime, in a thread of the worker process."""

    def __init__(self, runtime: ConnectorRuntime, **kw: Any) -> None:
        super().__init__(**kw)
        self._runtime = runtime
        self._thread = threading.Thread(target=self._runtime.run, name="connectors", daemon=True)

    async def on_start(self) -> None:
        self._thread.start()

    async def on_stop(self) -> None:
        self._runtime.stop()
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 90)


class StoreKeeperService(Service):
    """A keeper of the log store (``start()``, ``stop()``) running beside ingest: the
    accounts' retention, the erasures."""

    def __init__(self, keeper: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self._keeper = keeper

    async def on_start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._keeper.start)

    async def on_stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._keeper.stop)


class HeartbeatService(Service):
    """Beats ``heartbeat`` from the worker's event loop every second: the ingest
    process's liveness probe (``authtrail.health``)."""

    def __init__(self, heartbeat: Heartbeat, **kw: Any) -> None:
        super().__init__(**kw)
        self._heartbeat = heartbeat

    @Service.timer(1.0)
    async def _beat(self) -> None:
        self._heartbeat.beat()


class HeapTrimService(Service):
    """Returns the worker's free C heap to the kernel every ``TRIM_EVERY_S`` (see
    ``infra.heap``): ingest bursts, exports and large pages leave it behind."""

    @Service.timer(TRIM_EVERY_S)
    async def _trim(self) -> None:
        release_free_heap()


class Banner(Service):
    """Prints where to look once everything has started."""

    def __init__(self, lines: list[str], **kw: Any) -> None:
        super().__init__(**kw)
        self._lines = lines

    async def on_started(self) -> None:
        for line in self._lines:
            print(line, flush=True)


def run_worker(
    settings: Settings,
    *,
    with_api: bool,
    with_connectors: bool = False,
    demo_rate: float | None = None,
    demo_duration_s: float = 0.0,
    banner: list[str] | None = None,
) -> int:
    """Runs the ingest worker (and, with ``with_api``, the query API in-process) until
    SIGINT/SIGTERM. Returns the process exit code."""
    # Migrated before the worker starts: creating the table from the agent raced with the
    # first batch.
    retention = RetentionKeeper(settings).follow()
    account_days = retention.log.account_days()
    location = retention.location = open_migrated(settings, account_days)[0]
    # Refused at ingest: what no account keeps (the longest retention; a shorter one of an
    # account deletes its old events at the TTL's next pass).
    erasures = ErasureLog(settings).start()
    chain = ingest_chain(
        settings,
        location,
        max([settings.retention_days, *account_days.values()]),
        erasures=erasures.erasure_set,
    )
    app, processor, normalizer = chain.app, chain.processor, chain.normalizer
    services: list[Service] = [
        HeapTrimService(),
        StoreKeeperService(retention),
        StoreKeeperService(ErasureApplier(settings, location)),
    ]
    registry = CollectorRegistry()
    registry.register(IngestCollector(processor.stats, normalizer.stats))
    runtime = ConnectorRuntime(settings) if with_connectors else None
    if runtime is not None:
        registry.register(runtime.metrics())
    if with_api:
        api = app_for(
            settings,
            location,
            ingest_status=lambda: ingest_counters(processor.stats, normalizer.stats),
        )
        api.mount("/metrics", make_asgi_app(registry))
        services.append(ApiService(api, settings))
    elif settings.metrics_port:
        # No API in this process: probes and metrics on their own port.
        heartbeat = Heartbeat()
        services.append(HeartbeatService(heartbeat))
        probes = ProbeServer(
            settings.api_host,
            settings.metrics_port,
            registry,
            heartbeat.stalled,
            heartbeat.not_started,
            healthz_details=lambda: {"ingest": ingest_counters(processor.stats, normalizer.stats)},
        ).start()
        log.info("metrics and probes on port %d: /metrics, /livez, /readyz, /healthz", probes.port)
    if runtime is not None:
        services.append(ConnectorService(runtime))
    if demo_rate:
        services.append(DemoService(settings, demo_rate, demo_duration_s))
    if banner:
        services.append(Banner(banner))
    worker = faust.Worker(
        app,
        *services,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    worker.spinner = None  # it writes terminal escape codes into the log
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    else:
        code = 0
    finally:
        processor.close()
        erasures.stop()
    sys.stdout.flush()
    return code
