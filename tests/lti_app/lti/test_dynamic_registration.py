"""LTI Dynamic Registration against the test platform's OpenID configuration and registration
endpoints, gated by the admin's single-use registration code."""

from __future__ import annotations

from sqlalchemy import select
from werkzeug.test import TestResponse

from lti_app.models import LtiDeployment, LtiPlatform
from lti_app.services.lti_dynreg import issue_code
from tests.lti_app.lti.env import LtiEnv, login, post_launch
from tests.lti_app.lti.lti_platform import Platform


def _code(env: LtiEnv, ttl: int = 3600) -> str:
    with env.db() as db:
        return issue_code(db, env.settings.app.secret_key, ttl_seconds=ttl)


def _register(env: LtiEnv, code: str, token: str | None = None) -> tuple[int, str]:
    resp = env.client().get(
        "/lti/register",
        query_string={
            "code": code,
            "openid_configuration": f"{env.platform.issuer}/mod/lti/openid-configuration.php",
            "registration_token": token or env.platform.registration_token,
        },
    )
    return resp.status_code, resp.get_data(as_text=True)


def test_dynamic_registration_registers_and_the_new_client_can_launch(lti_env: LtiEnv) -> None:
    code = _code(lti_env)
    status, body = _register(lti_env, code)
    assert status == 200, body
    assert 'data-lti-close="1"' in body
    sent = lti_env.platform.registrations[-1]
    assert sent["initiate_login_uri"] == "http://localhost/lti/login"
    assert sent["redirect_uris"] == ["http://localhost/lti/launch"]
    assert sent["jwks_uri"] == "http://localhost/lti/jwks"
    assert sent["token_endpoint_auth_method"] == "private_key_jwt"
    # Data minimisation (#18, item 8): only the claims the tool uses, no e-mail.
    claims = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]["claims"]
    assert sorted(claims) == ["family_name", "given_name", "iss", "name", "sub"]
    with lti_env.db() as db:
        platform = db.scalars(
            select(LtiPlatform).where(LtiPlatform.client_id == "dynamic-client")
        ).one()
        assert platform.issuer == lti_env.platform.issuer
        assert platform.key_set_url == lti_env.platform.key_set_url
        deps = list(
            db.scalars(
                select(LtiDeployment.deployment_id).where(LtiDeployment.platform_id == platform.id)
            )
        )
        assert deps == ["3"]
    client = lti_env.client()
    result = login(client, lti_env, client_id="dynamic-client", lti_deployment_id="3")
    claims = lti_env.platform.claims(
        "teacher", nonce=result.nonce, aud="dynamic-client", deployment_id="3"
    )
    assert post_launch(client, lti_env.platform.sign(claims), result.state).status_code == 303
    # The code was single-use.
    status, body = _register(lti_env, code)
    assert status == 403
    assert "already used" in body


def test_registration_without_a_valid_code_is_refused(lti_env: LtiEnv) -> None:
    before = len(lti_env.platform.registrations)
    for code in ("", "forged.code.value", _code(lti_env)[:-3] + "abc"):
        since = lti_env.last_audit_id()
        status, _ = _register(lti_env, code)
        assert status == 403
        assert [e.reason for e in lti_env.audits(since)] == ["code_invalid"]
    assert len(lti_env.platform.registrations) == before  # the platform was never contacted


def test_issuer_must_be_the_configuration_origin(lti_env: LtiEnv) -> None:
    lti_env.platform.config_issuer = "https://someone-else.example"
    try:
        since = lti_env.last_audit_id()
        status, body = _register(lti_env, _code(lti_env))
    finally:
        lti_env.platform.config_issuer = None
    assert status == 400
    assert "issuer" in body
    assert [e.reason for e in lti_env.audits(since)] == ["registration_failed"]


def test_platform_refusing_the_registration_is_reported(lti_env: LtiEnv) -> None:
    status, body = _register(lti_env, _code(lti_env), token="wrong-token")
    assert status == 400
    assert "Registration failed" in body


# ------------------------------------------------------------------ #15 D: framed by the Moodle


def _frame_ancestors(resp: TestResponse) -> list[str]:
    csp: str = resp.headers["Content-Security-Policy"]
    part = next(p.strip() for p in csp.split(";") if p.strip().startswith("frame-ancestors"))
    return part.split()[1:]


def test_a_moodle_not_yet_known_may_frame_its_own_registration_only(lti_env: LtiEnv) -> None:
    """Moodle shows the registration page in a panel of its admin page: the registering
    Moodle's origin (from its openid_configuration URL) is in that page's frame-ancestors, for
    that registration's answers only; every other page keeps the registered platforms' list."""
    unknown = Platform()  # another Moodle, on another origin, that the tool does not know
    try:
        config = f"{unknown.issuer}/mod/lti/openid-configuration.php"
        assert unknown.issuer not in _frame_ancestors(lti_env.client().get("/lti/jwks"))
        resp = lti_env.client().get(
            "/lti/register",
            query_string={
                "code": _code(lti_env),
                "openid_configuration": config,
                "registration_token": unknown.registration_token,
            },
        )
        assert resp.status_code == 200, resp.get_data(as_text=True)
        ancestors = _frame_ancestors(resp)
        assert ancestors[0] == "'self'"
        assert unknown.issuer in ancestors
        # A refused registration (a used code) still answers its own framer with the reason.
        refused = lti_env.client().get(
            "/lti/register",
            query_string={"code": "forged", "openid_configuration": "https://evil.example/x"},
        )
        assert refused.status_code == 403
        assert "https://evil.example" in _frame_ancestors(refused)
        # Other pages: never the origin a registration request named.
        for path in ("/", "/lti/jwks"):
            assert "https://evil.example" not in _frame_ancestors(lti_env.client().get(path))
    finally:
        unknown.close()
