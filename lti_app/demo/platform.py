"""A development LTI 1.3 platform for `arche-predict demo`: a course page with "Launch as
teacher", "Launch as learner" and "Launch as administrator" buttons, in English or in French,
that run the real OIDC login and signed id_token flow into an iframe, as Moodle does.

It signs with its own RSA key (served as a JWKS) and builds claims in the shape Moodle 5.1
sends. Enabled only by the demo configuration; it is a stand-in for Moodle on a developer's
machine, not a platform to use for anything else.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
#: What Moodle adds for a site administrator, who also holds mod/lti:manage (Instructor).
ADMINISTRATOR = (
    "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
    "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator",
)
#: The languages a launch can ask for (Moodle's `launch_presentation.locale`), with the course
#: page's words for each.
LANGUAGES: dict[str, dict[str, str]] = {
    "en": {
        "title": "In English",
        "teacher": "Launch as teacher",
        "learner": "Launch as learner",
        "admin": "Launch as administrator",
    },
    "fr": {
        "title": "En français",
        "teacher": "Lancer en tant qu'enseignant",
        "learner": "Lancer en tant qu'étudiant",
        "admin": "Lancer en tant qu'administrateur",
    },
}


@dataclass(frozen=True)
class DemoUser:
    moodle_id: int
    name: str
    email: str
    role: str  # "teacher", "learner" or "admin" (a site administrator, teacher in the course)


class DemoPlatform:
    """WSGI app: the course page, the OIDC authorisation endpoint and the JWKS."""

    def __init__(
        self,
        *,
        tool_url: str,
        course_id: int,
        course_label: str,
        course_title: str,
        users: dict[str, DemoUser],
        client_id: str = "arche-predict-demo",
        deployment_id: str = "1",
        locale: str = "en",
    ) -> None:
        self.tool_url = tool_url.rstrip("/")
        self.course_id = course_id
        self.course_label = course_label
        self.course_title = course_title
        self.users = users
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.locale = locale
        self.issuer = ""
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)
        self._server: BaseWSGIServer | None = None

    # ------------------------------------------------------------------ serving

    def start(self, host: str = "localhost", port: int = 0) -> str:
        self._server = make_server(host, port, self, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.issuer = f"http://{host}:{self._server.server_port}"
        return self.issuer

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def auth_login_url(self) -> str:
        return f"{self.issuer}/mod/lti/auth.php"

    @property
    def key_set_url(self) -> str:
        return f"{self.issuer}/mod/lti/certs.php"

    @property
    def auth_token_url(self) -> str:
        return f"{self.issuer}/mod/lti/token.php"

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self._kid, "alg": "RS256", "use": "sig"})
        return {"keys": [jwk]}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/":
            response = Response(self.course_page(), mimetype="text/html")
        elif request.path == "/launch":
            who = request.args.get("as", "teacher")
            lang = request.args.get("lang", self.locale)
            if who not in self.users or lang not in LANGUAGES:
                response = Response("unknown user or language", status=400)
            else:
                response = Response(status=302, headers={"Location": self.login_url(who, lang)})
        elif request.path == "/mod/lti/auth.php":
            response = self.authorize(request)
        elif request.path == "/mod/lti/certs.php":
            response = Response(json.dumps(self.jwks()), mimetype="application/json")
        else:
            response = Response("Not found", status=404)
        return response(environ, start_response)

    # ------------------------------------------------------------------ the flow

    def login_url(self, who: str, lang: str | None = None) -> str:
        """Step 1, as Moodle: send the browser to the tool's OIDC initiation. The login hint
        carries who launches and in which language ("teacher:fr"); the tool sends it back."""
        params = {
            "iss": self.issuer,
            "target_link_uri": f"{self.tool_url}/lti/launch",
            "login_hint": f"{who}:{lang or self.locale}",
            "lti_message_hint": json.dumps({"cmid": 1, "launchid": secrets.token_hex(6)}),
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
        }
        return f"{self.tool_url}/lti/login?{urlencode(params)}"

    def authorize(self, request: Request) -> Response:
        """Step 2, Moodle's auth.php: check the tool's request, then POST a signed id_token."""
        q = request.args
        who, _, lang = q.get("login_hint", "").partition(":")
        redirect_uri = q.get("redirect_uri", "")
        if (
            q.get("client_id") != self.client_id
            or who not in self.users
            or lang not in LANGUAGES
            or redirect_uri != f"{self.tool_url}/lti/launch"
            or q.get("response_type") != "id_token"
            or q.get("scope") != "openid"
        ):
            return Response("invalid authentication request", status=400)
        token = jwt.encode(
            self.claims(self.users[who], nonce=q.get("nonce", ""), locale=lang),
            self._key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            algorithm="RS256",
            headers={"kid": self._kid},
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Launching…</title></head>"
            "<body onload='document.forms[0].submit()'>"
            f'<form method="post" action="{html.escape(redirect_uri)}">'
            f'<input type="hidden" name="id_token" value="{html.escape(token)}">'
            f'<input type="hidden" name="state" value="{html.escape(q.get("state", ""))}">'
            "<noscript><button>Continue</button></noscript></form></body></html>"
        )
        return Response(page, mimetype="text/html")

    def claims(self, user: DemoUser, *, nonce: str, locale: str | None = None) -> dict[str, Any]:
        now = int(time.time())
        roles = [LEARNER] if user.role == "learner" else [INSTRUCTOR]
        if user.role == "admin":
            roles += ADMINISTRATOR
        first, _, last = user.name.partition(" ")
        return {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": str(user.moodle_id),
            "nonce": nonce,
            "iat": now,
            "exp": now + 60,  # as Moodle does
            "name": user.name,
            "given_name": first,
            "family_name": last,
            "email": user.email,
            CLAIM + "deployment_id": self.deployment_id,
            CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "version": "1.3.0",
            CLAIM + "target_link_uri": f"{self.tool_url}/lti/launch",
            CLAIM + "roles": roles,
            CLAIM + "context": {
                "id": str(self.course_id),
                "label": self.course_label,
                "title": self.course_title,
                "type": ["CourseSection"],
            },
            CLAIM + "resource_link": {"id": "1", "title": "Tableau de bord de réussite"},
            CLAIM + "lis": {"person_sourcedid": "", "course_section_sourcedid": self.course_label},
            CLAIM + "ext": {"user_username": f"u{user.moodle_id}", "lms": "moodle-2"},
            CLAIM + "launch_presentation": {
                "locale": locale or self.locale,
                "document_target": "iframe",
                "return_url": f"{self.issuer}/",
            },
            CLAIM + "tool_platform": {
                "product_family_code": "moodle",
                "version": "2025100600.02",
                "guid": "arche-predict-demo",
                "name": "ARCHE (demo)",
            },
        }

    def course_page(self) -> str:
        """The course page: one row of launches per language, each naming who launches."""
        rows = "".join(
            f'<p lang="{lang}"><strong>{html.escape(words["title"])}</strong><br>'
            + "".join(
                f'<a class="btn" href="/launch?as={html.escape(key)}&amp;lang={lang}" '
                f'target="tool">{html.escape(words.get(u.role, u.role))}: '
                f"{html.escape(u.name)}</a> "
                for key, u in self.users.items()
            )
            + "</p>"
            for lang, words in LANGUAGES.items()
        )
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(self.course_title)} (demo Moodle)</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1d2125; }}
header {{ background: #0f47ad; color: #fff; padding: .8rem 1.2rem; }}
main {{ padding: 1rem 1.2rem; }}
.btn {{ display: inline-block; margin: 0 .5rem .8rem 0; padding: .45rem .9rem; border-radius: .3rem;
  background: #0f6cbf; color: #fff; text-decoration: none; }}
.btn:focus, .btn:hover {{ background: #0a4a85; outline: 3px solid #ffbf47; }}
iframe {{ width: 100%; height: 80vh; border: 1px solid #c5c9cf; background: #fff; }}
</style></head>
<body><header><strong>ARCHE (demo Moodle)</strong> · {html.escape(self.course_title)}</header>
<main><p>A development LTI 1.3 platform: each button runs the real LTI 1.3 launch
(OIDC login, signed id_token) of arche-predict into the frame below, in the language of its
row (Moodle's user language). The administrator is a Moodle site administrator: a teacher in
the course who also reaches the tool's admin page.</p>
{rows}
<iframe name="tool" title="arche-predict" src="about:blank"></iframe></main></body></html>"""
