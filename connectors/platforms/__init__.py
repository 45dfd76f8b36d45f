"""One module per destination platform, each providing a ``Sink`` (see connectors.sink).
``build_sink`` picks the module for a destination."""

from __future__ import annotations

from connectors.sink import Sink
from schemas.destinations import Destination


def build_sink(destination: Destination) -> Sink:
    """The sink for ``destination``'s platform."""
    from connectors.platforms import datadog

    builders = {"datadog": datadog.DatadogSink}
    builder = builders.get(destination.platform)
    if builder is None:
        raise ValueError(f"platform {destination.platform} has no connector in this version")
    return builder(destination)
