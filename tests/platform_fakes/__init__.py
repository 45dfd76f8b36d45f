"""Local HTTP receivers standing in for the log-ingestion platforms' intakes (test fakes:
they live with the tests, and the wheel leaves them out).

Each receiver enforces its platform's documented ingestion contract and error replies
(each module links the vendor's documentation it follows), records what it accepted, and
takes a fault plan, for integration tests and benchmarks of the connectors::

    with DatadogReceiver(api_key="k") as datadog:
        datadog.faults.throttle(2, retry_after=1)
        ...  # point a connector at datadog.url
        assert datadog.store.wait_for(100, timeout=5)
"""

from tests.platform_fakes.base import (
    BodyDecodeError,
    Faults,
    PlannedReply,
    Receiver,
    ReceiverServer,
    Store,
    UnsupportedEncodingError,
    decode_body,
)
from tests.platform_fakes.coralogix import CoralogixReceiver
from tests.platform_fakes.datadog import DatadogReceiver
from tests.platform_fakes.splunk import SplunkReceiver
from tests.platform_fakes.sumologic import SumoReceiver

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
