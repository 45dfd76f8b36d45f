"""What the issue's seed events must look like in the Logs view: key -> (text, outcome).
Written out here, not derived from the catalogue, so the tests check the catalogue."""

SEED_EVENTS: dict[str, tuple[str, str]] = {
    "login.completed": ("Login completed", "success"),
    "login.failed": ("Login failed", "failure"),
    "sso.tenant.completed": ("Tenant SSO completed", "success"),
    "oidc.flow.started": ("OIDC flow started", "success"),
    "oidc.token_exchange.succeeded": ("OIDC token exchange successful", "success"),
    "oidc.token_exchange.failed": ("OIDC token exchange failed", "failure"),
    "refresh_token.exchange.completed": ("Refresh token exchange completed", "success"),
}
