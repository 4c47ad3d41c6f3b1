""" "Sync now": a teacher's request, run by the scheduler, followed by the progress endpoint."""

from __future__ import annotations

from sqlalchemy import func, select

from lti_app.crypto import SecretBox
from lti_app.models import Course, LogEvent, LtiSession, MoodleSite, Prediction, SyncRequest
from lti_app.scheduler import JobContext, default_jobs, run_job
from lti_app.services import sync_requests
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.moodle_stub import TOKEN, MoodleStub


def test_sync_now_queues_runs_and_reports_progress(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    token = token_of(launch(client, lti_env, "teacher"))
    moodle = MoodleStub().start()
    try:
        with lti_env.db() as db:
            course = db.scalar(select(Course).where(Course.moodle_course_id == 2))
            assert course is not None
            course_id = course.id
            site = db.get_one(MoodleSite, course.site_id)
            site.base_url = moodle.url  # the launch's Moodle now answers web services
            site.ws_token_encrypted = SecretBox.from_settings(lti_env.settings).encrypt(TOKEN)
            csrf = db.scalars(select(LtiSession.csrf_token).order_by(LtiSession.id.desc())).first()
        headers = {
            "X-Launch-Token": token,
            "X-CSRF-Token": csrf or "",
            "Accept": "application/json",
        }
        url = f"/api/v1/courses/{course_id}/sync"

        assert client.get(url, headers=headers).get_json()["state"] == "idle"
        first = client.post(url, headers=headers)
        assert first.status_code == 202
        assert first.get_json()["state"] == "queued"
        assert first.get_json()["created"] is True
        again = client.post(url, headers=headers)
        assert again.get_json()["created"] is False  # the same request, not a second sync
        assert client.post(url, headers={**headers, "X-CSRF-Token": "guess"}).status_code == 403

        job = {j.name: j for j in default_jobs()}["sync-requests"]
        run_job(job, JobContext(lti_env.settings, lti_env.factory, "test-scheduler", "now"))

        done = client.get(url, headers=headers).get_json()
        assert done["state"] == "done", done
        assert done["fraction"] == 1.0
        assert done["events_added"] == 120
        assert done["pages_done"] == done["pages_total"] == 1
        with lti_env.db() as db:
            assert db.scalar(select(func.count()).select_from(LogEvent)) == 120
            assert db.scalar(select(func.count()).select_from(SyncRequest)) == 1
            # Scored after the sync: no past offering, so engagement only, one row a student.
            assert db.scalar(select(func.count()).select_from(Prediction)) == 40
    finally:
        moodle.stop()


def test_a_request_is_claimed_by_one_scheduler_only(lti_env: LtiEnv) -> None:
    with lti_env.db() as db:
        course = db.scalars(select(Course)).first()
        assert course is not None
        req, _ = sync_requests.request_sync(db, course, None)
        request_id = req.id
    with lti_env.db() as db:
        claimed = sync_requests.claim_next(db, "scheduler-a")
        assert claimed is not None
        assert claimed.id == request_id
    with lti_env.db() as db:
        assert sync_requests.claim_next(db, "scheduler-b") is None
        sync_requests.finish(db, request_id)
