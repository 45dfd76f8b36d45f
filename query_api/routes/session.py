"""``/api/v1/session``: the page signs in with a token once and keeps a cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from query_api.auth import (
    SESSION_COOKIE,
    SESSION_TTL_S,
    AuthError,
    Principal,
    SessionSigner,
    Viewer,
    authenticate,
)
from query_api.models import SessionInfo
from schemas.tokens import READERS

router = APIRouter(prefix="/api/v1", tags=["session"])


def _info(principal: Principal) -> SessionInfo:
    return SessionInfo(
        token_id=principal.token_id,
        name=principal.name,
        role=principal.role,
        account=principal.account,
    )


@router.post("/session", response_model=SessionInfo)
def sign_in(
    request: Request,
    response: Response,
    token: Annotated[str, Body(embed=True, min_length=1, max_length=200)],
) -> SessionInfo:
    """Exchanges a token for a session cookie (HttpOnly, SameSite=Strict)."""
    try:
        record = authenticate(request, token)
    except AuthError as exc:
        if exc.status_code != 401:
            raise
        raise AuthError(401, "invalid, unknown, expired or revoked token", "token") from None
    if record.role not in READERS:
        raise AuthError(403, "a producer token writes events; it cannot sign in", "token")
    signer: SessionSigner = request.app.state.signer
    response.set_cookie(
        SESSION_COOKIE,
        signer.make(record.id),
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="strict",
        # The scheme is the forwarded one only from a trusted proxy (server_config).
        secure=request.app.state.secure_cookies or request.url.scheme == "https",
        path="/",
    )
    return _info(Principal.of(record, "session"))


@router.get("/session", response_model=SessionInfo)
def who_am_i(principal: Viewer) -> SessionInfo:
    """The caller's identity, role and account scope."""
    return _info(principal)


@router.delete("/session", status_code=204)
def sign_out(_principal: Viewer, response: Response) -> Response:
    """Ends the page's session (the cookie is cleared)."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    response.status_code = 204
    return response
