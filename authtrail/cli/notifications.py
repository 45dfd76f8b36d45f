"""``authtrail notifications ...``: where destination state changes are told."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from authtrail.cli.base import fail, load_settings, main, setup_logging
from authtrail.cli.destinations import setting_pairs, show_generated
from schemas.notifications import CHANNEL_KINDS

if TYPE_CHECKING:
    from connectors.notify.channels import ChannelStore
    from schemas.settings import Settings


@main.group()
def notifications() -> None:
    """Notification channels: a signed webhook per channel, told every state change of a
    destination (healthy, failing, stalled, auth_failed, suspended), at most one message per
    destination per AUTHTRAIL_NOTIFICATION_INTERVAL_SECONDS."""


def channel_store(settings: Settings) -> ChannelStore:
    from connectors.notify.channels import ChannelStore

    return ChannelStore(settings)


@notifications.command("add")
@click.argument("kind", type=click.Choice(CHANNEL_KINDS))
@click.option("--name", required=True, help="A name to recognise it by.")
@click.option(
    "--set",
    "values",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting (repeat): url=..., secret=whsec_... (made when not given), "
    "headers.NAME=VALUE, verify_tls=false",
)
def notifications_add(kind: str, name: str, values: tuple[str, ...]) -> None:
    """Add a channel; prints its id, then its signing secret when authtrail made it."""
    from schemas.destinations import DestinationError

    settings = load_settings()
    setup_logging(settings)
    pairs = setting_pairs(values)
    with channel_store(settings) as store:
        try:
            channel = store.add(kind, name, pairs)
        except DestinationError as exc:
            fail(f"invalid notification channel: {exc}")
    click.echo(channel.id)
    if not pairs.get("secret"):
        show_generated({"secret": channel.settings.secret.get_secret_value()})


@notifications.command("list")
def notifications_list() -> None:
    """List channels (the URL's host only: a URL may carry a token)."""
    from urllib.parse import urlsplit

    settings = load_settings()
    setup_logging(settings)
    with channel_store(settings) as store:
        for channel in store.all():
            host = urlsplit(channel.settings.url).netloc
            click.echo(f"{channel.id}  {channel.kind:8}  {host:30}  {channel.name}")


@notifications.command("remove")
@click.argument("channel_id")
def notifications_remove(channel_id: str) -> None:
    """Remove a channel."""
    from schemas.destinations import DestinationError

    settings = load_settings()
    setup_logging(settings)
    with channel_store(settings) as store:
        try:
            store.remove(channel_id)
        except DestinationError as exc:
            fail(str(exc))
    click.echo(f"removed {channel_id}")


@notifications.command("test")
@click.argument("channel_id")
def notifications_test(channel_id: str) -> None:
    """Send a test message now; exits 1 when the channel does not take it."""
    from connectors.notify.notifier import tell, test_message

    settings = load_settings()
    setup_logging(settings)
    with channel_store(settings) as store:
        channel = store.get(channel_id)
    if channel is None:
        fail(f"no notification channel {channel_id}")
    problem = tell(channel, test_message())
    if problem is not None:
        fail(f"not delivered: {problem}")
    click.echo("delivered")
