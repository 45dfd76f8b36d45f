"""The embeddable viewer: ``POST /api/v1/viewer-tokens`` mints a short-lived, read-only
token bound to one account (admins only), and ``/embed`` serves the Logs tab alone for an
``<iframe>`` in a customer's admin portal, framable only by the origins of
``AUTHTRAIL_EMBED_ALLOWED_ORIGINS``.

The page keeps the token in memory and sends it as a bearer token: a session cookie would
be a third-party cookie inside another site's frame, which browsers block (and the
session cookie is ``SameSite=Strict``). The token's expiry ends the viewer."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from query_api.auth import Admin
from query_api.routes.deps import AppSettings, BrokerUp, Views
from query_api.routes.web import SECURITY_HEADERS
from query_api.tokens import TokenLog, create_token
from schemas.events import utc_now_ms

router = APIRouter(tags=["embed"])
MAX_TTL_S = 24 * 3600


class ViewerTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
    ttl: int = Field(3600, ge=60, le=MAX_TTL_S, description="Seconds it works (at most a day).")
    view: str | None = Field(
        None,
        pattern=r"^vw_[0-9a-f]{12}$",
        description="A shared saved view inside the account, opened first.",
    )


class ViewerToken(BaseModel):
    token: str = Field(description="Shown once. Read-only, this account's events only.")
    id: str
    account: str
    expires_at: str
    embed_path: str = Field(description="The viewer's address on this API, token included.")


@router.post("/api/v1/viewer-tokens", response_model=ViewerToken, status_code=201)
async def create_viewer_token(
    body: ViewerTokenIn,
    request: Request,
    _admin: Admin,
    _broker: BrokerUp,
    settings: AppSettings,
    views: Views,
) -> ViewerToken:
    """A token for one account's embedded viewer: read-only (not even views of its own),
    expiring after ``ttl`` seconds; ``view`` must be a shared view inside that account."""
    if body.view is not None:
        view = views.get(body.view)
        if view is None or not view.shared or view.account != body.account:
            raise HTTPException(
                400,
                {
                    "parameter": "view",
                    "in": "body",
                    "message": f"no shared view {body.view} inside account {body.account!r}",
                },
            )
    expires = utc_now_ms() + timedelta(seconds=body.ttl)
    plaintext, record = await run_in_threadpool(
        create_token,
        settings,
        "viewer",
        f"embedded viewer of {body.account}",
        body.account,
        expires,
        True,
    )
    tokens: TokenLog = request.app.state.tokens
    await run_in_threadpool(tokens.catch_up)  # usable at once, from this process too
    query = {"token": plaintext, **({"view": body.view} if body.view else {})}
    return ViewerToken(
        token=plaintext,
        id=record.id,
        account=body.account,
        expires_at=expires.isoformat().replace("+00:00", "Z"),
        embed_path=f"/embed?{urlencode(query)}",
    )


@router.get("/embed", include_in_schema=False)
def embed(request: Request) -> Response:
    """The Logs tab alone, for an iframe of the allowed origins (none: not framable)."""
    origins: tuple[str, ...] = request.app.state.embed_origins
    headers = dict(SECURITY_HEADERS)
    if origins:
        headers.pop("X-Frame-Options")  # the CSP below says who may frame it
        headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
            "frame-ancestors 'none'", "frame-ancestors " + " ".join(origins)
        )
    static = request.app.state.static_dir
    return FileResponse(static / "index.html", media_type="text/html", headers=headers)
