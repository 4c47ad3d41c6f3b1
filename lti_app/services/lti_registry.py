"""LTI registrations stored in the database, exposed to pylti1p3 as a `ToolConfAbstract`.

One issuer may have several client ids (several registrations of the tool in one Moodle), and
each registration several deployment ids. The platform's public keyset is cached in
`LtiPlatform.key_set_cache`; a launch signed with a key id the cache does not know refetches
the keyset once before it is refused, which is how a platform's key rotation is picked up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from pylti1p3.deployment import Deployment
from pylti1p3.registration import Registration
from pylti1p3.request import Request
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from lti_app.crypto import SecretBox
from lti_app.db import utcnow
from lti_app.models import LtiDeployment, LtiPlatform, LtiSession, Person, ToolKey
from lti_app.services.lti_keys import current_key, private_key_pem, public_key_pem
from lti_app.services.sites import normalise_base_url, upsert_site


class RegistryError(ValueError):
    """A registration that cannot be accepted, worded for the admin."""


class KeySetError(Exception):
    """The platform's keyset cannot be fetched or is not a JWKS."""


def _check_url(name: str, url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise RegistryError(f"{name} '{url}' is not an http(s) URL")
    return url.strip()


@dataclass(frozen=True)
class MoodleEndpoints:
    auth_login_url: str
    auth_token_url: str
    key_set_url: str


def moodle_endpoints(issuer: str) -> MoodleEndpoints:
    """Moodle's fixed LTI endpoints under its wwwroot (the issuer)."""
    root = issuer.rstrip("/")
    return MoodleEndpoints(
        auth_login_url=f"{root}/mod/lti/auth.php",
        auth_token_url=f"{root}/mod/lti/token.php",
        key_set_url=f"{root}/mod/lti/certs.php",
    )


def add_platform(
    session: Session,
    box: SecretBox,
    *,
    issuer: str,
    client_id: str,
    deployment_ids: Sequence[str],
    auth_login_url: str | None = None,
    auth_token_url: str | None = None,
    key_set_url: str | None = None,
    name: str = "",
    site_url: str | None = None,
    auth_audience: str | None = None,
    notes: list[str] | None = None,
) -> LtiPlatform:
    """Create or update one registration and add deployments to it (idempotent).

    Endpoints default to Moodle's; the Moodle site (whose courses launches link to) defaults to
    the issuer, which is Moodle's wwwroot. An existing platform or site keeps its name: `name`
    names only what is created here, and a different one is said in `notes`.
    """
    issuer = _check_url("issuer", issuer).rstrip("/")
    client_id = client_id.strip()
    if not client_id:
        raise RegistryError("client id is empty")
    defaults = moodle_endpoints(issuer)
    site = upsert_site(
        session, box, normalise_base_url(site_url or issuer), name=name, rename=False, notes=notes
    )
    platform = session.scalar(
        select(LtiPlatform).where(LtiPlatform.issuer == issuer, LtiPlatform.client_id == client_id)
    )
    if platform is None:
        platform = LtiPlatform(issuer=issuer, client_id=client_id)
        session.add(platform)
    if not platform.name:
        platform.name = name or issuer
    elif name and name != platform.name and notes is not None:
        notes.append(
            f"platform {issuer} keeps its name '{platform.name}' (not renamed to '{name}')"
        )
    platform.site_id = site.id
    platform.auth_login_url = _check_url(
        "auth login URL", auth_login_url or defaults.auth_login_url
    )
    platform.auth_token_url = _check_url(
        "auth token URL", auth_token_url or defaults.auth_token_url
    )
    new_key_set_url = _check_url("keyset URL", key_set_url or defaults.key_set_url)
    if platform.key_set_url != new_key_set_url:
        platform.key_set_cache = None
        platform.key_set_fetched_at = None
    platform.key_set_url = new_key_set_url
    platform.auth_audience = auth_audience
    platform.active = True
    session.flush()
    known = {d.deployment_id for d in platform.deployments}
    for dep in deployment_ids:
        dep = dep.strip()
        if not dep:
            raise RegistryError("deployment id is empty")
        if dep not in known:
            platform.deployments.append(LtiDeployment(deployment_id=dep, active=True))
            known.add(dep)
    session.flush()
    return platform


@dataclass(frozen=True)
class PlatformUse:
    """What depends on a platform, said before it is disabled or removed."""

    deployments: int
    live_sessions: int
    people: int


def platform_or_error(session: Session, platform_id: int) -> LtiPlatform:
    platform = session.get(LtiPlatform, platform_id)
    if platform is None:
        known = ", ".join(
            f"{p.id} ({p.issuer}, client {p.client_id})"
            for p in session.scalars(select(LtiPlatform).order_by(LtiPlatform.id))
        )
        raise RegistryError(f"no platform {platform_id}; known: {known or 'none'}")
    return platform


def platform_use(session: Session, platform: LtiPlatform) -> PlatformUse:
    def count(query: Any) -> int:
        return int(session.scalar(query) or 0)

    return PlatformUse(
        deployments=len(platform.deployments),
        live_sessions=count(
            select(func.count(LtiSession.id)).where(
                LtiSession.platform_id == platform.id, LtiSession.expires_at > utcnow()
            )
        ),
        people=count(select(func.count(Person.id)).where(Person.platform_id == platform.id)),
    )


def disable_platform(session: Session, platform: LtiPlatform) -> int:
    """Refuse the platform's logins and launches from now on, and end its launch sessions (a
    disabled platform's users must not keep using the tool). Returns the sessions ended.
    `add_platform` with the same issuer and client id enables it again."""
    platform.active = False
    ended = session.execute(delete(LtiSession).where(LtiSession.platform_id == platform.id))
    session.flush()
    return int(ended.rowcount)  # type: ignore[attr-defined]


def remove_platform(session: Session, platform: LtiPlatform) -> None:
    """Delete the registration, its deployments and its launch sessions. Courses, people, their
    data and the audit trail stay (their link to the platform is cleared by the foreign keys); the
    Moodle site stays too."""
    session.execute(delete(LtiSession).where(LtiSession.platform_id == platform.id))
    session.delete(platform)
    session.flush()


def find_platform(session: Session, issuer: str, client_id: str | None) -> LtiPlatform | None:
    """The active registration for issuer and client id; without a client id, the issuer's only
    one (an issuer with several registrations must say which)."""
    if "\x00" in issuer or (client_id is not None and "\x00" in client_id):
        return None  # PostgreSQL text cannot hold NUL: no registration has one
    query = select(LtiPlatform).where(LtiPlatform.issuer == issuer, LtiPlatform.active.is_(True))
    if client_id is not None:
        return session.scalar(query.where(LtiPlatform.client_id == client_id))
    rows = list(session.scalars(query.limit(2)))
    return rows[0] if len(rows) == 1 else None


def issuer_known(session: Session, issuer: str) -> bool:
    if "\x00" in issuer:
        return False
    return (
        session.scalar(
            select(LtiPlatform.id).where(LtiPlatform.issuer == issuer, LtiPlatform.active.is_(True))
        )
        is not None
    )


def url_origins(*urls: str) -> set[str]:
    """The origins (scheme://host[:port], lower case as browsers send them) of http(s) URLs."""
    origins: set[str] = set()
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in {"http", "https"} and parts.netloc:
            origins.add(f"{parts.scheme}://{parts.netloc}".lower())
    return origins


def platform_origins(session: Session) -> list[str]:
    """Origins of the active platforms (issuer and login page), for CSP frame-ancestors."""
    origins: set[str] = set()
    for issuer, login in session.execute(
        select(LtiPlatform.issuer, LtiPlatform.auth_login_url).where(LtiPlatform.active.is_(True))
    ):
        origins |= url_origins(issuer, login)
    return sorted(origins)


# --------------------------------------------------------------------------- keyset cache


def fetch_key_set(
    session: Session,
    platform: LtiPlatform,
    http: requests.Session,
    *,
    timeout: float,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Fetch the platform's JWKS and store it in the cache."""
    try:
        resp = http.get(platform.key_set_url, timeout=timeout)
        resp.raise_for_status()
        data = resp.json()
    except (requests.RequestException, ValueError) as exc:
        raise KeySetError(f"cannot fetch the platform keyset: {exc.__class__.__name__}") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KeySetError("the platform keyset is not a JWKS ({'keys': [...]})")
    platform.key_set_cache = data
    platform.key_set_fetched_at = now or utcnow()
    session.flush()
    return data


def cached_key_set(
    platform: LtiPlatform, *, max_age: int, now: datetime | None = None
) -> dict[str, Any] | None:
    if platform.key_set_cache is None or platform.key_set_fetched_at is None:
        return None
    if platform.key_set_fetched_at + timedelta(seconds=max_age) < (now or utcnow()):
        return None
    return platform.key_set_cache


# --------------------------------------------------------------------------- pylti1p3 adapter


class ToolRegistration(Registration):
    """pylti1p3's Registration, signing with the tool's current key and naming its kid."""

    def __init__(self, platform: LtiPlatform, key: ToolKey | None, box: SecretBox) -> None:
        super().__init__()
        self.platform_id = platform.id
        self._tool_key = key
        self._box = box
        self.set_issuer(platform.issuer)
        self.set_client_id(platform.client_id)
        self.set_auth_login_url(platform.auth_login_url)
        self.set_auth_token_url(platform.auth_token_url)
        self.set_key_set_url(platform.key_set_url)
        if platform.auth_audience:
            self.set_auth_audience(platform.auth_audience)

    def get_tool_private_key(self) -> str | None:
        if self._tool_key is None:
            return None
        return private_key_pem(self._box, self._tool_key)

    def get_tool_public_key(self) -> str | None:
        return None if self._tool_key is None else public_key_pem(self._tool_key)

    def get_kid(self) -> str | None:
        return None if self._tool_key is None else self._tool_key.kid

    def get_jwks(self) -> list[Any]:
        return [] if self._tool_key is None else [dict(self._tool_key.public_jwk)]


class DbToolConf(ToolConfAbstract[Request]):
    """Registrations looked up in the database for every message (nothing cached in memory).

    Every issuer is treated as possibly having several client ids, so the `aud` claim (the
    client id) always takes part in the lookup.
    """

    def __init__(self, session: Session, box: SecretBox) -> None:
        self._db = session
        self._box = box

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def platform(self, iss: str, client_id: str | None) -> LtiPlatform | None:
        if not isinstance(iss, str) or (client_id is not None and not isinstance(client_id, str)):
            return None
        return find_platform(self._db, iss, client_id)

    def _registration(self, platform: LtiPlatform | None) -> ToolRegistration | None:
        if platform is None:
            return None
        return ToolRegistration(platform, current_key(self._db), self._box)

    def find_registration_by_issuer(  # type: ignore[override]
        self, iss: str, *args: Any, **kwargs: Any
    ) -> ToolRegistration | None:
        return self._registration(self.platform(iss, None))

    def find_registration_by_params(  # type: ignore[override]
        self, iss: str, client_id: str, *args: Any, **kwargs: Any
    ) -> ToolRegistration | None:
        return self._registration(self.platform(iss, client_id))

    def find_deployment(self, iss: str, deployment_id: str) -> Deployment | None:
        platform = self.platform(iss, None)
        return None if platform is None else self._deployment(platform, deployment_id)

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args: Any, **kwargs: Any
    ) -> Deployment | None:
        platform = self.platform(iss, client_id)
        return None if platform is None else self._deployment(platform, deployment_id)

    def _deployment(self, platform: LtiPlatform, deployment_id: str) -> Deployment | None:
        if not isinstance(deployment_id, str) or "\x00" in deployment_id:
            return None
        found = self._db.scalar(
            select(LtiDeployment.id).where(
                LtiDeployment.platform_id == platform.id,
                LtiDeployment.deployment_id == deployment_id,
                LtiDeployment.active.is_(True),
            )
        )
        return None if found is None else Deployment().set_deployment_id(deployment_id)
