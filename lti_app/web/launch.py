"""pylti1p3's Flask login and launch, hardened.

What pylti1p3 does not do, and this module adds:

- the login state lives in the database (every worker sees it) and is consumed by the first
  launch that presents it, whether that launch is accepted or refused (a refused attempt must
  not leave the state usable for another try); the nonce is consumed too: an id_token can be
  used once;
- the state cookie, when the browser kept it, must match; when the browser blocks cookies in
  Moodle's iframe, the state is still single-use, short-lived and bound to the token's nonce;
- the token's header and payload must be JSON objects nested at most `MAX_JSON_DEPTH` deep (a
  20,000-level document made Python's parser raise RecursionError: a 500);
- only RS256 is accepted (`alg: none` and HS256 signed with the public key are refused before
  any key is looked at);
- `aud` must hold the client id and `azp`, when present (or when `aud` has several values),
  must be it; `iss`, `exp`, `iat` are verified by PyJWT with a configurable leeway (Moodle
  sets exp = iat + 60 s);
- the platform keyset is cached in the database and refetched once on an unknown `kid`, at most
  once a minute (a stream of made-up kids must not make us hammer the platform);
- every failure is a `LaunchError` with a short reason code for the audit trail.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from datetime import timedelta
from typing import Any

import jwt
import requests
from flask import Request as WerkzeugRequest
from pylti1p3.contrib.flask.cookie import FlaskCookieService
from pylti1p3.contrib.flask.message_launch import FlaskMessageLaunch
from pylti1p3.contrib.flask.oidc_login import FlaskOIDCLogin
from pylti1p3.contrib.flask.request import FlaskRequest as _FlaskRequest
from pylti1p3.exception import LtiException
from pylti1p3.message_validators import get_validators
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import LtiPlatform
from lti_app.services.lti_registry import (
    DbToolConf,
    KeySetError,
    cached_key_set,
    fetch_key_set,
    issuer_known,
)
from lti_app.services.lti_storage import DbSessionService

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = CLAIM + "message_type"
VERSION = CLAIM + "version"
ROLES = CLAIM + "roles"
DEPLOYMENT_ID = CLAIM + "deployment_id"
SUPPORTED_MESSAGES = frozenset({"LtiResourceLinkRequest", "LtiDeepLinkingRequest"})
ALLOWED_ALGORITHMS = ("RS256",)
JWKS_REFETCH_INTERVAL = timedelta(minutes=1)
STATE_COOKIE_PREFIX = "lti1p3-"
MAX_JSON_DEPTH = 32  # Moodle's deepest claim (custom or AGS) is 3 levels down


class LaunchError(Exception):
    """A refused launch: `code` for the audit trail, `message` for the person."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def secure_context(req: WerkzeugRequest) -> bool:
    """Whether the browser accepts `Secure` cookies here: HTTPS (behind ProxyFix), or a
    `localhost` host, which browsers treat as a secure context."""
    host = (req.host or "").split(":", 1)[0].lower()
    return bool(req.is_secure or host == "localhost" or host.endswith(".localhost"))


class ToolRequest(_FlaskRequest):
    def __init__(self, req: WerkzeugRequest) -> None:
        super().__init__(request_is_secure=secure_context(req))

    def get_param(self, key: str) -> Any:
        value = super().get_param(key)
        return value if isinstance(value, str) else None

    def get_cookies(self) -> dict[str, str]:
        return dict(self._cookies or {})


class ToolCookieService(FlaskCookieService):
    """State cookies as `Secure; SameSite=None; Partitioned` in a secure context (CHIPS), so
    they survive Moodle's cross-site iframe where the browser allows partitioned cookies."""

    def __init__(self, request: ToolRequest) -> None:
        super().__init__(request)


