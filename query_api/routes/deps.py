"""Shared route dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from query_api.auth import Viewer
from query_api.filters import LogFilter, log_filter
from query_api.repository import LogRepository


def get_repository(request: Request) -> LogRepository:
    """The app's log repository."""
    repository: LogRepository = request.app.state.repository
    return repository


def scoped_filter(principal: Viewer, f: Annotated[LogFilter, Depends(log_filter)]) -> LogFilter:
    """The request's filters within what the caller may see."""
    return f.scoped_to(principal.account)


Repo = Annotated[LogRepository, Depends(get_repository)]
Filter = Annotated[LogFilter, Depends(scoped_filter)]
