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
from sqlalchemy import delete, func, select

from lti_app.models import AccessLog, Course, LearnerChoice, MoodleSite, Person, Prediction
from lti_app.services.consent import apply_mode, set_choice
from lti_app.services.course_data import student_roster
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.lti_app.lti.french_text import english_in, visible_text
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
    assert _get(world, f"/course/{cid}", world.teacher)[0] == 200  # the whole course's
    # A refused read is no read.
    assert _get(world, f"/course/{cid}/learners/{other}", world.learner)[0] == 403
    rows = _log(world)[before:]
    assert [(subject, kind) for _, subject, kind in rows] == [
        (world.learner_id, "learner_page"),
        (other, "student_page"),
        (None, "export"),
        (None, "api_students"),
        (other, "api_student"),
        (None, "dashboard"),
    ]
    assert rows[0][0] == world.learner_id  # the learner viewed their own
    assert len({viewer for viewer, _, _ in rows[1:]}) == 1  # the teacher, each time
    status, page = _get(world, "/admin", world.admin)
    assert status == 200
    kinds = re.findall(r'<tr data-kind="(\w+)">', page)
    assert kinds[:6] == [
        "dashboard", "api_student", "api_students", "export", "student_page", "learner_page",
    ]  # fmt: skip


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


# --------------------------------------------------------------------------- the learner's data


def _rows(world: World, path: str) -> set[int]:
    """The person ids of a teacher's table, from the API (one row per student estimated)."""
    resp = world.env.client().get(path, headers={"X-Launch-Token": world.teacher})
    return {int(s["person_id"]) for s in resp.get_json()["students"]}


def test_the_data_page_tells_the_learner_and_reads_in_french(world: World) -> None:
    cid = world.scored.course_id
    status, own = _get(world, f"/course/{cid}/me", world.learner)
    assert status == 200
    assert 'id="my-data-link"' in own
    status, page = _get(world, f"/course/{cid}/my-data", world.learner)
    assert status == 200
    for section in ("what-title", "data-title", "who-title", "keep-title", "quality-title",
                    "choice-title", "rights-title"):  # fmt: skip
        assert f'id="{section}"' in page
    assert "Your activity: 3 years after the course ends." in visible_text(page), visible_text(
        page
    )[:3000]  # the retention in force, in words
    assert 'id="opt-out"' in page
    fr_claims: dict[str, Any] = {
        "sub": str(world.scored.students[0].moodle_user_id),
        CLAIM + "launch_presentation": {"locale": "fr"},
    }
    fr = token_of(launch(world.env.client(), world.env, "student", **fr_claims))
    status, page_fr = _get(world, f"/course/{cid}/my-data", fr)
    assert status == 200
    found = english_in(visible_text(page_fr), names={"Algorithmique", "ALGO101", "JSON", "Moodle"})
    assert found == [], found
    # Their own data, as JSON, without asking anyone.
    resp = world.env.client().get(
        f"/course/{cid}/my-data.json", headers={"X-Launch-Token": world.learner}
    )
    assert resp.status_code == 200
    assert resp.get_json()["person"]["id"] == world.learner_id


def test_opting_out_hides_the_learner_everywhere_and_can_be_undone(world: World) -> None:
    cid = world.scored.course_id
    students_api = f"/api/v1/courses/{cid}/students"
    assert world.learner_id in _rows(world, students_api)
    csrf = {"csrf_token": _csrf(world, world.learner)}
    headers = {"X-Launch-Token": world.learner}
    resp = world.env.client().post(
        f"/course/{cid}/my-data/choice", headers=headers, data={**csrf, "choice": "out"}
    )
    assert resp.status_code == 303
    assert world.learner_id not in _rows(world, students_api)
    with world.env.db() as db:
        assert db.scalar(
            select(func.count()).select_from(Prediction).where(
                Prediction.person_id == world.learner_id
            )
        ) == 0  # fmt: skip
        course = db.get_one(Course, cid)
        roster = student_roster(db, course)
        assert world.learner_id not in set(roster["person_id"])  # no training row, no aggregate
    status, own = _get(world, f"/course/{cid}/me", world.learner)
    assert status == 200
    assert 'id="opted-out"' in own
    status, dash = _get(world, f"/course/{cid}", world.teacher)
    assert status == 200
    assert f'data-person="{world.learner_id}"' not in dash
    # The teacher stops offering the choice: a new opt-out is refused, opting back in is not.
    teacher_csrf = {"csrf_token": _csrf(world, world.teacher)}
    resp = world.env.client().post(
        f"/course/{cid}/opt-out", headers={"X-Launch-Token": world.teacher},
        data={**teacher_csrf, "allowed": "0"},
    )  # fmt: skip
    assert resp.status_code == 303
    resp = world.env.client().post(
        f"/course/{cid}/my-data/choice", headers=headers, data={**csrf, "choice": "in"}
    )
    assert resp.status_code == 303
    with world.env.db() as db:
        assert world.learner_id in set(student_roster(db, db.get_one(Course, cid))["person_id"])
    resp = world.env.client().post(
        f"/course/{cid}/my-data/choice", headers=headers, data={**csrf, "choice": "out"}
    )
    assert resp.status_code == 403
    # A teacher has no choice to make on a learner's behalf.
    resp = world.env.client().post(
        f"/course/{cid}/my-data/choice", headers={"X-Launch-Token": world.teacher},
        data={**teacher_csrf, "choice": "out"},
    )  # fmt: skip
    assert resp.status_code == 403
    world.env.client().post(
        f"/course/{cid}/opt-out", headers={"X-Launch-Token": world.teacher},
        data={**teacher_csrf, "allowed": "1"},
    )  # fmt: skip


