"""The installation's secret key: how strong it must be, and the keys derived from it.

One key (``AUTHTRAIL_SECRET_KEY``) serves two purposes, each with a key of its own derived
by HKDF-SHA256 under a distinct label, so neither use can be turned against the other:
sealing destinations' secrets (Fernet) and signing session cookies (HMAC-SHA256).

Rotation: the new key is ``AUTHTRAIL_SECRET_KEY``, the old ones are listed in
``AUTHTRAIL_SECRET_KEY_PREVIOUS``. Everything new is sealed and signed with the current
key; what the previous ones sealed or signed is still accepted, until
``authtrail secrets rotate`` has re-sealed the destinations and the previous keys are
removed."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_KEY_CHARS = 32
MIN_KEY_BITS = 80
REPEAT_CHARS = 8
MIN_DISTINCT_CHARS = 8
GENERATE_HINT = "generate one with: openssl rand -base64 48"

# Values shipped in the repository's examples: a key someone copied is public.
PLACEHOLDERS = frozenset({"change-me-to-48-random-bytes-base64", "change-me", "changeme"})

# The labels of the derived keys: changing one invalidates everything it protects.
DESTINATION_SECRETS = "destination-secrets"
SESSION_COOKIES = "session-cookies"
ERASURE_PSEUDONYMS = "erasure-pseudonyms"  # keyed hashes and pseudonyms of erased people


class WeakSecretKeyError(ValueError):
    """A secret key that must not be used. The message never contains the key."""


def estimated_bits(text: str) -> float:
    """Shannon entropy of ``text``'s own character frequencies, times its length: a
    rough upper bound of the guessing work, low for repeated or few-letter text."""
    counts = Counter(text)
    return -sum(n * math.log2(n / len(text)) for n in counts.values()) if text else 0.0


def _repeats(text: str, length: int = REPEAT_CHARS) -> bool:
    """True when some ``length`` characters occur twice in ``text`` (a word or block
    typed again): in random text of a key's size that practically never happens."""
    seen: set[str] = set()
    for start in range(len(text) - length + 1):
        part = text[start : start + length]
        if part in seen:
            return True
        seen.add(part)
    return False


def check_key_strength(text: str, what: str = "AUTHTRAIL_SECRET_KEY") -> None:
    """Raises ``WeakSecretKeyError`` unless ``text`` looks like a random key: at least
    32 characters, 8 of them distinct, 80 bits by its own character frequencies, no
    8 characters in a row occurring twice, and not one of the repository's example
    values. Any output of ``openssl rand -hex 16`` or longer passes."""
    value = text.strip()
    if not value:
        raise WeakSecretKeyError(f"{what} is empty: {GENERATE_HINT}")
    if value in PLACEHOLDERS or value.lower().startswith("change-me"):
        raise WeakSecretKeyError(
            f"{what} is the example value from .env.example, which is public: {GENERATE_HINT}"
        )
    if len(value) < MIN_KEY_CHARS:
        raise WeakSecretKeyError(
            f"{what} is {len(value)} characters; at least {MIN_KEY_CHARS} random "
            f"characters are needed: {GENERATE_HINT}"
        )
    if (
        len(set(value)) < MIN_DISTINCT_CHARS
        or estimated_bits(value) < MIN_KEY_BITS
        or _repeats(value)
    ):
        raise WeakSecretKeyError(f"{what} is not random enough (repeated text): {GENERATE_HINT}")


def derive(key: bytes, label: str) -> bytes:
    """The 32-byte key for ``label`` (HKDF-SHA256, RFC 5869)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"authtrail",
        info=f"authtrail/{label}/v1".encode(),
    ).derive(key)


def legacy_derive(key: bytes, label: str) -> bytes:
    """The derivation of releases before HKDF (SHA-256 of a label and the key), kept to
    open what they sealed until ``authtrail secrets rotate`` re-seals it."""
    prefix = {DESTINATION_SECRETS: b"authtrail-secrets|", SESSION_COOKIES: b"authtrail-session|"}
    return hashlib.sha256(prefix[label] + key).digest()


@dataclass(frozen=True)
class KeyRing:
    """The current key (seals and signs) and previous ones (still open and verify)."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    def for_writing(self, label: str) -> bytes:
        return derive(self.current, label)

    def for_reading(self, label: str, legacy: bool = False) -> list[bytes]:
        """Every key that may have written under ``label``, the current one first;
        with ``legacy`` also the pre-HKDF derivations."""
        keys = [derive(key, label) for key in (self.current, *self.previous)]
        if legacy:
            keys += [legacy_derive(key, label) for key in (self.current, *self.previous)]
        return keys
