"""An administrator sets a course's term on the admin page (issue #13, item 4), over real
launches: dates in the site's time zone, an end before the start refused with the reason and
nothing changed, the change audited; a teacher gets 403."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from lti_app.models import AuditEvent, Course, LtiSession
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.lti_app.lti.lti_platform import CLAIM

SYS_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"


def _session(env: LtiEnv, kind: str, **claims: Any) -> tuple[str, str]:
    token = token_of(launch(env.client(), env, kind, **claims))
    with env.db() as db:
        csrf = db.scalars(select(LtiSession.csrf_token).order_by(LtiSession.id.desc())).first()
    assert csrf is not None
    return token, csrf


@pytest.fixture(scope="module")
def sessions(lti_env: LtiEnv) -> dict[str, tuple[str, str]]:
    teacher = _session(lti_env, "teacher")
    admin = _session(
        lti_env, "student", sub="2", name="Ada Admin", **{CLAIM + "roles": [SYS_ADMIN]}
    )
    return {"teacher": teacher, "admin": admin}


def _course_id(env: LtiEnv) -> int:
    with env.db() as db:
        found = db.scalar(select(Course.id).where(Course.moodle_course_id == 2))
    assert found is not None
    return int(found)


def test_admin_sets_the_term_in_the_site_zone(
    lti_env: LtiEnv, sessions: dict[str, tuple[str, str]]
) -> None:
    token, csrf = sessions["admin"]
    course_id = _course_id(lti_env)
    resp = lti_env.client().post(
        f"/admin/courses/{course_id}/dates",
        headers={"X-Launch-Token": token},
        data={"csrf_token": csrf, "start": "2026-09-07", "end": "2027-01-22"},
    )
    assert resp.status_code == 303
    assert "dates=dates_saved" in resp.headers["Location"]
    with lti_env.db() as db:
        course = db.get_one(Course, course_id)
        # Midnight in Europe/Paris (summer time in September, winter time in January).
        assert course.start_at == datetime(2026, 9, 6, 22, 0, tzinfo=UTC)
        assert course.end_at == datetime(2027, 1, 21, 23, 0, tzinfo=UTC)
        audited = db.scalars(
            select(AuditEvent.action).where(AuditEvent.course_id == course_id)
        ).all()
        assert "course.dates" in audited
    page = lti_env.client().get(
        f"/admin?dates=dates_saved&course={course_id}", headers={"X-Launch-Token": token}
    )
    assert page.status_code == 200
    assert re.search(r'id="dates-message"[^>]*>\s*Dates saved', page.get_data(as_text=True))


@pytest.mark.parametrize(
    "form", [{"start": "2027-02-01", "end": "2027-01-01"}, {"start": "le 1er mars", "end": ""}]
)
def test_unusable_dates_change_nothing(
    lti_env: LtiEnv, sessions: dict[str, tuple[str, str]], form: dict[str, str]
) -> None:
    token, csrf = sessions["admin"]
    course_id = _course_id(lti_env)
    with lti_env.db() as db:
        course = db.get_one(Course, course_id)
        before = (course.start_at, course.end_at)
    resp = lti_env.client().post(
        f"/admin/courses/{course_id}/dates",
        headers={"X-Launch-Token": token},
        data={"csrf_token": csrf, **form},
    )
    assert resp.status_code == 303
    assert "dates=dates_invalid" in resp.headers["Location"]
    with lti_env.db() as db:
        course = db.get_one(Course, course_id)
        assert (course.start_at, course.end_at) == before


def test_a_teacher_may_not(lti_env: LtiEnv, sessions: dict[str, tuple[str, str]]) -> None:
    token, csrf = sessions["teacher"]
    resp = lti_env.client().post(
        f"/admin/courses/{_course_id(lti_env)}/dates",
        headers={"X-Launch-Token": token},
        data={"csrf_token": csrf, "start": "2026-09-07"},
    )
    assert resp.status_code == 403
