"""Hardening seen from a real signed launch (issue #11, items 9 and 12), on both databases.

- A state-changing request that the browser marks as cross-site is refused (403 `cross_site`,
  audited, nothing changed) even with the session's valid CSRF token and launch token; the same
  request from the tool's own pages, or without browser headers, goes through.
- The LTI login and launch themselves, which the platform's page posts cross-site, still work.
- A launch POST with an oversized field is a 413 and is not processed (its id_token can still be
  used afterwards); a launch with a large but real id_token (long custom section) is accepted.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from lti_app.models import Course, LtiSession, SyncRequest
from tests.lti_app.lti.env import LtiEnv, launch, login, token_of
from tests.lti_app.lti.lti_platform import CLAIM

CROSS_SITE_FROM_MOODLE = {"Sec-Fetch-Site": "cross-site", "Origin": "https://moodle.example.org"}


def _teacher(env: LtiEnv) -> tuple[FlaskClient, int, dict[str, str]]:
    """A launched teacher: the client, the course id, and the headers the tool's pages send."""
    client = env.client()
    token = token_of(launch(client, env, "teacher"))
    with env.db() as db:
        course_id = db.scalar(select(Course.id).where(Course.moodle_course_id == 2))
        csrf = db.scalars(select(LtiSession.csrf_token).order_by(LtiSession.id.desc())).first()
    assert course_id is not None
    assert csrf
    return client, course_id, {"X-Launch-Token": token, "X-CSRF-Token": csrf}


def _sync_requests(env: LtiEnv, course_id: int) -> int:
    with env.db() as db:
        query = select(func.count()).select_from(SyncRequest)
        return int(db.scalar(query.where(SyncRequest.course_id == course_id)) or 0)


def _learner_view(env: LtiEnv, course_id: int) -> bool:
    with env.db() as db:
        return bool(db.get_one(Course, course_id).learner_view_enabled)


@pytest.mark.parametrize(
    "browser",
    [
        CROSS_SITE_FROM_MOODLE,
        {"Sec-Fetch-Site": "same-site"},  # a sibling host of the same university domain
        {"Origin": "https://moodle.example.org"},  # an older browser: Origin only
        {"Origin": "null"},  # an opaque origin (sandboxed frame, data: URL)
    ],
)
def test_cross_site_post_is_refused_despite_a_valid_csrf_token(
    lti_env: LtiEnv, browser: dict[str, str]
) -> None:
    client, course_id, headers = _teacher(lti_env)
    url = f"/api/v1/courses/{course_id}/sync"
    before = _sync_requests(lti_env, course_id)
    since = lti_env.last_audit_id()
    resp = client.post(url, headers={**headers, **browser, "Accept": "application/json"})
    assert resp.status_code == 403
    assert resp.get_json()["code"] == "cross_site"
    assert _sync_requests(lti_env, course_id) == before
    events = [e for e in lti_env.audits(since) if e.action == "http.cross_site"]
    assert [(e.outcome, e.reason) for e in events] == [("rejected", "cross_site")]
    assert (events[0].details or {})["endpoint"] == "api.sync_now"
    # The launch and CSRF tokens are never kept in the audit.
    assert headers["X-CSRF-Token"] not in str(events[0].details)
    assert headers["X-Launch-Token"] not in str(events[0].details)


@pytest.mark.parametrize(
    "browser",
    [
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
        {"Origin": "http://localhost"},  # the tool's origin (no public_url: the request host)
        {},  # curl or a server: no browser signal, the CSRF token decides
    ],
)
def test_same_origin_post_goes_through(lti_env: LtiEnv, browser: dict[str, str]) -> None:
    client, course_id, headers = _teacher(lti_env)
    resp = client.post(
        f"/api/v1/courses/{course_id}/sync",
        headers={**headers, **browser, "Accept": "application/json"},
    )
    assert resp.status_code == 202, resp.get_data(as_text=True)


