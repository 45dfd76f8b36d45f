"""The web page: one HTML shell and its static assets, served by the query API (no CDN,
nothing fetched at run time). The page itself calls the JSON API with its session."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def _shell(request: Request) -> Response:
    static: Path = request.app.state.static_dir
    return FileResponse(static / "index.html", media_type="text/html", headers=SECURITY_HEADERS)


@router.get("/")
def index(request: Request) -> Response:
    """The Logs tab (the page asks for a token when there is no session)."""
    return _shell(request)


@router.get("/login")
def login(request: Request) -> Response:
    """Signs in with the token in the URL fragment (``/login#token=...``): fragments never
    reach the server or its logs; the page exchanges it for a session cookie."""
    return _shell(request)


@router.get("/stream")
def stream(request: Request) -> Response:
    """The Stream tab."""
    return _shell(request)


@router.get("/privacy")
def privacy(request: Request) -> Response:
    """The Privacy tab (admins): accounts' retention and erasures."""
    return _shell(request)


def mount_static(app: FastAPI, directory: Path) -> None:
    app.state.static_dir = directory
    app.mount("/static", StaticFiles(directory=directory), name="static")
