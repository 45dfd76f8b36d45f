"""The single-role processes and tools: ``ingest``, ``api``, ``produce``, ``dlq``, ``demo``."""

from __future__ import annotations

import sys
from typing import BinaryIO

import click

from authtrail.cli.base import fail, load_settings, main, setup_logging


@main.command()
def ingest() -> None:
    """Run the faust ingest worker alone (no query API; probes and metrics on
    AUTHTRAIL_METRICS_PORT)."""
    from authtrail.health import ProbePortError
    from authtrail.worker import run_worker
    from schemas.log_store import StoreUnavailableError

    settings = load_settings()
    setup_logging(settings)
    try:
        sys.exit(run_worker(settings, with_api=False))
    except (StoreUnavailableError, ProbePortError) as exc:
        fail(str(exc))


@main.command()
def api() -> None:
    """Run the query API alone (for a ClickHouse server; with embedded chDB the API runs
    inside the worker: use 'authtrail up')."""
    import uvicorn

    from infra.clickhouse.client import open_migrated
    from infra.kafka.compacted import ConfigTopicError
    from pipeline.retention import read_account_days
    from query_api.app import app_for
    from query_api.server import server_config
    from schemas.log_store import StoreUnavailableError

    settings = load_settings()
    setup_logging(settings)
    try:
        # The accounts' own retention: the migration must not reset the TTL to the default.
        location = open_migrated(settings, read_account_days(settings))[0]
    except (StoreUnavailableError, ConfigTopicError) as exc:
        fail(str(exc))
    click.echo(f"Query API on {settings.api_url}")
    app = app_for(settings, location)
    uvicorn.Server(server_config(app, settings)).run()


@main.command()
@click.argument("file", type=click.File("rb"))
def produce(file: BinaryIO) -> None:
    """Produce raw events from a JSON-lines FILE ('-' for stdin)."""
    from authtrail.produce import RawProducer, json_lines

    settings = load_settings()
    setup_logging(settings)
    producer = RawProducer(settings)
    producer.send_all(json_lines(file))
    report = producer.flush()
    click.echo(
        f"{report.accepted} accepted, {report.failed} failed"
        + (f" ({report.first_error})" if report.first_error else "")
    )
    sys.exit(1 if report.failed else 0)


@main.group()
def dlq() -> None:
    """The ingest dead-letter topic."""


@dlq.command("show")
@click.option("--limit", default=20, show_default=True, help="Most dead letters to show.")
def dlq_show(limit: int) -> None:
    """Show dead letters with their reasons (oldest first)."""
    from authtrail import dlq as dead_letters

    settings = load_settings()
    setup_logging(settings)
    letters = dead_letters.show(settings, limit)
    for letter in letters:
        click.echo(f"{letter.dead_lettered_at}  {letter.source}  {letter.reason}")
        click.echo(f"    {letter.value[:200].decode(errors='replace')}")
    click.echo(f"{len(letters)} dead letter(s)")


@dlq.command("replay")
def dlq_replay() -> None:
    """Re-produce every dead letter not replayed before to the raw topic."""
    from authtrail import dlq as dead_letters

    settings = load_settings()
    setup_logging(settings)
    replayed, accepted = dead_letters.replay(settings)
    click.echo(f"{replayed} replayed, {accepted} accepted")


@main.command()
@click.option("--rate", default=50.0, show_default=True, help="Events per second.")
@click.option("--duration", default=60.0, show_default=True, help="Seconds; 0 runs until Ctrl-C.")
@click.option("--seed", type=int, default=None, help="Seed for reproducible traffic.")
def demo(rate: float, duration: float, seed: int | None) -> None:
    """Produce realistic synthetic auth traffic."""
    from authtrail.demo import run_demo
    from authtrail.produce import RawProducer

    settings = load_settings()
    setup_logging(settings)
    producer = RawProducer(settings)
    try:
        sent = run_demo(producer.send, rate, duration, seed=seed)
    except KeyboardInterrupt:
        sent = producer.report.accepted
    report = producer.flush()
    click.echo(f"{sent} sent, {report.accepted} accepted, {report.failed} failed")
