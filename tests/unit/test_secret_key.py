"""The installation's secret key: weak values are refused at start-up without being
echoed, the two derived keys are HKDF-SHA256 under distinct labels, a rotation keeps what
the previous key sealed or signed readable, and the generated key file is never seen half
written."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from pydantic import ValidationError

from authtrail.cli import main
from connectors.config import from_record, to_record
from infra import secrets as secrets_module
from infra.secrets import SecretBox, load_keyring
from query_api.auth import SessionSigner
from schemas.destinations import DestinationError, make_destination
from schemas.keys import (
    DESTINATION_SECRETS,
    SESSION_COOKIES,
    KeyRing,
    WeakSecretKeyError,
    check_key_strength,
    derive,
)
from schemas.settings import Settings
from tests.samples import DD_KEY

ROOT = Path(__file__).resolve().parents[2]


def example_values() -> list[str]:
    """Every AUTHTRAIL_SECRET_KEY value the repository's examples carry."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    values = [
        line.split("=", 1)[1].strip()
        for line in lines
        if line.lstrip("# ").startswith("AUTHTRAIL_SECRET_KEY=")
    ]
    assert values, ".env.example has no AUTHTRAIL_SECRET_KEY"
    return values


WEAK = [
    "",
    "   ",
    "short-key",
    "k" * 64,  # one character
    "password" * 6,  # few characters, repeated
    "0123456789abcdef" * 4,  # a repeated block, 16 distinct characters
    "Tr0ub4dor&3-Tr0ub4dor&3-Tr0ub4dor&3",  # a word repeated
    *example_values(),
]


@pytest.mark.parametrize("value", WEAK, ids=range(len(WEAK)))
def test_weak_and_example_keys_are_refused_without_being_echoed(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AUTHTRAIL_SECRET_KEY", value)
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path)
    message = str(refused.value)
    assert "AUTHTRAIL_SECRET_KEY" in message
    if value.strip():
        assert value not in message

    # What a person sees: the command ends with the reason before touching anything.
    result = CliRunner().invoke(main, ["token", "list"], env={"AUTHTRAIL_SECRET_KEY": value})
    assert result.exit_code == 2
    assert "AUTHTRAIL_SECRET_KEY" in result.output and "openssl rand" in result.output
    if value.strip():
        assert value not in result.output


@pytest.mark.parametrize(
    "value",
    [
        base64.b64encode(secrets.token_bytes(48)).decode(),  # openssl rand -base64 48
        secrets.token_hex(16),  # openssl rand -hex 16: 128 bits in 32 characters
        secrets.token_hex(32),
        secrets.token_urlsafe(32),
    ],
)
def test_random_keys_are_taken(value: str, tmp_path: Path) -> None:
    for _ in range(200):  # any draw, not one lucky one
        check_key_strength(secrets.token_hex(16))
    settings = Settings(data_dir=tmp_path, secret_key=value)
    assert load_keyring(settings).current == value.encode()


def _rfc5869(key: bytes, salt: bytes, info: bytes) -> bytes:
    prk = hmac.new(salt, key, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def test_the_derived_keys_are_hkdf_under_distinct_labels() -> None:
    key = secrets.token_bytes(48)
    sealing, signing = derive(key, DESTINATION_SECRETS), derive(key, SESSION_COOKIES)
    assert sealing == _rfc5869(key, b"authtrail", b"authtrail/destination-secrets/v1")
    assert signing == _rfc5869(key, b"authtrail", b"authtrail/session-cookies/v1")
    assert len({sealing, signing, key[:32]}) == 3

    # The sealing key really is the derived one: a Fernet made from it opens a record.
    destination = make_destination("datadog", "dd", {"api_key": DD_KEY})
    sealed = orjson_secret(to_record(destination, SecretBox(KeyRing(key))), "api_key")
    opened = Fernet(base64.urlsafe_b64encode(sealing)).decrypt(sealed.encode()).decode()
    assert opened == DD_KEY


def orjson_secret(record: bytes, key: str) -> str:
    import orjson

    sealed: str = orjson.loads(record)["settings"][key]["sealed"]
    return sealed


def test_a_rotation_keeps_what_the_previous_key_sealed_and_signed() -> None:
    old, new = secrets.token_bytes(48), secrets.token_bytes(48)
    destination = make_destination("datadog", "dd", {"api_key": DD_KEY})
    old_record = to_record(destination, SecretBox(KeyRing(old)))
    rotating = SecretBox(KeyRing(new, (old,)))
    assert from_record(old_record, rotating) == destination
    with pytest.raises(DestinationError, match="AUTHTRAIL_SECRET_KEY_PREVIOUS"):
        from_record(old_record, SecretBox(KeyRing(new)))
    # What is written during the rotation is sealed with the new key alone.
    new_record = to_record(destination, rotating)
    assert from_record(new_record, SecretBox(KeyRing(new))) == destination
    with pytest.raises(DestinationError):
        from_record(new_record, SecretBox(KeyRing(old)))

    cookie = SessionSigner(KeyRing(old)).make("tok123")
    assert SessionSigner(KeyRing(new, (old,))).token_id(cookie) == "tok123"
    assert SessionSigner(KeyRing(new)).token_id(cookie) is None
    fresh = SessionSigner(KeyRing(new, (old,))).make("tok123")
    assert SessionSigner(KeyRing(old)).token_id(fresh) is None


def test_secrets_sealed_before_hkdf_still_open() -> None:
    key = secrets.token_bytes(48)
    legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"authtrail-secrets|" + key).digest()))
    destination = make_destination("datadog", "dd", {"api_key": DD_KEY})
    import orjson

    data = orjson.loads(to_record(destination, SecretBox(KeyRing(key))))
    data["settings"]["api_key"] = {"sealed": legacy.encrypt(DD_KEY.encode()).decode()}
    assert from_record(orjson.dumps(data), SecretBox(KeyRing(key))) == destination


def test_previous_keys_are_a_comma_separated_list(tmp_path: Path) -> None:
    current, one, two = (secrets.token_urlsafe(48) for _ in range(3))
    settings = Settings(data_dir=tmp_path, secret_key=current, secret_key_previous=f"{one}, {two},")
    assert load_keyring(settings) == KeyRing(current.encode(), (one.encode(), two.encode()))


def test_the_generated_key_file_is_private_and_never_read_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that starts while another is writing the key file must get the key the
    other one wrote, never an empty one: here the first writer is held in the middle of
    writing while a second process asks for the key."""
    settings = Settings(data_dir=tmp_path)
    inside, release = threading.Event(), threading.Event()
    draw = secrets.token_urlsafe
    calls: list[int] = []

    def slow_first_draw(nbytes: int | None = None) -> str:
        calls.append(1)
        if len(calls) == 1:
            inside.set()
            release.wait(10)
        return draw(nbytes)

    monkeypatch.setattr(secrets_module.secrets, "token_urlsafe", slow_first_draw)
    first: list[KeyRing] = []
    writer = threading.Thread(target=lambda: first.append(load_keyring(settings)))
    writer.start()
    assert inside.wait(10)
    try:
        second = load_keyring(settings)
    finally:
        release.set()
        writer.join(10)
    assert first == [second]
    assert len(second.current) >= 32
    path = tmp_path / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # nothing left aside


def test_a_key_file_someone_emptied_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("")
    os.chmod(tmp_path / "secret.key", 0o600)
    with pytest.raises(WeakSecretKeyError, match=r"secret\.key is empty"):
        load_keyring(Settings(data_dir=tmp_path))
