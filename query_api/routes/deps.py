"""Shared route dependencies: the log repository and the caller's filter (Logs routes), and
the Stream context: destinations, status board, settings, and a broker check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from connectors.admin.status import StatusBoard
from connectors.config import DestinationStore
from connectors.notify.channels import ChannelStore
from pipeline.erasure import ErasureLog
from pipeline.retention import RetentionLog
from query_api.auth import Viewer
from query_api.filters import LogFilter, filters_without_search, log_filter
from query_api.repository import LogRepository
from query_api.saved_views import ViewStore
from schemas.settings import Settings


def get_repository(request: Request) -> LogRepository:
    """The app's log repository."""
    repository: LogRepository = request.app.state.repository
    return repository


def scoped_filter(principal: Viewer, f: Annotated[LogFilter, Depends(log_filter)]) -> LogFilter:
    """The request's filters within what the caller may see."""
    return f.scoped_to(principal.account)


def scoped_filter_without_search(
    principal: Viewer, f: Annotated[LogFilter, Depends(filters_without_search)]
) -> LogFilter:
    """The request's filters but the search within what the caller may see."""
    return f.scoped_to(principal.account)


Repo = Annotated[LogRepository, Depends(get_repository)]
Filter = Annotated[LogFilter, Depends(scoped_filter)]
FilterWithoutSearch = Annotated[LogFilter, Depends(scoped_filter_without_search)]


@dataclass(frozen=True)
class StreamContext:
    """What the routes backed by Kafka work with: the settings, the destinations (kept
    current from their topic), the status board (from the status topic), the notification
    channels and the saved views (from theirs)."""

    settings: Settings
    destinations: DestinationStore
    board: StatusBoard
    channels: ChannelStore
    views: ViewStore
    retention: RetentionLog
    erasures: ErasureLog

    @classmethod
    def open(cls, settings: Settings) -> StreamContext:
        return cls(
            settings,
            DestinationStore(settings).start(),
            StatusBoard(settings).start(),
            ChannelStore(settings).start(),
            ViewStore(settings).start(),
            RetentionLog(settings).start(),
            ErasureLog(settings).start(),
        )

    def stop(self) -> None:
        self.destinations.stop()
        self.board.stop()
        self.channels.stop()
        self.views.stop()
        self.retention.stop()
        self.erasures.stop()


def _stream(request: Request) -> StreamContext:
    stream: StreamContext | None = request.app.state.stream
    if stream is None:
        raise HTTPException(503, {"parameter": "", "in": "stream", "message": "not configured"})
    return stream


def get_store(request: Request) -> DestinationStore:
    return _stream(request).destinations


def get_settings(request: Request) -> Settings:
    return _stream(request).settings


def get_board(request: Request) -> StatusBoard:
    return _stream(request).board


def get_channels(request: Request) -> ChannelStore:
    return _stream(request).channels


# Longest a Stream route waits for the broker before answering 503: a write would
# otherwise wait out its full delivery timeout (30 s) first.
BROKER_PROBE_S = 5.0


def require_broker(request: Request) -> None:
    """For routes that write to Kafka or read beyond the in-memory views: raises
    ``ConfigTopicError`` (503 with Retry-After) when the broker does not answer."""
    _stream(request).destinations.reachable(BROKER_PROBE_S)


BrokerUp = Annotated[None, Depends(require_broker)]
Store = Annotated[DestinationStore, Depends(get_store)]
Board = Annotated[StatusBoard, Depends(get_board)]
Channels = Annotated[ChannelStore, Depends(get_channels)]


def get_views(request: Request) -> ViewStore:
    return _stream(request).views


def get_retention(request: Request) -> RetentionLog:
    return _stream(request).retention


Views = Annotated[ViewStore, Depends(get_views)]
Retention = Annotated[RetentionLog, Depends(get_retention)]


def get_erasures(request: Request) -> ErasureLog:
    return _stream(request).erasures


Erasures = Annotated[ErasureLog, Depends(get_erasures)]
AppSettings = Annotated[Settings, Depends(get_settings)]
