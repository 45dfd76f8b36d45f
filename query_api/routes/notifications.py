"""Notification channels: where destination state changes are told (``connectors.notify``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response
from fastapi.concurrency import run_in_threadpool

from connectors.notify.notifier import tell, test_message
from query_api.auth import Admin, EveryAccountViewer
from query_api.models import NotificationChannelCreate, NotificationChannelOut, TestEventReply
from query_api.routes.deps import BrokerUp, Channels
from schemas.destinations import DestinationError
from schemas.notifications import NotificationChannel

router = APIRouter(prefix="/api/v1", tags=["notifications"])

ChannelId = Annotated[str, Path(pattern=r"^[a-z0-9]{10}$", description="Channel id.")]


def _out(
    channel: NotificationChannel, generated: dict[str, str] | None = None
) -> NotificationChannelOut:
    shown = {
        key: value
        for key, value in channel.settings.shown().items()
        if key in ("url", "endpoint", "secret", "headers", "verify_tls")
    }
    return NotificationChannelOut(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        settings=shown,
        created_at=channel.created_at,
        generated_secrets=generated or None,
    )


def _find(channels: Channels, channel_id: str) -> NotificationChannel:
    channel = channels.get(channel_id)
    if channel is None:
        raise HTTPException(
            404,
            {"parameter": "id", "in": "path", "message": f"no notification channel {channel_id}"},
        )
    return channel


@router.get("/notification-channels", response_model=list[NotificationChannelOut])
def list_channels(_viewer: EveryAccountViewer, channels: Channels) -> list[NotificationChannelOut]:
    """Every channel (secrets redacted): they hear of every account's destinations."""
    return [_out(c) for c in channels.all()]


@router.post("/notification-channels", response_model=NotificationChannelOut, status_code=201)
def create_channel(
    body: NotificationChannelCreate, _admin: Admin, _broker: BrokerUp, channels: Channels
) -> NotificationChannelOut:
    """Stores a channel; every state change of a destination is told to it from now on.
    A signing secret authtrail makes is in ``generated_secrets`` of this reply only."""
    try:
        channel = channels.add(body.kind, body.name, body.settings)
    except DestinationError as exc:
        raise HTTPException(
            422, {"parameter": exc.field, "in": "body", "message": exc.message}
        ) from None
    made = (
        None
        if body.settings.get("secret")
        else {"secret": channel.settings.secret.get_secret_value()}
    )
    return _out(channel, made)


@router.delete("/notification-channels/{channel_id}", status_code=204)
def delete_channel(
    channel_id: ChannelId, _admin: Admin, _broker: BrokerUp, channels: Channels
) -> Response:
    _find(channels, channel_id)
    channels.remove(channel_id)
    return Response(status_code=204)


@router.post("/notification-channels/{channel_id}/test", response_model=TestEventReply)
async def test_channel(channel_id: ChannelId, _admin: Admin, channels: Channels) -> TestEventReply:
    """Sends a test message (``type`` ``authtrail.test``) now; the channel's answer."""
    channel = _find(channels, channel_id)
    message = test_message()
    problem = await run_in_threadpool(tell, channel, message)
    return TestEventReply(
        ok=problem is None,
        result="ok" if problem is None else "failed",
        status=None,
        code="",
        message=problem or "delivered",
        event_id="",
    )
