"""Secrets at rest: encrypted, rotatable, and never readable without the right key."""

from __future__ import annotations

import pytest

from lti_app.config import ConfigError, load_settings
from lti_app.crypto import SecretBox, SecretError, generate_key

TOKEN = "0123456789abcdef0123456789abcdef"


def test_roundtrip_and_ciphertext_hides_plaintext() -> None:
    box = SecretBox(generate_key())
    sealed = box.encrypt(TOKEN)
    assert TOKEN not in sealed
    assert box.decrypt(sealed) == TOKEN
    assert box.encrypt(TOKEN) != sealed  # fresh IV each time


def test_wrong_key_is_a_clear_error_not_garbage() -> None:
    sealed = SecretBox(generate_key()).encrypt(TOKEN)
    with pytest.raises(SecretError, match="cannot be decrypted with the configured keys"):
        SecretBox(generate_key()).decrypt(sealed)


def test_rotation_keeps_old_values_readable_and_rewrites_them() -> None:
    old, new = generate_key(), generate_key()
    sealed_old = SecretBox(old).encrypt(TOKEN)
    rotated_box = SecretBox(new, previous_keys=[old])
    assert rotated_box.decrypt(sealed_old) == TOKEN
    resealed = rotated_box.rotate(sealed_old)
    assert SecretBox(new).decrypt(resealed) == TOKEN


@pytest.mark.parametrize("key", ["", "not-a-fernet-key"])
def test_missing_or_malformed_key_fails_at_start(key: str) -> None:
    with pytest.raises(ConfigError, match="encryption_key"):
        SecretBox(key)


def test_from_settings_without_key_is_a_startup_error() -> None:
    with pytest.raises(ConfigError, match=r"security\.encryption_key is empty"):
        SecretBox.from_settings(load_settings(None, environ={}))


def test_repr_hides_keys() -> None:
    key = generate_key()
    assert key not in repr(SecretBox(key))
