"""LTI Dynamic Registration (Moodle: "Manage tools" → Tool URL → "Add LTI Advantage").

Moodle opens the tool's registration URL with `openid_configuration` and `registration_token`;
the tool reads the platform's OpenID configuration, posts its own configuration to the
platform's registration endpoint and stores the answer (client id, deployment id, endpoints)
as an `LtiPlatform`. pylti1p3next's `DynamicRegistration` does the protocol; this module adds:

- an admin-issued, signed, single-use registration code in the URL (`arche-predict lti
  registration-url`): without it anyone could register a platform of their own;
- the issuer must be the origin the configuration was fetched from (LTI-DR 1.0, 3.5.1);
- timeouts on every request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pylti1p3.dynamic_registration import DynamicRegistration
from pylti1p3.exception import LtiException
from sqlalchemy.orm import Session

from lti_app.crypto import SecretBox
from lti_app.models import LtiPlatform
from lti_app.services.lti_registry import RegistryError, add_platform
from lti_app.services.lti_storage import DbLaunchDataStorage

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
SCOPES = [
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
]


class DynamicRegistrationError(Exception):
    """The registration could not be completed; the message is safe to show to the admin."""


@dataclass(frozen=True)
class ToolUrls:
    login: str
    launch: str
    jwks: str
    logo: str


class _Registration(DynamicRegistration):
    client_name = "arche-predict"
    description = "Learning analytics for Moodle: engagement and honest grade estimates."

    def __init__(
        self,
        db: Session,
        box: SecretBox,
        urls: ToolUrls,
        openid_configuration: str,
        registration_token: str | None,
        http: requests.Session,
        notes: list[str] | None = None,
    ) -> None:
        self._notes = notes
        self._db = db
        self._box = box
        self._urls = urls
        self._openid_configuration = openid_configuration
        self._registration_token = registration_token
        self._http = http
        self.platform: LtiPlatform | None = None

    def get_request_session(self) -> requests.Session:
        return self._http

    def get_initiate_login_uri(self) -> str:
        return self._urls.login

    def get_jwks_uri(self) -> str:
        return self._urls.jwks

    def get_redirect_uris(self) -> list[str]:
        return [self._urls.launch]

    def get_target_link_uri(self) -> str:
        return self._urls.launch

    def get_domain(self) -> str:
        return urlsplit(self._urls.launch).netloc

    def get_logo_uri(self) -> str:
        return self._urls.logo

    def get_scopes(self) -> list[str]:
        return list(SCOPES)

    def get_claims(self) -> list[str]:
        # Only what the tool uses (#18, item 8: data minimisation): who launched (iss, sub) and
        # the name pages show. No e-mail: addresses come from the course's roster, where a
        # teacher's address list needs them, never from a launch.
        return ["iss", "sub", "name", "given_name", "family_name"]

    def get_messages(self) -> list[dict[str, str]]:
        return [
            {
                "type": "LtiDeepLinkingRequest",
                "target_link_uri": self._urls.launch,
                "label": "arche-predict course dashboard",
            }
        ]

    def get_openid_configuration_endpoint(self) -> str:
        return self._openid_configuration

    def get_registration_token(self) -> str:
        return self._registration_token  # type: ignore[return-value]

    def complete_registration(
        self, openid_configuration: dict[str, Any], openid_registration: dict[str, Any]
    ) -> LtiPlatform:
        issuer = openid_configuration.get("issuer")
        if not isinstance(issuer, str) or not _same_origin(issuer, self._openid_configuration):
            raise DynamicRegistrationError(
                "the platform's issuer is not the site its configuration came from"
            )
        tool = openid_registration.get(TOOL_CONFIGURATION) or {}
        client_id = openid_registration.get("client_id")
        deployment_id = tool.get("deployment_id") if isinstance(tool, dict) else None
        if not isinstance(client_id, str) or not isinstance(deployment_id, str):
            raise DynamicRegistrationError("the platform returned no client id or deployment id")
        endpoints = {
            key: openid_configuration.get(key)
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        }
        if not all(isinstance(v, str) for v in endpoints.values()):
            raise DynamicRegistrationError("the platform configuration lacks its endpoints")
        platform_conf = openid_configuration.get(PLATFORM_CONFIGURATION) or {}
        name = (
            platform_conf.get("product_family_code", "") if isinstance(platform_conf, dict) else ""
        )
        try:
            self.platform = add_platform(
                self._db,
                self._box,
                issuer=issuer,
                client_id=client_id,
                deployment_ids=[deployment_id],
                auth_login_url=str(endpoints["authorization_endpoint"]),
                auth_token_url=str(endpoints["token_endpoint"]),
                key_set_url=str(endpoints["jwks_uri"]),
                name=str(name),
                notes=self._notes,
            )
        except RegistryError as exc:
            raise DynamicRegistrationError(str(exc)) from None
        return self.platform


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc.lower()) == (pb.scheme, pb.netloc.lower())


def register(
    db: Session,
    box: SecretBox,
    *,
    urls: ToolUrls,
    openid_configuration: str,
    registration_token: str | None,
    http: requests.Session,
    notes: list[str] | None = None,
) -> LtiPlatform:
    """Register the tool with the platform; an existing site or platform keeps its name (said
    in `notes`)."""
    parts = urlsplit(openid_configuration)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise DynamicRegistrationError("openid_configuration is not an http(s) URL")
    flow = _Registration(db, box, urls, openid_configuration, registration_token, http, notes)
    try:
        flow.register()
    except DynamicRegistrationError:
        raise
    except (LtiException, requests.RequestException, ValueError, KeyError, AssertionError) as exc:
        raise DynamicRegistrationError(
            f"the platform did not complete the registration ({exc.__class__.__name__})"
        ) from None
    assert flow.platform is not None
    return flow.platform


# --------------------------------------------------------------------------- registration codes

_CODE_SALT = "arche-predict dynamic registration"
_CODE_PREFIX = "dynreg-"


def issue_code(db: Session, secret_key: str, *, ttl_seconds: int) -> str:
    """A signed, single-use code for one registration URL, valid `ttl_seconds`."""
    nonce = secrets.token_urlsafe(16)
    DbLaunchDataStorage(db).set_value(_CODE_PREFIX + nonce, {"ttl": ttl_seconds}, exp=ttl_seconds)
    return URLSafeTimedSerializer(secret_key, salt=_CODE_SALT).dumps({"n": nonce})


def redeem_code(db: Session, secret_key: str, code: str) -> bool:
    """True once for a good code; False when forged, expired or already used."""
    try:
        data = URLSafeTimedSerializer(secret_key, salt=_CODE_SALT).loads(code[:500])
    except BadSignature:
        return False
    nonce = data.get("n") if isinstance(data, dict) else None
    if not isinstance(nonce, str):
        return False
    return DbLaunchDataStorage(db).consume(_CODE_PREFIX + nonce) is not None
