"""The happy paths: recorded Moodle 5.1 launches through the real OIDC flow."""

from __future__ import annotations

from urllib.parse import urlsplit

import jwt
from sqlalchemy import select

from lti_app.models import Course, Enrolment, LtiSession, Person
from tests.lti_app.lti.env import LtiEnv, launch, login, token_of


def test_teacher_launch_opens_the_course_dashboard(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    resp = launch(client, lti_env, "teacher")
    assert resp.status_code == 303, resp.get_data(as_text=True)
    location = urlsplit(resp.headers["Location"])
    with lti_env.db() as db:
        course = db.scalars(select(Course).where(Course.lti_context_id == "2")).one()
        assert course.moodle_course_id == 2
        assert course.shortname == "ALGO101"
        assert course.fullname == "Algorithmique 1"
        person = db.scalars(select(Person).where(Person.lti_sub == "3")).one()
        assert person.moodle_user_id == 3
        assert person.fullname == "Claire Enseignante"
        roles = set(
            db.scalars(
                select(Enrolment.role).where(
                    Enrolment.course_id == course.id, Enrolment.person_id == person.id
                )
            )
        )
        assert roles == {"teacher"}
        course_id = course.id
    assert location.path == f"/course/{course_id}"
    cookie = resp.headers["Set-Cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=None", "Partitioned"):
        assert flag in cookie, cookie
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Algorithmique 1" in text
    assert '<strong id="page-role" data-role="teacher">teacher</strong>' in text


def test_learner_launch_opens_own_page(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    resp = launch(client, lti_env, "student")
    assert resp.status_code == 303
    assert urlsplit(resp.headers["Location"]).path.endswith("/me")
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200
    assert "Amine Benali" in page.get_data(as_text=True)
    with lti_env.db() as db:
        session = db.scalars(select(LtiSession).order_by(LtiSession.id.desc())).first()
        assert session is not None
        assert session.role == "learner"
        assert session.is_admin is False


def test_french_launch_keeps_locale(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    resp = launch(client, lti_env, "teacher_fr")
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200
    assert '<html lang="fr">' in page.get_data(as_text=True)


def test_login_redirect_carries_only_oidc_parameters(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    result = login(client, lti_env, repost="1", extra="x")
    assert set(result.query) == {
        "scope",
        "response_type",
        "response_mode",
        "prompt",
        "client_id",
        "redirect_uri",
        "state",
        "nonce",
        "login_hint",
        "lti_message_hint",
    }
    assert "repost" not in result.response.headers["Location"]
    assert result.query["redirect_uri"] == f"{lti_env.tool_url}/lti/launch"
    assert result.query["response_mode"] == "form_post"
    assert result.query["lti_message_hint"] == '{"cmid":8,"launchid":"ltilaunch1_368056654"}'


def test_login_by_get_works_too(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    result = login(client, lti_env, method="get")
    claims = lti_env.platform.claims("teacher", nonce=result.nonce)
    resp = client.post(
        "/lti/launch", data={"id_token": lti_env.platform.sign(claims), "state": result.state}
    )
    assert resp.status_code == 303


def test_second_client_id_and_second_deployment_of_one_issuer(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    resp = launch(client, lti_env, "teacher", deployment_id="2")
    assert resp.status_code == 303
    result = login(client, lti_env, client_id="second-client-id", lti_deployment_id="7")
    claims = lti_env.platform.claims(
        "teacher", nonce=result.nonce, deployment_id="7", aud="second-client-id"
    )
    resp = client.post(
        "/lti/launch", data={"id_token": lti_env.platform.sign(claims), "state": result.state}
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)


def test_launch_token_carries_the_session_without_cookies(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    resp = launch(client, lti_env, "teacher")
    token = token_of(resp)
    cookieless = lti_env.client()  # another browser: no cookie at all
    page = cookieless.get(resp.headers["Location"])
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    # In-tool links carry a fresh token, so navigation keeps working inside the iframe.
    assert "/roster?lt=" in text
    assert token  # the first hop carried one
    no_token = cookieless.get(urlsplit(resp.headers["Location"]).path)
    assert no_token.status_code == 401
    assert "Launch from Moodle" in no_token.get_data(as_text=True)


def test_jwks_lists_the_tool_key_once(lti_env: LtiEnv) -> None:
    body = lti_env.client().get("/lti/jwks").get_json()
    assert list(body) == ["keys"]
    assert isinstance(body["keys"], list)
    assert body["keys"]
    key = body["keys"][0]
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert "d" not in key
    jwt.PyJWK(key)  # a usable public key
