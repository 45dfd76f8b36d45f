"""``authtrail retention set|unset|list``: how long each account's events are kept."""

from __future__ import annotations

import getpass

import click

from authtrail.cli.base import fail, load_settings, main, setup_logging


@main.group()
def retention() -> None:
    """Accounts' own retention (default: AUTHTRAIL_RETENTION_DAYS)."""


@retention.command("set")
@click.option("--account", required=True, help="The account id.")
@click.option("--days", type=click.IntRange(1, 36_500), required=True)
def retention_set(account: str, days: int) -> None:
    """Keep ACCOUNT's events DAYS days. The running ingest worker applies it to the log
    store within seconds, to the events already stored too (older ones are deleted)."""
    from infra.kafka.compacted import ConfigTopicError
    from pipeline.retention import RetentionLog

    settings = load_settings()
    setup_logging(settings)
    try:
        with RetentionLog(settings) as view:
            view.set(account.strip(), days, f"cli:{getpass.getuser()}")
    except (ConfigTopicError, ValueError) as exc:
        fail(str(exc))
    click.echo(f"account {account.strip()}: {days} days (default {settings.retention_days})")


@retention.command("unset")
@click.option("--account", required=True, help="The account id.")
def retention_unset(account: str) -> None:
    """Return ACCOUNT to the default retention."""
    from infra.kafka.compacted import ConfigTopicError
    from pipeline.retention import RetentionLog

    settings = load_settings()
    setup_logging(settings)
    try:
        with RetentionLog(settings) as view:
            view.unset(account.strip())
    except ConfigTopicError as exc:
        fail(str(exc))
    click.echo(f"account {account.strip()}: the default, {settings.retention_days} days")


@retention.command("list")
def retention_list() -> None:
    """The default and each account with its own retention."""
    from infra.kafka.compacted import ConfigTopicError
    from pipeline.retention import RetentionLog

    settings = load_settings()
    setup_logging(settings)
    try:
        with RetentionLog(settings) as view:
            records = view.records()
    except ConfigTopicError as exc:
        fail(str(exc))
    click.echo(f"default\t{settings.retention_days} days")
    for r in records:
        click.echo(f"{r.account}\t{r.days} days\tset by {r.set_by} {r.set_at:%Y-%m-%d %H:%M}Z")
