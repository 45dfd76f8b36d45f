"""Runs the query API on the caller's event loop as a ``mode.Service``, so the ingest
worker and the API share one process (chDB allows one process per data directory).

``uvicorn.Server.serve()`` is awaited directly (``uvicorn.run`` would start a second loop)
with its own signal handling switched off: the faust worker owns SIGINT/SIGTERM and stops
this service with everything else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator
from typing import Any

import uvicorn
from fastapi import FastAPI
from mode import Service

from schemas.settings import Settings

log = logging.getLogger(__name__)


def server_config(app: FastAPI, settings: Settings, **options: Any) -> uvicorn.Config:
    """The API's uvicorn configuration: its address, and whom it believes about the
    client. Forwarded headers (``X-Forwarded-Proto``, ``X-Forwarded-For``) count only from
    ``AUTHTRAIL_API_TRUSTED_PROXIES``; uvicorn's own default would believe 127.0.0.1, and
    with none set nobody is (a client could otherwise claim any address and scheme)."""
    trusted = settings.api_trusted_proxies
    return uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or "",
        log_config=None,
        access_log=False,
        **options,
    )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ApiService(Service):
    """Serves ``app`` (``server_config``) until stopped."""

    def __init__(self, app: FastAPI, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        config = server_config(app, settings, lifespan="off", timeout_graceful_shutdown=5)
        self._app = app
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        self._task = asyncio.ensure_future(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raises the bind error
                raise RuntimeError("query API stopped during start-up")
            await asyncio.sleep(0.05)

    async def on_stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # lifespan is off here (the worker owns start-up), so close the store's clients.
        repository = getattr(self._app.state, "repository", None)
        if repository is not None:
            repository.close()
        # Before the broker goes, or they log every reconnect.
        for view in ("tokens", "stream"):
            store = getattr(self._app.state, view, None)
            if store is not None:
                store.stop()
