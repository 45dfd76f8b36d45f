"""The boto3 client a sink sends through."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config  # type: ignore[import-untyped]

from schemas.platforms import EventBridgeSettings


def make_client(settings: EventBridgeSettings) -> Any:
    """A boto3 ``events`` client on its own session (sessions are not shared between
    threads): explicit keys when configured, else the default credential chain."""
    session = boto3.session.Session(
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=(
            settings.secret_access_key.get_secret_value()
            if settings.secret_access_key is not None
            else None
        ),
        region_name=settings.region,
    )
    config = Config(
        connect_timeout=5,
        read_timeout=30,
        # One attempt: Delivery retries. (``max_attempts`` counts retries: 1 would be two.)
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=8,
        user_agent_extra="authtrail-connector/1",
    )
    return session.client("events", endpoint_url=settings.endpoint, config=config)
