"""The admin page and the way to it (#15 E): the scheduler's real last runs, the Moodle release
after a connection check, and a link to /admin shown to site administrators only."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from lti_app.config import Settings
from lti_app.crypto import SecretBox
from lti_app.models import MoodleSite
from lti_app.scheduler import JobContext, default_jobs, run_job
from lti_app.services.sites import upsert_site
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.moodle_client.conftest import TOKEN, MoodleStub, _app, _install_defaults

SYS_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
ROLES = "https://purl.imsglobal.org/spec/lti/claim/roles"


def _launch(env: LtiEnv, kind: str, **claims: Any) -> tuple[str, str]:
    """Launch; the landing path and the launch token."""
    resp = launch(env.client(), env, kind, **claims)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    return urlsplit(resp.headers["Location"]).path, token_of(resp)


def _page(env: LtiEnv, path: str, token: str) -> str:
    resp = env.client().get(path, headers={"X-Launch-Token": token})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return resp.get_data(as_text=True)


def _admin_token(env: LtiEnv) -> str:
    return _launch(env, "teacher", **{ROLES: [INSTRUCTOR, SYS_ADMIN]})[1]


def _admin_page(env: LtiEnv, token: str) -> str:
    resp = env.client().get("/admin", headers={"X-Launch-Token": token})
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def test_only_administrators_get_the_admin_link(lti_env: LtiEnv) -> None:
    # The same page (the course's roster, a teacher's page) for a teacher and for a teacher who
    # is also a site administrator; and a learner's own page.
    course_path, teacher = _launch(lti_env, "teacher")
    _, admin = _launch(lti_env, "teacher", **{ROLES: [INSTRUCTOR, SYS_ADMIN]})
    learner_path, learner = _launch(lti_env, "student")
    assert 'id="admin-link"' not in _page(lti_env, f"{course_path}/roster", teacher)
    assert 'id="admin-link"' not in _page(lti_env, learner_path, learner)
    admin_page = _page(lti_env, f"{course_path}/roster", admin)
    found = re.search(r'<a id="admin-link"[^>]* href="([^"]+)"', admin_page)
    assert found is not None
    href = found.group(1).replace("&amp;", "&")
    assert href.startswith("/admin?lt=")  # carries the launch token, so it works in the frame
    assert lti_env.client().get(href).status_code == 200


def _job_cell(page: str, job: str) -> str:
    found = re.search(rf'<tr id="job-{job}">.*?<td class="job-last-run">(.*?)</td>', page, re.S)
    assert found is not None, job
    return found.group(1)


def test_scheduler_jobs_show_their_last_run(lti_env: LtiEnv) -> None:
    token = _admin_token(lti_env)
    page = _admin_page(lti_env, token)
    assert "never (is arche-predict scheduler running?)" in _job_cell(page, "nightly-sync")

    jobs = {job.name: job for job in default_jobs()}
    ctx = JobContext(lti_env.settings, lti_env.factory, "host-a:4242", "2026-12-03T10:00:00")
    run_job(jobs["sync-requests"], ctx)  # the "Sync now" poll, with nothing to do

    page = _admin_page(lti_env, token)
    assert "by host-a:4242 (succeeded)" in _job_cell(page, "sync-requests")
    # A nightly job that has not run yet, while a scheduler is alive, is not "never".
    assert "not yet (the scheduler is running: last seen" in _job_cell(page, "nightly-sync")

    failing = jobs["purge-claims"].__class__(
        name="purge-claims",
        description="fails",
        schedule="nightly",
        run=_boom,
        per_course=False,
    )
    with pytest.raises(RuntimeError):
        run_job(failing, JobContext(lti_env.settings, lti_env.factory, "host-b:1", "2026-12-03"))
    assert "(failed): RuntimeError: Moodle unreachable" in _job_cell(
        _admin_page(lti_env, token), "purge-claims"
    )


def _boom(ctx: JobContext) -> None:
    raise RuntimeError("Moodle unreachable")


@pytest.fixture
def moodle_stub() -> Iterator[MoodleStub]:
    stub = MoodleStub()
    _install_defaults(stub)
    server = make_server("127.0.0.1", 0, _app(stub), threaded=True)
    stub.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()


def test_moodle_release_is_filled_after_a_successful_check(
    lti_env: LtiEnv, moodle_stub: MoodleStub
) -> None:
    settings: Settings = lti_env.settings
    with lti_env.db() as db:
        site = upsert_site(
            db, SecretBox.from_settings(settings), moodle_stub.url, name="Stub", token=TOKEN
        )
        site_id = site.id
    token = _admin_token(lti_env)
    page = _admin_page(lti_env, token)
    row = re.search(
        rf"<code>{re.escape(moodle_stub.url)}</code></td><td>\w+</td><td>([^<]*)</td>", page
    )
    assert row is not None
    assert row.group(1) == "\u2013"  # the page's dash for "unknown"
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert csrf is not None
    checked = lti_env.client().post(
        f"/admin/sites/{site_id}/check",
        headers={"X-Launch-Token": token},
        data={"csrf_token": csrf.group(1)},
    )
    assert checked.status_code == 200
    assert 'id="check-result"' in checked.get_data(as_text=True)
    with lti_env.db() as db:
        assert db.scalars(select(MoodleSite.release).where(MoodleSite.id == site_id)).one() == (
            "5.1+ (Build: 20251017)"
        )
    assert "5.1+ (Build: 20251017)" in _admin_page(lti_env, token)
