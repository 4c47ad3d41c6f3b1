"""Coursework beside the risk (issue #16, item 6): stored from the recorded Moodle 5.1 answers
over HTTP, states read against the dates (submitted, late, missing, not yet due, attempted),
and an unavailable feature kept distinct from an empty one; on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.crypto import SecretBox
from lti_app.models import (
    Course,
    CourseworkItem,
    CourseworkStatus,
    LogEvent,
    MoodleSite,
    Person,
)
from lti_app.services import coursework as cw
from lti_app.services.sites import upsert_site
from lti_app.services.sync import sync_grades, sync_roster
from moodle_client import MoodleClient
from moodle_client import types as mc
from tests.moodle_stub import TOKEN, MoodleStub, fixture

DUE = datetime.fromtimestamp(1793606400, UTC)  # the recorded assignment's due date
CLOSE = datetime.fromtimestamp(1796025600, UTC)  # the recorded quiz's closing time
NOCAP = {"exception": "x", "errorcode": "accessexception", "message": "Access control exception"}


@pytest.fixture
def stub() -> Iterator[MoodleStub]:
    moodle = MoodleStub([])
    recorded = {
        "core_course_get_contents": "core_course_get_contents.json",
        "mod_assign_get_assignments": "mod_assign_get_assignments.json",
        "mod_assign_get_submissions": "mod_assign_get_submissions.json",
        "mod_quiz_get_quizzes_by_courses": "mod_quiz_get_quizzes_by_courses.json",
        "core_completion_get_activities_completion_status": (
            "core_completion_get_activities_completion_status.json"
        ),
    }
    for name, file in recorded.items():
        _answer(moodle, name, fixture(file))
    moodle.start()
    yield moodle
    moodle.stop()


def _answer(stub: MoodleStub, wsfunction: str, body: Any) -> None:
    stub.handlers[wsfunction] = lambda p: copy.deepcopy(body)


@pytest.fixture
def course(db_session: Session, stub: MoodleStub) -> Course:
    """Course 2 with the recorded roster (students 4-43) and grades."""
    site = upsert_site(db_session, SecretBox(Fernet.generate_key().decode()), stub.url, token=TOKEN)
    row = Course(site_id=site.id, moodle_course_id=2)
    db_session.add(row)
    db_session.flush()
    users = [mc.EnrolledUser.from_json(u) for u in fixture("core_enrol_get_enrolled_users.json")]
    sync_roster(db_session, row, users)
    report = mc.GradeReport.from_json(
        fixture("gradereport_user_get_grade_items__course2.json"), courseid=2
    )
    sync_grades(db_session, row, report)
    return row


def _client(stub: MoodleStub) -> MoodleClient:
    return MoodleClient(stub.url, TOKEN, max_retries=0, timeout=10.0)


def _person(session: Session, userid: int) -> int:
    pid = session.scalar(select(Person.id).where(Person.moodle_user_id == userid))
    assert pid is not None
    return pid


def _event(session: Session, course: Course, userid: int, cmid: int, name: str, at: int) -> None:
    session.add(
        LogEvent(
            site_id=course.site_id,
            eventname=name,
            component=name.split("\\")[1],
            action="x",
            target="x",
            crud="r",
            edulevel=2,
            contextlevel=70,
            contextinstanceid=cmid,
            userid=userid,
            courseid=2,
            timecreated=at,
            source="ws",
        )
    )
    session.flush()


def _states(session: Session, course: Course, userid: int, now: datetime) -> dict[str, str]:
    view = cw.student_coursework(session, course, _person(session, userid), now=now)
    return {w.modname: w.state for w in view.work}


def test_sync_stores_the_recorded_coursework(
    db_session: Session, course: Course, stub: MoodleStub
) -> None:
    outcome = cw.sync_coursework(db_session, course, _client(stub))
    assert outcome.read == ("resources", "assignments", "quizzes", "completion")
    assert outcome.unavailable == {}
    items = {
        i.cmid: i
        for i in db_session.scalars(
            select(CourseworkItem).where(CourseworkItem.course_id == course.id)
        )
    }
    assert sorted(items) == [1, 2, 3, 4, 5, 6, 7, 8]
    # The assignment call's due date wins over the (older) contents' one.
    assert items[5].due_at == DUE
    assert (items[5].modname, items[5].instance) == ("assign", 1)
    assert (items[6].due_at, items[6].instance) == (CLOSE, 1)
    assert outcome.submissions == 32  # one row per student Moodle lists
    # One completion call per student, six tracked activities each.
    calls = [n for n, _ in stub.calls if n == "core_completion_get_activities_completion_status"]
    assert len(calls) == 40
    assert outcome.completions == 40 * 6
    site = db_session.get_one(MoodleSite, course.site_id)
    assert not site.unavailable_features
    # A second sync rewrites the same rows, adds none.
    cw.sync_coursework(db_session, course, _client(stub))
    assert db_session.scalar(select(func.count()).select_from(CourseworkItem)) == 8
    stored = db_session.scalar(
        select(func.count())
        .select_from(CourseworkStatus)
        .where(CourseworkStatus.submission.is_not(None))
    )
    assert stored == 32


def test_states_submitted_late_missing_not_due_attempted(
    db_session: Session, course: Course, stub: MoodleStub
) -> None:
    body = fixture("mod_assign_get_submissions.json")
    for s in body["assignments"][0]["submissions"]:
        if s["userid"] == 4:  # submitted an hour after the due date
            s["timemodified"] = int(DUE.timestamp()) + 3600
    _answer(stub, "mod_assign_get_submissions", body)
    cw.sync_coursework(db_session, course, _client(stub))
    after_due, before_due = DUE + timedelta(days=1), DUE - timedelta(days=1)
    after_close = CLOSE + timedelta(days=1)
    # 15 submitted on time; 4 late; 16 has a row with status "new" and 5 no row at all.
    assert _states(db_session, course, 15, after_due)["assign"] == "submitted"
    assert _states(db_session, course, 4, after_due)["assign"] == "late"
    assert _states(db_session, course, 16, after_due)["assign"] == "missing"
    assert _states(db_session, course, 5, after_due)["assign"] == "missing"
    assert _states(db_session, course, 5, before_due)["assign"] == "not_due"
    # Quiz: user 6 has a quiz grade (15), user 4 none; user 9 submitted an attempt (the log).
    _event(db_session, course, 9, 6, "\\mod_quiz\\event\\attempt_submitted", 1794345395)
    assert _states(db_session, course, 6, after_close)["quiz"] == "attempted"
    assert _states(db_session, course, 9, after_close)["quiz"] == "attempted"
    assert _states(db_session, course, 4, after_close)["quiz"] == "missing"
    assert _states(db_session, course, 4, CLOSE - timedelta(days=1))["quiz"] == "not_due"
    view = cw.student_coursework(db_session, course, _person(db_session, 5), now=after_close)
    assert view.missing == 2


def test_marks_completion_and_modules_opened(
    db_session: Session, course: Course, stub: MoodleStub
) -> None:
    cw.sync_coursework(db_session, course, _client(stub))
    _event(db_session, course, 6, 1, "\\mod_page\\event\\course_module_viewed", 1789308230)
    _event(db_session, course, 6, 1, "\\mod_page\\event\\course_module_viewed", 1789309000)
    _event(db_session, course, 6, 3, "\\mod_url\\event\\course_module_viewed", 1790197808)
    view = cw.student_coursework(db_session, course, _person(db_session, 6), now=CLOSE)
    marks = {m.name or m.itemtype: (m.value, m.grademax) for m in view.marks}
    assert marks["TP1 : implementer le tri fusion"] == (100.0, 100.0)
    assert marks["Quiz 1 : recursivite et tris"] == (15.0, 20.0)
    assert view.marks[-1].is_total
    assert (view.marks[-1].value, view.marks[-1].grademax) == (115.0, 120.0)
    opened = {m.cmid: (m.views, m.last_at) for m in view.opened}
    assert opened == {
        1: (2, datetime.fromtimestamp(1789309000, UTC)),
        3: (1, datetime.fromtimestamp(1790197808, UTC)),
    }
    # Not opened: the other modules, without the question bank (not something to open).
    assert sorted(m.cmid for m in view.not_opened) == [2, 4, 5, 6, 8]
    completion = {m.cmid: m.completion for m in view.completion}
    assert completion == {4: 1, 1: 1, 3: 1, 2: 1, 5: 1, 6: 0}
    assert view.read == frozenset(cw.FEATURES)
    assert view.unavailable == {}


def test_unavailable_is_kept_apart_from_empty(
    db_session: Session, course: Course, stub: MoodleStub
) -> None:
    site = db_session.get_one(MoodleSite, course.site_id)
    site.unavailable_features = {"messaging": "someone else's feature"}
    cw.sync_coursework(db_session, course, _client(stub))
    after_due = DUE + timedelta(days=1)
    assert _states(db_session, course, 15, after_due)["assign"] == "submitted"
    # Without mod/assign:viewgrades: no submission and a warning. Unavailable, and the stored
    # submissions are left as they were (not cleared as if nobody had submitted).
    _answer(stub, "mod_assign_get_submissions", fixture("mod_assign_get_submissions__nocap.json"))
    _answer(stub, "core_completion_get_activities_completion_status", NOCAP)
    stub.handlers.pop("mod_quiz_get_quizzes_by_courses")  # not on this Moodle
    outcome = cw.sync_coursework(db_session, course, _client(stub))
    assert set(outcome.unavailable) == {"assignments", "quizzes", "completion"}
    assert outcome.read == ("resources",)
    flags = db_session.get_one(MoodleSite, course.site_id).unavailable_features or {}
    assert flags["messaging"] == "someone else's feature"
    assert "'mod/assign:viewgrades'" in flags["assignments"]
    # One completion call, not one per student: the refusal is the function's.
    calls = [n for n, _ in stub.calls if n == "core_completion_get_activities_completion_status"]
    assert len(calls) == 40 + 1
    view = cw.student_coursework(db_session, course, _person(db_session, 15), now=after_due)
    assert view.unavailable["assignments"].kind == "capability"
    assert view.unavailable["assignments"].name == "mod/assign:viewgrades"
    assert view.unavailable["completion"].kind == "function"
    assert view.unavailable["completion"].name == "core_completion_get_activities_completion_status"
    assert view.unavailable["quizzes"].kind == "other"
    assert _states(db_session, course, 15, after_due)["assign"] == "submitted"
    # Allowed again, and really nothing submitted: read, flag cleared, rows cleared.
    _answer(stub, "mod_assign_get_submissions", {"assignments": [], "warnings": []})
    outcome = cw.sync_coursework(db_session, course, _client(stub))
    assert "assignments" in outcome.read
    flags = db_session.get_one(MoodleSite, course.site_id).unavailable_features or {}
    assert "assignments" not in flags
    assert flags["messaging"] == "someone else's feature"
    assert _states(db_session, course, 15, after_due)["assign"] == "missing"
    view = cw.student_coursework(db_session, course, _person(db_session, 15), now=after_due)
    assert "assignments" not in view.unavailable


def test_a_module_gone_from_the_course_is_removed(
    db_session: Session, course: Course, stub: MoodleStub
) -> None:
    cw.sync_coursework(db_session, course, _client(stub))
    contents = fixture("core_course_get_contents.json")
    for section in contents:
        section["modules"] = [m for m in section["modules"] if m["id"] != 3]
    _answer(stub, "core_course_get_contents", contents)
    cw.sync_coursework(db_session, course, _client(stub))
    cmids = db_session.scalars(
        select(CourseworkItem.cmid).where(CourseworkItem.course_id == course.id)
    ).all()
    assert 3 not in cmids
    assert len(cmids) == 7


@pytest.mark.parametrize(
    ("modname", "due", "done_at", "done", "offline", "expected"),
    [
        ("assign", 10, 5, True, False, "submitted"),
        ("assign", 10, 10, True, False, "submitted"),  # on the due second: on time
        ("assign", 10, 11, True, False, "late"),
        ("assign", 10, None, False, False, "missing"),
        ("assign", 30, None, False, False, "not_due"),
        ("assign", None, None, False, False, "open"),
        ("assign", None, 5, True, False, "submitted"),
        ("assign", 10, None, False, True, "offline"),
        ("quiz", 10, 11, True, False, "attempted"),
        ("quiz", 10, None, False, False, "missing"),
        ("quiz", 30, None, False, False, "not_due"),
    ],
)
def test_work_state(
    modname: str,
    due: int | None,
    done_at: int | None,
    done: bool,
    offline: bool,
    expected: str,
) -> None:
    def at(day: int | None) -> datetime | None:
        return None if day is None else datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=day)

    now = at(20)
    assert now is not None
    state = cw.work_state(
        modname, due_at=at(due), done_at=at(done_at), done=done, offline=offline, now=now
    )
    assert state == expected


def test_unavailable_reason_reads_the_explanations() -> None:
    assert cw.unavailable_reason("lacks the capability 'report/progress:view' (x)") == (
        cw.Unavailable(
            "capability", "report/progress:view", "lacks the capability 'report/progress:view' (x)"
        )
    )
    text = "The function 'mod_quiz_get_quizzes_by_courses' is not in the token's external service"
    assert cw.unavailable_reason(text).name == "mod_quiz_get_quizzes_by_courses"
    assert cw.unavailable_reason("Moodle refused it").kind == "other"
