"""One module per destination platform, named as the platform is registered in
``schemas.platforms`` (``@platform(...)`` on its settings), each ending with
``SINK = <its Sink class>`` (see ``connectors.sinks.base``; HTTP platforms derive from
``connectors.sinks.http.HttpSink``). ``build_sink`` finds the module by that name and
wraps the sink in the destination's PII rules (``connectors.sinks.transform``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, cast

from connectors.sinks.base import EventHead, FileSink, Sink, read_event
from connectors.sinks.transform import PiiTransform, TransformedSink
from schemas.destinations import Destination
from schemas.platforms import PLATFORM_SPECS


def build_sink(destination: Destination) -> Sink[Any]:
    """The sink for ``destination``'s platform. Raises ``ValueError`` for a platform
    without a sink module."""
    sink = _sink_class(destination.platform)(destination)
    if destination.transform and destination.transform_key is not None:
        key = bytes.fromhex(destination.transform_key.get_secret_value())
        return TransformedSink(sink, PiiTransform(destination.transform, key))
    return sink


def event_reader(sink: Sink[Any]) -> Callable[[bytes], EventHead]:
    """How a connector reads each event before ``sink.encode``: ``read_event``, or, for a
    sink under PII rules, ``PiiTransform.reader()`` (which may decode the event for the
    rules' ``apply`` as well: one decode instead of two). Either raises ``ValueError`` for
    what is not an event."""
    if isinstance(sink, TransformedSink):
        return sink.transform.reader()
    return read_event


def writes_files(platform: str) -> bool:
    """Whether ``platform`` is written in files (a ``FileSink``: the S3 archive). Raises
    ``ValueError`` as ``build_sink``."""
    return hasattr(_sink_class(platform), "put")


def file_sink(sink: Sink[Any]) -> FileSink | None:
    """The ``FileSink`` a built sink puts its files with (under its PII rules), or None
    for a platform written in requests."""
    inner = sink.sink if isinstance(sink, TransformedSink) else sink
    return cast(FileSink, inner) if hasattr(inner, "put") else None


def _sink_class(platform: str) -> Callable[[Destination], Sink[Any]]:
    if platform not in PLATFORM_SPECS:
        raise ValueError(f"platform {platform} is not registered")
    try:
        module = importlib.import_module(f"connectors.sinks.{platform}")
    except ModuleNotFoundError:
        raise ValueError(f"platform {platform} has no sink in this version") from None
    return cast(Callable[[Destination], Sink[Any]], module.SINK)