class ToolOIDCLogin(FlaskOIDCLogin):
    """The login step: random state and nonce, both remembered server-side for the launch."""

    def __init__(
        self,
        request: ToolRequest,
        tool_config: DbToolConf,
        *,
        session_service: DbSessionService,
        cookie_service: ToolCookieService,
        platform_id: int,
    ) -> None:
        super().__init__(
            request,
            tool_config,
            session_service=session_service,  # type: ignore[arg-type]
            cookie_service=cookie_service,
        )
        self._platform_id = platform_id

    def _get_uuid(self) -> str:
        return secrets.token_urlsafe(24)

    def _generate_nonce(self) -> str:
        nonce = secrets.token_urlsafe(24)
        # Saved with the state by pylti1p3 right after this call (save_state_params).
        self._state_params = {"nonce": nonce, "platform_id": self._platform_id}
        return nonce


def json_depth(value: Any) -> int:
    """How deeply a parsed JSON value nests (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((child, depth) for child in item)
    return deepest


def _b64json(part: str) -> Any:
    """A JWT part as JSON; ValueError for anything else, deep nesting included."""
    padded = part + "=" * (-len(part) % 4)
    text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise ValueError("nested too deeply")
    return value


class ToolMessageLaunch(FlaskMessageLaunch):
    """The launch step with the checks listed in the module docstring."""

    def __init__(
        self,
        request: ToolRequest,
        tool_config: DbToolConf,
        *,
        session_service: DbSessionService,
        cookie_service: ToolCookieService,
        db: Session,
        http: requests.Session,
        leeway: int,
        jwks_max_age: int,
        http_timeout: float,
    ) -> None:
        super().__init__(
            request,
            tool_config,
            session_service=session_service,
            cookie_service=cookie_service,
            requests_session=http,
        )
        self._db = db
        self._http = http
        self._leeway = leeway
        self._jwks_max_age = jwks_max_age
        self._http_timeout = http_timeout
        self._state_params: dict[str, Any] | None = None
        self.platform: LtiPlatform | None = None
        self.unverified: dict[str, Any] = {}
        self.header: dict[str, Any] = {}
        self.jwks_fetches = 0
        self.state_cookie_ok = False

    @classmethod
    def restore(cls, launch_id: str, *args: Any, **kwargs: Any) -> ToolMessageLaunch | None:
        """A launch validated earlier (deep linking), read back from the DB storage."""
        obj = cls(*args, **kwargs)
        data = obj._session_service.get_launch_data(launch_id)
        if not isinstance(data, dict):
            return None
        obj.set_launch_id(launch_id).set_auto_validation(enable=False)
        obj.set_jwt({"body": data})  # type: ignore[typeddict-item]
        obj.set_restored()
        obj.validate_registration()
        return obj

    # ------------------------------------------------------------------ pipeline

    def validate(self) -> ToolMessageLaunch:
        if self._restored:
            raise LaunchError("restored", "a restored launch cannot be validated again")
        self._validated = True
        try:
            self._check_state()
            self._decode_unverified()
            self._check_header()
            self._find_platform()
            self._verify_signature()
            self._check_azp()
            self._check_deployment()
            self._check_message()
            self._consume_nonce()
            self.save_launch_data()
        except LaunchError:
            self._validated = False
            raise
        return self

    def audit_details(self) -> dict[str, Any]:
        """What the audit may keep about a launch: identifiers, never the token."""
        body, header = self.unverified, self.header
        aud = body.get("aud")
        return {
            "iss": body.get("iss"),
            "aud": aud if isinstance(aud, str) else json.dumps(aud)[:200] if aud else None,
            "deployment_id": body.get(DEPLOYMENT_ID),
            "message_type": body.get(MESSAGE_TYPE),
            "kid": header.get("kid"),
            "alg": header.get("alg"),
        }

    # ------------------------------------------------------------------ steps

    def _state_cookie_names(self) -> list[str]:
        request: ToolRequest = self._request
        cookies = request.get_cookies()
        return [n for n in cookies if n.startswith(STATE_COOKIE_PREFIX + "state-")]

    def _check_state(self) -> None:
        """Take the login state out of storage (any attempt uses it up), then check that this
        browser is the one that started the login, when it kept our cookies."""
        state = self._get_request_param("state")
        if not state:
            raise LaunchError("state_missing", "The launch has no state parameter.")
        if len(state) > 200:
            raise LaunchError("state_unknown", "The launch state is not one this tool issued.")
        service: DbSessionService = self._session_service
        params = service.consume_state_params(state)
        if params is None:
            raise LaunchError(
                "state_unknown",
                "The launch state is unknown, expired or already used. Relaunch from Moodle.",
            )
        cookie = self._cookie_service.get_cookie(state)
        if cookie is not None and cookie != state:
            raise LaunchError("state_mismatch", "The launch state does not match this browser.")
        if cookie is None and self._state_cookie_names():
            # The browser keeps our state cookies but has none for this state: it did not start
            # this login (login CSRF).
            raise LaunchError("state_mismatch", "The launch state was not issued to this browser.")
        self.state_cookie_ok = cookie == state
        self._state_params = params

    def _decode_unverified(self) -> None:
        token = self._get_request_param("id_token")
        if not token:
            raise LaunchError("token_missing", "The launch has no id_token.")
        parts = token.split(".")
        if len(parts) != 3 or len(token) > 64_000:
            raise LaunchError("token_malformed", "The id_token is not a signed JWT.")
        try:
            header, body = _b64json(parts[0]), _b64json(parts[1])
        except (ValueError, UnicodeError, binascii.Error):
            raise LaunchError("token_malformed", "The id_token cannot be decoded.") from None
        if not isinstance(header, dict) or not isinstance(body, dict):
            raise LaunchError("token_malformed", "The id_token is not a JSON object.")
        self.header, self.unverified = header, body
        self._jwt = {"header": header, "body": body}  # type: ignore[typeddict-item]

    def _check_header(self) -> None:
        alg = self.header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise LaunchError(
                "alg_not_allowed", f"The id_token algorithm {str(alg)[:20]!r} is not accepted."
            )
        kid = self.header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise LaunchError("kid_missing", "The id_token names no key (kid).")

    def _client_id_candidates(self) -> list[str]:
        aud, azp = self.unverified.get("aud"), self.unverified.get("azp")
        if isinstance(azp, str):
            return [azp]
        if isinstance(aud, str):
            return [aud]
        if isinstance(aud, list):
            return [a for a in aud if isinstance(a, str)]
        return []

    def _find_platform(self) -> None:
        iss = self.unverified.get("iss")
        if not isinstance(iss, str) or not iss or not issuer_known(self._db, iss):
            raise LaunchError("issuer_unknown", "The launch comes from an unregistered issuer.")
        conf: DbToolConf = self._tool_config
        for client_id in self._client_id_candidates():
            platform = conf.platform(iss, client_id)
            if platform is not None:
                self.platform = platform
                self._registration = conf.find_registration_by_params(iss, client_id)
                return
        raise LaunchError(
            "audience_unknown", "The launch is addressed to a client id this tool does not know."
        )

    def _jwk_for(self, key_set: dict[str, Any], kid: str) -> dict[str, Any] | None:
        for key in key_set.get("keys", []):
            if isinstance(key, dict) and key.get("kid") == kid:
                return key
        return None

    def _fetch(self) -> dict[str, Any]:
        assert self.platform is not None
        self.jwks_fetches += 1
        try:
            return fetch_key_set(self._db, self.platform, self._http, timeout=self._http_timeout)
        except KeySetError as exc:
            raise LaunchError("jwks_unavailable", f"Cannot verify the launch: {exc}.") from None

    def _may_refetch(self) -> bool:
        """A platform publishes a new key before signing with it, so a kid that was not in a
        keyset fetched under a minute ago is an attacker's or a typo: refetching for it would
        let anyone turn our tool into a flood of requests to the platform's JWKS URL."""
        assert self.platform is not None
        fetched_at = self.platform.key_set_fetched_at
        return fetched_at is None or utcnow() - fetched_at >= JWKS_REFETCH_INTERVAL

    def _verify_signature(self) -> None:
        assert self.platform is not None
        kid = str(self.header["kid"])
        key_set = cached_key_set(self.platform, max_age=self._jwks_max_age)
        fetched = key_set is None
        if key_set is None:
            key_set = self._fetch()
        jwk = self._jwk_for(key_set, kid)
        if jwk is None and not fetched and self._may_refetch():
            jwk = self._jwk_for(self._fetch(), kid)  # the platform may have rotated its key
        if jwk is None:
            raise LaunchError("kid_unknown", "The id_token is signed with an unknown key.")
        if jwk.get("kty") != "RSA" or jwk.get("alg", "RS256") not in ALLOWED_ALGORITHMS:
            raise LaunchError("alg_not_allowed", "The platform key is not an RS256 key.")
        try:
            public_key = jwt.PyJWK(jwk, algorithm="RS256").key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            raise LaunchError("jwks_invalid", "The platform key cannot be read.") from None
        assert self._registration is not None
        client_id = self._registration.get_client_id()
        try:
            claims = jwt.decode(
                self._get_request_param("id_token"),
                public_key,
                algorithms=list(ALLOWED_ALGORITHMS),
                audience=client_id,
                issuer=self.platform.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud", "nonce"]},
            )
        except jwt.ExpiredSignatureError:
            raise LaunchError("token_expired", "The launch has expired. Relaunch.") from None
        except jwt.ImmatureSignatureError:
            raise LaunchError(
                "token_not_yet_valid", "The launch is dated in the future (check clocks)."
            ) from None
        except jwt.InvalidAudienceError:
            raise LaunchError("audience_invalid", "The launch audience is wrong.") from None
        except jwt.InvalidIssuerError:
            raise LaunchError("issuer_invalid", "The launch issuer is wrong.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise LaunchError(
                "claim_missing", f"The launch lacks the {exc.claim!r} claim."
            ) from None
        except jwt.InvalidSignatureError:
            raise LaunchError("signature_invalid", "The launch signature is invalid.") from None
        except jwt.InvalidTokenError:
            raise LaunchError("token_invalid", "The id_token is not valid.") from None
        self.unverified = claims
        self._jwt["body"] = claims  # type: ignore[typeddict-item]

    def _check_azp(self) -> None:
        assert self._registration is not None
        client_id = self._registration.get_client_id()
        aud, azp = self.unverified.get("aud"), self.unverified.get("azp")
        several = isinstance(aud, list) and len(aud) > 1
        if (azp is not None or several) and azp != client_id:
            raise LaunchError("azp_mismatch", "The launch's authorized party (azp) is wrong.")

    def _check_deployment(self) -> None:
        assert self._registration is not None
        deployment_id = self.unverified.get(DEPLOYMENT_ID)
        conf: DbToolConf = self._tool_config
        if not isinstance(deployment_id, str) or not conf.find_deployment_by_params(
            str(self._registration.get_issuer()),
            deployment_id,
            str(self._registration.get_client_id()),
        ):
            raise LaunchError(
                "deployment_unknown", "The launch comes from an unregistered deployment."
            )

    def _check_message(self) -> None:
        body = self.unverified
        if body.get(VERSION) != "1.3.0":
            raise LaunchError("version_invalid", "The launch is not LTI version 1.3.0.")
        message_type = body.get(MESSAGE_TYPE)
        if not isinstance(message_type, str) or message_type not in SUPPORTED_MESSAGES:
            raise LaunchError(
                "message_type_unsupported",
                f"The message type {str(message_type)[:60]!r} is not supported.",
            )
        sub = body.get("sub")
        if not isinstance(sub, str) or not sub.strip():
            raise LaunchError("sub_missing", "The launch names no user (sub).")
        if not isinstance(body.get(ROLES), list):
            raise LaunchError("roles_missing", "The launch has no roles claim.")
        try:
            for validator in get_validators():
                if validator.can_validate(body):
                    validator.validate(body)
        except (LtiException, AttributeError, TypeError) as exc:
            raise LaunchError("message_invalid", f"The launch is incomplete: {exc}") from None

    def _consume_nonce(self) -> None:
        assert self._state_params is not None
        assert self.platform is not None
        if (
            self.unverified.get("nonce") != self._state_params.get("nonce")
            or self._state_params.get("platform_id") != self.platform.id
        ):
            raise LaunchError(
                "state_mismatch", "The launch does not answer the login this tool started."
            )
        service: DbSessionService = self._session_service
        if not service.check_nonce(str(self.unverified["nonce"])):
            raise LaunchError("replayed", "This launch was already used. Relaunch.")
