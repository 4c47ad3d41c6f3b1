"""Privacy on the pages (#18, items 3 and 5), over real signed launches on a scored course:
every read of a prediction lands in the access log with its viewer, subject and kind, and the
admin page shows it; the admin's privacy form downloads a person's data as JSON and erases a
person only when "ERASE" is typed; neither a teacher nor a learner can use it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from lti_app.models import AccessLog, Person
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.lti_app.lti.scored_course import ScoredCourse, score_course_2

SYS_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


@dataclass
class World:
    env: LtiEnv
    scored: ScoredCourse
    teacher: str
    learner: str
    learner_id: int
    admin: str


@pytest.fixture(scope="module")
def world(lti_env: LtiEnv) -> World:
    teacher = token_of(launch(lti_env.client(), lti_env, "teacher"))
    scored = score_course_2(lti_env)
    first = scored.students[0]
    learner = token_of(
        launch(lti_env.client(), lti_env, "student", sub=str(first.moodle_user_id),
               name=first.fullname)
    )  # fmt: skip
    admin_claims: dict[str, Any] = {"sub": "2", "name": "Ada Admin", CLAIM + "roles": [SYS_ADMIN]}
    admin = token_of(launch(lti_env.client(), lti_env, "student", **admin_claims))
    return World(lti_env, scored, teacher, learner, first.person_id, admin)


def _get(world: World, path: str, token: str) -> tuple[int, str]:
    resp = world.env.client().get(path, headers={"X-Launch-Token": token})
    return resp.status_code, resp.get_data(as_text=True)


def _csrf(world: World, token: str) -> str:
    _, page = _get(world, f"/course/{world.scored.course_id}/me", token)
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found
    return found.group(1)


def _log(world: World) -> list[tuple[int | None, int | None, str]]:
    with world.env.db() as db:
        return [
            (r.viewer_id, r.subject_id, r.kind)
            for r in db.scalars(select(AccessLog).order_by(AccessLog.id))
        ]


def test_every_read_of_a_prediction_is_logged_and_shown_to_admins(world: World) -> None:
    cid = world.scored.course_id
    before = len(_log(world))
    other = world.scored.students[1].person_id
    assert _get(world, f"/course/{cid}/me", world.learner)[0] == 200
    assert _get(world, f"/course/{cid}/learners/{other}", world.teacher)[0] == 200
    assert _get(world, f"/course/{cid}/students.csv", world.teacher)[0] == 200
    assert _get(world, f"/api/v1/courses/{cid}/students", world.teacher)[0] == 200
    assert _get(world, f"/api/v1/courses/{cid}/students/{other}", world.teacher)[0] == 200
    # A refused read is no read.
    assert _get(world, f"/course/{cid}/learners/{other}", world.learner)[0] == 403
    rows = _log(world)[before:]
    assert [(subject, kind) for _, subject, kind in rows] == [
        (world.learner_id, "learner_page"),
        (other, "student_page"),
        (None, "export"),
        (None, "api_students"),
        (other, "api_student"),
    ]
    assert rows[0][0] == world.learner_id  # the learner viewed their own
    assert len({viewer for viewer, _, _ in rows[1:]}) == 1  # the teacher, each time
    status, page = _get(world, "/admin", world.admin)
    assert status == 200
    kinds = re.findall(r'<tr data-kind="(\w+)">', page)
    assert kinds[:5] == ["api_student", "api_students", "export", "student_page", "learner_page"]


def test_the_admin_privacy_form_exports_and_erases(world: World) -> None:
    with world.env.db() as db:
        db.add(Person(site_id=db.get_one(Person, world.learner_id).site_id,
                      moodle_user_id=7777, fullname="Temporary Person"))  # fmt: skip
    path = "/admin/privacy"
    admin = {"X-Launch-Token": world.admin}
    csrf = {"csrf_token": _csrf(world, world.admin)}
    # Not for teachers or learners, whatever their token.
    for token in (world.teacher, world.learner):
        resp = world.env.client().post(
            path,
            headers={"X-Launch-Token": token},
            data={"csrf_token": _csrf(world, token), "moodle_user": "7777", "action": "export"},
        )
        assert resp.status_code == 403
    resp = world.env.client().post(
        path, headers=admin, data={**csrf, "moodle_user": "7777", "action": "export"}
    )
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    exported = json.loads(resp.get_data(as_text=True))
    assert exported["person"]["fullname"] == "Temporary Person"
    resp = world.env.client().post(
        path, headers=admin, data={**csrf, "moodle_user": "7777", "action": "erase"}
    )
    assert resp.status_code == 400  # not confirmed
    resp = world.env.client().post(
        path, headers=admin, data={**csrf, "person": "999999", "action": "export"}
    )
    assert resp.status_code == 404
    resp = world.env.client().post(
        path,
        headers=admin,
        data={**csrf, "moodle_user": "7777", "action": "erase", "confirm": "ERASE"},
    )
    assert resp.status_code == 200
    assert 'id="privacy-message"' in resp.get_data(as_text=True)
    with world.env.db() as db:
        assert db.scalar(select(Person).where(Person.moodle_user_id == 7777)) is None
