"""Local HTTP receivers standing in for the log-ingestion platforms.

Each receiver enforces its platform's ingestion contract and error replies (see
/work/shared/destinations.md), records what it accepted, and takes a fault plan,
for integration tests and benchmarks of the connectors::

    with DatadogReceiver(api_key="k") as datadog:
        datadog.faults.throttle(2, retry_after=1)
        ...  # point a connector at datadog.url
        assert datadog.store.wait_for(100, timeout=5)
"""

from connectors.receivers.base import (
    BodyDecodeError,
    Faults,
    PlannedReply,
    Receiver,
    ReceiverServer,
    Store,
    UnsupportedEncodingError,
    decode_body,
)
from connectors.receivers.coralogix import CoralogixReceiver
from connectors.receivers.datadog import DatadogReceiver
from connectors.receivers.splunk import SplunkReceiver
from connectors.receivers.sumologic import SumoReceiver

__all__ = [
    "BodyDecodeError",
    "CoralogixReceiver",
    "DatadogReceiver",
    "Faults",
    "PlannedReply",
    "Receiver",
    "ReceiverServer",
    "SplunkReceiver",
    "Store",
    "SumoReceiver",
    "UnsupportedEncodingError",
    "decode_body",
]