def test_an_opt_in_site_uses_only_those_who_agree(world: World) -> None:
    cid = world.scored.course_id
    with world.env.db() as db:
        db.execute(delete(LearnerChoice))  # no one has said anything yet
        course = db.get_one(Course, cid)
        site = db.get_one(MoodleSite, course.site_id)
        everyone = set(student_roster(db, course)["person_id"])
        site.consent_mode = "opt_in"
        db.flush()
        assert set(student_roster(db, course)["person_id"]) == set()
        # Switching the mode deletes the predictions of those who never agreed (every one).
        before = db.scalar(
            select(func.count()).select_from(Prediction).where(Prediction.course_id == cid)
        )
        assert before
        assert apply_mode(db, site.id) == before
        assert (
            db.scalar(
                select(func.count()).select_from(Prediction).where(Prediction.course_id == cid)
            )
            == 0
        )
        set_choice(db, course, world.learner_id, "in")
        assert set(student_roster(db, course)["person_id"]) == {world.learner_id}
        site.consent_mode = "teacher"
        db.flush()
        assert set(student_roster(db, course)["person_id"]) == everyone


def test_a_small_class_shows_learners_no_comparison(world: World) -> None:
    """#18, item 6: below the group size, a learner's page has no median or quartile of the
    course, and says why; at or above it, the comparison is there."""
    from lti_app.services.insights import ModelCache, student_detail
    from lti_app.web.views.student import student_view

    with world.env.app.test_request_context(), world.env.db() as db:
        course = db.get_one(Course, world.scored.course_id)
        detail = student_detail(db, course, world.learner_id, threshold=0.5)
        n = len(student_roster(db, course))

        def view(min_group: int, for_teacher: bool = False) -> dict[str, Any]:
            return student_view(
                db, course, detail, for_teacher=for_teacher,
                model_root=world.env.settings.model_root, cache=ModelCache(),
                min_group=min_group,
            )  # fmt: skip

        small = view(n + 1)
        assert small["small_group"] == {"n": n, "min": n + 1}
        assert small["cohort"] == []
        enough = view(n)
        assert enough["small_group"] is None
        assert enough["cohort"]
        # A teacher's view of a student keeps the comparison (they see the whole class anyway).
        assert view(n + 1, for_teacher=True)["cohort"]


def test_an_admin_declares_the_fairness_groups(world: World) -> None:
    with world.env.db() as db:
        site_id = db.get_one(Person, world.learner_id).site_id
    path = f"/admin/sites/{site_id}/fairness"
    for token in (world.teacher, world.learner):
        resp = world.env.client().post(
            path,
            headers={"X-Launch-Token": token},
            data={"csrf_token": _csrf(world, token), "groups": "department"},
        )
        assert resp.status_code == 403
    admin = {"X-Launch-Token": world.admin}
    csrf = {"csrf_token": _csrf(world, world.admin)}
    resp = world.env.client().post(
        path, headers=admin, data={**csrf, "groups": "department, profile_field_bourse"}
    )
    assert resp.status_code == 303
    resp = world.env.client().post(path, headers=admin, data={**csrf, "groups": "email"})
    assert resp.status_code == 400
    assert "profile_field_" in resp.get_data(as_text=True)
    with world.env.db() as db:
        site = db.get_one(MoodleSite, site_id)
        assert site.fairness_groups == ["department", "profile_field_bourse"]
    status, page = _get(world, "/admin", world.admin)
    assert status == 200
    assert 'value="department, profile_field_bourse"' in page
    resp = world.env.client().post(path, headers=admin, data={**csrf, "groups": ""})
    assert resp.status_code == 303
    with world.env.db() as db:
        assert db.get_one(MoodleSite, site_id).fairness_groups == []


def test_an_admin_may_erase_themself(world: World) -> None:
    claims: dict[str, Any] = {"sub": "3", "name": "Bea Admin", CLAIM + "roles": [SYS_ADMIN]}
    token = token_of(launch(world.env.client(), world.env, "student", **claims))
    with world.env.db() as db:
        me = db.scalar(select(Person).where(Person.fullname == "Bea Admin"))
        assert me is not None
        my_id = me.id
    resp = world.env.client().post(
        "/admin/privacy",
        headers={"X-Launch-Token": token},
        data={
            "csrf_token": _csrf(world, token),
            "person": str(my_id),
            "action": "erase",
            "confirm": "ERASE",
        },
    )
    assert resp.status_code == 200
    with world.env.db() as db:
        assert db.get(Person, my_id) is None
