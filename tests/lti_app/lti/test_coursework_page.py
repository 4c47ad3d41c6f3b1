"""The student page's marks, work due, completion and modules opened (#16 item 6), over real
launches: a teacher sees one learner's; a learner sees their own and nobody else's; a feature
Moodle does not give says which capability is missing instead of an empty table; French."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from lti_app.db import utcnow
from lti_app.models import (
    Course,
    CourseworkItem,
    CourseworkStatus,
    CourseworkSync,
    LogEvent,
    MoodleSite,
    Person,
)
from lti_app.services.coursework import FEATURES
from lti_app.services.sync import sync_grades, sync_roster
from moodle_client import types as mc
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.lti_app.lti.french_text import english_in, visible_text
from tests.moodle_stub import fixture

LEARNER_UID, OTHER_UID = 6, 7  # student03 and student04 of the recorded roster


@dataclass
class World:
    course_id: int
    teacher: str
    teacher_fr: str
    learner: str
    learner_id: int
    other_id: int
    other_name: str


@pytest.fixture(scope="module")
def world(lti_env: LtiEnv) -> World:
    """Course 2 with the recorded roster and grades, and coursework dated around now: an
    assignment overdue, one due next week (submitted by the learner), a quiz closed."""
    teacher = token_of(launch(lti_env.client(), lti_env, "teacher"))
    now = utcnow()
    with lti_env.db() as db:
        course = db.scalar(select(Course).where(Course.moodle_course_id == 2))
        assert course is not None
        users = [
            mc.EnrolledUser.from_json(u) for u in fixture("core_enrol_get_enrolled_users.json")
        ]
        sync_roster(db, course, users)
        sync_grades(
            db,
            course,
            mc.GradeReport.from_json(
                fixture("gradereport_user_get_grade_items__course2.json"), courseid=2
            ),
        )
        items = [
            CourseworkItem(course_id=course.id, cmid=1, modname="page", name="Cours 1", position=1),
            CourseworkItem(course_id=course.id, cmid=3, modname="url", name="Visualgo", position=2),
            CourseworkItem(
                course_id=course.id, cmid=5, modname="assign", instance=1, name="TP1 tri fusion",
                position=3, due_at=now - timedelta(days=3),
            ),
            CourseworkItem(
                course_id=course.id, cmid=9, modname="assign", instance=2, name="TP2 graphes",
                position=4, due_at=now + timedelta(days=7),
            ),
            CourseworkItem(
                course_id=course.id, cmid=6, modname="quiz", instance=1, name="Quiz 1",
                position=5, due_at=now - timedelta(days=1),
            ),
        ]  # fmt: skip
        db.add_all(items)
        db.flush()
        learner = db.scalar(select(Person).where(Person.moodle_user_id == LEARNER_UID))
        other = db.scalar(select(Person).where(Person.moodle_user_id == OTHER_UID))
        assert learner is not None
        assert other is not None
        by_cmid = {i.cmid: i for i in items}
        db.add_all(
            [
                CourseworkStatus(
                    item_id=by_cmid[9].id, person_id=learner.id, submission="submitted",
                    submitted_at=now - timedelta(days=1),
                ),
                CourseworkStatus(item_id=by_cmid[1].id, person_id=learner.id, completion=1,
                                 completed_at=now - timedelta(days=20)),
                CourseworkStatus(item_id=by_cmid[3].id, person_id=learner.id, completion=0),
            ]
        )  # fmt: skip
        db.add(CourseworkSync(course_id=course.id, read_at={f: now.isoformat() for f in FEATURES}))
        db.add(
            LogEvent(
                site_id=course.site_id, eventname="\\mod_page\\event\\course_module_viewed",
                component="mod_page", action="viewed", target="course_module", crud="r",
                edulevel=2, contextlevel=70, contextinstanceid=1, userid=LEARNER_UID, courseid=2,
                timecreated=int((now - timedelta(days=20)).timestamp()), source="ws",
            )
        )  # fmt: skip
        db.commit()
        ids = (course.id, learner.id, other.id, other.fullname)
    learner_token = token_of(launch(lti_env.client(), lti_env, "student", sub=str(LEARNER_UID)))
    teacher_fr = token_of(launch(lti_env.client(), lti_env, "teacher_fr"))
    return World(ids[0], teacher, teacher_fr, learner_token, ids[1], ids[2], ids[3])


def _get(env: LtiEnv, path: str, token: str) -> tuple[int, str]:
    resp = env.client().get(path, headers={"X-Launch-Token": token})
    return resp.status_code, resp.get_data(as_text=True)


def _rows(page: str, table: str) -> list[str]:
    found = re.search(rf'<table[^>]*id="{table}".*?</table>', page, re.S)
    assert found is not None, table
    return re.findall(r"<tr[^>]*>.*?</tr>", found.group(0), re.S)[1:]


@pytest.fixture
def unavailable(lti_env: LtiEnv, world: World) -> Iterator[None]:
    """The site's token lacks report/progress:view and the quiz function, for one test."""
    with lti_env.db() as db:
        course = db.get_one(Course, world.course_id)
        site = db.get_one(MoodleSite, course.site_id)
        site.unavailable_features = {
            "completion": "Moodle's web-service user lacks the capability "
            "'report/progress:view' (core_completion_get_activities_completion_status: ...).",
            "quizzes": "The function 'mod_quiz_get_quizzes_by_courses' is not in the token's "
            "external service: add it.",
        }
        db.commit()
    try:
        yield
    finally:
        with lti_env.db() as db:
            course = db.get_one(Course, world.course_id)
            db.get_one(MoodleSite, course.site_id).unavailable_features = None
            db.commit()


