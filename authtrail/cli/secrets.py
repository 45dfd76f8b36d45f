"""``authtrail secrets rotate``: the installation's key."""

from __future__ import annotations

import click

from authtrail.cli.base import fail, load_settings, main, setup_logging
from authtrail.cli.destinations import destination_store


@main.group("secrets")
def secrets_group() -> None:
    """The installation's secret key (AUTHTRAIL_SECRET_KEY)."""


@secrets_group.command("rotate")
def secrets_rotate() -> None:
    """Re-seal every destination's secrets with the current key.

    To change the key: set the new one as AUTHTRAIL_SECRET_KEY and the old one as
    AUTHTRAIL_SECRET_KEY_PREVIOUS on every process and restart them, run this, then remove
    AUTHTRAIL_SECRET_KEY_PREVIOUS (sessions signed with the old key end then)."""
    from schemas.destinations import DestinationError

    settings = load_settings()
    setup_logging(settings)
    with destination_store(settings) as store:
        try:
            resealed = store.reseal()
        except DestinationError as exc:
            fail(str(exc))
    click.echo(f"re-sealed {len(resealed)} destination(s) with the current key")
    if settings.secret_key_previous is not None:
        click.echo("AUTHTRAIL_SECRET_KEY_PREVIOUS can now be removed from every process")
