"""The API behind a reverse proxy, served by uvicorn as ``authtrail api`` serves it
(``server_config``): ``X-Forwarded-Proto`` and ``X-Forwarded-For`` are believed from the
addresses in ``AUTHTRAIL_API_TRUSTED_PROXIES`` alone. From a trusted proxy the session
cookie is ``Secure`` and failed sign-ins are limited per forwarded client, so one attacker
does not lock everyone out; from anyone else the headers change nothing, so a client can
neither claim HTTPS nor dodge the limit by inventing addresses."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from infra.secrets import load_keyring
from query_api.app import create_app
from query_api.auth import SessionSigner
from query_api.limits import ApiLimits
from query_api.repository import LogRepository
from query_api.server import server_config
from query_api.tokens import TokenLog
from schemas.log_store import StoreLocation
from schemas.settings import Settings
from tests.integration.conftest import free_port

WRONG = "at_222222222222_" + "y" * 43
BURST = 3


@contextmanager
def serving(
    store: StoreLocation, token_log: TokenLog, tmp_path: Path, trusted: str
) -> Iterator[str]:
    settings = Settings(
        data_dir=tmp_path,
        api_port=free_port(),
        api_trusted_proxies=trusted,
        secret_key=secrets.token_urlsafe(48),
    )
    repository = LogRepository(store)
    app = create_app(
        repository,
        token_log,
        SessionSigner(load_keyring(settings)),
        limits=ApiLimits(rate=0.001, burst=BURST),
    )
    server = uvicorn.Server(server_config(app, settings, lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{settings.api_port}"
    finally:
        server.should_exit = True
        thread.join(10)
        repository.close()


def sign_in(url: str, token: str, forwarded_for: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/session",
        json={"token": token},
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": forwarded_for},
        timeout=10,
    )


@pytest.fixture
def api_behind(
    request: pytest.FixtureRequest, store: StoreLocation, token_log: TokenLog, tmp_path: Path
) -> Iterator[str]:
    """The API's URL, trusting the proxies ``request.param``; the test's client connects
    from 127.0.0.1."""
    with serving(store, token_log, tmp_path, request.param) as url:
        yield url


@pytest.mark.parametrize("api_behind", ["127.0.0.1", "127.0.0.0/8,10.0.0.0/8"], indirect=True)
def test_a_trusted_proxy_is_believed(api_behind: str, tokens: dict[str, str]) -> None:
    signed_in = sign_in(api_behind, tokens["viewer"], "203.0.113.10")
    assert signed_in.status_code == 200, signed_in.text
    cookie = signed_in.headers["set-cookie"].lower()
    assert "; secure" in cookie and "httponly" in cookie

    # One attacker's guesses use up its own allowance only.
    attacker = [sign_in(api_behind, WRONG, "198.51.100.66").status_code for _ in range(BURST + 1)]
    assert attacker == [401] * BURST + [429]
    assert sign_in(api_behind, WRONG, "203.0.113.10").status_code == 401
    assert sign_in(api_behind, tokens["viewer"], "203.0.113.11").status_code == 200
    # A client address the proxy appends to one the client sent: the proxy's is used.
    spoofed = [
        sign_in(api_behind, WRONG, f"192.0.2.{i}, 198.51.100.66").status_code for i in range(2)
    ]
    assert spoofed == [429, 429]


@pytest.mark.parametrize("api_behind", ["", "10.0.0.0/8"], indirect=True)
def test_an_untrusted_forwarder_is_not(api_behind: str, tokens: dict[str, str]) -> None:
    signed_in = sign_in(api_behind, tokens["viewer"], "203.0.113.10")
    assert signed_in.status_code == 200, signed_in.text
    assert "secure" not in signed_in.headers["set-cookie"].lower()

    # Inventing a new address per guess does not reset the limit: the peer's counts.
    guesses = [sign_in(api_behind, WRONG, f"192.0.2.{i}").status_code for i in range(BURST + 1)]
    assert guesses == [401] * BURST + [429]


def test_trusted_proxies_must_be_addresses(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not an IP address or network"):
        Settings(data_dir=tmp_path, api_trusted_proxies="10.0.0.0/8, proxy.internal")
    settings = Settings(data_dir=tmp_path, api_trusted_proxies=" 10.0.0.0/8 , fd00::/8 ")
    assert settings.api_trusted_proxies == "10.0.0.0/8,fd00::/8"
