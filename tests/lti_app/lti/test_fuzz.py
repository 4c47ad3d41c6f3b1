"""Property-based fuzzing of the login and launch parameters: whatever arrives, the answer is a
deliberate response (2xx/3xx/4xx), never a 500 and never a stack trace."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.lti_app.lti.env import LtiEnv, login, login_params, post_launch
from tests.lti_app.lti.lti_platform import CLAIM

FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

texts = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.sampled_from(["", " ", "null", "{}", "[]", "\x00", "%00", "a" * 5000, "..", "http://"]),
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63),
        st.floats(allow_nan=False),
        st.text(max_size=50),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
CLAIM_NAMES = [
    "iss",
    "aud",
    "azp",
    "sub",
    "nonce",
    "iat",
    "exp",
    "name",
    "email",
    CLAIM + "deployment_id",
    CLAIM + "message_type",
    CLAIM + "version",
    CLAIM + "roles",
    CLAIM + "context",
    CLAIM + "resource_link",
    CLAIM + "custom",
    CLAIM + "launch_presentation",
    CLAIM + "tool_platform",
    "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice",
    "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings",
]


def _ok(status: int, body: str) -> None:
    assert status < 500, body[:500]
    assert "Traceback" not in body


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "iss",
                "login_hint",
                "target_link_uri",
                "lti_message_hint",
                "client_id",
                "lti_deployment_id",
                "repost",
                "state",
            ]
        ),
        texts,
    ),
    use_get=st.booleans(),
)
def test_login_never_fails_with_500(lti_env: LtiEnv, params: dict[str, Any], use_get: bool) -> None:
    base = login_params(lti_env)
    base.update({k: v for k, v in params.items() if v is not None})
    for k, v in params.items():
        if v is None:
            base.pop(k, None)
    client = lti_env.client()
    try:
        resp = (
            client.get("/lti/login", query_string=base)
            if use_get
            else client.post("/lti/login", data=base)
        )
    except ValueError:
        return  # the test client itself refuses some strings (NUL in a header); not our code
    _ok(resp.status_code, resp.get_data(as_text=True))
    if resp.status_code == 302:
        assert "repost" not in resp.headers["Location"]


@FUZZ
@given(id_token=texts, state=texts)
def test_launch_with_arbitrary_form_never_fails_with_500(
    lti_env: LtiEnv, id_token: str | None, state: str | None
) -> None:
    resp = post_launch(lti_env.client(), id_token, state)
    _ok(resp.status_code, resp.get_data(as_text=True))
    assert resp.status_code >= 400


def _b64(data: Any) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@FUZZ
@given(
    header=st.dictionaries(st.sampled_from(["alg", "kid", "typ", "jku"]), json_values),
    body=st.dictionaries(st.sampled_from(CLAIM_NAMES), json_values),
)
def test_launch_with_arbitrary_unsigned_jwt_never_fails_with_500(
    lti_env: LtiEnv, header: dict[str, Any], body: dict[str, Any]
) -> None:
    client = lti_env.client()
    result = login(client, lti_env)
    token = f"{_b64(header)}.{_b64(body)}.c2ln"
    resp = post_launch(client, token, result.state)
    _ok(resp.status_code, resp.get_data(as_text=True))
    assert resp.status_code >= 400


@FUZZ
@given(overrides=st.dictionaries(st.sampled_from(CLAIM_NAMES), json_values, min_size=1))
def test_validly_signed_but_strange_claims_never_fail_with_500(
    lti_env: LtiEnv, overrides: dict[str, Any]
) -> None:
    """The platform's signature is good, the claims are anything: validation and linking must
    still answer deliberately."""
    client = lti_env.client()
    result = login(client, lti_env)
    claims = lti_env.platform.claims("teacher", nonce=result.nonce)
    claims.update(overrides)
    resp = post_launch(client, lti_env.platform.sign_any(claims), result.state)
    _ok(resp.status_code, resp.get_data(as_text=True))
    if resp.status_code == 303:
        page = client.get(resp.headers["Location"])
        _ok(page.status_code, page.get_data(as_text=True))
