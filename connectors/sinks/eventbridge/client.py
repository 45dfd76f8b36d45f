"""The boto3 client a sink sends through."""

from __future__ import annotations

from typing import Any

from connectors.sinks import aws
from schemas.platforms import EventBridgeSettings


def make_client(settings: EventBridgeSettings) -> Any:
    """A boto3 ``events`` client (``connectors.sinks.aws.make_client``)."""
    return aws.make_client("events", settings)
