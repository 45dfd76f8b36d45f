"""Who is asking: bearer tokens, session cookies, roles and account scope.

Every ``/api`` route depends on ``require_viewer`` or ``require_admin``. The page signs in
once with a token (``POST /api/v1/session``) and then uses a session cookie: HttpOnly,
SameSite=Strict, Secure behind HTTPS, signed with the installation's key, valid while its
token is active (revoking the token ends its sessions). Requests that change state with a
cookie must carry ``X-Requested-With: authtrail``: a header a cross-site form cannot send.

Each token may make ``AUTHTRAIL_API_RATE_LIMIT`` requests per second (429 with
``Retry-After`` beyond); failed authentications are limited per client address alike, so
guessing is throttled too. An account-scoped token sees its account's events only, and no
route that spans every account (the Stream side) answers it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from query_api.limits import RateLimiter
from query_api.tokens import TokenLog
from schemas.keys import SESSION_COOKIES, KeyRing
from schemas.tokens import READERS, Role, TokenRecord

SESSION_COOKIE = "authtrail_session"
SESSION_TTL_S = 12 * 3600
CSRF_HEADER = "x-requested-with"
CSRF_VALUE = "authtrail"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a token's identity, role and account scope."""

    token_id: str
    name: str
    role: Role
    account: str | None
    via: str  # "bearer" | "session"
    read_only: bool = False  # the embeddable viewer's: no views of its own either

    @classmethod
    def of(cls, record: TokenRecord, via: str) -> Principal:
        return cls(record.id, record.name, record.role, record.account, via, record.read_only)


class AuthError(HTTPException):
    def __init__(self, status: int, message: str, parameter: str = "Authorization") -> None:
        headers = {"WWW-Authenticate": 'Bearer realm="authtrail"'} if status == 401 else None
        super().__init__(
            status,
            detail={"parameter": parameter, "in": "header", "message": message},
            headers=headers,
        )


class SessionSigner:
    """Makes and checks session cookie values: ``<token id>.<expiry>.<hmac>``, signed
    with the key derived from the current ``AUTHTRAIL_SECRET_KEY``; a cookie signed with a
    previous key (a rotation under way) is still accepted until it expires."""

    def __init__(self, keys: KeyRing) -> None:
        self._key = keys.for_writing(SESSION_COOKIES)
        self._accepted = keys.for_reading(SESSION_COOKIES)

    @staticmethod
    def _mac(key: bytes, payload: str) -> str:
        digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def make(self, token_id: str, now: float | None = None) -> str:
        payload = f"{token_id}.{int((now or time.time()) + SESSION_TTL_S)}"
        return f"{payload}.{self._mac(self._key, payload)}"

    def token_id(self, value: str, now: float | None = None) -> str | None:
        """The token id of a valid, unexpired cookie value, else None."""
        parts = value.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        payload = f"{parts[0]}.{parts[1]}"
        if not any(hmac.compare_digest(self._mac(k, payload), parts[2]) for k in self._accepted):
            return None
        if int(parts[1]) < (now or time.time()):
            return None
        return parts[0]


def charge_address(request: Request) -> None:
    """Takes one request from the bucket of ``request``'s client address (the forwarded
    one only from a trusted proxy): raises ``RateLimitedError`` (429) once it is empty.
    Failed authentications and unknown tokens are charged, so guessing is throttled."""
    limiter: RateLimiter = request.app.state.rate_limiter
    address = request.client.host if request.client else "unknown"
    limiter.check(f"address:{address}", "too many failed authentications from this address")


def refused(
    request: Request, message: str, parameter: str = "Authorization", charged: bool = False
) -> AuthError:
    """A 401 for ``request``, counted against its client address's rate (unless
    ``charged`` already): a caller guessing tokens is slowed down (429 once over)."""
    if not charged:
        charge_address(request)
    return AuthError(401, message, parameter)


def authenticate(request: Request, token_text: str) -> TokenRecord:
    """The active record of ``token_text``, else 401 (429 when the address is over its
    rate). A well-formed token the API has not seen yet is charged to the caller's
    address before the tokens topic is read for it, so unknown tokens cannot make the API
    read the topic at will; with the broker down that read raises ``ConfigTopicError``
    (503)."""
    tokens: TokenLog = request.app.state.tokens
    charged = False

    def charge() -> None:
        nonlocal charged
        charge_address(request)
        charged = True

    record = tokens.authenticate(token_text, before_reading=charge)
    if record is None:
        raise refused(request, "invalid, unknown, expired or revoked token", charged=charged)
    return record


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise refused(request, "use 'Authorization: Bearer <token>'")
    return value.strip()


def current_principal(request: Request) -> Principal:
    """The authenticated caller, or 401; 429 when the caller is over its rate."""
    tokens: TokenLog = request.app.state.tokens
    bearer = _bearer(request)
    if bearer is not None:
        principal = Principal.of(authenticate(request, bearer), "bearer")
    elif cookie := request.cookies.get(SESSION_COOKIE):
        signer: SessionSigner = request.app.state.signer
        token_id = signer.token_id(cookie)
        record = tokens.active(token_id) if token_id else None
        if record is None:
            raise refused(request, "session expired or signed out")
        if request.method not in ("GET", "HEAD", "OPTIONS") and (
            request.headers.get(CSRF_HEADER) != CSRF_VALUE
        ):
            raise AuthError(403, f"missing {CSRF_HEADER} header", CSRF_HEADER)
        principal = Principal.of(record, "session")
    else:
        raise refused(request, "authentication required: a bearer token or a session")
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.check(f"token:{principal.token_id}", "this token is over its request rate")
    return principal


def require_viewer(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """A caller that may read events: a producer token writes only (403)."""
    if principal.role not in READERS:
        raise AuthError(403, "a producer token writes events; it cannot read", "role")
    return principal


def require_producer(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """A caller that may write events (``POST /api/v1/events``): a producer token only, so
    a leaked reading token cannot forge the trail (403 otherwise)."""
    if principal.role != "producer":
        raise AuthError(403, "writing events needs a producer token", "role")
    return principal


def require_every_account(
    principal: Annotated[Principal, Depends(require_viewer)],
) -> Principal:
    """For routes whose answer spans every account (destinations, their status and dead
    letters): an account-scoped token is refused (403)."""
    if principal.account is not None:
        raise AuthError(403, "this token sees one account; this spans every account", "account")
    return principal


def require_admin(principal: Annotated[Principal, Depends(require_every_account)]) -> Principal:
    if principal.role != "admin":
        raise AuthError(403, "this needs an admin token", "role")
    return principal


Viewer = Annotated[Principal, Depends(require_viewer)]
EventProducer = Annotated[Principal, Depends(require_producer)]
EveryAccountViewer = Annotated[Principal, Depends(require_every_account)]
Admin = Annotated[Principal, Depends(require_admin)]
