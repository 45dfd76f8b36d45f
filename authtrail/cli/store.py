"""``authtrail store ddl|migrate``: the log store's schema."""

from __future__ import annotations

import click

from authtrail.cli.base import fail, load_settings, main, setup_logging


@main.group()
def store() -> None:
    """The log store's schema (ClickHouse or embedded chDB)."""


@store.command("ddl")
@click.option("--retention-days", type=int, default=None, help="Default: the setting.")
def store_ddl(retention_days: int | None) -> None:
    """Print every statement 'store migrate' would run on an empty database (for review)."""
    from schemas.log_store import StoreUnavailableError, ddl, location_of

    settings = load_settings()
    try:
        location = location_of(settings)
    except StoreUnavailableError as exc:
        fail(str(exc))
    for statement in ddl(location, retention_days or settings.retention_days):
        click.echo(" ".join(statement.split()) + ";")


@store.command("migrate")
def store_migrate() -> None:
    """Bring the log store's schema up to date, then exit (a deploy step: run it once
    before the workers on a cluster; they would otherwise each try)."""
    from infra.clickhouse.client import open_migrated
    from infra.kafka.compacted import ConfigTopicError
    from pipeline.retention import read_account_days
    from schemas.log_store import StoreUnavailableError, location_of

    settings = load_settings()
    setup_logging(settings)
    try:
        location = location_of(settings)
        # The TTL carries the accounts' own retention (from its topic: the broker must answer).
        applied = open_migrated(settings, read_account_days(settings))[1]
    except (StoreUnavailableError, ConfigTopicError) as exc:
        fail(str(exc))
    except Exception as exc:  # a server error: say which, never the URL's password
        message = str(exc).replace(location.url, location.safe_url)
        fail(f"migrating {location.safe_url} failed: {type(exc).__name__}: {message}"[:600])
    click.echo(f"log store at {location.safe_url}: applied {applied or 'nothing (up to date)'}")
