"""Regression tests for the holes an independent hostile-launch test found (issue #11, points
1, 3, 4, 5, 8 and 13). Every attack is driven through a real signed OIDC launch from the test
platform; each of these tests fails on 629b864."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from lti_app.models import Course, Enrolment, LtiSession, Person
from lti_app.services.lti_linking import COURSE_PARAM, sign_course_param
from lti_app.web.auth import SESSION_COOKIE
from tests.lti_app.lti.env import LtiEnv, launch, login, post_launch, token_of
from tests.lti_app.lti.lti_platform import CLAIM, PlatformKey

CONTEXT = CLAIM + "context"
CUSTOM = CLAIM + "custom"
TOOL_PLATFORM = CLAIM + "tool_platform"
SAME_ORIGIN_CLICK = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-User": "?1"}


def _cookie(resp: TestResponse) -> str | None:
    for header in resp.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name == SESSION_COOKIE:
            return rest.split(";", 1)[0]
    return None


def _decoded_payload(token: str) -> Any:
    """What anyone who sees a launch token in a URL can read from it without any key."""
    payload = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    else:
        yield str(value)


def _landing_path(resp: TestResponse) -> str:
    return urlsplit(resp.headers["Location"]).path


def _course_id(env: LtiEnv, moodle_course_id: int) -> int:
    with env.db() as db:
        return db.scalars(
            select(Course.id).where(Course.moodle_course_id == moodle_course_id)
        ).one()


def _last_reason(env: LtiEnv, since: int, action: str = "lti.launch") -> str | None:
    events = [e for e in env.audits(since) if e.action == action]
    assert events, f"no {action} audit since {since}"
    return events[-1].reason


@contextmanager
def _token_issued_at(offset: int) -> Iterator[None]:
    """Tokens signed inside the block are dated `offset` seconds from now."""
    import itsdangerous.timed

    signer = itsdangerous.timed.TimestampSigner
    original = signer.get_timestamp
    signer.get_timestamp = lambda self: original(self) + offset  # type: ignore[method-assign]
    try:
        yield
    finally:
        signer.get_timestamp = original  # type: ignore[method-assign]


# --------------------------------------------------------------------------- 1. launch tokens


def test_launch_token_reveals_no_cookie_value(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    resp = launch(client, lti_env, "teacher")
    cookie, token = _cookie(resp), token_of(resp)
    assert cookie
    values = set(_strings(_decoded_payload(token)))
    assert cookie not in values
    assert not any(cookie in value or value in cookie for value in values if len(value) > 4)
    # The attack of 629b864: every value decoded from the token, tried as the session cookie.
    for value in values:
        thief = lti_env.client()
        thief.set_cookie(SESSION_COOKIE, value)
        page = thief.get(_landing_path(resp))
        assert page.status_code == 401, value


def test_an_expired_launch_token_grants_nothing_while_its_session_lives(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    resp = launch(client, lti_env, "teacher")
    landing = _landing_path(resp)
    ttl = lti_env.settings.lti.launch_token_ttl
    with _token_issued_at(-ttl - 5), lti_env.app.test_request_context():
        from lti_app.web.auth import make_launch_token

        with lti_env.db() as db:
            row = db.scalars(select(LtiSession).order_by(LtiSession.id.desc())).first()
            assert row is not None
            old = make_launch_token(row.id, row.sid_hash[:16])
    stranger = lti_env.client()
    expired = stranger.get(landing, query_string={"lt": old})
    assert expired.status_code == 401
    assert "expired" in expired.get_data(as_text=True)
    assert _cookie(expired) is None
    # The same session still works from its cookie (the browser that launched).
    assert client.get(landing).status_code == 200


def test_a_token_names_one_session_not_a_reused_row_id(lti_env: LtiEnv) -> None:
    """A token whose fingerprint does not match the row (a database recreated, ids reused) is
    worth nothing."""
    client = lti_env.client()
    resp = launch(client, lti_env, "teacher")
    with lti_env.app.test_request_context():
        from lti_app.web.auth import make_launch_token

        with lti_env.db() as db:
            row = db.scalars(select(LtiSession).order_by(LtiSession.id.desc())).first()
            assert row is not None
            forged = make_launch_token(row.id, "0" * 16)
    page = lti_env.client().get(_landing_path(resp), query_string={"lt": forged})
    assert page.status_code == 401


# --------------------------------------------------------------------------- 3. custom course id


def _other_context(context_id: str, title: str) -> dict[str, Any]:
    return {"id": context_id, "label": title, "title": title, "type": ["CourseSection"]}


@pytest.mark.parametrize("key", ["course_id", "moodle_course_id", "courseid"])
def test_custom_course_id_does_not_move_a_launch_into_another_course(
    lti_env: LtiEnv, key: str
) -> None:
    victim = lti_env.client()
    assert launch(victim, lti_env, "teacher").status_code == 303  # course 2, context "2"
    course_2 = _course_id(lti_env, 2)
    attacker = lti_env.client()
    context_id = {"course_id": "301", "moodle_course_id": "302", "courseid": "303"}[key]
    resp = launch(
        attacker,
        lti_env,
        "teacher",
        sub="9001",
        name="Mallory",
        **{CONTEXT: _other_context(context_id, "Mine"), CUSTOM: {key: "2"}},
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    # The platform's context (a Moodle course id) decides: the attacker lands in their own.
    assert _landing_path(resp) == f"/course/{_course_id(lti_env, int(context_id))}"
    assert attacker.get(f"/course/{course_2}").status_code == 403
    with lti_env.db() as db:
        course = db.get(Course, course_2)
        assert course is not None
        assert course.lti_context_id == "2"
        mallory = db.scalars(select(Person.id).where(Person.lti_sub == "9001")).one()
        roles = db.scalars(
            select(Enrolment.role).where(
                Enrolment.course_id == course_2, Enrolment.person_id == mallory
            )
        ).all()
        assert roles == []


def test_non_moodle_launch_needs_the_tools_signature_and_never_relinks(lti_env: LtiEnv) -> None:
    assert launch(lti_env.client(), lti_env, "teacher").status_code == 303  # links course 2
    course_2 = _course_id(lti_env, 2)
    secret = lti_env.app.config["SECRET_KEY"]
    issuer = lti_env.platform.issuer

    def non_moodle(context_id: str, custom: dict[str, str]) -> TestResponse:
        return launch(
            lti_env.client(),
            lti_env,
            "teacher",
            sub="9002",
            **{TOOL_PLATFORM: {}, CONTEXT: _other_context(context_id, "LMS"), CUSTOM: custom},
        )

    # Unsigned course ids: a teacher's word, refused.
    resp = non_moodle("lms-1", {"course_id": "2"})
    assert resp.status_code == 400
    assert "arche_course" in resp.get_data(as_text=True)
    # Signed by the tool, but course 2 is linked to context "2": never relinked.
    resp = non_moodle("lms-1", {COURSE_PARAM: sign_course_param(secret, issuer, "lms-1", 2)})
    assert resp.status_code == 400
    assert "already linked" in resp.get_data(as_text=True)
    # Signed for another context: refused in this one.
    resp = non_moodle("lms-1", {COURSE_PARAM: sign_course_param(secret, issuer, "lms-2", 55)})
    assert resp.status_code == 400
    # Signed for this context and a course not linked elsewhere: accepted.
    resp = non_moodle("lms-1", {COURSE_PARAM: sign_course_param(secret, issuer, "lms-1", 55)})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert _landing_path(resp) == f"/course/{_course_id(lti_env, 55)}"
    with lti_env.db() as db:
        course = db.get(Course, course_2)
        assert course is not None
        assert course.lti_context_id == "2"


def test_deep_linking_answer_carries_the_signed_course(lti_env: LtiEnv) -> None:
    """The link Moodle stores gets `arche_course` for its context, signed by the tool."""
    import jwt

    client = lti_env.client()
    claims: dict[str, Any] = {
        CLAIM + "message_type": "LtiDeepLinkingRequest",
        "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings": {
            "deep_link_return_url": f"{lti_env.platform.issuer}/mod/lti/contentitem_return.php",
            "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["iframe", "window"],
        },
    }
    resp = launch(client, lti_env, "teacher", **claims)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    csrf = text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    posted = client.post("/lti/deep-link", data={"csrf_token": csrf, "lt": token_of(resp)})
    assert posted.status_code == 200, posted.get_data(as_text=True)
    body = posted.get_data(as_text=True)
    value = body.split('name="JWT" value="', 1)[1].split('"', 1)[0]
    claims = jwt.decode(value, options={"verify_signature": False})
    items = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    custom = items[0]["custom"]
    secret = lti_env.app.config["SECRET_KEY"]
    assert custom[COURSE_PARAM] == sign_course_param(secret, lti_env.platform.issuer, "2", 2)


# --------------------------------------------------------------------------- 4. custom user id


@pytest.mark.parametrize("key", ["user_id", "moodle_user_id", "userid"])
def test_custom_user_id_does_not_take_over_a_roster_student(lti_env: LtiEnv, key: str) -> None:
    assert launch(lti_env.client(), lti_env, "teacher").status_code == 303
    course_2 = _course_id(lti_env, 2)
    roster_uid = {"user_id": 801, "moodle_user_id": 802, "userid": 803}[key]
    with lti_env.db() as db:
        course = db.get(Course, course_2)
        assert course is not None
        student = Person(site_id=course.site_id, moodle_user_id=roster_uid, fullname="Roster S.")
        db.add(student)
        db.flush()
        db.add(Enrolment(course_id=course_2, person_id=student.id, role="learner", source="ws"))
        student_id = student.id
    attacker = lti_env.client()
    resp = launch(
        attacker, lti_env, "student", sub=f"77{roster_uid}", **{CUSTOM: {key: str(roster_uid)}}
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    with lti_env.db() as db:
        row = db.scalars(select(LtiSession).order_by(LtiSession.id.desc())).first()
        assert row is not None
        assert row.person_id != student_id
        stored = db.get(Person, student_id)
        assert stored is not None
        assert stored.lti_sub is None
    assert attacker.get(f"/course/{course_2}/learners/{student_id}").status_code == 403
    page = attacker.get(_landing_path(resp)).get_data(as_text=True)
    assert "Roster S." not in page


# --------------------------------------------------------------------------- 5. deep nesting


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("part", ["header", "payload"])
@pytest.mark.parametrize("depth", [20_000, 40])
def test_deeply_nested_id_token_is_a_clear_400(lti_env: LtiEnv, part: str, depth: int) -> None:
    client = lti_env.client()
    result = login(client, lti_env)
    nested = "[" * depth + "]" * depth
    header = json.dumps({"alg": "RS256", "kid": lti_env.platform.key.kid, "x": "@"})
    body = json.dumps({"iss": lti_env.platform.issuer, "x": "@"})
    if part == "header":
        header = header.replace('"@"', nested)
    else:
        body = body.replace('"@"', nested)
    token = f"{_b64(header)}.{_b64(body)}.c2ln"
    since = lti_env.last_audit_id()
    resp = post_launch(client, token, result.state)
    assert resp.status_code == 400
    assert "Traceback" not in resp.get_data(as_text=True)
    assert _last_reason(lti_env, since) == "token_malformed"


# --------------------------------------------------------------------------- 13. login state


def test_a_refused_launch_uses_up_its_login_state(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    result = login(client, lti_env)
    claims = lti_env.platform.claims("teacher", nonce=result.nonce)
    forged = lti_env.platform.sign(claims, key=PlatformKey(kid=lti_env.platform.key.kid))
    since = lti_env.last_audit_id()
    assert post_launch(client, forged, result.state).status_code == 400
    assert _last_reason(lti_env, since) == "signature_invalid"
    # The genuine token, with the same state: the state is gone.
    since = lti_env.last_audit_id()
    resp = post_launch(client, lti_env.platform.sign(claims), result.state)
    assert resp.status_code == 400
    assert _last_reason(lti_env, since) == "state_unknown"


# --------------------------------------------------------------------------- 8. binding, resume


def _cookieless_launch(
    env: LtiEnv, kind: str = "teacher", headers: dict[str, str] | None = None, **claims: Any
) -> tuple[FlaskClient, TestResponse]:
    """The login in one browser, the launch from a browser that keeps no cookie (as an
    attacker's page would make a victim's browser post it)."""
    starter = env.client()
    result = login(starter, env)
    token = env.platform.sign(env.platform.claims(kind, nonce=result.nonce, **claims))
    browser = env.client()
    resp = browser.post(
        "/lti/launch", data={"id_token": token, "state": result.state}, headers=headers or {}
    )
    return browser, resp


def test_cookieless_launch_posted_from_another_site_is_refused(lti_env: LtiEnv) -> None:
    since = lti_env.last_audit_id()
    before = _session_count(lti_env)
    _, resp = _cookieless_launch(lti_env, headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403
    assert _last_reason(lti_env, since) == "origin_foreign"
    assert _session_count(lti_env) == before


def test_cookieless_launch_from_the_platforms_page_is_bound(lti_env: LtiEnv) -> None:
    origin = lti_env.platform.issuer
    _, resp = _cookieless_launch(lti_env, headers={"Origin": origin})
    assert resp.status_code == 303
    assert _cookie(resp) is not None
    with lti_env.db() as db:
        row = db.scalars(select(LtiSession).order_by(LtiSession.id.desc())).first()
        assert row is not None
        assert row.details["binding"] == "origin"


def test_unbound_launch_reads_but_cannot_act_nor_resume(lti_env: LtiEnv) -> None:
    browser, resp = _cookieless_launch(lti_env)  # no cookie, no Origin, no Referer
    assert resp.status_code == 303
    assert _cookie(resp) is None
    token = token_of(resp)
    page = browser.get(resp.headers["Location"])
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    csrf = text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    course_id = _course_id(lti_env, 2)
    acted = browser.post(
        f"/course/{course_id}/learner-view", data={"csrf_token": csrf, "lt": token, "enabled": "1"}
    )
    assert acted.status_code == 403
    assert "tied to your browser" in acted.get_data(as_text=True)
    resumed = browser.get("/lti/resume", query_string={"lt": token}, headers=SAME_ORIGIN_CLICK)
    assert resumed.status_code == 403
    assert _cookie(resumed) is None


def _session_count(env: LtiEnv) -> int:
    with env.db() as db:
        return int(db.scalar(select(func.count()).select_from(LtiSession)) or 0)


def test_resume_link_from_elsewhere_asks_before_signing_in(lti_env: LtiEnv) -> None:
    """The attacker's own launch token, opened by a victim from a link: no cookie is set
    without the victim's confirmation, which names whose session it is."""
    attacker = lti_env.client()
    resp = launch(attacker, lti_env, "student", sub="6660", name="Mallory Attacker")
    token = token_of(resp)
    victim = lti_env.client()
    for headers in ({}, {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-User": "?1"}):
        page = victim.get("/lti/resume", query_string={"lt": token}, headers=headers)
        assert page.status_code == 200
        assert _cookie(page) is None
        assert "Mallory Attacker" in page.get_data(as_text=True)
    # A cross-site form posting the confirmation (the attacker knows their own CSRF token).
    landing = page.get_data(as_text=True)  # the confirmation page carries the session's token
    csrf = landing.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {},
    ):
        posted = victim.post("/lti/resume", data={"lt": token, "csrf_token": csrf}, headers=headers)
        assert posted.status_code == 403, headers
        assert _cookie(posted) is None


def test_resume_never_replaces_another_persons_session(lti_env: LtiEnv) -> None:
    attacker = lti_env.client()
    token = token_of(launch(attacker, lti_env, "student", sub="6661", name="Mallory"))
    victim = lti_env.client()
    own = launch(victim, lti_env, "teacher")
    victim_cookie = _cookie(own)
    assert victim_cookie
    resumed = victim.get("/lti/resume", query_string={"lt": token}, headers=SAME_ORIGIN_CLICK)
    assert resumed.status_code == 409
    assert _cookie(resumed) is None
    # The victim's own session is untouched.
    assert victim.get(_landing_path(own)).status_code == 200


def test_resume_on_the_persons_own_click_forks_a_new_cookie(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    resp = launch(client, lti_env, "teacher")
    first_cookie, token = _cookie(resp), token_of(resp)
    window = lti_env.client()  # the new top-level window: no cookie of its own yet
    resumed = window.get("/lti/resume", query_string={"lt": token}, headers=SAME_ORIGIN_CLICK)
    assert resumed.status_code == 303
    new_cookie = _cookie(resumed)
    assert new_cookie
    assert new_cookie != first_cookie
    assert new_cookie not in set(_strings(_decoded_payload(token)))
    assert _landing_path(resumed) == _landing_path(resp)
    assert window.get(_landing_path(resumed)).status_code == 200  # the cookie alone works
    # The confirmation form, posted from the tool's own page, does the same.
    other = lti_env.client()
    page = other.get("/lti/resume", query_string={"lt": token})
    csrf = page.get_data(as_text=True).split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    posted = other.post(
        "/lti/resume",
        data={"lt": token, "csrf_token": csrf},
        headers={"Origin": lti_env.tool_url, "Sec-Fetch-Site": "same-origin"},
    )
    assert posted.status_code == 303, posted.get_data(as_text=True)
    assert _cookie(posted) not in (None, first_cookie, new_cookie)
    assert [e.action for e in lti_env.audits() if e.action == "lti.resume"][-2:] == [
        "lti.resume",
        "lti.resume",
    ]
