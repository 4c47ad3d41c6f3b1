"""Encryption at rest for secrets (the Moodle web-service token, the LTI private keys).

Uses `cryptography`'s Fernet (AES-128-CBC with HMAC-SHA256, timestamped tokens) through
`MultiFernet`, so the key can be rotated: new values are written with the current key, and
values written with a previous key stay readable until `rotate` re-encrypts them.
There is no plain-text fallback: a missing or malformed key is a start-up error.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from lti_app.config import ConfigError, Settings


class SecretError(Exception):
    """A stored secret cannot be decrypted (wrong or rotated-away key, or corrupted value)."""


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


class SecretBox:
    """Encrypts and decrypts short secrets. Its repr never shows a key."""

    def __init__(self, key: str, previous_keys: Sequence[str] = ()) -> None:
        if not key:
            raise ConfigError("security.encryption_key is empty: secrets cannot be stored")
        fernets = []
        for name, value in [("security.encryption_key", key)] + [
            (f"security.previous_encryption_keys[{i}]", k) for i, k in enumerate(previous_keys)
        ]:
            try:
                fernets.append(Fernet(value.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise ConfigError(
                    f"{name} is not a valid Fernet key (32 url-safe base64-encoded bytes); "
                    "generate one with `arche-predict config generate-key`"
                ) from None
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if not settings.security.encryption_key:
            raise ConfigError(
                f"{settings.source}: security.encryption_key is empty; set it in the config file "
                "or ARCHE_PREDICT_SECURITY__ENCRYPTION_KEY (`arche-predict config generate-key`)"
            )
        return cls(settings.security.encryption_key, settings.security.previous_encryption_keys)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            raise SecretError(
                "a stored secret cannot be decrypted with the configured keys; was "
                "security.encryption_key changed without listing the old key in "
                "security.previous_encryption_keys?"
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a value under the current key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretError("a stored secret cannot be decrypted for rotation") from None

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"
