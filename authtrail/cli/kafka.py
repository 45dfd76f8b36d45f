"""``authtrail kafka ...`` (the local broker) and ``authtrail topics create``."""

from __future__ import annotations

import sys

import click

from authtrail.cli.base import fail, load_settings, main, setup_logging


@main.group()
def kafka() -> None:
    """The local Kafka broker of the embedded set-up."""


@kafka.command("fetch")
def kafka_fetch() -> None:
    """Fetch the broker's jars from Maven Central (once; cached)."""
    from authtrail.kafka_local import KafkaError, LocalKafka

    settings = load_settings()
    setup_logging(settings)
    try:
        click.echo(LocalKafka(settings).ensure_jars())
    except KafkaError as exc:
        fail(str(exc))


@kafka.command("start")
def kafka_start() -> None:
    """Start the broker in the background and wait until it answers."""
    from authtrail.kafka_local import KafkaError, LocalKafka

    settings = load_settings()
    setup_logging(settings)
    if not settings.embedded_kafka:
        fail("AUTHTRAIL_KAFKA_BOOTSTRAP is set: that cluster is used, no local broker")
    try:
        pid = LocalKafka(settings).start()
    except KafkaError as exc:
        fail(str(exc))
    click.echo(
        f"Kafka {settings.kafka_version} running on {settings.bootstrap_servers} (pid {pid})"
    )


@kafka.command("stop")
def kafka_stop() -> None:
    """Stop the broker cleanly."""
    from authtrail.kafka_local import LocalKafka

    settings = load_settings()
    stopped = LocalKafka(settings).stop()
    click.echo("stopped" if stopped else "not running")


@kafka.command("status")
def kafka_status() -> None:
    """Show whether the broker runs and answers. Exit 1 when it does not."""
    from authtrail.kafka_local import LocalKafka

    settings = load_settings()
    status = LocalKafka(settings).status()
    if status.running:
        state = "answering" if status.answering else "not answering"
        click.echo(f"running (pid {status.pid}) on {status.bootstrap}, {state}")
    else:
        click.echo(f"not running ({status.bootstrap})")
    sys.exit(0 if status.running and status.answering else 1)


# -- topics ------------------------------------------------------------------------------
@main.group()
def topics() -> None:
    """Kafka topics."""


@topics.command("create")
def topics_create() -> None:
    """Create the pipeline's topics (idempotent)."""
    from infra.kafka.topic_admin import ensure_topics

    settings = load_settings()
    setup_logging(settings)
    for name, state in ensure_topics(settings).items():
        click.echo(f"{name}: {state}")
