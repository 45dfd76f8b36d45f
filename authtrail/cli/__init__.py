"""The ``authtrail`` command line: ``main`` and a module per command group."""

from authtrail.cli import (  # noqa: F401  (each module registers its commands on main)
    connectors,
    destinations,
    erase,
    kafka,
    notifications,
    processes,
    retention,
    secrets,
    store,
    tokens,
    up,
)
from authtrail.cli.base import main, setup_logging

__all__ = ["main", "setup_logging"]
