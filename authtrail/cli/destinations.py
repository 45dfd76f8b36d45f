"""``authtrail destinations ...``: streaming destinations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from authtrail.cli.base import fail, load_settings, main, setup_logging
from schemas.platforms import PLATFORMS
from schemas.settings import Settings

if TYPE_CHECKING:
    from connectors.config import DestinationStore
    from schemas.destinations import Destination


@main.group()
def destinations() -> None:
    """Streaming destinations (stored in the authtrail.destinations topic)."""


def destination_store(settings: Settings) -> DestinationStore:
    from connectors.config import DestinationStore

    return DestinationStore(settings)


def _describe_destination(d: Destination) -> str:
    state = "paused" if d.paused else "suspended" if d.suspended_at else "enabled"
    return f"{d.id}  {d.platform:11}  {state:9}  {d.name}"


@destinations.command("add")
@click.argument("platform", type=click.Choice(PLATFORMS))
@click.option("--name", required=True, help="A name to recognise it by.")
@click.option(
    "--set",
    "values",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting (repeat); e.g. --set api_key=... --set filter.outcomes=failure "
    "--set transform.actor.email=hash",
)
def destinations_add(platform: str, name: str, values: tuple[str, ...]) -> None:
    """Add a destination; prints its id, then any secret authtrail made for it (a
    webhook's signing secret when none is given), once."""
    from schemas.destinations import DestinationError

    settings = load_settings()
    setup_logging(settings)
    pairs = setting_pairs(values)
    with destination_store(settings) as store:
        try:
            destination = store.add(platform, name, pairs)
        except DestinationError as exc:
            fail(f"invalid destination: {exc}")
    click.echo(destination.id)
    show_generated(destination.generated_secrets(pairs))


def show_generated(secrets: dict[str, str]) -> None:
    for key, value in secrets.items():
        click.echo(f"{key}: {value}")
        click.echo(
            f"  (shown once: give it to the receiver now; {key} is not shown again)", err=True
        )


def setting_pairs(values: tuple[str, ...]) -> dict[str, str | None]:
    pairs: dict[str, str | None] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            # Only the key: the value may be a secret.
            fail(f"--set takes KEY=VALUE, not {item.split('=')[0]!r}")
        pairs[key.strip()] = value
    return pairs


@destinations.command("update")
@click.argument("destination_id")
@click.option("--name", default=None, help="A new name.")
@click.option("--set", "values", multiple=True, metavar="KEY=VALUE", help="Change a setting.")
@click.option(
    "--unset", "unset", multiple=True, metavar="KEY", help="Put a setting back to its default."
)
def destinations_update(
    destination_id: str, name: str | None, values: tuple[str, ...], unset: tuple[str, ...]
) -> None:
    """Change a destination: only what is given. Stored secrets are kept, except when the
    change moves it (endpoint, site, URL, region, domain, verify_tls): then give every
    secret again with --set, as a stored secret is only sent where it was saved for."""
    from schemas.destinations import DestinationError, updated_destination

    settings = load_settings()
    setup_logging(settings)
    changes = {**setting_pairs(values), **dict.fromkeys((k.strip() for k in unset), None)}
    with destination_store(settings) as store:
        try:
            store.replace(updated_destination(store.require(destination_id), name, changes))
        except DestinationError as exc:
            fail(f"invalid destination: {exc}")
    click.echo(f"updated {destination_id}")


@destinations.command("rotate-secret")
@click.argument("destination_id")
@click.option(
    "--grace",
    "grace_s",
    type=click.IntRange(0, 30 * 86_400),
    default=86_400,
    show_default=True,
    help="Seconds the current secret still signs beside the new one.",
)
@click.option("--secret", default=None, help="The new secret (whsec_...); made when not given.")
def destinations_rotate_secret(destination_id: str, grace_s: int, secret: str | None) -> None:
    """Give a webhook a new signing secret; prints it, once. Requests carry both
    signatures for the grace period, so the receiver can switch over meanwhile."""
    from schemas.destinations import DestinationError, rotated_secret
    from schemas.events import utc_now_ms

    settings = load_settings()
    setup_logging(settings)
    with destination_store(settings) as store:
        try:
            current = store.require(destination_id)
            rotated, fresh = rotated_secret(current, utc_now_ms().timestamp(), grace_s, secret)
        except DestinationError as exc:
            fail(str(exc))
        store.replace(rotated)
    show_generated({"secret": fresh})


@destinations.command("list")
def destinations_list() -> None:
    """List destinations."""
    settings = load_settings()
    setup_logging(settings)
    with destination_store(settings) as store:
        for d in store.all():
            click.echo(_describe_destination(d))


@destinations.command("show")
@click.argument("destination_id")
def destinations_show(destination_id: str) -> None:
    """Show one destination (secrets redacted)."""
    import orjson

    from schemas.destinations import DestinationError

    settings = load_settings()
    setup_logging(settings)
    with destination_store(settings) as store:
        try:
            d = store.require(destination_id)
        except DestinationError as exc:
            fail(str(exc))
    shown = {
        "id": d.id,
        "name": d.name,
        "platform": d.platform,
        "paused": d.paused,
        "settings": d.redacted_settings(),
        "filter": d.filter.model_dump(),
        "transform": d.transform,
        "suspend_after": d.suspend_after_s,
        "suspended_at": d.suspended_at.isoformat() if d.suspended_at else None,
        "consumer_group": d.group_id,
        "dead_letter_topic": settings.topics.destination_dlq(d.id),
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
    }
    click.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())


