"""``authtrail token create|list|revoke``: API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import click

from authtrail.cli.base import fail, load_settings, main, setup_logging
from schemas.tokens import Role

_DURATION_UNITS = {"d": 86_400, "h": 3_600, "m": 60}


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` as a timedelta; raises ``ValueError`` naming the format."""
    value, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit not in _DURATION_UNITS or not value.isdigit() or int(value) == 0:
        raise ValueError(f"{text!r} is not a duration like 90d, 12h or 30m")
    return timedelta(seconds=int(value) * _DURATION_UNITS[unit])


@main.group()
def token() -> None:
    """API tokens (stored hashed in the authtrail.tokens topic)."""


@token.command("create")
@click.option(
    "--role",
    type=click.Choice(["admin", "viewer", "producer"]),
    required=True,
    help="admin: everything; viewer: reads events; producer: writes events "
    "(POST /api/v1/events) and reads nothing.",
)
@click.option(
    "--account",
    default=None,
    help="A viewer sees only this account's events; a producer writes only this account's.",
)
@click.option("--name", default=None, help="What the token is for.")
@click.option(
    "--expires-in",
    default=None,
    metavar="DURATION",
    help="Stops working after this long: 90d, 12h, 30m (default: until revoked).",
)
def token_create(role: str, account: str | None, name: str | None, expires_in: str | None) -> None:
    """Create a token and print it (it is shown only once)."""
    from query_api.tokens import TokenLogError, create_token

    settings = load_settings()
    setup_logging(settings)
    expires_at = None
    if expires_in is not None:
        try:
            expires_at = datetime.now(UTC) + parse_duration(expires_in)
        except ValueError as exc:
            fail(f"--expires-in: {exc}")
    try:
        plaintext, record = create_token(
            settings,
            cast(Role, role),
            name or f"{role} token",
            account,
            expires_at,
        )
    except (TokenLogError, ValueError) as exc:
        fail(str(exc))
    click.echo(plaintext)
    scope = f", account {record.account}" if record.account else ""
    until = f", expires {record.expires_at:%Y-%m-%d %H:%M}Z" if record.expires_at else ""
    click.echo(
        f"id {record.id}, role {record.role}{scope}{until}. "
        f"Sign in: {settings.api_url}/login#token={plaintext}",
        err=True,
    )


@token.command("list")
def token_list() -> None:
    """List tokens (never their secrets)."""
    from query_api.tokens import TokenLog

    settings = load_settings()
    setup_logging(settings)
    with TokenLog(settings) as view:
        for r in view.records():
            if r.revoked_at:
                state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}Z"
            elif r.expires_at:
                state = f"{r.state} {r.expires_at:%Y-%m-%d %H:%M}Z"
            else:
                state = "active"
            click.echo(f"{r.id}  {r.role:6}  {r.account or '*':16}  {state:24}  {r.name}")


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke a token: it stops working, and its sessions end, within a moment."""
    from query_api.tokens import TokenLog, TokenLogError, revoke_token

    settings = load_settings()
    setup_logging(settings)
    with TokenLog(settings) as view:
        try:
            revoke_token(settings, view, token_id)
        except TokenLogError as exc:
            fail(str(exc))
    click.echo(f"revoked {token_id}")
