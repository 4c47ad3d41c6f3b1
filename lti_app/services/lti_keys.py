"""The tool's own RSA keys: rotation, the published JWKS, and the private key for signing.

The private half is stored only encrypted (`SecretBox`). A rotation retires the current key
instead of deleting it: platforms cache the tool's JWKS, so a retired key stays published for
`lti.key_overlap_days` and signatures made just before the rotation keep verifying.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lti_app.crypto import SecretBox
from lti_app.db import utcnow
from lti_app.models import ToolKey

KEY_SIZE = 2048


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def rotate_key(session: Session, box: SecretBox, *, now: datetime | None = None) -> ToolKey:
    """Create a new current key and retire the previous one (it stays in the JWKS a while)."""
    now = now or utcnow()
    for old in session.scalars(select(ToolKey).where(ToolKey.retired_at.is_(None))):
        old.retired_at = now
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    numbers = private.public_key().public_numbers()
    kid = secrets.token_hex(16)
    jwk = {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": kid,
        "n": _b64url_uint(numbers.n),
        "e": _b64url_uint(numbers.e),
    }
    key = ToolKey(
        kid=kid,
        alg="RS256",
        private_key_encrypted=box.encrypt(pem),
        public_jwk=jwk,
        created_at=now,
    )
    session.add(key)
    session.flush()
    return key


def current_key(session: Session) -> ToolKey | None:
    return session.scalars(
        select(ToolKey).where(ToolKey.retired_at.is_(None)).order_by(ToolKey.id.desc()).limit(1)
    ).first()


def ensure_key(session: Session, box: SecretBox) -> ToolKey:
    return current_key(session) or rotate_key(session, box)


def published_jwks(
    session: Session, *, overlap_days: int, now: datetime | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The current key and the keys retired less than `overlap_days` ago, newest first."""
    now = now or utcnow()
    cutoff = now - timedelta(days=overlap_days)
    keys = session.scalars(
        select(ToolKey)
        .where(or_(ToolKey.retired_at.is_(None), ToolKey.retired_at > cutoff))
        .order_by(ToolKey.id.desc())
    )
    return {"keys": [dict(k.public_jwk) for k in keys]}


def private_key_pem(box: SecretBox, key: ToolKey) -> str:
    """The decrypted private key, for signing only; never log or render it."""
    return box.decrypt(key.private_key_encrypted)


def public_key_pem(key: ToolKey) -> str:
    jwk = key.public_jwk
    n = int.from_bytes(base64.urlsafe_b64decode(jwk["n"] + "=" * (-len(jwk["n"]) % 4)), "big")
    e = int.from_bytes(base64.urlsafe_b64decode(jwk["e"] + "=" * (-len(jwk["e"]) % 4)), "big")
    public = rsa.RSAPublicNumbers(e, n).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
