"""``authtrail connectors run`` and ``authtrail probe``."""

from __future__ import annotations

import signal
from types import FrameType

import click

from authtrail.cli.base import fail, load_settings, main, setup_logging


@main.group()
def connectors() -> None:
    """The Stream side: connector consumers."""


@connectors.command("run")
@click.option("--destination", "only", multiple=True, help="Only this destination (repeat).")
def connectors_run(only: tuple[str, ...]) -> None:
    """Run one consumer per enabled destination until Ctrl-C; follows changes live."""
    from authtrail.health import Heartbeat
    from connectors.runtime.supervisor import ConnectorRuntime

    settings = load_settings()
    setup_logging(settings)
    beat = Heartbeat()
    runtime = ConnectorRuntime(settings, only, beat=beat.beat)

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        runtime.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    if settings.metrics_port:
        from prometheus_client import CollectorRegistry

        from authtrail.health import ProbePortError, ProbeServer

        registry = CollectorRegistry()
        registry.register(runtime.metrics())
        try:
            ProbeServer(
                settings.api_host,
                settings.metrics_port,
                registry,
                beat.stalled,
                beat.not_started,
                healthz_details=lambda: {"stream": runtime.health()},
            ).start()
        except ProbePortError as exc:
            fail(str(exc))
        click.echo(
            f"metrics and probes: http://{settings.api_connect_host}:{settings.metrics_port}"
            "/metrics, /livez, /readyz"
        )
    runtime.run()


@main.command()
@click.argument("url")
@click.option("--timeout", default=3.0, show_default=True, help="Seconds.")
def probe(url: str, timeout: float) -> None:
    """Exit 0 when URL answers 2xx, else 1: a container health check that needs no curl
    (e.g. http://127.0.0.1:9464/readyz)."""
    import httpx

    try:
        reply = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        fail(f"{url}: {type(exc).__name__}")
    if not reply.is_success:
        fail(f"{url}: {reply.status_code} {reply.text[:200]}")
    click.echo(f"{url}: {reply.status_code}")
