"""``AUTHTRAIL_EMBED_ALLOWED_ORIGINS``: origins only (they become a CSP frame-ancestors list,
so anything else could widen or break it)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.settings import Settings


def test_origins_are_kept_in_order() -> None:
    settings = Settings(
        embed_allowed_origins=" https://admin.example.com, http://127.0.0.1:8081/,https://[::1]:9"
    )
    assert settings.embed_origins == (
        "https://admin.example.com",
        "http://127.0.0.1:8081",
        "https://[::1]:9",
    )
    assert Settings().embed_origins == ()


@pytest.mark.parametrize(
    "value",
    ["*", "https://*.example.com", "admin.example.com", "https://a.example/path", "https://a b",
     "'self'", "https://a.example; script-src *", "javascript:alert(1)"],
)  # fmt: skip
def test_anything_but_an_origin_is_refused_naming_it(value: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(embed_allowed_origins=value)
