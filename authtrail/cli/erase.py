"""``authtrail erase``: erase a person (GDPR Art. 17)."""

from __future__ import annotations

import getpass

import click

from authtrail.cli.base import fail, load_settings, main, setup_logging


@main.command("erase")
@click.option("--user", required=True, help="The person's user id or e-mail address.")
@click.option("--account", default=None, help="Only this account's events (default: all).")
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(0),
    default=120.0,
    show_default=True,
    help="Seconds to wait for the running ingest worker to apply it (0: do not wait).",
)
def erase(user: str, account: str | None, wait_s: float) -> None:
    """Replace the person's ids, e-mails, IP addresses and user agents by stable
    pseudonyms in their stored events, the destinations' dead letters and their events
    still to come. Idempotent. Exit 2 if it was not applied within --wait."""
    from infra.kafka.compacted import ConfigTopicError
    from pipeline.erasure import ErasureLog

    settings = load_settings()
    setup_logging(settings)
    try:
        with ErasureLog(settings) as view:
            record, new = view.request(user, account, f"cli:{getpass.getuser()}")
            if wait_s > 0:
                record = view.wait_applied(record.id, wait_s) or record
    except (ConfigTopicError, ValueError) as exc:
        fail(str(exc))
    scope = f" in account {record.account}" if record.account else ""
    seen = "" if new else " (erased before)"
    click.echo(f"erasure {record.id}{seen}: {record.subject}{scope}, {record.state}")
    if record.state == "applied":
        click.echo(f"  {record.events} stored events, {record.dead_letters} dead letters rewritten")
    elif wait_s > 0:
        click.echo("  not applied yet: is the ingest worker running? ('authtrail up')", err=True)
        raise SystemExit(2)
