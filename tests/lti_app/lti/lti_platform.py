"""An independent LTI 1.3 platform for the tests: real RSA keys, PyJWT signatures, and a real
HTTP server on 127.0.0.1 serving its JWKS, its OIDC auth endpoint (which answers with an
auto-submitting form POST of the id_token, as Moodle does), its token endpoint and Names and
Roles.

Launch claims are built from the recorded Moodle 5.1 id_tokens in
tests/fixtures/moodle-5.1/, with only the values that must change per run replaced (issuer and
its URLs, audience, nonce, times, the tool's launch URL).
"""

from __future__ import annotations

import base64
import copy
import html
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "moodle-5.1"
RECORDED_ISSUER = "http://127.0.0.1:8081"
RECORDED_TOOL = "http://127.0.0.1:5000"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _replace_urls(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_replace_urls(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _replace_urls(v, old, new) for k, v in value.items()}
    return value


class PlatformKey:
    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or secrets.token_hex(10)
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.public_pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "kid": self.kid,
            "e": _b64url_uint(numbers.e),
            "n": _b64url_uint(numbers.n),
            "use": "sig",
        }


class Platform:
    """A Moodle-like platform. `served_keys` is what /jwks publishes; `key` signs by default."""

    def __init__(self, client_id: str = "bzlMyMDXljUc14j") -> None:
        self.client_id = client_id
        self.key = PlatformKey()
        self.served_keys: list[PlatformKey] = [self.key]
        self.jwks_hits = 0
        self.token_requests: list[dict[str, list[str]]] = []
        self.auth_requests: list[dict[str, str]] = []
        self.tool_url = RECORDED_TOOL
        self.tool_jwks: dict[str, Any] | None = None
        self.embed_login_query = ""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self._server.server_address[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.auth_claims_kind = "teacher"
        self.registration_token = secrets.token_urlsafe(12)
        self.registrations: list[dict[str, Any]] = []
        self.config_issuer: str | None = None
        self.auth_overrides: dict[str, Any] = {}
        #: What Moodle's "Manage tools" page frames during a dynamic registration (the tool's
        #: registration URL with Moodle's parameters), served at /mod/lti/toolconfigure.php.
        self.registration_frame_src = ""

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ endpoints

    @property
    def auth_login_url(self) -> str:
        return f"{self.issuer}/mod/lti/auth.php"

    @property
    def auth_token_url(self) -> str:
        return f"{self.issuer}/mod/lti/token.php"

    @property
    def key_set_url(self) -> str:
        return f"{self.issuer}/mod/lti/certs.php"

    @property
    def memberships_url(self) -> str:
        return f"{self.issuer}/mod/lti/services.php/CourseSection/2/bindings/1/memberships"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.served_keys]}

    # ------------------------------------------------------------------ claims and tokens

    def claims(
        self,
        kind: str = "teacher",
        *,
        nonce: str,
        deployment_id: str = "1",
        now: int | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """Claims in exactly the recorded Moodle 5.1 shape (`kind`: teacher, student,
        teacher_fr), re-pointed at this platform and tool."""
        body: dict[str, Any] = copy.deepcopy(recorded(f"id_token_{kind}.json")["claims"])
        body = _replace_urls(body, RECORDED_ISSUER, self.issuer)
        body = _replace_urls(body, RECORDED_TOOL, self.tool_url)
        now = int(time.time()) if now is None else now
        body.update(
            {
                "iss": self.issuer,
                "aud": self.client_id,
                "nonce": nonce,
                "iat": now,
                "exp": now + 60,  # as Moodle does
                CLAIM + "deployment_id": deployment_id,
            }
        )
        for name, value in overrides.items():
            if value is _DELETE:
                body.pop(name, None)
            else:
                body[name] = value
        return body

    def sign(
        self,
        claims: dict[str, Any],
        *,
        key: PlatformKey | None = None,
        kid: str | None = None,
        alg: str = "RS256",
    ) -> str:
        key = key or self.key
        headers = {"kid": kid or key.kid, "typ": "JWT"}
        return jwt.encode(claims, key.private_pem, algorithm=alg, headers=headers)

    def sign_any(self, claims: dict[str, Any]) -> str:
        """Sign any JSON payload, even claims PyJWT would refuse to encode (fuzzing)."""
        payload = json.dumps(claims).encode("utf-8")
        return jwt.api_jws.encode(
            payload, self.key.private_pem, algorithm="RS256", headers={"kid": self.key.kid}
        )

    # ------------------------------------------------------------------ HTTP

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _send(self, status: int, body: str, ctype: str = "application/json") -> None:
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/mod/lti/certs.php":
                    platform.jwks_hits += 1
                    self._send(200, json.dumps(platform.jwks()))
                elif url.path == "/mod/lti/auth.php":
                    platform.auth_requests.append(query)
                    self._send(200, platform.auth_response(query), "text/html")
                elif url.path == "/course/view.php":
                    self._send(200, platform.course_page(), "text/html")
                elif url.path == "/mod/lti/toolconfigure.php":
                    self._send(200, platform.registration_page(), "text/html")
                elif url.path.endswith("/memberships"):
                    platform.memberships(self)
                elif url.path == "/mod/lti/openid-configuration.php":
                    self._send(200, json.dumps(platform.openid_configuration()))
                else:
                    self._send(404, "{}")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw_body = self.rfile.read(length).decode("utf-8")
                form = parse_qs(raw_body)
                if urlsplit(self.path).path == "/mod/lti/openid-registration.php":
                    status, body = platform.registration_response(
                        self.headers.get("Authorization", ""), raw_body
                    )
                    self._send(status, body)
                elif urlsplit(self.path).path == "/mod/lti/token.php":
                    platform.token_requests.append(form)
                    status, body = platform.token_response(form)
                    self._send(status, body)
                else:
                    self._send(404, "{}")

        return Handler

    def auth_response(self, query: dict[str, str]) -> str:
        """Moodle's auth.php: check the request, then POST the id_token to redirect_uri."""
        if query.get("client_id") != self.client_id or "redirect_uri" not in query:
            return "<p>invalid request</p>"
        claims = self.claims(self.auth_claims_kind, nonce=query.get("nonce", ""))
        claims.update(self.auth_overrides)
        token = self.sign(claims)
        action = html.escape(query["redirect_uri"])
        return (
            "<!doctype html><html><body>"
            f'<form id="f" method="post" action="{action}">'
            f'<input type="hidden" name="id_token" value="{html.escape(token)}">'
            f'<input type="hidden" name="state" value="{html.escape(query.get("state", ""))}">'
            "</form><script>document.getElementById('f').submit();</script></body></html>"
        )

    def openid_configuration(self) -> dict[str, Any]:
        """Moodle's /mod/lti/openid-configuration.php answer, shortened."""
        return {
            "issuer": self.config_issuer or self.issuer,
            "authorization_endpoint": self.auth_login_url,
            "token_endpoint": self.auth_token_url,
            "jwks_uri": self.key_set_url,
            "registration_endpoint": f"{self.issuer}/mod/lti/openid-registration.php",
            "scopes_supported": ["openid"],
            "response_types_supported": ["id_token"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle",
                "version": "5.1",
                "messages_supported": [{"type": "LtiResourceLinkRequest"}],
            },
        }

    def registration_response(self, authorization: str, raw: str) -> tuple[int, str]:
        if authorization != f"Bearer {self.registration_token}":
            return 401, json.dumps({"error": "bad registration token"})
        try:
            tool = json.loads(raw)
        except ValueError:
            return 400, json.dumps({"error": "not json"})
        self.registrations.append(tool)
        answer = dict(tool)
        answer["client_id"] = "dynamic-client"
        conf = dict(tool["https://purl.imsglobal.org/spec/lti-tool-configuration"])
        conf["deployment_id"] = "3"
        answer["https://purl.imsglobal.org/spec/lti-tool-configuration"] = conf
        return 200, json.dumps(answer)

    def course_page(self) -> str:
        src = html.escape(f"{self.tool_url}/lti/login?{self.embed_login_query}")
        return (
            "<!doctype html><html><body><h1>Moodle course ALGO101</h1>"
            f'<iframe id="contentframe" src="{src}" width="1000" height="700"></iframe>'
            "</body></html>"
        )

    def registration_page(self) -> str:
        """Moodle's "Manage tools" page during a dynamic registration: the tool's registration
        URL in a panel (an iframe) of the platform's own page."""
        src = html.escape(self.registration_frame_src)
        return (
            "<!doctype html><html><body><h1>Manage tools</h1>"
            f'<iframe id="registration-frame" src="{src}" width="900" height="500"></iframe>'
            "</body></html>"
        )

    def token_response(self, form: dict[str, list[str]]) -> tuple[int, str]:
        """Client-credentials grant: the assertion must verify against the tool's JWKS."""
        assertion = form.get("client_assertion", [""])[0]
        if self.tool_jwks is None:
            return 500, json.dumps({"error": "tool jwks unknown"})
        try:
            kid = jwt.get_unverified_header(assertion)["kid"]
            jwk = next(k for k in self.tool_jwks["keys"] if k["kid"] == kid)
            jwt.decode(
                assertion,
                jwt.PyJWK(jwk).key,
                algorithms=["RS256"],
                audience=self.auth_token_url,
                issuer=self.client_id,
            )
        except (jwt.InvalidTokenError, KeyError, StopIteration):
            return 401, json.dumps({"error": "invalid_client"})
        body = recorded("lti_access_token.json")["response"]
        return 200, json.dumps(body)

    def memberships(self, handler: BaseHTTPRequestHandler) -> None:
        auth = handler.headers.get("Authorization", "")
        expected = recorded("lti_access_token.json")["response"]["access_token"]
        if auth != f"Bearer {expected}":
            body, status = json.dumps({"error": "unauthorized"}), 401
        else:
            data = _replace_urls(
                recorded("nrps_memberships.json")["body"], RECORDED_ISSUER, self.issuer
            )
            body, status = json.dumps(data), 200
        payload = body.encode("utf-8")
        handler.send_response(status)
        handler.send_header(
            "Content-Type", "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
        )
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


class _Delete:
    def __repr__(self) -> str:
        return "<delete claim>"


_DELETE: Any = _Delete()
DELETE: Any = _DELETE