def test_cross_site_form_post_is_an_html_403_and_changes_nothing(lti_env: LtiEnv) -> None:
    client, course_id, headers = _teacher(lti_env)
    url = f"/course/{course_id}/learner-view"
    form = {"csrf_token": headers["X-CSRF-Token"], "lt": headers["X-Launch-Token"]}
    was = _learner_view(lti_env, course_id)
    flipped = {**form, "enabled": "0" if was else "1"}
    resp = client.post(url, data=flipped, headers={**CROSS_SITE_FROM_MOODLE, "Accept": "text/html"})
    assert resp.status_code == 403
    assert resp.mimetype == "text/html"
    assert "another site" in resp.get_data(as_text=True)
    assert _learner_view(lti_env, course_id) == was
    same = client.post(url, data=flipped, headers={"Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 303
    assert _learner_view(lti_env, course_id) != was


def test_login_and_launch_still_work_cross_site(lti_env: LtiEnv) -> None:
    """The platform's page posts both from Moodle's origin: they are exempt by design."""
    client = lti_env.client()
    params = {
        "iss": lti_env.platform.issuer,
        "target_link_uri": f"{lti_env.tool_url}/lti/launch",
        "login_hint": "3",
        "client_id": lti_env.platform.client_id,
        "lti_deployment_id": "1",
    }
    started = client.post("/lti/login", data=params, headers=CROSS_SITE_FROM_MOODLE)
    assert started.status_code == 302
    result = login(client, lti_env)
    claims = lti_env.platform.claims("teacher", nonce=result.nonce)
    resp = client.post(
        "/lti/launch",
        data={"id_token": lti_env.platform.sign(claims), "state": result.state},
        headers=CROSS_SITE_FROM_MOODLE,
    )
    assert _opened(resp), resp.get_data(as_text=True)


def _opened(resp: TestResponse) -> bool:
    """A launch that opened a session: a redirect into the tool carrying a launch token."""
    return resp.status_code in {302, 303} and "lt=" in resp.headers.get("Location", "")


def _sessions(env: LtiEnv) -> int:
    with env.db() as db:
        return int(db.scalar(select(func.count()).select_from(LtiSession)) or 0)


def test_an_oversized_field_next_to_a_valid_launch_is_refused_unprocessed(
    lti_env: LtiEnv,
) -> None:
    client = lti_env.client()
    result = login(client, lti_env)
    id_token = lti_env.platform.sign(lti_env.platform.claims("teacher", nonce=result.nonce))
    sessions = _sessions(lti_env)
    form = {"id_token": id_token, "state": result.state}
    resp = client.post(
        "/lti/launch", data={**form, "padding": "x" * (12 << 20)}, headers={"Accept": "text/html"}
    )
    assert resp.status_code == 413
    assert "Request too large" in resp.get_data(as_text=True)
    assert _sessions(lti_env) == sessions
    # Refused before the launch was read: its state and nonce are still unused.
    accepted = client.post("/lti/launch", data=form)
    assert _opened(accepted), accepted.get_data(as_text=True)
    assert _sessions(lti_env) == sessions + 1


def test_a_large_real_launch_fits(lti_env: LtiEnv) -> None:
    """A Moodle id_token with the Names and Roles and grade service claims (in the recorded
    launch) and a long custom section, about 20 KB once signed, is under the default limit."""
    client = lti_env.client()
    result = login(client, lti_env)
    custom: dict[str, Any] = {f"param_{i:03d}": "v" * 100 for i in range(110)}
    claims = lti_env.platform.claims("teacher", nonce=result.nonce)
    claims[CLAIM + "custom"] = custom
    id_token = lti_env.platform.sign(claims)
    assert 18_000 < len(id_token) < 65_536
    resp = client.post("/lti/launch", data={"id_token": id_token, "state": result.state})
    assert _opened(resp), resp.get_data(as_text=True)
