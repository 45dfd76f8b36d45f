"""Splunk's indexer-acknowledgment wait gives way to a stop within a quarter second."""

from __future__ import annotations

import threading

from connectors.sinks.splunk import SplunkSink
from schemas.destinations import make_destination
from tests.platform_fakes import SplunkReceiver

TOKEN = "12345678-1234-1234-1234-123456789012"


def test_a_stop_ends_the_ack_wait() -> None:
    # An acknowledgment that would take an hour: only the stop can end the wait.
    with SplunkReceiver(TOKEN, require_ack=True, ack_delay=3600) as splunk:
        sink = SplunkSink(
            make_destination(
                "splunk",
                "ack",
                {"url": splunk.url, "token": TOKEN, "indexer_ack": "true", "verify_tls": "false"},
            )
        )
        stop = threading.Event()
        timer = threading.Timer(1.0, stop.set)
        timer.start()
        result = sink.send([b'{"event": {"a": 1}}'], stop.is_set)
        timer.join()
        sink.close()
    assert result.kind == "retry"
    assert result.reply.code == "ack-interrupted"
    assert splunk.ack_requests >= 1