def _change_destination(destination_id: str, action: str) -> None:
    from schemas.destinations import DestinationError

    settings = load_settings()
    setup_logging(settings)
    with destination_store(settings) as store:
        try:
            if action == "remove":
                store.remove(destination_id)
            else:
                store.set_paused(destination_id, action == "pause")
        except DestinationError as exc:
            fail(str(exc))
    done = {"remove": "removed", "pause": "paused", "resume": "resumed"}[action]
    click.echo(f"{done} {destination_id}")


@destinations.command("remove")
@click.argument("destination_id")
def destinations_remove(destination_id: str) -> None:
    """Remove a destination (its consumer group and dead letters stay in Kafka)."""
    _change_destination(destination_id, "remove")


@destinations.command("pause")
@click.argument("destination_id")
def destinations_pause(destination_id: str) -> None:
    """Pause delivery: the destination falls behind and resumes where it stopped."""
    _change_destination(destination_id, "pause")


@destinations.command("resume")
@click.argument("destination_id")
def destinations_resume(destination_id: str) -> None:
    """Resume delivery."""
    _change_destination(destination_id, "resume")


@destinations.command("manifests")
@click.option("--image", default="authtrail", show_default=True, help="The container image.")
@click.option(
    "--lag-threshold",
    type=click.IntRange(min=1),
    default=None,
    help="Events behind per replica before KEDA adds one (default 20,000).",
)
def destinations_manifests(image: str, lag_threshold: int | None) -> None:
    """Print Kubernetes manifests running each enabled destination on its own: a
    Deployment, a PodDisruptionBudget and a KEDA ScaledObject on its consumer-group lag
    (kubectl apply -f -). Use them instead of the shared authtrail-connectors."""
    from authtrail.kubernetes import DEFAULT_LAG_THRESHOLD, destination_connectors, to_yaml

    settings = load_settings()
    setup_logging(settings)
    with destination_store(settings) as store:
        manifests = destination_connectors(
            store.all(), settings, image, lag_threshold or DEFAULT_LAG_THRESHOLD
        )
    header = "# authtrail destinations manifests: one connector Deployment per destination\n"
    click.echo(to_yaml(manifests, header), nl=False)


@destinations.command("status")
@click.argument("destination_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def destinations_status(destination_id: str | None, as_json: bool) -> None:
    """State, lag, delivered, dead-lettered, retries, last success and last error."""

    import orjson

    from connectors.admin.status import StatusBoard
    from schemas.destinations import DestinationError

    settings = load_settings()
    setup_logging(settings)
    with destination_store(settings) as store:
        try:
            chosen = store.all() if destination_id is None else [store.require(destination_id)]
        except DestinationError as exc:
            fail(str(exc))
    with StatusBoard(settings) as board:
        rows = [board.summary(d) for d in chosen]
    if as_json:
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    for r in rows:
        click.echo(
            f"{r['id']}  {r['platform']:11}  {r['state']:11}  lag {r['lag']:>8}  "
            f"delivered {r['delivered']:>9}  dead-lettered {r['dead_lettered']:>6}  "
            f"retries {r['retries']:>6}  {r['name']}"
        )
        if r["last_error"]:
            click.echo(f"    last error: {r['last_error']}")
