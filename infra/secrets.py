"""The installation's secret key at run time: loading it (from ``AUTHTRAIL_SECRET_KEY`` or
the key file generated once into the data dir) and sealing secrets with it. The rules a key
must meet and the derivations are in ``schemas.keys``."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from schemas.destinations import DestinationError
from schemas.keys import DESTINATION_SECRETS, KeyRing, check_key_strength
from schemas.settings import Settings


class MissingSecretKeyError(RuntimeError):
    """A deployment of several processes needs ``AUTHTRAIL_SECRET_KEY`` set."""


def load_keyring(settings: Settings) -> KeyRing:
    """``AUTHTRAIL_SECRET_KEY`` (with ``AUTHTRAIL_SECRET_KEY_PREVIOUS``), else the key
    generated once into the data dir. With a ClickHouse server (a deployment of
    several processes, each with a data dir of its own) a generated key would differ
    per process, so sessions and destination secrets would not carry across them:
    then the key must be set (``MissingSecretKeyError``). Raises
    ``WeakSecretKeyError`` for a key file someone emptied or filled by hand."""
    previous = tuple(
        part.strip().encode()
        for part in (settings.secret_key_previous or SecretStr("")).get_secret_value().split(",")
        if part.strip()
    )
    if settings.secret_key is not None:
        return KeyRing(settings.secret_key.get_secret_value().strip().encode(), previous)
    if settings.clickhouse_url:
        raise MissingSecretKeyError(
            "set AUTHTRAIL_SECRET_KEY (e.g. openssl rand -base64 48): with a ClickHouse "
            "server every API and connector process must share one key"
        )
    path = settings.data_dir / "secret.key"
    if not path.exists():
        _create_key_file(path)
    text = path.read_text().strip()
    check_key_strength(text, str(path))
    return KeyRing(text.encode(), previous)


def _create_key_file(path: Path) -> None:
    """Writes a new random key to ``path``, readable by its owner only. The file appears
    whole or not at all (written aside, then linked into place), so a process starting
    at the same moment reads either nothing or the complete key, never a half-written
    one; when two race, the first link wins and both use its key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
            handle.flush()
            os.fsync(handle.fileno())
        # Another process linked its key first: that one is the key.
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)


class SecretBox:
    """Seals secret settings for the config topic (Fernet: AES-128-CBC + HMAC-SHA256)
    with the key derived from the current ``AUTHTRAIL_SECRET_KEY``; opens what the current
    or a previous key sealed (also under the derivation of releases before HKDF)."""

    def __init__(self, keys: KeyRing) -> None:
        writer = keys.for_writing(DESTINATION_SECRETS)
        readers = [k for k in keys.for_reading(DESTINATION_SECRETS, legacy=True) if k != writer]
        self._fernet = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(k)) for k in (writer, *readers)]
        )

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise DestinationError(
                "secret",
                "cannot be decrypted: AUTHTRAIL_SECRET_KEY differs from the key it was stored "
                "with (during a rotation, list the former key in AUTHTRAIL_SECRET_KEY_PREVIOUS)",
            ) from None
