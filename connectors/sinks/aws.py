"""What the AWS platforms (EventBridge, the S3 archive) share: a boto3 client per sink on
its own session, and what a failed call means when it is not the service's own answer."""

from __future__ import annotations

from typing import Any

import boto3
from botocore import exceptions as aws_errors  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]

from connectors.sinks.base import Reply, SendResult
from schemas.platforms import AwsSettings

CALL_ERRORS = (aws_errors.ClientError, aws_errors.BotoCoreError)
_CREDENTIAL_ERRORS = (
    aws_errors.NoCredentialsError,
    aws_errors.PartialCredentialsError,
    aws_errors.CredentialRetrievalError,
)


def make_client(service: str, settings: AwsSettings, **options: Any) -> Any:
    """A boto3 client of ``service`` on its own session (sessions are not shared between
    threads): explicit keys when configured, else the default credential chain.
    ``options``: more of botocore's ``Config`` (S3's addressing style)."""
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
        **options,
    )
    return session.client(service, endpoint_url=settings.endpoint, config=config)


def client_error(exc: Exception) -> Reply | None:
    """The service's answer inside a botocore ``ClientError`` (status, code, message);
    None for any other error."""
    if not isinstance(exc, aws_errors.ClientError):
        return None
    error = exc.response.get("Error") or {}
    status_value = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return Reply(
        int(status_value) if status_value is not None else None,
        str(error.get("Code") or ""),
        str(error.get("Message") or ""),
    )


def classify_transport(exc: Exception, service: str) -> SendResult:
    """A call that got no answer from the service (a botocore error other than
    ``ClientError``): timeouts and connection failures are ``retry``, missing credentials
    ``auth``, a request botocore would not build ``invalid``."""
    name = type(exc).__name__
    if isinstance(exc, aws_errors.ReadTimeoutError):
        return SendResult("retry", Reply(None, "timeout", f"{service} did not answer in time"))
    if isinstance(exc, aws_errors.ConnectionError | aws_errors.HTTPClientError):
        return SendResult("retry", Reply(None, "connection", f"{name}: {exc}"))
    if isinstance(exc, _CREDENTIAL_ERRORS):
        return SendResult("auth", Reply(None, "credentials", f"{name}: {exc}"))
    if isinstance(exc, aws_errors.ParamValidationError):
        return SendResult("invalid", Reply(None, "ParamValidation", str(exc)))
    return SendResult("retry", Reply(None, name, str(exc)))
