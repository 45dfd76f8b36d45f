"""The command line's shared parts: the ``main`` group, settings, logging, failing plainly."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import click
from pydantic import ValidationError

from infra.secrets import MissingSecretKeyError
from schemas.keys import WeakSecretKeyError
from schemas.settings import Settings

log = logging.getLogger("authtrail")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"AUTHTRAIL_{'_'.join(str(p) for p in e['loc']).upper()}: "
            + str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        ]
        raise click.UsageError("invalid configuration:\n  " + "\n  ".join(lines)) from None


class _DropStartupRetries(logging.Filter):
    """librdkafka warns while a fresh broker loads its coordinators, then retries and
    succeeds on its own: not worth an operator's attention."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "load in progress: retrying" not in record.getMessage()


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropStartupRetries())
    # aiokafka, faust and mode narrate every start, stop and rebalance at INFO.
    if logging.getLogger().level > logging.DEBUG:
        for noisy in ("aiokafka", "faust", "mode", "uvicorn.error"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    # httpx logs every request's URL at INFO, and a Sumo Logic source URL is a secret: at
    # any level, only its warnings.
    for leaky in ("httpx", "httpcore"):
        logging.getLogger(leaky).setLevel(logging.WARNING)


def fail(message: str) -> NoReturn:
    click.echo(f"authtrail: {message}", err=True)
    sys.exit(1)


class _Commands(click.Group):
    """Configuration errors found while a command runs end it with their message, not a
    traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (MissingSecretKeyError, WeakSecretKeyError) as exc:
            fail(str(exc))
            return None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """authtrail: audit trail for identity and authentication events."""
