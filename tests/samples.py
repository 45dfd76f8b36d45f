"""Sample inputs more than one test module needs."""

from __future__ import annotations

DD_KEY = "0123456789abcdef0123456789abcdef"
# Standard Webhooks' own example secret (24 bytes).
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Valid settings of a destination of every platform (keys as the CLI and API take them).
VALID_SETTINGS: dict[str, dict[str, str]] = {
    "datadog": {"site": "datadoghq.eu", "api_key": DD_KEY, "tags": "team:iam,env:prod"},
    "eventbridge": {
        "region": "eu-west-1",
        "event_bus": "arn:aws:events:eu-west-1:123456789012:event-bus/audit",
        "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    },
    "splunk": {
        "url": "https://splunk.example:8088",
        "token": "12345678-1234-1234-1234-123456789012",
        "index": "auth",
        "indexer_ack": "true",
    },
    "sumologic": {
        "url": "https://endpoint4.collection.us2.sumologic.com/receiver/v1/http/ZaVnC4dhaV3",
        "category": "prod/auth",
        "fields": "team=iam,env=prod",
    },
    "coralogix": {"domain": "eu2", "api_key": "cxtp_0123456789abcdefABCDEF"},
    "s3": {
        "region": "eu-central-1",
        "bucket": "acme-audit-archive",
        "prefix": "authtrail/prod",
        "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "sse": "aws:kms",
        "kms_key_id": "alias/audit",
    },
    "webhook": {
        "url": "https://hooks.example/authtrail",
        "secret": WEBHOOK_SECRET,
        "headers": "X-Api-Key: hk_0123456789abcdef",
        "format": "ndjson",
    },
}