def test_teacher_sees_marks_work_completion_and_modules(lti_env: LtiEnv, world: World) -> None:
    status, page = _get(
        lti_env, f"/course/{world.course_id}/learners/{world.learner_id}", world.teacher
    )
    assert status == 200, page[:500]
    marks = _rows(page, "table-marks")
    # student03's recorded grades: assignment 100/100, quiz 15/20, total 115/120 (last).
    assert "100 / 100" in marks[0]
    assert "15 / 20" in marks[1]
    assert "Course total" in marks[-1]
    assert "115 / 120" in marks[-1]
    work = {re.search(r"<td>([^<]+?) <", r).group(1): r for r in _rows(page, "table-work")}  # type: ignore[union-attr]
    assert 'data-state="missing"' in work["TP1 tri fusion"]
    assert "table-danger" in work["TP1 tri fusion"]
    assert "<strong>Missing</strong>" in work["TP1 tri fusion"]
    assert 'data-state="submitted"' in work["TP2 graphes"]
    # The quiz is closed, and student03 has a quiz grade: attempted (the gradebook says so).
    assert 'data-state="attempted"' in work["Quiz 1"]
    assert 'id="work-missing"' in page
    assert "1 piece of work missing" in page
    # Dates in the site's time zone, with the offset, as the rest of the pages.
    assert "(UTC+1)" in work["TP1 tri fusion"]
    completion = _rows(page, "table-completion")
    assert len(completion) == 2
    assert "Completed" in completion[0]
    assert "Not completed" in completion[1]
    opened = _rows(page, "table-opened")
    assert len(opened) == 1
    assert "Cours 1" in opened[0]
    not_opened = re.search(r'<ul class="small" id="not-opened">(.*?)</ul>', page, re.S)
    assert not_opened is not None
    assert "Visualgo" in not_opened.group(1)
    assert "Cours 1" not in not_opened.group(1)
    assert 'class="text-body-secondary small coursework-note"' not in page


def test_an_unavailable_feature_names_the_capability(
    lti_env: LtiEnv, world: World, unavailable: None
) -> None:
    status, page = _get(
        lti_env, f"/course/{world.course_id}/learners/{world.learner_id}", world.teacher
    )
    assert status == 200
    assert 'id="table-completion"' not in page
    note = re.search(r'id="completion-note">([^<]*)<', page)
    assert note is not None
    assert "report/progress:view" in note.group(1)
    quiz_note = re.search(r'id="work-note">([^<]*)<', page)
    assert quiz_note is not None
    assert "mod_quiz_get_quizzes_by_courses" in quiz_note.group(1)
    # The quiz row is not shown as if it were known; the assignments still are.
    work = "".join(_rows(page, "table-work"))
    assert "Quiz 1" not in work
    assert "TP1 tri fusion" in work
    status, page = _get(
        lti_env, f"/course/{world.course_id}/learners/{world.learner_id}", world.teacher_fr
    )
    note = re.search(r'id="completion-note">([^<]*)<', page)
    assert note is not None
    assert "report/progress:view" in note.group(1)
    assert note.group(1).startswith("Non disponible")


def test_french_coursework_has_no_english(lti_env: LtiEnv, world: World) -> None:
    status, page = _get(
        lti_env, f"/course/{world.course_id}/learners/{world.learner_id}", world.teacher_fr
    )
    assert status == 200
    start = page.index('id="coursework"')
    text = visible_text(page[start : page.index('<div class="row g-4">', start + 200)])
    # The activities' and grade items' own names are Moodle's, not the tool's words.
    names = ["TP1 tri fusion", "TP2 graphes", "Quiz 1", "Cours 1", "Visualgo"]
    names += ["TP1 : implementer le tri fusion", "Quiz 1 : recursivite et tris"]
    assert english_in(text, names) == []
    assert "Manquant" in text


def test_learner_sees_own_coursework_only(lti_env: LtiEnv, world: World) -> None:
    status, page = _get(lti_env, f"/course/{world.course_id}/me", world.learner)
    assert status == 200, page[:500]
    assert 'id="coursework"' in page
    assert "Your marks and work" in page
    assert "115 / 120" in page
    assert 'data-state="missing"' in page
    assert 'id="not-opened"' in page
    assert world.other_name not in page
    status, _ = _get(lti_env, f"/course/{world.course_id}/learners/{world.other_id}", world.learner)
    assert status == 403
