"""The event catalogue: each known event key, its log text and the outcome it implies.

The catalogue is descriptive, not a whitelist: an unknown key is stored and shown with a
text derived from the key (``describe``), and its outcome is inferred from its last word
when the producer did not send one (``implied_outcome``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["success", "failure"]


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    key: str
    description: str
    outcome: Outcome
    category: str


def _e(key: str, description: str, outcome: Outcome, category: str) -> CatalogueEntry:
    return CatalogueEntry(key, description, outcome, category)


CATALOGUE: dict[str, CatalogueEntry] = {
    e.key: e
    for e in (
        _e("login.completed", "Login completed", "success", "login"),
        _e("login.failed", "Login failed", "failure", "login"),
        _e("logout.completed", "Logout completed", "success", "login"),
        _e("sso.tenant.completed", "Tenant SSO completed", "success", "sso"),
        _e("sso.tenant.failed", "Tenant SSO failed", "failure", "sso"),
        _e("oidc.flow.started", "OIDC flow started", "success", "oidc"),
        _e("oidc.token_exchange.succeeded", "OIDC token exchange successful", "success", "oidc"),
        _e("oidc.token_exchange.failed", "OIDC token exchange failed", "failure", "oidc"),
        _e(
            "refresh_token.exchange.completed",
            "Refresh token exchange completed",
            "success",
            "token",
        ),
        _e("refresh_token.exchange.failed", "Refresh token exchange failed", "failure", "token"),
        _e("mfa.challenge.passed", "MFA challenge passed", "success", "mfa"),
        _e("mfa.challenge.failed", "MFA challenge failed", "failure", "mfa"),
        _e("mfa.enrolled", "MFA factor enrolled", "success", "mfa"),
        _e("password.reset.requested", "Password reset requested", "success", "password"),
        _e("password.reset.completed", "Password reset completed", "success", "password"),
        _e("password.changed", "Password changed", "success", "password"),
        _e("user.locked", "User locked", "failure", "user"),
        _e("user.unlocked", "User unlocked", "success", "user"),
        _e("scim.user.provisioned", "SCIM user provisioned", "success", "scim"),
        _e("scim.user.deprovisioned", "SCIM user deprovisioned", "success", "scim"),
        _e("scim.user.updated", "SCIM user updated", "success", "scim"),
        _e("api_token.created", "API token created", "success", "token"),
        _e("api_token.revoked", "API token revoked", "success", "token"),
    )
}

# Last words of an unknown key that mean the event records a failure.
_FAILURE_WORDS = frozenset(
    {"failed", "failure", "denied", "rejected", "error", "errored", "blocked", "invalid"}
)


def describe(event_key: str) -> str:
    """The log text of ``event_key``: the catalogue's, or one derived from the key
    (``scim.group.created`` -> ``Scim group created``)."""
    entry = CATALOGUE.get(event_key)
    if entry is not None:
        return entry.description
    words = event_key.replace("_", " ").replace("-", " ").replace(".", " ").split()
    text = " ".join(words)
    return text[:1].upper() + text[1:] if text else event_key


def implied_outcome(event_key: str) -> Outcome:
    """The outcome ``event_key`` implies: the catalogue's, else ``failure`` when the key's
    last word names a failure (``failed``, ``denied``, ...), else ``success``."""
    entry = CATALOGUE.get(event_key)
    if entry is not None:
        return entry.outcome
    last = event_key.rsplit(".", 1)[-1].rsplit("_", 1)[-1]
    return "failure" if last in _FAILURE_WORDS else "success"
