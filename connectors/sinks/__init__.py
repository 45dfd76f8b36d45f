"""One module per destination platform, each providing a ``Sink`` (see ``connectors.sinks.base``).
``build_sink`` picks the module for a destination."""

from __future__ import annotations

from collections.abc import Callable

from connectors.sinks.base import Sink
from schemas.destinations import Destination


def build_sink(destination: Destination) -> Sink:
    """The sink for ``destination``'s platform."""
    from connectors.sinks import coralogix, datadog, eventbridge, splunk, sumologic

    builders: dict[str, Callable[[Destination], Sink]] = {
        "datadog": datadog.DatadogSink,
        "eventbridge": eventbridge.EventBridgeSink,
        "splunk": splunk.SplunkSink,
        "sumologic": sumologic.SumoLogicSink,
        "coralogix": coralogix.CoralogixSink,
    }
    builder = builders.get(destination.platform)
    if builder is None:
        raise ValueError(f"platform {destination.platform} has no connector in this version")
    return builder(destination)
