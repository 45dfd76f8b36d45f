"""A fence around ``pipeline/consumer.py``: it overrides private methods of
faust-streaming's ``Consumer`` and reads its private attributes, which no release promises
to keep. This test holds a fingerprint of every upstream method the override replaces,
calls into, or relies on for the attributes it reads, as they were in the release it was
written against; a release that changes any of them fails here, by name, before it can
change what a commit carries."""

from __future__ import annotations

import hashlib
import inspect
import textwrap
from importlib.metadata import version

import pytest
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

WRITTEN_AGAINST = "0.15.3"

# sha256 (first 16 hex digits) of each method's defining class and dedented source in
# faust-streaming 0.15.3.
FINGERPRINTS = {
    # Replaced by BatchDispatchConsumer: its read-offset bookkeeping is kept line for line.
    "Consumer._drain_messages": "0fcc64f3c05003e0",
    # Replaced: what a commit carries comes from the CommitLedger.
    "Consumer._filter_tps_with_pending_acks": "ec10fdb40a76d4d6",
    "Consumer._new_offset": "5211feb3a67aaa95",
    # The callers of the two above: if they start calling something else, the ledger's
    # offsets would no longer be what a commit carries.
    "Consumer.force_commit": "8db0a59b83ca2d5c",
    "Consumer._commit_tps": "c9ddaf1566e4c0fc",
    "Consumer._filter_committable_offsets": "7041b2c7985d145b",
    # Extended (super() first, then the ledger forgets the partitions).
    "Consumer.on_partitions_revoked": "c346b1cb56ffe35c",
    # Called, and the source of the private attributes the override reads
    # (_read_offset, _commit_every, _n_acked).
    "Consumer._add_gap": "30078fd23845a24d",
    "Consumer.commit": "438164d4c31bcdbc",
    "Consumer.__init__": "70a6c5de155e9c55",
}


def fingerprint(qualname: str) -> str:
    """The method as the class the consumer derives from resolves it (the defining
    class's name is part of the fingerprint, so a move to another class counts too);
    ``Consumer.__init__`` is the base class's own, where the private attributes are set."""
    _base, name = qualname.split(".")
    owner = faust_consumer.Consumer if name == "__init__" else faust_aiokafka.Consumer
    method = getattr(owner, name)
    source = f"{method.__qualname__}\n" + textwrap.dedent(inspect.getsource(method))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


@pytest.mark.parametrize("qualname", sorted(FINGERPRINTS))
def test_the_faust_methods_the_batch_consumer_relies_on_are_unchanged(qualname: str) -> None:
    assert fingerprint(qualname) == FINGERPRINTS[qualname], (
        f"faust-streaming {version('faust-streaming')} changed faust.transport.consumer."
        f"{qualname}, which pipeline/consumer.py (BatchDispatchConsumer, written against "
        f"{WRITTEN_AGAINST}) overrides or relies on: read the upstream change, bring the "
        "override in line with it, then record the new fingerprint here"
    )


def test_the_leader_election_topic_stays_out_of_the_ingest_fetches() -> None:
    """Its one partition, always empty, would be in every fetch: whenever the raw
    partitions all hold buffered records, aiokafka fetches it alone and the broker holds
    that fetch for faust's 1.5 s fetch_max_wait, stalling ingest (pipeline.app). faust
    adds the topic unless ``topic_disable_leader`` is set, in ``LeaderAssignor.on_start``,
    whose source is held here too."""
    from typing import cast

    from faust.assignor.leader_assignor import LeaderAssignor

    from pipeline.app import create_app
    from pipeline.batch import BatchProcessor
    from schemas.settings import Settings

    source = "LeaderAssignor.on_start\n" + textwrap.dedent(
        inspect.getsource(LeaderAssignor.on_start)
    )
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == "d088fa0114a19d2b", (
        "faust changed how the leader topic is enabled: check topic_disable_leader still "
        "keeps it out of the ingest consumer's subscription"
    )
    app = create_app(Settings(), cast(BatchProcessor, object()))
    assert app.conf.topic_disable_leader is True


def test_the_ingest_consumer_asks_the_broker_for_a_short_fetch_wait() -> None:
    """faust hard-codes fetch_max_wait_ms=1500 where it creates the aiokafka consumer;
    ``pipeline.consumer.ShortFetchWaitThread`` lowers it on the consumer faust created,
    which aiokafka reads when the consumer starts. Both sources are held here."""
    import asyncio
    from typing import cast

    from aiokafka import AIOKafkaConsumer

    from pipeline.app import create_app
    from pipeline.batch import BatchProcessor
    from pipeline.consumer import FETCH_MAX_WAIT_MS
    from schemas.settings import Settings

    held = {
        "AIOKafkaConsumerThread._create_worker_consumer": (
            faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer,
            "6fd51414105ef1e5",
        ),
        "AIOKafkaConsumer.start": (AIOKafkaConsumer.start, "38eda995a3b1c298"),
    }
    for name, (method, expected) in held.items():
        source = f"{method.__qualname__}\n" + textwrap.dedent(inspect.getsource(method))
        assert hashlib.sha256(source.encode()).hexdigest()[:16] == expected, name

    async def created() -> int:
        app = create_app(Settings(), cast(BatchProcessor, object()))
        thread = cast(faust_aiokafka.Consumer, app.consumer)._thread
        consumer = thread._create_worker_consumer(app.transport)
        try:
            return int(consumer._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    assert asyncio.run(created()) == FETCH_MAX_WAIT_MS == 100
