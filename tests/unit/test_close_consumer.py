"""A consumer's close is bounded: librdkafka's close waits until the group is left, and a
consumer wedged in a group state it never leaves (its coordinator connection gone for
good) made that wait last forever, and the connector's thread with it. ``close_consumer``
gives up after its bound, says so, and leaves the handle behind."""

from __future__ import annotations

import logging
import threading

import pytest

from infra.kafka.clients import close_consumer


class Wedged:
    """A consumer whose close never returns until ``release``."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.closing = threading.Event()

    def close(self) -> None:
        self.closing.set()
        self.release.wait()


class Closes:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_a_close_that_never_returns_is_left_behind(caplog: pytest.LogCaptureFixture) -> None:
    consumer = Wedged()
    with caplog.at_level(logging.WARNING, logger="infra.kafka.clients"):
        assert close_consumer(consumer, "d1", within_s=0.2) is False  # type: ignore[arg-type]
    assert consumer.closing.is_set() and not consumer.release.is_set()  # still closing
    assert "d1: the consumer did not close within" in caplog.text
    consumer.release.set()


def test_a_close_that_returns_is_waited_for() -> None:
    consumer = Closes()
    assert close_consumer(consumer, "d1", within_s=10) is True  # type: ignore[arg-type]
    assert consumer.closed


def test_a_close_that_fails_is_done_with() -> None:
    class Fails:
        def close(self) -> None:
            raise RuntimeError("Consumer closed")

    assert close_consumer(Fails(), "d1", within_s=10) is True  # type: ignore[arg-type]
