"""``authtrail up``: everything on one machine (what ``make run`` runs)."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from types import FrameType

import click

from authtrail.cli.base import fail, load_settings, main, setup_logging
from schemas.settings import Settings

log = logging.getLogger("authtrail")


class _Interrupted(Exception):
    pass


def _raise_interrupted(_signum: int, _frame: FrameType | None) -> None:
    raise _Interrupted


@main.command()
@click.option("--demo", is_flag=True, help="Also produce demo traffic.")
@click.option("--demo-rate", default=20.0, show_default=True, help="Demo events per second.")
def up(demo: bool, demo_rate: float) -> None:
    """Run the whole system: Kafka (embedded unless AUTHTRAIL_KAFKA_BOOTSTRAP is set),
    topics, the ingest worker with the log store and the query API, and the connectors,
    until Ctrl-C."""
    from authtrail.kafka_local import KafkaError, LocalKafka, port_in_use
    from authtrail.worker import run_worker
    from infra.kafka.topic_admin import ensure_topics, wait_for_group_coordinator
    from schemas.log_store import StoreUnavailableError

    settings = load_settings()
    setup_logging(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if port_in_use(settings.api_port, settings.api_connect_host):
        fail(f"port {settings.api_port} is already in use; set AUTHTRAIL_API_PORT")
    kafka = LocalKafka(settings) if settings.embedded_kafka else None
    started_broker = False
    # Until faust takes over the signals, a SIGTERM must still stop the broker we start.
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    code = 1
    try:
        if kafka is not None:
            started_broker = kafka.pid() is None
            click.echo(
                f"Starting Kafka {settings.kafka_version} on {kafka.bootstrap} ..."
                if started_broker
                else f"Using the running broker on {kafka.bootstrap}"
            )
            kafka.start()
        created = ensure_topics(settings)
        log.info("topics: %s", ", ".join(f"{k} ({v})" for k, v in created.items()))
        wait_for_group_coordinator(settings, settings.ingest_group)
        first_admin = _first_run_admin_token(settings)
        signal.signal(signal.SIGTERM, previous)
        sign_in = (
            f"  Sign in (first run; this admin token is shown once): "
            f"{settings.api_url}/login#token={first_admin}"
            if first_admin
            else "  Sign in with a token: authtrail token create --role admin|viewer"
        )
        banner = [
            "",
            f"authtrail is running: {settings.api_url}/",
            sign_in,
            f"  API: {settings.api_url}/api/v1/logs   OpenAPI: {settings.api_url}/docs",
            f"  Kafka: {settings.bootstrap_servers}   data: {settings.data_dir}",
            "  Ctrl-C stops everything.",
            "",
        ]
        code = run_worker(
            settings,
            with_api=True,
            with_connectors=True,
            demo_rate=demo_rate if demo else None,
            banner=banner,
        )
    except _Interrupted:
        code = 0
    except KeyboardInterrupt:
        code = 0
    except (KafkaError, StoreUnavailableError) as exc:
        click.echo(f"authtrail: {exc}", err=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if kafka is not None and started_broker:
            # Stop it first: the terminal (or a pipe reading our output) may be gone.
            with contextlib.suppress(OSError):
                click.echo("Stopping the Kafka broker ...")
            kafka.stop()
    sys.exit(code)


def _first_run_admin_token(settings: Settings) -> str | None:
    """Creates an admin token when the installation has no active one; returns it."""
    from query_api.tokens import TokenLog, create_token

    with TokenLog(settings) as view:
        if any(r.active and r.role == "admin" for r in view.records()):
            return None
    plaintext, _record = create_token(settings, "admin", "first admin (authtrail up)")
    return plaintext
